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
default the first arm) over seeds with its interval and p-value (stats.py), epochs, seconds per
epoch, parameter count, and the runs `rundir.run_health` calls dead or diverged (they count in the
statistics with their chosen checkpoint's accuracy: leaving them out would flatter an arm that
often fails).
"""

import argparse
import concurrent.futures
import csv
import json
import os
import queue
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time

import rundir
from errors import UserError, run_script

HERE = os.path.dirname(os.path.abspath(__file__))
# train.py flags whose value is itself a comma list: their alternatives are separated by "/".
LIST_FLAGS = ("dropout-rates", "lr-steps")
# What `eval.py --best --split test` writes into a run's folder.
EVAL_JSON = "eval-test-best.json"
# Set by compare.py for every run; not part of the grid.
OWN_FLAGS = ("logdir", "seed", "val-fraction")


# --------------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------------

def build_parser():
    import studies
    p = argparse.ArgumentParser(
        description="Run train.py over a grid of settings and seeds; report mean, intervals and "
                    "paired differences. Any other --flag goes to train.py (a comma list varies).")
    p.add_argument("--study", choices=sorted(studies.STUDIES), default=None,
                   help="a study of studies.py instead of an explicit grid")
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
    import train
    kinds = {}
    for action in train.build_parser()._actions:
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
    import studies

    kinds = train_flag_kinds()
    if args.study:
        study = studies.plan(args.study, args.scale)
        fixed, extra_axes = parse_grid(grid_tokens, kinds)
        if extra_axes:
            raise UserError("a study fixes its own arms; give single values to change a setting "
                            "of every arm (e.g. --data-dir, --dataset cifar100)")
        fixed = dict(study["fixed"], **fixed)
        arms = [dict(arm) for arm in study["arms"]]
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
    baseline = args.baseline or baseline or names[0]
    if baseline not in names:
        raise UserError(f"--baseline {baseline!r} is not an arm; the arms are: {', '.join(names)}")
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
    return dict(fixed=fixed, arms=arms, names=names, seeds=seeds, baseline=baseline,
                flags_when=flags_when, val_fraction=val_fraction, out=out, runs=runs,
                study=args.study,
                scale=args.scale if args.study else None)


def script(name):
    """The path of train.py / eval.py as a command line shows it (relative when it can be)."""
    path = os.path.join(HERE, name)
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else path


def train_command(run):
    return ["python", script("train.py")] + run["train_argv"]


def eval_command(logdirs):
    return ["python", script("eval.py"), "--best", "--split", "test", "--logdir"] + list(logdirs)


# --------------------------------------------------------------------------------------------------
# The state of a run, from its log directory alone
# --------------------------------------------------------------------------------------------------

def read_metrics(logdir):
    path = os.path.join(logdir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def checkpoint_name(state):
    """The checkpoint a tf.train.CheckpointManager state file points at (e.g. 'ckpt-390')."""
    if not os.path.exists(state):
        return None
    with open(state) as f:
        for line in f:
            if line.startswith("model_checkpoint_path:"):
                return os.path.basename(line.split(":", 1)[1].strip().strip('"'))
    return None


def best_checkpoint(logdir):
    """The name of the best-on-validation checkpoint (e.g. 'ckpt-390') from DIR/best/checkpoint."""
    return checkpoint_name(os.path.join(logdir, "best", "checkpoint"))


def steps_saved(logdir):
    """The training steps in the run's latest checkpoint (ckpt-N holds N steps); 0 before it."""
    name = checkpoint_name(os.path.join(logdir, "ckpt", "checkpoint"))
    return int(name.rsplit("-", 1)[1]) if name else 0


def steps_left(run, total_steps):
    """Steps this run still has to train; total_steps stands in until train.py wrote config.json."""
    config = read_json(os.path.join(run["logdir"], "config.json"))
    return max((config or {}).get("total_steps", total_steps) - steps_saved(run["logdir"]), 0)


def time_left(seconds_per_step, steps, jobs):
    """Seconds until the last of the runs with these steps left ends, `jobs` running at a time
    (each at seconds_per_step): the work shared by the workers, but no less than the longest run."""
    return seconds_per_step * max(max(steps, default=0), sum(steps) / jobs)


def trained(logdir):
    """True when train.py has finished every step (or gave up on a diverged run)."""
    if os.path.exists(os.path.join(logdir, "diverged.json")):
        return True
    config = read_json(os.path.join(logdir, "config.json"))
    records = read_metrics(logdir)
    return bool(config and records and records[-1]["step"] >= config["total_steps"])


