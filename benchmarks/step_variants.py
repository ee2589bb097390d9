"""Variants of this project's train step, timed against the step train.py runs, in one process.

    python -m benchmarks.step_variants --model resnet20 --rounds 7 --steps 5
    python -m benchmarks.step_variants --model allcnn --bn --rounds 5 --steps 2

Each variant is train.build's step with one change, built side by side in the same process (same
TensorFlow, same thread pools), warmed up, then timed in turns (A, B, C, ..., A, B, C, ...) so that
load from other processes falls on every variant alike; each prints its median time per step and
its per-round ratio to the first (train.py's step), in wall time and in the process's CPU time.
The variants change what the step computes around the network, to measure what each costs:
- "gradients not unscaled": fp32 keeps the loss scale at 1, yet the step multiplies every gradient
  by 1/scale and checks each for finiteness (loss_scale.unscale); here the gradients pass as they
  are and only the loss is checked;
- "no gradient norms": no per-variable ||g|| summed every step (grad_norm_sums, logged per epoch);
- "no weight decay": --weight-decay 0 (the L2 terms and their gradients are not computed).
"""

import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def build_variant(name, args):
    import tensorflow as tf

    import train
    from benchmarks import trainers

    make_steps, make_loss_scale = train.make_steps, train.make_loss_scale

    def no_unscale(precision):
        scale = make_loss_scale(precision)
        scale.unscale = lambda grads: (grads, tf.constant(True))
        return scale

    def no_norms(*a, **k):
        if "grad_norm_sums" in k:
            k["grad_norm_sums"] = None
        else:
            a = a[:8] + (None,) + a[9:]  # the 9th argument: grad_norm_sums
        return make_steps(*a, **k)

    if name == "gradients not unscaled":
        train.make_loss_scale = no_unscale
    if name == "no gradient norms":
        train.make_steps = no_norms
    try:
        argv = [f"--{k}={v}" for k, v in trainers.MODELS[args.model].items()] + [
            "--batch-size", str(args.batch_size), "--logdir", "unused"]
        argv += ["--bn"] if args.bn else []
        argv += ["--weight-decay", "0"] if name == "no weight decay" else []
        return train.build(train.parse_args(argv), 10)
    finally:
        train.make_steps, train.make_loss_scale = make_steps, make_loss_scale


VARIANTS = ["train.py's step", "gradients not unscaled", "no gradient norms", "no weight decay"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet20", help="resnet20, resnet56 or allcnn")
    p.add_argument("--bn", action="store_true", help="train.py --bn (default: train.py's default)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=5, help="timed steps per turn")
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()

    import tensorflow as tf

    from benchmarks import trainers

    data = [(tf.constant(x), tf.constant(y)) for x, y in trainers.batches(4, args.batch_size)]
    lr = tf.constant(0.01)
    steps = {name: build_variant(name, args).train_step for name in VARIANTS}

    def run(step, n):
        for i in range(n):
            loss, _ = step(*data[i % len(data)], lr)
        float(loss)

    for step in steps.values():
        run(step, 3)  # trace and warm up
    times, cpu = {name: [] for name in steps}, {name: [] for name in steps}
    names = list(steps)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:  # A B C, B C A, ...
            run(steps[name], 1)
            t0, c0 = time.perf_counter(), time.process_time()
            run(steps[name], args.steps)
            times[name].append((time.perf_counter() - t0) / args.steps)
            cpu[name].append((time.process_time() - c0) / args.steps)
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
    print(f"{trainers.NAMES[args.model]}, {'--bn' if args.bn else 'train.py default'}, batch "
          f"{args.batch_size}, {args.rounds} rounds of {args.steps} steps: median ms per step, "
          f"and the per-round ratio of speed to train.py's step: median (min-max)")
    for kind, values in (("wall", times), ("CPU", cpu)):
        base = values[VARIANTS[0]]
        for name, t in values.items():
            ratios = [b / x for b, x in zip(base, t)]
            print(f"  {kind:4s} {name:24s} {1000 * statistics.median(t):7.1f} ms  "
                  f"x{statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})  "
                  f"rounds: " + " ".join(f"{x:.3f}" for x in ratios))


if __name__ == "__main__":
    main()
