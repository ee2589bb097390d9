"""Batch normalisation by hand: the paper's formulas, and TensorFlow's and Keras's convention for
the statistics used at inference.

The paper, Ioffe & Szegedy 2015, "Batch Normalization: Accelerating Deep Network Training by
Reducing Internal Covariate Shift" (arXiv 1502.03167):

training    (Algorithm 1)  mu_B, var_B = mean and variance of the m values of a channel in the
                           mini-batch (all axes but the channel axis), var_B = 1/m sum (x - mu_B)^2
                           y = gamma * (x - mu_B) / sqrt(var_B + epsilon) + beta
                           and the backward pass through mu_B and var_B (section 3)
inference   (Algorithm 2)  once trained, averages over many training mini-batches of size m:
                           E[x] = E_B[mu_B],  Var[x] = m / (m - 1) * E_B[var_B]  (unbiased)
                           y = gamma / sqrt(Var[x] + epsilon) * x
                               + (beta - gamma * E[x] / sqrt(Var[x] + epsilon))

The convention this code follows instead for inference (TensorFlow's and Keras's
`BatchNormalization`): the statistics are exponential moving averages, updated at every training
step with the population (biased, divided by m) batch variance, and no m / (m - 1):

            moving_mean     = decay * moving_mean     + (1 - decay) * mu_B
            moving_variance = decay * moving_variance + (1 - decay) * var_B
inference:  y = gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta

They weigh the last batches most (a weight of (1 - decay) * decay^k for the batch k steps back, and
decay^t still on the initial 0 and 1 after t steps), and they follow the weights as training
changes them. Keras 3's `BatchNormalization` (`keras.src.layers.normalization.batch_normalization`)
does the same, so the two agree step for step (Keras 2's fused path put the m - 1 variance into its
moving average). m / (m - 1) is close to 1 after a conv layer (m = batch x height x width values
per channel). eval.py --recompute-bn-stats (`models/probes.py:recompute_bn_stats`) replaces the
moving averages by exact statistics over training images, the paper's average over the data (with
the population variance).

The normalisation is folded into one multiply-add over the tensor, as in Algorithm 2's last line:
    scale = gamma / sqrt(var + epsilon),  offset = beta - mu * scale,  y = x * scale + offset.
Statistics are computed in float32 whatever the input dtype (bfloat16 / float16 would lose the
mean of 2^17 values); the output has the input's dtype.

`test_batch_stats=True` is an educational switch: it reproduces the blog post "激活函数(relu,prelu,
elu,+BN)对比on cifar10" (All-CNN, relu/prelu/elu with and without BN), whose test-time graph also
normalised with the statistics of the test batch. Accuracy then depends on the test
batch (its size, its class mix): compare the two with eval.py to see why inference must use the
moving averages.

`fused=True` computes the same thing with TensorFlow's fused kernel (`FusedBatchNormV3`, called
through `tf.raw_ops`), a speed option tested equal to the written-out formulas.

Several devices (tf.distribute) and `sync=True`: the last section of this file, "Across replicas".
"""

import tensorflow as tf


