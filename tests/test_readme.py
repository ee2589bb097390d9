"""The README's first command, after its install part, runs as written.

In a file of its own: it trains All-CNN-C for 2 epochs (about a minute on two cores), and
`pytest -n 2 --dist loadfile` hands out whole files, so a second worker can run the rest meanwhile.
"""

import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def copy_as_a_clone(work):
    """Copy what a clone has (and new files not yet committed): the files .gitignore does not
    ignore. A working copy may hold gigabytes of experiments, data and environments."""
    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                                 "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):  # no git here: an unpacked archive
        shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(".git", "__pycache__"))
        return
    for name in filter(None, listed.decode().split("\0")):
        if os.path.isfile(os.path.join(ROOT, name)):  # a tracked file may be deleted, uncommitted
            os.makedirs(os.path.dirname(os.path.join(work, name)), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, name), os.path.join(work, name))


def test_the_readme_main_job_runs(tmp_path):
    """The first line of the README, after its install part, runs as written (in a scratch copy)."""
    readme = open(os.path.join(ROOT, "README.md")).read()
    first = re.search(r"```sh\n(.*?)\n", readme).group(1)
    job = first.split("pip install -r requirements.txt && ", 1)[1]
    assert job.startswith("python train.py") and "python eval.py" in job
    work = tmp_path / "checkout"
    copy_as_a_clone(work)
    for command in job.split(" && "):
        argv = command.split()
        assert argv[0] == "python"
        proc = subprocess.run([sys.executable] + argv[1:], cwd=work, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert os.path.exists(work / "runs" / "sample" / "eval-test-last.json")
    assert "top-1" in proc.stdout
