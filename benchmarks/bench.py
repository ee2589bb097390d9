"""Speed of this project against stock Keras and PyTorch, measured in one run on one machine.

    python -m benchmarks.bench                        # ResNet-20, batch 128, everything
    python -m benchmarks.bench --models resnet20,resnet56,allcnn --steps 30 --reps 5
    python -m benchmarks.bench --only input           # just the input pipeline
    python -m benchmarks.bench --write docs/PERFORMANCE.md   # also write the table there

Run it from the repository root (it imports the project's modules).

Every figure is measured in its own subprocess (a clean TensorFlow / PyTorch, its own peak memory),
`--reps` times after a warm-up (tracing, XLA compilation, oneDNN primitive caches), and reported as
the median with the spread (min-max). All training rows train on the same pre-made batches of
random images (the input pipeline is measured on its own), with momentum SGD and weight decay.

Rows:
- ours fp32 / fp32+fused-bn / xla / bf16 / nchw: this project's train step (train.build, as train.py runs it);
- keras fit: the same architecture in stock tf.keras layers trained with model.fit
  (benchmarks/bench_peers.py);
- torch eager: the same architecture in PyTorch (if `torch` is installed; skipped otherwise);
- input: images/s of parse + augment + batch, per-record map (the TF1 tutorial) vs this project's
  batch-wise in-memory pipeline;
- eval: images/s of this project's eval step (inference mode, batch 500);
- first step: seconds from process start to the end of the first training step of train.py.

GFLOP/s: the forward FLOPs of one image are counted from the traced graph (2 * MACs of every
Conv2D and MatMul); a training step is taken as 3x the forward (backward ~ 2x forward), the
usual approximation. Peak: cores x clock x 64 fp32 FLOP/cycle (two AVX-512 FMA units x 16 lanes x
2), read from /proc/cpuinfo; the real turbo clock may differ, so the percentage is indicative.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

# The repository root: the project's modules are imported from there, train.py is run there.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # also when started as `python benchmarks/bench.py`
    sys.path.insert(0, ROOT)
MODELS = {"resnet20": dict(model="resnet", depth=20), "resnet56": dict(model="resnet", depth=56),
          "allcnn": dict(model="allcnn")}


# --------------------------------------------------------------------------------------------------
# Workers: each runs in its own process and prints one JSON line
# --------------------------------------------------------------------------------------------------

def ours(model, variant, batch_size, strategy=None):
    """This project's model and steps as train.py builds them (train.build), for a benchmark
    model and variant: bf16, nchw, fused (batch norm's fused kernel), xla."""
    import train

    argv = [f"--{k}={v}" for k, v in MODELS[model].items()] + [
        "--bn", "--weight-decay", "1e-4", "--batch-size", str(batch_size), "--logdir", "unused",
        "--precision", "bf16" if "bf16" in variant else "fp32",
        "--data-format", "NCHW" if "nchw" in variant else "NHWC"]
    argv += ["--bn-fused"] if "fused" in variant else []
    argv += ["--xla"] if "xla" in variant else []
    return train.build(train.parse_args(argv), 10, strategy)


def batches(n, batch_size, seed=0):
    import numpy as np
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=[batch_size, 32, 32, 3]).astype(np.float32),
             rng.integers(0, 10, batch_size).astype(np.int32)) for _ in range(n)]


def timed_reps(run_steps, reps, steps, batch_size):
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run_steps(steps)
        rates.append(steps * batch_size / (time.perf_counter() - t0))
    return rates


def forward_flops(model, batch_size):
    """FLOPs of one image's forward pass, from the Conv2D / MatMul ops of the traced graph."""
    import numpy as np
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec([batch_size, 32, 32, 3], tf.float32))
    total = 0
    for op in fn.graph.get_operations():
        if op.type == "Conv2D":
            out = op.outputs[0].shape.as_list()
            kh, kw, cin, _ = op.inputs[1].shape.as_list()
            total += 2 * np.prod(out) * kh * kw * cin
        elif op.type == "MatMul":
            m, k = op.inputs[0].shape.as_list()
            n = op.outputs[0].shape.as_list()[1]
            total += 2 * m * k * n
    return total / batch_size


