"""Probes: record what flows through the layers of a model, and recompute batch norm's statistics.

A probe wraps a layer class's `__call__` for the length of a `with` block, so an ordinary eager
forward pass also hands each layer's input and output to a Python function. Used by
`eval.py --recompute-bn-stats` and by the diagnostics (lab/diagnostics.py).

Recomputing the statistics (Li et al. 2019, arXiv 1801.05134, section 5; and the remedy for runs
too short for the moving averages): set every BatchNorm layer's moving mean and variance to the
exact mean and (population) variance of its input in inference mode over a set of images. Layers
are done in the order the forward pass calls them, each with the earlier layers already
recomputed, so afterwards every layer's statistics are those of the input it receives at
inference.
"""

import contextlib

class _Stop(Exception):
    """Raised inside a forward pass once the layer of interest has been recorded."""


@contextlib.contextmanager
def recording(cls, record):
    """While active, every `cls` module called as m(x, training) also calls record(m, x, y).

    The forward pass runs eagerly (the model is called directly, not through a tf.function), so
    the Python hook sees every layer's tensors.
    """
    original = cls.__call__

    def hooked(self, x, training):
        y = original(self, x, training)
        record(self, x, y)
        return y

    cls.__call__ = hooked
    try:
        yield
    finally:
        cls.__call__ = original


def named(model, cls):
    """{id(module): 'path/in/model'} of every `cls` module inside `model`."""
    return {id(m): "/".join(map(str, path))
            for path, m in model._flatten(predicate=lambda v: isinstance(v, cls), with_path=True)}


def channel_axis(module, x):
    """The channel axis of a BatchNorm input: the last one, or 1 for NCHW 4-D tensors."""
    return 1 if x.shape.rank == 4 and getattr(module, "data_format", "NHWC") == "NCHW" else -1


class Moments:
    """Running per-channel count, sum and sum of squares in float64: exact mean and variance."""

    def __init__(self):
        self.n, self.sum, self.sumsq = 0, 0.0, 0.0

    def add(self, x, axis):
        import numpy as np
        x = np.moveaxis(np.asarray(x, np.float64), axis, -1)
        x = x.reshape(-1, x.shape[-1])  # [values, C]
        self.n += x.shape[0]
        self.sum = self.sum + x.sum(0)
        self.sumsq = self.sumsq + (x * x).sum(0)

    def mean(self):
        return self.sum / self.n

    def variance(self):  # population variance, as batch norm uses
        return self.sumsq / self.n - self.mean() ** 2


def call_order(model, cls, batch):
    """The `cls` modules of `model` in the order one inference forward pass calls them."""
    order = []
    with recording(cls, lambda m, x, y: order.append(m) if m not in order else None):
        model(batch, training=False)
    return order


def bn_input_moments(model, batches, only=None):
    """{module: Moments of its input} for every BatchNorm (or just `only`), in inference mode."""
    from batch_norm import BatchNorm

    moments = {}

    def record(m, x, y):
        if only is None or m is only:
            moments.setdefault(m, Moments()).add(x, channel_axis(m, x))
            if only is not None:
                raise _Stop  # nothing after this layer is needed
    with recording(BatchNorm, record):
        for batch in batches:
            try:
                model(batch, training=False)
            except _Stop:
                pass
    return moments


def recompute_bn_stats(model, batches):
    """Set every BatchNorm's moving mean / variance to the exact statistics of its inference input.

    Layer by layer in call order (each pass stops at the layer being recomputed), so every layer
    sees the earlier layers' new statistics. Returns [(layer, old mean, old var, new mean,
    new var)] with numpy [C] vectors.
    """
    import numpy as np
    from batch_norm import BatchNorm

    batches = list(batches)
    names = named(model, BatchNorm)
    changes = []
    for m in call_order(model, BatchNorm, batches[0]):
        moments = bn_input_moments(model, batches, only=m)[m]
        old_mean, old_var = m.moving_mean.numpy(), m.moving_variance.numpy()
        m.moving_mean.assign(moments.mean().astype(np.float32))
        m.moving_variance.assign(moments.variance().astype(np.float32))
        changes.append((names[id(m)], old_mean, old_var, moments.mean(), moments.variance()))
    return changes
