"""Networks against Keras twins (parameter counts, forward outputs), seeds, layouts, precision."""

import numpy as np
import pytest
import tensorflow as tf

import activations
from benchmarks import bench_peers
import models
from batch_norm import BatchNorm
from errors import UserError
from layers import Conv2D, Dense

IMAGES = tf.random.stateless_normal([4, 32, 32, 3], seed=[1, 2])


def count(variables):
    return sum(int(np.prod(v.shape)) for v in variables)


@pytest.mark.parametrize("depth, expected_millions", [(20, 0.27), (56, 0.85)])
def test_resnet_parameter_counts_equal_a_keras_twin(depth, expected_millions):
    ours = models.build("resnet", 10, depth=depth)
    twin = bench_peers.keras_resnet_v1(depth)
    assert count(ours.trainable_variables) == count(twin.trainable_weights)
    assert count(ours.trainable_variables) / 1e6 == pytest.approx(expected_millions, abs=0.005)
    assert ours(IMAGES, training=False).shape == [4, 10]


def test_allcnn_parameter_count_equals_a_keras_twin():
    ours = models.build("allcnn", 10, bn=True)
    twin = bench_peers.keras_allcnn(10, bn=True)
    assert count(ours.trainable_variables) == count(twin.trainable_weights)
    plain = models.build("allcnn", 10, bn=False)  # the paper's 1.37 M (conv kernels + biases)
    assert count(plain.trainable_variables) / 1e6 == pytest.approx(1.37, abs=0.005)


def test_resnet164_v2_bottleneck_has_the_papers_1_7_million():
    # The paper's 1.7 M counts 1x1 projection shortcuts (B) where the width changes; option A
    # (parameter-free) saves their 16*64 + 64*128 + 128*256 = 41,984 weights.
    net = models.build("resnet", 10, depth=164, version=2, shortcut="B")
    assert count(net.trainable_variables) / 1e6 == pytest.approx(1.70, abs=0.01)
    a = models.build("resnet", 10, depth=164, version=2, shortcut="A")
    assert count(net.trainable_variables) - count(a.trainable_variables) == 41984
    assert net.config["bottleneck"] is None and len(net.blocks) == 54
    assert net(IMAGES[:2], training=False).shape == [2, 10]


def copy_into_keras(ours_layers, twin, rng):
    keras_layers = [l for l in twin.layers if l.__class__.__name__ in
                    ("Conv2D", "BatchNormalization", "Dense")]
    assert len(keras_layers) == len(ours_layers)
    for mine, theirs in zip(ours_layers, keras_layers):
        if isinstance(mine, BatchNorm):  # random statistics so inference mode is non-trivial
            for v in (mine.gamma, mine.beta, mine.moving_mean):
                v.assign(rng.normal(size=v.shape).astype(np.float32) * 0.3 + (v is mine.gamma))
            mine.moving_variance.assign(rng.uniform(0.5, 2, mine.moving_variance.shape))
            theirs.set_weights([mine.gamma.numpy(), mine.beta.numpy(), mine.moving_mean.numpy(),
                                mine.moving_variance.numpy()])
        else:
            theirs.set_weights([mine.kernel.numpy()] +
                               ([mine.bias.numpy()] if mine.bias is not None else []))


def test_resnet20_forward_equals_keras_twin_with_the_same_weights():
    net = models.build("resnet", 10, depth=20)
    ours_layers = [net.conv, net.bn]
    for b in net.blocks:
        ours_layers += [b.conv1, b.bn1, b.conv2, b.bn2]
    ours_layers.append(net.dense)
    twin = bench_peers.keras_resnet_v1(20)
    copy_into_keras(ours_layers, twin, np.random.default_rng(0))
    # float32, 20 layers deep, different kernels (oneDNN vs ours): 1e-4 relative.
    np.testing.assert_allclose(net(IMAGES, training=False), twin(IMAGES, training=False),
                               rtol=1e-4, atol=1e-4)


def test_allcnn_forward_equals_keras_twin_with_the_same_weights():
    net = models.build("allcnn", 10, bn=True)
    ours_layers = [m for pair in zip(net.convs, net.bns) for m in pair]
    twin = bench_peers.keras_allcnn(10, bn=True)
    copy_into_keras(ours_layers, twin, np.random.default_rng(1))
    np.testing.assert_allclose(net(IMAGES, training=False), twin(IMAGES, training=False),
                               rtol=1e-4, atol=1e-4)


def test_same_seed_same_weights_and_different_seed_different_weights():
    def kernels(**kw):
        net = models.build("resnet", 10, depth=8, **kw)
        return [v.numpy() for v in net.trainable_variables if v.name.startswith("kernel")]

    a = kernels(seed=3)
    for act in activations.NAMES:
        for x, y in zip(a, kernels(seed=3, act=act)):
            np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], kernels(seed=4)[0])


