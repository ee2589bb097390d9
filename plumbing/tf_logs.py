"""TensorFlow's start-up log lines, kept out of the project's output.

TensorFlow reads TF_CPP_MIN_LOG_LEVEL once, at its first import, and then drops its own INFO (level
1) and WARNING (level 2) lines. A few lines come earlier than that: on a CPU where TensorFlow turns
its oneDNN kernels on by default (AVX-512 VNNI / BF16 or AMX, e.g. recent Xeon and EPYC), the
library prints, while it loads,

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796209223.411008   28360 port.cc:153] oneDNN custom operations are on. ...

whatever the variable says. `quiet()` sets the variable (unless the user set it) and arranges for
the first `import tensorflow` of the process, wherever it happens, to run with stderr (file
descriptor 2, where the C++ library writes) captured; afterwards it writes back every captured
line except those below the level the variable asks for. Nothing else is filtered: an error while
importing TensorFlow still shows, and with TF_CPP_MIN_LOG_LEVEL=0 every line shows.
"""

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

# A captured line is dropped when its level is below TF_CPP_MIN_LOG_LEVEL: absl's format
# ("I0000 00:00:..." for INFO, "W0000" for WARNING) or TensorFlow's ("... I tensorflow/...").
LEVEL_OF = {"I": 1, "W": 2}
ABSL_LINE = re.compile(r"^([IW])\d{4} \d\d:\d\d:")
TF_LINE = re.compile(r"^\S+ \S+: ([IW]) (tensorflow|external)/")
ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called"


def keep(line, min_level):
    """Whether a line TensorFlow wrote to stderr while loading stays visible at `min_level`."""
    if line.startswith(ABSL_PREAMBLE):  # absl's notice that the lines after it go to stderr
        return min_level < 1
    m = ABSL_LINE.match(line) or TF_LINE.match(line)
    return not m or LEVEL_OF[m.group(1)] >= min_level


@contextlib.contextmanager
def filtered_stderr(min_level):
    """Capture file descriptor 2 in the block; afterwards write back the lines `keep` keeps."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines(keepends=True):
                if keep(line, min_level):
                    sys.stderr.write(line)
            sys.stderr.flush()


class QuietImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` once and loads it under `filtered_stderr` (its submodules load inside)."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # only the first import; the real finders do the work
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module
        min_level = min_log_level()

        def exec_module(module):
            with filtered_stderr(min_level):
                load(module)

        spec.loader.exec_module = exec_module
        return spec


def min_log_level():
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def quiet(level="2"):
    """Before TensorFlow's first import: TF_CPP_MIN_LOG_LEVEL (unless set) and the filter above."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", level)
    if "tensorflow" not in sys.modules and not any(isinstance(f, QuietImport)
                                                   for f in sys.meta_path):
        sys.meta_path.insert(0, QuietImport())
