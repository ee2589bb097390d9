"""Run a comparison over seeds and report it with statistics and plots.

    python compare.py --study blog-allcnn --scale quick --data-dir data --out experiments/blog
    python compare.py --model resnet --depth 20 --act relu,elu --bn on,off --seeds 0,1,2 \\
        --epochs 5 --out experiments/acts            # an explicit grid: 4 arms x 3 seeds
    python compare.py ... --jobs 2                   # two runs at once (one GPU each if any)
    python compare.py ... --print-commands           # one train.py command per run, for a job array
    python compare.py ... --collect                  # the report from the log directories alone

Grid. Every flag that is not compare.py's own goes to train.py. A plain value is fixed for every
arm; a comma list varies: the arms are every combination of the varied flags (`--act relu,elu
--bn on,off` is 4 arms). Switches take on / off (`--bn on,off`). Flags whose value is itself a
comma list (--dropout-rates, --lr-steps) vary with "/" between the lists: `--lr-steps 2,3/3,4`.
Every arm runs once per seed in `--seeds`; a seed gives every arm the same initial weights and the
same order of training batches (both are drawn from the seed alone), so per-seed differences
between arms are paired.

Why one train.py subprocess per run:
- isolation: each run gets a fresh TensorFlow (no graph, random-state or memory left over from the
  previous run), and a crash or a diverged run ends only that run;
- the same code path as a single run: what the comparison reports is exactly what
  `python train.py ...` gives (each log directory holds the command that made it, in command.sh);
- resumability for free: train.py continues a run from its last checkpoint when it is given the
  same --logdir, so re-running the same compare.py command skips finished runs and continues the
  interrupted one;
- scheduler-friendly: a run is one shell command, so a cluster job array can run them
  (`--print-commands`), and `--collect` reads the log directories afterwards.
The price is TensorFlow's start-up (a few seconds) per run, small beside any real run.

Honest selection. Every run holds out a stratified validation split of the training files
(`--val-fraction`, default 0.1: 5,000 of CIFAR-10's 50,000 images). train.py keeps the checkpoint
with the best validation accuracy (DIR/best/); that checkpoint, chosen without looking at the test
split, is evaluated once on the test split (`eval.py --best`, which writes
DIR/eval-test-best.json). The report's validation accuracy is that checkpoint's; its test
accuracy is that single evaluation.

Layout of the experiment directory OUT:
    OUT/<arm>/seed-<s>/    one train.py log directory per run (+ command.sh, train.log, and
                           eval-test-best.json: eval.py's evaluation of the chosen checkpoint)
    OUT/results.md|json|csv, OUT/curves.png, OUT/test_accuracy.png    the report

The report (one row per arm): n seeds, mean +- std of validation and test accuracy, the test
accuracy's 95% interval (Student t), the paired difference to the baseline arm (`--baseline`,
default the first arm) over seeds with its interval and p-value (lab/stats.py), epochs, seconds per
epoch, parameter count, and the runs `health.run_health` calls dead or diverged (they count in the
statistics with their chosen checkpoint's accuracy: leaving them out would flatter an arm that
often fails).
"""

import argparse
import os
import shlex

from lab import report
from lab.runner import run_all
from lab.runs import train_command
from plumbing.errors import UserError, run_script

# train.py flags whose value is itself a comma list: their alternatives are separated by "/".
LIST_FLAGS = ("dropout-rates", "lr-steps")
# Set by compare.py for every run; not part of the grid.
OWN_FLAGS = ("logdir", "seed", "val-fraction")


# --------------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------------

