"""eval.py: its metrics against TF's own ops and hand-checked cases, export, errors."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

import eval as evaluate
import train
from plumbing.errors import UserError

TINY = ["--dataset", "cifar10-sample", "--model", "resnet", "--depth", "8", "--bn",
        "--batch-size", "100", "--epochs", "1", "--checkpoint-every", "0", "--no-histograms"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    logdir = str(tmp_path_factory.mktemp("evalrun"))
    assert train.main(TINY + ["--logdir", logdir]) == 0
    return logdir


def test_metrics_against_tf_ops():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=[300, 10]).astype(np.float32) * 3
    labels = rng.integers(0, 10, 300)
    probs = tf.nn.softmax(logits).numpy()
    m = evaluate.metrics(probs, labels)
    assert m["top1"] == pytest.approx(np.mean(np.argmax(logits, 1) == labels), abs=0)
    in_top5 = tf.math.in_top_k(tf.constant(labels), tf.constant(logits), 5).numpy()
    assert m["top5"] == pytest.approx(in_top5.mean(), abs=1e-12)
    xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits).numpy().mean()
    assert m["loss"] == pytest.approx(xent, rel=1e-5)
    confusion = tf.math.confusion_matrix(labels, np.argmax(logits, 1), num_classes=10).numpy()
    np.testing.assert_array_equal(np.array(m["confusion"]), confusion)
    np.testing.assert_allclose(m["per_class_accuracy"],
                               [np.mean(np.argmax(logits[labels == c], 1) == c) for c in range(10)])


def test_ece_by_hand():
    # Two confident right answers (0.95, bin 14) and two half-confident answers, one right
    # (0.55 and 0.6, bin 8 and 9). ECE = 2/4*|1-0.95| + 1/4*|1-0.55| + 1/4*|0-0.6| = 0.2875.
    probs = np.array([[0.95, 0.05], [0.05, 0.95], [0.55, 0.45], [0.6, 0.4]])
    labels = np.array([0, 1, 0, 1])
    assert evaluate.metrics(probs, labels)["ece"] == pytest.approx(0.2875, abs=1e-12)
    # Perfectly calibrated: confidence 0.75 and 3 of 4 right -> 0.
    probs = np.array([[0.75, 0.25]] * 4)
    assert evaluate.metrics(probs, np.array([0, 0, 0, 1]))["ece"] == pytest.approx(0, abs=1e-12)


def test_superclass_accuracy_through_the_mapping():
    fine_to_coarse = np.array([0, 0, 1, 1])
    probs = np.eye(4)[[1, 2, 3, 0]]  # predicts 1, 2, 3, 0 for true 0, 1, 2, 3
    m = evaluate.metrics(probs, np.array([0, 1, 2, 3]), fine_to_coarse)
    assert m["top1"] == 0 and m["superclass_top1"] == 0.5  # 0->1 and 2->3 keep the superclass


def sample_test_images():
    from plumbing import cifar_download
    import cifar_input
    return cifar_input.load_split(cifar_download.find_data("", "cifar10-sample"), "test",
                                  "cifar10-sample")


def test_export_is_callable_and_matches_eval(run, tmp_path):
    """The README's three lines: load, call on uint8 images (a batch or one), read class names."""
    export_dir = str(tmp_path / "exported")
    assert evaluate.main(["--logdir", run, "--export", export_dir]) == 0
    images, _ = sample_test_images()
    model, config, _, _ = evaluate.restore_model(run)
    direct = evaluate.probabilities(evaluate.make_predictor(model, config), images[:64], 32)

    loaded = tf.saved_model.load(export_dir)
    np.testing.assert_allclose(loaded(images[:64]).numpy(), direct, atol=1e-5)
    one = loaded(images[3]).numpy()  # a single [32, 32, 3] image -> [C]
    assert one.shape == (10,)
    np.testing.assert_allclose(one, direct[3], atol=1e-5)
    served = loaded.signatures["serving_default"](images=tf.constant(images[:64]))
    assert list(served) == ["probabilities"]
    np.testing.assert_allclose(served["probabilities"].numpy(), direct, atol=1e-5)
    assert [n.decode() for n in loaded.class_names.numpy()] == \
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    # float32 in [0, 1] only through the explicit door, and equal to the uint8 path
    np.testing.assert_allclose(loaded.from_unit_float(images[:64] / np.float32(255)).numpy(),
                               direct, atol=1e-5)


