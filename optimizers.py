"""Optimizers written out: SGD, momentum (optionally Nesterov), Adam.

Each is a tf.Module whose slot variables are created in `__init__` for the variable list it is
given (so a checkpoint restores them before the first step), with an `iterations` counter and
`apply(grads, lr)`, where `lr` is a scalar float32 tensor: a `tf.function` calling it with a new
learning rate every step never retraces. The update rules are those of Keras 3
(`keras/src/optimizers/sgd.py`, `adam.py`, `update_step`), so the tests compare them step for step:

    sgd        w <- w - lr * g
    momentum   v <- mu * v - lr * g;  w <- w + v                        (Polyak 1964)
    nesterov   v <- mu * v - lr * g;  w <- w + mu * v - lr * g          (Sutskever et al. 2013)
    adam       t = iterations + 1;  a = lr * sqrt(1 - b2^t) / (1 - b1^t)  (Kingma & Ba, 1412.6980)
               m <- m + (1 - b1) (g - m);  v <- v + (1 - b2) (g^2 - v)
               w <- w - a * m / (sqrt(v) + eps)

Note the conventions: the velocity v carries the learning rate (as in Sutskever et al.; PyTorch's
SGD keeps v = mu * v + g and multiplies by lr afterwards, which differs when lr changes), and Adam's
epsilon is added outside the square root, after the bias correction has been folded into the step
size a (the paper's "more efficient" ordering, end of its section 2), with eps = 1e-7 as in Keras.

`scale_loss(loss)` returns the loss whose gradient `apply` expects: the loss itself (Keras 3's
optimizers have the same method, `keras/src/optimizers/base_optimizer.py`). train.py's step calls
it, so that the fp16 wrapper of plumbing/step_wrappers.py can multiply the loss by its scale S.

Under a tf.distribute strategy `apply` runs on every replica and updates that replica's copy of
each variable; plumbing/step_wrappers.py gives every replica the same (averaged) gradients first,
so every copy of the weights and of the slots stays identical.

The model's variables are not part of an optimizer's state: `optimizer.variables` lists only its
slots and `iterations`, and a checkpoint stores the weights once, under the model.

`fused=True` does the same update with one TensorFlow kernel per variable
(`ResourceApplyGradientDescent`, `ResourceApplyKerasMomentum`, `ResourceApplyAdam`, the kernels
behind Keras 2's optimizers) instead of several element-wise ops: a speed option, tested equal to
the written-out formulas (fused Adam computes 1 - beta in float32, so it differs from Keras by
~1e-5 relative per step). The time of one `apply` either way is in docs/PERFORMANCE.md.
"""

import tensorflow as tf

from plumbing.errors import UserError

NAMES = ("sgd", "momentum", "nesterov", "adam")


def _slot(variable, kind):
    # float32 zeros shaped like the variable; the name says which slot of which variable.
    return tf.Variable(tf.zeros(variable.shape, tf.float32), trainable=False,
                       name=f"{kind}/{variable.name.split(':')[0]}")


class _Optimizer(tf.Module):
    """What every optimizer here shares: the variable list, `iterations`, the checks in `apply`."""

    # The model's variables belong to the model: `self.variables` walks the module's attributes,
    # so leave this one out of the walk (and out of the checkpoint, with `_no_dependency` below).
    _TF_MODULE_IGNORED_PROPERTIES = tf.Module._TF_MODULE_IGNORED_PROPERTIES | {"_params"}

    def __init__(self, variables, fused, name):
        super().__init__(name=name)
        self._params = self._no_dependency(tuple(variables))
        self.fused = fused
        # Number of finished updates; Adam's bias correction uses t = iterations + 1.
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")

    def scale_loss(self, loss):
        """The loss to differentiate for `apply`: the loss itself (a loss-scaling wrapper
        returns S * loss)."""
        return loss

    def apply(self, grads, lr):
        """One update of every variable: grads[i] is the gradient of variables[i]; lr [] float32."""
        grads = list(grads)
        if len(grads) != len(self._params):
            raise ValueError(f"{len(grads)} gradients for {len(self._params)} variables")
        for w, g in zip(self._params, grads):
            if g is None:  # tape.gradient gives None for a variable the loss does not use
                raise ValueError(f"no gradient for variable {w.name} {w.shape}")
        with tf.name_scope("optimizer"):  # op names say where time goes in a profile
            lr = tf.cast(lr, tf.float32)
            # Variables stay float32 under mixed precision; a gradient in another dtype is cast.
            self._update([tf.cast(g, w.dtype) for w, g in zip(self._params, grads)], lr)
            self.iterations.assign_add(1)