def evaluated(logdir):
    """True when eval.py's test evaluation of the current best checkpoint is in the run's folder."""
    result = read_json(os.path.join(logdir, EVAL_JSON))
    best = best_checkpoint(logdir)
    return bool(result and best and result.get("split") == "test"
                and os.path.basename(result.get("checkpoint", "")) == best)


# --------------------------------------------------------------------------------------------------
# Running: one train.py (then one eval.py) subprocess per run, --jobs at a time
# --------------------------------------------------------------------------------------------------

def visible_gpus():
    """GPU indices for CUDA_VISIBLE_DEVICES (nvidia-smi -L, without importing TensorFlow)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                                 timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(l for l in listing.splitlines()
                                             if l.startswith("GPU "))]


class Runner:
    """Runs runs on --jobs workers; each worker holds a slot (a GPU when there are GPUs)."""

    def __init__(self, jobs):
        gpus = visible_gpus()
        self.slots = queue.Queue()
        for i in range(jobs):
            self.slots.put(gpus[i % len(gpus)] if gpus else None)
        self.stopping = threading.Event()
        self.children, self.lock = set(), threading.Lock()

    def call(self, command, log_path, gpu):
        """Run one command with output appended to log_path; its exit code (None if stopped)."""
        if self.stopping.is_set():
            return None
        env = dict(os.environ)
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        with open(log_path, "a") as log:
            log.write(f"$ {shlex.join(command)}\n")
            log.flush()
            child = subprocess.Popen([sys.executable] + command[1:], stdout=log,
                                     stderr=subprocess.STDOUT, env=env)
            with self.lock:
                self.children.add(child)
            try:
                return child.wait()
            finally:
                with self.lock:
                    self.children.discard(child)

    def run(self, run):
        """Train one run (train.py continues an interrupted run from its checkpoint)."""
        gpu = self.slots.get()
        try:
            logdir, t0 = run["logdir"], time.time()
            first_step = steps_saved(logdir)  # a resumed run continues from there
            os.makedirs(logdir, exist_ok=True)
            with open(os.path.join(logdir, "command.sh"), "w") as f:
                f.write(shlex.join(train_command(run)) + "\n")
            log = os.path.join(logdir, "train.log")
            code = self.call(train_command(run), log, gpu)
            done = dict(run, seconds=time.time() - t0, steps=steps_saved(logdir) - first_step)
            if code == 0 or trained(logdir):
                return dict(done, ok=True)
            return dict(done, ok=False,
                        why=None if code is None else f"train.py exit {code}: " + last_line(log))
        finally:
            self.slots.put(gpu)

    def stop(self, signum=signal.SIGINT):
        """Start nothing new; ask the running train.py processes to checkpoint and exit."""
        self.stopping.set()
        with self.lock:
            for child in self.children:
                if child.poll() is None:
                    child.send_signal(signum)


def last_line(path):
    try:
        with open(path) as f:
            lines = [l.strip() for l in f if l.strip()]
        return lines[-1][:300] if lines else "(no output)"
    except OSError:
        return "(no log)"


def run_all(plan, jobs):
    """Run every unfinished run; one progress line per finished run. Returns failed runs."""
    todo = [r for r in plan["runs"] if not trained(r["logdir"])]
    total = len(plan["runs"])
    done = total - len(todo)
    if done:
        print(f"{done} of {total} runs already finished: skipped", flush=True)
    if todo:  # a run can take an hour: say where to watch it before the first one ends
        pattern = os.path.join(plan["out"], "<arm>", "seed-<n>", "train.log")
        print(f"training {len(todo)} run(s), {min(jobs, len(todo))} at a time; each run's "
              f"progress goes to {pattern}, e.g. {os.path.join(todo[0]['logdir'], 'train.log')}",
              flush=True)
    runner, failed = Runner(jobs), []
    seconds, steps, ended = 0.0, 0, set()  # of this invocation's runs: for the time left
    previous = signal.signal(signal.SIGTERM, lambda s, f: runner.stop(signal.SIGTERM))
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = [pool.submit(runner.run, r) for r in todo]
        for future in concurrent.futures.as_completed(futures):
            result = future.result()
            if result.get("why") is None and not result["ok"]:
                continue  # stopped before or while running
            done += 1
            seconds, steps = seconds + result["seconds"], steps + result["steps"]
            ended.add(result["logdir"])
            left = total - done
            # Time left: the steps the other runs still have (a resumed run counts from its
            # checkpoint) at this invocation's seconds per step of one run, `jobs` at a time.
            config = read_json(os.path.join(result["logdir"], "config.json")) or {}
            eta = steps and time_left(seconds / steps, [
                steps_left(r, config.get("total_steps", 0))
                for r in todo if r["logdir"] not in ended], jobs)
            what = run_summary(result["logdir"]) if result["ok"] else "FAILED: " + result["why"]
            if not result["ok"]:
                failed.append(result)
            print(f"[{done}/{total}] {result['arm']} seed {result['seed']}: {what} "
                  f"({rundir.fmt_time(result['seconds'])}); {left} left"
                  + (f", ~{rundir.fmt_time(eta)} to go" if left and eta else ""), flush=True)
    except KeyboardInterrupt:
        runner.stop()
        print("\ninterrupted: the running train.py processes save a checkpoint; re-run the same "
              "command to continue", flush=True)
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        signal.signal(signal.SIGTERM, previous)
    if runner.stopping.is_set():
        raise UserError("stopped by SIGTERM; re-run the same command to continue")
    return failed


def run_summary(logdir):
    """The validation accuracy of the chosen checkpoint (the test split is evaluated at the end)."""
    records = read_metrics(logdir)
    val = max((r["val_accuracy"] for r in records if "val_accuracy" in r), default=None)
    return "no finished epoch" if val is None else f"best val {100 * val:.2f}%"


# --------------------------------------------------------------------------------------------------
# Collecting: every figure of the report from the log directories
# --------------------------------------------------------------------------------------------------

def evaluate_missing(plan):
    """One eval.py process for every trained run whose best checkpoint has no test result yet.

    The test split is evaluated here, once per run, after training: one process for all runs
    costs one TensorFlow start-up instead of one per run.
    """
    missing = [r["logdir"] for r in plan["runs"]
               if trained(r["logdir"]) and best_checkpoint(r["logdir"])
               and not evaluated(r["logdir"])]
    if missing:
        print(f"evaluating {len(missing)} best checkpoint(s) on the test split", flush=True)
        code = subprocess.call([sys.executable] + eval_command(missing)[1:],
                               stdout=subprocess.DEVNULL)
        if code != 0:
            raise UserError(f"eval.py failed (exit {code}) on: {' '.join(missing)}")


def collect_run(run):
    """One run's figures, or None when it has not finished."""
    logdir = run["logdir"]
    config = read_json(os.path.join(logdir, "config.json"))
    if not config or not trained(logdir):
        return None
    records = read_metrics(logdir)
    result = read_json(os.path.join(logdir, EVAL_JSON)) if evaluated(logdir) else None
    best = best_checkpoint(logdir)
    best_step = int(best.rsplit("-", 1)[1]) if best else None
    chosen = next((r for r in records if r["step"] == best_step), None)
    return dict(seed=run["seed"], logdir=logdir, epochs=len(records),
                steps=records[-1]["step"] if records else 0,
                val_accuracy=chosen["val_accuracy"] if chosen else None,
                chosen_epoch=chosen["epoch"] if chosen else None,
                test_accuracy=result["top1"] if result else None,
                seconds_per_epoch=(sum(r["seconds"] for r in records) / len(records)
                                   if records else None),
                health=rundir.run_health(logdir, config["num_classes"]),
                curves=dict(epoch=[r["epoch"] for r in records],
                            train_loss=[r["train_loss"] for r in records],
                            val_accuracy=[r.get("val_accuracy") for r in records]),
                config=config)


