"""The plots of a comparison's report: learning curves, test accuracy per arm, and test accuracy
against the training budget.

Every figure names what it shows and its scale, keeps its legend outside the data, and draws
bands only within the range of what they show (accuracy in [0, 100] %, loss >= 0). An interval
is drawn only where the report shows one (lab/report.py's `shown`: MIN_SEEDS_FOR_INTERVAL seeds or
more).
"""

from lab.stats import MIN_SEEDS_FOR_INTERVAL

# The training loss is drawn on a log axis when the largest loss drawn is more than this many
# times the smallest.
LOSS_SPAN_FOR_LOG = 10


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt
    return plt


def _legend_below(fig, ax, handles_labels=None, columns=2):
    """The legend under the axes, outside the data, with room made for it."""
    handles, labels = handles_labels or ax.get_legend_handles_labels()
    if not handles:
        return
    rows = -(-len(labels) // columns)
    fig.legend(handles, labels, loc="lower center", ncol=columns, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, min(0.5, 0.035 * rows + 0.02), 1, 1))


def _integer_epochs(ax, epochs):
    """Epoch ticks at whole epochs only: every epoch when there are few (a 1-epoch grid gets one
    tick at 1, not 0.96 ... 1.04)."""
    import matplotlib.ticker
    if epochs and max(epochs) <= 12:
        ax.set_xticks(sorted(set(epochs)))
        ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
    else:
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))


def arm_colours(arms):
    """{arm name: colour}, one colour per arm of the report (the arms of one base at several
    budgets share it), the same in every plot."""
    bases = list(dict.fromkeys(a["base"] for a in arms))
    return {a["name"]: f"C{bases.index(a['base']) % 10}" for a in arms}


