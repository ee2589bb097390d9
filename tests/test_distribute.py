"""tf.distribute on 2 logical CPU devices against a single-device run on the same global batch.

Logical devices must be configured before TensorFlow initialises its devices, so each case runs in
a fresh process: `python tests/test_distribute.py CASE OUT.npz` (`main` below) saves arrays that
the tests compare.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

GLOBAL_BATCH, STEPS, WEIGHT_DECAY, LR = 16, 3, 5e-3, 0.1


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_case(case, tmp_path):
    """Run `case` in a fresh process; its arrays by name ("bn/...", "default/...", ...)."""
    out = str(tmp_path / f"{case}.npz")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), case, out], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(np.load(out))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """bn, default, mirrored-sync, mirrored-local: {name: arrays}, from one process."""
    arrays = run_case("mirrored", tmp_path_factory.mktemp("mirrored"))
    out = {}
    for key, value in arrays.items():
        case, name = key.split("/", 1)
        out.setdefault(case, {})[name] = value
    return out


# --------------------------------------------------------------------------------------------------
# What each process runs
# --------------------------------------------------------------------------------------------------

def global_batches():
    """STEPS global batches of (images [16, 32, 32, 3] float32, labels [16] int32)."""
    rng = np.random.default_rng(0)
    # Per-image offsets so that the two halves of a batch have different statistics.
    return [((rng.normal(size=[GLOBAL_BATCH, 32, 32, 3])
              + rng.normal(size=[GLOBAL_BATCH, 1, 1, 1]) * 2).astype(np.float32),
             rng.integers(0, 10, GLOBAL_BATCH).astype(np.int32)) for _ in range(STEPS)]


def train(strategy, sync, optimizer_name="momentum"):
    """STEPS updates of a ResNet-8 under `strategy`; returns its variables by name."""
    import tensorflow as tf

    import batch_norm
    import distribute
    import layers
    import models
    import optimizers

    with strategy.scope():
        model = models.build("resnet", 10, depth=8, bn=True, seed=0)
        for bn in batch_norm.layers_of(model):
            bn.sync = sync
        optimizer = optimizers.build(optimizer_name, model.trainable_variables, momentum=0.9)
    variables, kernels = model.trainable_variables, layers.decay_kernels(model)

    def replica_step(images, labels):
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
            # This replica's share of the global-batch loss (distribute.py).
            loss = tf.nn.compute_average_loss(xent, global_batch_size=GLOBAL_BATCH) + \
                tf.nn.scale_regularization_loss(
                    WEIGHT_DECAY * tf.add_n([tf.nn.l2_loss(k) for k in kernels]))
        grads = optimizers.sum_over_replicas(tape.gradient(loss, variables))
        optimizer.apply(grads, tf.constant(LR))

    @tf.function
    def step(images, labels):
        strategy.run(replica_step, args=(images, labels))

    data = distribute.distribute_batches(
        strategy, lambda: tf.data.Dataset.from_tensor_slices(
            tuple(np.stack(a) for a in zip(*global_batches()))))
    for images, labels in data:
        step(images, labels)
    out = {f"{i:03d} {v.name}": v.numpy() for i, v in enumerate(model.variables)}
    # Each replica's own copy of the first batch norm's moving mean.
    first_bn = batch_norm.layers_of(model)[0]
    copies = getattr(first_bn.moving_mean, "values", [first_bn.moving_mean])
    out["replica_moving_means"] = np.stack([c.numpy() for c in copies])
    out["read_moving_mean"] = first_bn.moving_mean.numpy()  # read outside the replicas
    return out


def bn_layer_case(strategy):
    """One BatchNorm layer on 2 replicas, with and without sync: outputs, gradients, statistics."""
    import tensorflow as tf

    import distribute
    from batch_norm import BatchNorm

    rng = np.random.default_rng(1)
    x = (rng.normal(size=[8, 3, 3, 2]) * [1.0, 3.0] + [0.5, -1.0]).astype(np.float32)
    x[4:] += 2.0  # the second replica's half has another mean
    w = rng.normal(size=x.shape).astype(np.float32)  # loss = sum(y * w) / 8
    out = {"x": x, "w": w}
    for sync in (False, True):
        with strategy.scope():
            bn = BatchNorm(2, decay=0.5, sync=sync)

        def replica_fn(x, w):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = bn(x, training=True)
                loss = tf.reduce_sum(y * w) / 8.0
            dx, dgamma = tape.gradient(loss, [x, bn.gamma])
            return y, dx, tf.distribute.get_replica_context().all_reduce("sum", dgamma)

        data = distribute.distribute_batches(
            strategy, lambda: tf.data.Dataset.from_tensors((x, w)))
        results = strategy.run(tf.function(replica_fn), args=next(iter(data)))
        name = "sync" if sync else "local"
        for key, value in zip(("y", "dx", "dgamma"), results):
            out[f"{name}_{key}"] = np.concatenate(
                [v.numpy() for v in strategy.experimental_local_results(value)])[:8]
        out[f"{name}_dgamma"] = out[f"{name}_dgamma"][:2]  # the same sum on both replicas
        for stat in ("moving_mean", "moving_variance"):
            variable = getattr(bn, stat)
            out[f"{name}_{stat}_copies"] = np.stack([c.numpy() for c in variable.values])
            out[f"{name}_{stat}_read"] = variable.numpy()  # read outside the replicas
    return out


def main(case, out):
    import distribute
    if case == "multiworker":  # one replica per process; TF_CONFIG says which worker this is
        np.savez(out, **train(distribute.make_strategy("multiworker"), sync=True))
        return
    # One process for the rest (each process pays TensorFlow's start-up): 2 logical CPU devices.
    strategy = distribute.make_strategy("mirrored", virtual_devices=2)
    assert strategy.num_replicas_in_sync == 2
    results = {"bn": bn_layer_case(strategy),
               "default": train(distribute.make_strategy("default"), sync=False),
               "mirrored-sync": train(strategy, sync=True),
               "mirrored-local": train(strategy, sync=False)}
    np.savez(out, **{f"{case}/{k}": v for case, r in results.items() for k, v in r.items()})


if __name__ == "__main__":
    main(*sys.argv[1:])


# --------------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------------

def numpy_bn(x, eps=1e-3):
    """xhat of x [n, H, W, C] with its own statistics (gamma 1, beta 0); and mean, var [C]."""
    mean, var = x.mean((0, 1, 2)), x.var((0, 1, 2))
    return (x - mean) / np.sqrt(var + eps), mean, var


def numpy_bn_dx(x, dy, eps=1e-3):
    """The paper's backward pass for gamma 1: dx = (dy - mean(dy) - xhat * mean(dy * xhat)) / std."""
    xhat, _, var = numpy_bn(x, eps)
    return (dy - dy.mean((0, 1, 2)) - xhat * (dy * xhat).mean((0, 1, 2))) / np.sqrt(var + eps)


