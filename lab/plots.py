"""The plots of a comparison's report: learning curves per arm, and test accuracy per arm."""



def plot_curves(arms, path):
    """Per arm: mean over seeds (line) and mean +- std (band) of train loss and val accuracy."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for arm in arms:
        runs = [r for r in arm["runs"] if r["curves"]["epoch"]]
        if not runs:
            continue
        length = min(len(r["curves"]["epoch"]) for r in runs)
        epochs = runs[0]["curves"]["epoch"][:length]
        for ax, key, scale in ((axes[0], "train_loss", 1), (axes[1], "val_accuracy", 100)):
            values = np.array([[np.nan if v is None else scale * v
                                for v in r["curves"][key][:length]] for r in runs])
            mean = values.mean(0)
            line, = ax.plot(epochs, mean, marker="." if length < 15 else None,
                            label=f"{arm['name']} (n={len(runs)})")
            if len(runs) > 1:
                std = values.std(0, ddof=1)
                ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(),
                                alpha=0.2)
    axes[0].set(xlabel="epoch", ylabel="training loss (cross-entropy)",
                title="training loss: mean over seeds, band ± 1 std")
    axes[1].set(xlabel="epoch", ylabel="validation accuracy %",
                title="validation accuracy: mean over seeds, band ± 1 std")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)



def plot_test(arms, path):
    """Test accuracy per arm: each seed's run (dots), the mean and its 95% interval (bar)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.45 * len(arms)))
    for i, arm in enumerate(arms):
        y = len(arms) - 1 - i
        values = [100 * v for v in arm["test_by_seed"].values()]
        ax.scatter(values, [y] * len(values), color="gray", s=14, zorder=2)
        s = arm["test"]
        if s["mean"] is None:
            continue
        if s["ci_low"] is not None:
            ax.errorbar(100 * s["mean"], y, xerr=100 * s["half_width"], fmt="o", color="C0",
                        capsize=4, zorder=3)
        else:
            ax.plot(100 * s["mean"], y, "o", color="C0")
    ax.set_yticks(range(len(arms)), [a["name"] for a in reversed(arms)], fontsize=8)
    ax.set_xlabel("test accuracy % (dots: seeds; bar: mean and 95% Student-t interval)")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
