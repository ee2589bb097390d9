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
import os
import platform
import subprocess
import tempfile

from plumbing.choices import own_activation_params
from plumbing.errors import UserError

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
            if "act_params" in a:  # an older config.json lists every activation parameter
                a = dict(a, act_params=own_activation_params(a.get("act"), a["act_params"]))
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


def run_config(args, model, num_classes, mean, std, steps_per_epoch, total_steps, train_size,
               data_root):
    """Everything config.json records: the flags, the model, the data constants, the machine."""
    config = {k: v for k, v in vars(args).items() if k not in ("recipe_settings",
                                                                "interrupt_after")}
    config.update(layout=LAYOUT, num_classes=num_classes,
                  model_config=json.loads(json.dumps(model.config)),  # tuples -> lists, as on disk
                  mean=mean.tolist(), std=std.tolist(),  # a mean image for per-pixel
                  steps_per_epoch=steps_per_epoch, total_steps=total_steps,
                  train_size=int(train_size), data_root=os.path.abspath(data_root),
                  **environment())
    return config


def check_same_settings(logdir, config, change_settings):
    """Refuse a log directory holding a run with other settings; return config to write.

    Settings that shape the model or the data must match. Optimisation settings (epochs, lr,
    schedule, ...) may change only with --change-settings; the change is kept in config.json,
    and so is the list of processes that trained the run ("trained_with").
    """
    if not os.path.exists(os.path.join(logdir, "config.json")):
        return dict(config, trained_with=[])
    old = read_config(logdir)
    diffs = config_differences(old, config)
    if diffs:
        raise UserError(f"{logdir!r} holds a run with other settings (" + "; ".join(diffs) +
                        "); use a new --logdir or the old flags")
    changed = config_differences(old, config, TRAINING)
    if changed and not change_settings:
        raise UserError(f"{logdir!r} was trained with other optimisation settings (" +
                        "; ".join(changed) + "); re-run with the old flags, use a new --logdir, "
                        "or add --change-settings to continue it with the new ones")
    config["trained_with"] = old.get("trained_with", [])
    config["settings_changes"] = old.get("settings_changes", []) + (
        [{"changes": changed}] if changed else [])
    return config


def truncate_metrics_to_checkpoint(metrics_path, finished_epochs):
    """Keep only the metrics.jsonl lines of epochs the restored checkpoint has finished.

    A process killed between writing an epoch's line and saving its checkpoint repeats that
    epoch after resuming; without this its line would appear twice.
    """
    if os.path.exists(metrics_path):
        with open(metrics_path) as f:
            kept = [l for l in f if l.strip() and json.loads(l)["epoch"] <= finished_epochs]
        atomic_write(metrics_path, "".join(kept))




def open_logdir(args, config, held):
    """Make the log directory, lock it for this process (released when `held` closes), and
    refuse it if it holds a run with other settings; the config to write once training starts."""
    check_writable(args.logdir)
    held.enter_context(only_writer(args.logdir))  # one train.py per log directory
    # Refused here, before any checkpoint is read; written once it is known that this process
    # trains (a finished run's config.json stays as it is).
    return check_same_settings(args.logdir, config, args.change_settings)


def resume(checkpoint, shared_logdir, logdir, total_steps, steps_per_epoch):
    """Restore the latest checkpoint, if any: the step to start from, or None when the run is
    already complete (it says so)."""
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(os.path.join(shared_logdir, "ckpt"))
    if not latest:
        return 0
    restore_or_refuse(checkpoint, latest, shared_logdir)
    start_step = int(checkpoint.step.numpy())
    if start_step >= total_steps:
        print(f"{logdir} is already complete ({start_step}/{total_steps} steps); to "
              "train on, raise --epochs (with --change-settings) or use a new --logdir",
              flush=True)
        return None
    print(f"resuming {logdir} from step {start_step} "
          f"(epoch {start_step // steps_per_epoch + 1}, step "
          f"{start_step % steps_per_epoch} of {steps_per_epoch})", flush=True)
    return start_step


def start_training(logdir, config, start_step, steps_per_epoch):
    """This process trains from `start_step`: record it in config.json ("trained_with": which
    code, library and machine trained which steps), drop the metrics lines of epochs the
    checkpoint has not finished and an earlier attempt's diverged.json."""
    config["trained_with"].append({"from_step": start_step,
                                   **{k: config[k] for k in ENVIRONMENT}})
    write_config(logdir, config)
    truncate_metrics_to_checkpoint(os.path.join(logdir, "metrics.jsonl"),
                                   start_step // steps_per_epoch)
    if os.path.exists(os.path.join(logdir, "diverged.json")):  # an earlier attempt's
        os.remove(os.path.join(logdir, "diverged.json"))