def build_parser():
    from lab import studies
    p = argparse.ArgumentParser(
        description="Run train.py over a grid of settings and seeds; report mean, intervals and "
                    "paired differences. Any other --flag goes to train.py (a comma list varies).")
    p.add_argument("--study", choices=sorted(studies.STUDIES), default=None,
                   help="a study of lab/studies.py instead of an explicit grid")
    p.add_argument("--scale", choices=studies.SCALES, default="quick",
                   help="the study's scale: quick (about an hour on 2 CPU cores; the default) or "
                        "paper")
    p.add_argument("--out", default=None,
                   help="experiment directory (default experiments/<study>-<scale> or "
                        "experiments/grid)")
    p.add_argument("--seeds", default=None,
                   help="comma-separated seeds (default: the study's, or 0,1,2)")
    p.add_argument("--val-fraction", type=float, default=None,
                   help="stratified share of the training files held out for the choice of the "
                        "checkpoint (default: the study's, or 0.1 = 5,000 CIFAR-10 images)")
    p.add_argument("--baseline", default=None,
                   help="the arm the others are compared with, e.g. 'act=relu,bn=off' "
                        "(default: the study's, or the first arm)")
    p.add_argument("--jobs", type=int, default=1,
                   help="runs at the same time (default 1; with GPUs: one GPU each, round robin)")
    p.add_argument("--print-commands", action="store_true",
                   help="print one train.py command per run and exit (for a job array)")
    p.add_argument("--collect", action="store_true",
                   help="run nothing but the test evaluations still missing; report from the log "
                        "directories")
    return p


def train_flag_kinds():
    """{flag: 'switch' | 'value'} of every train.py flag (switches take --x / --no-x)."""
    from plumbing.command_line import build_parser
    kinds = {}
    for action in build_parser()._actions:
        for option in action.option_strings:
            if option.startswith("--") and not option.startswith("--no-"):
                kinds[option[2:]] = ("switch" if isinstance(action, argparse.BooleanOptionalAction)
                                     else "value")
    kinds.pop("help", None)
    return kinds


def parse_grid(tokens, kinds):
    """train.py flags after compare.py's own -> (fixed {flag: value}, axes {flag: [values]}).

    `--x a` fixes x; `--x a,b` varies it; a switch is `--x`, `--no-x`, `--x on` or `--x on,off`.
    """
    fixed, axes, i = {}, {}, 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--"):
            raise UserError(f"unexpected {token!r}: give train.py flags as --flag value")
        flag = token[2:]
        if "=" in flag:
            flag, value = flag.split("=", 1)
            i += 1
        elif flag.startswith("no-") and kinds.get(flag[3:]) == "switch":
            flag, value = flag[3:], "off"
            i += 1
        elif kinds.get(flag) == "switch" and (i + 1 == len(tokens) or tokens[i + 1].startswith("--")):
            value = "on"
            i += 1
        else:
            if i + 1 == len(tokens):
                raise UserError(f"--{flag} needs a value")
            value = tokens[i + 1]
            i += 2
        if flag not in kinds:
            raise UserError(f"train.py has no flag --{flag}; see python train.py --help")
        if flag in OWN_FLAGS:
            raise UserError(f"--{flag} is set by compare.py for each run"
                            + ("; give --seeds" if flag == "seed" else ""))
        values = value.split("/" if flag in LIST_FLAGS else ",")
        if kinds[flag] == "switch":
            norm = {"on": "on", "true": "on", "yes": "on", "off": "off", "false": "off",
                    "no": "off"}
            if any(v.lower() not in norm for v in values):
                raise UserError(f"--{flag} is a switch: give on, off or on,off")
            values = [norm[v.lower()] for v in values]
        if len(values) > 1:
            axes[flag] = values
        else:
            fixed[flag] = values[0]
    return fixed, axes


def to_argv(flags, kinds):
    """{flag: value} -> train.py arguments (switches as --x / --no-x)."""
    argv = []
    for flag, value in flags.items():
        if kinds.get(flag) == "switch":
            argv.append(f"--{flag}" if value == "on" else f"--no-{flag}")
        else:
            argv += [f"--{flag}", str(value)]
    return argv


def arm_dir(name):
    """'act=relu,bn=on' -> 'act-relu_bn-on' (a folder name)."""
    safe = name.replace("=", "-").replace(",", "_").replace("/", "+")
    return "".join(c if c.isalnum() or c in "-_.+" else "_" for c in safe)


