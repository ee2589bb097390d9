"""docs/READING.md, the reading tour, names code that exists: every `file.py:name` it points at."""

import ast
import os
import re

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
