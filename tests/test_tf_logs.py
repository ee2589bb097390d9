"""plumbing/tf_logs.py: TensorFlow's start-up lines below TF_CPP_MIN_LOG_LEVEL are dropped, every
other line written to stderr while TensorFlow loads is kept."""

import os
import subprocess
import sys

from plumbing import tf_logs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREAMBLE = ("WARNING: All log messages before absl::InitializeLog() is called are written to "
            "STDERR\n")
ONEDNN = ("I0000 00:00:1796209223.411008   28360 port.cc:153] oneDNN custom operations are on. "
          "You may see slightly different numerical results.\n")
TF_INFO = ("2026-01-30 22:44:42.456316: I tensorflow/core/platform/cpu_feature_guard.cc:182] This "
           "TensorFlow binary is optimized to use available CPU instructions.\n")
TF_WARNING = "2026-01-30 22:44:42.456316: W tensorflow/core/framework/op_kernel.cc:1] slow\n"
ERROR = "E0000 00:00:1796209223.411008   28360 cuda_dnn.cc:1] could not load\n"


def test_keep_by_level():
    assert [tf_logs.keep(line, 2) for line in (PREAMBLE, ONEDNN, TF_INFO, TF_WARNING, ERROR)] \
        == [False, False, False, True, True]
    assert [tf_logs.keep(line, 3) for line in (TF_WARNING, ERROR)] == [False, True]
    assert all(tf_logs.keep(line, 0) for line in (PREAMBLE, ONEDNN, TF_INFO, TF_WARNING, ERROR))
    assert tf_logs.keep("Traceback (most recent call last):\n", 3)


def run(code, **env):
    environ = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env=dict(environ, **env), timeout=300)


def test_filtered_stderr_drops_what_the_c_library_writes_below_the_level():
    # Written to file descriptor 2 directly, as TensorFlow's C++ library does.
    lines = [PREAMBLE, ONEDNN, "a line of the program\n", ERROR]
    code = ("import os; from plumbing import tf_logs\n"
            "with tf_logs.filtered_stderr(2):\n"
            + "".join(f"    os.write(2, {line!r}.encode())\n" for line in lines)
            + "os.write(2, b'after\\n')\n")
    p = run(code)
    assert p.returncode == 0, p.stderr
    assert p.stderr == "a line of the program\n" + ERROR + "after\n"


def test_tensorflow_imports_quietly_after_quiet():
    p = run("from plumbing import tf_logs; tf_logs.quiet(); import tensorflow as tf; "
            "print(tf.constant(2) + 1)")
    assert p.returncode == 0, p.stderr
    assert "tf.Tensor(3" in p.stdout
    noise = [line for line in p.stderr.splitlines()
             if line.startswith(("I0000", "W0000")) or "absl::InitializeLog" in line
             or " I tensorflow/" in line or " W tensorflow/" in line]
    assert not noise, noise


def test_an_error_while_importing_still_shows():
    p = run("from plumbing import tf_logs; tf_logs.quiet(); import sys; "
            "sys.modules['tensorflow.python'] = None; import tensorflow")
    assert p.returncode != 0
    assert "ImportError" in p.stderr or "ModuleNotFoundError" in p.stderr