def test_export_refuses_what_it_would_have_to_guess(run, tmp_path):
    """Float images were cast to uint8 (x / 255 -> all zeros): now refused, naming the fix."""
    export_dir = str(tmp_path / "exported")
    assert evaluate.main(["--logdir", run, "--export", export_dir]) == 0
    loaded = tf.saved_model.load(export_dir)
    images, _ = sample_test_images()
    for wrong in (images[:4] / 255, (images[:4] / 255).astype(np.float32),
                  images[:4].astype(np.int32)):
        with pytest.raises(tf.errors.InvalidArgumentError, match="must be uint8.*from_unit_float"):
            loaded(wrong)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"in \[0, 1\]"):
        loaded.from_unit_float(images[:4].astype(np.float32))  # 0..255 floats are not [0, 1]
    with pytest.raises(ValueError, match="32, 32, 3"):
        loaded(images[:4, :16])


@pytest.fixture(scope="module")
def val_run(tmp_path_factory):
    logdir = str(tmp_path_factory.mktemp("evalvalrun"))
    assert train.main(TINY + ["--val-fraction", "0.1", "--logdir", logdir]) == 0
    return logdir


def test_several_logdirs_give_one_table_and_a_plot(run, val_run, capsys, tmp_path):
    plot = str(tmp_path / "curves.png")
    assert evaluate.main(["--logdir", run, val_run, "--plot", plot]) == 0
    out = capsys.readouterr().out
    assert out.count("resnet") == 2 and "top-1" in out
    assert os.path.getsize(plot) > 5000 and f"wrote the learning curves to {plot}" in out


def test_best_needs_a_validation_split(run, val_run, capsys):
    with pytest.raises(UserError, match="--best needs a validation split.*--val-fraction 0"):
        evaluate.main(["--logdir", run, "--best"])
    assert evaluate.main(["--logdir", val_run, "--best", "--split", "val"]) == 0
    result = json.load(open(os.path.join(val_run, "eval-val-best.json")))
    assert result["split"] == "val" and result["checkpoint_kind"] == "best"
    assert result["images"] == 100  # 10 % of the sample's 1,000 training images


def test_outputs_are_named_by_split_checkpoint_and_mode(run, capsys):
    """--bn-test-batch-stats and --checkpoint used to overwrite eval.json and confusion.png."""
    assert evaluate.main(["--logdir", run]) == 0
    assert evaluate.main(["--logdir", run, "--bn-test-batch-stats", "--batch-size", "50"]) == 0
    ckpt = tf.train.latest_checkpoint(os.path.join(run, "ckpt"))
    step = int(ckpt.rsplit("-", 1)[1])
    assert evaluate.main(["--logdir", run, "--checkpoint", ckpt]) == 0
    out = capsys.readouterr().out
    for name in ("test-last", "test-last-batchstats50", f"test-step-{step}"):
        json_path = os.path.join(run, f"eval-{name}.json")
        png_path = os.path.join(run, f"confusion-{name}.png")
        assert f"wrote {json_path} and {png_path}" in out
        assert os.path.getsize(png_path) > 5000
    normal = json.load(open(os.path.join(run, "eval-test-last.json")))
    batch = json.load(open(os.path.join(run, "eval-test-last-batchstats50.json")))
    assert not normal["bn_test_batch_stats"] and batch["bn_test_batch_stats"]
    assert normal["top1"] != batch["top1"] or normal["loss"] != batch["loss"]
    assert not os.path.exists(os.path.join(run, "eval.json"))


def test_logdir_scans_folders_and_skips_what_is_not_a_run(run, tmp_path, capsys):
    """`--logdir runs/*` aborted on the first file; `--logdir runs` did not look inside."""
    import shutil
    runs = tmp_path / "runs"
    shutil.copytree(run, runs / "group" / "a")
    (runs / "notes.txt").write_text("not a run")
    (runs / "empty").mkdir()
    assert evaluate.main(["--logdir", str(runs)]) == 0  # finds runs/group/a two levels down
    out = capsys.readouterr().out
    assert "evaluating " + str(runs / "group" / "a") in out
    entries = sorted(str(p) for p in runs.iterdir())  # what the shell makes of runs/*
    assert evaluate.main(["--logdir", *entries]) == 0
    out = capsys.readouterr().out
    assert f"skipping {runs / 'notes.txt'}: a file" in out
    assert f"skipping {runs / 'empty'}: no config.json" in out
    assert out.count("evaluating ") == 1
    with pytest.raises(UserError, match="no run to evaluate"):
        evaluate.main(["--logdir", str(runs / "empty"), str(runs / "notes.txt")])