def test_prelu_adds_only_alpha_variables():
    relu = models.build("resnet", 10, depth=8)
    prelu = models.build("resnet", 10, depth=8, act="prelu")
    extra = {v.name for v in prelu.trainable_variables} - {v.name for v in
                                                           relu.trainable_variables}
    assert extra == {"alpha:0"}
    # one alpha per channel at each activation position: 16 + 3 blocks x 2 x (16, 32, 64) / 3...
    assert count(prelu.trainable_variables) - count(relu.trainable_variables) == \
        16 + 2 * (16 + 32 + 64)


def test_config_round_trip_rebuilds_the_same_network():
    net = models.build("cnn", 100, act="elu", bn=True, seed=5, dropout="spatial",
                       order="conv-drop-bn-act-pool")
    again = models.build(**net.config)
    for a, b in zip(net.variables, again.variables):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(net(IMAGES, training=False), again(IMAGES, training=False))


@pytest.mark.parametrize("depth, version, message", [
    (21, 1, "6n+2: 20, 32, 44, 56, 110"), (1001, 1, "6n+2"), (165, 2, "9n+2")])
def test_invalid_depth_names_the_valid_ones(depth, version, message):
    with pytest.raises(UserError, match=message.replace("+", r"\+")):
        models.build("resnet", 10, depth=depth, version=version)


def test_unknown_model_option_and_order_are_refused():
    with pytest.raises(UserError, match="conv-bn-act-pool-drop"):
        models.build("cnn", 10, order="pool-conv")
    with pytest.raises(UserError, match="no option"):
        models.build("allcnn", 10, depth=3)


@pytest.mark.parametrize("order", ["conv-bn-act-pool-drop", "conv-drop-bn-act-pool",
                                   "conv-act-bn-pool-drop"])
@pytest.mark.parametrize("dropout", ["none", "dropout", "spatial"])
def test_cnn_orders_and_dropout_kinds_run(order, dropout):
    net = models.build("cnn", 10, dropout=dropout, order=order)
    assert net(IMAGES, training=True).shape == [4, 10]
    y1, y2 = net(IMAGES, training=False), net(IMAGES, training=False)
    np.testing.assert_array_equal(y1, y2)  # inference is deterministic


def test_orders_give_different_functions():
    a = models.build("cnn", 10, order="conv-bn-act-pool-drop")
    b = models.build("cnn", 10, order="conv-act-bn-pool-drop")
    assert not np.allclose(a(IMAGES, training=True), b(IMAGES, training=True))


def test_nchw_equals_nhwc():
    nhwc = models.build("resnet", 10, depth=8, data_format="NHWC")
    nchw = models.build("resnet", 10, depth=8, data_format="NCHW")
    try:
        y = nchw(IMAGES, training=True)
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as e:
        pytest.skip(f"this CPU build has no NCHW convolution: {e.message[:80]}")
    np.testing.assert_allclose(y, nhwc(IMAGES, training=True), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(nchw(IMAGES, training=False), nhwc(IMAGES, training=False),
                               rtol=1e-4, atol=1e-4)


def test_bfloat16_compute_gives_float32_logits_close_to_fp32():
    fp32 = models.build("resnet", 10, depth=8)
    bf16 = models.build("resnet", 10, depth=8, compute_dtype="bfloat16")
    y = bf16(IMAGES, training=True)
    assert y.dtype == tf.float32 and all(v.dtype == tf.float32 for v in bf16.variables)
    ref = fp32(IMAGES, training=True)
    # bf16 has 8 mantissa bits: relative error ~ 2^-8 per op, a few percent after 8 layers.
    assert np.max(np.abs(y - ref)) < 0.1 * np.max(np.abs(ref)) + 0.05


def test_activations_taps_for_histograms():
    taps = models.build("resnet", 10, depth=8).activations(IMAGES)
    assert len(taps) == 3 and all(t.shape[0] == 4 for t in taps.values())


def test_conv_and_dense_layers_against_tf_ops():
    rng = tf.random.Generator.from_seed(0)
    conv = Conv2D(3, 5, 3, rng, stride=2, use_bias=True)
    conv.bias.assign([1.0, 2.0, 3.0, 4.0, 5.0])
    ref = tf.nn.conv2d(IMAGES, conv.kernel, 2, "SAME") + conv.bias
    np.testing.assert_allclose(conv(IMAGES), ref, rtol=1e-6)
    dense = Dense(7, 2, rng)
    x = tf.ones([3, 7])
    np.testing.assert_allclose(dense(x), x @ dense.kernel.numpy() + dense.bias.numpy(),
                               rtol=1e-6)