def worker_ours(args):
    import tensorflow as tf

    t = ours(args.model, args.variant, args.batch_size)
    model, train_step, eval_step, variant = t.model, t.train_step, t.eval_step, args.variant
    data = [(tf.constant(x), tf.constant(y)) for x, y in batches(8, args.batch_size)]
    lr = tf.constant(0.01, tf.float32)

    def run(n):
        for i in range(n):
            loss, _ = train_step(*data[i % len(data)], lr)
        float(loss)  # wait for the last step

    try:
        run(3)  # warm-up: trace, compile, oneDNN primitive caches
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as e:
        return {"skipped": f"not supported on this device ({e.message.splitlines()[0][:60]})"}
    rates = timed_reps(run, args.reps, args.steps, args.batch_size)
    out = {"rates": rates, "flops_per_image": forward_flops(model, args.batch_size)}
    if variant == "fp32":  # evaluation speed, once
        test = tf.constant(batches(1, 500, seed=1)[0][0])
        labels = tf.zeros([500], tf.int32)
        eval_step(test, labels)
        t0 = time.perf_counter()
        for _ in range(args.reps * 2):
            r = eval_step(test, labels)
        float(r[0])
        out["eval_rate"] = args.reps * 2 * 500 / (time.perf_counter() - t0)
    return out


def worker_keras(args):
    import keras
    import numpy as np

    from benchmarks import bench_peers

    if "bf16" in args.variant:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    spec = MODELS[args.model]
    model = bench_peers.keras_resnet_v1(spec["depth"]) if spec["model"] == "resnet" else \
        bench_peers.keras_allcnn()
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9, weight_decay=1e-4),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = batches(8, args.batch_size)
    x = np.concatenate([d[0] for d in data])
    y = np.concatenate([d[1] for d in data])
    times = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)

    # Epoch 0 is the warm-up (tracing); then `reps` epochs of `steps` steps each.
    n = args.steps * args.batch_size
    reps_x = np.concatenate([x] * (n // len(x) + 1))[:n]
    reps_y = np.concatenate([y] * (n // len(y) + 1))[:n]
    model.fit(reps_x, reps_y, batch_size=args.batch_size, epochs=args.reps + 1, verbose=0,
              shuffle=False, callbacks=[Clock()])
    return {"rates": [n / t for t in times[1:]]}


def worker_torch(args):
    try:
        import torch
    except ImportError:
        return {"skipped": "torch not installed (optional: pip install torch==2.13.0)"}
    from benchmarks import bench_peers

    torch.set_num_threads(os.cpu_count())
    spec = MODELS[args.model]
    model = bench_peers.torch_resnet_v1(spec["depth"]) if spec["model"] == "resnet" else \
        bench_peers.torch_allcnn()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    data = [(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), torch.from_numpy(y).long())
            for x, y in batches(8, args.batch_size)]
    model.train()

    def run(n):
        for i in range(n):
            x, y = data[i % len(data)]
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()

    run(3)
    return {"rates": timed_reps(run, args.reps, args.steps, args.batch_size),
            "version": torch.__version__}


def worker_input(args):
    """Images/s of parse + augment + batch: per-record map vs batch-wise in memory (bench_input)."""
    from benchmarks import bench_input
    from plumbing import cifar_download
    import cifar_input

    root = cifar_download.find_data(args.data_dir, args.dataset)
    images, labels = cifar_input.load_split(root, "train", args.dataset)
    mean, std = cifar_input.channel_stats(images)
    limit = min(len(labels), 20000) // args.batch_size * args.batch_size
    records = bench_input.per_record_dataset(os.path.join(root, "cifar-10-batches-bin"),
                                             args.batch_size, mean, std)
    bench_input.rate(records, 2048)  # warm-up
    per = [bench_input.rate(records, limit) for _ in range(args.reps)]
    pipeline = cifar_input.Pipeline(images, labels, args.batch_size, seed=0, mean=mean, std=std)
    bench_input.rate(pipeline.epoch(0), 2048)
    batch = [bench_input.rate(pipeline.epoch(e + 1), limit) for e in range(args.reps)]
    return {"per_record": per, "batch_wise": batch, "images": len(labels)}


def worker_startup(args):
    """Seconds from `python train.py` to its first finished step (train.py measures and prints)."""
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), "--dataset", args.dataset,
           "--data-dir", args.data_dir,
           "--model", "resnet", "--depth", "20", "--bn", "--max-steps", "1",
           "--no-histograms", "--logdir", os.path.join("/tmp", f"rawtf-startup-{os.getpid()}")]
    values = []
    for _ in range(args.reps):
        import shutil
        shutil.rmtree(cmd[-1], ignore_errors=True)
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT).stdout
        line = next(l for l in out.splitlines() if l.startswith("done: "))
        values.append(json.loads(line[6:])["first_step_seconds"])
    return {"seconds": values}


