"""Optimizers written out: SGD, momentum (optionally Nesterov), Adam.

Each is a tf.Module whose slot variables are created in `__init__` for the variable list it is
given (so a checkpoint restores them before the first step), with an `iterations` counter and
`apply(grads, lr)`, where `lr` is a scalar float32 tensor: a `tf.function` calling it with a new
learning rate every step never retraces. The update rules follow Keras 3 (`keras.optimizers`), so
the tests compare them step for step:

    sgd        w <- w - lr * g
    momentum   v <- mu * v - lr * g;  w <- w + v                        (Polyak 1964)
    nesterov   v <- mu * v - lr * g;  w <- w + mu * v - lr * g          (Sutskever et al. 2013)
    adam       m <- m + (1 - b1) (g - m);  v <- v + (1 - b2) (g^2 - v)   (Kingma & Ba, 1412.6980)
               t = iterations + 1;  a = lr * sqrt(1 - b2^t) / (1 - b1^t)
               w <- w - a * m / (sqrt(v) + eps)
"""

import tensorflow as tf

from errors import UserError

NAMES = ("sgd", "momentum", "nesterov", "adam")


def _slot(variable, kind):
    # float32 zeros shaped like the variable; the name says which slot of which variable.
    return tf.Variable(tf.zeros(variable.shape, tf.float32), trainable=False,
                       name=f"{kind}/{variable.name.split(':')[0]}")


class SGD(tf.Module):
    """Plain SGD, or momentum SGD when momentum > 0 (Nesterov's variant with nesterov=True)."""

    def __init__(self, variables, momentum=0.0, nesterov=False, name="sgd"):
        super().__init__(name=name)
        self.variables_ = list(variables)
        self.momentum, self.nesterov = momentum, nesterov
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")
        self.velocities = [_slot(v, "momentum") for v in self.variables_] if momentum else []

    def apply(self, grads, lr):
        with tf.name_scope("optimizer"):
            self._apply(grads, lr)

    def _apply(self, grads, lr):
        lr = tf.cast(lr, tf.float32)
        if not self.momentum:
            for w, g in zip(self.variables_, grads):
                w.assign_sub(lr * g)
        else:
            mu = tf.constant(self.momentum, tf.float32)
            for w, g, v in zip(self.variables_, grads, self.velocities):
                v.assign(mu * v - lr * g)
                w.assign_add(mu * v - lr * g if self.nesterov else v)
        self.iterations.assign_add(1)


class Adam(tf.Module):
    """Adam with Keras 3's bias correction folded into the step size."""

    def __init__(self, variables, beta_1=0.9, beta_2=0.999, epsilon=1e-7, name="adam"):
        super().__init__(name=name)
        self.variables_ = list(variables)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")
        self.m = [_slot(v, "m") for v in self.variables_]
        self.v = [_slot(v, "v") for v in self.variables_]

    def apply(self, grads, lr):
        with tf.name_scope("optimizer"):
            self._apply(grads, lr)

    def _apply(self, grads, lr):
        lr = tf.cast(lr, tf.float32)
        t = tf.cast(self.iterations + 1, tf.float32)
        b1, b2 = tf.constant(self.beta_1), tf.constant(self.beta_2)
        step_size = lr * tf.sqrt(1 - tf.pow(b2, t)) / (1 - tf.pow(b1, t))
        for w, g, m, v in zip(self.variables_, grads, self.m, self.v):
            m.assign_add((g - m) * (1 - b1))
            v.assign_add((tf.square(g) - v) * (1 - b2))
            w.assign_sub(step_size * m / (tf.sqrt(v) + self.epsilon))
        self.iterations.assign_add(1)


def build(name, variables, momentum=0.9, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    if name == "sgd":
        return SGD(variables, momentum=0.0)
    if name == "momentum":
        return SGD(variables, momentum=momentum)
    if name == "nesterov":
        return SGD(variables, momentum=momentum, nesterov=True)
    if name == "adam":
        return Adam(variables, beta_1, beta_2, epsilon)
    raise UserError(f"unknown optimizer {name!r}; choose one of {', '.join(NAMES)}")
