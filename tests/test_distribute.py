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
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(np.load(out))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """bn, default, mirrored-sync, mirrored-local, restored, wrapped-default, wrapped-mirrored,
    wrapped-mirrored-scaled: {name: arrays}, from one process."""
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
    from plumbing import distribute
    from models import layers
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
            # This replica's share of the global-batch loss (tf.distribute's convention:
            # sum over its images of xent / B + wd * sum(l2) / R), gradients summed below.
            loss = tf.nn.compute_average_loss(xent, global_batch_size=GLOBAL_BATCH) + \
                tf.nn.scale_regularization_loss(
                    WEIGHT_DECAY * tf.add_n([tf.nn.l2_loss(k) for k in kernels]))
        grads = tape.gradient(loss, variables)
        context = tf.distribute.get_replica_context()
        if context.num_replicas_in_sync > 1:  # the sum of the shares: the global gradient
            grads = context.all_reduce("sum", grads)
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
    return out, model


def wrapped(strategy, initial_scale=1.0):
    """STEPS updates of the same ResNet-8 (sync BN) by train.py's plain step under the wrappers
    (train.make_steps), with loss scale S = `initial_scale`; its variables and counters."""
    import tensorflow as tf

    import batch_norm
    import models
    import optimizers
    import train
    from loss_scale import DynamicLossScale
    from plumbing import distribute

    with strategy.scope():
        model = models.build("resnet", 10, depth=8, bn=True, seed=0)
        for bn in batch_norm.layers_of(model):
            bn.sync = True
        optimizer = optimizers.build("momentum", model.trainable_variables, momentum=0.9)
        scale = DynamicLossScale(initial_scale=initial_scale, growth_interval=2 ** 62)
        step = tf.Variable(0, dtype=tf.int64, trainable=False)
        sums = tf.Variable(tf.zeros([3], tf.float64), trainable=False)
    train_step, _ = train.make_steps(model, optimizer, WEIGHT_DECAY, scale, step, sums,
                                     strategy=strategy)
    data = distribute.distribute_batches(
        strategy, lambda: tf.data.Dataset.from_tensor_slices(
            tuple(np.stack(a) for a in zip(*global_batches()))))
    xents = [train_step(images, labels, tf.constant(LR))[0].numpy() for images, labels in data]
    out = {f"{i:03d} {v.name}": v.numpy() for i, v in enumerate(model.variables)}
    out.update(xents=np.array(xents), step=step.numpy(), epoch_sums=sums.numpy(),
               traces=train_step.experimental_get_tracing_count())
    return out


def checkpoint_round_trip(strategy, model, directory):
    """mirrored -> default -> mirrored: variables by position after each restore."""
    import tensorflow as tf

    import models
    path = tf.train.Checkpoint(model=model).save(os.path.join(directory, "mirrored"))
    single = models.build("resnet", 10, depth=8, bn=True, seed=1)  # other initial weights
    tf.train.Checkpoint(model=single).restore(path).assert_consumed()
    path = tf.train.Checkpoint(model=single).save(os.path.join(directory, "default"))
    with strategy.scope():
        again = models.build("resnet", 10, depth=8, bn=True, seed=2)
    tf.train.Checkpoint(model=again).restore(path).assert_consumed()
    out = {}
    for i, (a, b, c) in enumerate(zip(model.variables, single.variables, again.variables)):
        out[f"{i:03d} {a.name} default"] = b.numpy()
        # every replica's copy of the restored variable
        out[f"{i:03d} {a.name} copies"] = np.stack([v.numpy() for v in c.values])
    return out


def bn_layer_case(strategy):
    """One BatchNorm layer on 2 replicas, with and without sync: outputs, gradients, statistics."""
    import tensorflow as tf

    from plumbing import distribute
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
    from plumbing import distribute
    if case == "multiworker":  # one replica per process; TF_CONFIG says which worker this is
        np.savez(out, **train(distribute.make_strategy("multiworker"), sync=True)[0])
        return
    # One process for the rest (each process pays TensorFlow's start-up): 2 logical CPU devices.
    strategy = distribute.make_strategy("mirrored", virtual_devices=2)
    assert strategy.num_replicas_in_sync == 2
    results = {"bn": bn_layer_case(strategy),
               "default": train(distribute.make_strategy("default"), sync=False)[0]}
    results["mirrored-sync"], model = train(strategy, sync=True)
    results["mirrored-local"], _ = train(strategy, sync=False)
    results["restored"] = checkpoint_round_trip(strategy, model, os.path.dirname(out))
    results["wrapped-default"] = wrapped(distribute.make_strategy("default"))
    results["wrapped-mirrored"] = wrapped(strategy)
    results["wrapped-mirrored-scaled"] = wrapped(strategy, initial_scale=2.0 ** 10)
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
    """The paper's backward pass, gamma 1: dx = (dy - mean(dy) - xhat * mean(dy * xhat)) / std."""
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


