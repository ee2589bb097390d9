"""docs/READING.md, the reading tour: it names code that exists (every `file.py:name` it points at),
and every command it gives prints what it says."""

import ast
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def defined_names(path):
    """Every function, class and method name defined in a Python file, and its top-level names."""
    tree = ast.parse(open(path).read())
    names = {n.name for n in ast.walk(tree)
             if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))}
    names |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
              if isinstance(t, ast.Name)}
    return names


def test_every_file_and_function_of_the_tour_exists():
    with open(os.path.join(ROOT, "docs", "READING.md")) as f:
        text = f.read()
    stops = set(re.findall(r"`([a-z_/]+\.py):([A-Za-z_][A-Za-z_.]*)", text))
    assert len(stops) >= 20  # the tour points at code, stop after stop
    missing = [f"{path}:{name}" for path, name in sorted(stops)
               if not os.path.exists(os.path.join(ROOT, path))
               or name.split(".")[-1] not in defined_names(os.path.join(ROOT, path))]
    assert not missing, f"docs/READING.md names code that is not there: {missing}"


# --------------------------------------------------------------------------------------------------
# The tour's commands print what the tour says they print
# --------------------------------------------------------------------------------------------------
# READING.md shows each command as `$ command` in an indented block, followed by what it prints.
# `...` stands for text that changes from machine to machine or run to run (times, speeds), and a
# number agrees when it is equal to the digits written (0.18 accepts 0.1823; an integer is exact).
# All the commands run in one Python process, in order, from a copy of the repository (so that
# `runs/tour` is written there): a `python -c` body is exec'd in a namespace of its own, a script
# (`python train.py ...`, `python -m lab.studies`) runs its `main` with its arguments. One change
# makes the slow command quick: `eval.py --recompute-bn-stats` recomputes batch norm's statistics
# on 100 training images instead of the sample's 1,000 (the tour writes `...` for what depends on
# it).

NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"

RUNNER = r"""
import contextlib, functools, importlib, io, json, os, shlex, sys, traceback
from plumbing.errors import run_script

import eval as evaluate
evaluate.recompute_on_training_images.__defaults__ = (100, None)  # images, data_dir

commands, results_path = json.load(open(sys.argv[1])), sys.argv[2]
results = []
for command in commands:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            argv = shlex.split(command)
            assert argv[0] == "python", command
            if argv[1] == "-c":
                exec(compile(argv[2], "<tour>", "exec"), {"__name__": "__main__"})
            else:
                name = argv[2] if argv[1] == "-m" else argv[1][:-len(".py")]
                sys.argv = argv[2 if argv[1] == "-m" else 1:]
                module = importlib.import_module(name)
                run_script(functools.partial(module.main, sys.argv[1:]))
        except SystemExit as e:
            if e.code not in (None, 0):
                print(f"[exit status {e.code}]")
        except Exception:
            print(traceback.format_exc())
    results.append(out.getvalue())
json.dump(results, open(results_path, "w"))
"""


def tour_commands(text):
    """[(command, [the lines it prints])] of every `$ command` of the tour, in order."""
    lines = text.splitlines()
    commands = []
    for i, line in enumerate(lines):
        if line.startswith("    $ "):
            printed = []
            for following in lines[i + 1:]:
                if not following.startswith("    ") or following.startswith("    $ "):
                    break
                printed.append(following[4:])
            commands.append((line[len("    $ "):], printed))
    return commands


def agrees(printed, expected):
    """Whether `printed` is what the `expected` lines say, under the rules above."""
    tokens = re.findall(r"\.\.\.|" + NUMBER + r"|[^\s\d.+-]+|.", " ".join(expected))
    pattern, numbers = "", []
    for token in tokens:
        if token == "...":
            pattern += r".*?"
        elif re.fullmatch(NUMBER, token):
            pattern += f"({NUMBER})"
            numbers.append(token)
        elif not token.isspace():
            pattern += re.escape(token)
        pattern += r"\s*"
    match = re.fullmatch(r"\s*" + pattern, printed, re.DOTALL)
    if not match:
        return False
    for written, got in zip(numbers, match.groups()):
        decimals = len(written.split(".")[1]) if "." in written and "e" not in written.lower() \
            else 0
        tolerance = 0.5 * 10 ** -decimals if "." in written else 0
        if "e" in written.lower():
            tolerance = abs(float(written)) * 1e-3
        if not abs(float(got) - float(written)) <= tolerance + 1e-12:
            return False
    return True


def test_the_agreement_rule_can_fail():
    assert agrees("3073 59 62", ["3073 59 62"])
    assert agrees("[0.18234 2.0]  took 3.2 s", ["[0.18 2.] took ... s"])
    assert not agrees("3073 59 63", ["3073 59 62"])  # integers are exact
    assert not agrees("[0.19 2.0]", ["[0.18 2.]"])
    assert not agrees("3073 59 62 and more", ["3073 59 62"])  # nothing unstated
    assert agrees("1e-05", ["1e-05"]) and not agrees("2e-05", ["1e-05"])


def test_every_command_of_the_tour_prints_what_the_tour_says(tmp_path):
    from test_readme import copy_as_a_clone

    with open(os.path.join(ROOT, "docs", "READING.md")) as f:
        commands = tour_commands(f.read())
    assert len(commands) >= 25
    silent = [command for command, printed in commands if not printed]
    assert not silent, f"commands of the tour that do not say what they print: {silent}"
    work = tmp_path / "checkout"
    copy_as_a_clone(work)
    (tmp_path / "commands.json").write_text(json.dumps([c for c, _ in commands]))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(work))
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(tmp_path / "commands.json"),
                           str(tmp_path / "printed.json")], cwd=work, env=env,
                          capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = json.loads((tmp_path / "printed.json").read_text())
    wrong = [f"$ {command}\n  the tour says:\n    " + "\n    ".join(expected) +
             "\n  it printed:\n    " + "\n    ".join(got.rstrip().splitlines())
             for (command, expected), got in zip(commands, printed) if not agrees(got, expected)]
    assert not wrong, "\n\n".join(wrong)
    assert not os.path.exists(os.path.join(work, "activations.png"))  # nothing in the root
