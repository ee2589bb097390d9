"""The log directory of a run: its configuration, its checkpoints and what must match on resume.

A log directory holds everything `eval.py` needs to rebuild and evaluate a model, and everything
`train.py` needs to continue a run exactly where it stopped:

    DIR/config.json       every setting, the normalisation constants, TF version, device, commit
    DIR/ckpt/             the last few checkpoints (tf.train.CheckpointManager)
    DIR/best/             the checkpoint with the best validation accuracy so far (only with a
                          validation split: a choice on test accuracy would overstate it)
    DIR/metrics.jsonl     one JSON line per finished epoch
    DIR/diverged.json     first non-finite step, the step it was found at, and lr
    DIR/tb/               TensorBoard summaries

Checkpoints are only ever taken from the `checkpoint` state file that `CheckpointManager` writes
atomically (write to a temporary file, then rename) *after* a checkpoint's files are complete, so a
process killed in the middle of a save leaves the previous checkpoint as the latest one.
"""

import contextlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time

from errors import UserError

# TensorFlow is imported inside the functions that need it: train.py imports this module before it
# parses its flags, and `--help` must not wait for TensorFlow.

# Bump when the layout of a log directory changes; eval.py refuses other layouts with a message.
LAYOUT = 1

# Settings that decide the shape of the model or the meaning of its outputs: a run that continues in
# an existing log directory must agree on every one of them.
MUST_MATCH = ("dataset", "labels", "num_classes", "model", "model_config", "normalization",
              "batch_size", "seed", "val_fraction", "train_subset", "precision", "data_format")
# Model settings that change only how the same numbers are computed: free to differ on resume.
SPEED_ONLY = ("bn_fused",)
# Optimisation settings: a run continued with other values is a different experiment (a changed
# --epochs rebuilds the schedule, and the learning rate jumps), so train.py refuses them unless
# asked to continue with new settings (--change-settings).
TRAINING = ("epochs", "lr", "warmup_epochs", "schedule", "lr_steps", "lr_steps_unit",
            "warmup_fraction", "weight_decay", "optimizer", "momentum", "augment", "padding",
            "flip")


def check_writable(logdir):
    """Create `logdir` if needed and prove it is writable, before any training starts."""
    try:
        os.makedirs(logdir, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=logdir, prefix=".write-test-"):
            pass
    except OSError as e:
        raise UserError(f"log directory {logdir!r} is not writable ({e.strerror}); "
                        "choose another --logdir") from None


@contextlib.contextmanager
def only_writer(logdir):
    """Hold DIR/.lock while training: a second train.py on the same log directory is refused,
    since two would overwrite each other's checkpoints and metrics. The operating system drops
    the lock when the process ends, however it ends (no stale lock after a crash or kill -9)."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): no protection
        yield
        return
    f = open(os.path.join(logdir, ".lock"), "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or "a process"
        f.close()
        raise UserError(f"{logdir!r} is being trained by {holder}; wait for it to finish, stop "
                        "it, or use another --logdir") from None
    try:
        f.seek(0)
        f.truncate()
        f.write(f"process {os.getpid()} on {platform.node()}")
        f.flush()
        yield
    finally:
        f.close()  # releases the lock


def atomic_write(path, text):
    """Write `text` to `path` so that a reader sees either the old or the new file, never half."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_config(logdir, config):
    atomic_write(os.path.join(logdir, "config.json"), json.dumps(config, indent=2, sort_keys=True))


def read_config(logdir):
    """The config.json of `logdir`, or a UserError that says what is missing."""
    path = os.path.join(logdir, "config.json")
    if not os.path.isdir(logdir):
        raise UserError(f"log directory {logdir!r} does not exist; train first: "
                        f"python train.py --logdir {logdir}")
    if not os.path.exists(path):
        raise UserError(f"{logdir!r} has no config.json, so it is not a log directory written by "
                        "this version of train.py; point --logdir at one that is")
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {path}: {e}; the file is damaged, re-run train.py") from None
    if config.get("layout") != LAYOUT:
        raise UserError(f"{logdir!r} was written with log layout {config.get('layout')!r}, this "
                        f"version reads layout {LAYOUT}; re-train with this version")
    return config


