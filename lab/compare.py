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
statistics at the accuracy of chance: leaving them out would flatter an arm that often fails).

One run is one configuration: a value given twice (`--act relu,relu`) or two arms that train.py
parses to the same settings (`--lr 0.1,0.10`) are refused, and so is `--extend` with a flag the
folder does not vary (its runs were made at that flag's value already). One compare.py works in a
folder at a time (OUT/.lock).
"""

import argparse
import contextlib
import json
import os
import shlex
import sys

from lab import report
from lab.runner import run_all
from lab.runs import HOW_IT_RAN, read_json, train_command, trained
from plumbing import rundir, tf_logs
from plumbing.errors import UserError, run_script

# TensorFlow's start-up lines (the arms' checks build no model but import its code) stay quiet.
tf_logs.quiet()

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
                   help="the study's scale: quick (about an hour on 2 CPU cores; the default), "
                        "budgets (the quick grid at three training lengths) or paper "
                        "(python -m lab.studies lists each with its estimate)")
    p.add_argument("--out", default=None,
                   help="experiment directory (default experiments/<study>-<scale> or "
                        "experiments/grid)")
    p.add_argument("--seeds", default=None,
                   help="comma-separated seeds (default: the study's, or 0,1,2)")
    p.add_argument("--val-fraction", type=float, default=None,
                   help="stratified share of the training files held out for the choice of the "
                        "checkpoint (default: the study's, or 0.1 = 5,000 CIFAR-10 images)")
    p.add_argument("--baseline", default=None,
                   help="the arm the others are compared with in this report, e.g. "
                        "'act=relu,bn=off' (default: the study's, or the first arm; the folder "
                        "does not keep it)")
    p.add_argument("--jobs", type=int, default=1,
                   help="runs at the same time (default 1; with GPUs: one GPU each, round robin)")
    p.add_argument("--print-commands", action="store_true",
                   help="print one train.py command per run and exit (for a job array)")
    p.add_argument("--collect", action="store_true",
                   help="run nothing but the test evaluations still missing; report from the log "
                        "directories (with only --out: the folder's own grid, grid.json)")
    p.add_argument("--extend", action="store_true",
                   help="add this command's new arms or seeds to an existing experiment folder "
                        "(the old ones stay in the report); without it a folder made by another "
                        "grid is refused")
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
        # "relu, elu" is "relu,elu": spaces around the separators are the shell's, not values.
        values = [v.strip() for v in value.split("/" if flag in LIST_FLAGS else ",")]
        if not all(values):
            raise UserError(f"--{flag} {value!r} has an empty value; give e.g. --{flag} a,b")
        repeated = next((v for i, v in enumerate(values) if v in values[:i]), None)
        if repeated is not None:  # one arm trained once but counted as two seeds
            raise UserError(f"--{flag} {value} repeats {repeated!r}; give each value once")
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


def make_grid(args, grid_tokens, kinds):
    """What an experiment is: {study, scale, fixed, arms, seeds, baseline, val_fraction,
    flags_when}, from a study or from the train.py flags of the command line."""
    from lab import studies

    if args.study:
        study = studies.plan(args.study, args.scale)
        fixed, extra_axes = parse_grid(grid_tokens, kinds)
        if extra_axes:
            raise UserError("a study fixes its own arms; give single values to change a setting "
                            "of every arm (e.g. --data-dir, --dataset cifar100)")
        # A study's budgets: every arm at every training length (--epochs), each a whole run.
        grid = dict(study=args.study, scale=args.scale, fixed=dict(study["fixed"], **fixed),
                    arms=[dict(arm, **({"epochs": b} if b else {}))
                          for arm in study["arms"] for b in study["budgets"] or [None]],
                    seeds=study["seeds"], baseline=study["baseline"],
                    val_fraction=float(study["val_fraction"]), flags_when=study["flags_when"])
    else:
        fixed, axes = parse_grid(grid_tokens, kinds)
        grid = dict(study=None, scale=None, fixed=fixed, arms=studies.product(**axes),
                    seeds=[0, 1, 2], baseline=None, val_fraction=0.1, flags_when=[])
    if args.seeds is not None:
        try:
            grid["seeds"] = [int(s) for s in args.seeds.split(",")]
        except ValueError:
            raise UserError(f"--seeds takes comma-separated integers, got {args.seeds!r}") from None
    if len(set(grid["seeds"])) != len(grid["seeds"]):
        raise UserError(f"--seeds has repeats: {args.seeds}")
    if args.val_fraction is not None:
        grid["val_fraction"] = args.val_fraction
    if not 0 < grid["val_fraction"] < 1:
        raise UserError("--val-fraction must be in (0, 1): the checkpoint is chosen on a "
                        "validation split, never on the test split")
    # Where the data is, not what is trained: not part of the grid (a folder may be collected
    # on another machine), but given to every run.
    grid["data_dir"] = grid["fixed"].pop("data-dir", None)
    return grid


def make_plan(grid, out, kinds=None, baseline=None):
    """The runs of a grid in the experiment folder `out`, each arm's flags checked by train.py's
    own checks (the parser, and the depth of a ResNet) before anything runs. `baseline` (the
    command's --baseline) is this report's only: the grid's own (the study's, or the first arm)
    is the one the folder records."""
    from lab import studies

    kinds = kinds or train_flag_kinds()
    arms = grid["arms"]
    names = [studies.arm_name(arm) for arm in arms]
    # Training budgets: when the arms differ in --epochs, each length is a budget and an arm is
    # compared with the others at the same length (its name without epochs is its "base").
    budgets = sorted({arm.get("epochs") for arm in arms}, key=lambda e: float(e or 0))
    budgets = budgets if len(budgets) > 1 else []
    bases = [studies.arm_name({k: v for k, v in arm.items() if not (budgets and k == "epochs")})
             for arm in arms]
    default_baseline = grid["baseline"] or bases[0]
    baseline = baseline or default_baseline
    if baseline not in bases:
        raise UserError(f"--baseline {baseline!r} is not an arm; the arms are: "
                        f"{', '.join(dict.fromkeys(bases))}")
    runs = []
    for arm, name in zip(arms, names):
        settings = dict(grid["fixed"], **arm)
        if grid.get("data_dir"):
            settings["data-dir"] = grid["data_dir"]
        for condition, flags in grid["flags_when"]:  # e.g. a BN flag for the arms with bn=on
            if all(settings.get(k) == v for k, v in condition.items()):
                settings.update(flags)
        for seed in grid["seeds"]:
            logdir = os.path.join(out, arm_dir(name), f"seed-{seed}")
            # The test split is evaluated once, on the checkpoint chosen on validation (eval.py
            # after training), not after every epoch: a third of a short All-CNN run's time.
            argv = ["--no-test-every-epoch"] + to_argv(settings, kinds) + [
                "--seed", str(seed), "--val-fraction", repr(grid["val_fraction"]),
                "--logdir", logdir]
            runs.append(dict(arm=name, seed=seed, logdir=logdir, train_argv=argv))
    # A study's claims come from lab/studies.py, never from a folder's record: they follow the
    # study's definition, whenever the folder was made.
    claims = studies.plan(grid["study"], grid["scale"])["claims"] if grid.get("study") else []
    return dict(grid, arms=arms, names=names, bases=bases, budgets=budgets, baseline=baseline,
                default_baseline=default_baseline, claims=claims, out=out, runs=runs,
                settings=check_arms(runs, len(grid["seeds"])))


def check_arms(runs, seeds):
    """Every arm's flags through train.py's own checks: the parser, then the depth of a ResNet
    (the one check that needs the model code). {arm: parsed settings}; a refusal is one line."""
    import train
    from plumbing.command_line import check_depth

    settings, seen = {}, {}
    for run in runs[::seeds]:
        try:
            args = train.parse_args(run["train_argv"])
        except SystemExit:
            raise UserError(f"train.py refuses the flags of arm {run['arm']!r} (its message is "
                            "above)") from None
        try:
            check_depth(args)
        except UserError as e:
            raise UserError(f"arm {run['arm']!r}: {e}") from None
        # Two names of one configuration (--lr 0.1,0.10) would train it twice and count its
        # runs as two arms: the settings train.py parsed must differ.
        key = json.dumps({k: v for k, v in vars(args).items() if k != "logdir"},
                         sort_keys=True, default=str)
        if key in seen:
            raise UserError(f"arms {seen[key]!r} and {run['arm']!r} train the same "
                            "configuration; give each setting once")
        seen[key] = run["arm"]
        settings[run["arm"]] = args
    return settings


# --------------------------------------------------------------------------------------------------
# The experiment folder: the grid that made it, and the runs in it
# --------------------------------------------------------------------------------------------------

GRID_JSON = "grid.json"


def grid_differences(old, new):
    """What differs between two grids, in words: settings, arms, seeds."""
    diffs = []
    for key in ("study", "scale", "val_fraction", "flags_when"):
        if json.loads(json.dumps(old.get(key))) != json.loads(json.dumps(new.get(key))):
            diffs.append(f"{key}: {old.get(key)!r} in the folder, {new.get(key)!r} now")
    a, b = old.get("fixed", {}), new.get("fixed", {})
    for flag in dict.fromkeys(list(a) + list(b)):
        if a.get(flag) != b.get(flag):
            diffs.append(f"--{flag}: {a.get(flag, 'not given')} in the folder, "
                         f"{b.get(flag, 'not given')} now")
    return diffs


def merge_grids(old, new, extend):
    """The grid of a folder that already holds `old`: the same grid, or (with --extend) old's
    arms and seeds followed by the new ones; anything else is refused with the differences."""
    from lab import studies

    diffs = grid_differences(old, new)
    if diffs:
        raise UserError("the experiment folder was made with other settings (" + "; ".join(diffs)
                        + "); use a new --out, or the folder's own flags")
    old_axes, new_axes = ({k for arm in grid["arms"] for k in arm} for grid in (old, new))
    if new_axes - old_axes:
        # The folder's runs were made at train.py's value of the new flag: its arms again under
        # new names (`all` and `bn=off`), trained twice and compared with themselves.
        raise UserError("--extend adds arms or seeds over the folder's own axes ("
                        + (", ".join(f"--{k}" for k in sorted(old_axes)) or "none")
                        + "); this command varies "
                        + ", ".join(f"--{k}" for k in sorted(new_axes - old_axes))
                        + ", which would train the folder's runs again under new names; use a "
                        "new --out")
    old_names = [studies.arm_name(a) for a in old["arms"]]
    added_arms = [a for a in new["arms"] if studies.arm_name(a) not in old_names]
    added_seeds = [s for s in new["seeds"] if s not in old["seeds"]]
    dropped = [n for n in old_names if n not in {studies.arm_name(a) for a in new["arms"]}] + \
        [f"seed {s}" for s in old["seeds"] if s not in new["seeds"]]
    if not (added_arms or added_seeds or dropped):
        return old
    if not extend:
        change = ", ".join([f"adds {studies.arm_name(a)}" for a in added_arms]
                           + [f"adds seed {s}" for s in added_seeds]
                           + [f"leaves out {d}" for d in dropped])
        raise UserError(f"the experiment folder holds another grid (this command {change}); "
                        "add --extend to add arms or seeds to it (the old ones stay in the "
                        "report), or use a new --out")
    return dict(old, arms=old["arms"] + added_arms, seeds=old["seeds"] + added_seeds)


def run_differences(plan):
    """["<run>: <setting> x in its config.json, y in the grid"] for every run already in the
    folder whose recorded settings are not the grid's: a report must never state a setting that
    its runs did not use."""
    import copy

    out = []
    for run in plan["runs"]:
        config = read_json(os.path.join(run["logdir"], "config.json"))
        if not config:
            continue
        args = copy.copy(plan["settings"][run["arm"]])
        args.seed = run["seed"]
        for key, value in sorted(vars(args).items()):
            if key in config and key not in HOW_IT_RAN and \
                    json.loads(json.dumps(value)) != config[key]:
                out.append(f"{os.path.relpath(run['logdir'], plan['out'])}: {key} "
                           f"{config[key]!r} in its config.json, {value!r} in the grid")
    return out


def open_folder(grid, out, extend, baseline=None):
    """The plan of the experiment folder `out`: its recorded grid checked against this command's,
    and every run already in it checked against the grid; grid.json written when runs start.
    `baseline` (--baseline) is this command's report's only, never recorded."""
    recorded = read_json(os.path.join(out, GRID_JSON))
    if recorded:
        grid = dict(merge_grids(recorded, grid, extend), data_dir=grid.get("data_dir"))
    plan = make_plan(grid, out, baseline=baseline)
    wrong = run_differences(plan)
    if wrong:
        raise UserError(f"{out!r} holds runs made with other settings ({'; '.join(wrong[:3])}"
                        + (f"; and {len(wrong) - 3} more" if len(wrong) > 3 else "")
                        + "); use a new --out, or the flags those runs were made with")
    return plan


@contextlib.contextmanager
def only_compare(out):
    """Hold OUT/.lock while working in the folder: a second compare.py on it is refused before it
    writes anything (its train.py would find each run locked, and its report would call the
    healthy runs failed). The lock goes with the process, however it ends."""
    os.makedirs(out, exist_ok=True)
    held = contextlib.ExitStack()
    try:
        held.enter_context(rundir.only_writer(out))
    except UserError:
        with open(os.path.join(out, ".lock")) as f:
            holder = f.read().strip() or "a process"
        raise UserError(f"another compare.py is working in {out!r} ({holder}); wait for it to "
                        "finish, stop it, or use another --out") from None
    with held:
        yield


def write_grid(plan):
    os.makedirs(plan["out"], exist_ok=True)
    rundir.atomic_write(os.path.join(plan["out"], GRID_JSON), json.dumps(
        {k: plan.get(k) for k in ("study", "scale", "fixed", "arms", "seeds", "baseline",
                                  "val_fraction", "flags_when")}
        | {"baseline": plan.get("default_baseline", plan["baseline"])}, indent=1))


def check_data(plan):
    """Find the data of every arm once, before any run starts: a missing or damaged dataset is
    one line here instead of one failure per run."""
    from plumbing import cifar_download

    for data_dir, dataset in sorted({(a.data_dir, a.dataset) for a in plan["settings"].values()}):
        cifar_download.find_data(data_dir, dataset)


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------

def main(argv=None):
    args, grid_tokens = build_parser().parse_known_args(argv)
    if args.jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {args.jobs}")
    out = args.out or os.path.join("experiments", f"{args.study}-{args.scale}" if args.study
                                   else "grid")
    if args.collect and not args.study and not grid_tokens:  # the folder's own grid
        grid = read_json(os.path.join(out, GRID_JSON))
        if not grid:
            raise UserError(f"{out!r} has no {GRID_JSON}; give the grid's flags (--study NAME or "
                            "train.py flags) with --collect")
    elif not args.study and not grid_tokens:
        raise UserError("give --study NAME or a grid of train.py flags, e.g. --act relu,elu")
    else:
        grid = make_grid(args, grid_tokens, train_flag_kinds())
    plan = open_folder(grid, out, args.extend, args.baseline)
    if args.print_commands:
        for run in plan["runs"]:
            print(shlex.join(train_command(run)))
        print(f"# then, once they have run: python compare.py {shlex.join(argv or sys.argv[1:])} "
              "--collect (evaluates each chosen checkpoint on the test split and writes the "
              "report)".replace(" --print-commands", ""), file=sys.stderr)
        return 0
    if args.collect and not any(os.path.exists(os.path.join(r["logdir"], "config.json"))
                                for r in plan["runs"]):
        raise UserError(f"{out!r} holds no run of this grid yet (no config.json in any "
                        "<arm>/seed-<s>); nothing to collect, nothing written")
    if not args.collect and any(not trained(r["logdir"]) for r in plan["runs"]):
        check_data(plan)
    with only_compare(out):
        write_grid(plan)  # the folder's record of its grid, for any later command on it
        failed = [] if args.collect else run_all(plan, args.jobs)
        report.evaluate_missing(plan, check_data)
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
