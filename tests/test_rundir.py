"""rundir.run_health: a dead or diverged run is named, a learning one is not."""

import json
import math

import rundir


def write_metrics(path, losses, accuracies):
    with open(path / "metrics.jsonl", "w") as f:
        for epoch, (loss, acc) in enumerate(zip(losses, accuracies), 1):
            f.write(json.dumps({"epoch": epoch, "train_loss": loss, "train_accuracy": acc}) + "\n")


def test_loss_stuck_at_ln_classes_is_dead(tmp_path):
    write_metrics(tmp_path, [2.35, math.log(10) + 1e-4], [0.11, 0.1])
    assert rundir.run_health(str(tmp_path), 10).startswith("dead:")
    write_metrics(tmp_path, [2.35, math.log(100)], [0.011, 0.01])
    assert rundir.run_health(str(tmp_path), 10) is None  # ln(100) is not chance for 10 classes
    assert rundir.run_health(str(tmp_path), 100).startswith("dead:")


def test_learning_run_is_healthy(tmp_path):
    write_metrics(tmp_path, [2.2, 1.9], [0.2, 0.3])
    assert rundir.run_health(str(tmp_path), 10) is None
    # a loss that passes near ln 10 while accuracy is well above chance is not dead
    write_metrics(tmp_path, [math.log(10)], [0.3])
    assert rundir.run_health(str(tmp_path), 10) is None
    assert rundir.run_health(str(tmp_path / "missing"), 10) is None


def test_diverged_run(tmp_path):
    write_metrics(tmp_path, [2.2], [0.2])
    (tmp_path / "diverged.json").write_text(json.dumps({"step": 13, "loss": "nan"}))
    assert rundir.run_health(str(tmp_path), 10) == "diverged: non-finite loss at step 13"


def test_a_changed_seed_is_named_once():
    """The seed sits at the top of config.json and in model_config; the message said it twice."""
    old = {"seed": 0, "model_config": {"seed": 0, "depth": 8}}
    new = {"seed": 1, "model_config": {"seed": 1, "depth": 8}}
    assert rundir.config_differences(old, new) == ["seed: 0 in the log directory, 1 now"]
