"""Activation functions, each written out in TF ops, each called as `act(x, training)`.

    act = make(name, num_channels, rng, **params)      # the one registry the scripts use
    act = make("elu", 96, rng, elu_alpha=1.0)          # params: the activation's own only

Names and parameter defaults come from `plumbing/choices.py` (ACTIVATIONS, ACTIVATION_PARAMS). A
network holds each layer's activation in an `Activation` (a tf.Module: a name scope for profiles,
PReLU's alpha in checkpoints).

| name      | training                                   | inference                              |
| --------- | ------------------------------------------ | -------------------------------------- |
| relu      | max(x, 0)                                  | same                                   |
| lrelu     | max(x, leak * x)                           | same                                   |
| prelu     | relu(x) + alpha_c * (x - |x|) / 2          | same (alpha_c learned per channel)     |
| elu       | x if x > 0 else alpha * (exp(x) - 1)       | same                                   |
| rrelu     | x if x >= 0 else x / a,  a ~ U(l, u)        | x if x >= 0 else x / ((l + u) / 2)     |
| dropact   | relu(x) w.p. p, else x (per element)       | p * relu(x) + (1 - p) * x              |
| gaaf-relu | relu(x) + g(x) * sigmoid(x + shift)        | same                                   |
| gaaf-tanh | tanh(x) + g(x) * exp(-x^2 / 3)             | same                                   |
| tanh      | tanh(x)                                    | same                                   |
| sigmoid   | 1 / (1 + exp(-x))                          | same                                   |
| silu      | x * sigmoid(x)                             | same                                   |
| gelu      | x * Phi(x) = x * (1 + erf(x / sqrt 2)) / 2 | same                                   |
| gelu-tanh | x * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2 | same                            |
| mish      | x * tanh(softplus(x))                      | same                                   |
| selu      | scale * (x if x > 0 else alpha (exp(x) - 1)) | same                                 |
| softplus  | log(1 + exp(x))                            | same                                   |

The two random activations differ at inference. dropact's inference rule is the expectation of
its training function (the mask's mean is p). rrelu's is the RReLU paper's convention, dividing by
the mean of a, which is not the expectation: E[x / a] = x * E[1/a] = x * ln(u/l) / (u - l)
(0.196 x for l=3, u=8) against x / ((l + u) / 2) = 0.182 x.

Random activations (rrelu, dropact) draw only from the `rng` they are given: the model's run-time
generator, whose state is in every checkpoint. They never touch the weight-initialisation
generator, so a seed gives the same initial weights whatever the activation.

Low precision: every derived constant (1 - p, (l + u) / 2, ...) is formed in Python float64 and
cast once to `x.dtype`, so bfloat16 and float16 round the final constant once instead of
rounding its parts (1 - bfloat16(0.95) is 0.0508, not 0.05).
"""

import math

import tensorflow as tf

from plumbing.choices import ACTIVATION_DEFAULTS, ACTIVATION_PARAMS, ACTIVATIONS
from plumbing.errors import UserError

NAMES = ACTIVATIONS


def _const(value, dtype):
    """A Python number as a constant of `dtype`: one rounding, of the final value."""
    return tf.constant(float(value), dtype)


def relu(x, training=False):
    """ReLU (Nair & Hinton 2010): max(x, 0).

    TF's own op: one kernel forward and one (ReluGrad) backward. Written as tf.maximum(x, 0) it is
    the same function with more ops (a zeros tensor, Maximum, and a Select-based gradient), and
    relu is the most common op of every network here.
    """
    return tf.nn.relu(x)


class LeakyReLU:
    """Leaky ReLU (Maas et al. 2013): max(x, leak * x), 0 < leak < 1.

    The default leak 0.2 is `tf.nn.leaky_relu`'s default; Maas et al. used 0.01.
    """

    def __init__(self, leak=ACTIVATION_DEFAULTS["leak"]):
        self.leak = leak

    def __call__(self, x, training=False):
        return tf.maximum(x, _const(self.leak, x.dtype) * x)


