"""The report of a comparison: every figure from the runs' log directories, under one stated rule.

Per arm (and per training budget, when the arms differ in --epochs): runs finished / started,
mean +- std of validation and test accuracy over the counted seeds, the test accuracy's 95%
interval (Student t), the paired difference to the baseline arm at the same budget with its
interval and p-value (lab/stats.py), epochs, seconds per epoch, parameter count, and notes.
A study's claims (lab/studies.py) are tested at each budget and each gets one verdict by
lab/verdicts.py's rule (at the longest budget, only where its sign has settled); with several
budgets, the ranking of the arms at each budget and Kendall's tau between consecutive budgets.
Written as results.md, results.json and results.csv (percentages), plots (lab/plots.py) and
TensorBoard's HParams dashboard (lab/hparams.py).

What counts. A run that diverged or died (plumbing/health.py) is a result of its arm: it counts at
the accuracy of chance for its split, 1 / classes, marked as such (dropping it would flatter the
arm that fails). A run that failed (train.py ended with an error), was stopped or has not been
evaluated yet counts nowhere and is named in the notes; `finished / started` shows how many
runs an arm's figures rest on. Every column of a row uses the same seeds; a paired difference uses
the seeds both arms have, and says so when they are fewer. When a run has diverged is
plumbing/health.py's rule (DIVERGED_RULE); when an interval or a p-value is shown, `shown`'s
(INTERVAL_RULE); both are stated in results.md's header (COUNTING_RULE) and docs/STUDIES.md.
"""

import csv
import functools
import json
import os
import signal
import subprocess
import sys

from lab import plots, stats, verdicts
from lab.runs import EVAL_JSON, HOW_IT_RAN, best_checkpoint, eval_command, evaluated, notes, \
    read_json, read_metrics, state, trained
from plumbing import health, rundir
from plumbing.errors import UserError

MIN_SEEDS_FOR_INTERVAL = stats.MIN_SEEDS_FOR_INTERVAL
# Runs whose figures count: ended runs; dead and diverged ones at the accuracy of chance.
ENDED = ("finished", "dead", "diverged")
# The rules every output follows (results.md's header, docs/STUDIES.md's rule block): `shown`
# applies the interval rule, plumbing/health.py the divergence rule.
INTERVAL_RULE = (f"A 95% interval (Student t) or a p-value is shown only from "
                 f"{MIN_SEEDS_FOR_INTERVAL} seeds or more, in every table, file and plot (with 2 "
                 "seeds t = 12.7: too wide to read), but for the p-values of a claim's verdict, "
                 "which follow the verdict rule; a ranking of means says its seeds.")
COUNTING_RULE = (health.DIVERGED_RULE + " A run that diverged or died counts in its arm at the "
                 "accuracy of chance for its split (1 / classes), marked as such; a failed, "
                 "stopped or unevaluated run counts nowhere and is named in the notes. Every "
                 "column of a row uses the same seeds. " + INTERVAL_RULE)


# --------------------------------------------------------------------------------------------------
# Collecting: every figure of the report from the log directories
# --------------------------------------------------------------------------------------------------

def evaluate_missing(plan, check_data=None):
    """One eval.py process for every trained run whose best checkpoint has no test result yet.

    The test split is evaluated here, once per run, after training: one process for all runs
    costs one TensorFlow start-up instead of one per run. `check_data(plan)` first finds the
    data (one line if it is missing).
    """
    missing = [r["logdir"] for r in plan["runs"]
               if trained(r["logdir"]) and best_checkpoint(r["logdir"])
               and not evaluated(r["logdir"])]
    if missing:
        if check_data:
            check_data(plan)
        print(f"evaluating {len(missing)} best checkpoint(s) on the test split", flush=True)
        try:
            code = subprocess.call([sys.executable] + eval_command(missing)[1:],
                                   stdout=subprocess.DEVNULL)
        except KeyboardInterrupt:
            code = 128 + signal.SIGINT
        # Ctrl-C reaches both processes; eval.py ends without a word (status 130), and may end
        # before this one sees its own KeyboardInterrupt.
        if code in (128 + signal.SIGINT, -signal.SIGINT):
            print("\ninterrupted during the test evaluation: every run is trained; re-run the "
                  "same command (or add --collect) to evaluate them and write the report",
                  flush=True)
            raise KeyboardInterrupt
        if code != 0:
            raise UserError(f"eval.py failed (exit {code}) on: {' '.join(missing)}")


