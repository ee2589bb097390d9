"""Why an arm wins: variance shift, recomputed batch-norm statistics, bias shift, dead units.

    python -m lab.diagnostics --logdir runs/a runs/b           # held-out = the validation split
    python -m lab.diagnostics --logdir runs/a --split test --images 2000 --out diag/

Every figure is measured in inference mode (moving batch-norm statistics, no dropout, the
expectation of random activations) on held-out images, by recording what each BatchNorm layer
receives and what each activation returns during ordinary forward passes.

Variance shift (Li et al. 2019, "Understanding the disharmony between dropout and batch
normalization by variance shift", arXiv 1801.05134). During training a BatchNorm layer averages
the variance of its input *with dropout on*; at inference dropout is off and its input has another
variance. Per layer and channel c:

    shift_c = Var_inference[x_c] / moving_variance_c          (1 = no shift)

With inverted dropout of rate r right before the layer and an input of mean 0, training sees
Var[x m / (1 - r)] = E[x^2] / (1 - r), so the shift is 1 - r (the paper's section 3).

Recomputing the statistics (the remedy of the paper's section 5, and of short runs below): after
training, set every layer's moving mean and variance to the exact mean and variance of its input
in inference mode over a set of images. Layers are done in the order the forward pass calls them,
each with the earlier layers already recomputed, so afterwards every layer's statistics are those
of the input it receives at inference (`recompute_bn_stats`, also `eval.py --recompute-bn-stats`).

Short runs. The moving averages start at mean 0 and variance 1 and follow
ema = decay * ema + (1 - decay) * batch_stat: after S steps a fraction decay^S of the initial
value is left (decay 0.99: 0.99^14 = 87% after 14 steps, 37% after 100). A BN run of a few
dozen steps is then evaluated with statistics that are mostly the initial ones, and its test
accuracy is poor although training accuracy is fine: the variance shift shows it (ratios far
from 1), and recomputing the statistics removes it.

Bias shift (Clevert et al. 2015, "Fast and accurate deep network learning by exponential linear
units", arXiv 1511.07289): units whose outputs have a non-zero mean shift the input of the next
layer; ReLU's outputs are never negative, ELU's can be. Per activation layer: the mean, the
standard deviation, the minimum and the maximum of its outputs over all held-out images, positions
and channels, and the share of dead units: channels whose output is exactly 0 at every position of
every held-out image (ReLU's dead units; ELU and PReLU cannot die this way). The plot's band is
mean ± std clipped to [min, max]: a ReLU layer's mean - std is often below 0, a value its outputs
never take.
"""

import argparse
import json
import os

from models.probes import bn_input_moments, call_order, named, recording
from plumbing import tf_logs
from plumbing.errors import UserError, run_script
from plumbing.health import initial_share_left
from plumbing.help_format import HelpFormatter

tf_logs.quiet()

# --------------------------------------------------------------------------------------------------
# What batch norm receives and what the activations return (probes: models/probes.py)
# --------------------------------------------------------------------------------------------------

def variance_shift(model, batches):
    """[(layer, {mean, min, max} over channels of Var_inference[x_c] / moving_variance_c})]."""
    import numpy as np
    from batch_norm import BatchNorm

    batches = list(batches)
    names = named(model, BatchNorm)
    moments = bn_input_moments(model, batches)
    out = []
    for m in call_order(model, BatchNorm, batches[0]):
        ratio = moments[m].variance() / np.asarray(m.moving_variance.numpy(), np.float64)
        mean_gap = moments[m].mean() - np.asarray(m.moving_mean.numpy(), np.float64)
        out.append((names[id(m)], dict(mean=float(ratio.mean()), min=float(ratio.min()),
                                        max=float(ratio.max()),
                                        mean_abs_mean_gap=float(np.abs(mean_gap).mean()))))
    return out