def config_differences(old, new, keys=MUST_MATCH):
    """Human-readable differences between two configs on `keys` (default: what must match)."""
    diffs = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if key == "model_config" and isinstance(a, dict) and isinstance(b, dict):
            for k in sorted((set(a) | set(b)) - set(SPEED_ONLY)):
                if a.get(k) != b.get(k):
                    diffs.append(f"{k}: {a.get(k)!r} in the log directory, {b.get(k)!r} now")
        elif a != b:
            diffs.append(f"{key}: {a!r} in the log directory, {b!r} now")
    return list(dict.fromkeys(diffs))  # the seed is in model_config too: say it once


# The keys of environment(); config.json's "trained_with" lists them for every process that trained.
ENVIRONMENT = ("tensorflow", "python", "device", "git_commit")


def environment():
    """TensorFlow version, device and git commit, recorded in every config.json."""
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                                text=True, timeout=10).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        if commit != "unknown" and dirty:
            commit += "+uncommitted changes"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {"tensorflow": tf.__version__, "python": platform.python_version(),
            "device": ", ".join(gpus) if gpus else f"CPU ({cpu}, {os.cpu_count()} cores)",
            "git_commit": commit}


def restore_or_refuse(checkpoint, path, logdir, partial=False):
    """Restore `checkpoint` from `path`; a mismatch becomes a message, not a deep TF traceback.

    partial=True (eval) accepts a checkpoint holding more than `checkpoint` asks for (the
    optimizer's slots); every object that is asked for must still match.
    """
    import tensorflow as tf

    try:
        status = checkpoint.restore(path)
        if partial:
            status = status.expect_partial()
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"the checkpoint {path} does not match the model described by "
                        f"{logdir}/config.json and the current settings ({first[:200]}); "
                        "use a new --logdir") from None


class Progress:
    """Progress within an epoch, and one line at its end.

    On a terminal the progress line is redrawn in place (the caller updates it every few steps);
    when the output goes to a file (`> log`, nohup, compare.py's train.log) a plain line is written
    at most every `every` seconds instead, so that a log of a long epoch is never silent.
    """

    def __init__(self, stream=None, every=60.0, clock=time.monotonic):
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.every, self.clock = every, clock
        self.last = clock()

    def due(self, steps_done):
        """Whether to write a progress line after `steps_done` steps of the epoch."""
        if self.tty:
            return steps_done % 10 == 0
        return self.every > 0 and self.clock() - self.last >= self.every

    def update(self, text):
        if self.tty:
            self.stream.write("\r\033[K" + text)
        else:
            self.stream.write(text + "\n")
            self.last = self.clock()
        self.stream.flush()

    def done(self, text):
        self.stream.write(("\r\033[K" if self.tty else "") + text + "\n")
        self.stream.flush()
        self.last = self.clock()


def fmt_time(seconds):
    """12m05s, or 1h02m from an hour on."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s"


def run_health(logdir, num_classes):
    """None for a run that learns, else one line saying why its numbers mean nothing.

    - "diverged: ..." when train.py stopped on a non-finite loss (it writes DIR/diverged.json with
      the step and the loss);
    - "dead: ..." when the last finished epoch's mean training loss is within 0.005 of ln(C), the
      loss of predicting 1/C for every class, and its training accuracy is under 1.5/C: the
      network outputs the same distribution for every image (dead units, or a learning rate too
      high or too low for the model).
    eval.py and compare.py print it beside the run's numbers.
    """
    path = os.path.join(logdir, "diverged.json")
    if os.path.exists(path):
        with open(path) as f:
            info = json.load(f)
        return f"diverged: non-finite loss at step {info.get('step')}"
    records = []
    metrics = os.path.join(logdir, "metrics.jsonl")
    if os.path.exists(metrics):
        with open(metrics) as f:
            records = [json.loads(line) for line in f if line.strip()]
    if records:
        last = records[-1]
        chance_loss = math.log(num_classes)
        if abs(last["train_loss"] - chance_loss) < 0.005 and \
                last["train_accuracy"] < 1.5 / num_classes:
            return (f"dead: training loss {last['train_loss']:.4f} = ln({num_classes}) at epoch "
                    f"{last['epoch']}, chance accuracy")
    return None