def test_dead_and_diverged_runs_are_marked(run, tmp_path, capsys):
    import math
    import shutil
    dead, diverged = str(tmp_path / "dead"), str(tmp_path / "diverged")
    shutil.copytree(run, dead)
    shutil.copytree(run, diverged)
    with open(os.path.join(dead, "metrics.jsonl"), "a") as f:  # an epoch stuck at ln 10
        f.write(json.dumps({"epoch": 2, "train_loss": math.log(10), "train_accuracy": 0.1,
                            "test_loss": math.log(10), "test_accuracy": 0.1}) + "\n")
    with open(os.path.join(diverged, "diverged.json"), "w") as f:
        json.dump({"step": 13, "loss": float("nan")}, f)
    assert evaluate.main(["--logdir", run, dead, diverged]) == 0
    out = capsys.readouterr().out
    assert out.count("dead: training loss 2.3026 = ln(10)") == 1
    assert out.count("diverged: non-finite loss at step 13") == 1
    assert json.load(open(os.path.join(run, "eval-test-last.json")))["health"] is None
    assert json.load(open(os.path.join(dead, "eval-test-last.json")))["health"].startswith("dead")


def test_a_finite_blow_up_is_marked_diverged(run, tmp_path, capsys):
    # A training loss far above ln(10) at an epoch's end (batch norm, --lr 10000) stays finite.
    import shutil
    blown = str(tmp_path / "blown")
    shutil.copytree(run, blown)
    with open(os.path.join(blown, "metrics.jsonl"), "a") as f:
        f.write(json.dumps({"epoch": 2, "train_loss": 2.6e22, "train_accuracy": 0.1}) + "\n")
    assert evaluate.main(["--logdir", blown]) == 0
    assert "diverged: training loss 2.6e+22 at the end of epoch 2, above 3 x ln(10)" in \
        capsys.readouterr().out