def parameter_count(config):
    """Trainable parameters of the model a run's config.json describes."""
    import models
    model = models.build(**config["model_config"])
    return int(sum(v.shape.num_elements() for v in model.trainable_variables))


def mean_or_none(values):
    return sum(values) / len(values) if values else None


def collect(plan):
    """The report's data: one entry per arm with its runs and statistics."""
    import stats

    arms, params = [], {}
    for name in plan["names"]:
        runs = [r for r in (collect_run(run) for run in plan["runs"] if run["arm"] == name) if r]
        # Dead and diverged runs stay in: their chosen checkpoint's accuracy is what that arm
        # gave for that seed (leaving them out would flatter an arm that often fails).
        good = [r for r in runs if r["test_accuracy"] is not None]
        if runs and name not in params:
            params[name] = parameter_count(runs[0]["config"])
        arms.append(dict(
            name=name, runs=runs, n=len(good),
            val=stats.summarize([r["val_accuracy"] for r in good]),
            test=stats.summarize([r["test_accuracy"] for r in good]),
            test_by_seed={r["seed"]: r["test_accuracy"] for r in good},
            epochs=max((r["epochs"] for r in runs), default=0),
            # A run that diverged in its first epoch has no finished epoch to time.
            seconds_per_epoch=mean_or_none([r["seconds_per_epoch"] for r in runs
                                            if r["seconds_per_epoch"] is not None]),
            params=params.get(name), unfinished=len(plan["seeds"]) - len(runs),
            unhealthy=[f"seed {r['seed']}: {r['health']}" for r in runs if r["health"]]))
    base = next(a for a in arms if a["name"] == plan["baseline"])
    for arm in arms:
        arm["diff"] = None if arm is base else \
            stats.paired_difference(arm["test_by_seed"], base["test_by_seed"])
    return arms