def test_checkpoints_restore_across_strategies_mirrored_default_mirrored(runs):
    mirrored, restored = runs["mirrored-sync"], runs["restored"]
    names = [k for k in mirrored if k[0].isdigit()]
    for name in names:  # the ON_READ moving averages are saved as their mean: equal here (sync)
        np.testing.assert_array_equal(restored[name + " default"], mirrored[name], err_msg=name)
        for copy in restored[name + " copies"]:
            np.testing.assert_array_equal(copy, mirrored[name], err_msg=name)


def test_train_pys_step_under_the_wrappers_equals_the_reference_steps(single_device, runs):
    """train.train_step under plumbing/step_wrappers.py, on one device and on 2 replicas (each
    the mean loss of its 8 images, gradients averaged), gives the weights of the reference steps
    above (tf.distribute's loss shares, gradients summed). Loss scale 2^10 changes no bit."""
    references = {"wrapped-default": single_device, "wrapped-mirrored": runs["mirrored-sync"],
                  "wrapped-mirrored-scaled": runs["mirrored-sync"]}
    for case, reference in references.items():
        ours = runs[case]
        names = [k for k in reference if k[0].isdigit()]
        assert len(names) > 20 and set(names) <= set(ours)
        for name in names:
            # Tolerance: as for mirrored against single-device above; the two graphs differ
            # (the guard's tf.cond, a mean instead of a sum), and TensorFlow's CPU kernels may
            # round differently in each: ~1e-7 differences that grow to ~2e-5 in 3 steps.
            np.testing.assert_allclose(ours[name], reference[name], rtol=1e-4, atol=5e-5,
                                       err_msg=f"{case}: {name}")
        # The in-graph counters count the global batch: 3 steps of 16 images, traced once.
        assert int(ours["step"]) == STEPS and ours["epoch_sums"][2] == STEPS * GLOBAL_BATCH
        np.testing.assert_allclose(ours["epoch_sums"][0], ours["xents"].sum() * GLOBAL_BATCH,
                                   rtol=1e-6)
        assert int(ours["traces"]) == 1
    # S = 2^10 multiplies every gradient of the backward pass by 2^10 and the unscaling divides
    # it out: only exponents change, so every weight is bit for bit that of S = 1.
    scaled, unscaled = runs["wrapped-mirrored-scaled"], runs["wrapped-mirrored"]
    for name in (k for k in unscaled if k[0].isdigit()):
        np.testing.assert_array_equal(scaled[name], unscaled[name], err_msg=name)


# --------------------------------------------------------------------------------------------------
# train.py: no host round trip per step; the non-finite check every --check-every steps
# --------------------------------------------------------------------------------------------------

TINY = ["--dataset", "cifar10-sample", "--model", "resnet", "--depth", "8", "--bn",
        "--batch-size", "100", "--epochs", "1", "--checkpoint-every", "0", "--no-histograms"]


@pytest.fixture
def instrumented(monkeypatch):
    """Count host reads (every tensor -> numpy conversion: int(), bool(), float(), .numpy()) and
    record, at each train-step call, the count so far and the model's weights if asked."""
    from tensorflow.python.framework import ops

    import train
    record = {"reads": 0, "at_step": [], "weights": [], "keep_weights": False}
    original = ops._EagerTensorBase._numpy

    def counting(self):
        record["reads"] += 1
        return original(self)

    make_steps = train.make_steps

    def instrumented_make_steps(model, *args, **kwargs):
        train_step, eval_step = make_steps(model, *args, **kwargs)

        def step(*a):
            record["at_step"].append(record["reads"])
            result = train_step(*a)
            if record["keep_weights"]:
                reads = record["reads"]
                record["weights"].append([original(v.read_value())
                                          for v in model.trainable_variables])
                record["reads"] = reads
            return result
        step.experimental_get_tracing_count = train_step.experimental_get_tracing_count
        return step, eval_step

    monkeypatch.setattr(ops._EagerTensorBase, "_numpy", counting)
    monkeypatch.setattr(train, "make_steps", instrumented_make_steps)
    return record