class PReLU(tf.Module):
    """Parametric ReLU (He et al. 2015, arXiv 1502.01852): relu(x) + alpha_c * (x - |x|) / 2.

    (x - |x|) / 2 is min(x, 0), so negative inputs are scaled by a learned slope per channel.
    `alpha` [C] starts at 0.25 (the paper's choice) and is not weight-decayed (the paper: decay
    pushes it to zero); the project decays only variables named `kernel`.

    The channel axis follows the rank of the input: a 4-D input [N, H, W, C] or [N, C, H, W] has
    its channels at `channel_axis` (-1 or 1); a 2-D input [N, C] (a dense layer) at its last axis.
    """

    def __init__(self, num_channels, init=ACTIVATION_DEFAULTS["prelu_init"], channel_axis=-1,
                 name=None):
        super().__init__(name=name)
        self.channel_axis = channel_axis
        self.alpha = tf.Variable(tf.fill([num_channels], float(init)), name="alpha")  # [C]

    def __call__(self, x, training=False):
        alpha = tf.cast(self.alpha, x.dtype)  # [C]: broadcasts over a last channel axis
        if x.shape.rank == 4 and self.channel_axis == 1:  # NCHW: [C, 1, 1] against [N, C, H, W]
            alpha = tf.reshape(alpha, [-1, 1, 1])
        return relu(x) + alpha * (x - tf.abs(x)) * _const(0.5, x.dtype)


class ELU:
    """ELU (Clevert et al. 2015, arXiv 1511.07289): x if x > 0 else alpha * (exp(x) - 1).

    expm1 keeps exp(x) - 1 accurate near 0; the exp is taken of min(x, 0) so the branch not
    taken never overflows (tf.where evaluates both branches, and an inf there gives nan grads).
    """

    def __init__(self, alpha=ACTIVATION_DEFAULTS["elu_alpha"]):
        self.alpha = alpha

    def __call__(self, x, training=False):
        negative = _const(self.alpha, x.dtype) * tf.math.expm1(tf.minimum(x, tf.zeros_like(x)))
        return tf.where(x > 0, x, negative)


class RReLU:
    """Randomized leaky ReLU (Xu et al. 2015, arXiv 1505.00853).

    training:   y = x if x >= 0 else x / a,  a ~ U(lower, upper) per element per call
    inference:  y = x if x >= 0 else x / ((lower + upper) / 2)        (l=3, u=8: x / 5.5)

    This is the paper's convention (from the Kaggle NDSB winner): the slope is 1/a with a uniform,
    and inference divides by the mean of a. That is not the expectation of training:
    E[1/a] = ln(u/l) / (u - l) = 0.196 for l=3, u=8, against 2 / (l + u) = 0.182.
    PyTorch (`torch.nn.RReLU(lower, upper)`) draws the slope itself, slope ~ U(lower, upper), and
    uses the mean slope at inference; with lower=1/8, upper=1/3 that is 11/48 = 0.229. The Keras
    code of JGuillaumin/drop_activation_tf (`randomized_relu.py`) draws the slope uniformly in
    (1/u, 1/l), as PyTorch does, and uses the paper's inference slope 1 / ((l + u) / 2).
    """

    def __init__(self, rng, lower=ACTIVATION_DEFAULTS["rrelu_lower"],
                 upper=ACTIVATION_DEFAULTS["rrelu_upper"]):
        self.rng, self.lower, self.upper = rng, lower, upper

    def __call__(self, x, training=False):
        if training:
            a = tf.cast(self.rng.uniform(tf.shape(x), self.lower, self.upper, dtype=tf.float32),
                        x.dtype)
            return tf.where(x >= 0, x, x / a)
        slope = _const(1.0 / ((self.lower + self.upper) / 2.0), x.dtype)
        return tf.where(x >= 0, x, x * slope)


class DropActivation:
    """Drop-Activation (Liang et al. 2018, arXiv 1811.05850).

    training:   per element, keep the ReLU with probability p, drop it (identity) otherwise:
                y = m * relu(x) + (1 - m) * x,   m ~ Bernoulli(p)
    inference:  the expectation, y = p * relu(x) + (1 - p) * x = max(x, (1 - p) * x): a leaky ReLU
                of slope 1 - p (0.05 for p = 0.95).

    The README of JGuillaumin/drop_activation_tf gives the inference slope as 1 / (1 - p); that
    would be 20 for p = 0.95. Its code (`drop_activation.py`) uses 1 - p, as here.
    """

    def __init__(self, rng, p=ACTIVATION_DEFAULTS["dropact_p"]):
        self.rng, self.p = rng, p

    def __call__(self, x, training=False):
        if training:
            keep = tf.cast(self.rng.uniform(tf.shape(x), dtype=tf.float32) < self.p, x.dtype)
            return keep * relu(x) + (1 - keep) * x
        return tf.maximum(x, _const(1.0 - self.p, x.dtype) * x)  # slope 1 - p, formed in Python


