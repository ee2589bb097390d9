"""compare.py on the bundled sample: 2 arms x 2 seeds of a few steps, resume, selection, report.

One experiment (ResNet-8 with batch norm, relu vs elu, seeds 0 and 1, 2 epochs of 9 steps) is
run once for the module; the tests read its log directories.
"""

import contextlib
import io
import json
import os
import shlex
import shutil

import numpy as np
import pytest

from lab import compare
from lab import report, runs, stats
from lab import studies
from plumbing.errors import UserError

GRID = ["--dataset", "cifar10-sample", "--model", "resnet", "--depth", "8", "--bn",
        "--act", "relu,elu", "--seeds", "0,1", "--epochs", "2", "--batch-size", "100",
        "--checkpoint-every", "0", "--no-histograms"]


def run_compare(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = compare.main(argv)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("exp"))
    code, text = run_compare(GRID + ["--out", out, "--jobs", "2"])
    assert code == 0, text
    return out, text


def results(out):
    with open(os.path.join(out, "results.json")) as f:
        return json.load(f)


def logdirs(out):
    return {(arm, seed): os.path.join(out, f"act-{arm}", f"seed-{seed}")
            for arm in ("relu", "elu") for seed in (0, 1)}


def test_report_rows_and_statistics(experiment):
    out, text = experiment
    r = results(out)
    assert [a["name"] for a in r["arms"]] == ["act=relu", "act=elu"]
    assert r["baseline"] == "act=relu" and r["val_fraction"] == 0.1
    for arm in r["arms"]:
        assert arm["n"] == 2 and arm["epochs"] == 2 and arm["params"] > 0
        tests = [run["test_accuracy"] for run in arm["runs"]]
        assert arm["test"]["mean"] == pytest.approx(np.mean(tests))
        assert arm["test"]["std"] == pytest.approx(np.std(tests, ddof=1))
    relu, elu = r["arms"]
    expected = stats.paired_difference({0: elu["runs"][0]["test_accuracy"],
                                        1: elu["runs"][1]["test_accuracy"]},
                                       {0: relu["runs"][0]["test_accuracy"],
                                        1: relu["runs"][1]["test_accuracy"]})
    assert elu["diff"]["mean"] == pytest.approx(expected["mean"])
    assert relu["diff"] is None
    for name in ("results.md", "results.csv", "curves.png", "test_accuracy.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    assert "act=elu" in text and "[4/4]" in text  # progress lines and the final table


def test_selection_on_validation_and_one_test_evaluation(experiment):
    out, _ = experiment
    by_seed = {(a["name"], run["seed"]): run for a in results(out)["arms"] for run in a["runs"]}
    for (arm, seed), logdir in logdirs(out).items():
        records = runs.read_metrics(logdir)
        # The chosen checkpoint is the first epoch with the highest validation accuracy ...
        best = max(records, key=lambda rec: (rec["val_accuracy"], -rec["epoch"]))
        assert runs.best_checkpoint(logdir) == f"ckpt-{best['step']}"
        # ... and the reported test accuracy is eval.py's single evaluation of that checkpoint.
        with open(os.path.join(logdir, runs.EVAL_JSON)) as f:
            ev = json.load(f)
        assert ev["split"] == "test" and ev["checkpoint"].endswith(f"best/ckpt-{best['step']}")
        run = by_seed[(f"act={arm}", seed)]
        assert run["test_accuracy"] == ev["top1"]
        assert run["val_accuracy"] == best["val_accuracy"]


def test_same_seed_same_initial_weights(experiment):
    import models
    out, _ = experiment

    def initial_weights(logdir):
        config = runs.read_json(os.path.join(logdir, "config.json"))
        model = models.build(**config["model_config"])
        return [v.numpy() for v in model.trainable_variables]

    dirs = logdirs(out)
    relu0, elu0 = initial_weights(dirs["relu", 0]), initial_weights(dirs["elu", 0])
    relu1 = initial_weights(dirs["relu", 1])
    assert len(relu0) == len(elu0) > 5
    assert all(np.array_equal(a, b) for a, b in zip(relu0, elu0))  # same seed, other activation
    assert not all(np.array_equal(a, b) for a, b in zip(relu0, relu1))  # another seed


def test_the_first_line_says_where_each_run_writes_its_progress(experiment):
    out, text = experiment
    first = text.splitlines()[0]
    assert first.startswith("training 4 run(s), 2 at a time")
    assert os.path.join(logdirs(out)["relu", 0], "train.log") in first
    with open(os.path.join(logdirs(out)["relu", 0], "train.log")) as f:
        log = f.read()  # train.py's output, not a terminal: plain lines, none redrawn
    assert "epoch 2/2 " in log and "\r" not in log


def test_the_time_left_counts_the_steps_each_run_still_has(experiment, tmp_path):
    out, text = experiment
    first_end = next(l for l in text.splitlines() if l.startswith("[1/4] "))
    assert "; 3 left, ~" in first_end and first_end.endswith(" to go")
    # A run resumed from ckpt-9 of its 18 steps has 9 left; one not yet started has them all.
    copy = str(tmp_path / "run")
    shutil.copytree(logdirs(out)["relu", 0], copy)
    assert runs.steps_saved(copy) == 18 and runs.steps_left({"logdir": copy}, 0) == 0
    with open(os.path.join(copy, "ckpt", "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "ckpt-9"\n')
    assert runs.steps_left({"logdir": copy}, 0) == 9
    assert runs.steps_left({"logdir": str(tmp_path / "not-started")}, 18) == 18
    # Two workers share the work, but no run goes faster than one worker.
    assert runs.time_left(2.0, [10, 10, 10], jobs=2) == pytest.approx(30.0)
    assert runs.time_left(2.0, [100, 10], jobs=2) == pytest.approx(200.0)
    assert runs.time_left(2.0, [], jobs=2) == 0


def test_the_machine_line_names_every_commit_that_trained_the_runs(experiment):
    out, _ = experiment
    with open(os.path.join(out, "results.md")) as f:
        line = next(l for l in f if l.startswith("Machine: "))
    with open(os.path.join(logdirs(out)["relu", 0], "config.json")) as f:
        config = json.load(f)
    assert line.rstrip() == (f"Machine: {config['device']}, TensorFlow {config['tensorflow']}, "
                             f"Python {config['python']}, commit "
                             f"{config['git_commit'][:7] + config['git_commit'][40:]}.")
    # One run resumed with other code: both commits are named; a run written before
    # "trained_with" existed counts with its top-level fields.
    env = {k: config[k] for k in ("device", "tensorflow", "python")}
    resumed = dict(env, git_commit="b", trained_with=[dict(env, from_step=0, git_commit="a"),
                                                      dict(env, from_step=9, git_commit="b")])
    older = dict(env, git_commit="c")
    assert report.machine_line([resumed, older]).endswith(", commits a / b / c.")
    assert f"TensorFlow {config['tensorflow']}, " in report.machine_line([resumed, older])


def test_rerun_skips_finished_runs(experiment):
    out, _ = experiment
    sizes = {k: os.path.getsize(os.path.join(d, "train.log")) for k, d in logdirs(out).items()}
    code, text = run_compare(GRID + ["--out", out])
    assert code == 0
    assert "4 of 4 runs already finished: skipped" in text and "training " not in text
    assert sizes == {k: os.path.getsize(os.path.join(d, "train.log"))
                     for k, d in logdirs(out).items()}  # no train.py was started


def test_interrupted_run_is_not_finished(experiment, tmp_path):
    out, _ = experiment
    copy = str(tmp_path / "run")
    shutil.copytree(logdirs(out)["relu", 0], copy)
    assert runs.trained(copy)
    with open(os.path.join(copy, "metrics.jsonl")) as f:
        first = f.readline()
    with open(os.path.join(copy, "metrics.jsonl"), "w") as f:
        f.write(first)  # as if killed during epoch 2: train.py must be run again (it resumes)
    assert not runs.trained(copy)


def test_print_commands_and_collect_give_the_same_report(experiment):
    out, _ = experiment
    code, text = run_compare(GRID + ["--out", out, "--print-commands"])
    assert code == 0
    printed = sorted(text.strip().splitlines())
    ran = sorted(open(os.path.join(d, "command.sh")).read().strip()
                 for d in logdirs(out).values())
    assert printed == ran and len(printed) == 4
    assert all(shlex.split(line)[1].endswith("train.py") for line in printed)
    before = results(out)
    os.remove(os.path.join(out, "results.json"))
    code, _ = run_compare(GRID + ["--out", out, "--collect"])
    assert code == 0 and results(out) == before


def test_grid_parsing():
    kinds = {"act": "value", "bn": "switch", "augment": "switch", "lr-steps": "value",
             "epochs": "value", "logdir": "value", "seed": "value"}
    fixed, axes = compare.parse_grid(
        ["--act", "relu,elu", "--bn", "on,off", "--no-augment", "--lr-steps", "2,3/3,4",
         "--epochs", "5"], kinds)
    assert fixed == {"augment": "off", "epochs": "5"}
    assert axes == {"act": ["relu", "elu"], "bn": ["on", "off"], "lr-steps": ["2,3", "3,4"]}
    arms = studies.product(**axes)
    assert len(arms) == 8 and arms[0] == {"act": "relu", "bn": "on", "lr-steps": "2,3"}
    assert compare.to_argv({"bn": "off", "act": "elu"}, kinds) == ["--no-bn", "--act", "elu"]
    assert compare.parse_grid(["--bn"], kinds) == ({"bn": "on"}, {})
    for bad in (["--seed", "1"], ["--nope", "1"], ["--bn", "maybe"], ["relu"], ["--act"]):
        with pytest.raises(UserError):
            compare.parse_grid(bad, kinds)


def test_refuses_no_validation_split_and_unknown_baseline(tmp_path):
    with pytest.raises(UserError, match="validation"):
        compare.main(GRID + ["--out", str(tmp_path), "--val-fraction", "0"])
    with pytest.raises(UserError, match="not an arm"):
        compare.main(GRID + ["--out", str(tmp_path), "--baseline", "act=tanh"])


def test_every_study_plan_is_well_formed():
    for name in studies.STUDIES:
        for scale in [s for s in studies.SCALES if s in studies.STUDIES[name]]:
            p = studies.plan(name, scale)
            names = [studies.arm_name(a) for a in p["arms"]]
            assert p["baseline"] in names and len(set(names)) == len(names)
            assert len(p["seeds"]) >= 3 and p["shrunk"]
    with pytest.raises(UserError, match="has no full scale; it has: quick, paper, budgets"):
        studies.plan("gaaf", "full")


def test_quick_scales_let_batch_norm_forget_its_initial_statistics(capsys):
    # After S steps the moving averages still hold decay^S of their initial values (mean 0,
    # variance 1); a quick scale judged on them shows chance accuracy on validation while it
    # trains (seen: a dropact quick run at 39 % training, 10 % validation accuracy).
    import train
    from plumbing.health import initial_share_left
    for name in studies.STUDIES:
        assert compare.main(["--study", name, "--scale", "quick", "--print-commands"]) == 0
        for line in capsys.readouterr().out.splitlines():
            args = train.parse_args(shlex.split(line)[2:])
            if args.bn:
                steps = args.epochs * (args.train_subset // args.batch_size)
                assert initial_share_left(args.bn_decay, steps) < 1e-3, (name, args.bn_decay,
                                                                         steps)


def test_a_study_adds_conditional_flags_to_the_matching_arms_only(capsys):
    # blog-allcnn quick: --bn-decay 0.9 for the batch-norm arms; train.py refuses it without --bn.
    assert compare.main(["--study", "blog-allcnn", "--scale", "quick", "--print-commands"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 18
    for line in lines:
        assert (" --bn-decay 0.9 " in line) == (" --bn " in line), line
    # ... and the report's setup lines say so.
    p = studies.plan("blog-allcnn", "quick")
    head = report.describe(dict(p, study="blog-allcnn", scale="quick", names=["x"],
                                 val_fraction=float(p["val_fraction"])), [])
    assert "`bn-decay=0.9` for the arms with `bn=on`" in head[1], head[1]


def test_dead_runs_count_and_are_named(experiment, tmp_path):
    out, _ = experiment
    copy = str(tmp_path / "exp")
    shutil.copytree(out, copy)
    path = os.path.join(copy, "act-elu", "seed-1", "metrics.jsonl")
    records = runs.read_metrics(os.path.dirname(path))
    records[-1].update(train_loss=float(np.log(10)), train_accuracy=0.1)  # chance: dead
    with open(path, "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))
    code, text = run_compare(GRID + ["--out", copy, "--collect"])
    assert code == 0
    elu = results(copy)["arms"][1]
    assert elu["n"] == 2  # still in the statistics, at the accuracy of chance ...
    assert elu["test_by_seed"]["1"] == 0.1 and elu["runs"][1]["state"] == "dead"
    assert elu["test"]["mean"] == pytest.approx((elu["runs"][0]["test_accuracy"] + 0.1) / 2)
    assert "seed 1 dead (counted at chance)" in elu["notes"]
    assert "seed 1 dead (counted at chance)" in open(os.path.join(copy, "results.md")).read()


def test_a_reader_that_closes_the_pipe_gets_no_traceback():
    # `compare.py --print-commands | head -1` once head has exited: stdout is a pipe whose read
    # end is closed, so the first write fails (deterministic, unlike a race with a real reader).
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        p = subprocess.run([sys.executable, "compare.py", "--study", "blog-allcnn",
                            "--print-commands"], cwd=root, stdout=write_end,
                           stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(write_end)
    err = p.stderr.decode()
    assert p.returncode == 141 and "Traceback" not in err, err


def test_a_run_that_diverged_before_its_first_epoch_is_reported_not_a_crash(experiment, tmp_path):
    # What train.py leaves when the loss turns non-finite in epoch 1 (seen in blog-allcnn: elu
    # without batch norm, seed 0, step 22): diverged.json, no metrics, no checkpoint.
    out, _ = experiment
    copy = str(tmp_path / "exp")
    shutil.copytree(out, copy)
    run = os.path.join(copy, "act-elu", "seed-1")
    for name in ("metrics.jsonl", runs.EVAL_JSON):
        os.remove(os.path.join(run, name))
    for name in ("best", "ckpt"):
        shutil.rmtree(os.path.join(run, name), ignore_errors=True)
    with open(os.path.join(run, "diverged.json"), "w") as f:
        json.dump({"step": 3, "loss": "nan", "lr": 0.1}, f)
    code, text = run_compare(GRID + ["--out", copy, "--collect"])
    assert code == 0, text
    elu = results(copy)["arms"][1]
    seed0 = report.collect_run(dict(seed=0, logdir=os.path.join(copy, "act-elu", "seed-0")))
    # Counted, at chance, in every column of its row (the failure is the arm's result).
    assert elu["n"] == 2 and elu["notes"][0] == "seed 1 diverged (counted at chance)"
    assert elu["val"]["mean"] == pytest.approx((seed0["val_accuracy"] + 0.1) / 2)
    assert elu["seconds_per_epoch"] == pytest.approx(seed0["seconds_per_epoch"])
    assert "diverged" in open(os.path.join(copy, "results.md")).read()


# --------------------------------------------------------------------------------------------------
# A folder holds one grid; every check before the first run; failures named; notes; plots
# --------------------------------------------------------------------------------------------------

def replaced(argv, old, new):
    return [new if a == old else a for a in argv]


def test_a_folder_refuses_another_grid_and_extends_on_request(experiment, tmp_path):
    out, _ = experiment
    copy = str(tmp_path / "exp")
    shutil.copytree(out, copy)
    before = open(os.path.join(copy, "results.md")).read()
    three_epochs = GRID[:GRID.index("--epochs")] + ["--epochs", "3"] + \
        GRID[GRID.index("--epochs") + 2:]
    with pytest.raises(UserError, match="other settings \\(--epochs: 2 in the folder, 3 now\\)"):
        compare.main(three_epochs + ["--out", copy])
    cnn = [a for a in replaced(GRID, "resnet", "cnn") if a not in ("--depth", "8")]
    with pytest.raises(UserError, match="--model: resnet in the folder, cnn now"):
        compare.main(cnn + ["--out", copy, "--collect"])
    with pytest.raises(UserError, match="adds act=gelu, leaves out act=elu.*add --extend"):
        compare.main(replaced(GRID, "relu,elu", "relu,gelu") + ["--out", copy])
    assert open(os.path.join(copy, "results.md")).read() == before  # nothing rewritten
    # A folder without its grid record (made before compare.py kept one): each run's
    # config.json is checked, so its report cannot state settings its runs did not use.
    os.remove(os.path.join(copy, compare.GRID_JSON))
    with pytest.raises(UserError, match="act-relu/seed-0: epochs 2 in its config.json, 3 in"):
        compare.main(three_epochs + ["--out", copy, "--collect"])
    # --extend keeps the old arms and seeds and adds the new ones; other settings stay refused.
    old = runs.read_json(os.path.join(out, compare.GRID_JSON))
    new = dict(old, arms=[{"act": "relu"}, {"act": "gelu"}], seeds=[0, 1, 2])
    merged = compare.merge_grids(old, new, extend=True)
    assert merged["arms"] == [{"act": "relu"}, {"act": "elu"}, {"act": "gelu"}]
    assert merged["seeds"] == [0, 1, 2] and merged["fixed"] == old["fixed"]
    with pytest.raises(UserError, match="other settings"):
        compare.merge_grids(old, dict(new, fixed=dict(old["fixed"], epochs="3")), extend=True)


def test_collect_without_runs_says_so_and_writes_nothing(experiment, tmp_path):
    missing = str(tmp_path / "none")
    with pytest.raises(UserError, match="holds no run of this grid yet.*nothing written"):
        compare.main(GRID + ["--out", missing, "--collect"])
    with pytest.raises(UserError, match="has no grid.json"):
        compare.main(["--collect", "--out", missing])
    assert not os.path.exists(missing)
    # With only --out, --collect rebuilds a folder's report from the grid it recorded.
    out, _ = experiment
    before = results(out)
    code, _ = run_compare(["--collect", "--out", out])
    assert code == 0 and results(out) == before


def test_a_missing_dataset_and_a_bad_arm_stop_before_any_run(tmp_path):
    out = str(tmp_path / "exp")
    with pytest.raises(UserError, match="does not exist"):
        compare.main(["--dataset", "cifar10", "--data-dir", str(tmp_path / "no-data"),
                      "--act", "relu,elu", "--epochs", "1", "--out", out])
    assert not os.path.exists(out)
    with pytest.raises(UserError, match="arm 'depth=9'.*6n\\+2 \\(n >= 1\\): 8, 14, 20"):
        compare.main(["--dataset", "cifar10-sample", "--model", "resnet", "--depth", "8,9",
                      "--out", out])
    assert not os.path.exists(out)


def test_a_failed_run_is_named_failed_with_its_reason(tmp_path):
    # A run that train.py gives up on at run time (a batch larger than the training split).
    out = str(tmp_path / "exp")
    code, text = run_compare(["--dataset", "cifar10-sample", "--model", "resnet", "--depth", "8",
                              "--batch-size", "2000", "--seeds", "0", "--epochs", "1",
                              "--act", "relu", "--out", out])
    assert code == 1
    assert "[1/1] all seed 0: FAILED: train.py exit 2: error: --batch-size 2000" in text
    arm = results(out)["arms"][0]
    assert arm["runs"][0]["state"] == "failed" and arm["n"] == 0 and arm["started"] == 1
    assert arm["notes"][0].startswith("seed 0 failed: train.py exit 2: error: --batch-size")
    # Without the record it would be a run that is only not finished yet.
    os.remove(os.path.join(out, "all", "seed-0", runs.FAILED_JSON))
    assert runs.state(os.path.join(out, "all", "seed-0")) == "not started"


def test_the_short_run_note_reaches_the_console_and_the_report(experiment):
    # 2 epochs of 9 steps at decay 0.99: 0.99^18 = 83 % of the initial values remain.
    out, text = experiment
    note = "BN moving averages still hold 83 % of their initial values after 18 steps"
    assert all(note in line for line in text.splitlines() if line.startswith("["))
    assert note in open(os.path.join(out, "results.md")).read()


def test_small_n_and_the_units_are_stated(experiment):
    out, _ = experiment
    md = open(os.path.join(out, "results.md")).read()
    assert "n = 2: too few seeds" in md and "[-" not in md.split("Δ")[0]
    import csv
    with open(os.path.join(out, "results.csv")) as f:
        rows = list(csv.DictReader(f))
    elu = results(out)["arms"][1]
    assert float(rows[1]["test_mean_pct"]) == pytest.approx(100 * elu["test"]["mean"])
    assert float(rows[1]["diff_mean_pp"]) == pytest.approx(100 * elu["diff"]["mean"])
    assert compare.parse_grid(["--act", "relu, elu"], {"act": "value"}) == \
        ({}, {"act": ["relu", "elu"]})


def test_the_plots_show_whole_epochs_the_baseline_and_chance(experiment, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt
    from lab import plots
    out, _ = experiment
    plan = compare.make_plan(runs.read_json(os.path.join(out, compare.GRID_JSON)), out)
    arms = report.collect(plan)
    for arm in arms:  # as after one epoch
        for r in arm["runs"]:
            r["curves"] = {k: v[:1] for k, v in r["curves"].items()}
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    plots.plot_curves(arms, str(tmp_path / "curves.png"))
    plots.plot_test(arms, plan["baseline"], str(tmp_path / "test.png"))
    curves, test = figures
    for ax in curves.axes:
        assert list(ax.get_xticks()) == [1.0] and ax.get_legend() is None
    assert curves.legends  # below the axes, not over the data
    labels = [t.get_text() for t in test.axes[0].get_yticklabels()]
    assert "act=relu (baseline)" in labels
    assert any(list(line.get_xdata()) == [10.0, 10.0] for line in test.axes[0].get_lines())


def test_claims_get_one_verdict_rule_and_the_hparams_are_written(experiment):
    from lab import verdicts
    out, _ = experiment
    plan = compare.make_plan(runs.read_json(os.path.join(out, compare.GRID_JSON)), out)
    plan["claims"] = [{"better": "act=elu", "worse": "act=relu", "source": "a source: 2 > 1"},
                      {"better": "act=relu", "worse": "act=elu", "source": "the other way"}]
    arms = report.collect(plan)
    judged = report.judge_claims(plan, arms)
    by_seed = {a["base"]: a["test_by_seed"] for a in arms}
    assert [c["at_budget"] for c in judged] == [c["at_budget"] for c in verdicts.judge(
        plan["claims"], by_seed)]
    assert judged[0]["p_adjusted"] == pytest.approx(min(1, 2 * judged[0]["p_value"]))
    # One budget: no claim is supported or contradicted, whatever its test.
    settled = report.settle_claims(plan, arms, judged)
    assert [v["verdict"] for v in settled] == [
        "not settled" if c["at_budget"] != "within noise" else "within noise" for c in judged]
    md = report.markdown_report(plan, arms, judged, None, settled)
    assert verdicts.RULE in md and "a source: 2 > 1" in md
    assert all(v["text"] in md for v in settled)
    # TensorBoard's HParams dashboard: each counted run's settings and final figures.
    from tensorflow.core.util import event_pb2
    import tensorflow as tf
    folder = os.path.join(logdirs(out)["elu", 1], "hparams")
    values = {}
    for name in os.listdir(folder):
        for record in tf.data.TFRecordDataset(os.path.join(folder, name)):
            event = event_pb2.Event.FromString(record.numpy())
            for v in event.summary.value:
                if v.tag == "test_accuracy":
                    values[v.tag] = tf.make_ndarray(v.tensor).item()
    elu = results(out)["arms"][1]
    assert values["test_accuracy"] == pytest.approx(elu["test_by_seed"]["1"])


def test_budgets_are_compared_at_equal_length(capsys):
    # --epochs 1,3 is two training budgets: the baseline names an arm without its length, and
    # each arm is compared with the baseline at the same length.
    assert compare.main(["--dataset", "cifar10-sample", "--act", "relu,elu", "--epochs", "1,3",
                         "--baseline", "act=relu", "--print-commands"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 12 and sum(" --epochs 3 " in line for line in lines) == 6
    plan = compare.make_plan(compare.make_grid(compare.build_parser().parse_known_args(
        ["--act", "relu,elu", "--epochs", "1,3"])[0], ["--dataset", "cifar10-sample", "--act",
                                                         "relu,elu", "--epochs", "1,3"],
        compare.train_flag_kinds()), "unused")
    assert plan["budgets"] == ["1", "3"] and plan["baseline"] == "act=relu"
    assert sorted(set(plan["bases"])) == ["act=elu", "act=relu"]


def test_seconds_per_epoch_counts_a_resumed_epoch_as_the_part_it_trained():
    # 10 steps an epoch: a whole epoch in 100 s, then the last 4 steps of an epoch in 40 s after
    # a resume at step 16: 140 s for 1.4 epochs is 100 s an epoch (the mean of records: 70 s).
    records = [{"epoch": 1, "step": 10, "seconds": 100.0},
               {"epoch": 2, "step": 20, "seconds": 40.0, "resumed_at_step": 16}]
    assert report.seconds_per_epoch(records, 10) == pytest.approx(100.0)
    assert report.seconds_per_epoch(records[:1], 10) == pytest.approx(100.0)


def test_a_study_s_claims_come_from_its_definition_not_from_the_folder_record():
    # A folder recorded before a claim was corrected must be judged on the study's claims now.
    args, tokens = compare.build_parser().parse_known_args(["--study", "blog-allcnn"])
    grid = dict(compare.make_grid(args, tokens, compare.train_flag_kinds()),
                claims=[{"better": "act=relu,bn=off", "worse": "act=elu,bn=on", "source": "old"}])
    plan = compare.make_plan(grid, "unused")
    assert plan["claims"] == studies.plan("blog-allcnn", "quick")["claims"]
    assert len(plan["claims"]) == 10


# --------------------------------------------------------------------------------------------------
# No run counted twice, every blown-up run named, one meaning per column
# --------------------------------------------------------------------------------------------------

SMALL = ["--dataset", "cifar10-sample", "--model", "resnet", "--depth", "8", "--epochs", "1",
         "--seeds", "0"]


def test_a_repeated_value_or_one_configuration_under_two_names_is_refused(tmp_path):
    # --act relu,relu trained one run twice and counted it as two seeds.
    out = str(tmp_path / "dup")
    with pytest.raises(UserError, match="--act relu,relu repeats 'relu'; give each value once"):
        compare.main(SMALL + ["--act", "relu,relu", "--out", out, "--print-commands"])
    # 0.1 and 0.10 are two names of one learning rate: train.py's parsed settings are equal.
    with pytest.raises(UserError, match="arms 'lr=0.1' and 'lr=0.10' train the same "
                                        "configuration"):
        compare.main(SMALL + ["--lr", "0.1,0.10", "--out", out, "--print-commands"])
    assert not os.path.exists(out)


def test_extend_over_a_new_axis_is_refused(tmp_path):
    # A folder of `--act relu` extended with `--bn on,off` would train its one arm ("all") again
    # as bn=off, and call the baseline "all".
    out = str(tmp_path / "exp")
    args, tokens = compare.build_parser().parse_known_args(SMALL + ["--act", "relu"])
    compare.write_grid(compare.make_plan(compare.make_grid(args, tokens,
                                                           compare.train_flag_kinds()), out))
    with pytest.raises(UserError, match="--extend adds arms or seeds over the folder's own "
                                        "axes \\(none\\); this command varies --bn"):
        compare.main(SMALL + ["--act", "relu", "--bn", "on,off", "--out", out, "--extend",
                              "--print-commands"])


def test_a_one_off_baseline_is_not_kept_by_the_folder(experiment, tmp_path):
    out, _ = experiment
    copy = str(tmp_path / "exp")
    shutil.copytree(out, copy)
    code, _ = run_compare(GRID + ["--out", copy, "--collect", "--baseline", "act=elu"])
    assert code == 0 and results(copy)["baseline"] == "act=elu"
    assert runs.read_json(os.path.join(copy, compare.GRID_JSON))["baseline"] == "act=relu"
    code, _ = run_compare(GRID + ["--out", copy, "--collect"])  # the default again: first arm
    assert code == 0 and results(copy)["baseline"] == "act=relu"
    code, _ = run_compare(["--collect", "--out", copy, "--baseline", "act=elu"])
    assert code == 0 and results(copy)["baseline"] == "act=elu"


def test_a_second_compare_py_on_a_busy_folder_is_refused_and_writes_nothing(experiment, tmp_path):
    from plumbing import rundir
    out, _ = experiment
    copy = str(tmp_path / "exp")
    shutil.copytree(out, copy)
    before = open(os.path.join(copy, "results.md")).read()
    with rundir.only_writer(copy):  # what the first compare.py holds while it works
        with pytest.raises(UserError, match="another compare.py is working in .* wait for it "
                                            "to finish, stop it, or use another --out"):
            compare.main(GRID + ["--out", copy])
    assert open(os.path.join(copy, "results.md")).read() == before
    assert not any(os.path.exists(os.path.join(d, runs.FAILED_JSON))
                   for d in logdirs(copy).values())


def test_ctrl_c_during_the_test_evaluation_says_how_to_finish(experiment, tmp_path, monkeypatch,
                                                              capsys):
    out, _ = experiment
    copy = str(tmp_path / "exp")
    shutil.copytree(out, copy)
    os.remove(os.path.join(copy, "act-elu", "seed-1", runs.EVAL_JSON))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    # Ctrl-C reaches compare.py during the wait, or eval.py ends first with status 130.
    for call in (interrupted, lambda *args, **kwargs: 130):
        monkeypatch.setattr(report.subprocess, "call", call)
        with pytest.raises(KeyboardInterrupt):
            compare.main(GRID + ["--out", copy])
        said = capsys.readouterr().out.strip().splitlines()[-1]
        assert said == ("interrupted during the test evaluation: every run is trained; re-run "
                        "the same command (or add --collect) to evaluate them and write the "
                        "report")


def blown_up(experiment, tmp_path, loss):
    """A copy of the experiment whose elu seed-1 run ended its first epoch at `loss`."""
    out, _ = experiment
    copy = str(tmp_path / "exp")
    shutil.copytree(out, copy)
    path = os.path.join(copy, "act-elu", "seed-1", "metrics.jsonl")
    records = runs.read_metrics(os.path.dirname(path))
    records[0].update(train_loss=loss)
    with open(path, "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))
    return copy


def test_a_finite_blow_up_is_diverged_in_every_output(experiment, tmp_path):
    from plumbing import health
    copy = blown_up(experiment, tmp_path, 2.6e22)
    code, text = run_compare(GRID + ["--out", copy, "--collect"])
    assert code == 0
    elu = results(copy)["arms"][1]
    assert elu["runs"][1]["state"] == "diverged" and elu["test_by_seed"]["1"] == 0.1
    assert "seed 1 diverged (counted at chance)" in elu["notes"]
    md = open(os.path.join(copy, "results.md")).read()
    assert health.DIVERGED_RULE in md and health.DIVERGED_RULE in results(copy)["setup"][2]
    assert health.run_health(os.path.join(copy, "act-elu", "seed-1"), 10) == \
        "diverged: training loss 2.6e+22 at the end of epoch 1, above 3 x ln(10) = 6.91"
    # The threshold, on either side: 3 x ln(10) = 6.908.
    assert health.blown_up(6.90, 10) is False and health.blown_up(6.92, 10) is True
    assert health.blown_up(float("inf"), 100) is True and health.blown_up(2.0, 10) is False
    # train.py's check at an epoch's end says so too.
    import types
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        health.warn_if_dead(os.path.join(copy, "act-elu", "seed-1"), 10,
                            types.SimpleNamespace(lr=10000.0, warmup_epochs=0, bn=True))
    assert out.getvalue().startswith("warning: the run has diverged (diverged: training loss "
                                     "2.6e+22 at the end of epoch 1")


def test_intervals_and_p_values_need_three_seeds_in_every_output(experiment):
    import csv
    out, _ = experiment  # 2 seeds
    md = open(os.path.join(out, "results.md")).read()
    table = md.split("| arm |")[1].split("\n\n")[0]
    assert "[" not in table and "p=" not in table
    with open(os.path.join(out, "results.csv")) as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key in ("test_ci_low_pct", "test_ci_high_pct", "diff_ci_low_pp", "diff_ci_high_pp",
                    "diff_p"):
            assert row[key] == "", (key, row)
    elu = results(out)["arms"][1]
    assert elu["test"]["ci_low"] is None and elu["diff"]["p_value"] is None
    assert elu["test"]["std"] is not None and elu["diff"]["mean"] is not None
    # A claim's difference too; its p-values are the verdict rule's (paired t from 2 seeds).
    plan = compare.make_plan(runs.read_json(os.path.join(out, compare.GRID_JSON)), out)
    plan["claims"] = [{"better": "act=elu", "worse": "act=relu", "source": "a source"}]
    [claim] = report.judge_claims(plan, report.collect(plan))
    assert claim["diff"]["ci_low"] is None and claim["p_value"] is not None
    assert "[" not in report.claim_rows([claim])[0][2]


def test_a_ranking_from_too_few_seeds_says_n_and_gives_no_p_value():
    rank = {"ranks": [(10, {"a": 1, "b": 2}), (30, {"a": 2, "b": 1})],
            "pairs": [{"budgets": (10, 30), "tau": -1.0, "p_value": 1.0, "arms": ["a", "b"]}],
            "seeds": [1, 1]}
    line = report.ranking_lines(rank)[-1]
    assert "10 -> 30 steps: tau = -1.00 (n = 1 seed per arm: too few seeds for a p-value)" in line
    rank["seeds"] = [3, 3]
    assert "tau = -1.00 (p = 1, 2 arms, n = 3 seeds per arm)" in report.ranking_lines(rank)[-1]


def test_the_plots_say_what_they_leave_out_and_keep_one_colour_per_arm(experiment, tmp_path,
                                                                        monkeypatch):
    import matplotlib.pyplot as plt
    from plumbing import rundir
    from lab import plots
    out, _ = experiment
    plan = compare.make_plan(runs.read_json(os.path.join(out, compare.GRID_JSON)), out)
    arms = report.collect(plan)
    for r in arms[0]["runs"]:  # relu: blown up in every seed's first epoch
        r["curves"]["train_loss"] = [1e22] + r["curves"]["train_loss"][1:]
    for r in arms[1]["runs"]:  # elu: diverged before its first epoch
        r["curves"] = dict(epoch=[], train_loss=[], val_accuracy=[])
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    plots.plot_curves(arms, str(tmp_path / "curves.png"))
    plots.plot_test(arms, plan["baseline"], str(tmp_path / "test.png"))
    curves, test = figures
    assert curves.axes[0].get_yscale() == "log" and "log scale" in curves.axes[0].get_ylabel()
    figures.clear()
    plots.plot_curves(report.collect(plan), str(tmp_path / "curves.png"))  # as trained
    assert figures[0].axes[0].get_yscale() == "linear"
    assert "linear scale" in figures[0].axes[0].get_ylabel()
    texts = " ".join(t.get_text() for t in curves.texts)
    assert "not drawn: act=elu (no finished epoch)" in texts
    [relu_line] = curves.axes[0].get_lines()
    [relu_point] = [l for l in test.axes[0].get_lines() if list(l.get_xdata()) != [10.0, 10.0]
                    and l.get_color() != "gray"][:1]
    colours = plots.arm_colours(arms)
    assert relu_line.get_color() == colours["act=relu"] == relu_point.get_color()
    assert colours["act=relu"] != colours["act=elu"]
    # budgets.png: no band without 3 seeds, and its title says so.
    for a in arms:
        a["steps"] = 18
    figures.clear()
    plots.plot_budgets(arms, plan["baseline"], str(tmp_path / "budgets.png"))
    title = figures[0].axes[0].get_title()
    assert "95%" not in title and "no band: fewer than 3 seeds" in title
    assert not figures[0].axes[0].collections


def read_hparams(folder):
    """{name: value} of the hp.hparams written in `folder`, and {tag: value} of its scalars."""
    import glob
    import tensorflow as tf
    from tensorboard.plugins.hparams import plugin_data_pb2
    values, scalars = {}, {}
    for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for v in event.summary.value:
                if v.metadata.plugin_data.plugin_name == "hparams":
                    data = plugin_data_pb2.HParamsPluginData.FromString(
                        v.metadata.plugin_data.content)
                    if data.HasField("session_start_info"):
                        for name, value in data.session_start_info.hparams.items():
                            values[name] = getattr(value, value.WhichOneof("kind"))
                elif v.tag:
                    scalars[v.tag] = float(tf.make_ndarray(v.tensor))
    return values, scalars


def test_hparams_hold_every_setting_with_its_type_and_the_status_of_every_run(experiment,
                                                                              tmp_path):
    copy = blown_up(experiment, tmp_path, 1e22)
    code, _ = run_compare(GRID + ["--out", copy, "--collect"])
    assert code == 0
    values, scalars = read_hparams(os.path.join(copy, "act-relu", "seed-0", "hparams"))
    assert values["act"] == "relu" and values["depth"] == 8 and values["epochs"] == 2
    assert values["lr"] == pytest.approx(0.1) and values["batch_size"] == 100
    assert values["seed"] == 0 and values["status"] == "finished"
    diverged, scalars = read_hparams(os.path.join(copy, "act-elu", "seed-1", "hparams"))
    assert diverged["status"] == "diverged" and scalars["test_accuracy"] == pytest.approx(0.1)
