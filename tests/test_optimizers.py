"""Optimizers step for step against keras.optimizers on the same gradients; by hand; no retracing;
slots in checkpoints; the fused kernels equal to the written-out formulas."""

import numpy as np
import pytest
import tensorflow as tf

import optimizers
from plumbing.errors import UserError

# A learning rate that changes between steps, as a schedule would.
LRS = [0.1, 0.1, 0.05, 0.05, 0.2, 0.01, 0.01, 0.3, 0.1, 0.02, 0.02, 0.07]
SHAPES = [(3, 3, 2, 4), (4,), (5, 2)]  # a conv kernel, a bias, a dense kernel
# The fused Adam kernel computes 1 - beta_2 in float32, 1 - float32(0.999) = 0.00099998713, where
# Keras and the written-out version use float32(0.001): v is 1.3e-5 relative smaller, each step
# ~6e-6 relative larger; after 12 steps of up to 0.3 the weights differ by up to 5.6e-6
# (test_fused_adam_is_the_formula_with_float32_one_minus_beta pins this down).
ADAM_FUSED_ATOL = 1e-5


def gradient_sequence(shapes, steps, seed=0):
    rng = np.random.default_rng(seed)
    return [[rng.normal(size=s).astype(np.float32) for s in shapes] for _ in range(steps)]


def keras_reference(name):
    import keras
    if name == "adam":  # defaults: beta_1 0.9, beta_2 0.999, epsilon 1e-7
        return keras.optimizers.Adam(learning_rate=LRS[0])
    return keras.optimizers.SGD(learning_rate=LRS[0], momentum=0.0 if name == "sgd" else 0.9,
                                nesterov=name == "nesterov")


@pytest.mark.parametrize("fused", [False, True], ids=["written-out", "fused"])
@pytest.mark.parametrize("name", optimizers.NAMES)
def test_step_for_step_equal_to_keras(name, fused):
    init = gradient_sequence(SHAPES, 1, seed=9)[0]
    ours_vars = [tf.Variable(v) for v in init]
    keras_vars = [tf.Variable(v) for v in init]
    ours = optimizers.build(name, ours_vars, momentum=0.9, fused=fused)
    ref = keras_reference(name)
    step = tf.function(ours.apply)  # as train.py calls it
    for i, grads in enumerate(gradient_sequence(SHAPES, len(LRS))):
        ref.learning_rate.assign(LRS[i])  # the lr changes between steps
        ref.apply_gradients(zip([tf.constant(g) for g in grads], keras_vars))
        step([tf.constant(g) for g in grads], tf.constant(LRS[i], tf.float32))
        for a, b in zip(ours_vars, keras_vars):
            # Same formulas in the same float32 order: equal to rounding, 1e-6 relative, 1e-7
            # absolute for weights passing near zero; weights are ~1 and steps up to 0.3.
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6,
                                       atol=ADAM_FUSED_ATOL if name == "adam" and fused else 1e-7)
    assert int(ours.iterations) == len(LRS) == int(ref.iterations)


def test_momentum_by_hand():
    # v1 = -0.1 * 1 = -0.1, w1 = 1 - 0.1 = 0.9; v2 = 0.9 * -0.1 - 0.1 = -0.19, w2 = 0.71
    w = tf.Variable([1.0])
    opt = optimizers.build("momentum", [w], momentum=0.9)
    opt.apply([tf.constant([1.0])], tf.constant(0.1))
    opt.apply([tf.constant([1.0])], tf.constant(0.1))
    assert float(w[0]) == pytest.approx(0.71, abs=1e-7)
    assert float(opt.velocities[0][0]) == pytest.approx(-0.19, abs=1e-7)


def test_nesterov_by_hand():
    # v1 = -0.1, w1 = 1 + 0.9 * -0.1 - 0.1 = 0.81; v2 = -0.19, w2 = 0.81 - 0.171 - 0.1 = 0.539
    w = tf.Variable([1.0])
    opt = optimizers.build("nesterov", [w], momentum=0.9)
    opt.apply([tf.constant([1.0])], tf.constant(0.1))
    assert float(w[0]) == pytest.approx(0.81, abs=1e-7)
    opt.apply([tf.constant([1.0])], tf.constant(0.1))
    assert float(w[0]) == pytest.approx(0.539, abs=1e-7)


def test_adam_first_step_is_lr_times_sign():
    # t = 1: m = 0.1 g, v = 0.001 g^2, a = lr * sqrt(0.001) / 0.1, so the step is
    # lr * g / (|g| + eps / sqrt(0.001)) = lr * sign(g) up to eps: w = 1 - 0.1 and 1 + 0.1.
    w = tf.Variable([1.0, 1.0])
    opt = optimizers.build("adam", [w])
    opt.apply([tf.constant([2.0, -3.0])], tf.constant(0.1))
    np.testing.assert_allclose(w.numpy(), [0.9, 1.1], rtol=0, atol=1e-6)


def test_adam_equals_paper_algorithm_1_with_rescaled_epsilon():
    # Kingma & Ba's algorithm 1 in float64 with eps_hat = eps / sqrt(1 - b2^t), as the docstring
    # says; 1e-5 relative: ours runs in float32.
    grads = [g[0] for g in gradient_sequence([(6,)], 8, seed=3)]
    w = tf.Variable(np.ones(6, np.float32))
    opt = optimizers.build("adam", [w], epsilon=1e-3)  # a large eps, so its scaling shows
    w_ref, m, v = np.ones(6), np.zeros(6), np.zeros(6)
    for t, (g, lr) in enumerate(zip(grads, LRS), start=1):
        opt.apply([tf.constant(g)], tf.constant(lr))
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g.astype(np.float64) ** 2
        m_hat, v_hat = m / (1 - 0.9 ** t), v / (1 - 0.999 ** t)
        w_ref -= lr * m_hat / (np.sqrt(v_hat) + 1e-3 / np.sqrt(1 - 0.999 ** t))
        np.testing.assert_allclose(w.numpy(), w_ref, rtol=1e-5)


