"""Real processes, real signals: SIGINT / SIGTERM checkpoint first; kill -9 never loses the run.

Each case starts `python train.py` as a subprocess on the bundled sample (ResNet-8, 10 steps per
epoch) and interrupts it from outside.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--dataset", "cifar10-sample", "--model", "resnet", "--depth", "8", "--bn",
        "--batch-size", "100", "--lr", "0.05", "--no-histograms", "--deterministic",
        "--act", "rrelu"]


def start(args, logdir):
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), *args,
                             "--logdir", logdir], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_step(logdir, timeout=300):
    """Wait until the run has written its first checkpoint (so it is mid-training); the timeout
    allows for a CPU shared with other work (start-up alone took over 60 s at load 14 on 2 cores)."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        if tf.train.latest_checkpoint(os.path.join(logdir, "ckpt")):
            return
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


def checkpoint_weights(logdir):
    path = tf.train.latest_checkpoint(os.path.join(logdir, "ckpt"))
    reader = tf.train.load_checkpoint(path)
    return {n: reader.get_tensor(n) for n, _ in tf.train.list_variables(path)
            if n.startswith("model/")}


def epochs_logged(logdir):
    with open(os.path.join(logdir, "metrics.jsonl")) as f:
        return [json.loads(line)["epoch"] for line in f]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_writes_a_checkpoint_and_the_rerun_continues(sig, tmp_path):
    logdir = str(tmp_path / "run")
    args = TINY + ["--epochs", "30", "--checkpoint-every", "2"]
    proc = start(args, logdir)
    wait_for_step(logdir)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err
    assert f"interrupted by {signal.Signals(sig).name}" in out
    assert "Traceback" not in err
    step = int(tf.train.latest_checkpoint(os.path.join(logdir, "ckpt")).rsplit("-", 1)[1])
    assert 0 < step < 300
    # Re-running continues from that step (with fewer epochs, to keep the test short).
    proc = start(TINY + ["--epochs", "30", "--checkpoint-every", "2", "--max-steps",
                         str(step + 12)], logdir)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert f"resuming {logdir} from step {step}" in out


def test_kill_9_at_random_moments_never_loses_the_run(tmp_path):
    """kill -9 many times (often during a checkpoint write); the end state equals a clean run."""
    args = TINY + ["--epochs", "4", "--checkpoint-every", "1"]  # a save after every step
    clean, killed = str(tmp_path / "clean"), str(tmp_path / "killed")
    proc = start(args, clean)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err

    rng = random.Random(0)
    kills = 0
    for attempt in range(8):
        proc = start(args, killed)
        if attempt == 0:
            wait_for_step(killed)
        time.sleep(rng.uniform(0.0, 2.5))
        if proc.poll() is not None:
            break  # finished before the kill
        proc.kill()  # SIGKILL: no handler runs
        proc.communicate()
        kills += 1
        # The latest checkpoint must always be complete and readable.
        latest = tf.train.latest_checkpoint(os.path.join(killed, "ckpt"))
        if latest:
            assert all(np.all(np.isfinite(v)) for v in checkpoint_weights(killed).values())
    proc = start(args, killed)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    print(f"kill -9 delivered {kills} times")
    assert kills >= 3
    assert epochs_logged(killed) == [1, 2, 3, 4]  # no epoch lost, none logged twice
    a, b = checkpoint_weights(clean), checkpoint_weights(killed)
    assert a.keys() == b.keys()
    for name in a:  # --deterministic: bit-identical to the uninterrupted run
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_command_line_errors_are_one_line_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--model", "resnet",
                           "--depth", "21"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "6n+2" in proc.stderr and "Traceback" not in proc.stderr
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *TINY, "--logdir",
                           str(blocker / "run")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: log directory")
    assert "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "eval.py"), "--logdir",
                           str(tmp_path / "missing")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
