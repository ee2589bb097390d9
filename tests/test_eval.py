"""eval.py: its metrics against TF's own ops and hand-checked cases, export, errors."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

import eval as evaluate
import train
from errors import UserError

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


def test_export_serves_uint8_images_and_matches_eval(run, tmp_path):
    export_dir = str(tmp_path / "exported")
    assert evaluate.main(["--logdir", run, "--export", export_dir]) == 0
    import cifar_download
    import cifar_input
    images, _ = cifar_input.load_split(cifar_download.find_data("data", "cifar10-sample"), "test",
                                        "cifar10-sample")
    loaded = tf.saved_model.load(export_dir)
    served = loaded.signatures["serving_default"](tf.constant(images[:64]))
    served = list(served.values())[0].numpy()
    model, config, _, _ = evaluate.restore_model(run)
    direct = evaluate.probabilities(evaluate.make_predictor(model, config), images[:64], 32)
    np.testing.assert_allclose(served, direct, atol=1e-5)
    np.testing.assert_allclose(served.sum(1), 1.0, atol=1e-5)


def test_several_logdirs_give_one_table_and_a_plot(run, capsys, tmp_path):
    plot = str(tmp_path / "curves.png")
    assert evaluate.main(["--logdir", run, run, "--best", "--plot", plot]) == 0
    out = capsys.readouterr().out
    assert out.count("resnet") == 2 and "top-1" in out
    assert os.path.getsize(plot) > 5000


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


def test_val_split_needs_a_validation_split(run):
    with pytest.raises(UserError, match="without a validation split"):
        evaluate.main(["--logdir", run, "--split", "val"])


def test_test_batch_stats_switch_changes_inference(run):
    """The seed blog's behaviour: with batch statistics at test time, results depend on the batch."""
    import cifar_download
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
    result = json.load(open(os.path.join(logdir, "eval.json")))
    assert len(result["per_class_accuracy"]) == (100 if labels == "fine" else 20)
    assert ("superclass_top1" in result) == (labels == "fine")
    if labels == "fine":  # a superclass hit is at least as likely as an exact hit
        assert result["superclass_top1"] >= result["top1"]
