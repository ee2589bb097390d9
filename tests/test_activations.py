"""Activations against TF's own ops, numpy formulas, Monte-Carlo expectations and hand cases."""

import numpy as np
import pytest
import tensorflow as tf

import activations
from errors import UserError

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


@pytest.mark.parametrize("name", activations.NAMES)
@pytest.mark.parametrize("dtype", [tf.bfloat16, tf.float16])
def test_every_activation_runs_in_low_precision(name, dtype):
    x = tf.constant(X[:240].reshape(60, 4)[::3])  # [20, 4]: 4 channels for prelu
    act = make(name)
    y32 = act(x, False).numpy()
    y = act(tf.cast(x, dtype), False)
    assert y.dtype == dtype
    tol = 0.05 if dtype == tf.bfloat16 else 0.01
    np.testing.assert_allclose(tf.cast(y, tf.float32).numpy(), y32, atol=tol, rtol=tol)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(UserError, match="gaaf-relu"):
        make("swish")