def worker_profile(args):
    """Where the time of one train step goes: TF profiler trace, ops grouped by name scope."""
    import glob
    import shutil
    import tempfile

    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    train_step = ours(args.model, args.variant, args.batch_size).train_step
    data = [(tf.constant(x), tf.constant(y)) for x, y in batches(4, args.batch_size)]
    lr = tf.constant(0.01)
    for i in range(3):
        float(train_step(*data[i % 4], lr)[0])
    logdir = tempfile.mkdtemp(prefix="rawtf-profile-")
    tf.profiler.experimental.start(logdir)
    t0 = time.perf_counter()
    for i in range(args.steps):
        loss, _ = train_step(*data[i % 4], lr)
    float(loss)
    wall = time.perf_counter() - t0
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    with open(glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb"))[0],
              "rb") as f:
        space.ParseFromString(f.read())
    shutil.rmtree(logdir, ignore_errors=True)

    def category(name):
        op_name, _, op_type = name.rpartition(":")
        if "optimizer" in op_name:
            return "optimizer"
        if op_type == "Cast":
            return "casts (float32 <-> bfloat16)"
        if "batch_norm" in op_name or op_type.startswith("FusedBatchNorm"):
            return "batch norm"
        if "activation" in op_name:
            return "activation"
        if "Conv2D" in op_type or "Conv2D" in op_name:
            return "convolution"
        return "other (loss, weight decay, shortcut pads, dense, copies)"

    totals = {}
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):  # the executor's threads
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" not in name or "::" in name:  # "op_name:OpType" events are the ops
                    continue
                c = category(name)
                totals[c] = totals.get(c, 0.0) + event.duration_ps / 1e12
    return {"op_seconds": totals, "wall": wall, "steps": args.steps}


def worker_distribute(args):
    """img/s of this project's train step under the default strategy and under the mirrored
    strategy on 2 logical CPU devices, in the same process; and host reads per training step
    of train.py's loop (every tensor -> numpy conversion, counted)."""
    import tensorflow as tf
    from tensorflow.python.framework import ops

    import train
    from plumbing import distribute

    mirrored = distribute.make_strategy("mirrored", virtual_devices=2)
    data = [(tf.constant(x), tf.constant(y)) for x, y in batches(4, args.batch_size)]
    out = {}
    for name, strategy in (("default", tf.distribute.get_strategy()), ("mirrored", mirrored)):
        train_step = ours("resnet20", "fp32", args.batch_size, strategy).train_step
        inputs = distribute.distribute_batches(
            strategy, lambda: tf.data.Dataset.from_tensor_slices(
                tuple(tf.stack(t) for t in zip(*data))))
        inputs = list(inputs)  # 4 global batches, already split over the replicas
        lr = tf.constant(0.01, tf.float32)

        def run(n):
            for i in range(n):
                loss, _ = train_step(*inputs[i % len(inputs)], lr)
            float(loss)  # wait for the last step

        run(3)
        out[name] = timed_reps(run, args.reps, args.steps, args.batch_size)

    # Host reads per step of train.py's loop: 20 steps with --check-every 100.
    reads, original = [0], ops._EagerTensorBase._numpy

    def counting(self):
        reads[0] += 1
        return original(self)

    make_steps, at_step = train.make_steps, []

    def counted_make_steps(*a, **k):
        train_step, eval_step = make_steps(*a, **k)

        def step(*b):
            at_step.append(reads[0])
            return train_step(*b)
        step.experimental_get_tracing_count = train_step.experimental_get_tracing_count
        return step, eval_step

    import tempfile
    ops._EagerTensorBase._numpy, train.make_steps = counting, counted_make_steps
    try:
        with tempfile.TemporaryDirectory() as logdir:
            train.main(["--dataset", "cifar10-sample", "--model", "resnet", "--depth", "8",
                        "--bn", "--batch-size", "50", "--epochs", "1", "--max-steps", "20",
                        "--checkpoint-every", "0", "--no-histograms", "--logdir", logdir])
    finally:
        ops._EagerTensorBase._numpy, train.make_steps = original, make_steps
    out["host_reads_per_step"] = (at_step[-1] - at_step[0]) / (len(at_step) - 1)
    return out


WORKERS = {"ours": worker_ours, "keras": worker_keras, "torch": worker_torch,
           "input": worker_input, "startup": worker_startup, "profile": worker_profile,
           "distribute": worker_distribute}


# --------------------------------------------------------------------------------------------------
# The driver: run every worker in its own process, print and write the table
# --------------------------------------------------------------------------------------------------

