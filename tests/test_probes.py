"""models/probes.py: recording layers' inputs, and batch norm's statistics recomputed exactly."""

import numpy as np
import tensorflow as tf

import activations
from batch_norm import BatchNorm
from models import probes
from models.layers import Conv2D
from activations import Activation


class TwoConvs(tf.Module):
    def __init__(self):
        super().__init__()
        rng = tf.random.Generator.from_seed(0)
        self.conv1 = Conv2D(3, 4, 3, rng, use_bias=True, name="conv1")
        self.bn1 = BatchNorm(4, name="bn1")
        self.act = Activation(activations.relu)
        self.conv2 = Conv2D(4, 5, 3, rng, use_bias=True, name="conv2")
        self.bn2 = BatchNorm(5, name="bn2")

    def __call__(self, x, training):
        return self.bn2(self.conv2(self.act(self.bn1(self.conv1(x), training), training)),
                        training)


def test_recomputed_statistics_are_the_exact_moments_of_the_inputs():
    net = TwoConvs()
    rng = np.random.default_rng(1)
    batches = [tf.constant(rng.normal(1.0, 2.0, size=[16, 8, 8, 3]), tf.float32)
               for _ in range(3)]
    probes.recompute_bn_stats(net, batches)
    # By hand, layer after layer, with numpy moments over N, H, W of all 48 images at once.
    x = tf.concat(batches, 0)
    x1 = net.conv1(x).numpy()
    np.testing.assert_allclose(net.bn1.moving_mean.numpy(), x1.mean((0, 1, 2)), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(net.bn1.moving_variance.numpy(), x1.var((0, 1, 2)), rtol=1e-4)
    x2 = net.conv2(tf.nn.relu(net.bn1(tf.constant(x1), training=False))).numpy()
    np.testing.assert_allclose(net.bn2.moving_mean.numpy(), x2.mean((0, 1, 2)), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(net.bn2.moving_variance.numpy(), x2.var((0, 1, 2)), rtol=1e-4)
    # So afterwards the moments the probes record on the same images are the moving statistics.
    for bn, moments in probes.bn_input_moments(net, batches).items():
        np.testing.assert_allclose(moments.variance() / bn.moving_variance.numpy(), 1, atol=1e-4)
