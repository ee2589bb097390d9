"""Networks against Keras twins (parameter counts, forward outputs), seeds, layouts, precision."""

import re

import numpy as np
import pytest
import tensorflow as tf

import activations
from benchmarks import bench_peers
import models
from batch_norm import BatchNorm
from plumbing.errors import UserError
from models.layers import Conv2D, Dense

IMAGES = tf.random.stateless_normal([4, 32, 32, 3], seed=[1, 2])


def count(variables):
    return sum(int(np.prod(v.shape)) for v in variables)


@pytest.mark.parametrize("depth, expected_millions", [(20, 0.27), (56, 0.85)])
def test_resnet_parameter_counts_equal_a_keras_twin(depth, expected_millions):
    ours = models.build("resnet", 10, depth=depth, bn=True)
    twin = bench_peers.keras_resnet_v1(depth)
    assert count(ours.trainable_variables) == count(twin.trainable_weights)
    assert count(ours.trainable_variables) / 1e6 == pytest.approx(expected_millions, abs=0.005)
    assert ours(IMAGES, training=False).shape == [4, 10]


@pytest.mark.parametrize("score_act", [False, True])
def test_allcnn_parameter_count_equals_a_keras_twin(score_act):
    ours = models.build("allcnn", 10, bn=True, score_act=score_act)
    twin = bench_peers.keras_allcnn(10, bn=True, score_act=score_act)
    assert count(ours.trainable_variables) == count(twin.trainable_weights)
    # the paper's 1.37 M (conv kernels + biases); the class scores' bias is there either way
    plain = models.build("allcnn", 10, bn=False, score_act=score_act)
    assert count(plain.trainable_variables) / 1e6 == pytest.approx(1.37, abs=0.005)


def test_allcnn_class_scores_are_raw_unless_score_act():
    raw = models.build("allcnn", 10, bn=True)
    assert raw.bns[-1] is None and raw.acts[-1] is None and raw.convs[-1].bias is not None
    # raw scores can be negative; with the paper's ReLU on them they cannot
    assert float(tf.reduce_min(raw(IMAGES, training=False))) < 0
    paper = models.build("allcnn", 10, bn=False, score_act=True)
    assert float(tf.reduce_min(paper(IMAGES, training=False))) >= 0