def test_ctrl_c_while_eval_py_starts_ends_it_without_a_traceback(tmp_path):
    # Ctrl-C reaches eval.py during its imports (TensorFlow takes seconds to load) when it is
    # pressed just as compare.py starts the test evaluation.
    import signal
    import subprocess
    import sys
    import time
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = subprocess.Popen([sys.executable, "eval.py", "--logdir", str(tmp_path)], cwd=root,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "Traceback" not in err.decode(), err.decode()


@pytest.fixture
def full_format_copy(tmp_path, monkeypatch):
    """Small synthetic files in the full CIFAR-10 layout (30 test images)."""
    import cifar_input
    from conftest import write_cifar10
    monkeypatch.setitem(cifar_input.FORMATS["cifar10"], "records", {})  # small synthetic files
    write_cifar10(str(tmp_path / "full"))
    return str(tmp_path / "full")


def test_data_dir_evaluates_a_sample_run_on_another_dataset(run, full_format_copy, capsys):
    """--data-dir was ignored for runs trained on the sample."""
    assert evaluate.main(["--logdir", run, "--data-dir", full_format_copy]) == 0
    out = capsys.readouterr().out
    assert "on the test split of cifar10 (30 images)" in out
    result = json.load(open(os.path.join(run, "eval-test-last-on-cifar10.json")))
    assert result["images"] == 30 and result["dataset"] == "cifar10"
    assert result["trained_on"] == "cifar10-sample"
    assert result["data_dir"] == full_format_copy


def test_data_dir_that_cannot_be_honoured_is_refused(run, full_format_copy, tmp_path):
    with pytest.raises(UserError, match="cannot be evaluated on cifar100"):
        evaluate.main(["--logdir", run, "--dataset", "cifar100", "--data-dir", full_format_copy])
    with pytest.raises(UserError, match="--data-dir does not apply"):
        evaluate.main(["--logdir", run, "--dataset", "cifar10-sample", "--data-dir",
                       full_format_copy])
    with pytest.raises(UserError, match="validation split of cifar10-sample"):
        evaluate.main(["--logdir", run, "--split", "val", "--data-dir", full_format_copy])
    with pytest.raises(UserError, match="does not exist"):  # a typo: nothing created
        evaluate.main(["--logdir", run, "--data-dir", str(tmp_path / "ful")])
    assert not (tmp_path / "ful").exists()


def test_recomputed_statistics_read_the_training_images_from_data_dir(full_format_copy, tmp_path):
    """--recompute-bn-stats read the training images where training had found them, even with
    --data-dir naming where they are now: a moved data folder ended in 'does not exist'."""
    logdir = str(tmp_path / "run")
    flags = TINY[2:] + ["--dataset", "cifar10", "--batch-size", "20", "--val-fraction", "0.1"]
    assert train.main(flags + ["--data-dir", full_format_copy, "--logdir", logdir]) == 0
    moved = str(tmp_path / "moved")
    os.rename(full_format_copy, moved)
    with pytest.raises(UserError, match="does not exist"):  # where training found them: gone
        evaluate.main(["--logdir", logdir, "--recompute-bn-stats"])
    assert evaluate.main(["--logdir", logdir, "--recompute-bn-stats", "--data-dir", moved]) == 0
    result = json.load(open(os.path.join(logdir, "eval-test-last-bnrecomputed.json")))
    # 5 files x 20 images, 10 of them the validation split: 90 training images
    assert result["bn_statistics"] == {"mode": "recomputed", "images": 90}
    assert result["data_dir"] == moved


def figures_of(monkeypatch):
    """The figures eval.py closes, kept for inspection instead."""
    kept = []
    monkeypatch.setattr(evaluate.plt, "close", kept.append)
    return kept


def test_confusion_plot_names_dataset_step_and_mode(run, monkeypatch, tmp_path):
    kept = figures_of(monkeypatch)
    assert evaluate.main(["--logdir", run, "--bn-test-batch-stats", "--batch-size", "50",
                          "--row-normalized"]) == 0
    (fig,) = kept
    ax, bar = fig.axes  # the matrix and its colour bar
    title = ax.get_title()
    ckpt = tf.train.latest_checkpoint(os.path.join(run, "ckpt"))
    assert "cifar10-sample test" in title and f"step {ckpt.rsplit('-', 1)[1]}" in title
    assert "batch statistics (batch 50)" in title
    assert bar.get_ylabel() == "share of the true class"
    rates = ax.images[0].get_array()
    np.testing.assert_allclose(rates.sum(1)[rates.sum(1) > 0], 1, atol=1e-9)
    kept.clear()
    assert evaluate.main(["--logdir", run]) == 0
    ax, bar = kept[0].axes
    assert bar.get_ylabel() == "images" and ax.images[0].get_array().sum() == 500
    assert "moving statistics" in ax.get_title()


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    """A run without batch norm: 3 steps."""
    logdir = str(tmp_path_factory.mktemp("evalplainrun"))
    argv = [a for a in TINY if a != "--bn"] + ["--no-bn", "--max-steps", "3", "--logdir", logdir]
    assert train.main(argv) == 0
    return logdir


def table_row(out, logdir):
    """The row of `logdir` in the printed table (its first column: the last 32 characters)."""
    [row] = [line for line in out.splitlines() if line.startswith(logdir[-32:] + " ")]
    return row


@pytest.mark.parametrize("flags, statistics, title, column", [
    ([], {"mode": "moving"}, "BN: moving statistics", "moving"),
    (["--recompute-bn-stats"], {"mode": "recomputed", "images": 1000},  # the sample's 1,000
     "BN: statistics recomputed on 1,000 training images", "recomputed 1,000"),
    (["--bn-test-batch-stats", "--batch-size", "50"], {"mode": "batch", "batch_size": 50},
     "BN: batch statistics (batch 50)", "batch 50"),
])
def test_every_output_says_which_bn_statistics(run, flags, statistics, title, column, capsys,
                                               monkeypatch):
    """--recompute-bn-stats was titled "moving statistics", had no json field and a plain row."""
    kept = figures_of(monkeypatch)
    assert evaluate.main(["--logdir", run, *flags]) == 0
    out = capsys.readouterr().out
    name = {"moving": "test-last", "recomputed": "test-last-bnrecomputed",
            "batch": "test-last-batchstats50"}[statistics["mode"]]
    result = json.load(open(os.path.join(run, f"eval-{name}.json")))
    assert result["bn_statistics"] == statistics
    (fig,) = kept
    assert fig.axes[0].get_title().endswith(f"\ntop-1 {100 * result['top1']:.2f}%, {title}")
    assert f" {column:<17} " in table_row(out, run) and "bn stats" in out
    assert f"images), {title}" in out  # the "evaluating ..." line
    # The slow recomputation says what it does before it starts: ResNet-8 v1, shortcut A, has
    # 7 batch norms (after the first conv and after each of the 3 blocks' 2 convs).
    assert ("recomputing the statistics of 7 batch-norm layers, one after another, each from a "
            "pass of 1,000 training images" in out) == (statistics["mode"] == "recomputed")


def test_a_run_without_batch_norm_says_so(plain_run, capsys, monkeypatch):
    kept = figures_of(monkeypatch)
    assert evaluate.main(["--logdir", plain_run, "--recompute-bn-stats"]) == 0  # nothing to do
    result = json.load(open(os.path.join(plain_run, "eval-test-last-bnrecomputed.json")))
    assert result["bn_statistics"] is None and result["bn"] is False
    assert "no batch norm" in kept[0].axes[0].get_title()
    assert f" {'none':<17} " in table_row(capsys.readouterr().out, plain_run)


def test_bn_statistics_of_a_run_trained_with_batch_statistics_and_conflicting_flags(run):
    """A run trained with --bn-test-batch-stats builds a model that uses them at test time too;
    batch statistics never read the moving averages, so recomputing them as well is refused."""
    import argparse
    config = {"bn": True, "model_config": {"bn_test_batch_stats": True}}
    args = argparse.Namespace(bn_test_batch_stats=False, batch_size=100)
    assert evaluate.bn_statistics(config, args) == {"mode": "batch", "batch_size": 100}
    assert evaluate.bn_statistics(config, args, recomputed_on=1000)["mode"] == "batch"
    with pytest.raises(SystemExit):
        evaluate.main(["--logdir", run, "--bn-test-batch-stats", "--recompute-bn-stats"])


def test_run_names_give_arm_and_seed_of_compare_folders(tmp_path, monkeypatch):
    assert evaluate.run_name("exp/act-relu_bn-on/seed-12/") == "act-relu_bn-on/seed-12"
    assert evaluate.run_name("runs/seed-study") == "seed-study"  # not compare.py's seed folder
    assert evaluate.run_name("runs/sample") == "sample"
    (tmp_path / "act-elu_bn-off" / "seed-0").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "act-elu_bn-off" / "seed-0")
    assert evaluate.run_name(".") == "act-elu_bn-off/seed-0"


