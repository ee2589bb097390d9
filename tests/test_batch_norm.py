"""BatchNorm against Keras 3's BatchNormalization, hand cases, checkpoints, layouts, precision."""

import numpy as np
import pytest
import tensorflow as tf

from batch_norm import BatchNorm


def batches(steps, shape=(8, 5, 5, 3), seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=shape) * rng.uniform(0.5, 3, size=shape[-1])
             + rng.normal(size=shape[-1])).astype(np.float32) for _ in range(steps)]


@pytest.mark.parametrize("fused", [False, True])
def test_parity_with_keras_over_several_steps_both_modes(fused):
    import keras
    ours = BatchNorm(3, decay=0.99, epsilon=1e-3, fused=fused)
    ref = keras.layers.BatchNormalization(momentum=0.99, epsilon=1e-3)
    ref.build((None, 5, 5, 3))
    gamma, beta = np.array([1.5, 0.5, 2.0], np.float32), np.array([0.1, -0.2, 0.3], np.float32)
    for layer_vars in ((ours.gamma, ours.beta), (ref.gamma, ref.beta)):
        layer_vars[0].assign(gamma)
        layer_vars[1].assign(beta)
    for x in batches(6):
        # Tolerance: float32 with different summation orders, 1e-5 relative.
        np.testing.assert_allclose(ours(x, training=True), ref(x, training=True),
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(ours.moving_mean, ref.moving_mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ours.moving_variance, ref.moving_variance, rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(ours(x, training=False), ref(x, training=False),
                                   rtol=1e-5, atol=1e-5)


def test_gradients_match_keras():
    import keras
    ours = BatchNorm(3)
    ref = keras.layers.BatchNormalization(momentum=0.99, epsilon=1e-3)
    ref.build((None, 5, 5, 3))
    x = tf.constant(batches(1)[0])
    w = tf.constant(batches(1, seed=1)[0])  # a fixed random loss weighting
    grads = []
    for layer, params in ((ours, [ours.gamma, ours.beta]), (ref, [ref.gamma, ref.beta])):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True) * w)
        grads.append(tape.gradient(loss, [x] + params))
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_ema_with_decay_one_half_over_3_then_6_gives_5():
    bn = BatchNorm(1, decay=0.5)
    bn(tf.fill([4, 1], 3.0), training=True)  # 0.5 * 0 + 0.5 * 3 = 1.5
    assert float(bn.moving_mean[0]) == 1.5
    bn(tf.fill([4, 1], 6.0), training=True)  # 0.5 * 1.5 + 0.5 * 6 = 3.75
    assert float(bn.moving_mean[0]) == 3.75
    bn.moving_mean.assign([3.0])
    bn(tf.fill([4, 1], 6.0), training=True)  # from 3, one step of 6: 0.5 * 3 + 0.5 * 6
    assert float(bn.moving_mean[0]) == 4.5
    bn2 = BatchNorm(1, decay=0.5)
    bn2.moving_mean.assign([4.0])
    bn2(tf.fill([2, 1], 6.0), training=True)  # 0.5 * 4 + 0.5 * 6 = 5
    assert float(bn2.moving_mean[0]) == 5.0


def test_constant_input_gives_beta():
    bn = BatchNorm(2)
    bn.beta.assign([0.7, -1.2])
    bn.gamma.assign([3.0, 4.0])
    y = bn(tf.fill([4, 3, 3, 2], 5.0), training=True)
    # Folded form x * scale + (beta - mean * scale), as tf.nn.batch_normalization computes it:
    # the two terms of size |mean * scale| = 5 * 4 / sqrt(1e-3) = 632 cancel to float32 precision,
    # 632 * 2^-23 = 7.5e-5 at most.
    np.testing.assert_allclose(y, np.broadcast_to([0.7, -1.2], [4, 3, 3, 2]), atol=8e-5)


def test_moving_statistics_are_in_a_checkpoint(tmp_path):
    bn = BatchNorm(3)
    for x in batches(3):
        bn(x, training=True)
    saved = bn.moving_mean.numpy(), bn.moving_variance.numpy()
    path = tf.train.Checkpoint(bn=bn).save(str(tmp_path / "ck"))
    fresh = BatchNorm(3)  # restored before any call: variables exist from __init__
    tf.train.Checkpoint(bn=fresh).restore(path).assert_consumed()
    np.testing.assert_array_equal(fresh.moving_mean, saved[0])
    np.testing.assert_array_equal(fresh.moving_variance, saved[1])
    assert not fresh.moving_mean.trainable and fresh.gamma.trainable


