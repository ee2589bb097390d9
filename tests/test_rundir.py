"""rundir: a dead or diverged run is named, a learning one is not; progress lines in an epoch."""

import io
import json
import math

from plumbing import health, progress, rundir


def write_metrics(path, losses, accuracies):
    with open(path / "metrics.jsonl", "w") as f:
        for epoch, (loss, acc) in enumerate(zip(losses, accuracies), 1):
            f.write(json.dumps({"epoch": epoch, "train_loss": loss, "train_accuracy": acc}) + "\n")


def test_loss_stuck_at_ln_classes_is_dead(tmp_path):
    write_metrics(tmp_path, [2.35, math.log(10) + 1e-4], [0.11, 0.1])
    assert health.run_health(str(tmp_path), 10).startswith("dead:")
    write_metrics(tmp_path, [2.35, math.log(100)], [0.011, 0.01])
    assert health.run_health(str(tmp_path), 10) is None  # ln(100) is not chance for 10 classes
    assert health.run_health(str(tmp_path), 100).startswith("dead:")


def test_learning_run_is_healthy(tmp_path):
    write_metrics(tmp_path, [2.2, 1.9], [0.2, 0.3])
    assert health.run_health(str(tmp_path), 10) is None
    # a loss that passes near ln 10 while accuracy is well above chance is not dead
    write_metrics(tmp_path, [math.log(10)], [0.3])
    assert health.run_health(str(tmp_path), 10) is None
    assert health.run_health(str(tmp_path / "missing"), 10) is None


def test_diverged_run(tmp_path):
    write_metrics(tmp_path, [2.2], [0.2])
    (tmp_path / "diverged.json").write_text(json.dumps({"step": 13, "loss": "nan"}))
    assert health.run_health(str(tmp_path), 10) == "diverged: non-finite loss at step 13"


def test_an_older_config_listing_every_activation_parameter_is_the_same_run():
    """Before each activation got only its own parameters, act_params listed all nine."""
    from plumbing.choices import ACTIVATION_DEFAULTS
    old = {"model_config": {"act": "elu", "act_params": dict(ACTIVATION_DEFAULTS)}}
    assert rundir.config_differences(old, {"model_config": {"act": "elu", "act_params": {
        "elu_alpha": 1.0}}}) == []
    assert rundir.config_differences(old, {"model_config": {"act": "elu", "act_params": {
        "elu_alpha": 0.5}}}) == ["act_params: {'elu_alpha': 1.0} in the log directory, "
                                 "{'elu_alpha': 0.5} now"]


def test_a_changed_seed_is_named_once():
    """The seed sits at the top of config.json and in model_config; the message said it twice."""
    old = {"seed": 0, "model_config": {"seed": 0, "depth": 8}}
    new = {"seed": 1, "model_config": {"seed": 1, "depth": 8}}
    assert rundir.config_differences(old, new) == ["seed: 0 in the log directory, 1 now"]


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_progress_to_a_file_writes_a_line_every_interval():
    clock, stream = FakeClock(), Stream(tty=False)
    shown = progress.Progress(stream, every=60, clock=clock)
    clock.now = 59.9
    assert not shown.due(10)
    clock.now = 60.0
    assert shown.due(7)  # by time, not by step
    shown.update("epoch 1/2 step 7/351")
    assert not shown.due(8)  # the interval restarts at the line written
    clock.now = 119.9
    assert not shown.due(20)
    clock.now = 120.0
    assert shown.due(21)
    shown.done("epoch 1/2 ...")
    assert not shown.due(1)  # nor right after an epoch line
    assert stream.getvalue() == "epoch 1/2 step 7/351\nepoch 1/2 ...\n"  # plain lines, no \r
    clock.now = 1e6
    assert not progress.Progress(stream, every=0, clock=clock).due(10)  # 0 = none


def test_progress_on_a_terminal_is_redrawn_every_ten_steps():
    clock, stream = FakeClock(), Stream(tty=True)
    shown = progress.Progress(stream, every=60, clock=clock)
    assert [s for s in range(1, 31) if shown.due(s)] == [10, 20, 30]
    shown.update("step 10/351")
    shown.done("epoch 1/2")
    assert stream.getvalue() == "\r\033[Kstep 10/351\r\033[Kepoch 1/2\n"


def test_times_are_rounded_to_the_shown_unit():
    # compare.py and train.py both print times with this; 59.6 s is closer to a minute than to 59 s.
    assert progress.fmt_time(125) == "2m05s"
    assert progress.fmt_time(59.6) == "1m00s"
    assert progress.fmt_time(3725) == "1h02m"
    assert progress.fmt_time(3599.7) == "1h00m"