def activation_stats(model, batches):
    """[(layer, {mean, std, min, max, dead_fraction, units})] of every activation's output, in
    call order; all but units and dead_fraction over every image, position and channel."""
    import numpy as np
    from activations import Activation

    batches = list(batches)
    names = named(model, Activation)
    acc = {}

    def record(m, x, y):
        y = np.asarray(y, np.float64)
        axis = 1 if y.ndim == 4 and getattr(model, "data_format", "NHWC") == "NCHW" else -1
        per_channel = np.moveaxis(y, axis, -1).reshape(-1, y.shape[axis])  # [values, C]
        a = acc.setdefault(m, dict(n=0, sum=0.0, sumsq=0.0, min=np.inf, max=-np.inf,
                                   alive=np.zeros(y.shape[axis], bool)))
        a["n"] += per_channel.size
        a["sum"] += per_channel.sum()
        a["sumsq"] += (per_channel ** 2).sum()
        a["min"] = min(a["min"], per_channel.min())
        a["max"] = max(a["max"], per_channel.max())
        a["alive"] |= (per_channel != 0).any(0)

    with recording(Activation, record):
        for batch in batches:
            model(batch, training=False)
    out = []
    for m in call_order(model, Activation, batches[0]):
        a = acc[m]
        mean = a["sum"] / a["n"]
        out.append((names[id(m)], dict(mean=float(mean),
                                        std=float(np.sqrt(max(a["sumsq"] / a["n"] - mean ** 2,
                                                              0.0))),
                                        min=float(a["min"]), max=float(a["max"]),
                                        dead_fraction=float(1 - a["alive"].mean()),
                                        units=int(a["alive"].size))))
    return out


# --------------------------------------------------------------------------------------------------
# The command: every diagnostic of one or more log directories, with plots
# --------------------------------------------------------------------------------------------------

def accuracy(model, batches, labels):
    import numpy as np
    predicted = np.concatenate([np.argmax(model(b, training=False).numpy(), 1) for b in batches])
    return float((predicted == np.asarray(labels)).mean())


def diagnose(logdir, split="val", images=2000, recompute_images=5000, best=False, data_dir=None):
    """Every diagnostic of one run; the model's statistics are recomputed last (on a copy)."""
    import eval as evaluate  # the command this tool builds on (eval.py never imports lab/)

    model, config, checkpoint, step = evaluate.restore_model(logdir, best=best)
    splits = evaluate.load_splits(config, data_dir)
    if splits[split] is None:
        raise UserError(f"{logdir!r} has no validation split; use --split test")
    x, y = evaluate.subset(*splits[split], images)
    held_out = evaluate.normalized_batches(x, config)
    result = dict(logdir=logdir, checkpoint=checkpoint, step=step, split=split,
                  images=int(len(y)), act=config["act"], bn=config["bn"],
                  activations=activation_stats(model, held_out))
    if config["bn"]:
        decay = config["model_config"]["bn_decay"]
        result["initial_share_left"] = initial_share_left(decay, step)
        result["variance_shift"] = variance_shift(model, held_out)
        result["accuracy_before"] = accuracy(model, held_out, y)
        result["recompute_images"] = evaluate.recompute_on_training_images(model, config,
                                                                  recompute_images, data_dir)
        result["accuracy_after_recompute"] = accuracy(model, held_out, y)
        result["variance_shift_after"] = variance_shift(model, held_out)
    return result


def label(result):
    """A run's name in the plots: eval.py's run_name (the arm and seed of compare.py's
    <arm>/seed-<s>, else the folder), then its activation and whether it has batch norm."""
    import eval as evaluate

    name = evaluate.run_name(result["logdir"])
    return f"{name} ({result['act']}" + (", BN)" if result["bn"] else ")")


