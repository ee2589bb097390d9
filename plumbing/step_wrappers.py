"""Around train.py's plain train step: replicas (tf.distribute), fp16 loss scaling, the guard.

`train.py:train_step` is the single-device step a student reads: forward pass, loss, gradient,
update. It takes the gradient of `optimizer.scale_loss(loss)` (the loss itself for the optimizers
of optimizers.py, as for Keras 3's) and hands it to `optimizer.apply(grads, lr)`.
`compile_train_step` runs that same function, once per replica, with a `WrappedOptimizer` in the
optimizer's place. Between the gradient and the update it adds three named pieces:

    replicas      Under a tf.distribute strategy (plumbing/distribute.py) each of the R replicas
                  runs the step on its share of b = B / R images of the global batch, so its
                  gradient g_r is that of its own mean loss. `mean_over_replicas` gives every
                  replica (1/R) sum_r g_r, the gradient of the global batch's mean loss (the
                  shares are equal; weight decay, the same term on every replica, counts once),
                  and every copy of the weights receives the same update. One all-reduce for the
                  gradients and the loss; with one device there is nothing to average.
    loss scaling  `scale_loss` returns S * loss and `unscale` divides the gradients by S
                  (loss_scale.py: S > 1 for fp16 only; S = 1 for fp32 and bf16, which is exact).
    guard         A step whose gradients or loss are not finite changes no weight. With S > 1
                  (fp16) it is skipped and S halved; at S = 1 nothing can be lowered: `bad_step`
                  records it, no later step changes a weight, and the host stops the run when it
                  next reads `bad_step` (plumbing/hooks.py, every --check-every steps).

After the step, `count` adds the global batch to the in-graph counters: `step` (int64, finished
steps) and `epoch_sums` ([loss sum, correct, images], float64), with one more all-reduce, and
`grad_norm_sums` (each variable's gradient norm ||g||, float32) of every applied step. No host
round trip per step: the loop reads them only when it needs them.

Numbers: S is a power of two (2^15, halved or doubled; 1 for fp32 and bf16), and multiplying
every gradient of the backward pass by a power of two and dividing it out again only shifts
exponents: an fp32 step is the same bit for bit at any S (tests/test_train.py). Likewise, for R
a power of two, the replicas' mean is the arithmetic of tf.distribute's usual sum of loss shares
(sum of xent / B + wd * sum(l2) / R on each replica, gradients summed) up to exponent shifts.
"""

import tensorflow as tf

from plumbing.errors import UserError


def over_replicas(op, values):
    """Each tensor in `values` reduced over the replicas by `op` (tf.distribute.ReduceOp.MEAN or
    SUM; one all-reduce for the whole list); with one replica (or outside a strategy) they come
    back unchanged."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return list(values)
    return context.all_reduce(op, list(values))


def mean_over_replicas(values):
    """The mean over the replicas of each tensor in `values`."""
    return over_replicas(tf.distribute.ReduceOp.MEAN, values)


def sum_over_replicas(values):
    """The sum over the replicas of each tensor in `values`."""
    return over_replicas(tf.distribute.ReduceOp.SUM, values)


class WrappedOptimizer:
    """The optimizer train_step sees under the wrappers: replicas, loss scaling and the guard
    between the gradient and `optimizer.apply`. A new one for every replica's call (traced once):
    it keeps this replica's loss from `scale_loss` to `apply`, and the guard's verdict for `count`.
    """

    def __init__(self, optimizer, loss_scale, bad_step, grad_norm_sums=None):
        self.optimizer, self.loss_scale = optimizer, loss_scale
        self.bad_step, self.grad_norm_sums = bad_step, grad_norm_sums

    def scale_loss(self, loss):
        """Loss scaling: S * loss ([] float32), whose gradient is S times the loss's."""
        self.loss = loss
        return loss * self.loss_scale.scale

    def apply(self, grads, lr):
        """Replicas, loss scaling and the guard, then the optimizer's own `apply`."""
        # Replicas: the same mean gradients and mean loss on every replica, so every replica
        # takes the same branch below.
        *grads, loss = mean_over_replicas(list(grads) + [self.loss])
        # Loss scaling: g = d(S * loss)/dw / S, and whether every gradient is finite.
        grads, finite = self.loss_scale.unscale(grads)
        # The guard: a non-finite step changes no weight; after a step S = 1 could not recover
        # (`bad_step` >= 0), no step does.
        ok = tf.logical_and(finite, tf.math.is_finite(loss))
        self.healthy = self.bad_step < 0
        if tf.logical_and(ok, self.healthy):
            self.optimizer.apply(grads, lr)
            if self.grad_norm_sums is not None:
                self.grad_norm_sums.assign_add(tf.stack([tf.norm(g) for g in grads]))
        # The run goes on if the loss is finite and the step succeeded or S can still be halved.
        self.keep_going = tf.logical_and(tf.math.is_finite(loss),
                                         tf.logical_or(ok, self.loss_scale.scale > 1.0))
        self.loss_scale.update(ok)


def count(wrapped, step, epoch_sums, xent, logits, labels):
    """After a step: `step` + 1, the global batch's [loss sum, correct, images] into `epoch_sums`,
    and `bad_step` = this step if it could not be recovered. Returns the global batch's mean
    cross-entropy and whether the run goes on (the same on every replica)."""
    correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), labels),
                                    tf.float32))
    totals = sum_over_replicas([tf.stack(  # [xent sum, correct, images] of the global batch
        [tf.reduce_sum(xent), correct, tf.cast(tf.size(labels), tf.float32)])])[0]
    step.assign_add(1)
    epoch_sums.assign_add(tf.cast(totals, tf.float64))
    if tf.logical_and(wrapped.healthy, tf.logical_not(wrapped.keep_going)):
        wrapped.bad_step.assign(step)
    return totals[0] / totals[2], wrapped.keep_going


def compile_train_step(train_step, model, optimizer, weight_decay, loss_scale, step, epoch_sums,
                       grad_norm_sums=None, bad_step=None, strategy=None, xla=False):
    """train_step(model, optimizer, weight_decay, images, labels, lr) -> (xent [b], logits
    [b, classes]), run under the wrappers as one tf.function traced once.

    The returned function takes images [B, 32, 32, 3] float32 and labels [B] int32 (under a
    strategy: tf.distribute values, each replica's share) and lr [] float32 (a tensor: a new
    learning rate never retraces), and returns the global batch's mean cross-entropy and whether
    the run goes on. `bad_step` (int64, -1 while no step failed) is made if not given.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if xla and strategy.num_replicas_in_sync > 1:
        raise UserError("--xla compiles the single-device step; use it with --strategy default")
    if bad_step is None:
        with strategy.scope():
            bad_step = tf.Variable(-1, dtype=tf.int64, trainable=False, name="bad_step")

    def replica_step(images, labels, lr):
        # images [b, 32, 32, 3], labels [b]: this replica's share (b = B / R; the batch if R = 1)
        wrapped = WrappedOptimizer(optimizer, loss_scale, bad_step, grad_norm_sums)
        xent, logits = train_step(model, wrapped, weight_decay, images, labels, lr)
        return count(wrapped, step, epoch_sums, xent, logits, labels)

    @tf.function(jit_compile=xla, reduce_retracing=True)
    def wrapped_train_step(images, labels, lr):
        xent, keep_going = strategy.run(replica_step, args=(images, labels, lr))
        # The same on every replica (from all-reduced values): the first replica's.
        return (strategy.experimental_local_results(xent)[0],
                strategy.experimental_local_results(keep_going)[0])

    return wrapped_train_step
