"""The report of a comparison: every figure from the runs' log directories.

One row per arm: n seeds, mean +- std of validation and test accuracy, the test accuracy's 95%
interval (Student t), the paired difference to the baseline arm over seeds with its interval and
p-value (lab/stats.py), epochs, seconds per epoch, parameter count, and the runs
`plumbing.health.run_health` calls dead or diverged. Written as results.md, results.json and
results.csv, with two plots (lab/plots.py).
"""

import csv
import json
import os
import subprocess
import sys

from lab import plots
from lab.runs import EVAL_JSON, best_checkpoint, eval_command, evaluated, read_json, \
    read_metrics, trained
from plumbing import health, rundir
from plumbing.errors import UserError



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
                health=health.run_health(logdir, config["num_classes"]),
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
    from lab import stats

    arms, params = [], {}
    for name, base_name, arm_flags in zip(plan["names"], plan["bases"], plan["arms"]):
        runs = [r for r in (collect_run(run) for run in plan["runs"] if run["arm"] == name) if r]
        # Dead and diverged runs stay in: their chosen checkpoint's accuracy is what that arm
        # gave for that seed (leaving them out would flatter an arm that often fails).
        good = [r for r in runs if r["test_accuracy"] is not None]
        if runs and name not in params:
            params[name] = parameter_count(runs[0]["config"])
        arms.append(dict(
            name=name, base=base_name, budget=arm_flags.get("epochs") if plan["budgets"] else None,
            runs=runs, n=len(good),
            val=stats.summarize([r["val_accuracy"] for r in good]),
            test=stats.summarize([r["test_accuracy"] for r in good]),
            test_by_seed={r["seed"]: r["test_accuracy"] for r in good},
            epochs=max((r["epochs"] for r in runs), default=0),
            # A run that diverged in its first epoch has no finished epoch to time.
            seconds_per_epoch=mean_or_none([r["seconds_per_epoch"] for r in runs
                                            if r["seconds_per_epoch"] is not None]),
            params=params.get(name), unfinished=len(plan["seeds"]) - len(runs),
            unhealthy=[f"seed {r['seed']}: {r['health']}" for r in runs if r["health"]]))
    for arm in arms:  # against the baseline arm at the same training budget
        base = next(a for a in arms if a["base"] == plan["baseline"]
                    and a["budget"] == arm["budget"])
        arm["diff"] = None if arm is base else \
            stats.paired_difference(arm["test_by_seed"], base["test_by_seed"])
    return arms



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
    plots.plot_curves(arms, os.path.join(out, "curves.png"))
    plots.plot_test(arms, os.path.join(out, "test_accuracy.png"))
