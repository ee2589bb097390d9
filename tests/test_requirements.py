"""requirements.txt: the CPU wheel on Linux x86-64, the regular wheel elsewhere, one of them always.

The environment markers are evaluated with `packaging` (what pip itself uses) for each platform,
since this machine can only install for its own.
"""

import os

import pytest

requirements = pytest.importorskip("packaging.requirements")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLATFORMS = {  # (sys_platform, platform_machine) -> the TensorFlow wheel it must get
    ("linux", "x86_64"): "tensorflow-cpu",
    ("linux", "aarch64"): "tensorflow",
    ("darwin", "arm64"): "tensorflow",
    ("win32", "AMD64"): "tensorflow",
}


def read_requirements():
    with open(os.path.join(ROOT, "requirements.txt")) as f:
        lines = [line.split("#", 1)[0].strip() for line in f]
    return [requirements.Requirement(line) for line in lines if line]


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_each_platform_gets_exactly_one_tensorflow_of_the_pinned_version(platform):
    sys_platform, machine = platform
    environment = {"sys_platform": sys_platform, "platform_machine": machine}
    active = [r for r in read_requirements()
              if r.marker is None or r.marker.evaluate(environment)]
    tensorflows = [r for r in active if r.name in ("tensorflow", "tensorflow-cpu")]
    assert [r.name for r in tensorflows] == [PLATFORMS[platform]]
    assert str(tensorflows[0].specifier) == "==2.21.0"
    names = {r.name for r in active}
    assert {"tensorboard", "numpy", "scipy", "matplotlib", "pillow", "pytest",
            "hypothesis"} <= names  # scipy: compare.py's statistics