def run_worker(kind, args, model="resnet20", variant="fp32"):
    cmd = [sys.executable, "-m", "benchmarks.bench", "--worker", kind, "--model", model,
           "--variant", variant, "--batch-size", str(args.batch_size), "--steps", str(args.steps),
           "--reps", str(args.reps), "--data-dir", args.data_dir, "--dataset", args.dataset]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode or not lines:
        return {"skipped": "failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1][:80]}
    return json.loads(lines[-1])


def summary(values):
    return statistics.median(values), min(values), max(values)


def peak_gflops():
    mhz = 0.0
    try:
        with open("/proc/cpuinfo") as f:
            mhz = max(float(l.split(":")[1]) for l in f if l.startswith("cpu MHz"))
    except (OSError, ValueError):
        pass
    return os.cpu_count() * mhz / 1000 * 64, mhz


def machine():
    import tensorflow as tf
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        cpu = next(l.split(":", 1)[1].strip() for l in text.splitlines()
                   if l.startswith("model name"))
        flags = next(l for l in text.splitlines() if l.startswith("flags")).split()
        cpu += " (" + ", ".join(f for f in ("avx512f", "avx512_bf16", "amx_bf16") if f in flags)
        cpu += ")"
    except (OSError, StopIteration):
        pass
    gpus = tf.config.list_physical_devices("GPU")
    return (f"{cpu}, {os.cpu_count()} cores, "
            f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2 ** 30:.0f} GB; "
            f"GPU: {', '.join(g.name for g in gpus) or 'none'}; Python {platform.python_version()}, "
            f"TensorFlow {tf.__version__}")