def collect_run(run):
    """One run's figures and state; val/test are None where nothing counts."""
    logdir = run["logdir"]
    config = read_json(os.path.join(logdir, "config.json")) or {}
    condition = state(logdir)
    records = read_metrics(logdir)
    result = read_json(os.path.join(logdir, EVAL_JSON)) if evaluated(logdir) else None
    chosen = None
    if result:  # the evaluated checkpoint's epoch (ckpt-N holds N steps)
        step = int(os.path.basename(result.get("checkpoint", "-0")).rsplit("-", 1)[1])
        chosen = next((r for r in records if r["step"] == step), None)
    val = chosen["val_accuracy"] if chosen else None
    test = result["top1"] if result else None
    if condition in ("dead", "diverged"):  # a result of the arm: chance for its split
        val = test = 1.0 / config["num_classes"]
    elif condition != "finished":
        val = test = None
    return dict(seed=run["seed"], logdir=logdir, state=condition, notes=notes(logdir),
                epochs=len(records), steps=config.get("total_steps"),
                val_accuracy=val, test_accuracy=test,
                chosen_epoch=chosen["epoch"] if chosen else None,
                seconds_per_epoch=seconds_per_epoch(records, config.get("steps_per_epoch")),
                curves=dict(epoch=[r["epoch"] for r in records],
                            train_loss=[r["train_loss"] for r in records],
                            val_accuracy=[r.get("val_accuracy") for r in records]),
                config=config)


def seconds_per_epoch(records, steps_per_epoch):
    """Seconds per whole epoch: the time of the epochs in metrics.jsonl over the epochs' worth of
    steps they trained. An epoch finished after a resume ("resumed_at_step") trained only its
    remaining steps, and counts as that fraction of an epoch, not as a whole one."""
    if not records:
        return None
    if not steps_per_epoch:
        return sum(r["seconds"] for r in records) / len(records)
    steps = sum(r["step"] - r.get("resumed_at_step", (r["epoch"] - 1) * steps_per_epoch)
                for r in records)
    return sum(r["seconds"] for r in records) / (steps / steps_per_epoch) if steps else None


def parameter_count(config):
    """Trainable parameters of the model a run's config.json describes."""
    return count_parameters(json.dumps(config["model_config"], sort_keys=True))


@functools.lru_cache(maxsize=None)
def count_parameters(model_config_json):
    """Built once per model: the arms of a budget grid and the seeds of an arm share theirs."""
    import models
    model = models.build(**json.loads(model_config_json))
    return int(sum(v.shape.num_elements() for v in model.trainable_variables))


def mean_or_none(values):
    return sum(values) / len(values) if values else None


def collect(plan):
    """The report's data: one entry per arm with its runs and statistics."""
    arms, params = [], {}
    for name, base_name, arm_flags in zip(plan["names"], plan["bases"], plan["arms"]):
        runs = [collect_run(run) for run in plan["runs"] if run["arm"] == name]
        started = [r for r in runs if r["state"] != "not started"]
        counted = [r for r in runs if r["state"] in ENDED and r["test_accuracy"] is not None]
        with_config = [r for r in runs if r["config"]]
        if with_config and name not in params:
            params[name] = parameter_count(with_config[0]["config"])
        arm_notes = []
        for r in runs:
            if r["state"] in ("dead", "diverged"):
                arm_notes.append(f"seed {r['seed']} {r['state']} (counted at chance)")
            elif r["state"] == "failed":
                arm_notes.append(f"seed {r['seed']} {r['notes'][0]}")
            elif r["state"] == "finished" and r["test_accuracy"] is None:
                arm_notes.append(f"seed {r['seed']} not evaluated on the test split yet")
        unfinished = [r["seed"] for r in runs if r["state"] in ("not finished", "not started")]
        if unfinished:
            arm_notes.append(f"seed{'s' if len(unfinished) > 1 else ''} "
                             f"{', '.join(map(str, unfinished))} not finished")
        arm_notes += sorted({n for r in runs for n in r["notes"] if n.startswith("BN ")})
        arms.append(dict(
            name=name, base=base_name, budget=arm_flags.get("epochs") if plan["budgets"] else None,
            runs=runs, n=len(counted), started=len(started),
            ended=len([r for r in runs if r["state"] in ENDED]),
            seeds=[r["seed"] for r in counted],
            val=shown(stats.summarize([r["val_accuracy"] for r in counted])),
            test=shown(stats.summarize([r["test_accuracy"] for r in counted])),
            test_by_seed={r["seed"]: r["test_accuracy"] for r in counted},
            epochs=max((r["epochs"] for r in runs), default=0),
            steps=max((r["steps"] or 0 for r in runs), default=0) or None,
            # A run that diverged in its first epoch has no finished epoch to time.
            seconds_per_epoch=mean_or_none([r["seconds_per_epoch"] for r in runs
                                            if r["seconds_per_epoch"] is not None]),
            params=params.get(name), notes=arm_notes,
            chance=1.0 / with_config[0]["config"]["num_classes"] if with_config else None))
    for arm in arms:  # against the baseline arm at the same training budget
        base = baseline_of(arms, plan, arm["budget"])
        arm["diff"] = None if arm is base else \
            shown(stats.paired_difference(arm["test_by_seed"], base["test_by_seed"]))
    return arms


