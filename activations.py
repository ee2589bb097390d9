"""Activation functions, each written out in TF ops, each called as `act(x, training)`.

    act = make(name, num_channels, rng, **params)      # the one registry the scripts use

| name      | training                                   | inference (= expectation of training) |
| --------- | ------------------------------------------ | ------------------------------------- |
| relu      | max(x, 0)                                  | same                                  |
| lrelu     | max(x, leak * x)                           | same                                  |
| prelu     | relu(x) + alpha_c * (x - |x|) / 2          | same (alpha_c learned per channel)    |
| elu       | x if x > 0 else alpha * (exp(x) - 1)       | same                                  |
| rrelu     | x if x >= 0 else x / a,  a ~ U(l, u)        | x if x >= 0 else x / ((l + u) / 2)    |
| dropact   | relu(x) w.p. p, else x (per element)       | (1 - p) * x + p * relu(x)             |
| gaaf-relu | relu(x) + g(x) * sigmoid(x + shift)        | same                                  |
| gaaf-tanh | tanh(x) + g(x) * exp(-x^2 / 3)             | same                                  |
| tanh      | tanh(x)                                    | same                                  |
| sigmoid   | 1 / (1 + exp(-x))                          | same                                  |

Random activations (rrelu, dropact) draw only from the `rng` they are given: the model's run-time
generator, whose state is in every checkpoint. They never touch the weight-initialisation
generator, so a seed gives the same initial weights whatever the activation.
Parameters are cast to `x.dtype`, so every activation runs in float32, bfloat16 and float16.
"""

import tensorflow as tf

from errors import UserError

NAMES = ("relu", "lrelu", "prelu", "elu", "rrelu", "dropact", "gaaf-relu", "gaaf-tanh", "tanh",
         "sigmoid")


def relu(x, training=False):
    """ReLU (Nair & Hinton 2010): max(x, 0).

    TF's own op: one kernel forward and one (ReluGrad) backward. Written as tf.maximum(x, 0) it is
    the same function but costs three times as much in a profile (a zeros tensor, Maximum, and a
    Select-based gradient), and relu is the most common op of every network here.
    """
    return tf.nn.relu(x)


class LeakyReLU:
    """Leaky ReLU (Maas et al. 2013): max(x, leak * x), 0 < leak < 1.

    The default leak 0.2 follows the seed blog post (and `tf.nn.leaky_relu`'s default); the
    original paper used 0.01.
    """

    def __init__(self, leak=0.2):
        self.leak = leak

    def __call__(self, x, training=False):
        return tf.maximum(x, tf.cast(self.leak, x.dtype) * x)


class PReLU(tf.Module):
    """Parametric ReLU (He et al. 2015, arXiv 1502.01852): relu(x) + alpha_c * (x - |x|) / 2.

    (x - |x|) / 2 is min(x, 0), so negative inputs are scaled by a learned slope per channel.
    `alpha` [C] starts at 0.25 (the paper's choice) and is not weight-decayed (the paper: decay
    pushes it to zero); the project decays only variables named `kernel`.
    """

    def __init__(self, num_channels, init=0.25, channel_axis=-1, name=None):
        super().__init__(name=name)
        self.channel_axis = channel_axis
        self.alpha = tf.Variable(tf.fill([num_channels], float(init)), name="alpha")  # [C]

    def __call__(self, x, training=False):
        alpha = tf.cast(self.alpha, x.dtype)
        if self.channel_axis == 1:  # NCHW: broadcast [C] over [N, C, H, W]
            alpha = tf.reshape(alpha, [-1, 1, 1])
        return relu(x) + alpha * (x - tf.abs(x)) * tf.cast(0.5, x.dtype)


class ELU:
    """ELU (Clevert et al. 2015, arXiv 1511.07289): x if x > 0 else alpha * (exp(x) - 1).

    expm1 keeps exp(x) - 1 accurate near 0; the exp is taken of min(x, 0) so the branch not
    taken never overflows (tf.where evaluates both branches, and an inf there gives nan grads).
    """

    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def __call__(self, x, training=False):
        negative = tf.cast(self.alpha, x.dtype) * tf.math.expm1(tf.minimum(x, tf.zeros_like(x)))
        return tf.where(x > 0, x, negative)


class RReLU:
    """Randomized leaky ReLU (Xu et al. 2015, arXiv 1505.00853).

    training:   y = x if x >= 0 else x / a,  a ~ U(lower, upper) per element per call
    inference:  y = x if x >= 0 else x / ((lower + upper) / 2)        (l=3, u=8: x / 5.5)

    This is the paper's convention (the NDSB winner's): the slope is 1/a with a uniform. PyTorch
    (`torch.nn.RReLU`) instead draws the slope itself, slope ~ U(1/8, 1/3), and uses the mean slope
    (1/8 + 1/3) / 2 = 11/48 ~ 0.229 at inference, while here it is 1/5.5 = 2/11 ~ 0.182. The
    expectations differ too: E[1/a] = ln(u/l) / (u - l) ~ 0.196 here vs 11/48 in PyTorch. The
    paper's inference rule divides by the mean of a, which is not the mean of the training slope:
    this project follows the paper, as the test shows.
    """

    def __init__(self, rng, lower=3.0, upper=8.0):
        self.rng, self.lower, self.upper = rng, lower, upper

    def __call__(self, x, training=False):
        if training:
            a = self.rng.uniform(tf.shape(x), self.lower, self.upper, dtype=tf.float32)
            a = tf.cast(a, x.dtype)
        else:
            a = tf.cast((self.lower + self.upper) / 2.0, x.dtype)
        return tf.where(x >= 0, x, x / a)