@pytest.fixture
def bn_case(runs):
    return runs["bn"]


def test_per_replica_batch_norm_uses_each_share_and_keeps_its_own_moving_averages(bn_case):
    r = bn_case
    x, dy = r["x"], r["w"] / 8.0
    halves = [slice(0, 4), slice(4, 8)]
    # Tolerance: float32 sums of 36 values, 1e-5.
    for h in halves:  # each replica normalises its half with the half's statistics
        np.testing.assert_allclose(r["local_y"][h], numpy_bn(x[h])[0], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(r["local_dx"][h], numpy_bn_dx(x[h], dy[h]), rtol=1e-4,
                                   atol=1e-5)
    means = np.stack([numpy_bn(x[h])[1] for h in halves])  # [2 replicas, C]
    variances = np.stack([numpy_bn(x[h])[2] for h in halves])
    # decay 0.5 from (0, 1): each copy is the EMA of its own half's statistics ...
    np.testing.assert_allclose(r["local_moving_mean_copies"], 0.5 * means, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(r["local_moving_variance_copies"], 0.5 + 0.5 * variances,
                               rtol=1e-5)
    # ... and read outside the replicas (checkpoint, evaluation) they give their mean: the moving
    # mean of the global batch mean, and of the mean per-replica variance, which is smaller than
    # the global variance by the variance of the two half means.
    _, global_mean, global_var = numpy_bn(x)
    np.testing.assert_allclose(r["local_moving_mean_read"], 0.5 * global_mean, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(r["local_moving_variance_read"],
                               0.5 + 0.5 * (global_var - means.var(0)), rtol=1e-5)


def test_sync_batch_norm_equals_batch_norm_of_the_global_batch(bn_case):
    r = bn_case
    x, dy = r["x"], r["w"] / 8.0
    xhat, mean, var = numpy_bn(x)
    np.testing.assert_allclose(r["sync_y"], xhat, rtol=1e-5, atol=1e-5)
    # The gradient of the global loss, through the statistics of the global batch.
    np.testing.assert_allclose(r["sync_dx"], numpy_bn_dx(x, dy), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(r["sync_dgamma"], (dy * xhat).sum((0, 1, 2)), rtol=1e-4,
                               atol=1e-6)
    for copy in r["sync_moving_mean_copies"]:  # the same on both replicas
        np.testing.assert_allclose(copy, 0.5 * mean, rtol=1e-5, atol=1e-6)
    for copy in r["sync_moving_variance_copies"]:
        np.testing.assert_allclose(copy, 0.5 + 0.5 * var, rtol=1e-5)


@pytest.fixture
def single_device(runs):
    return runs["default"]


def test_mirrored_sync_bn_training_equals_single_device_on_the_same_global_batch(
        single_device, runs):
    mirrored = runs["mirrored-sync"]
    names = [k for k in single_device if k[0].isdigit()]
    assert len(names) > 20 and set(names) <= set(mirrored)
    for name in names:
        # Tolerance: float32, 3 momentum steps with lr 0.1 on weights of size ~0.1: the all-reduces
        # add in another order and the ~1e-7 differences grow to ~2e-5 through the steps.
        np.testing.assert_allclose(mirrored[name], single_device[name], rtol=1e-4, atol=5e-5,
                                   err_msg=name)
    copies = mirrored["replica_moving_means"]
    np.testing.assert_array_equal(copies[0], copies[1])  # identical on every replica


def test_mirrored_without_sync_differs_from_single_device_and_between_replicas(
        single_device, runs):
    mirrored = runs["mirrored-local"]
    copies = mirrored["replica_moving_means"]
    assert np.abs(copies[0] - copies[1]).max() > 1e-3  # each replica's own statistics
    np.testing.assert_allclose(copies.mean(0), mirrored["read_moving_mean"], rtol=1e-6,
                               atol=1e-7)
    kernel = next(k for k in sorted(single_device) if k.endswith("kernel:0"))
    assert np.abs(mirrored[kernel] - single_device[kernel]).max() > 1e-4


def test_multiworker_two_processes_equal_the_two_device_mirrored_run(tmp_path, runs):
    """2 worker processes on 127.0.0.1, one CPU replica each, against 2 logical devices."""
    import json
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    try:
        for index in range(2):
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}))
            procs.append(subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "multiworker",
                 str(tmp_path / f"worker{index}.npz")], env=env, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True))
        outputs = [p.communicate(timeout=240)[0] for p in procs]
    finally:
        for p in procs:  # bounded in time: never leave a worker behind
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, output in zip(procs, outputs):
        assert p.returncode == 0, output[-3000:]
    mirrored = runs["mirrored-sync"]
    for index in range(2):
        worker = dict(np.load(tmp_path / f"worker{index}.npz"))
        for name in (k for k in mirrored if k[0].isdigit()):
            # Tolerance: float32; ring all-reduce over gRPC adds in another order.
            np.testing.assert_allclose(worker[name], mirrored[name], rtol=1e-4, atol=5e-5,
                                       err_msg=f"worker {index}: {name}")