def test_test_batch_stats_switch_uses_batch_statistics_at_inference():
    x = batches(1)[0]
    normal, blog = BatchNorm(3), BatchNorm(3, test_batch_stats=True)
    y_blog = blog(x, training=False).numpy()
    # Batch statistics: each channel of the output has mean ~0 and variance ~1.
    np.testing.assert_allclose(y_blog.mean((0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(y_blog.var((0, 1, 2)), 1, atol=5e-3)  # epsilon 1e-3 shrinks it
    # Moving averages still at their init (0, 1): inference is x / sqrt(1 + eps).
    np.testing.assert_allclose(normal(x, training=False), x / np.sqrt(1 + 1e-3), rtol=1e-6)
    np.testing.assert_array_equal(blog.moving_mean, np.zeros(3))  # inference never updates


@pytest.mark.parametrize("fused", [False, True])
def test_nchw_equals_nhwc_transposed(fused):
    x = batches(1)[0]
    nhwc, nchw = BatchNorm(3, fused=fused), BatchNorm(3, data_format="NCHW", fused=fused)
    try:
        y = nchw(tf.transpose(x, [0, 3, 1, 2]), training=True)
    except tf.errors.InvalidArgumentError as e:  # some CPU builds have no NCHW fused kernel
        pytest.skip(f"NCHW fused batch norm not supported on this CPU build: {e.message[:80]}")
    np.testing.assert_allclose(tf.transpose(y, [0, 2, 3, 1]), nhwc(x, training=True),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(nchw.moving_variance, nhwc.moving_variance, rtol=1e-6)


@pytest.mark.parametrize("dtype", [tf.bfloat16, tf.float16])
@pytest.mark.parametrize("fused", [False, True])
def test_low_precision_input_gives_low_precision_output_close_to_fp32(dtype, fused):
    x = batches(1)[0]
    ref, low = BatchNorm(3, fused=fused), BatchNorm(3, fused=fused)
    y = low(tf.cast(x, dtype), training=True)
    assert y.dtype == dtype and low.moving_mean.dtype == tf.float32
    tol = 0.05 if dtype == tf.bfloat16 else 5e-3  # 8 (bf16) or 11 (fp16) mantissa bits
    np.testing.assert_allclose(tf.cast(y, tf.float32), ref(x, training=True), atol=tol, rtol=tol)
    np.testing.assert_allclose(low.moving_mean, ref.moving_mean, atol=tol)


def test_fused_equals_written_out_formula_on_a_conv_sized_batch():
    x = batches(3, shape=(32, 8, 8, 16))
    plain, fused = BatchNorm(16), BatchNorm(16, fused=True)
    for b in x:
        np.testing.assert_allclose(fused(b, training=True), plain(b, training=True), rtol=1e-5,
                                   atol=2e-5)
    np.testing.assert_allclose(fused.moving_variance, plain.moving_variance, rtol=1e-5)
    np.testing.assert_allclose(fused(x[0], training=False), plain(x[0], training=False),
                               rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("shape, axes, bshape", [((6, 4, 4, 3), [0, 1, 2], [-1]),
                                                 ((6, 3, 4, 4), [0, 2, 3], [-1, 1, 1]),
                                                 ((10, 3), [0], [-1])])
def test_the_papers_backward_equals_autodiff_of_the_forward(shape, axes, bshape):
    from batch_norm import batch_normalize
    rng = np.random.default_rng(3)
    x = tf.constant(rng.normal(size=shape).astype(np.float32) * 2 + 1)
    gamma, beta = tf.constant([0.5, 1.5, -2.0]), tf.constant([0.1, 0.2, 0.3])
    w = tf.constant(rng.normal(size=shape).astype(np.float32))

    def reference(x, gamma, beta):  # the forward formulas, differentiated by TF
        mean, var = tf.nn.moments(x, axes)
        xhat = (x - tf.reshape(mean, bshape)) / tf.sqrt(tf.reshape(var, bshape) + 1e-3)
        return tf.reshape(gamma, bshape) * xhat + tf.reshape(beta, bshape)

    grads = []
    for f in (lambda *a: batch_normalize(*a, 1e-3, axes, bshape)[0], reference):
        with tf.GradientTape() as tape:
            tape.watch([x, gamma, beta])
            loss = tf.reduce_sum(f(x, gamma, beta) * w)
        grads.append(tape.gradient(loss, [x, gamma, beta]))
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_statistics_keep_float32_precision_for_a_mean_ten_times_the_std():
    # The variance is the mean of squared deviations (not E[x^2] - mean^2, which would lose ~3
    # digits here): float32 precision whatever the mean.
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(64, 8, 8, 4)) + [10.0, -10.0, 0.0, 3.0]).astype(np.float32)
    bn = BatchNorm(4, decay=0.0)  # decay 0: the moving averages are the batch statistics
    y = bn(x, training=True)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(bn.moving_mean, x64.mean((0, 1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance, x64.var((0, 1, 2)), rtol=1e-5)
    expected = (x64 - x64.mean((0, 1, 2))) / np.sqrt(x64.var((0, 1, 2)) + 1e-3)
    # y: the float32 mean itself is off by ~2e-5 at |mean| = 10 (a sum of 4096 values).
    np.testing.assert_allclose(y, expected, atol=5e-5)


def test_sync_outside_a_strategy_changes_nothing_and_the_fused_kernel_cannot_sync():
    x = batches(1)[0]
    np.testing.assert_array_equal(BatchNorm(3, sync=True)(x, training=True),
                                  BatchNorm(3)(x, training=True))
    with pytest.raises(ValueError, match="cannot synchronise"):
        BatchNorm(3, fused=True, sync=True)


def test_moving_averages_are_per_replica_variables_read_as_their_mean():
    bn = BatchNorm(3)
    for v in (bn.moving_mean, bn.moving_variance):
        assert v.synchronization == tf.VariableSynchronization.ON_READ
        assert v.aggregation == tf.VariableAggregation.MEAN


@pytest.mark.parametrize("fused", [False, True])
def test_the_moving_variance_takes_the_population_variance_not_the_papers_unbiased_one(fused):
    """The TensorFlow / Keras convention of the module docstring: the moving variance moves
    towards var_B = mean((x - mu_B)^2), divided by m, not Algorithm 2's m / (m - 1) * var_B."""
    x = np.array([1.0, 2.0, 4.0, 9.0], np.float32)  # m = 4 values of one channel
    bn = BatchNorm(1, decay=0.5, fused=fused)
    bn(tf.constant(x.reshape(4, 1, 1, 1)), training=True)  # NHWC, rank 4 for the fused kernel
    np.testing.assert_allclose(bn.moving_mean.numpy(), [0.5 * 4.0], rtol=1e-6)
    # Population variance 38 / 4 = 9.5 (the unbiased one, 38 / 3, would give 6.83).
    np.testing.assert_allclose(bn.moving_variance.numpy(), [0.5 + 0.5 * 9.5], rtol=1e-6)
