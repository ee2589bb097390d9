"""Where the time of a training step goes: ours against the PyTorch peer, side by side.

    python -m benchmarks.bench_profile --models resnet20,allcnn --configs default,bn --steps 5
    python -m benchmarks.bench --only profile ...     # the same, inside the full benchmark

Each row (ours as train.py builds it; ours with --bn-fused under --bn; PyTorch eager: the rows of
bench.py, benchmarks/trainers.py) trains `--steps` steps under its framework's profiler after a
3-step warm-up, in a process of its own, one row after the other: TensorFlow's
(`tf.profiler.experimental`: every op the executor runs, read from the trace's XPlane) and
PyTorch's (`torch.profiler`: every aten op, autograd node and the optimizer's `step`). Every op
goes into one of the same parts:

    convolution forward     Conv2D (with its bias add and, where TensorFlow's remapper fuses them,
                            its ReLU: fused kernels count as convolutions); aten::convolution
    convolution backward    Conv2DBackpropInput / Filter (and the bias gradient);
                            aten::convolution_backward
    batch norm              ops under the name scope batch_norm (written-out or fused), gradients
                            included; aten::native_batch_norm and its backward
    activation              ops under the name scope activation (ReLU and its gradient); aten::relu,
                            threshold_backward
    optimizer               ops under the name scope optimizer; Optimizer.step and zero_grad
    everything else         loss, weight decay, shortcut slices and pads, pooling, dense, sums of
                            gradients, copies
    no op running           the wall time during which no op ran: the framework between ops
                            (TensorFlow's executor, PyTorch's Python and dispatcher), the profiler

Time is wall-clock time: while k ops run at once (TensorFlow runs independent ops side by side on
its inter-op threads), each gets 1/k of it, so the parts add up to the wall time of the profiled
steps. Shares are steadier than milliseconds when other processes share the cores, and the
profilers add some time of their own.
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

PARTS = ["convolution forward", "convolution backward", "batch norm", "activation", "optimizer",
         "everything else", "no op running"]
# TensorFlow ops that only hold other ops (their time is that of the ops inside).
CONTAINERS = {"If", "StatelessIf", "While", "StatelessWhile", "PartitionedCall",
              "StatefulPartitionedCall", "Case"}


def tf_part(op_name, op_type):
    """The part of a TensorFlow op, from its name scope and its type."""
    if "optimizer" in op_name:
        return "optimizer"
    if "Backprop" in op_type and "Conv2D" in op_type or op_type == "BiasAddGrad":
        return "convolution backward"
    if "Conv2D" in op_type or op_type == "BiasAdd":
        return "convolution forward"
    if "batch_norm" in op_name or "FusedBatchNorm" in op_type:
        return "batch norm"
    if "activation" in op_name or op_type in ("Relu", "ReluGrad"):
        return "activation"
    return "everything else"


def torch_part(names):
    """The part of a PyTorch op, from its name and its callers' (innermost first)."""
    if any(n.startswith("Optimizer.") for n in names):
        return "optimizer"
    for n in names:
        low = n.lower()
        if "convolution_backward" in low or "convolutionbackward" in low:
            return "convolution backward"
        if "conv" in low:
            return "convolution forward"
        if "batch_norm" in low:
            return "batch norm"
        if "relu" in low or "threshold_backward" in low:
            return "activation"
    return "everything else"


def attribute(segments, wall):
    """segments [(start, end, part, op)] -> ({part: time}, {op: time}): while k segments overlap,
    each gets 1/k of the time; "no op running" is `wall` minus the time any segment ran."""
    points = sorted([(s, 1, i) for i, (s, e, _, _) in enumerate(segments) if e > s] +
                    [(e, -1, i) for i, (s, e, _, _) in enumerate(segments) if e > s])
    parts, ops, active, last, busy = dict.fromkeys(PARTS, 0.0), {}, set(), None, 0.0
    for t, kind, i in points:
        if active and t > last:
            share = (t - last) / len(active)
            busy += t - last
            for j in active:
                parts[segments[j][2]] += share
                ops[segments[j][3]] = ops.get(segments[j][3], 0.0) + share
        last = t
        (active.add if kind == 1 else active.discard)(i)
    parts["no op running"] = max(wall - busy, 0.0)
    return parts, ops


def tf_segments(logdir):
    """[(start s, end s, part, op type)] of every op TensorFlow's executor ran in the trace."""
    import glob

    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb"))[0],
              "rb") as f:
        space.ParseFromString(f.read())
    segments = []
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
                op_name, _, op_type = name.rpartition(":")
                if op_type in CONTAINERS:
                    continue
                start = line.timestamp_ns * 1e-9 + event.offset_ps * 1e-12
                segments.append((start, start + event.duration_ps * 1e-12,
                                 tf_part(op_name, op_type), op_type))
    return segments


