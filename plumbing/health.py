"""A run's health: dead or diverged networks, non-finite steps, runs too short for batch norm.

Everything here explains a run's numbers: train.py prints it while training, eval.py and
compare.py beside the run's figures.
"""

import json
import math
import os

from plumbing.errors import UserError
from plumbing.rundir import atomic_write


# A batch-norm run whose moving averages still hold more than this share of their initial values
# at its end gets a note: evaluation uses those averages.
SHORT_RUN_SHARE = 0.01


# A run has diverged when an epoch ends with a mean training loss above this many times ln(C),
# the loss of predicting 1/C for every class: the true class then gets, in geometric mean, a
# probability below 1/C^3, a thousandth of chance's for CIFAR-10. No learning run comes near it
# (the committed studies' worst epoch is at 1.13 x ln C); a loss of 2.6e22 stays finite, and
# its accuracy means nothing, whatever it is.
DIVERGED_LOSS_FACTOR = 3
# The rule in words, as every report states it.
DIVERGED_RULE = (f"A run has diverged when its loss turned non-finite or when an epoch ended with "
                 f"a mean training loss above {DIVERGED_LOSS_FACTOR} x ln(classes) "
                 f"({DIVERGED_LOSS_FACTOR * math.log(10):.3g} for CIFAR-10, "
                 f"{DIVERGED_LOSS_FACTOR * math.log(100):.3g} for CIFAR-100; chance's loss is "
                 f"ln(classes)).")


def blown_up(train_loss, num_classes):
    """True when an epoch's mean training loss says the run has diverged (DIVERGED_RULE)."""
    return not train_loss <= DIVERGED_LOSS_FACTOR * math.log(num_classes)


def initial_share_left(decay, steps):
    """The share of a moving average's initial value left after `steps` updates: decay^steps."""
    return decay ** steps


def run_health(logdir, num_classes):
    """None for a run that learns, else one line saying why its numbers mean nothing.

    - "diverged: ..." when train.py stopped on a non-finite loss (it writes DIR/diverged.json with
      the step and the loss), or when an epoch ended with a mean training loss above
      DIVERGED_LOSS_FACTOR x ln(C) (`blown_up`), a loss that stayed finite;
    - "dead: ..." when the last finished epoch's mean training loss is within 0.005 of ln(C), the
      loss of predicting 1/C for every class, and its training accuracy is under 1.5/C: the
      network outputs the same distribution for every image (dead units, or a learning rate too
      high or too low for the model).
    eval.py and compare.py print it beside the run's numbers.
    """
    path = os.path.join(logdir, "diverged.json")
    if os.path.exists(path):
        with open(path) as f:
            info = json.load(f)
        return f"diverged: non-finite loss at step {info.get('step')}"
    records = []
    metrics = os.path.join(logdir, "metrics.jsonl")
    if os.path.exists(metrics):
        with open(metrics) as f:
            records = [json.loads(line) for line in f if line.strip()]
    high = next((r for r in records if blown_up(r["train_loss"], num_classes)), None)
    if high:
        return (f"diverged: training loss {high['train_loss']:.3g} at the end of epoch "
                f"{high['epoch']}, above {DIVERGED_LOSS_FACTOR} x ln({num_classes}) = "
                f"{DIVERGED_LOSS_FACTOR * math.log(num_classes):.3g}")
    if records:
        last = records[-1]
        chance_loss = math.log(num_classes)
        if abs(last["train_loss"] - chance_loss) < 0.005 and \
                last["train_accuracy"] < 1.5 / num_classes:
            return (f"dead: training loss {last['train_loss']:.4f} = ln({num_classes}) at epoch "
                    f"{last['epoch']}, chance accuracy")
    return None


def warn_if_dead(logdir, num_classes, args):
    """After an epoch: a warning line when the training loss sits at ln(classes), or when it is
    far above it (the run has diverged: its figures will be counted at chance)."""
    health = run_health(logdir, num_classes)
    if health and health.startswith("diverged"):
        print(f"warning: the run has diverged ({health}); a report counts it at the accuracy of "
              f"chance; lower --lr (now {args.lr:g})", flush=True)
    if health and health.startswith("dead"):
        causes = [f"a learning rate too high for this model (--lr {args.lr:g}: the first large "
                  "steps leave units that never fire) or too low",
                  "a warm-up too short (--warmup-epochs)" if args.warmup_epochs < 1 else None,
                  "no batch norm (--bn)" if not args.bn else None]
        print(f"warning: the network is not learning ({health}); likely causes: "
              + "; ".join(c for c in causes if c), flush=True)


def stop_on_non_finite(args, logdir, step, found_at_step, lr):
    """Write DIR/diverged.json and say what to change, with hints that fit this run.

    `step` is the first step whose loss or gradients were not finite; the host reads that
    step every --check-every steps, so it learns of it at `found_at_step`.
    """
    atomic_write(os.path.join(logdir, "diverged.json"), json.dumps(
        {"step": step, "found_at_step": found_at_step, "check_every": args.check_every,
         "lr": lr}))
    hints = [f"lower --lr (now {args.lr:g})"]
    if args.warmup_epochs < 1:
        hints.append("a longer warm-up (--warmup-epochs 1)")
    if not args.bn:
        hints.append("batch norm (--bn)")
    if args.precision != "fp32":
        hints.append("--precision fp32")
    raise UserError(f"the loss became non-finite at step {step} (found at step {found_at_step}, "
                    f"checked every {args.check_every} steps) with lr {lr:.3g}; no "
                    f"weights were changed by that step and the last good checkpoint stays in "
                    f"{logdir}; try " + ", or ".join(hints))


def short_run_note(args, total_steps):
    """A note when the run is too short for batch norm's moving averages to forget their start.

    Each step sets m <- decay * m + (1 - decay) * batch statistic, so after S steps the initial
    values (mean 0, variance 1) still weigh decay^S in the statistics that evaluation uses.
    """
    if not args.bn or args.bn_test_batch_stats:
        return None
    left = initial_share_left(args.bn_decay, total_steps)
    if left <= SHORT_RUN_SHARE:
        return None
    forgets = math.floor(1000 * 0.001 ** (1 / total_steps)) / 1000  # decay^S <= 0.1 %
    return (f"note: after {total_steps} steps batch norm's moving averages still hold "
            f"{100 * left:.0f} % of their initial values (--bn-decay "
            f"{args.bn_decay:g}), and evaluation uses them; for a run this short, "
            f"--bn-decay {forgets:g} leaves at most 0.1 %, or evaluate with eval.py "
            f"--bn-test-batch-stats")