# --------------------------------------------------------------------------------------------------
# The report: results.md / .json / .csv and two plots
# --------------------------------------------------------------------------------------------------

def pct(x, digits=2):
    return "-" if x is None else f"{100 * x:.{digits}f}"


def mean_std(s):
    if s["mean"] is None:
        return "-"
    return pct(s["mean"]) + ("" if s["std"] is None else f" ± {pct(s['std'])}")


def interval(s):
    return "-" if s["ci_low"] is None else f"[{pct(s['ci_low'])}, {pct(s['ci_high'])}]"


def diff_text(d):
    if d is None:
        return "baseline"
    if d["mean"] is None:
        return "-"
    text = f"{100 * d['mean']:+.2f}"
    if d["ci_low"] is not None:
        text += f" [{100 * d['ci_low']:+.2f}, {100 * d['ci_high']:+.2f}] p={d['p_value']:.3g}"
    return text


COLUMNS = ["arm", "n", "val % (mean ± std)", "test % (mean ± std)", "test 95% CI",
           "Δ test vs baseline (95% CI, p)", "epochs", "s/epoch", "params", "notes"]


def table_rows(arms):
    rows = []
    for a in arms:
        notes = list(a["unhealthy"])
        if a["unfinished"]:
            notes.append(f"{a['unfinished']} run(s) not finished")
        rows.append([a["name"], str(a["n"]), mean_std(a["val"]), mean_std(a["test"]),
                     interval(a["test"]), diff_text(a["diff"]), str(a["epochs"]),
                     "-" if a["seconds_per_epoch"] is None else f"{a['seconds_per_epoch']:.1f}",
                     "-" if a["params"] is None else f"{a['params']:,}", "; ".join(notes)])
    return rows


def markdown_table(arms):
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(arms)]
    return "\n".join(lines)


def text_table(arms):
    rows = [COLUMNS] + table_rows(arms)
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def describe(plan, arms):
    """The setup lines above the table: what was run, where, how the numbers were chosen."""
    config = next((r["config"] for a in arms for r in a["runs"]), {})
    what = f"study `{plan['study']}` at the {plan['scale']} scale" if plan["study"] else "a grid"
    fixed = " ".join(f"{k}={v}" for k, v in plan["fixed"].items())
    when = "".join(
        f"; and `{' '.join(f'{k}={v}' for k, v in flags.items())}` for the arms with "
        f"`{' '.join(f'{k}={v}' for k, v in condition.items())}`"
        for condition, flags in plan.get("flags_when", []))
    return [f"Comparison: {what}; {len(plan['names'])} arms x seeds {plan['seeds']}; "
            f"baseline `{plan['baseline']}`.",
            f"Settings of every arm: `{fixed}`{when}; validation split: "
            f"{plan['val_fraction']:g} of the training files (stratified); dataset "
            f"{config.get('dataset', '?')}.",
            "Validation accuracy is that of the checkpoint chosen on validation; test accuracy is "
            "that checkpoint's single evaluation on the test split. Δ is the paired difference "
            "over seeds (arm − baseline, percentage points) with its Student-t interval and the "
            "paired t-test p-value, over the seeds both arms have. Dead or diverged runs count "
            "in the statistics with the accuracy of their chosen checkpoint and are named in the "
            "notes; a run that diverged before its first epoch ended has no checkpoint to "
            "evaluate: it is named in the notes and n counts without it.",
            machine_line(r["config"] for a in arms for r in a["runs"])]


def machine_line(configs):
    """Device, TensorFlow, Python and commit of every process that trained the runs: a run
    resumed elsewhere or with newer code lists each (config.json's "trained_with")."""
    seen = {key: [] for key in rundir.ENVIRONMENT}
    for config in configs:
        for process in config.get("trained_with") or [config]:  # older runs: the last process
            for key in rundir.ENVIRONMENT:
                if process.get(key, "?") not in seen[key]:
                    seen[key].append(process.get(key, "?"))
    text = {key: " / ".join(values) or "?" for key, values in seen.items()}
    return (f"Machine: {text['device']}, TensorFlow {text['tensorflow']}, Python {text['python']}, "
            f"commit{'s' if len(seen['git_commit']) > 1 else ''} {text['git_commit']}.")