class GAAF:
    """Gradient-acceleration activation functions (Hahn & Choi 2018, arXiv 1806.09783).

        g(x) = (x*K - floor(x*K) - 0.5) / K             ("floor", the paper; K = 10000)
        gaaf-relu(x) = relu(x) + g(x) * s(x),  s(x) = sigmoid(x + shift)     (shift = 4)
        gaaf-tanh(x) = tanh(x) + g(x) * s(x),  s(x) = exp(-x^2 / 3)

    g is a sawtooth of height 1/K: it moves the value by at most 1/(2K). floor is held constant
    for differentiation (`stop_gradient`), so g'(x) = 1 and the gradient is
    f'(x) + s(x) + g(x) s'(x) = f'(x) + s(x) + O(1/K): s(x) is added everywhere, not only where
    f saturates. For gaaf-relu, sigmoid(x + 4) is close to 1 wherever relu is active too, so the
    gradient there is about 2; for x < 0, where relu's gradient is 0, it is sigmoid(x + 4)
    (0.98 near 0, 0.5 at -4, 0.02 at -8). For gaaf-tanh, s peaks at 1 at x = 0 and is
    exp(-4/3) = 0.26 at |x| = 2, where tanh's own gradient is 0.07.

    variant "round": g(x) = (|x*K - round(x*K)| - 0.5) / K, the line left commented out in
    kobiso/GAAF-keras (`utils.py`; its active code uses floor). It is a different function: a
    triangle wave in [-0.5/K, 0] whose slope is +1 or -1 in alternating half-periods, so the added
    gradient flips sign instead of being always +s(x).

    Precision: x*K is formed in float32 (bfloat16 / float16 would lose the sawtooth for small x),
    and g is cast back. For |x|*K >= 2^23 (|x| >= 839 with K = 1e4) float32 has no fractional
    digits left, so the value of g stops resolving (it is the constant -0.5/K); its gradient
    stays 1 at every magnitude, since floor is outside the gradient.
    """

    def __init__(self, kind, k=ACTIVATION_DEFAULTS["gaaf_k"],
                 shift=ACTIVATION_DEFAULTS["gaaf_shift"],
                 variant=ACTIVATION_DEFAULTS["gaaf_variant"]):
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
            return relu(x) + self.g(x) * tf.sigmoid(x + _const(self.shift, x.dtype))
        return tf.tanh(x) + self.g(x) * tf.exp(-tf.square(x) * _const(1.0 / 3.0, x.dtype))


def tanh(x, training=False):
    """tanh(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x))."""
    return tf.tanh(x)


def sigmoid(x, training=False):
    """sigmoid(x) = 1 / (1 + exp(-x))."""
    return tf.sigmoid(x)


def silu(x, training=False):
    """SiLU / Swish (Ramachandran et al. 2017, arXiv 1710.05941, with beta = 1; the same function
    as the SiLU of Elfwing et al. 2017, arXiv 1702.03118): x * sigmoid(x). TF: `tf.nn.silu`."""
    return x * tf.sigmoid(x)


def gelu(x, training=False):
    """GELU (Hendrycks & Gimpel 2016, arXiv 1606.08415), exact form: x * Phi(x), Phi the standard
    normal CDF, = x * (1 + erf(x / sqrt(2))) / 2 = x * erfc(-x / sqrt(2)) / 2.
    TF: `tf.nn.gelu(x, approximate=False)`.

    Written with erfc: for x < -3, 1 + erf(x / sqrt(2)) cancels to 0 in bfloat16 / float16.
    """
    return x * tf.math.erfc(-x * _const(1 / math.sqrt(2.0), x.dtype)) * _const(0.5, x.dtype)


