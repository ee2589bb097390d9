"""Activations against TF's own ops, numpy formulas, Monte-Carlo expectations and hand cases."""

import numpy as np
import pytest
import tensorflow as tf

import activations
from plumbing.errors import UserError

X = np.linspace(-6, 6, 241).astype(np.float32)  # includes 0 and both signs


def make(name, rng=None, **params):
    return activations.make(name, 4, rng or tf.random.Generator.from_seed(1), **params)


def test_relu_lrelu_elu_tanh_sigmoid_equal_tf_ops():
    x = tf.constant(X)
    np.testing.assert_array_equal(make("relu")(x, True), np.maximum(X, 0))
    np.testing.assert_allclose(make("lrelu")(x, True), tf.nn.leaky_relu(x, 0.2), rtol=0, atol=0)
    np.testing.assert_allclose(make("lrelu", leak=0.01)(x, True), tf.nn.leaky_relu(x, 0.01),
                               atol=0)
    np.testing.assert_allclose(make("elu")(x, True), tf.nn.elu(x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(make("elu", elu_alpha=0.5)(x, True),
                               np.where(X > 0, X, 0.5 * np.expm1(X)), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(make("tanh")(x, True), np.tanh(X), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(make("sigmoid")(x, True), 1 / (1 + np.exp(-X)), atol=1e-6)


def test_elu_gradient_has_no_nan_for_large_inputs():
    x = tf.constant([100.0, -100.0, 0.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = make("elu")(x, True)
    grad = tape.gradient(y, x).numpy()
    np.testing.assert_allclose(grad, [1.0, np.exp(-100.0), 1.0], atol=1e-7)


def test_prelu_formula_gradient_reaches_alpha_and_it_learns():
    prelu = activations.make("prelu", 3, None)
    assert prelu.alpha.shape == [3] and np.all(prelu.alpha.numpy() == 0.25)
    assert prelu.alpha.name.startswith("alpha")
    x = tf.constant(np.array([[-2.0, 1.0, -4.0], [3.0, -1.0, 0.5]], np.float32))
    alpha = np.array([0.25, 0.25, 0.25])
    np.testing.assert_allclose(prelu(x, True), np.where(x > 0, x, alpha * x), atol=1e-7)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(prelu(x, True))
    grad = tape.gradient(loss, prelu.alpha).numpy()
    np.testing.assert_allclose(grad, [-2.0, -1.0, -4.0])  # d/d alpha_c = sum of min(x, 0)
    prelu.alpha.assign_sub(0.1 * grad)
    assert not np.allclose(prelu.alpha.numpy(), 0.25)


def test_prelu_nchw_broadcasts_over_channel_axis_1():
    nhwc = activations.make("prelu", 2, None)
    nchw = activations.make("prelu", 2, None, channel_axis=1)
    nhwc.alpha.assign([0.1, 0.7])
    nchw.alpha.assign([0.1, 0.7])
    x = tf.random.normal([2, 3, 3, 2], seed=0)
    np.testing.assert_allclose(tf.transpose(nchw(tf.transpose(x, [0, 3, 1, 2]), True),
                                            [0, 2, 3, 1]), nhwc(x, True), atol=1e-7)


def test_rrelu_training_slopes_in_range_and_inference_is_paper_mean():
    rrelu = make("rrelu", tf.random.Generator.from_seed(3))
    x = -tf.ones([200000])
    a = (x / rrelu(x, True)).numpy()  # y = x / a
    assert a.min() >= 3.0 and a.max() <= 8.0
    assert abs(a.mean() - 5.5) < 0.02  # U(3, 8): mean 5.5, std 1.44 / sqrt(2e5) = 0.003
    np.testing.assert_allclose(rrelu(x, False), -1 / 5.5, rtol=1e-6)
    np.testing.assert_array_equal(rrelu(tf.constant(X[X >= 0]), True), X[X >= 0])


def test_rrelu_differs_from_the_pytorch_convention():
    x = -tf.ones([4])
    ours = float(-make("rrelu")(x, False)[0])  # inference slope
    assert ours == pytest.approx(2 / 11, rel=1e-6)
    pytorch_slope = (1 / 8 + 1 / 3) / 2  # torch.nn.RReLU eval slope: 11/48
    assert abs(ours - pytorch_slope) > 0.04
    torch = pytest.importorskip("torch")
    y = torch.nn.functional.rrelu(-torch.ones(4), lower=1 / 8, upper=1 / 3, training=False)
    assert float(-y[0]) == pytest.approx(11 / 48, rel=1e-6)


def test_rrelu_draws_from_the_given_generator_only():
    g1, g2 = tf.random.Generator.from_seed(7), tf.random.Generator.from_seed(7)
    x = -tf.ones([100])
    tf.random.set_seed(123)  # global state must not matter
    a = make("rrelu", g1)(x, True)
    tf.random.set_seed(456)
    b = make("rrelu", g2)(x, True)
    np.testing.assert_array_equal(a, b)


def test_dropact_inference_is_the_monte_carlo_mean_of_training():
    dropact = make("dropact", tf.random.Generator.from_seed(5))
    x = tf.constant(X)
    draws = 4000
    mean = np.mean([dropact(x, True).numpy() for _ in range(draws)], axis=0)
    expected = dropact(x, False).numpy()
    np.testing.assert_allclose(expected, np.where(X > 0, X, 0.05 * X), atol=1e-6)
    # For x < 0 each draw is x (prob 0.05) or 0: std |x| sqrt(p(1-p)) / sqrt(draws) <= 0.021 at
    # |x| = 6; allow 5 std.
    tol = 5 * np.abs(X) * np.sqrt(0.95 * 0.05 / draws) + 1e-6
    assert np.all(np.abs(mean - expected) <= tol)


def test_dropact_training_is_relu_or_identity_per_element():
    y = make("dropact", tf.random.Generator.from_seed(2), dropact_p=0.5)(-tf.ones([10000]), True)
    values = set(np.unique(y.numpy()).tolist())
    assert values == {0.0, -1.0}
    assert abs(np.mean(y.numpy() == 0.0) - 0.5) < 0.03


def test_gaaf_forward_moves_less_than_1_over_k_and_gradient_gains_shape():
    x = tf.constant(np.linspace(-8, 3, 1100).astype(np.float32))  # avoids the kink at 0
    for name, base, shape in [
            ("gaaf-relu", tf.nn.relu, lambda v: tf.sigmoid(v + 4.0)),
            ("gaaf-tanh", tf.tanh, lambda v: tf.exp(-tf.square(v) / 3.0))]:
        act = make(name)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y, y0 = act(x, True), base(x)
        assert np.max(np.abs((y - y0).numpy())) <= 0.5 / 1e4 + 1e-6
        gain = (tape.gradient(y, x) - tape.gradient(y0, x)).numpy()
        # d/dx [g(x) s(x)] = g'(x) s(x) + g(x) s'(x) = s(x) + O(1/K), since g' = 1 and |g| <= 1/(2K).
        np.testing.assert_allclose(gain, shape(x).numpy(), atol=2e-4)
    # Saturated region of relu (x << 0): relu's gradient is 0, gaaf-relu's is sigmoid(x + 4) > 0.
    with tf.GradientTape() as tape:
        v = tf.constant([-2.0])
        tape.watch(v)
        out = make("gaaf-relu")(v, True)
    assert float(tape.gradient(out, v)[0]) == pytest.approx(float(tf.sigmoid(2.0)), abs=1e-3)


def test_gaaf_g_matches_numpy_sawtooth():
    x = np.array([0.00012, 0.00019, -0.00031, 1.23456], np.float32)
    g = activations.GAAF("relu").g(tf.constant(x)).numpy()
    xk = x * np.float32(1e4)  # the same float32 product TF forms
    np.testing.assert_allclose(g, (xk - np.floor(xk) - np.float32(0.5)) / np.float32(1e4),
                               rtol=1e-6, atol=1e-10)


def test_gaaf_round_variant_is_a_different_function():
    x = tf.constant(np.linspace(-1, 1, 2001).astype(np.float32) * 1e-3)
    floor_act, round_act = make("gaaf-relu"), make("gaaf-relu", gaaf_variant="round")
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        yf, yr, y0 = floor_act(x, True), round_act(x, True), tf.nn.relu(x)
    assert np.max(np.abs((yf - yr).numpy())) > 1e-5
    gf = tape.gradient(yf, x) - tape.gradient(y0, x)
    gr = tape.gradient(yr, x) - tape.gradient(y0, x)
    assert np.all(gf.numpy() > 0)  # floor: always + s(x)
    assert np.any(gr.numpy() < 0) and np.any(gr.numpy() > 0)  # round: alternating sign
    xk = x.numpy() * np.float32(1e4)
    np.testing.assert_allclose(activations.GAAF("relu", variant="round").g(x).numpy(),
                               (np.abs(xk - np.round(xk)) - np.float32(0.5)) / np.float32(1e4),
                               rtol=1e-6, atol=1e-10)


# TF's own op for each activation that has one (inference mode).
TF_OPS = {
    "relu": tf.nn.relu, "lrelu": lambda x: tf.nn.leaky_relu(x, 0.2), "elu": tf.nn.elu,
    "tanh": tf.tanh, "sigmoid": tf.sigmoid, "silu": tf.nn.silu,
    "gelu": lambda x: tf.nn.gelu(x, approximate=False),
    "gelu-tanh": lambda x: tf.nn.gelu(x, approximate=True), "selu": tf.nn.selu,
    "softplus": tf.nn.softplus,
}
UNIT_ROUNDOFF = {tf.bfloat16: 2.0 ** -8, tf.float16: 2.0 ** -11}  # half the spacing at 1


@pytest.mark.parametrize("name", sorted(TF_OPS))
def test_activations_equal_tf_ops_in_float32(name):
    x = tf.constant(np.linspace(-12, 12, 961).astype(np.float32))
    # atol 1e-6: TF's gelu(approximate=True) computes 1 + tanh(z), which cancels to 0 below
    # x ~ -5 where the function is ~ -4e-7 (ours is x * sigmoid(2z), the same function).
    np.testing.assert_allclose(make(name)(x, False), TF_OPS[name](x), rtol=2e-6, atol=1e-6)


def test_mish_equals_its_formula_and_selu_keeps_its_constants():
    x = X.astype(np.float64)
    np.testing.assert_allclose(make("mish")(tf.constant(X), False),
                               x * np.tanh(np.log1p(np.exp(x))), rtol=2e-6, atol=1e-7)
    assert activations.SELU_ALPHA == pytest.approx(1.6732632423543772)
    assert activations.SELU_SCALE == pytest.approx(1.0507009873554805)


@pytest.mark.parametrize("name", activations.NAMES)
@pytest.mark.parametrize("dtype", [tf.bfloat16, tf.float16])
def test_low_precision_inference_is_the_float32_formula_rounded(name, dtype):
    """Every constant is formed in Python and cast once, so the low-precision value is the float32
    formula's value up to the roundings of the ops themselves: at most 2.5 unit roundoffs u (the
    result's rounding plus one constant's or one intermediate's). A constant formed after the cast
    is off by more: 1 - bfloat16(0.95) = 0.0508 is 4 u from 0.05 in bfloat16.
    GELU's two forms round several terms of their erfc / sigmoid argument, and the steep tail
    multiplies that relative error by |x f'(x) / f(x)| (about 5 at x = -3): 16 u there (TF's own
    tf.nn.gelu is as far off, or further: its tanh form cancels to 0 below x ~ -3 in bfloat16)."""
    x_low = tf.cast(tf.constant(X[:240].reshape(60, 4)), dtype)  # 4 channels for prelu
    x32 = tf.cast(x_low, tf.float32)  # the same inputs, exactly, in float32
    act = make(name)
    y = act(x_low, False)
    assert y.dtype == dtype
    ref = act(x32, False).numpy().astype(np.float64)  # the float32 formula
    u = UNIT_ROUNDOFF[dtype] * np.maximum(np.abs(ref), 1e-3)
    err = np.abs(tf.cast(y, tf.float64).numpy() - ref)
    tol = 16 if name.startswith("gelu") else 2.5
    assert np.all(err <= tol * u), f"{name}: worst {np.max(err / u):.2f} u"


def test_dropact_bfloat16_inference_slope_is_bfloat16_of_0_05():
    y = make("dropact")(-tf.ones([3], tf.bfloat16), False)
    assert float(y[0]) == -float(tf.constant(0.05, tf.bfloat16))  # 0.0500488, not 0.0508


def test_rrelu_inference_is_not_the_expectation_of_training():
    rrelu = make("rrelu", tf.random.Generator.from_seed(9))
    x = -tf.ones([400000])
    mean = float(tf.reduce_mean(rrelu(x, True)))
    assert mean == pytest.approx(-np.log(8 / 3) / 5, abs=1e-3)  # E[x / a] = 0.196 x
    assert float(rrelu(x, False)[0]) == pytest.approx(-2 / 11, rel=1e-6)  # 0.182 x


@pytest.mark.parametrize("magnitude", [1e3, 1e5])
def test_gaaf_g_has_gradient_1_at_large_magnitudes(magnitude):
    x = tf.constant([magnitude, -magnitude, magnitude + 0.37])
    act = make("gaaf-relu")
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        g = act.g(x)
        y = act(x, True)
    np.testing.assert_array_equal(tape.gradient(g, x), [1.0, 1.0, 1.0])
    # the value no longer resolves (x*K has no fractional digits in float32): -0.5 / K
    np.testing.assert_allclose(g, -0.5e-4, rtol=1e-6)
    # gaaf-relu: relu' + s(x) = 1 + sigmoid(x + 4) = 2 for large x, 0 + 0 for large -x
    np.testing.assert_allclose(tape.gradient(y, x), [2.0, 0.0, 2.0], atol=1e-6)


def test_gaaf_relu_gradient_is_about_2_where_relu_is_active():
    x = tf.constant(np.linspace(0.5, 5, 10).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = make("gaaf-relu")(x, True)
    np.testing.assert_allclose(tape.gradient(y, x), 1 + tf.sigmoid(x + 4.0), atol=2e-4)
    assert np.all(tape.gradient(y, x).numpy() > 1.98)


def test_prelu_on_a_dense_output_uses_the_last_axis_in_any_layout():
    prelu = activations.make("prelu", 3, None, channel_axis=1)  # an NCHW network's dense layer
    prelu.alpha.assign([0.1, 0.5, 0.9])
    x = tf.constant([[-1.0, -1.0, -1.0], [2.0, -2.0, 3.0]])  # [N=2, C=3]
    y = prelu(x, False)
    assert y.shape == [2, 3]
    np.testing.assert_allclose(y, [[-0.1, -0.5, -0.9], [2.0, -1.0, 3.0]], rtol=1e-6)


def test_defaults_come_from_choices():
    import inspect
    from plumbing.choices import ACTIVATION_DEFAULTS
    for cls, arg, key in [(activations.LeakyReLU, "leak", "leak"),
                          (activations.ELU, "alpha", "elu_alpha"),
                          (activations.PReLU, "init", "prelu_init"),
                          (activations.RReLU, "lower", "rrelu_lower"),
                          (activations.RReLU, "upper", "rrelu_upper"),
                          (activations.DropActivation, "p", "dropact_p"),
                          (activations.GAAF, "k", "gaaf_k"),
                          (activations.GAAF, "shift", "gaaf_shift")]:
        assert inspect.signature(cls).parameters[arg].default == ACTIVATION_DEFAULTS[key]
    assert make("lrelu").leak == ACTIVATION_DEFAULTS["leak"]
    with pytest.raises(UserError, match="takes no parameter.*slope; its own: leak"):
        make("lrelu", slope=0.1)


def test_an_activation_gets_only_its_own_parameters():
    assert make("elu", elu_alpha=0.5).alpha == 0.5
    with pytest.raises(UserError, match="elu takes no parameter.*leak; its own: elu_alpha"):
        make("elu", leak=0.1)  # another activation's parameter
    with pytest.raises(UserError, match="relu takes no parameter.*its own: none"):
        make("relu", elu_alpha=1.0)
    gaaf = make("gaaf-tanh", gaaf_k=100.0)
    assert gaaf.kind == "tanh" and gaaf.k == 100.0


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(UserError, match="gaaf-relu"):
        make("swish")