def make_plan(args, grid_tokens):
    """The experiment: fixed flags, the arms, the seeds, the baseline, the runs."""
    from lab import studies

    kinds = train_flag_kinds()
    if args.study:
        study = studies.plan(args.study, args.scale)
        fixed, extra_axes = parse_grid(grid_tokens, kinds)
        if extra_axes:
            raise UserError("a study fixes its own arms; give single values to change a setting "
                            "of every arm (e.g. --data-dir, --dataset cifar100)")
        fixed = dict(study["fixed"], **fixed)
        # A study's budgets: every arm at every training length (--epochs), each a whole run.
        arms = [dict(arm, **({"epochs": b} if b else {}))
                for arm in study["arms"] for b in study["budgets"] or [None]]
        flags_when = study["flags_when"]
        seeds = study["seeds"]
        baseline = study["baseline"]
        val_fraction = float(study["val_fraction"])
        out = os.path.join("experiments", f"{args.study}-{args.scale}")
    else:
        fixed, axes = parse_grid(grid_tokens, kinds)
        arms = studies.product(**axes)
        seeds, baseline, val_fraction = [0, 1, 2], None, 0.1
        out = os.path.join("experiments", "grid")
        flags_when = []
    if args.seeds is not None:
        try:
            seeds = [int(s) for s in args.seeds.split(",")]
        except ValueError:
            raise UserError(f"--seeds takes comma-separated integers, got {args.seeds!r}") from None
    if len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds has repeats: {args.seeds}")
    if args.val_fraction is not None:
        val_fraction = args.val_fraction
    if not 0 < val_fraction < 1:
        raise UserError("--val-fraction must be in (0, 1): the checkpoint is chosen on a "
                        "validation split, never on the test split")
    names = [studies.arm_name(arm) for arm in arms]
    # Training budgets: when the arms differ in --epochs, each length is a budget and an arm is
    # compared with the others at the same length (its name without epochs is its "base").
    budgets = sorted({arm.get("epochs") for arm in arms}, key=lambda e: float(e or 0))
    budgets = budgets if len(budgets) > 1 else []
    bases = [studies.arm_name({k: v for k, v in arm.items() if not (budgets and k == "epochs")})
             for arm in arms]
    baseline = args.baseline or baseline or bases[0]
    if baseline not in bases:
        raise UserError(f"--baseline {baseline!r} is not an arm; the arms are: "
                        f"{', '.join(dict.fromkeys(bases))}")
    out = args.out or out
    runs = []
    for arm, name in zip(arms, names):
        for seed in seeds:
            logdir = os.path.join(out, arm_dir(name), f"seed-{seed}")
            settings = dict(fixed, **arm)
            for condition, flags in flags_when:  # e.g. a batch-norm flag for the arms with bn=on
                if all(settings.get(k) == v for k, v in condition.items()):
                    settings.update(flags)
            # The test split is evaluated once, on the checkpoint chosen on validation (eval.py
            # after training), not after every epoch: a third of a short All-CNN run's time.
            argv = ["--no-test-every-epoch"] + to_argv(settings, kinds) + [
                "--seed", str(seed), "--val-fraction", repr(val_fraction), "--logdir", logdir]
            runs.append(dict(arm=name, seed=seed, logdir=logdir, train_argv=argv))
    # Every arm's flags are checked by train.py's own parser before anything runs.
    import train
    for run in runs[::len(seeds)]:
        try:
            train.parse_args(run["train_argv"])
        except SystemExit:
            raise UserError(f"train.py refuses the flags of arm {run['arm']!r} (its message is "
                            "above)") from None
    return dict(fixed=fixed, arms=arms, names=names, bases=bases, budgets=budgets,
                seeds=seeds, baseline=baseline,
                flags_when=flags_when, val_fraction=val_fraction, out=out, runs=runs,
                study=args.study,
                scale=args.scale if args.study else None)


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------

def main(argv=None):
    args, grid_tokens = build_parser().parse_known_args(argv)
    if args.jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {args.jobs}")
    if not args.study and not grid_tokens:
        raise UserError("give --study NAME or a grid of train.py flags, e.g. --act relu,elu")
    plan = make_plan(args, grid_tokens)
    if args.print_commands:
        for run in plan["runs"]:
            print(shlex.join(train_command(run)))
        return 0
    failed = [] if args.collect else run_all(plan, args.jobs)
    report.evaluate_missing(plan)
    arms = report.collect(plan)
    report.write_report(plan, arms)
    print("\n" + report.text_table(arms))
    print(f"\nreport: {os.path.join(plan['out'], 'results.md')} (.json, .csv, curves.png, "
          "test_accuracy.png)")
    if failed:
        print(f"{len(failed)} run(s) failed; their logs: "
              + ", ".join(os.path.join(r["logdir"], "train.log") for r in failed))
        return 1
    return 0


if __name__ == "__main__":
    run_script(main)