def plot_curves(arms, path):
    """Per arm: mean over seeds (line) and mean +- std (band, clipped to the range of the
    quantity) of the training loss and the validation accuracy. The loss axis is logarithmic when
    the losses drawn span more than a factor LOSS_SPAN_FOR_LOG (a diverged run's 1e22 would
    flatten every other curve on a linear one), linear otherwise; its label says which. A run
    without a finished epoch has no point to draw: the figure names it."""
    import numpy as np
    plt = _pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    colours, all_epochs, left_out = arm_colours(arms), [], []
    losses = [v for arm in arms for r in arm["runs"] for v in r["curves"]["train_loss"]
              if v is not None and v > 0]
    log_loss = bool(losses) and max(losses) > LOSS_SPAN_FOR_LOG * min(losses)
    for arm in arms:
        runs = [r for r in arm["runs"] if r["curves"]["epoch"]]
        without = [r["seed"] for r in arm["runs"] if not r["curves"]["epoch"]
                   and r["state"] not in ("not started", "not finished")]
        if without and not runs:
            left_out.append(f"{arm['name']} (no finished epoch)")
        elif without:
            left_out.append(f"{arm['name']} seed{'s' if len(without) > 1 else ''} "
                            f"{', '.join(map(str, without))} (no finished epoch)")
        if not runs:
            continue
        length = min(len(r["curves"]["epoch"]) for r in runs)
        epochs = runs[0]["curves"]["epoch"][:length]
        all_epochs += epochs
        for ax, key, scale, top in ((axes[0], "train_loss", 1, np.inf),
                                    (axes[1], "val_accuracy", 100, 100)):
            values = np.array([[np.nan if v is None else scale * v
                                for v in r["curves"][key][:length]] for r in runs])
            mean = values.mean(0)
            line, = ax.plot(epochs, mean, marker="." if length < 15 else None,
                            color=colours[arm["name"]], label=f"{arm['name']} (n={len(runs)})")
            if len(runs) > 1:
                std = values.std(0, ddof=1)
                # On a log axis the band of the loss stops at the smallest loss drawn.
                bottom = min(losses) if key == "train_loss" and log_loss else 0
                ax.fill_between(epochs, np.clip(mean - std, bottom, top),
                                np.clip(mean + std, bottom, top), color=line.get_color(),
                                alpha=0.2)
    if log_loss:
        axes[0].set_yscale("log")
    axes[0].set(xlabel="epoch", ylabel="training loss (cross-entropy, "
                f"{'log' if log_loss else 'linear'} scale)",
                title="training loss: mean over seeds, band ± 1 std")
    axes[1].set(xlabel="epoch", ylabel="validation accuracy %",
                title="validation accuracy: mean over seeds, band ± 1 std")
    for ax in axes:
        ax.grid(alpha=0.3)
        _integer_epochs(ax, all_epochs)
    if left_out:
        fig.suptitle("not drawn: " + "; ".join(left_out), fontsize=8)
    _legend_below(fig, axes[1])
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_test(arms, baseline, path):
    """Test accuracy per arm: each counted seed (dots), the mean and its 95% interval (bar); the
    baseline arm marked, and the accuracy of chance as a line."""
    plt = _pyplot()

    fig, ax = plt.subplots(figsize=(8, 1.6 + 0.45 * len(arms)))
    colours = arm_colours(arms)
    for i, arm in enumerate(arms):
        y = len(arms) - 1 - i
        values = [100 * v for v in arm["test_by_seed"].values()]
        ax.scatter(values, [y] * len(values), color="gray", s=14, zorder=2)
        s = arm["test"]
        if s["mean"] is None:
            continue
        color = colours[arm["name"]]
        if s["ci_low"] is not None:  # enough seeds (report.shown)
            ax.errorbar(100 * s["mean"], y, xerr=100 * s["half_width"], fmt="o", color=color,
                        capsize=4, zorder=3)
        else:
            ax.plot(100 * s["mean"], y, "o", color=color)
    chance = next((a["chance"] for a in arms if a["chance"]), None)
    if chance:
        ax.axvline(100 * chance, color="red", lw=1, ls=":", label=f"chance ({100 * chance:g} %)")
    ax.set_yticks(range(len(arms)), [a["name"] + (" (baseline)" if a["base"] == baseline else "")
                                     for a in reversed(arms)], fontsize=8)
    for label, arm in zip(ax.get_yticklabels(), reversed(arms)):
        label.set_color(colours[arm["name"]])
        if arm["base"] == baseline:
            label.set_fontweight("bold")
    ax.set_xlabel("test accuracy % (dots: seeds; point and bar: mean and 95% Student-t "
                  f"interval, {MIN_SEEDS_FOR_INTERVAL} seeds or more)")
    ax.grid(alpha=0.3, axis="x")
    if chance:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_budgets(arms, baseline, path):
    """Test accuracy against training steps (log axis): one line per arm through its means at
    each budget, with the 95% interval as a band (3 seeds or more), clipped to [0, 100] %."""
    import numpy as np
    plt = _pyplot()

    fig, ax = plt.subplots(figsize=(8, 5.5))
    colours, lines, bands = arm_colours(arms), 0, 0
    for base in dict.fromkeys(a["base"] for a in arms):
        points = sorted((a["steps"], a["test"]) for a in arms
                        if a["base"] == base and a["steps"] and a["test"]["mean"] is not None)
        if not points:
            continue
        steps = np.array([p[0] for p in points])
        mean = np.array([100 * p[1]["mean"] for p in points])
        colour, lines = next(colours[a["name"]] for a in arms if a["base"] == base), lines + 1
        line, = ax.plot(steps, mean, marker="o", lw=2.5 if base == baseline else 1.2,
                        color=colour, label=base + (" (baseline)" if base == baseline else ""))
        if all(p[1]["ci_low"] is not None for p in points):  # enough seeds (report.shown)
            low = np.clip([100 * p[1]["ci_low"] for p in points], 0, 100)
            high = np.clip([100 * p[1]["ci_high"] for p in points], 0, 100)
            ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.12)
            bands += 1
    chance = next((a["chance"] for a in arms if a["chance"]), None)
    if chance:
        ax.axhline(100 * chance, color="red", lw=1, ls=":", label=f"chance ({100 * chance:g} %)")
    ax.set_xscale("log")
    budgets = sorted({a["steps"] for a in arms if a["steps"]})
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.minorticks_off()
    ax.set(xlabel="training steps (log scale; each a whole run with its own schedule)",
           ylabel="test accuracy % (mean over seeds)",
           title="test accuracy against the training budget: mean, " + (
               "band = 95% interval" if bands == lines else
               f"band = 95% interval where {MIN_SEEDS_FOR_INTERVAL} seeds or more" if bands else
               f"no band: fewer than {MIN_SEEDS_FOR_INTERVAL} seeds"))
    ax.grid(alpha=0.3)
    _legend_below(fig, ax)
    fig.savefig(path, dpi=110)
    plt.close(fig)