def torch_segments(events):
    """[(start s, end s, part, op)]: each event's own time (its interval minus its children's)."""
    segments = []
    for e in events:
        names, p = [], e
        while p is not None:
            names.append(p.name)
            p = p.cpu_parent
        part = torch_part(names)
        t = e.time_range.start
        for c in sorted(e.cpu_children, key=lambda c: c.time_range.start):
            segments.append((t * 1e-6, c.time_range.start * 1e-6, part, e.name))
            t = max(t, c.time_range.end)
        segments.append((t * 1e-6, e.time_range.end * 1e-6, part, e.name))
    return segments


def worker(args):
    """Profile `--steps` steps of one row; print {parts, ops, wall, steps} as JSON."""
    from benchmarks import trainers

    row = json.loads(args.row)
    try:
        run, _ = trainers.make(row, args.batch_size)
        run(3)
    except ImportError as e:
        return {"skipped": f"{e.name} is not installed"}
    if row["kind"] == "torch":
        import torch

        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            t0 = time.perf_counter()
            run(args.steps)
            wall = time.perf_counter() - t0
        segments = torch_segments(prof.events())
    else:
        import shutil
        import tempfile

        import tensorflow as tf

        logdir = tempfile.mkdtemp(prefix="rawtf-profile-")
        tf.profiler.experimental.start(logdir)
        t0 = time.perf_counter()
        run(args.steps)
        wall = time.perf_counter() - t0
        tf.profiler.experimental.stop()
        segments = tf_segments(logdir)
        shutil.rmtree(logdir, ignore_errors=True)
    parts, ops = attribute(segments, wall)
    top = sorted(ops.items(), key=lambda kv: -kv[1])[:args.top]
    return {"parts": parts, "ops": top, "wall": wall, "steps": args.steps}


def profile_row(row, args):
    from benchmarks.trainers import run_json

    return run_json(["-m", "benchmarks.bench_profile", "--worker", "--row", json.dumps(row),
                     "--batch-size", str(args.batch_size), "--steps", str(args.profile_steps),
                     "--top", str(args.top)])


def report(args):
    """The side-by-side tables (Markdown lines) for --models x --configs, fp32."""
    from benchmarks.trainers import CONFIGS, NAMES

    lines = []
    for model in args.models.split(","):
        for config in args.configs.split(","):
            base = dict(model=model, bn=config == "bn", precision="fp32")
            rows = [("ours", dict(base, kind="ours"))]
            if config == "bn":
                rows.append(("ours, fused batch norm", dict(base, kind="ours", fused=True)))
            rows.append(("torch eager", dict(base, kind="torch")))
            title = f"{NAMES[model]}, fp32, {CONFIGS[config]}"
            print(f"profiling {title} ...", file=sys.stderr, flush=True)
            table = side_by_side(title, [(label, profile_row(row, args)) for label, row in rows],
                                 args)
            print("\n".join(table), file=sys.stderr, flush=True)  # progress: each table as it comes
            lines += table
    return lines


def side_by_side(title, results, args):
    ok = [(label, r) for label, r in results if "parts" in r]
    lines = [f"### Where the time of a step goes: {title}", "",
             f"Batch {args.batch_size}, {args.profile_steps} profiled steps after a warm-up; "
             "ms per step and share of the wall time." +
             "".join(f" {label}: {r['skipped']}." for label, r in results if "parts" not in r),
             "", "| part | " + " | ".join(f"{label}: ms/step | share" for label, _ in ok) + " |",
             "|---|" + "---|---|" * len(ok)]
    for part in PARTS + ["wall time"]:
        cells = []
        for _, r in ok:
            seconds = r["wall"] if part == "wall time" else r["parts"][part]
            cells.append(f"{1000 * seconds / r['steps']:.1f} | {100 * seconds / r['wall']:.0f}%")
        lines.append(f"| {part} | " + " | ".join(cells) + " |")
    lines.append("")
    for label, r in ok:
        lines.append(f"Largest ops of {label} (ms/step): " + ", ".join(
            f"{op} {1000 * s / r['steps']:.1f}" for op, s in r["ops"]) + ".")
    return lines + [""]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="resnet20,allcnn", help="comma-separated: resnet20, "
                   "resnet56, allcnn")
    p.add_argument("--configs", default="default,bn",
                   help="default (train.py without flags: no batch norm) and/or bn (--bn)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", dest="profile_steps", type=int, default=5,
                   help="profiled training steps")
    p.add_argument("--top", type=int, default=8, help="largest ops listed per row")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--row", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        args.steps = args.profile_steps
        print(json.dumps(worker(args)), flush=True)
        return
    print("\n".join(report(args)))


if __name__ == "__main__":
    main()
