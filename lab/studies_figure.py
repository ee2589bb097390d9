"""One picture of every study: each arm's rank against training steps, from the committed results.

    python -m lab.studies_doc      # rewrites docs/STUDIES.md's generated blocks and this figure

For each study of lab/studies.py, the committed folder docs/studies/NAME-SCALE whose results.json
has the most budgets (its budgets scale once committed, else its quick scale) gives, per budget,
the mean test accuracy of each arm over its counted seeds and the arms' ranks (1 = the highest
mean; ties share the average rank, `verdicts.ranks`). One panel per study: rank against steps
(log axis), one line per arm; a study with one budget shows as points at its single step count,
and its panel says so. Lines that cross between the two longest budgets are orderings that have
not settled.

TensorFlow-free; matplotlib only to draw.
"""

import json
import os

from lab import studies, verdicts

FOLDER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                      "studies")
# Where docs/STUDIES.md shows it (relative to docs/).
IMAGE = os.path.join("img", "studies-ranks.png")


def each_results(folder=FOLDER):
    """(folder name, its results.json) of every study folder under `folder`, in name order."""
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name, "results.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                yield name, json.load(f)


def committed_results(folder=FOLDER):
    """{study: (folder name, results.json)} of the committed studies: per study the folder with
    the most budgets (a budgets scale over a quick one); studies in lab/studies.py's order."""
    found = {}
    for name, results in each_results(folder):
        study = results.get("study")
        if study not in studies.STUDIES:
            continue
        budgets = len(results.get("budgets") or []) or 1
        if study not in found or budgets > found[study][0]:
            found[study] = (budgets, name, results)
    return {s: found[s][1:] for s in studies.STUDIES if s in found}


def figure_data(results):
    """What one panel shows, from a results.json: {"steps": [steps of each budget, increasing],
    "arms": {arm: [(steps, rank, mean test accuracy), ...]}} with the ranks of the arms' means
    at each budget (`verdicts.ranks`); arms without a counted run at a budget are left out
    there."""
    by_steps = {}
    for arm in results["arms"]:
        if arm["steps"] and arm["test"]["mean"] is not None:
            by_steps.setdefault(arm["steps"], {})[arm["base"]] = arm["test"]["mean"]
    out = {"steps": sorted(by_steps), "arms": {}}
    for steps in out["steps"]:
        ranks = verdicts.ranks(by_steps[steps])
        for base, mean in by_steps[steps].items():
            out["arms"].setdefault(base, []).append((steps, ranks[base], mean))
    return out


def caption(found):
    """The Markdown under the figure: which folder each panel comes from, at which steps."""
    parts = []
    for study, (name, results) in found.items():
        steps = figure_data(results)["steps"]
        when = (f"one budget, {steps[0]} steps" if len(steps) == 1 else
                "budgets of " + ", ".join(str(s) for s in steps) + " steps")
        parts.append(f"{study}: [`docs/studies/{name}`](studies/{name}/results.md) "
                     f"({results.get('scale')} scale; {when})")
    return ("Rank of each arm's mean test accuracy (1 = the highest) against training steps "
            "(log axis), one panel per study, drawn by `python -m lab.studies_doc` "
            "(`lab/studies_figure.py`) from the committed results: " + "; ".join(parts) + ". "
            "A rank is an order of means, not a difference: the tables beside each study say "
            "which differences are within noise.")


def plot(found, path):
    """The figure of `found` (committed_results()) at `path`: a 2-column grid of panels."""
    import matplotlib
    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    names = list(found)
    # One step axis for every panel, so that the studies' lengths compare at a glance.
    every = [n for _, results in found.values() for n in figure_data(results)["steps"]] or [1]
    span = (min(every) / 1.5, max(every) * 1.5)
    rows = max(1, -(-len(names) // 2))
    fig, axes = plt.subplots(rows, 2, figsize=(13, 6.2 * rows), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax, study in zip(axes.flat, names):
        folder, results = found[study]
        data = figure_data(results)
        steps = data["steps"]
        longest = steps[-1] if steps else None
        for base, points in data["arms"].items():
            x = [p[0] for p in points]
            y = [p[1] for p in points]
            at_longest = next((p[2] for p in points if p[0] == longest), None)
            label = base + ("" if at_longest is None else f"  ({100 * at_longest:.1f} % at "
                            f"{longest} steps)")
            if base == results.get("baseline"):
                label += "  [baseline]"
            ax.plot(x, y, marker="o", lw=2.2 if base == results.get("baseline") else 1.2,
                    label=label)
        taus = [p["tau"] for p in (results.get("ranking") or {}).get("pairs", [])]
        if len(steps) == 1:
            when = f"one budget, {steps[0]} steps: not settled"
        else:
            when = "Kendall's tau " + ", ".join("-" if t is None else f"{t:+.2f}" for t in taus)
        ax.set_xscale("log")
        ax.set_xlim(*span)
        ax.set_xticks(steps, [str(s) for s in steps])
        ax.minorticks_off()
        n = len(data["arms"])
        ax.set_ylim(n + 0.5, 0.5)  # rank 1 at the top
        ax.set_yticks(range(1, n + 1))
        ax.set(xlabel="training steps (log scale; each budget a whole run)",
               ylabel="rank of the mean test accuracy (1 = best)",
               title=f"{study} ({results.get('scale')} scale, {folder}): {when}")
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=7, frameon=False)
    fig.suptitle("Each study's arms ranked by mean test accuracy against training steps "
                 "(docs/studies/*/results.json)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
