"""Layers: Conv2D, Dense, Dropout, SpatialDropout, pooling, and the kernels that get weight decay.

Every layer is a `tf.Module` whose variables are created in `__init__` with explicit shapes, drawn
from the model's `init_rng` (a tf.random.Generator) in construction order. Variables are float32;
each call casts them to the input's dtype (mixed precision).
"""

import math

import tensorflow as tf


def he_normal(rng, shape, fan_in):
    """He et al. 2015 (arXiv 1502.01852) init of standard deviation sqrt(2 / fan_in), as Keras'
    `he_normal`: a normal of std sqrt(2 / fan_in) / 0.8796 truncated at two of its standard
    deviations (tf.random's truncated_normal redraws values farther from 0). Truncation at 2 std
    leaves 0.8796 of the std, so the weights' std is sqrt(2 / fan_in); the paper's own N(0,
    2 / fan_in) is not truncated."""
    std = math.sqrt(2.0 / fan_in) / 0.87962566103423978
    return rng.truncated_normal(shape, stddev=std)


class Conv2D(tf.Module):
    """y = x * kernel (+ bias); kernel [k, k, in, out] (HWIO). The model passes use_bias=False
    where batch norm directly follows (its beta plays that role)."""

    def __init__(self, in_channels, out_channels, kernel_size, init_rng, stride=1, padding="SAME",
                 use_bias=True, data_format="NHWC", name=None):
        super().__init__(name=name)
        self.stride, self.padding, self.data_format = stride, padding, data_format
        shape = [kernel_size, kernel_size, in_channels, out_channels]
        self.kernel = tf.Variable(he_normal(init_rng, shape, kernel_size ** 2 * in_channels),
                                  name="kernel")
        self.bias = tf.Variable(tf.zeros([out_channels]), name="bias") if use_bias else None

    def __call__(self, x):
        y = tf.nn.conv2d(x, tf.cast(self.kernel, x.dtype), self.stride, self.padding,
                         data_format=self.data_format)
        if self.bias is not None:
            y = tf.nn.bias_add(y, tf.cast(self.bias, x.dtype), data_format=self.data_format)
        return y


class Dense(tf.Module):
    """y = x @ kernel + bias; kernel [in, out]."""

    def __init__(self, in_features, out_features, init_rng, use_bias=True, name=None):
        super().__init__(name=name)
        self.kernel = tf.Variable(he_normal(init_rng, [in_features, out_features], in_features),
                                  name="kernel")
        self.bias = tf.Variable(tf.zeros([out_features]), name="bias") if use_bias else None

    def __call__(self, x):
        y = tf.matmul(x, tf.cast(self.kernel, x.dtype))
        return y if self.bias is None else y + tf.cast(self.bias, x.dtype)


class Dropout:
    """Inverted dropout (Srivastava et al. 2014): training y = m * x / (1 - rate),
    m ~ Bernoulli(1 - rate) per element; inference y = x (the expectation)."""

    def __init__(self, rate, rng):
        self.rate, self.rng = rate, rng

    def mask_shape(self, x):
        return tf.shape(x)

    def __call__(self, x, training):
        if not training or self.rate == 0:
            return x
        keep = self.rng.uniform(self.mask_shape(x), dtype=tf.float32) >= self.rate
        return x * tf.cast(keep, x.dtype) * tf.cast(1.0 / (1.0 - self.rate), x.dtype)


class SpatialDropout(Dropout):
    """Spatial dropout (Tompson et al. 2015, arXiv 1411.4280): drops whole feature maps, one mask
    entry per (image, channel), because neighbouring pixels of a map are strongly correlated and
    dropping single pixels barely regularises a conv layer."""

    def __init__(self, rate, rng, data_format="NHWC"):
        super().__init__(rate, rng)
        self.data_format = data_format

    def mask_shape(self, x):
        s = tf.shape(x)
        if self.data_format == "NCHW":
            return tf.stack([s[0], s[1], 1, 1])
        return tf.stack([s[0], 1, 1, s[3]])


def max_pool(x, size=2, stride=2, data_format="NHWC"):
    return tf.nn.max_pool2d(x, size, stride, "VALID", data_format=data_format)


def avg_pool(x, size=2, stride=2, data_format="NHWC"):
    return tf.nn.avg_pool2d(x, size, stride, "VALID", data_format=data_format)


def global_avg_pool(x, data_format="NHWC"):
    """[N, H, W, C] -> [N, C] (mean over the spatial axes)."""
    return tf.reduce_mean(x, [2, 3] if data_format == "NCHW" else [1, 2])


def decay_kernels(module):
    """The variables that get weight decay: every variable named `kernel` (conv and dense), never
    biases, batch-norm gamma / beta, or PReLU alpha."""
    return [v for v in module.trainable_variables if v.name.split("/")[-1].split(":")[0] ==
            "kernel"]
