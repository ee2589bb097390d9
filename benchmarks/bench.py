"""Speed of this project against stock Keras and PyTorch, with the rows interleaved so that their
ratios hold on a machine whose load comes and goes.

    python -m benchmarks.bench --only train,profile --models resnet20,allcnn --configs default,bn \
        --precisions fp32,bf16 --rounds 5 --steps 10    # docs/PERFORMANCE.md's figures
    python -m benchmarks.bench --only profile --models resnet20,allcnn  # where a step's time goes
    python -m benchmarks.bench --only tune --models resnet20   # TensorFlow's settings, A/B
    python -m benchmarks.bench --only input                    # just the input pipeline
    python -m benchmarks.bench --write docs/PERFORMANCE.md     # also write the report there
    python -m benchmarks.bench --smoke                         # 1 round of 1 step, batch 4: a test

Run it from the repository root (it imports the project's modules).

Training rows (benchmarks/trainers.py): for each model, configuration and precision, one group:
- ours: this project's train step, built by train.build from train.py's flags;
- ours, fused batch norm: the same with --bn-fused (configuration --bn only);
- keras: the same network in stock Keras layers (benchmarks/bench_peers.py), one `train_on_batch`
  per step;
- torch eager: the same network in PyTorch, the reference of the group's ratios.
Configurations: `default` is train.py as it runs without flags (no batch norm; every conv keeps
its bias); `bn` is train.py --bn (batch norm after every conv; no conv biases). Every network of a
group has the same parameter count (the table shows it). Precisions: fp32; bf16 (ours --precision
bf16, Keras' mixed_bfloat16 policy, PyTorch's autocast) only where /proc/cpuinfo lists avx512_bf16
or amx_bf16, the instructions oneDNN's bf16 kernels need.

How a group is timed: every row runs in a process of its own (a clean TensorFlow or PyTorch, its
own peak memory), built and warmed up first (tracing, oneDNN primitive caches, 5 steps). Then the
rows take turns: round 1 runs `--steps` steps of A, then of B, C, D; round 2 of B, C, D, A; and so
on for `--rounds` rounds; each turn starts with one untimed step (the other rows have evicted this
row's data from the caches). Load from other processes that comes and goes then falls on all
the rows of a round alike, so the ratio to PyTorch is computed within each round: the table gives
each row's median images/s with its spread (min-max) over rounds, the ratio of the medians, and
the per-round ratios with their median and spread, and the CPU time the row's process used per step
(all its threads; under load it moves less than the wall time, but it counts a thread that spins
while it waits as busy).

Under heavy load (more runnable threads than cores) PyTorch's OpenMP threads wait for each other
at every op's barrier and PyTorch slows down far more than TensorFlow: ratios to PyTorch are only
meaningful on an idle machine (the load average before the run is printed).

`--only profile` runs benchmarks/bench_profile.py: one step of ours and of the PyTorch peer,
profiled, grouped the same way and printed side by side. `--only tune` times ours under
TensorFlow settings (thread pools, oneDNN, grappler) against ours as train.py runs it, interleaved.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

# The repository root: the project's modules are imported from there, train.py is run there.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # also when started as `python benchmarks/bench.py`
    sys.path.insert(0, ROOT)

from benchmarks.trainers import CONFIGS, MODELS, NAMES, batches, ours, run_json  # noqa: E402
# --only tune: ours under TensorFlow settings, each against ours as train.py runs it (the first).
# On 2 cores TensorFlow's default is 2 inter-op threads (ops run side by side) x 2 intra-op
# threads (one op split over the cores).
TUNE = [("ours (TensorFlow's defaults)", {}),
        ("inter-op threads 1", {"tf": {"inter": 1}}),
        ("intra-op threads 1", {"tf": {"intra": 1}}),
        ("TF_ENABLE_ONEDNN_OPTS=0 (Eigen kernels)", {"env": {"TF_ENABLE_ONEDNN_OPTS": "0"}}),
        ("grappler remapper off (no fused conv + bias + ReLU)",
         {"tf": {"grappler": {"remapping": False}}}),
        ("grappler layout optimizer off", {"tf": {"grappler": {"layout_optimizer": False}}})]


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


# --------------------------------------------------------------------------------------------------
# Workers: each runs in its own process and prints JSON lines
# --------------------------------------------------------------------------------------------------

def peak_rss_mb():
    """This process's peak resident memory: VmHWM (getrusage's ru_maxrss can be the parent's,
    as Linux carries it over a fork and an exec)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(message):
    print(json.dumps(message), flush=True)


