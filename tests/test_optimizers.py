"""Optimizers step for step against keras.optimizers on the same gradients; no retracing."""

import numpy as np
import pytest
import tensorflow as tf

import optimizers
from errors import UserError

LRS = [0.1, 0.1, 0.05, 0.05, 0.2, 0.01, 0.01, 0.3, 0.1, 0.02, 0.02, 0.07]


def gradient_sequence(shapes, steps, seed=0):
    rng = np.random.default_rng(seed)
    return [[rng.normal(size=s).astype(np.float32) for s in shapes] for _ in range(steps)]


@pytest.mark.parametrize("name, keras_kwargs", [
    ("sgd", dict(momentum=0.0)),
    ("momentum", dict(momentum=0.9)),
    ("nesterov", dict(momentum=0.9, nesterov=True)),
    ("adam", dict()),
])
def test_step_for_step_equal_to_keras(name, keras_kwargs):
    import keras
    shapes = [(3, 3, 2, 4), (4,), (5, 2)]
    init = gradient_sequence(shapes, 1, seed=9)[0]
    ours_vars = [tf.Variable(v) for v in init]
    keras_vars = [tf.Variable(v) for v in init]
    ours = optimizers.build(name, ours_vars, momentum=0.9)
    if name == "adam":
        ref = keras.optimizers.Adam(learning_rate=LRS[0])
    else:
        ref = keras.optimizers.SGD(learning_rate=LRS[0], **keras_kwargs)
    for step, grads in enumerate(gradient_sequence(shapes, len(LRS))):
        ref.learning_rate.assign(LRS[step])  # the lr changes between steps
        ref.apply_gradients(zip([tf.constant(g) for g in grads], keras_vars))
        ours.apply([tf.constant(g) for g in grads], tf.constant(LRS[step], tf.float32))
        for a, b in zip(ours_vars, keras_vars):
            # float32, same formulas, different operation order: 1e-5 relative, and 5e-6 absolute
            # for weights that pass near zero (12 steps of updates of size up to 0.3).
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=5e-6)
    assert int(ours.iterations) == len(LRS)


def test_apply_with_new_lr_tensors_traces_once():
    w = tf.Variable(tf.ones([3]))
    opt = optimizers.build("momentum", [w])
    traces = []

    @tf.function
    def step(lr):
        traces.append(1)  # runs only while tracing
        opt.apply([tf.ones([3])], lr)

    for lr in LRS:
        step(tf.constant(lr, tf.float32))
    assert len(traces) == 1 and int(opt.iterations) == len(LRS)


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_slots_are_checkpointed_and_restorable_before_the_first_step(name, tmp_path):
    w = tf.Variable(tf.ones([2, 2]))
    opt = optimizers.build(name, [w])
    for _ in range(3):
        opt.apply([tf.fill([2, 2], 0.5)], tf.constant(0.1))
    path = tf.train.Checkpoint(w=w, opt=opt).save(str(tmp_path / "ck"))
    w2 = tf.Variable(tf.zeros([2, 2]))
    opt2 = optimizers.build(name, [w2])
    tf.train.Checkpoint(w=w2, opt=opt2).restore(path).assert_consumed()
    for a, b in zip(opt.variables, opt2.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(opt2.iterations) == 3


def test_momentum_by_hand():
    # v1 = -0.1 * 1 = -0.1, w1 = 1 - 0.1 = 0.9; v2 = 0.9 * -0.1 - 0.1 = -0.19, w2 = 0.71
    w = tf.Variable([1.0])
    opt = optimizers.build("momentum", [w], momentum=0.9)
    opt.apply([tf.constant([1.0])], tf.constant(0.1))
    opt.apply([tf.constant([1.0])], tf.constant(0.1))
    assert float(w[0]) == pytest.approx(0.71, abs=1e-7)


def test_unknown_optimizer():
    with pytest.raises(UserError, match="nesterov"):
        optimizers.build("rmsprop", [])
