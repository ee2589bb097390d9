"""The generated blocks of docs/STUDIES.md: `python -m lab.studies_doc [PATH]`.

A generated block is the text between two marker lines, which Markdown does not show:

    <!-- generated: KEY -->
    ... the text of blocks()[KEY], rewritten by `python -m lab.studies_doc` ...
    <!-- end generated: KEY -->

Everything outside the blocks is written by hand and kept as it is. A figure that a program
computes (an arm list, a time estimate, a result) goes in a block, so the document cannot drift
from the code: tests/test_studies.py fails when docs/STUDIES.md differs from what this module
writes.

To add blocks, append to `BLOCKS` a function that returns {KEY: Markdown text}, then put the KEY's
two marker lines where the text belongs in docs/STUDIES.md and run `python -m lab.studies_doc`.
"""

import argparse
import os
import re

from lab import studies
from plumbing.errors import run_script

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                   "STUDIES.md")
MARKER = re.compile(r"<!-- (end )?generated: (\S+) -->")


def step_seconds_block():
    """The per-step times every estimate uses (studies.STEP_SECONDS)."""
    times = ", ".join(f"{model} {seconds}\xa0s" for model, seconds in studies.STEP_SECONDS.items())
    return {"step-seconds": "\n".join(studies.wrap(
        f"The estimates use, per train step: {times} (`STEP_SECONDS` in `lab/studies.py`)."))}


def study_blocks():
    """One block per study, `study-NAME`: studies.describe(NAME), which is Markdown already."""
    return {f"study-{name}": "\n".join(studies.describe(name)) for name in studies.STUDIES}


# The rule is stated once in docs/STUDIES.md (the block `verdict-rule`); each result block
# points to it. Each report (results.md) states it in full.
RULE_POINTER = ("Each claim is tested at each budget and judged by the rule of \"How a verdict "
                "is reached\" above (lab/verdicts.py).")


def result_blocks():
    """One block per committed study, `results-NAME`: the tables of docs/studies/NAME/results.json
    (report.tables_markdown), the files `python compare.py --collect --out docs/studies/NAME`
    rebuilds from the runs' files kept beside it."""
    from lab import report, studies_figure

    out = {}
    for name, results in studies_figure.each_results(os.path.join(os.path.dirname(DOC),
                                                                   "studies")):
        lines = [results["setup"][0], "", results["setup"][-1], ""]
        lines += report.tables_markdown(results["arms"], results.get("claims") or [],
                                        results.get("ranking"), level="####",
                                        images=f"studies/{name}/",
                                        settled=results.get("verdicts"), rule=RULE_POINTER)
        out[f"results-{name}"] = "\n".join(lines).rstrip()
    return out


def rule_block():
    """`verdict-rule`: the one rule every verdict follows (lab/verdicts.py), and what counts."""
    from lab import report, verdicts

    return {"verdict-rule": "\n".join(studies.wrap(verdicts.RULE) + [""] + studies.wrap(
        report.COUNTING_RULE + " Each arm shows its counted / started runs. Every verdict names "
        "the training budget (steps) it was measured at."))}


def figure_block():
    """`studies-figure`: the picture of every committed study (lab/studies_figure.py) and where
    each panel comes from; main() draws the image itself."""
    from lab import studies_figure

    found = studies_figure.committed_results(os.path.join(os.path.dirname(DOC), "studies"))
    return {"studies-figure": "\n".join(
        [f"![each study's arms ranked against training steps]({studies_figure.IMAGE})", ""]
        + studies.wrap(studies_figure.caption(found)))}


BLOCKS = [step_seconds_block, rule_block, study_blocks, result_blocks, figure_block]


def blocks():
    """{KEY: Markdown text} of every function of BLOCKS; a KEY given twice is an error."""
    out = {}
    for make in BLOCKS:
        for key, text in make().items():
            if key in out:
                raise ValueError(f"two generators make the block {key!r}")
            out[key] = text
    return out


def render(text, texts=None):
    """`text` with the content of every generated block replaced by texts[KEY] (default blocks()).

    Raises ValueError, naming the line, on a marker line whose KEY has no text, an end marker
    without its start, a start marker inside a block, or a block not closed by the end of the
    text: each means a hand edit went wrong, and rewriting past it could delete hand-written text.
    A line that starts like a marker but does not match its exact form is refused too.
    """
    texts = blocks() if texts is None else texts
    out, open_key = [], None
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped.startswith(("<!-- generated", "<!-- end generated")):
            if open_key is None:
                out.append(line)
            continue
        match = MARKER.fullmatch(stripped)
        if not match:
            raise ValueError(f"line {number}: not a marker of the form '<!-- generated: KEY -->' "
                             f"or '<!-- end generated: KEY -->': {line!r}")
        end, key = match.groups()
        if key not in texts:
            raise ValueError(f"line {number}: no generated block is called {key!r}; known: "
                             + ", ".join(sorted(texts)))
        if not end and open_key is None:
            open_key = key
            out += [line, "", texts[key], ""]
        elif end and key == open_key:
            open_key = None
            out.append(line)
        else:
            raise ValueError(f"line {number}: {line!r} inside the block {open_key!r}"
                             if open_key else f"line {number}: {line!r} without its start")
    if open_key is not None:
        raise ValueError(f"the block {open_key!r} is not closed: add "
                         f"'<!-- end generated: {open_key} -->'")
    return "\n".join(out)


def write(path=DOC):
    """Rewrite the generated blocks of the file at `path`; True when its text changed."""
    with open(path, encoding="utf-8") as f:
        old = f.read()
    new = render(old)
    if new != old:
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)
    return new != old


def main(argv=None):
    from lab import studies_figure

    p = argparse.ArgumentParser(description="Rewrite the generated blocks of docs/STUDIES.md "
                                            "from the code and the committed studies, and draw "
                                            "the figure of every study beside it.")
    p.add_argument("path", nargs="?", default=DOC, help="the file (default docs/STUDIES.md)")
    args = p.parse_args(argv)
    changed = write(args.path)
    print(f"{os.path.relpath(args.path)}: {'rewritten' if changed else 'already up to date'}")
    # The figure, from the same committed results, where the document's link points.
    image = os.path.join(os.path.dirname(os.path.abspath(args.path)), studies_figure.IMAGE)
    os.makedirs(os.path.dirname(image), exist_ok=True)
    studies_figure.plot(studies_figure.committed_results(
        os.path.join(os.path.dirname(DOC), "studies")), image)
    print(f"{os.path.relpath(image)}: drawn")
    return 0


if __name__ == "__main__":
    run_script(main)
