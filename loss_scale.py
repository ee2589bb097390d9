"""Dynamic loss scaling for float16 mixed precision (Micikevicius et al. 2017, arXiv 1710.03740).

float16 has 5 exponent bits: gradients below ~6e-8 flush to zero. Multiplying the loss by a large
scale S moves the gradients into float16's range; dividing them by S afterwards gives the true
gradient (in float32, since the variables are float32):

    g = d(S * loss)/dw / S

When a scaled gradient overflows (inf or nan), the step is skipped and S is halved; after
`growth_interval` good steps in a row S is doubled. bfloat16 has float32's exponent range and needs
no scaling; float32 runs use scale 1 and never change it.
"""

import tensorflow as tf


class DynamicLossScale(tf.Module):
    """S, halved on overflow and doubled after `growth_interval` finite steps in a row."""

    def __init__(self, initial_scale=2.0 ** 15, growth_interval=2000, name="loss_scale"):
        super().__init__(name=name)
        self.growth_interval = growth_interval
        # Scalars, float32 / int64, part of every checkpoint so a resumed run keeps its scale.
        self.scale = tf.Variable(initial_scale, dtype=tf.float32, trainable=False, name="scale")
        self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="good_steps")

    def unscale(self, grads):
        """Divide scaled gradients by S; return them and whether all are finite."""
        inv = 1.0 / self.scale
        grads = [g * inv for g in grads]
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
        return grads, finite

    def update(self, finite):
        """After a step: count a good step (and maybe double S) or halve S after an overflow."""
        grow = tf.logical_and(finite, self.good_steps + 1 >= self.growth_interval)
        new_scale = tf.where(finite, tf.where(grow, self.scale * 2.0, self.scale),
                             tf.maximum(self.scale * 0.5, 1.0))
        new_good = tf.where(tf.logical_and(finite, tf.logical_not(grow)),
                            self.good_steps + 1, tf.zeros_like(self.good_steps))
        self.scale.assign(new_scale)
        self.good_steps.assign(new_good)