def main():
    from plumbing.help_format import HelpFormatter

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--models", default="resnet20", help="comma-separated: " + ", ".join(MODELS))
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=20, help="training steps per repetition")
    p.add_argument("--reps", type=int, default=3, help="repetitions (median and spread)")
    p.add_argument("--only", default="train,profile,input,startup,distribute",
                   help="what to measure: train (all training rows and eval), profile, input, "
                        "startup, distribute (mirrored on 2 logical CPUs; host reads per step)")
    p.add_argument("--variants", default="fp32,fp32-fused,xla,bf16,bf16-fused,nchw",
                   help="rows of this project")
    p.add_argument("--data-dir", default="data", help="CIFAR-10 for the input-pipeline rows")
    p.add_argument("--dataset", default="cifar10-sample",
                   help="cifar10 (the full set in --data-dir) or cifar10-sample")
    p.add_argument("--write", default=None, help="also write the report to this Markdown file")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--model", default="resnet20", help=argparse.SUPPRESS)
    p.add_argument("--variant", default="fp32", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:  # inside a measuring subprocess
        result = WORKERS[args.worker](args)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    for name in args.models.split(","):
        if name not in MODELS:
            p.error(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    if args.batch_size <= 0 or args.steps <= 0 or args.reps <= 0:
        p.error("--batch-size, --steps and --reps must be positive")

    only = set(args.only.split(","))
    peak, mhz = peak_gflops()
    lines = [f"Machine: {machine()}", "",
             f"Command: `python -m benchmarks.bench {' '.join(sys.argv[1:])}`".replace(
                 f" --write {args.write}", "") if args.write else
             f"Command: `python -m benchmarks.bench {' '.join(sys.argv[1:])}`", ""]
    if "train" in only:
        for name in args.models.split(","):
            print(f"measuring {name} ...", file=sys.stderr, flush=True)
            rows = [("ours " + v, run_worker("ours", args, name, v))
                    for v in args.variants.split(",")]
            rows.append(("keras fit fp32", run_worker("keras", args, name, "fp32")))
            rows.append(("keras fit bf16", run_worker("keras", args, name, "bf16")))
            rows.append(("torch eager fp32", run_worker("torch", args, name)))
            base = rows[0][1]
            keras_fp32 = rows[-3][1]
            ref = summary(base["rates"])[0] if "rates" in base else None
            keras_ref = summary(keras_fp32["rates"])[0] if "rates" in keras_fp32 else None
            flops = base.get("flops_per_image", 0)
            lines += [f"### {name}, batch {args.batch_size}, training images/s "
                      f"({args.reps} x {args.steps} steps)", "",
                      "| row | median img/s | spread | x ours fp32 | x keras fp32 | GFLOP/s | "
                      "% of peak | peak RSS MB |", "|---|---|---|---|---|---|---|---|"]
            for label, r in rows:
                if "rates" not in r:
                    lines.append(f"| {label} | {r.get('skipped')} | | | | | | |")
                    continue
                med, lo, hi = summary(r["rates"])
                gflops = 3 * flops * med / 1e9
                lines.append(
                    f"| {label} | {med:.0f} | {lo:.0f}-{hi:.0f} | "
                    f"{med / ref if ref else float('nan'):.2f} | "
                    f"{med / keras_ref if keras_ref else float('nan'):.2f} | {gflops:.1f} | "
                    f"{100 * gflops / peak if peak else float('nan'):.0f}% | "
                    f"{r['peak_rss_mb']:.0f} |")
            if "eval_rate" in base:
                lines += ["", f"Evaluation (ours, inference mode, batch 500): "
                              f"{base['eval_rate']:.0f} images/s."]
            lines += ["", f"Forward FLOPs per image: {flops / 1e6:.1f} M (training step taken "
                          f"as 3x). Peak: {os.cpu_count()} cores x {mhz / 1000:.2f} GHz x 64 "
                          f"FLOP/cycle = {peak:.0f} GFLOP/s.", ""]
            print("\n".join(lines[-len(rows) - 8:]), flush=True)
    if "profile" in only:
        for variant in ("fp32", "fp32-fused", "bf16-fused"):
            print(f"profiling {variant} ...", file=sys.stderr, flush=True)
            r = run_worker("profile", args, args.models.split(",")[0], variant)
            if "op_seconds" not in r:
                lines += [f"Profile: {r.get('skipped')}", ""]
                continue
            ops = sum(r["op_seconds"].values())
            lines += [f"### Where the time of a train step goes ({args.models.split(',')[0]}, "
                      f"{variant}, TF profiler, {r['steps']} steps, "
                      f"{1000 * r['wall'] / r['steps']:.0f} ms/step wall)", "",
                      "| part | ms per step | share of op time |", "|---|---|---|"]
            for part, seconds in sorted(r["op_seconds"].items(), key=lambda kv: -kv[1]):
                lines.append(f"| {part} | {1000 * seconds / r['steps']:.1f} | "
                             f"{100 * seconds / ops:.0f}% |")
            lines += ["", "Op time is summed over the executor's threads (inter-op parallel ops "
                          "overlap), so it can exceed the wall time.", ""]
    if "input" in only:
        print("measuring the input pipeline ...", file=sys.stderr, flush=True)
        r = run_worker("input", args)
        if "per_record" in r:
            per, batch = summary(r["per_record"]), summary(r["batch_wise"])
            lines += ["### Input pipeline: parse + pad-4 crop + flip + normalise + batch "
                      f"{args.batch_size} ({args.dataset}, {r['images']} images)", "",
                      "| pipeline | median img/s | spread |", "|---|---|---|",
                      f"| per-record map (TF1 tutorial) | {per[0]:.0f} | {per[1]:.0f}-{per[2]:.0f} |",
                      f"| batch-wise in memory (cifar_input.Pipeline) | {batch[0]:.0f} | "
                      f"{batch[1]:.0f}-{batch[2]:.0f} |", ""]
        else:
            lines += [f"Input pipeline: {r.get('skipped')}", ""]
    if "distribute" in only:
        print("measuring the mirrored strategy ...", file=sys.stderr, flush=True)
        r = run_worker("distribute", args)
        if "mirrored" in r:
            d, m = summary(r["default"]), summary(r["mirrored"])
            lines += [f"### tf.distribute: ResNet-20 fp32 train step, global batch "
                      f"{args.batch_size}, in one process", "",
                      "| strategy | median img/s | spread |", "|---|---|---|",
                      f"| default (one device) | {d[0]:.0f} | {d[1]:.0f}-{d[2]:.0f} |",
                      f"| mirrored, 2 logical CPU devices | {m[0]:.0f} | {m[1]:.0f}-{m[2]:.0f} |",
                      "",
                      "On a CPU the two logical devices share the same cores, so mirroring adds "
                      "work (a copy of the batch per replica, an all-reduce of the 270k gradients "
                      "every step, two half-size steps that use the cores less "
                      "well) and no compute; on several GPUs each replica has its own device. "
                      "GPU figures are not measured here.", "",
                      f"Host reads (device -> Python) per training step of train.py's loop, "
                      f"--check-every 100: {r['host_reads_per_step']:.2f}.", ""]
        else:
            lines += [f"tf.distribute: {r.get('skipped')}", ""]
    if "startup" in only:
        print("measuring time to the first step ...", file=sys.stderr, flush=True)
        r = run_worker("startup", args)
        if "seconds" in r:
            med, lo, hi = summary(r["seconds"])
            lines += [f"Time from `python train.py` (ResNet-20, {args.dataset}) to the end of the "
                      f"first training step: median {med:.1f} s (spread {lo:.1f}-{hi:.1f} s).", ""]
    report = "\n".join(lines)
    print(report)
    if args.write:
        with open(args.write, "w") as f:
            f.write(report + "\n")


if __name__ == "__main__":
    main()