def write_report(plan, arms):
    out = plan["out"]
    os.makedirs(out, exist_ok=True)
    head = describe(plan, arms)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("# Results\n\n" + "\n".join(head) + "\n\n" + markdown_table(arms)
                + "\n\n![learning curves](curves.png)\n\n![test accuracy](test_accuracy.png)\n")
    public = [{k: v for k, v in a.items() if k != "runs"} | dict(
        runs=[{k: v for k, v in r.items() if k != "config"} for r in a["runs"]]) for a in arms]
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(dict(setup=head, study=plan["study"], scale=plan["scale"],
                       fixed=plan["fixed"], seeds=plan["seeds"], baseline=plan["baseline"],
                       val_fraction=plan["val_fraction"], arms=public), f, indent=1)
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arm", "n", "val_mean", "val_std", "test_mean", "test_std", "test_ci_low",
                    "test_ci_high", "diff_mean", "diff_ci_low", "diff_ci_high", "diff_p",
                    "epochs", "seconds_per_epoch", "params", "notes"])
        for a, row in zip(arms, table_rows(arms)):
            d = a["diff"] or {}
            w.writerow([a["name"], a["n"], a["val"]["mean"], a["val"]["std"], a["test"]["mean"],
                        a["test"]["std"], a["test"]["ci_low"], a["test"]["ci_high"],
                        d.get("mean"), d.get("ci_low"), d.get("ci_high"), d.get("p_value"),
                        a["epochs"], a["seconds_per_epoch"], a["params"], row[-1]])
    plot_curves(arms, os.path.join(out, "curves.png"))
    plot_test(arms, os.path.join(out, "test_accuracy.png"))


def plot_curves(arms, path):
    """Per arm: mean over seeds (line) and mean +- std (band) of train loss and val accuracy."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for arm in arms:
        runs = [r for r in arm["runs"] if r["curves"]["epoch"]]
        if not runs:
            continue
        length = min(len(r["curves"]["epoch"]) for r in runs)
        epochs = runs[0]["curves"]["epoch"][:length]
        for ax, key, scale in ((axes[0], "train_loss", 1), (axes[1], "val_accuracy", 100)):
            values = np.array([[np.nan if v is None else scale * v
                                for v in r["curves"][key][:length]] for r in runs])
            mean = values.mean(0)
            line, = ax.plot(epochs, mean, marker="." if length < 15 else None,
                            label=f"{arm['name']} (n={len(runs)})")
            if len(runs) > 1:
                std = values.std(0, ddof=1)
                ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(),
                                alpha=0.2)
    axes[0].set(xlabel="epoch", ylabel="training loss (cross-entropy)",
                title="training loss: mean over seeds, band ± 1 std")
    axes[1].set(xlabel="epoch", ylabel="validation accuracy %",
                title="validation accuracy: mean over seeds, band ± 1 std")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_test(arms, path):
    """Test accuracy per arm: each seed's run (dots), the mean and its 95% interval (bar)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.45 * len(arms)))
    for i, arm in enumerate(arms):
        y = len(arms) - 1 - i
        values = [100 * v for v in arm["test_by_seed"].values()]
        ax.scatter(values, [y] * len(values), color="gray", s=14, zorder=2)
        s = arm["test"]
        if s["mean"] is None:
            continue
        if s["ci_low"] is not None:
            ax.errorbar(100 * s["mean"], y, xerr=100 * s["half_width"], fmt="o", color="C0",
                        capsize=4, zorder=3)
        else:
            ax.plot(100 * s["mean"], y, "o", color="C0")
    ax.set_yticks(range(len(arms)), [a["name"] for a in reversed(arms)], fontsize=8)
    ax.set_xlabel("test accuracy % (dots: seeds; bar: mean and 95% Student-t interval)")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    evaluate_missing(plan)
    arms = collect(plan)
    write_report(plan, arms)
    print("\n" + text_table(arms))
    print(f"\nreport: {os.path.join(plan['out'], 'results.md')} (.json, .csv, curves.png, "
          "test_accuracy.png)")
    if failed:
        print(f"{len(failed)} run(s) failed; their logs: "
              + ", ".join(os.path.join(r["logdir"], "train.log") for r in failed))
        return 1
    return 0


if __name__ == "__main__":
    run_script(main)