def worker_serve(args):
    """One training row: build and warm up, say so, then time `--steps` steps per "run" line read
    from stdin (after one untimed step), until "quit" or the end of stdin."""
    from benchmarks import trainers

    row = json.loads(args.row)
    try:
        run, params = trainers.make(row, args.batch_size)
        run(5)  # warm-up: tracing, oneDNN primitive caches, allocators
    except ImportError as e:
        return {"skipped": f"{e.name} is not installed"}
    except Exception as e:  # a row this machine cannot run is a skipped row, not a failed run
        return {"skipped": f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:100]}"}
    emit({"params": params})
    for line in sys.stdin:
        if line.strip() != "run":
            break
        run(1)  # back into the caches
        t0, c0 = time.perf_counter(), time.process_time()
        run(args.steps)
        emit({"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0})
    return {}


def timed_reps(run_steps, reps, steps, batch_size):
    """images/s of `reps` calls of run_steps(steps), one after another (input, distribute)."""
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run_steps(steps)
        rates.append(steps * batch_size / (time.perf_counter() - t0))
    return rates


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
        train_step = ours("resnet20", args.batch_size, bn=True, strategy=strategy).train_step
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


WORKERS = {"serve": worker_serve, "input": worker_input, "startup": worker_startup,
           "distribute": worker_distribute}


# --------------------------------------------------------------------------------------------------
# The driver: the rows of a group take turns, round after round
# --------------------------------------------------------------------------------------------------

class Row:
    """A measuring subprocess that trains one row: `--steps` timed steps at each turn."""

    def __init__(self, label, row, args):
        self.label, self.row, self.seconds, self.cpu = label, row, [], []
        self.stderr = tempfile.TemporaryFile("w+")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **row.get("env", {}))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench", "--worker", "serve", "--row",
             json.dumps(row), "--batch-size", str(args.batch_size), "--steps", str(args.steps)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True,
            env=env, cwd=ROOT)
        self.info = {}

    def _reply(self):
        for line in self.proc.stdout:
            if line.startswith("{"):
                return json.loads(line)
        self.proc.wait()
        self.stderr.seek(0)
        last = (self.stderr.read().strip().splitlines() or ["?"])[-1]
        return {"skipped": "failed: " + last[:100]}

    def ready(self):
        """Wait until built and warmed up; False (and the reason in `info`) if it cannot run."""
        self.info = self._reply()
        return "skipped" not in self.info

    def turn(self):
        try:
            self.proc.stdin.write("run\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):  # the worker died: _reply says why
            pass
        reply = self._reply()
        if "seconds" not in reply:
            self.info = reply
            return False
        self.seconds.append(reply["seconds"])
        self.cpu.append(reply["cpu"])
        return True

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
                self.info.update(self._reply())
            except (BrokenPipeError, OSError):
                pass
        self.proc.wait()


def interleaved(rows, args):
    """Measure `rows` ([(label, row)]) in turns, `--rounds` rounds; returns the Row objects.
    Round i starts at row i (A B C D, B C D A, ...): no row always follows the same one."""
    measured = [Row(label, row, args) for label, row in rows]  # they build and warm up together
    live = [r for r in measured if r.ready()]
    try:
        for i in range(args.rounds):
            for r in live[i % len(live):] + live[:i % len(live)]:
                if not r.turn():
                    live.remove(r)
            print(f"  round {i + 1}/{args.rounds}: " + ", ".join(
                f"{r.label} {args.steps * args.batch_size / r.seconds[-1]:.0f}"
                for r in live), file=sys.stderr, flush=True)
    finally:
        for r in measured:
            r.close()
    return measured


def run_worker(kind, args):
    """One measurement in a subprocess of its own (input, startup, distribute): its JSON result."""
    return run_json(["-m", "benchmarks.bench", "--worker", kind, "--batch-size",
                     str(args.batch_size), "--steps", str(args.steps), "--reps", str(args.reps),
                     "--data-dir", args.data_dir, "--dataset", args.dataset])


def summary(values):
    return statistics.median(values), min(values), max(values)


def spread(values):
    return f"{min(values):.2f}-{max(values):.2f}" if values else ""


def group_table(title, measured, args, reference, flops=0.0):
    """The Markdown table of one group: img/s per row and per-round ratios to `reference`."""
    ref = next((r for r in measured if r.label == reference and "skipped" not in r.info), None)
    rate = lambda s: args.steps * args.batch_size / s  # noqa: E731
    lines = [f"### {title}", "",
             f"Training images/s, batch {args.batch_size}: {args.rounds} rounds of {args.steps} "
             f"steps, rows interleaved; ratios to `{reference}` within each round.", "",
             f"| row | parameters | median img/s | spread | x {reference}, ratio of medians | "
             f"per round: median | min-max | each round | CPU s per step | GFLOP/s | "
             f"peak RSS MB |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in measured:
        if "skipped" in r.info or not r.seconds:
            lines.append(f"| {r.label} | | {r.info.get('skipped', 'no round finished')} "
                         f"| | | | | | | | |")
            continue
        rates = [rate(s) for s in r.seconds]
        med = statistics.median(rates)
        ratios, of_medians = [], ""
        if ref is not None:
            n = min(len(ref.seconds), len(r.seconds))  # rounds both finished
            ratios = [ref.seconds[i] / r.seconds[i] for i in range(n)]
            of_medians = f"{med / statistics.median(rate(s) for s in ref.seconds):.2f}"
        lines.append(
            f"| {r.label} | {r.info.get('params', '')} | {med:.1f} | "
            f"{min(rates):.1f}-{max(rates):.1f} | {of_medians} | "
            f"{statistics.median(ratios) if ratios else float('nan'):.2f} | {spread(ratios)} | "
            f"{' '.join(f'{x:.2f}' for x in ratios)} | "
            f"{statistics.median(r.cpu) / args.steps:.3f} | {3 * flops * med / 1e9:.1f} | "
            f"{r.info.get('peak_rss_mb', 0):.0f} |")
    return lines + [""]


def bf16_instructions():
    """The bf16 instruction sets /proc/cpuinfo lists (avx512_bf16, amx_bf16), or []."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l for l in f if l.startswith("flags")), "").split()
    except OSError:
        return []
    return [f for f in ("avx512_bf16", "amx_bf16") if f in flags]


def training_groups(args):
    """[(title, [(label, row)], reference label, model)] for --models x --precisions x --configs."""
    groups = []
    for model in args.models.split(","):
        for precision in args.precisions.split(","):
            for config in args.configs.split(","):
                base = dict(model=model, bn=config == "bn", precision=precision)
                rows = [("ours", dict(base, kind="ours"))]
                if config == "bn":
                    rows.append(("ours, fused batch norm", dict(base, kind="ours", fused=True)))
                rows += [("keras train_on_batch", dict(base, kind="keras")),
                         ("torch eager", dict(base, kind="torch"))]
                if precision != "fp32":
                    rows = [(f"{label} {precision}", row) for label, row in rows]
                title = f"{NAMES[model]}, {precision}, {CONFIGS[config]}"
                groups.append((title, rows, rows[-1][0], model, config))
    return groups


def tune_groups(args):
    groups = []
    for model in args.models.split(","):
        for config in args.configs.split(","):
            base = dict(model=model, bn=config == "bn", kind="ours")
            rows = [(label, dict(base, **settings)) for label, settings in TUNE]
            groups.append((f"{NAMES[model]}, fp32, {CONFIGS[config]}: TensorFlow's settings",
                           rows, TUNE[0][0], model, config))
    return groups


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
    versions = [f"TensorFlow {tf.__version__}"]
    for name in ("keras", "torch"):
        try:
            versions.append(f"{name} {__import__(name).__version__}")
        except ImportError:
            pass
    return (f"{cpu}, {os.cpu_count()} cores, "
            f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2 ** 30:.0f} GB; "
            f"Python {platform.python_version()}, {', '.join(versions)}")


def main():
    from plumbing.help_format import HelpFormatter

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--models", default="resnet20,allcnn",
                   help="comma-separated: " + ", ".join(MODELS))
    p.add_argument("--configs", default="default,bn",
                   help="comma-separated: " + "; ".join(f"{k} ({v})" for k, v in CONFIGS.items()))
    p.add_argument("--precisions", default="fp32,bf16",
                   help="comma-separated: fp32, bf16 (bf16 only where the CPU has bf16 "
                        "instructions)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=10, help="timed training steps per turn")
    p.add_argument("--rounds", type=int, default=5,
                   help="rounds of turns (at least 3 for a spread that means something)")
    p.add_argument("--reps", type=int, default=3,
                   help="repetitions of the input, startup and distribute measurements")
    p.add_argument("--only", default="train,profile,input,startup,distribute",
                   help="what to measure: train (the interleaved training rows), profile (ours "
                        "and PyTorch side by side), tune (TensorFlow settings), input, startup, "
                        "distribute (mirrored on 2 logical CPUs; host reads per step)")
    p.add_argument("--smoke", action="store_true",
                   help="a quick check that every kind of row runs: batch 4, 1 round of 1 "
                        "step, ResNet-20 --bn fp32, --only train")
    p.add_argument("--data-dir", default="data", help="CIFAR-10 for the input-pipeline rows")
    p.add_argument("--dataset", default="cifar10-sample",
                   help="cifar10 (the full set in --data-dir) or cifar10-sample")
    p.add_argument("--write", default=None, help="also write the report to this Markdown file")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--row", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:  # inside a measuring subprocess
        result = WORKERS[args.worker](args)
        result["peak_rss_mb"] = peak_rss_mb()
        emit(result)
        return
    if args.smoke:
        args.batch_size, args.rounds, args.steps, args.only = 4, 1, 1, "train"
        args.models, args.configs, args.precisions = "resnet20", "bn", "fp32"
    for name in args.models.split(","):
        if name not in MODELS:
            p.error(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    for name in args.configs.split(","):
        if name not in CONFIGS:
            p.error(f"unknown configuration {name!r}; choose from {', '.join(CONFIGS)}")
    for name in args.precisions.split(","):
        if name not in ("fp32", "bf16"):
            p.error(f"unknown precision {name!r}; choose from fp32, bf16")
    if min(args.batch_size, args.steps, args.rounds, args.reps) <= 0:
        p.error("--batch-size, --steps, --rounds and --reps must be positive")

    only = set(args.only.split(","))
    command = " ".join(a for a in sys.argv[1:])
    if args.write:
        command = command.replace(f" --write {args.write}", "").replace(f"--write {args.write}", "")
    lines = [f"Machine: {machine()}", "", f"Command: `python -m benchmarks.bench {command}`", "",
             f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average before "
             f"the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", ""]
    if "bf16" in args.precisions.split(",") and not bf16_instructions():
        args.precisions = ",".join(x for x in args.precisions.split(",") if x != "bf16") or "fp32"
        lines += ["bf16 rows skipped: this CPU has no bf16 instructions (neither avx512_bf16 nor "
                  "amx_bf16 in /proc/cpuinfo); oneDNN would emulate bf16 through fp32.", ""]
    for kind, make_groups in (("train", training_groups), ("tune", tune_groups)):
        if kind not in only:
            continue
        flops = {}
        for title, rows, reference, model, config in make_groups(args):
            print(f"measuring {title} ...", file=sys.stderr, flush=True)
            measured = interleaved(rows, args)
            if (model, config) not in flops:
                import models
                spec = dict(MODELS[model])
                flops[model, config] = forward_flops(
                    models.build(spec.pop("model"), 10, bn=config == "bn", **spec), 2)
            table = group_table(title, measured, args, reference, flops[model, config])
            lines += table
            print("\n".join(table), flush=True)
        if kind == "train":
            lines += ["GFLOP/s: the forward FLOPs of one image counted from the traced graph (2 x "
                      "the multiply-adds of every Conv2D and MatMul: " + ", ".join(
                          f"{NAMES[m]} {f / 1e6:.1f} M" for (m, c), f in flops.items()
                          if c == args.configs.split(",")[0]) +
                      "), a training step taken as 3x the forward.", ""]
    if "profile" in only:
        from benchmarks import bench_profile
        args.profile_steps, args.top = min(args.steps, 5), 8
        lines += bench_profile.report(args)
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