def shown(summary):
    """A summary of lab/stats.py as every output shows it (INTERVAL_RULE): its interval and
    p-value None under MIN_SEEDS_FOR_INTERVAL values. The one place the rule is applied: the
    tables, results.json / .csv and the plots all read what it returns."""
    if summary["n"] >= MIN_SEEDS_FOR_INTERVAL:
        return summary
    return dict(summary, ci_low=None, ci_high=None, half_width=None,
                **({"p_value": None} if "p_value" in summary else {}))


def baseline_of(arms, plan, budget):
    return next(a for a in arms if a["base"] == plan["baseline"] and a["budget"] == budget)


def budgets_of(arms):
    """[(budget, the arms at that budget)] in increasing length; one (None, arms) without."""
    budgets = list(dict.fromkeys(a["budget"] for a in arms))
    budgets.sort(key=lambda b: float(b or 0))
    return [(b, [a for a in arms if a["budget"] == b]) for b in budgets]


def judge_claims(plan, arms):
    """The test of each of the study's claims at each budget (lab/verdicts.py's rule, Holm over
    the claims of one budget): [{budget, steps, claim fields, diff, p's, at_budget}]."""
    out = []
    for budget, at in budgets_of(arms):
        by_seed = {a["base"]: a["test_by_seed"] for a in at}
        steps = max((a["steps"] or 0 for a in at), default=0) or None
        # The difference's interval as every output shows it; the p-values are the verdict
        # rule's own.
        out += [dict(v, budget=budget, steps=steps, diff=shown(v["diff"]))
                for v in verdicts.judge(plan.get("claims") or [], by_seed)]
    return out


def settle_claims(plan, arms, judged):
    """The verdict on each claim (verdicts.settle: at the longest budget, where the sign has
    settled), with `text`: the verdict in words with its steps and their share of the source's
    training (studies.source_share, for the batch size the runs trained with)."""
    from lab import studies

    budgets = list(dict.fromkeys(c["budget"] for c in judged))
    by_budget = [(next(c["steps"] for c in judged if c["budget"] == b),
                  [c for c in judged if c["budget"] == b]) for b in budgets]
    settled = verdicts.settle(by_budget)
    longest = budgets_of(arms)[-1][1] if arms else []
    batch = next((r["config"].get("batch_size") for a in longest for r in a["runs"]
                  if r["config"]), None)
    for v in settled:
        share = (studies.source_share(plan["study"], v["steps"], batch)
                 if plan.get("study") in studies.STUDIES else None)
        v["text"] = verdicts.verdict_text(v, share)
    return settled


def ranking(arms):
    """With several budgets: each arm's rank at each budget and Kendall's tau between
    consecutive budgets (lab/verdicts.py), from the mean test accuracies."""
    means = [(max((a["steps"] or 0 for a in at), default=0),
              {a["base"]: a["test"]["mean"] for a in at if a["test"]["mean"] is not None})
             for budget, at in budgets_of(arms)]
    # The fewest seeds behind an arm's mean at each budget: a ranking says what it rests on.
    seeds = [min((a["n"] for a in at if a["n"]), default=0) for budget, at in budgets_of(arms)]
    return dict(verdicts.rank_agreement(means), seeds=seeds)


# --------------------------------------------------------------------------------------------------
# The report: results.md / .json / .csv, plots, the HParams dashboard
# --------------------------------------------------------------------------------------------------

