"""Running a comparison: one train.py subprocess per run, --jobs at a time, and a line as each ends.

Why one train.py subprocess per run: a fresh TensorFlow for every run (no graph, random state or
memory left over), a crash or a diverged run ends only that run, and what the comparison reports
is exactly what `python train.py ...` gives. Ctrl-C or SIGTERM asks every running train.py to save
a checkpoint and exit; the same command resumes.
"""

import concurrent.futures
import json
import os
import queue
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time

from lab.runs import FAILED_JSON, notes, read_json, read_metrics, steps_left, steps_saved, \
    time_left, trained, train_command
from plumbing import progress, rundir
from plumbing.errors import UserError


def visible_gpus():
    """GPU indices for CUDA_VISIBLE_DEVICES (nvidia-smi -L, without importing TensorFlow)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                                 timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(l for l in listing.splitlines()
                                             if l.startswith("GPU "))]


class Runner:
    """Runs runs on --jobs workers; each worker holds a slot (a GPU when there are GPUs)."""

    def __init__(self, jobs):
        gpus = visible_gpus()
        self.slots = queue.Queue()
        for i in range(jobs):
            self.slots.put(gpus[i % len(gpus)] if gpus else None)
        self.stopping = threading.Event()
        self.children, self.lock = set(), threading.Lock()

    def call(self, command, log_path, gpu):
        """Run one command with output appended to log_path; its exit code (None if stopped)."""
        if self.stopping.is_set():
            return None
        env = dict(os.environ)
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        with open(log_path, "a") as log:
            log.write(f"$ {shlex.join(command)}\n")
            log.flush()
            child = subprocess.Popen([sys.executable] + command[1:], stdout=log,
                                     stderr=subprocess.STDOUT, env=env)
            with self.lock:
                self.children.add(child)
            try:
                return child.wait()
            finally:
                with self.lock:
                    self.children.discard(child)

    def run(self, run):
        """Train one run (train.py continues an interrupted run from its checkpoint)."""
        gpu = self.slots.get()
        try:
            logdir, t0 = run["logdir"], time.time()
            first_step = steps_saved(logdir)  # a resumed run continues from there
            os.makedirs(logdir, exist_ok=True)
            with open(os.path.join(logdir, "command.sh"), "w") as f:
                f.write(shlex.join(train_command(run)) + "\n")
            failed_json = os.path.join(logdir, FAILED_JSON)
            if os.path.exists(failed_json):  # an earlier attempt's; this one may succeed
                os.remove(failed_json)
            log = os.path.join(logdir, "train.log")
            code = self.call(train_command(run), log, gpu)
            done = dict(run, seconds=time.time() - t0, steps=steps_saved(logdir) - first_step)
            if code == 0 or trained(logdir):
                return dict(done, ok=True)
            if code is None or code in STOPPED:  # stopped (Ctrl-C, SIGTERM): not a failure
                return dict(done, ok=False, why=None)
            why = f"train.py exit {code}: " + last_line(log)
            # Kept in the run's folder, so the report names the failure after any later
            # --collect, distinct from a run that was only stopped.
            rundir.atomic_write(failed_json, json.dumps({"reason": why, "exit": code}))
            return dict(done, ok=False, why=why)
        finally:
            self.slots.put(gpu)

    def stop(self, signum=signal.SIGINT):
        """Start nothing new; ask the running train.py processes to checkpoint and exit."""
        self.stopping.set()
        with self.lock:
            for child in self.children:
                if child.poll() is None:
                    child.send_signal(signum)


# train.py's exit statuses after SIGINT / SIGTERM (128 + the signal: it saved a checkpoint).
STOPPED = (128 + signal.SIGINT, 128 + signal.SIGTERM, -signal.SIGINT, -signal.SIGTERM)


def epochs_of(run, config):
    """A run's --epochs (its train.py flags), or that of `config` when the grid does not set it:
    with training budgets the runs still to start differ in length from the one that ended."""
    argv = run["train_argv"]
    return int(argv[argv.index("--epochs") + 1]) if "--epochs" in argv else \
        config.get("epochs", 0)


def last_line(path):
    try:
        with open(path) as f:
            lines = [l.strip() for l in f if l.strip()]
        return lines[-1][:300] if lines else "(no output)"
    except OSError:
        return "(no log)"


def run_all(plan, jobs):
    """Run every unfinished run; one progress line per finished run. Returns failed runs."""
    todo = [r for r in plan["runs"] if not trained(r["logdir"])]
    total = len(plan["runs"])
    done = total - len(todo)
    if done:
        print(f"{done} of {total} runs already finished: skipped", flush=True)
    if todo:  # a run can take an hour: say where to watch it before the first one ends
        pattern = os.path.join(plan["out"], "<arm>", "seed-<n>", "train.log")
        print(f"training {len(todo)} run(s), {min(jobs, len(todo))} at a time; each run's "
              f"progress goes to {pattern}, e.g. {os.path.join(todo[0]['logdir'], 'train.log')}",
              flush=True)
    runner, failed = Runner(jobs), []
    seconds, steps, ended = 0.0, 0, set()  # of this invocation's runs: for the time left
    previous = signal.signal(signal.SIGTERM, lambda s, f: runner.stop(signal.SIGTERM))
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = [pool.submit(runner.run, r) for r in todo]
        for future in concurrent.futures.as_completed(futures):
            result = future.result()
            if result.get("why") is None and not result["ok"]:
                continue  # stopped before or while running
            done += 1
            seconds, steps = seconds + result["seconds"], steps + result["steps"]
            ended.add(result["logdir"])
            left = total - done
            # Time left: the steps the other runs still have (a resumed run counts from its
            # checkpoint) at this invocation's seconds per step of one run, `jobs` at a time.
            config = read_json(os.path.join(result["logdir"], "config.json")) or {}
            eta = steps and time_left(seconds / steps, [
                steps_left(r, config.get("steps_per_epoch", 0) * epochs_of(r, config))
                for r in todo if r["logdir"] not in ended], jobs)
            what = run_summary(result["logdir"]) if result["ok"] else "FAILED: " + result["why"]
            what += "".join(f"; {n}" for n in notes(result["logdir"]) if result["ok"])
            if not result["ok"]:
                failed.append(result)
            print(f"[{done}/{total}] {result['arm']} seed {result['seed']}: {what} "
                  f"({progress.fmt_time(result['seconds'])}); {left} left"
                  + (f", ~{progress.fmt_time(eta)} to go" if left and eta else ""), flush=True)
    except KeyboardInterrupt:
        runner.stop()
        print("\ninterrupted: the running train.py processes save a checkpoint; re-run the same "
              "command to continue", flush=True)
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        signal.signal(signal.SIGTERM, previous)
    if runner.stopping.is_set():
        raise UserError("stopped by SIGTERM; re-run the same command to continue")
    return failed


def run_summary(logdir):
    """The validation accuracy of the chosen checkpoint (the test split is evaluated at the end)."""
    records = read_metrics(logdir)
    val = max((r["val_accuracy"] for r in records if "val_accuracy" in r), default=None)
    return "no finished epoch" if val is None else f"best val {100 * val:.2f}%"
