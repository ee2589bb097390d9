"""One run of a comparison, from its log directory alone: the commands that make it, how far it got.

compare.py never keeps state of its own: whether a run is trained, how many steps its latest
checkpoint holds, whether its chosen checkpoint has been evaluated on the test split, all of it is
read from the run's folder (config.json, metrics.jsonl, the checkpoint state files, the eval json),
so a re-run, a `--collect` or a job array's runs see the same truth.
"""

import json
import os

from plumbing import health

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository root
# What `eval.py --best --split test` writes into a run's folder.
EVAL_JSON = "eval-test-best.json"
# What compare.py writes into a run's folder when train.py ended with an error: its last line.
FAILED_JSON = "failed.json"
# Settings that say how a run was executed, not what was trained: free to differ between a run's
# config.json and the grid (the data may be collected from another folder, too), and not among a
# run's settings in TensorBoard's HParams dashboard.
HOW_IT_RAN = {"logdir", "data_dir", "progress_every", "histograms", "histograms_every",
              "test_every_epoch", "keep", "checkpoint_every", "check_every", "change_settings",
              "interrupt_after", "recipe_settings", "bn_fused", "xla", "strategy",
              "virtual_devices", "sync_bn", "deterministic", "data_format"}


def script(name):
    """The path of train.py / eval.py as a command line shows it (relative when it can be)."""
    path = os.path.join(HERE, name)
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else path


def train_command(run):
    return ["python", script("train.py")] + run["train_argv"]


def eval_command(logdirs):
    return ["python", script("eval.py"), "--best", "--split", "test", "--logdir"] + list(logdirs)


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
    """True when eval.py's test evaluation of the current best checkpoint is in the run's folder.

    A folder kept as evidence without its checkpoints (docs/studies/) has no DIR/best/ to check
    against: its eval json is the evaluation of the checkpoint that was chosen.
    """
    result = read_json(os.path.join(logdir, EVAL_JSON))
    if not (result and result.get("split") == "test"):
        return False
    if not os.path.isdir(os.path.join(logdir, "best")):
        return True
    return os.path.basename(result.get("checkpoint", "")) == best_checkpoint(logdir)


def failure(logdir):
    """The one-line reason a run failed (train.py ended with an error), or None."""
    info = read_json(os.path.join(logdir, FAILED_JSON))
    return info and info.get("reason")


def state(logdir):
    """What became of a run: "finished", "diverged", "dead", "failed", "not finished" (stopped or
    still running) or "not started". Diverged and dead runs are finished runs whose numbers mean
    nothing (plumbing/health.py); a failed run is one train.py gave up on with an error."""
    config = read_json(os.path.join(logdir, "config.json"))
    if failure(logdir) and not trained(logdir):
        return "failed"
    if not config:
        return "not started"
    condition = health.run_health(logdir, config["num_classes"])
    if condition:
        return condition.split(":")[0]  # "diverged" or "dead"
    return "finished" if trained(logdir) else "not finished"


def notes(logdir):
    """Why a run's figures may mislead, in words: its health (dead, diverged), its failure, and
    batch norm's moving averages still holding their initial values after a short run."""
    config = read_json(os.path.join(logdir, "config.json")) or {}
    out = [failure(logdir) and f"failed: {failure(logdir)}"]
    if config:
        out.append(health.run_health(logdir, config["num_classes"]))
        if config.get("bn") and not config.get("bn_test_batch_stats") and \
                "total_steps" in config:
            # train.py's short-run note (plumbing/health.py), in a report's words.
            left = health.initial_share_left(config["bn_decay"], config["total_steps"])
            if left > health.SHORT_RUN_SHARE:
                out.append(f"BN moving averages still hold {100 * left:.0f} % of their initial "
                           f"values after {config['total_steps']} steps (decay "
                           f"{config['bn_decay']:g}): evaluated with mostly initial statistics")
    return [n for n in out if n]