class SGD(_Optimizer):
    """SGD; heavy-ball momentum (Polyak 1964) when momentum > 0; Nesterov's with nesterov=True.

        momentum == 0:  w <- w - lr * g
        momentum  > 0:  v <- mu * v - lr * g
                        w <- w + v                   (nesterov=False, Polyak 1964)
                        w <- w + mu * v - lr * g     (nesterov=True)
    Nesterov momentum is Sutskever, Martens, Dahl and Hinton 2013 ("On the importance of
    initialization and momentum in deep learning", eq. 3-4) rewritten for the look-ahead point
    w + mu * v, as in Bengio, Boulanger-Lewandowski and Pascanu 2012 (arXiv 1212.0901).
    One slot per variable, `momentum/<name>` (the velocity v), created only when momentum > 0.
    """

    def __init__(self, variables, momentum=0.0, nesterov=False, fused=False, name="sgd"):
        super().__init__(variables, fused, name)
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.velocities = [_slot(w, "momentum") for w in self._params] if momentum else []

    def _update(self, grads, lr):
        if not self.momentum:
            for w, g in zip(self._params, grads):
                if self.fused:
                    tf.raw_ops.ResourceApplyGradientDescent(var=w.handle, alpha=lr, delta=g)
                else:
                    w.assign_sub(lr * g)
            return
        mu = tf.constant(self.momentum, tf.float32)
        for w, g, v in zip(self._params, grads, self.velocities):
            if self.fused:
                tf.raw_ops.ResourceApplyKerasMomentum(var=w.handle, accum=v.handle, lr=lr, grad=g,
                                                      momentum=mu, use_nesterov=self.nesterov)
                continue
            v.assign(mu * v - lr * g)
            w.assign_add(mu * v - lr * g if self.nesterov else v)


class Adam(_Optimizer):
    """Adam (Kingma & Ba 2014, arXiv 1412.6980), bias correction folded into the step size.

        t = iterations + 1
        a = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
        m <- m + (1 - beta_1) * (g - m)          (= beta_1 * m + (1 - beta_1) * g)
        v <- v + (1 - beta_2) * (g^2 - v)        (= beta_2 * v + (1 - beta_2) * g^2)
        w <- w - a * m / (sqrt(v) + epsilon)
    Two slots per variable, `m/<name>` and `v/<name>`. Compared with the paper's algorithm 1
    (m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t), w -= lr * m_hat / (sqrt(v_hat) + eps_hat))
    this is the same update with eps_hat = epsilon / sqrt(1 - b2^t) (the ordering of the paper's
    section 2, and Keras's).
    """

    def __init__(self, variables, beta_1=0.9, beta_2=0.999, epsilon=1e-7, fused=False,
                 name="adam"):
        super().__init__(variables, fused, name)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.m = [_slot(w, "m") for w in self._params]
        self.v = [_slot(w, "v") for w in self._params]

    def _update(self, grads, lr):
        t = tf.cast(self.iterations + 1, tf.float32)
        b1, b2 = tf.constant(self.beta_1), tf.constant(self.beta_2)
        b1_t, b2_t = tf.pow(b1, t), tf.pow(b2, t)  # beta^t, shared by all variables
        if self.fused:
            for w, g, m, v in zip(self._params, grads, self.m, self.v):
                tf.raw_ops.ResourceApplyAdam(var=w.handle, m=m.handle, v=v.handle,
                                             beta1_power=b1_t, beta2_power=b2_t, lr=lr,
                                             beta1=b1, beta2=b2, epsilon=self.epsilon, grad=g)
            return
        a = lr * tf.sqrt(1 - b2_t) / (1 - b1_t)
        # (1 - beta) in Python, as Keras does: float32(0.1), not float32(1) - float32(0.9).
        one_minus_b1, one_minus_b2 = 1 - self.beta_1, 1 - self.beta_2
        for w, g, m, v in zip(self._params, grads, self.m, self.v):
            m.assign_add((g - m) * one_minus_b1)
            v.assign_add((tf.square(g) - v) * one_minus_b2)
            w.assign_sub(m * a / (tf.sqrt(v) + self.epsilon))


def build(name, variables, momentum=0.9, beta_1=0.9, beta_2=0.999, epsilon=1e-7, fused=False):
    """The optimizer `name` (one of NAMES) for `variables`; momentum only for momentum/nesterov,
    the betas and epsilon only for adam."""
    if name == "sgd":
        return SGD(variables, momentum=0.0, fused=fused)
    if name == "momentum":
        return SGD(variables, momentum=momentum, fused=fused, name="momentum")
    if name == "nesterov":
        return SGD(variables, momentum=momentum, nesterov=True, fused=fused, name="nesterov")
    if name == "adam":
        return Adam(variables, beta_1, beta_2, epsilon, fused=fused)
    raise UserError(f"unknown optimizer {name!r}; choose one of {', '.join(NAMES)}")
