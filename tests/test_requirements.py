"""requirements.txt: the CPU wheel on Linux x86-64, the regular wheel elsewhere, one of them always;
requirements-dev.txt: those plus PyTorch at the pinned release, which CI installs as the README says.

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


def read_lines(name):
    with open(os.path.join(ROOT, name)) as f:
        return [line.split("#", 1)[0].strip() for line in f]


def read_requirements(name="requirements.txt"):
    """The requirements a file names itself (pip options such as `-r FILE` left out)."""
    return [requirements.Requirement(line) for line in read_lines(name)
            if line and not line.startswith("-")]


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


def test_dev_requirements_add_pinned_pytorch_which_ci_installs_as_the_readme_says():
    """PyTorch stays out of the users' install (its tests skip there) and in the developers' one;
    exactly 2.13.0, the release whose CPU wheel the peers were measured with: a looser pin lets pip
    take a newer release, on Linux a CUDA build of several GB."""
    assert "-r requirements.txt" in read_lines("requirements-dev.txt")
    dev = read_requirements("requirements-dev.txt")
    assert [(r.name, str(r.specifier), r.marker) for r in dev] == [("torch", "==2.13.0", None),
                                                                   ("statsmodels", "", None)]
    assert "torch" not in {r.name for r in read_requirements()}
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci = f.read()
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    assert "pip install -q -r requirements-dev.txt" in ci
    assert "pip install -r requirements-dev.txt" in readme