def test_fused_adam_is_the_formula_with_float32_one_minus_beta():
    # numpy float32, every constant float32 as the kernel has it: equal to 1e-6 relative.
    init = gradient_sequence(SHAPES, 1, seed=9)[0]
    ws = [tf.Variable(v) for v in init]
    opt = optimizers.build("adam", ws, fused=True)
    ref = [v.copy() for v in init]
    ms, vs = [np.zeros_like(v) for v in init], [np.zeros_like(v) for v in init]
    one, b1, b2, eps = np.float32(1), np.float32(0.9), np.float32(0.999), np.float32(1e-7)
    for t, (grads, lr) in enumerate(zip(gradient_sequence(SHAPES, len(LRS)), LRS), start=1):
        opt.apply([tf.constant(g) for g in grads], tf.constant(lr))
        a = np.float32(lr) * np.sqrt(one - b2 ** np.float32(t)) / (one - b1 ** np.float32(t))
        for w, g, m, v in zip(ref, grads, ms, vs):
            m += (g - m) * (one - b1)
            v += (g * g - v) * (one - b2)
            w -= m * a / (np.sqrt(v) + eps)
    for w, w_ref in zip(ws, ref):
        np.testing.assert_allclose(w.numpy(), w_ref, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["momentum", "nesterov", "adam"])
def test_fused_equals_written_out_under_xla(name):
    # The fused kernels have XLA implementations too (train.py --xla compiles the whole step).
    init = gradient_sequence(SHAPES, 1, seed=5)[0]
    results = []
    for fused in (False, True):
        ws = [tf.Variable(v) for v in init]
        opt = optimizers.build(name, ws, fused=fused)
        step = tf.function(opt.apply, jit_compile=True)
        for grads, lr in zip(gradient_sequence(SHAPES, 5), LRS):
            step([tf.constant(g) for g in grads], tf.constant(lr))
        results.append([w.numpy() for w in ws])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=ADAM_FUSED_ATOL if name == "adam" else 1e-7)


@pytest.mark.parametrize("fused", [False, True], ids=["written-out", "fused"])
@pytest.mark.parametrize("name", optimizers.NAMES)
def test_apply_with_new_lr_tensors_traces_once(name, fused):
    w = tf.Variable(tf.ones([3]))
    opt = optimizers.build(name, [w], fused=fused)
    traces = []

    @tf.function
    def step(lr):
        traces.append(1)  # Python code runs only while tracing
        opt.apply([tf.ones([3])], lr)

    for lr in LRS:
        step(tf.constant(lr, tf.float32))
    assert len(traces) == 1 and int(opt.iterations) == len(LRS)


@pytest.mark.parametrize("name", optimizers.NAMES)
def test_slots_are_named_and_the_model_variables_are_not_the_optimizers(name):
    kernel, bias = tf.Variable(tf.ones([2, 3]), name="kernel"), tf.Variable(tf.ones([3]), name="bias")
    opt = optimizers.build(name, [kernel, bias])
    names = sorted(v.name for v in opt.variables)
    slots = {"sgd": [], "momentum": ["momentum"], "nesterov": ["momentum"], "adam": ["m", "v"]}
    assert names == sorted(["iterations:0"] + [f"{s}/{n}:0" for s in slots[name]
                                               for n in ("kernel", "bias")])
    assert not opt.trainable_variables
    for v in opt.variables:
        assert v.dtype in (tf.float32, tf.int64) and v.shape in ([], [2, 3], [3])


@pytest.mark.parametrize("name", optimizers.NAMES)
def test_slots_are_checkpointed_and_restorable_before_the_first_step(name, tmp_path):
    grads = [tf.constant([[0.5, -1.0], [2.0, 0.25]])]
    w = tf.Variable(tf.ones([2, 2]))
    opt = optimizers.build(name, [w])
    for _ in range(3):
        opt.apply(grads, tf.constant(0.1))
    path = tf.train.Checkpoint(w=w, opt=opt).save(str(tmp_path / "ck"))
    w2 = tf.Variable(tf.zeros([2, 2]))
    opt2 = optimizers.build(name, [w2])  # fresh: slots are zeros, no step taken yet
    tf.train.Checkpoint(w=w2, opt=opt2).restore(path).assert_consumed()
    assert int(opt2.iterations) == 3
    for a, b in zip(opt.variables, opt2.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # A resumed run takes the same next step as the uninterrupted one.
    grads = [tf.constant([[-1.0, 3.0], [0.1, 2.0]])]
    opt.apply(grads, tf.constant(0.05))
    opt2.apply(grads, tf.constant(0.05))
    np.testing.assert_array_equal(w.numpy(), w2.numpy())
    if name != "sgd":  # the slots matter: a fresh optimizer would have stepped elsewhere
        w3 = tf.Variable(w2.numpy())
        w3.assign(tf.train.load_variable(path, "w/.ATTRIBUTES/VARIABLE_VALUE"))
        optimizers.build(name, [w3]).apply(grads, tf.constant(0.05))
        assert not np.allclose(w3.numpy(), w.numpy())


def test_missing_gradient_names_the_variable():
    w = tf.Variable(tf.ones([2]), name="alpha")
    with pytest.raises(ValueError, match="alpha"):
        optimizers.build("momentum", [w]).apply([None], tf.constant(0.1))


def test_unknown_optimizer():
    with pytest.raises(UserError, match="sgd, momentum, nesterov, adam"):
        optimizers.build("rmsprop", [])