def test_resnet164_v2_bottleneck_has_the_papers_1_7_million():
    # The paper's 1.7 M counts 1x1 projection shortcuts (B) where the width changes; option A
    # (parameter-free) saves their 16*64 + 64*128 + 128*256 = 41,984 weights.
    net = models.build("resnet", 10, depth=164, version=2, shortcut="B", bn=True)
    assert count(net.trainable_variables) / 1e6 == pytest.approx(1.70, abs=0.01)
    a = models.build("resnet", 10, depth=164, version=2, shortcut="A", bn=True)
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
    net = models.build("resnet", 10, depth=20, bn=True)
    ours_layers = [net.conv, net.bn]
    for b in net.blocks:
        ours_layers += [b.conv1, b.bn1, b.conv2, b.bn2]
    ours_layers.append(net.dense)
    twin = bench_peers.keras_resnet_v1(20)
    copy_into_keras(ours_layers, twin, np.random.default_rng(0))
    # float32, 20 layers deep, different kernels (oneDNN vs ours): 1e-4 relative.
    np.testing.assert_allclose(net(IMAGES, training=False), twin(IMAGES, training=False),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("score_act", [False, True])
def test_allcnn_forward_equals_keras_twin_with_the_same_weights(score_act):
    net = models.build("allcnn", 10, bn=True, score_act=score_act)
    ours_layers = [m for pair in zip(net.convs, net.bns) for m in pair if m is not None]
    twin = bench_peers.keras_allcnn(10, bn=True, score_act=score_act)
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


def test_checkpoint_keys_and_variable_names_stay_those_of_older_checkpoints(tmp_path):
    """Log directories written before the models took explicit arguments restore: a PReLU alpha
    sits at acts/<i>/fn/alpha (the Activation module holds the function as `fn`), batch norm and
    conv variables under their lists, the two generators under init_rng and rng."""
    net = models.build("allcnn", 10, act="prelu", bn=True)
    path = tf.train.Checkpoint(model=net).write(str(tmp_path / "ckpt"))
    keys = {k.replace("/.ATTRIBUTES/VARIABLE_VALUE", "") for k, _ in
            tf.train.list_variables(path)}
    for key in ("model/acts/0/fn/alpha", "model/acts/7/fn/alpha", "model/convs/0/kernel",
                "model/bns/0/moving_mean", "model/bns/7/gamma", "model/convs/8/bias",
                "model/init_rng/_state_var", "model/rng/_state_var"):
        assert key in keys, (key, sorted(keys))
    assert not any("config" in k for k in keys)
    assert {v.name for v in net.trainable_variables} == {
        "kernel:0", "bias:0", "gamma:0", "beta:0", "alpha:0"}


def test_an_older_model_config_with_every_activation_parameter_rebuilds():
    from plumbing.choices import ACTIVATION_DEFAULTS
    net = models.build("allcnn", 10, act="elu", act_params=dict(ACTIVATION_DEFAULTS, elu_alpha=0.5),
                       bn=True)
    assert net.config["act_params"] == {"elu_alpha": 0.5}
    assert net.acts[0].fn.alpha == 0.5
    with pytest.raises(UserError, match="takes no parameter"):  # not the older format: refused
        models.build("allcnn", 10, act="elu", act_params={"leak": 0.1})


@pytest.mark.parametrize("depth, version, message", [
    (21, 1, "6n+2 (n >= 1): 8, 14, 20, 32"), (1001, 1, "6n+2"), (165, 2, "9n+2")])
def test_invalid_depth_names_the_valid_ones(depth, version, message):
    with pytest.raises(UserError, match=re.escape(message)):
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
    net = models.build("cnn", 10, bn=True, dropout=dropout, order=order)
    assert net(IMAGES, training=True).shape == [4, 10]
    y1, y2 = net(IMAGES, training=False), net(IMAGES, training=False)
    np.testing.assert_array_equal(y1, y2)  # inference is deterministic


def test_orders_give_different_functions():
    a = models.build("cnn", 10, bn=True, order="conv-bn-act-pool-drop")
    b = models.build("cnn", 10, bn=True, order="conv-act-bn-pool-drop")
    assert not np.allclose(a(IMAGES, training=True), b(IMAGES, training=True))


SMALL = {"allcnn": {}, "resnet": dict(depth=8), "cnn": {}}


def randomize_non_kernels(pair, seed):
    """Give both networks the same random BN statistics, biases and PReLU alphas, so a layout bug
    in any of them (a [C] vector broadcast on the wrong axis) changes the logits."""
    rng = np.random.default_rng(seed)
    for a, b in zip(pair[0].variables, pair[1].variables):
        assert a.name == b.name and a.shape == b.shape
        if a.name.split(":")[0] in ("gamma", "moving_variance", "alpha"):
            value = rng.uniform(0.5, 1.5, a.shape)
        elif a.name.split(":")[0] in ("beta", "moving_mean", "bias"):
            value = rng.normal(0, 0.3, a.shape)
        else:
            continue
        a.assign(value)
        b.assign(value)


@pytest.mark.parametrize("model", sorted(SMALL))
def test_nchw_logits_equal_nhwc_for_every_activation_under_xla(model):
    """NCHW runs inside a jit-compiled tf.function (XLA has NCHW convolutions on a CPU; TF's
    eager CPU kernels do not). One compiled function per model holds all the activations' nets,
    so each model is compiled once; NHWC is the eager reference. Inference mode: the random
    layers (dropout, rrelu, dropact) draw masks of a layout-dependent shape in training."""
    images = IMAGES[:2]
    nets = {}
    for act in activations.NAMES:
        pair = [models.build(model, 10, act=act, bn=True, seed=1, data_format=df, **SMALL[model])
                for df in ("NHWC", "NCHW")]
        randomize_non_kernels(pair, seed=len(nets))
        nets[act] = pair
    nchw = tf.function(lambda x: {a: p[1](x, training=False) for a, p in nets.items()},
                       jit_compile=True, autograph=False)(images)
    for act, (nhwc_net, _) in nets.items():
        ref = nhwc_net(images, training=False)
        assert nchw[act].shape == [2, 10], act
        # GAAF's sawtooth jumps by 1/K = 1e-4 where the two layouts' convs round an input to
        # either side of a multiple of 1/K; through a few layers that moves a logit by ~1e-4.
        atol = 1e-3 if act.startswith("gaaf") else 1e-4
        np.testing.assert_allclose(nchw[act], ref, rtol=1e-4, atol=atol, err_msg=act)


def test_bfloat16_compute_gives_float32_logits_close_to_fp32():
    fp32 = models.build("resnet", 10, depth=8, bn=True)
    bf16 = models.build("resnet", 10, depth=8, bn=True, compute_dtype="bfloat16")
    y = bf16(IMAGES, training=True)
    assert y.dtype == tf.float32 and all(v.dtype == tf.float32 for v in bf16.variables)
    ref = fp32(IMAGES, training=True)
    # bf16 has 8 mantissa bits: relative error ~ 2^-8 per op, a few percent after 8 layers.
    assert np.max(np.abs(y - ref)) < 0.1 * np.max(np.abs(ref)) + 0.05


def test_activation_outputs_for_histograms():
    taps = models.build("resnet", 10, depth=8).activation_outputs(IMAGES)
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


def test_build_takes_its_defaults_from_choices():
    from plumbing.choices import MODEL_DEFAULTS, MODEL_OPTIONS
    for name in models.NAMES:
        config = models.build(name, 10).config
        for key, value in dict(MODEL_DEFAULTS, **MODEL_OPTIONS[name]).items():
            expected = [float(v) for v in value] if key == "dropout_rates" else value
            assert config[key] == expected, (name, key)
    assert models.build("allcnn", 10).config["bn"] is False  # off by default, as in train.py


def bn_inference(bn, x):
    """Batch norm at inference from its variables: gamma (x - mean) / sqrt(var + eps) + beta."""
    return bn.gamma * (x - bn.moving_mean) / tf.sqrt(bn.moving_variance + bn.epsilon) + bn.beta


def conv(layer, x):
    y = tf.nn.conv2d(x, layer.kernel, layer.stride, "SAME")
    return y if layer.bias is None else y + layer.bias


@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_v2_unit_that_changes_shape_pre_activates_before_the_split(shortcut):
    """KaimingHe/resnet-1k-layers resnet-pre-act.lua: for increasing dimensions, a common BN + ReLU
    comes first and the projection takes its output; identity units add their raw input. Option
    A subsamples the raw input."""
    net = models.build("resnet", 10, depth=8, version=2, shortcut=shortcut, bn=True)
    randomize_non_kernels([net, net], seed=3)
    x = tf.random.stateless_normal([2, 16, 16, 16], seed=[4, 5])
    block = net.blocks[1]  # stage 2: 16 -> 32 channels, stride 2
    pre = tf.nn.relu(bn_inference(block.bn1, x))
    y = conv(block.conv2, tf.nn.relu(bn_inference(block.bn2, conv(block.conv1, pre))))
    if shortcut == "B":
        s = conv(block.shortcut.conv, pre)
    else:
        s = tf.pad(x[:, ::2, ::2, :], [[0, 0], [0, 0], [0, 0], [8, 8]])
    np.testing.assert_allclose(block(x, training=False), s + y, rtol=1e-5, atol=1e-5)
    identity_block = net.blocks[0]  # stage 1: 16 -> 16, stride 1
    pre = tf.nn.relu(bn_inference(identity_block.bn1, x))
    y = conv(identity_block.conv2,
             tf.nn.relu(bn_inference(identity_block.bn2, conv(identity_block.conv1, pre))))
    np.testing.assert_allclose(identity_block(x, training=False), x + y, rtol=1e-5, atol=1e-5)


def test_bottleneck_stride_on_the_first_1x1_as_the_authors():
    net = models.build("resnet", 10, depth=29, version=2, bottleneck=True, shortcut="B", bn=True)
    first_of_stage2 = net.blocks[3]
    assert (first_of_stage2.conv1.stride, first_of_stage2.conv2.stride) == (2, 1)
    other = models.build("resnet", 10, depth=29, version=2, bottleneck=True, shortcut="B",
                         bn=True, bottleneck_stride="3x3")
    assert (other.blocks[3].conv1.stride, other.blocks[3].conv2.stride) == (1, 2)
    assert net(IMAGES[:2], training=False).shape == [2, 10]
    with pytest.raises(UserError, match="bottleneck blocks only"):
        models.build("resnet", 10, depth=20, bottleneck_stride="3x3")


@pytest.mark.parametrize("order", ["conv-bn-act-pool-drop", "conv-bn-act-drop-pool",
                                   "conv-act-bn-pool-drop", "conv-drop-bn-act-pool",
                                   "conv-bn-drop-act-pool", "conv-act-pool-bn-drop"])
def test_cnn_conv_bias_is_dropped_only_where_bn_directly_follows(order):
    with_bn = models.build("cnn", 10, bn=True, order=order)
    follows = order.split("-")[1] == "bn"
    assert all((c.bias is None) == follows for c in with_bn.convs)
    assert with_bn.dense1.bias is None  # batch norm follows the dense layer directly
    without_bn = models.build("cnn", 10, bn=False, order=order)
    assert all(c.bias is not None for c in without_bn.convs)


def test_resnet_v1_gaaf_options():
    net = models.build("resnet", 10, depth=20, act="gaaf-relu", bn=True, shortcut="B",
                       projection_bn=False, stem_act="relu", conv_bias=True)
    assert net.act_in.fn is activations.relu  # only the blocks use GAAF
    assert isinstance(net.blocks[0].act1.fn, activations.GAAF)
    projection = net.blocks[3].shortcut  # stage 2: 16 -> 32
    assert projection.bn is None and projection.conv.bias is not None
    assert all(b.conv1.bias is not None for b in net.blocks)
    plain = models.build("resnet", 10, depth=20, bn=True, shortcut="B")
    assert plain.blocks[3].shortcut.bn is not None and plain.blocks[3].shortcut.conv.bias is None
    for bad, message in [(dict(version=2, depth=8, stem_act="relu"), "v1 option"),
                         (dict(version=2, depth=8, shortcut="B", projection_bn=False), "v1 option"),
                         (dict(projection_bn=False), "shortcut B"),
                         (dict(stem_act="swish"), "unknown stem activation")]:
        with pytest.raises(UserError, match=message):
            models.build("resnet", 10, **bad)