def pct(x, digits=2):
    return "-" if x is None else f"{100 * x:.{digits}f}"


def mean_std(s):
    if s["mean"] is None:
        return "-"
    return pct(s["mean"]) + ("" if s["std"] is None else f" ± {pct(s['std'])}")


def interval(s):
    if s["n"] < MIN_SEEDS_FOR_INTERVAL:
        return "-" if s["n"] == 0 else f"n = {s['n']}: too few seeds"
    return f"[{pct(s['ci_low'])}, {pct(s['ci_high'])}]"


def diff_text(d, seeds):
    if d is None:
        return "baseline"
    if d["mean"] is None:
        return "-"
    text = f"{100 * d['mean']:+.2f}"
    if d["ci_low"] is not None:
        text += f" [{100 * d['ci_low']:+.2f}, {100 * d['ci_high']:+.2f}] p={d['p_value']:.3g}"
    if d["seeds"] != sorted(seeds):  # fewer pairs than the row's seeds
        text += f" (seeds {', '.join(map(str, d['seeds']))})"
    return text


COLUMNS = ["arm", "runs", "val % (mean ± std)", "test % (mean ± std)", "test 95% CI",
           "Δ test vs baseline (95% CI, p)", "epochs", "s/epoch", "params", "notes"]


def table_rows(arms):
    return [[a["name"], f"{a['n']}/{a['started']}", mean_std(a["val"]), mean_std(a["test"]),
             interval(a["test"]), diff_text(a["diff"], a["seeds"]), str(a["epochs"]),
             "-" if a["seconds_per_epoch"] is None else f"{a['seconds_per_epoch']:.1f}",
             "-" if a["params"] is None else f"{a['params']:,}", "; ".join(a["notes"])]
            for a in arms]


def markdown(columns, rows):
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def markdown_table(arms):
    return markdown(COLUMNS, table_rows(arms))


def text_table(arms):
    rows = [COLUMNS] + table_rows(arms)
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


CLAIM_COLUMNS = ["claim (source's figures)", "budget", "Δ test (95% CI)", "p", "p, Holm",
                 "at this budget"]


def claim_rows(judged):
    def signed(d, key):
        return "-" if d[key] is None else f"{100 * d[key]:+.2f}"
    return [[f"{c['better']} > {c['worse']} ({c['source']})",
             "-" if c["steps"] is None else f"{c['steps']} steps",
             "-" if c["diff"]["mean"] is None else signed(c["diff"], "mean") + (
                 "" if c["diff"]["ci_low"] is None else
                 f" [{signed(c['diff'], 'ci_low')}, {signed(c['diff'], 'ci_high')}]")
             + f" (n = {len(c['diff']['seeds'])})",
             "-" if c["p_value"] is None else f"{c['p_value']:.3g}",
             "-" if c["p_adjusted"] is None else f"{c['p_adjusted']:.3g}", c["at_budget"]]
            for c in judged]


def verdict_rows(settled):
    return [[f"{v['better']} > {v['worse']}", v["text"]] for v in settled]


def ranking_lines(rank):
    """The ranks at each budget, and tau between consecutive budgets, as Markdown."""
    arms = list(dict.fromkeys(a for _, r in rank["ranks"] for a in r))
    cols = ["arm"] + [f"rank at {steps} steps" for steps, _ in rank["ranks"]]
    rows = [[a] + [f"{r[a]:g}" if a in r else "-" for _, r in rank["ranks"]] for a in arms]
    seeds = rank.get("seeds") or [None] * len(rank["ranks"])
    taus = [f"{p['budgets'][0]} -> {p['budgets'][1]} steps: tau = "
            + ("-" if p["tau"] is None else f"{p['tau']:+.2f} ({tau_words(p, n)})")
            for p, n in zip(rank["pairs"], map(min, zip(seeds, seeds[1:])))]
    return [markdown(cols, rows), "", "Kendall's tau between consecutive budgets (1: the same "
            "order, -1: reversed): " + "; ".join(taus) + "."]


def tau_words(pair, n):
    """What a tau rests on: its p-value and arms, and the seeds behind each arm's mean (the
    interval rule: no p-value from fewer than MIN_SEEDS_FOR_INTERVAL)."""
    if n is None:  # a report written before the seeds were recorded
        return f"p = {pair['p_value']:.2g}, {len(pair['arms'])} arms"
    if n < MIN_SEEDS_FOR_INTERVAL:
        return f"n = {n} seed{'s' if n != 1 else ''} per arm: too few seeds for a p-value"
    return f"p = {pair['p_value']:.2g}, {len(pair['arms'])} arms, n = {n} seeds per arm"