class DropActivation:
    """Drop-Activation (Liang et al. 2018, arXiv 1811.05850).

    training:   per element, keep the ReLU with probability p, drop it (identity) otherwise:
                y = m * relu(x) + (1 - m) * x,   m ~ Bernoulli(p)
    inference:  the expectation, y = p * relu(x) + (1 - p) * x: a leaky ReLU of slope 1 - p
                (0.05 for p = 0.95).

    Note: the seed repository's README gives the inference slope as 1 / (1 - p); that is wrong
    (it would be 20 for p = 0.95) and its own code uses 1 - p, as here.
    """

    def __init__(self, rng, p=0.95):
        self.rng, self.p = rng, p

    def __call__(self, x, training=False):
        p = tf.cast(self.p, x.dtype)
        if training:
            keep = tf.cast(self.rng.uniform(tf.shape(x), dtype=tf.float32) < self.p, x.dtype)
            return keep * relu(x) + (1 - keep) * x
        return p * relu(x) + (1 - p) * x


class GAAF:
    """Gradient-acceleration activation functions (Hahn & Choi 2018, arXiv 1806.09783).

        g(x) = (x*K - floor(x*K) - 0.5) / K             ("floor", the paper; K = 10000)
        gaaf-relu(x) = relu(x) + g(x) * sigmoid(x + shift)        (shift = 4)
        gaaf-tanh(x) = tanh(x) + g(x) * exp(-x^2 / 3)

    g is a sawtooth of height 1/K: it moves the value by less than 1/(2K), but floor has zero
    gradient, so g'(x) = 1 almost everywhere and the gradient gains the shape function s(x)
    (sigmoid(x + shift) or exp(-x^2/3)) exactly where relu / tanh saturate and their own gradient
    vanishes. That is the "gradient acceleration".

    variant "round": g(x) = (|x*K - round(x*K)| - 0.5) / K, as in the GAAF-Keras repository. It is a
    different function: a triangle wave in [-0.5/K, 0] whose slope is +1 or -1 in alternating
    half-periods, so the added gradient flips sign instead of being always +s(x).

    Precision: in float32, x*K for |x| > ~800 has no fractional digits left and g is constant
    -0.5/K with zero gradient; below that, the sawtooth is resolved. bfloat16 / float16 lose it much
    earlier, so g is computed in float32 and cast back.
    """

    def __init__(self, kind, k=1e4, shift=4.0, variant="floor"):
        if variant not in ("floor", "round"):
            raise UserError(f"unknown gaaf variant {variant!r}; use floor or round")
        self.kind, self.k, self.shift, self.variant = kind, k, shift, variant

    def g(self, x):
        xk = tf.cast(x, tf.float32) * self.k
        if self.variant == "floor":
            saw = xk - tf.stop_gradient(tf.floor(xk)) - 0.5
        else:
            saw = tf.abs(xk - tf.stop_gradient(tf.round(xk))) - 0.5
        return tf.cast(saw / self.k, x.dtype)

    def __call__(self, x, training=False):
        if self.kind == "relu":
            return relu(x) + self.g(x) * tf.sigmoid(x + tf.cast(self.shift, x.dtype))
        return tf.tanh(x) + self.g(x) * tf.exp(-tf.square(x) / tf.cast(3.0, x.dtype))


def tanh(x, training=False):
    return tf.tanh(x)


def sigmoid(x, training=False):
    return tf.sigmoid(x)


def make(name, num_channels, rng, leak=0.2, elu_alpha=1.0, prelu_init=0.25, rrelu_lower=3.0,
         rrelu_upper=8.0, dropact_p=0.95, gaaf_k=1e4, gaaf_shift=4.0, gaaf_variant="floor",
         channel_axis=-1, name_scope=None):
    """The activation `name` for a layer with `num_channels` channels, as a callable (x, training).

    `rng` is the model's run-time tf.random.Generator (used by rrelu and dropact only).
    """
    if name == "relu":
        return relu
    if name == "lrelu":
        return LeakyReLU(leak)
    if name == "prelu":
        return PReLU(num_channels, prelu_init, channel_axis, name=name_scope)
    if name == "elu":
        return ELU(elu_alpha)
    if name == "rrelu":
        return RReLU(rng, rrelu_lower, rrelu_upper)
    if name == "dropact":
        return DropActivation(rng, dropact_p)
    if name == "gaaf-relu":
        return GAAF("relu", gaaf_k, gaaf_shift, gaaf_variant)
    if name == "gaaf-tanh":
        return GAAF("tanh", gaaf_k, gaaf_shift, gaaf_variant)
    if name == "tanh":
        return tanh
    if name == "sigmoid":
        return sigmoid
    raise UserError(f"unknown activation {name!r}; choose one of {', '.join(NAMES)}")