def test_the_loop_reads_the_device_only_every_check_every_steps(instrumented, tmp_path):
    import train
    assert train.main(TINY + ["--max-steps", "9", "--check-every", "4",
                              "--logdir", str(tmp_path / "run")]) == 0
    at = instrumented["at_step"]
    assert len(at) == 9
    reads_between = np.diff(at)  # host reads after steps 1..8, before the next step
    expected = [1 if s % 4 == 0 else 0 for s in range(1, 9)]  # one read: bad_step
    np.testing.assert_array_equal(reads_between, expected)


def test_lr_1e30_stops_within_check_every_steps_and_no_weight_changes_after_a_bad_step(
        instrumented, tmp_path):
    import json
    import re

    import train
    from plumbing.errors import UserError
    instrumented["keep_weights"] = True
    with pytest.raises(UserError, match="non-finite") as error:
        train.main(TINY + ["--lr", "1e30", "--schedule", "constant", "--check-every", "3",
                           "--logdir", str(tmp_path / "run")])
    with open(tmp_path / "run" / "diverged.json") as f:
        diverged = json.load(f)
    bad, found = diverged["step"], diverged["found_at_step"]
    assert re.search(rf"non-finite at step {bad} \(found at step {found}, checked every 3 steps\)",
                     str(error.value))
    assert bad <= found < bad + 3 and found % 3 == 0
    # Trainable weights after steps 1, 2, ..., found. (Batch norm's moving averages are updated
    # by the forward pass of every step, good or not; the run stops before any checkpoint.)
    weights = instrumented["weights"]
    assert len(weights) == found
    # The weights after the last good step (bad - 1; step 0 = before training is not recorded,
    # so bad >= 2 here: the first step at lr 1e30 starts from finite weights and loss).
    assert bad >= 2
    for later in weights[bad - 1:]:
        for a, b in zip(weights[bad - 2], later):
            np.testing.assert_array_equal(a, b)


def checkpoint_weights(logdir):
    import tensorflow as tf
    path = tf.train.latest_checkpoint(os.path.join(logdir, "ckpt"))
    reader = tf.train.load_checkpoint(path)
    return {n: reader.get_tensor(n) for n, _ in tf.train.list_variables(path)
            if n.startswith("model/")}


def test_train_py_mirrored_multiworker_and_default_resume_and_eval(tmp_path):
    """train.py: mirrored (2 logical CPUs, sync BN) stopped after 3 steps; the same 3 steps by 2
    worker processes (multiworker) give the same checkpoint; the mirrored run resumes at the exact
    step under the default strategy; eval.py reads both log directories."""
    import json
    root = os.path.dirname(HERE)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    # A constant lr: the runs below stop at different --max-steps (a schedule would differ).
    base = [sys.executable, os.path.join(root, "train.py")] + TINY + [
        "--sync-bn", "--schedule", "constant", "--lr", "0.05"]

    def run(cmd, **kwargs):
        return subprocess.run(cmd, env=kwargs.pop("env", env), cwd=root, capture_output=True,
                              text=True, timeout=600, **kwargs)

    mirrored = str(tmp_path / "mirrored")
    first = run(base + ["--max-steps", "5", "--logdir", mirrored, "--strategy", "mirrored",
                        "--virtual-devices", "2", "--interrupt-after", "3"])
    assert first.returncode == 130 and "at step 3" in first.stdout, first.stdout + first.stderr
    after_3_steps = checkpoint_weights(mirrored)

    workers = str(tmp_path / "workers")
    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    procs = []
    try:
        for index in range(2):
            worker_env = dict(env, TF_CONFIG=json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}))
            procs.append(subprocess.Popen(
                base + ["--max-steps", "3", "--logdir", workers, "--strategy", "multiworker"],
                env=worker_env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True))
        outputs = [p.communicate(timeout=600)[0] for p in procs]
    finally:
        for p in procs:  # bounded in time: never leave a worker behind
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, output in zip(procs, outputs):
        assert p.returncode == 0, output[-3000:]
    by_workers = checkpoint_weights(workers)
    assert by_workers.keys() == after_3_steps.keys()
    for name, value in after_3_steps.items():
        # Tolerance: float32; ring all-reduce over gRPC vs in-process all-reduce.
        np.testing.assert_allclose(by_workers[name], value, rtol=1e-4, atol=5e-5, err_msg=name)

    second = run(base + ["--max-steps", "5", "--logdir", mirrored])  # the default strategy
    assert second.returncode == 0, second.stdout + second.stderr
    assert "from step 3" in second.stdout and '"steps": 5' in second.stdout
    for logdir in (mirrored, workers):
        evaluated = run([sys.executable, os.path.join(root, "eval.py"), "--logdir", logdir])
        assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