def describe(plan, arms):
    """The setup lines above the table: what was run, where, how the numbers were chosen. The
    settings are the grid's, and compare.py refused any run in the folder that did not use them."""
    config = next((r["config"] for a in arms for r in a["runs"] if r["config"]), {})
    what = f"study `{plan['study']}` at the {plan['scale']} scale" if plan["study"] else "a grid"
    fixed = " ".join(f"{k}={v}" for k, v in plan["fixed"].items())
    when = "".join(
        f"; and `{' '.join(f'{k}={v}' for k, v in flags.items())}` for the arms with "
        f"`{' '.join(f'{k}={v}' for k, v in condition.items())}`"
        for condition, flags in plan.get("flags_when", []))
    budgets = (f" at {len(plan['budgets'])} training budgets (epochs "
               f"{', '.join(plan['budgets'])}, each a whole run with its own schedule)"
               if plan.get("budgets") else "")
    arms_count = len(set(plan.get("bases") or plan["names"]))
    return [f"Comparison: {what}; {arms_count} arms{budgets} x seeds {plan['seeds']}; "
            f"baseline `{plan['baseline']}`.",
            f"Settings of every arm: `{fixed}`{when}; validation split: "
            f"{plan['val_fraction']:g} of the training files (stratified); dataset "
            f"{config.get('dataset', '?')}.",
            "Validation accuracy is that of the checkpoint chosen on validation; test accuracy is "
            "that checkpoint's single evaluation on the test split (percent). `runs` is counted "
            "/ started. Δ is the paired difference over seeds (arm − baseline at the same "
            "budget, percentage points) with its Student-t interval and the paired t-test "
            "p-value. " + COUNTING_RULE,
            machine_line(r["config"] for a in arms for r in a["runs"] if r["config"])]


def machine_line(configs):
    """Device, TensorFlow, Python and commit of every process that trained the runs: a run
    resumed elsewhere or with newer code lists each (config.json's "trained_with")."""
    seen = {key: [] for key in rundir.ENVIRONMENT}
    for config in configs:
        for process in config.get("trained_with") or [config]:  # older runs: the last process
            for key in rundir.ENVIRONMENT:
                if process.get(key, "?") not in seen[key]:
                    seen[key].append(process.get(key, "?"))
    # A commit by its short hash, as git log shows it (its suffix says if the tree was dirty).
    seen["git_commit"] = [c if c in ("?", "unknown") else c[:7] + c[40:]
                          for c in seen["git_commit"]]
    text = {key: " / ".join(dict.fromkeys(values)) or "?" for key, values in seen.items()}
    return (f"Machine: {text['device']}, TensorFlow {text['tensorflow']}, Python {text['python']}, "
            f"commit{'s' if len(seen['git_commit']) > 1 else ''} {text['git_commit']}.")


def tables_markdown(arms, judged, rank, level="##", images="", settled=None, rule=None):
    """The tables of a report: one per budget, the claims' tests at each budget and their
    verdicts (`settled`, settle_claims), the ranking against the budget. Also docs/STUDIES.md's
    generated result blocks (lab/studies_doc.py), from a committed results.json, with `images`
    the folder of its plots and `rule` the sentence that points to the rule stated once there
    (default: the rule itself, verdicts.RULE)."""
    parts = []
    for budget, at in budgets_of(arms):
        if budget is not None:
            steps = max((a["steps"] or 0 for a in at), default=0)
            parts += [f"{level} {steps} steps (epochs={budget})", ""]
        parts += [markdown_table(at), ""]
    if judged:
        parts += [f"{level} The source's claims", "", rule or verdicts.RULE, "", markdown(
            CLAIM_COLUMNS, claim_rows(judged)), ""]
    if settled:
        parts += ["Verdicts (at the longest budget, where the sign has settled):", "",
                  markdown(["claim", "verdict"], verdict_rows(settled)), ""]
    if rank:
        parts += [f"{level} The ranking against the training budget", "", *ranking_lines(rank),
                  "", f"![test accuracy against training steps]({images}budgets.png)", ""]
    return parts