def gelu_tanh(x, training=False):
    """GELU, the paper's tanh approximation (Hendrycks & Gimpel 2016, arXiv 1606.08415):
    x * (1 + tanh(z)) / 2,  z = sqrt(2 / pi) * (x + 0.044715 x^3).
    TF: `tf.nn.gelu(x, approximate=True)`.

    Written as x * sigmoid(2z), the same function ((1 + tanh(z)) / 2 = sigmoid(2z)), because
    1 + tanh(z) cancels to 0 for z << 0 in bfloat16 / float16.
    """
    z = _const(math.sqrt(2 / math.pi), x.dtype) * (x + _const(0.044715, x.dtype) * x * x * x)
    return x * tf.sigmoid(z + z)


def softplus(x, training=False):
    """softplus(x) = log(1 + exp(x)) (Dugas et al. 2001), written as the overflow-free
    max(x, 0) + log1p(exp(-|x|)). TF: `tf.nn.softplus`."""
    return tf.nn.relu(x) + tf.math.log1p(tf.exp(-tf.abs(x)))


def mish(x, training=False):
    """Mish (Misra 2019, arXiv 1908.08681): x * tanh(softplus(x))."""
    return x * tf.tanh(softplus(x))


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def selu(x, training=False):
    """SELU (Klambauer et al. 2017, "Self-Normalizing Neural Networks", arXiv 1706.02515):
    scale * (x if x > 0 else alpha * (exp(x) - 1)), alpha = 1.6733, scale = 1.0507 (the paper's
    fixed point for zero mean, unit variance). TF: `tf.nn.selu`.

    The self-normalising property assumes LeCun-normal weights, N(0, 1 / fan_in), and no batch
    norm; this project initialises every network He-normal (std sqrt(2 / fan_in)), for every
    activation (so a seed gives the same weights whatever the activation).
    """
    negative = _const(SELU_SCALE * SELU_ALPHA, x.dtype) * tf.math.expm1(
        tf.minimum(x, tf.zeros_like(x)))
    return tf.where(x > 0, _const(SELU_SCALE, x.dtype) * x, negative)


FUNCTIONS = {"relu": relu, "tanh": tanh, "sigmoid": sigmoid, "silu": silu, "gelu": gelu,
             "gelu-tanh": gelu_tanh, "mish": mish, "selu": selu, "softplus": softplus}


def make(name, num_channels, rng, channel_axis=-1, name_scope=None, **params):
    """The activation `name` for a layer with `num_channels` channels, as a callable (x, training).

    `params` are the activation's own parameters only (choices.ACTIVATION_PARAMS[name], named as
    train.py's flags: make("elu", ..., elu_alpha=1.0)); those not given take their defaults.
    `rng` is the model's run-time tf.random.Generator (used by rrelu and dropact only).
    `channel_axis` is where a 4-D input keeps its channels (PReLU only).
    """
    if name not in NAMES:
        raise UserError(f"unknown activation {name!r}; choose one of {', '.join(NAMES)}")
    own = ACTIVATION_PARAMS.get(name, {})
    if set(params) - set(own):
        raise UserError(f"activation {name} takes no parameter(s) "
                        f"{', '.join(sorted(set(params) - set(own)))}; its own: "
                        f"{', '.join(own) or 'none'}")
    p = dict(own, **params)
    if name in FUNCTIONS:
        return FUNCTIONS[name]
    if name == "lrelu":
        return LeakyReLU(p["leak"])
    if name == "prelu":
        return PReLU(num_channels, p["prelu_init"], channel_axis, name=name_scope)
    if name == "elu":
        return ELU(p["elu_alpha"])
    if name == "rrelu":
        return RReLU(rng, p["rrelu_lower"], p["rrelu_upper"])
    if name == "dropact":
        return DropActivation(rng, p["dropact_p"])
    return GAAF(name[5:], p["gaaf_k"], p.get("gaaf_shift", ACTIVATION_DEFAULTS["gaaf_shift"]),
                p["gaaf_variant"])  # gaaf-relu, gaaf-tanh (tanh has no shift)


class Activation(tf.Module):
    """A layer's activation: `fn` (from `make`) called as fn(x, training) under the name scope
    "activation", so that a profile attributes its ops (forward and gradient) to activations.

    The models hold one per layer. `fn` is tracked, so PReLU's alpha is in checkpoints (at
    .../fn/alpha).
    """

    def __init__(self, fn):
        super().__init__(name="activation")
        self.fn = fn

    def __call__(self, x, training):
        with tf.name_scope("activation"):
            return self.fn(x, training)