def test_learning_curves_name_arm_and_seed_with_the_legend_outside(run, val_run, monkeypatch,
                                                                   tmp_path):
    """compare.py's runs were titled "seed-0, seed-1, seed-0, seed-1", and a legend in each plot
    (two lines per run) covered the curves."""
    import shutil
    logdirs = []
    for arm in ("act-relu_bn-on", "act-elu_bn-on"):  # OUT/<arm>/seed-<s>, as compare.py writes
        for seed, source in ((0, run), (1, val_run)):
            logdir = tmp_path / "exp" / arm / f"seed-{seed}"
            logdir.mkdir(parents=True)
            shutil.copy(os.path.join(source, "metrics.jsonl"), logdir)
            logdirs.append(str(logdir))
    kept = figures_of(monkeypatch)
    evaluate.plot_curves(logdirs, str(tmp_path / "c.png"), ["cifar10-sample"] * 4)
    (fig,) = kept
    assert fig._suptitle.get_text() == \
        "Learning curves of 4 runs on cifar10-sample: training (solid) and test / val (dashed)"
    [legend] = fig.legends  # one for both plots
    assert [t.get_text() for t in legend.get_texts()] == [
        "act-relu_bn-on/seed-0", "act-relu_bn-on/seed-1", "act-elu_bn-on/seed-0",
        "act-elu_bn-on/seed-1", "training", "test / val"]
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        assert ax.get_legend() is None
        assert not legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))
    loss, _ = fig.axes
    assert [line.get_linestyle() for line in loss.lines] == ["-", "--"] * 4
    assert all(line.get_marker() == "o" for line in loss.lines)  # 1-epoch runs: markers


