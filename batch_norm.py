"""Batch normalisation by hand (Ioffe & Szegedy 2015, arXiv 1502.03167).

training:   mu_B, var_B = mean and (population) variance of x over all axes but the channel axis
            y = gamma * (x - mu_B) / sqrt(var_B + epsilon) + beta
            moving_mean     = decay * moving_mean     + (1 - decay) * mu_B
            moving_variance = decay * moving_variance + (1 - decay) * var_B
inference:  y = gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta

The moving variance receives the population batch variance (divided by n, not n - 1), as Keras 3's
`BatchNormalization` does (`keras.src.layers.normalization.batch_normalization`; Keras 2's fused
path used n - 1), so the two agree step for step.

The normalisation is folded into one multiply-add over the tensor:
    scale = gamma / sqrt(var + epsilon),  offset = beta - mu * scale,  y = x * scale + offset.
Statistics are computed in float32 whatever the input dtype (bfloat16 / float16 would lose the
mean of 2^17 values); the output has the input's dtype.

`test_batch_stats=True` is an educational switch: it reproduces the seed blog post, whose test-time
graph also normalised with the statistics of the test batch. Accuracy then depends on the test
batch (its size, its class mix): compare the two with eval.py to see why inference must use the
moving averages.

`fused=True` computes the same thing with TensorFlow's fused kernel (`FusedBatchNormV3`), a speed
option tested equal to the written-out formulas.
"""

import tensorflow as tf


class BatchNorm(tf.Module):
    """y = gamma * (x - mu) / sqrt(var + epsilon) + beta, with moving averages for inference."""

    def __init__(self, num_channels, decay=0.99, epsilon=1e-3, test_batch_stats=False,
                 data_format="NHWC", fused=False, name=None):
        super().__init__(name=name)
        self.decay, self.epsilon = decay, epsilon
        self.test_batch_stats = test_batch_stats
        self.data_format, self.fused = data_format, fused
        # All float32 [C], created here so a checkpoint can be restored before the first call.
        self.gamma = tf.Variable(tf.ones([num_channels]), name="gamma")
        self.beta = tf.Variable(tf.zeros([num_channels]), name="beta")
        self.moving_mean = tf.Variable(tf.zeros([num_channels]), trainable=False,
                                       name="moving_mean")
        self.moving_variance = tf.Variable(tf.ones([num_channels]), trainable=False,
                                           name="moving_variance")

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
        if self.fused and x.shape.rank == 4:
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
                                            shape)
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


def batch_normalize(x, gamma, beta, epsilon, axes, shape):
    """Normalise with the batch's own statistics; the backward pass is the paper's (section 3).

    forward:   mu = mean(x), var = mean((x - mu)^2), xhat = (x - mu) / sqrt(var + eps),
               y = gamma * xhat + beta                          (over `axes`, m values per channel)
    backward:  dbeta = sum(dy),  dgamma = sum(dy * xhat)
               dx = gamma / sqrt(var + eps) / m * (m * dy - dbeta - xhat * dgamma)

    Letting autodiff differentiate the forward formulas gives the same numbers (the test compares
    with Keras) through about twice as many ops over the whole tensor; written out, the backward
    pass is also the formula a reader can check against the paper.
    Returns y (x's dtype) and the batch mean and variance [C] (float32, for the moving averages).
    """

    @tf.custom_gradient
    def forward(x, gamma, beta):
        x32 = tf.cast(x, tf.float32)
        mean = tf.reduce_mean(x32, axes)  # [C]
        centered = x32 - tf.reshape(mean, shape)
        variance = tf.reduce_mean(tf.square(centered), axes)  # [C]
        inv_std = tf.math.rsqrt(variance + epsilon)  # [C]
        scale = gamma * inv_std  # [C]
        y = x * tf.cast(tf.reshape(scale, shape), x.dtype) + \
            tf.cast(tf.reshape(beta - mean * scale, shape), x.dtype)

        def backward(dy, unused_dmean, unused_dvariance):
            # mean and variance only feed the moving averages: no gradient comes back through them.
            with tf.name_scope("batch_norm_grad"):
                dy32 = tf.cast(dy, tf.float32)
                xhat = centered * tf.reshape(inv_std, shape)
                dbeta = tf.reduce_sum(dy32, axes)  # [C]
                dgamma = tf.reduce_sum(dy32 * xhat, axes)  # [C]
                m = tf.cast(tf.size(x32) // tf.size(mean), tf.float32)  # values per channel
                dx = tf.reshape(scale / m, shape) * (m * dy32 - tf.reshape(dbeta, shape)
                                                      - xhat * tf.reshape(dgamma, shape))
                return tf.cast(dx, x.dtype), dgamma, dbeta

        return (y, mean, variance), backward

    return forward(x, gamma, beta)