def plot(results, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    import numpy as np

    def layer_ticks(ax, names):
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)

    # Bias shift: mean and spread of each activation layer's output, and the dead units. The
    # legend sits right of the plots (layout "constrained" makes room), never over a curve.
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 7), layout="constrained")
    for r in results:
        stats = [s for _, s in r["activations"]]
        layers = np.arange(len(stats))
        mean = np.array([s["mean"] for s in stats])
        std = np.array([s["std"] for s in stats])
        line, = top.plot(layers, mean, marker=".", label=label(r))
        # mean ± std, but no lower than any output was (0 for ReLU) nor higher
        top.fill_between(layers, np.maximum(mean - std, [s["min"] for s in stats]),
                         np.minimum(mean + std, [s["max"] for s in stats]),
                         color=line.get_color(), alpha=0.12)
        bottom.plot(layers, [100 * s["dead_fraction"] for s in stats], marker=".",
                    color=line.get_color())
    top.axhline(0, color="black", lw=0.6)
    top.set(ylabel="activation output: mean\n(band ± std, clipped to [min, max])",
            title=f"bias shift per activation layer ({results[0]['split']} images)")
    bottom.set(xlabel="activation layer (forward order)", ylabel="dead units %")
    names = [name for name, _ in results[0]["activations"]]
    layer_ticks(top, names)
    layer_ticks(bottom, names)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    fig.legend(loc="outside right upper", fontsize=7)
    fig.savefig(os.path.join(out, "bias_shift.png"), dpi=110)
    plt.close(fig)

    with_bn = [r for r in results if "variance_shift" in r]
    if with_bn:
        fig, ax = plt.subplots(figsize=(12, 4), layout="constrained")
        for r in with_bn:
            ratios = [s["mean"] for _, s in r["variance_shift"]]
            line, = ax.plot(ratios, marker="o", label=f"{label(r)}: acc "
                            f"{100 * r['accuracy_before']:.1f}%")
            ax.plot([s["mean"] for _, s in r["variance_shift_after"]], marker="x", ls="--",
                    color=line.get_color(), label=f"  recomputed on {r['recompute_images']:,} "
                    f"training images: acc {100 * r['accuracy_after_recompute']:.1f}%")
        ax.axhline(1, color="black", lw=0.6)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%.2g"))
        layer_ticks(ax, [name for name, _ in with_bn[0]["variance_shift"]])
        ax.set(xlabel="batch-norm layer (forward order)",
               ylabel="Var_inference[x] / moving variance",
               title="variance shift per BN layer (mean over channels); 1 = no shift")
        ax.grid(alpha=0.3, which="both")
        fig.legend(loc="outside right upper", fontsize=7)
        fig.savefig(os.path.join(out, "variance_shift.png"), dpi=110)
        plt.close(fig)


def build_parser():
    p = argparse.ArgumentParser(description="Variance shift, recomputed BN statistics, bias shift "
                                            "and dead units of trained runs.",
                                formatter_class=HelpFormatter)
    p.add_argument("--logdir", nargs="+", required=True, help="log directories of train.py")
    p.add_argument("--split", choices=["val", "test"], default="val", help="held-out images")
    p.add_argument("--images", type=int, default=2000, help="held-out images used")
    p.add_argument("--recompute-images", type=int, default=5000,
                   help="training images (no augmentation) for the recomputed statistics")
    p.add_argument("--best", action="store_true", help="the best-on-validation checkpoint")
    p.add_argument("--data-dir", default=None, help="where the data is (default: as trained)")
    p.add_argument("--out", default=None, help="folder for diagnostics.json and the plots "
                                               "(default: the first log directory)")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.images < 1 or args.recompute_images < 1:
        raise UserError("--images and --recompute-images must be positive")
    results = [diagnose(d, args.split, args.images, args.recompute_images, args.best,
                        args.data_dir) for d in args.logdir]
    out = args.out or args.logdir[0]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "diagnostics.json"), "w") as f:
        json.dump(results, f, indent=1)
    plot(results, out)
    for r in results:
        dead = max((s["dead_fraction"] for _, s in r["activations"]), default=0.0)
        print(f"{r['logdir']}: step {r['step']}, largest dead-unit share {100 * dead:.1f}%, "
              f"mean output per layer " + " ".join(f"{s['mean']:.2f}" for _, s in r["activations"]))
        if "variance_shift" in r:
            print("  variance shift per BN layer: " + " ".join(
                f"{s['mean']:.2f}" for _, s in r["variance_shift"]))
            print(f"  the moving averages still hold {100 * r['initial_share_left']:.1f}% of "
                  f"their initial values; {r['split']} accuracy {100 * r['accuracy_before']:.2f}% "
                  f"-> {100 * r['accuracy_after_recompute']:.2f}% with statistics recomputed on "
                  f"{r['recompute_images']} training images")
    print(f"written: {out}/diagnostics.json, bias_shift.png"
          + (", variance_shift.png" if any("variance_shift" in r for r in results) else ""))
    return 0


if __name__ == "__main__":
    run_script(main)
