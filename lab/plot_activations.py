"""One figure with every activation of the project and its derivative.

    python -m lab.plot_activations --out runs/activations.png

Each activation is evaluated with activations.make (the code the models use) and differentiated
with tf.GradientTape, in inference mode. The random ones are drawn in training mode too:
- rrelu: x / a for x < 0 with a ~ U(lower, upper): thin lines for the extreme slopes 1/lower and
  1/upper and for a few draws, thick for the inference function x / ((lower + upper) / 2);
- dropact: per element relu(x) with probability p, else x: thin lines for the two functions it
  picks from, thick for the inference function p * relu(x) + (1 - p) * x;
- gaaf-relu / gaaf-tanh: the sawtooth g(x) has height 1/K (K = 10^4 by default), invisible at the
  scale of the other panels, so an extra panel zooms into a few of its periods (x in [0, 4/K])
  and shows gaaf-relu(x) - relu(x) = g(x) * sigmoid(x + shift), with its derivative, for the
  paper's floor variant and the GAAF-Keras round variant.
Activations that take parameters use their defaults (choices.ACTIVATION_PARAMS).
"""

import argparse
import os

from plumbing import tf_logs
from plumbing.errors import run_script

tf_logs.quiet()


def value_and_derivative(fn, x, training=False):
    import tensorflow as tf
    x = tf.constant(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x, training)
    return y.numpy(), tape.gradient(y, x).numpy()


def main(argv=None):
    p = argparse.ArgumentParser(description="Plot every activation and its derivative.")
    p.add_argument("--out", default=os.path.join("runs", "activations.png"),
                   help="PNG file to write (its folder is made if needed)")
    args = p.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    import activations
    from plumbing import choices

    defaults = choices.ACTIVATION_DEFAULTS
    names = list(activations.NAMES)
    panels = names + ["gaaf zoom"]
    cols = 4
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows))
    axes = axes.ravel()
    x = np.linspace(-4, 4, 801).astype(np.float32)
    rng = tf.random.Generator.from_seed(0)
    for ax, name in zip(axes, names):
        act = activations.make(name, 1, rng)  # its own parameters at their defaults
        y, dy = value_and_derivative(act, x)
        if name == "rrelu":
            lo, hi = defaults["rrelu_lower"], defaults["rrelu_upper"]
            for a in (lo, hi):
                ax.plot(x, np.where(x >= 0, x, x / a), color="gray", lw=0.7)
            draws = act(tf.constant(np.tile(x[x < 0], 1)), training=True).numpy()
            ax.scatter(x[x < 0][::20], draws[::20], s=4, color="gray",
                       label=f"training: x/a, a~U({lo:g},{hi:g})")
        if name == "dropact":
            p_keep = defaults["dropact_p"]
            ax.plot(x, np.maximum(x, 0), color="gray", lw=0.7, label=f"training: relu (p={p_keep})")
            ax.plot(x, x, color="gray", lw=0.7, ls=":", label=f"or identity ({1 - p_keep:.2f})")
        ax.plot(x, y, lw=2, label="inference" if name in ("rrelu", "dropact") else name)
        ax.plot(x, dy, lw=1.2, ls="--", label="derivative")
        ax.set_title(name)
        ax.axhline(0, color="black", lw=0.4)
        ax.axvline(0, color="black", lw=0.4)
        ax.set_ylim(-2, 4)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="upper left")
    # The sawtooth of GAAF at a zoom where its periods are visible.
    ax = axes[len(names)]
    k = defaults["gaaf_k"]
    zx = np.linspace(0, 4 / k, 2001).astype(np.float32)
    gaaf = activations.make("gaaf-relu", 1, rng)
    y, dy = value_and_derivative(gaaf, zx)
    ax.plot(zx * k, (y - np.maximum(zx, 0)) * k, lw=1.5,
            label="(gaaf-relu(x) - relu(x)) * K")
    ax.plot(zx * k, dy, lw=1, ls="--", label="derivative of gaaf-relu")
    round_variant = activations.make("gaaf-relu", 1, rng, gaaf_variant="round")
    y, dy = value_and_derivative(round_variant, zx)
    ax.plot(zx * k, (y - np.maximum(zx, 0)) * k, lw=1, label="the same, round variant")
    ax.plot(zx * k, dy, lw=0.8, ls=":", label="its derivative")
    ax.set(title=f"gaaf-relu zoomed: x in [0, 4/K], K={k:g}", xlabel="x * K", ylim=(-1.5, 2.5))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="lower right")
    for ax in axes[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    fig.savefig(args.out, dpi=100)
    plt.close(fig)
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    run_script(main)