def test_missing_checkpoint_and_missing_logdir(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        evaluate.main(["--logdir", str(tmp_path / "nothing")])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no config.json"):
        evaluate.main(["--logdir", str(empty)])


def test_older_layout_and_mismatching_config_are_refused(run, tmp_path):
    import shutil
    copy = str(tmp_path / "copy")
    shutil.copytree(run, copy)
    path = os.path.join(copy, "config.json")
    config = json.load(open(path))
    json.dump(dict(config, layout=0), open(path, "w"))
    with pytest.raises(UserError, match="layout"):
        evaluate.main(["--logdir", copy])
    config["model_config"]["depth"] = 14  # a config that does not describe the checkpoint
    json.dump(config, open(path, "w"))
    with pytest.raises(UserError, match="does not match"):
        evaluate.main(["--logdir", copy])
    os.remove(path.replace("config.json", "ckpt/checkpoint"))
    json.dump(dict(config, model_config=dict(config["model_config"], depth=8)), open(path, "w"))
    with pytest.raises(UserError, match="no checkpoint"):
        evaluate.main(["--logdir", copy])


def test_a_config_json_listing_every_activation_parameter_still_restores(run, tmp_path, capsys):
    """Before each activation got only its own parameters, model_config's act_params listed all
    nine: such a log directory is still evaluated, and train.py still accepts it as the same
    run (here: already complete)."""
    import shutil
    from plumbing.choices import ACTIVATION_DEFAULTS
    copy = str(tmp_path / "older")
    shutil.copytree(run, copy)
    path = os.path.join(copy, "config.json")
    config = json.load(open(path))
    assert config["model_config"]["act_params"] == {}  # relu takes no parameter
    config["model_config"]["act_params"] = dict(ACTIVATION_DEFAULTS)
    json.dump(config, open(path, "w"))
    model, _, _, step = evaluate.restore_model(copy)
    reference, _, _, _ = evaluate.restore_model(run)
    assert step > 0 and model.config == reference.config
    images = tf.cast(sample_test_images()[0][:8], tf.float32) / 255.0  # [8, 32, 32, 3]
    np.testing.assert_array_equal(model(images, training=False),
                                  reference(images, training=False))
    capsys.readouterr()
    assert train.main(TINY + ["--logdir", copy]) == 0
    assert "already complete" in capsys.readouterr().out


def test_val_split_needs_a_validation_split(run):
    with pytest.raises(UserError, match="without a validation split"):
        evaluate.main(["--logdir", run, "--split", "val"])


def test_test_batch_stats_switch_changes_inference(run):
    """The blog post "激活函数(relu,prelu,elu,+BN)对比on cifar10" normalised test batches by their own
    statistics: with batch statistics at test time, results depend on the batch."""
    from plumbing import cifar_download
    import cifar_input
    images, _ = cifar_input.load_split(cifar_download.find_data("", "cifar10-sample"), "test",
                                       "cifar10-sample")
    model, config, _, _ = evaluate.restore_model(run)
    blog, _, _, _ = evaluate.restore_model(run, test_batch_stats=True)
    normal = evaluate.make_predictor(model, config)
    batch_stats = evaluate.make_predictor(blog, config)
    a = evaluate.probabilities(normal, images[:100], 100)
    np.testing.assert_allclose(a, evaluate.probabilities(normal, images[:100], 10), atol=1e-5)
    b100 = evaluate.probabilities(batch_stats, images[:100], 100)
    b10 = evaluate.probabilities(batch_stats, images[:100], 10)
    assert np.abs(b100 - a).max() > 1e-3 and np.abs(b100 - b10).max() > 1e-3


@pytest.mark.parametrize("labels", ["fine", "coarse"])
def test_cifar100_end_to_end_on_synthetic_files(labels, tmp_path, monkeypatch):
    """train.py and eval.py on files in the exact 2-label-byte layout (no real CIFAR-100 here)."""
    import cifar_input
    from conftest import write_cifar100
    monkeypatch.setitem(cifar_input.FORMATS["cifar100"], "records", {})  # small synthetic files
    write_cifar100(str(tmp_path / "data"), train=400, test=100)
    logdir = str(tmp_path / "run")
    assert train.main(["--dataset", "cifar100", "--labels", labels, "--data-dir",
                       str(tmp_path / "data"), "--model", "resnet", "--depth", "8", "--bn",
                       "--batch-size", "100", "--epochs", "1", "--max-steps", "2",
                       "--no-histograms", "--logdir", logdir]) == 0
    assert evaluate.main(["--logdir", logdir]) == 0
    result = json.load(open(os.path.join(logdir, "eval-test-last.json")))
    assert len(result["per_class_accuracy"]) == (100 if labels == "fine" else 20)
    assert ("superclass_top1" in result) == (labels == "fine")
    if labels == "fine":  # a superclass hit is at least as likely as an exact hit
        assert result["superclass_top1"] >= result["top1"]


def test_help_shows_each_default_once():
    # argparse's own formatter printed "(default: where training found it) (default: None)".
    import re

    from lab import diagnostics
    for parser in (evaluate.build_parser(), diagnostics.build_parser()):
        text = " ".join(parser.format_help().split())  # argparse wraps lines
        assert "(default: None)" not in text and "(default: False)" not in text
        assert not re.search(r"\(default[^()]*\) \(default", text), text
        assert "(default: test)" in text or "(default: 2000)" in text  # the others still shown
