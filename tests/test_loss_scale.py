"""Dynamic loss scaling: the unscaled gradient equals the plain one; overflow halves, growth doubles."""

import numpy as np
import tensorflow as tf

from loss_scale import DynamicLossScale


def test_scaled_fp16_gradient_equals_fp32_gradient():
    # y = sum(w * x) in float16 with tiny x: without scaling the float16 gradient underflows to 0.
    x = np.full([8], 1e-8, np.float32)
    w = tf.Variable(np.ones([8], np.float32))
    scale = DynamicLossScale(initial_scale=2.0 ** 15)
    with tf.GradientTape(persistent=True) as tape:
        loss = tf.reduce_sum(tf.cast(w, tf.float16) * tf.cast(x, tf.float16)) * 1e-3
        loss = tf.cast(loss, tf.float32)
        scaled = loss * scale.scale
    plain = tape.gradient(loss, w)
    grads, finite = scale.unscale([tape.gradient(scaled, w)])
    assert bool(finite)
    assert np.all(plain.numpy() == 0.0)  # what scaling is for: underflow without it
    # Reference: d loss / dw = x * 1e-3 = 1e-11, representable in float32; float16 rounding of
    # x (1e-8 is subnormal in float16, step 6e-8) makes the scaled path exact only to that grid.
    x16 = np.float32(np.float16(1e-8))
    np.testing.assert_allclose(grads[0].numpy(), np.full([8], x16 * 1e-3), rtol=1e-2)


def test_overflow_halves_and_skips_growth_doubles():
    scale = DynamicLossScale(initial_scale=8.0, growth_interval=3)
    _, finite = scale.unscale([tf.constant([1.0, np.inf])])
    assert not bool(finite)
    scale.update(finite)
    assert float(scale.scale) == 4.0 and int(scale.good_steps) == 0
    for expected in (4.0, 4.0, 8.0):  # two good steps keep it, the third doubles it
        scale.update(tf.constant(True))
        assert float(scale.scale) == expected
    assert int(scale.good_steps) == 0


def test_scale_never_drops_below_one():
    scale = DynamicLossScale(initial_scale=1.0)
    scale.update(tf.constant(False))
    assert float(scale.scale) == 1.0
