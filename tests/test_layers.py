"""Layers: He initialisation, inverted dropout, spatial dropout, and which variables get decay."""

import numpy as np
import pytest
import tensorflow as tf

from models import layers
import models


def test_he_normal_has_std_sqrt_2_over_fan_in():
    conv = layers.Conv2D(64, 64, 3, tf.random.Generator.from_seed(0), use_bias=False)
    k = conv.kernel.numpy()
    fan_in = 3 * 3 * 64
    # 36,864 draws: the sample std is within 2 % of sqrt(2 / fan_in) (truncated and rescaled).
    assert k.std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.02)
    assert np.abs(k).max() <= 2 * np.sqrt(2 / fan_in) / 0.8796 + 1e-6  # truncated at 2 std


def test_inverted_dropout_keeps_the_expectation_and_is_identity_at_inference():
    drop = layers.Dropout(0.4, tf.random.Generator.from_seed(1))
    x = tf.ones([200, 100])
    y = drop(x, training=True).numpy()
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / 0.6], rtol=1e-6)
    assert np.mean(y == 0) == pytest.approx(0.4, abs=0.01)  # 20,000 draws: std 0.0035
    assert y.mean() == pytest.approx(1.0, abs=0.02)
    np.testing.assert_array_equal(drop(x, training=False), x)


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_spatial_dropout_drops_whole_channels(data_format):
    drop = layers.SpatialDropout(0.5, tf.random.Generator.from_seed(2), data_format)
    shape = [50, 4, 4, 16] if data_format == "NHWC" else [50, 16, 4, 4]
    y = drop(tf.ones(shape), training=True).numpy()
    maps = y if data_format == "NCHW" else y.transpose(0, 3, 1, 2)  # [N, C, H, W]
    per_map = maps.reshape(50, 16, -1)
    assert np.all(per_map.min(-1) == per_map.max(-1))  # each map all dropped or all kept
    assert np.mean(per_map[..., 0] == 0) == pytest.approx(0.5, abs=0.06)  # 800 maps: std 0.018


def test_decay_kernels_lists_only_conv_and_dense_kernels():
    net = models.build("cnn", 10, act="prelu", bn=True)
    decayed = layers.decay_kernels(net)
    assert len(decayed) == 6  # 4 convs + 2 dense
    assert all(v.name.startswith("kernel") for v in decayed)
    names = {v.name.split(":")[0] for v in net.trainable_variables}
    assert {"alpha", "gamma", "beta", "bias"} <= names  # present, and none of them decayed