class BatchNorm(tf.Module):
    """y = gamma * (x - mu) / sqrt(var + epsilon) + beta, with moving averages for inference."""

    def __init__(self, num_channels, decay=0.99, epsilon=1e-3, test_batch_stats=False,
                 data_format="NHWC", fused=False, name=None, sync=False):
        super().__init__(name=name)
        if fused and sync:
            raise ValueError("the fused kernel cannot synchronise statistics across replicas; "
                             "use fused=False with sync=True")
        self.decay, self.epsilon = decay, epsilon
        self.sync = sync  # statistics over all replicas of a tf.distribute strategy
        self.test_batch_stats = test_batch_stats
        self.data_format, self.fused = data_format, fused
        # All float32 [C], created here so a checkpoint can be restored before the first call.
        self.gamma = tf.Variable(tf.ones([num_channels]), name="gamma")
        self.beta = tf.Variable(tf.zeros([num_channels]), name="beta")
        # The moving averages: one copy per replica under tf.distribute, read outside the
        # replicas as their mean ("Across replicas" below).
        per_replica = dict(trainable=False, synchronization=tf.VariableSynchronization.ON_READ,
                           aggregation=tf.VariableAggregation.MEAN)
        self.moving_mean = tf.Variable(tf.zeros([num_channels]), name="moving_mean",
                                       **per_replica)
        self.moving_variance = tf.Variable(tf.ones([num_channels]), name="moving_variance",
                                           **per_replica)

    def _axes_and_shape(self, x):
        """Reduction axes and the broadcast shape of a [C] vector, for this layout and rank."""
        if x.shape.rank == 2:  # [N, C] after a dense layer
            return [0], [-1]
        if self.data_format == "NCHW":
            return [0, 2, 3], [-1, 1, 1]
        return [0, 1, 2], [-1]

    def __call__(self, x, training):
        with tf.name_scope("batch_norm"):  # op names say where time goes in a profile
            return self._normalize(tf.convert_to_tensor(x), training)

    def _normalize(self, x, training):
        if self.fused and not self.sync and x.shape.rank == 4:
            return self._fused(x, training)
        axes, shape = self._axes_and_shape(x)
        if not (training or self.test_batch_stats):
            # Inference: a fixed affine map per channel, from the moving averages.
            scale = self.gamma * tf.math.rsqrt(self.moving_variance + self.epsilon)  # [C]
            offset = self.beta - self.moving_mean * scale  # [C]
            return x * tf.cast(tf.reshape(scale, shape), x.dtype) + \
                tf.cast(tf.reshape(offset, shape), x.dtype)
        y, mean, variance = batch_normalize(x, tf.convert_to_tensor(self.gamma),
                                            tf.convert_to_tensor(self.beta), self.epsilon, axes,
                                            shape, self.sync)
        if training:
            self.moving_mean.assign(self.decay * self.moving_mean + (1 - self.decay) * mean)
            self.moving_variance.assign(self.decay * self.moving_variance
                                        + (1 - self.decay) * variance)
        return y

    def _fused(self, x, training):
        use_batch = training or self.test_batch_stats
        y, batch_mean, batch_var, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=self.gamma, offset=self.beta,
            mean=tf.zeros([0]) if use_batch else self.moving_mean,
            variance=tf.zeros([0]) if use_batch else self.moving_variance,
            epsilon=self.epsilon, data_format=self.data_format, is_training=use_batch)
        if training:
            # The kernel returns the n-1 (unbiased) variance; the moving average takes var_B / n.
            n = tf.cast(tf.size(x) // tf.shape(self.gamma)[0], tf.float32)
            population_var = batch_var * (n - 1) / n
            self.moving_mean.assign(self.decay * self.moving_mean + (1 - self.decay) * batch_mean)
            self.moving_variance.assign(self.decay * self.moving_variance
                                        + (1 - self.decay) * population_var)
        return y


def batch_normalize(x, gamma, beta, epsilon, axes, shape, sync=False):
    """Normalise with the batch's own statistics; the backward pass is the paper's (section 3).

    statistics: mu = mean(x), var = mean((x - mu)^2) over `axes` (n values per channel), by
               tf.nn.moments: one reduction for mu, one squared_difference and one reduction for var
    forward:   xhat = (x - mu) / sqrt(var + eps),  y = gamma * xhat + beta
               computed as y = x * scale + (beta - mu * scale),  scale = gamma / sqrt(var + eps)
    backward:  dbeta = sum(dy),  dgamma = sum(dy * xhat) = (sum(dy * x) - mu * dbeta) * inv_std
               (inv_std = 1 / sqrt(var + eps))
               dx = gamma / sqrt(var + eps) / n * (n * dy - dbeta - xhat * dgamma)
    About 12 passes over the tensor for forward and backward together (reductions included).

    `sync=True`: the statistics of the global batch over every replica, and the sums of the backward
    pass over every replica ("Across replicas" below); with one replica it changes nothing.

    Letting autodiff differentiate the forward formulas gives the same numbers (the tests compare
    with Keras) through about twice as many passes; written out, the backward pass is also the
    formula a reader can check against the paper.
    Returns y (x's dtype) and the batch mean and variance [C] (float32, for the moving averages).
    """

    @tf.custom_gradient
    def forward(x, gamma, beta):
        x32 = tf.cast(x, tf.float32)
        mean, variance = tf.nn.moments(x32, axes)  # [C] each
        n = tf.cast(tf.size(x32) // tf.size(mean), tf.float32)  # values per channel
        if sync:  # across replicas: the global batch's (below)
            mean, variance, n = global_moments(mean, variance, n)
        inv_std = tf.math.rsqrt(variance + epsilon)  # [C]
        scale = gamma * inv_std  # [C]
        y = x * tf.cast(tf.reshape(scale, shape), x.dtype) + \
            tf.cast(tf.reshape(beta - mean * scale, shape), x.dtype)

        def backward(dy, unused_dmean, unused_dvariance):
            # mean and variance only feed the moving averages: no gradient comes back through them.
            with tf.name_scope("batch_norm_grad"):
                dy32 = tf.cast(dy, tf.float32)
                dbeta = tf.reduce_sum(dy32, axes)  # [C], this replica's share
                dgamma = (tf.reduce_sum(dy32 * x32, axes) - mean * dbeta) * inv_std  # [C]
                total_dbeta, total_dgamma = dbeta, dgamma
                if sync:  # across replicas: the global batch's sums (below)
                    total_dbeta, total_dgamma = global_sums(dbeta, dgamma)
                # The paper's dx with xhat = (x - mu) * inv_std substituted, so that it is one
                # multiply-add per term over the tensor:  dx = dy * scale - x * k + c, with
                # k = scale * inv_std * dgamma / n  and  c = mu * k - scale * dbeta / n   [C].
                k = scale * inv_std * total_dgamma / n
                c = mean * k - scale * total_dbeta / n
                dx = dy32 * tf.reshape(scale, shape) - x32 * tf.reshape(k, shape) + \
                    tf.reshape(c, shape)
                return tf.cast(dx, x.dtype), dgamma, dbeta

        return (y, mean, variance), backward

    return forward(x, gamma, beta)


def layers_of(module):
    """Every BatchNorm inside `module` (e.g. to switch on `sync` for a whole model)."""
    return [m for m in module.submodules if isinstance(m, BatchNorm)]


# --------------------------------------------------------------------------------------------------
# Across replicas (tf.distribute): not in the paper
# --------------------------------------------------------------------------------------------------
# Under a tf.distribute strategy (plumbing/distribute.py) each replica normalises its share of the
# global batch with that share's statistics (TensorFlow's and Keras's default), and keeps its own
# moving averages: they are `ON_READ` variables with `MEAN` aggregation, so a checkpoint or an
# evaluation outside the replicas reads their mean over replicas. As the moving averages are
# linear in the batch statistics, that mean is the moving average of the mean of the per-replica
# means (= the global batch mean) and of the mean of the per-replica variances (smaller than the
# global batch variance by the variance of the per-replica means).
#
# `sync=True` (synchronised batch norm, e.g. Peng et al. 2018, MegDet, arXiv 1711.07240) normalises
# with the statistics of the global batch instead: every replica's (n, mu, var) are gathered (one
# all-gather) and combined (Chan, Golub and LeVeque 1979):
#     n = sum_r n_r,  mu = sum_r n_r mu_r / n,  var = sum_r n_r (var_r + (mu_r - mu)^2) / n
# and in the backward pass [dbeta, dgamma] are summed over replicas (one all-reduce), so every
# replica normalises with, and differentiates through, the statistics of the global batch. The
# dgamma and dbeta that batch_normalize returns come from this replica's dy only; the train step
# combines the replicas' gradients (plumbing/step_wrappers.py) into the global batch's. The moving
# averages are then the same on every replica and equal those of a single-device run on the same
# global batch.

def _replicas():
    """The replica context of a tf.distribute strategy with several replicas, else None."""
    context = tf.distribute.get_replica_context()
    return context if context is not None and context.num_replicas_in_sync > 1 else None


def global_moments(mean, variance, n):
    """(mean, variance, n) of the global batch from every replica's own: one all-gather."""
    context = _replicas()
    if context is None:
        return mean, variance, n
    local = tf.stack([tf.fill(tf.shape(mean), n), mean, variance])  # [3, C]
    gathered = context.all_gather(local[None], axis=0)  # [R, 3, C]
    n_r, mean_r, var_r = gathered[:, 0], gathered[:, 1], gathered[:, 2]  # [R, C] each
    total = tf.reduce_sum(n_r, 0)  # [C]
    global_mean = tf.reduce_sum(n_r * mean_r, 0) / total
    global_var = tf.reduce_sum(n_r * (var_r + tf.square(mean_r - global_mean)), 0) / total
    return global_mean, global_var, total


def global_sums(dbeta, dgamma):
    """dbeta and dgamma [C] summed over the replicas (one all-reduce of the two); unchanged
    with one replica."""
    both = tf.concat([dbeta, dgamma], 0)  # [2C]
    context = _replicas()
    if context is not None:
        both = context.all_reduce(tf.distribute.ReduceOp.SUM, both)
    total_dbeta, total_dgamma = tf.unstack(tf.reshape(both, [2, -1]))
    return total_dbeta, total_dgamma