def markdown_report(plan, arms, judged, rank, settled=None):
    parts = ["# Results", "", *describe(plan, arms), ""]
    parts += tables_markdown(arms, judged, rank, settled=settled)
    parts += ["![learning curves](curves.png)", "", "![test accuracy](test_accuracy.png)", ""]
    return "\n".join(parts)


def write_report(plan, arms):
    out = plan["out"]
    os.makedirs(out, exist_ok=True)
    judged, rank = judge_claims(plan, arms), ranking(arms) if plan["budgets"] else None
    settled = settle_claims(plan, arms, judged)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(markdown_report(plan, arms, judged, rank, settled))
    public = [{k: v for k, v in a.items() if k != "runs"} | dict(
        runs=[{k: v for k, v in r.items() if k != "config"} for r in a["runs"]]) for a in arms]
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(dict(setup=describe(plan, arms), rule=verdicts.RULE, study=plan["study"],
                       scale=plan["scale"], fixed=plan["fixed"], seeds=plan["seeds"],
                       baseline=plan["baseline"], budgets=plan["budgets"],
                       val_fraction=plan["val_fraction"], arms=public, claims=judged,
                       verdicts=settled, ranking=rank), f, indent=1)
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)  # accuracies in percent, differences in percentage points
        w.writerow(["arm", "budget_epochs", "runs_counted", "runs_started", "val_mean_pct",
                    "val_std_pct", "test_mean_pct", "test_std_pct", "test_ci_low_pct",
                    "test_ci_high_pct", "diff_mean_pp", "diff_ci_low_pp", "diff_ci_high_pp",
                    "diff_p", "epochs", "seconds_per_epoch", "params", "notes"])
        percent = lambda x: None if x is None else round(100 * x, 6)  # noqa: E731
        for a, row in zip(arms, table_rows(arms)):
            d = a["diff"] or {}
            w.writerow([a["name"], a["budget"], a["n"], a["started"], percent(a["val"]["mean"]),
                        percent(a["val"]["std"]), percent(a["test"]["mean"]),
                        percent(a["test"]["std"]), percent(a["test"]["ci_low"]),
                        percent(a["test"]["ci_high"]), percent(d.get("mean")),
                        percent(d.get("ci_low")), percent(d.get("ci_high")), d.get("p_value"),
                        a["epochs"], a["seconds_per_epoch"], a["params"], row[-1]])
    plots.plot_curves(arms, os.path.join(out, "curves.png"))
    plots.plot_test(arms, plan["baseline"], os.path.join(out, "test_accuracy.png"))
    if plan["budgets"]:
        plots.plot_budgets(arms, plan["baseline"], os.path.join(out, "budgets.png"))
    write_hparams(plan, arms)


def write_hparams(plan, arms):
    """Each run's settings, status and final figures for TensorBoard's HParams dashboard
    (`tensorboard --logdir EXPERIMENT`): every train.py setting of what was trained (the ones
    the grid fixes too, each with its type: --epochs 2 is the number 2), the seed, the run's
    state ("finished", "diverged", "dead", "failed", "not finished"), and the accuracies of the
    runs that count (a diverged or dead run's at chance, as in the tables)."""
    from lab import hparams

    rows = []
    for a in arms:
        flags = vars(plan["settings"][a["name"]]) if plan.get("settings") else {}
        for r in a["runs"]:
            if r["state"] == "not started":
                continue
            values = {k: r["config"].get(k, v) for k, v in flags.items() if k not in HOW_IT_RAN}
            rows.append((r, dict(values, seed=r["seed"], status=r["state"])))
    if not rows:
        return
    for folder in [plan["out"]] + [os.path.join(r["logdir"], "hparams") for r, _ in rows]:
        for name in os.listdir(folder) if os.path.isdir(folder) else []:
            if name.startswith("events.out.tfevents."):  # an earlier collect's: replaced
                os.remove(os.path.join(folder, name))
    names = list(dict.fromkeys(k for _, h in rows for k in h))
    typed = hparams.one_type_each([h for _, h in rows], names)
    rows = [(r, h) for (r, _), h in zip(rows, typed)]
    hparams.write_experiment(plan["out"], {k: sorted({h[k] for _, h in rows}, key=str)
                                           for k in names},
                             ["val_accuracy", "test_accuracy"])
    for r, h in rows:
        hparams.write_run(r["logdir"], h, {} if r["test_accuracy"] is None else
                          {"val_accuracy": r["val_accuracy"], "test_accuracy": r["test_accuracy"]})
