"""diagnostics.py on constructed cases with known answers, and once on a tiny trained run."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

import activations
from lab import diagnostics
import train
from batch_norm import BatchNorm
from models.layers import Dropout
from activations import Activation


class DropThenBN(tf.Module):
    """x -> inverted dropout (rate r) -> batch norm: Li et al.'s variance-shift arrangement."""

    def __init__(self, rate, channels, decay):
        super().__init__()
        self.drop = Dropout(rate, tf.random.Generator.from_seed(1))
        self.bn = BatchNorm(channels, decay=decay, epsilon=1e-3)

    def __call__(self, x, training):
        return self.bn(self.drop(x, training), training)


def test_variance_shift_of_exact_statistics():
    net = DropThenBN(0.0, 2, 0.99)
    net.bn.moving_variance.assign([2.0, 4.0])
    x = tf.constant([[1.0, 3.0], [-1.0, 5.0]])  # per channel: variance 1 and 1
    [(name, shift)] = diagnostics.variance_shift(net, [x])
    assert name == "bn"
    assert (shift["min"], shift["max"], shift["mean"]) == pytest.approx((0.25, 0.5, 0.375))


def test_variance_shift_of_dropout_before_bn_is_one_minus_rate():
    # Mean-0 input, dropout 0.5 in training: the moving variance learns E[x^2] / (1 - r) = 2,
    # inference sees 1, so the shift is 1 - r = 0.5 (Li et al. 2019, section 3).
    rate, rng = 0.5, np.random.default_rng(0)
    net = DropThenBN(rate, 4, decay=0.9)
    for _ in range(120):  # 0.9^120 = 3e-6 of the initial variance left
        net(tf.constant(rng.normal(size=[4000, 4]), tf.float32), training=True)
    held_out = [tf.constant(rng.normal(size=[20000, 4]), tf.float32)]
    [(_, shift)] = diagnostics.variance_shift(net, held_out)
    assert shift["mean"] == pytest.approx(1 - rate, abs=0.02)
    assert shift["min"] > 0.45 and shift["max"] < 0.55


class ReluOnly(tf.Module):
    def __init__(self):
        super().__init__()
        self.act = Activation(activations.relu)

    def __call__(self, x, training):
        return self.act(x, training)


def test_activation_mean_spread_and_dead_units():
    rng = np.random.default_rng(2)
    x = rng.normal(size=[50, 4, 4, 4]).astype(np.float32)
    x[..., 0] = -np.abs(x[..., 0]) - 0.1  # channel 0 never fires: dead
    [(name, s)] = diagnostics.activation_stats(ReluOnly(), [tf.constant(x[:25]),
                                                            tf.constant(x[25:])])
    y = np.maximum(x, 0).astype(np.float64)
    assert name == "act" and s["units"] == 4
    assert s["dead_fraction"] == 0.25
    assert s["mean"] == pytest.approx(y.mean(), rel=1e-9)
    assert s["std"] == pytest.approx(y.std(), rel=1e-6)
    assert (s["min"], s["max"]) == (0.0, pytest.approx(y.max(), rel=1e-6))


class ReluThenElu(tf.Module):
    """relu(x), then elu(relu(x) - 1): outputs in [0, inf), then in [1/e - 1, inf)."""

    def __init__(self):
        super().__init__()
        self.acts = [Activation(activations.relu), Activation(activations.make("elu", 8, None))]

    def __call__(self, x, training):
        return self.acts[1](self.acts[0](x, training) - 1, training)


def kept_figures(monkeypatch):
    """The figures diagnostics.plot closes, kept for inspection instead."""
    import matplotlib.pyplot as plt
    kept = []
    monkeypatch.setattr(plt, "close", kept.append)
    return kept


def test_bias_shift_band_stays_within_the_outputs_range(tmp_path, monkeypatch):
    """The band was mean ± std, below 0 for a ReLU layer whose outputs are never negative."""
    x = tf.constant(np.random.default_rng(3).normal(size=[40, 4, 4, 8]), tf.float32)
    stats = diagnostics.activation_stats(ReluThenElu(), [x])
    relu = stats[0][1]
    assert relu["min"] == 0 and relu["mean"] - relu["std"] < 0  # the unclipped band: below 0
    kept = kept_figures(monkeypatch)
    diagnostics.plot([dict(logdir="exp/act-relu_bn-off/seed-0", act="relu", bn=False,
                           split="val", activations=stats)], str(tmp_path))
    (fig,) = kept  # without batch norm: bias_shift.png alone
    top = fig.axes[0]
    assert "clipped to [min, max]" in top.get_ylabel()
    [band] = top.collections
    edges = band.get_paths()[0].vertices  # [points, (layer, value)]: both edges of the band
    for layer, (_, s) in enumerate(stats):
        values = edges[np.isclose(edges[:, 0], layer), 1]
        assert values.min() == pytest.approx(max(s["mean"] - s["std"], s["min"]))
        assert s["min"] <= values.min() and values.max() <= s["max"]


def test_plot_legends_are_outside_the_data(tmp_path, monkeypatch):
    """The variance-shift legend (and the bias-shift ones) covered the curves."""
    layers = [(f"bns/{i}", dict(mean=m)) for i, m in enumerate([0.5, 0.7, 1.2])]
    acts = [(f"acts/{i}", dict(mean=0.5, std=0.3, min=0.0, max=2.0, dead_fraction=0.0))
            for i in range(3)]
    results = [dict(logdir=f"exp/act-relu_bn-on/seed-{seed}", act="relu", bn=True, split="val",
                    activations=acts, variance_shift=layers, variance_shift_after=layers,
                    accuracy_before=0.1, accuracy_after_recompute=0.3, recompute_images=200)
               for seed in (0, 1)]
    kept = kept_figures(monkeypatch)
    diagnostics.plot(results, str(tmp_path))
    bias, variance = kept
    assert [t.get_text() for t in variance.legends[0].get_texts()] == [
        "act-relu_bn-on/seed-0 (relu, BN): acc 10.0%",
        "  recomputed on 200 training images: acc 30.0%",
        "act-relu_bn-on/seed-1 (relu, BN): acc 10.0%",
        "  recomputed on 200 training images: acc 30.0%"]
    for fig in (bias, variance):
        [legend] = fig.legends
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes:
            assert ax.get_legend() is None
            assert not legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))


def test_plot_labels_name_the_arm_of_a_compare_run(tmp_path, monkeypatch):
    run = dict(act="elu", bn=True)
    assert diagnostics.label(dict(run, logdir="exp/act-elu_bn-on/seed-0/")) == \
        "act-elu_bn-on/seed-0 (elu, BN)"
    assert diagnostics.label(dict(run, logdir="runs/mine", bn=False)) == "mine (elu)"
    # eval.py's run_name: the same name as eval.py's plots, also for `--logdir .` in a run
    (tmp_path / "act-elu_bn-on" / "seed-0").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "act-elu_bn-on" / "seed-0")
    assert diagnostics.label(dict(run, logdir=".")) == "act-elu_bn-on/seed-0 (elu, BN)"


def test_short_run_share_of_initial_value():
    assert diagnostics.initial_share_left(0.99, 14) == pytest.approx(0.8687, abs=1e-4)
    assert diagnostics.initial_share_left(0.99, 100) == pytest.approx(0.366, abs=1e-3)


def test_command_on_a_short_bn_run(tmp_path):
    logdir = str(tmp_path / "run")
    assert train.main(["--dataset", "cifar10-sample", "--model", "cnn", "--bn",
                       "--dropout", "dropout", "--order", "conv-drop-bn-act-pool", "--epochs",
                       "1", "--max-steps", "4", "--batch-size", "50", "--val-fraction", "0.1",
                       "--checkpoint-every", "0", "--no-histograms", "--logdir", logdir]) == 0
    assert diagnostics.main(["--logdir", logdir, "--images", "100", "--recompute-images",
                             "200"]) == 0
    with open(os.path.join(logdir, "diagnostics.json")) as f:
        [r] = json.load(f)
    assert r["step"] == 4 and r["initial_share_left"] == pytest.approx(0.99 ** 4)
    assert [name for name, _ in r["variance_shift"]] == ["bns/0", "bns/1", "bns/2", "bns/3",
                                                         "bn_dense"]
    assert len(r["activations"]) == 5 and 0 <= r["accuracy_after_recompute"] <= 1
    for png in ("bias_shift.png", "variance_shift.png"):
        assert os.path.getsize(os.path.join(logdir, png)) > 0

    # eval.py --recompute-bn-stats: the test accuracy of the model with recomputed statistics,
    # written beside (not over) the plain evaluation.
    import eval as evaluate
    assert evaluate.main(["--logdir", logdir, "--recompute-bn-stats"]) == 0
    with open(os.path.join(logdir, "eval-test-last-bnrecomputed.json")) as f:
        recomputed = json.load(f)
    model, config, _, _ = evaluate.restore_model(logdir)
    moving_before = model.bns[0].moving_variance.numpy()
    evaluate.recompute_on_training_images(model, config)
    assert not np.allclose(moving_before, model.bns[0].moving_variance.numpy())
    splits = evaluate.load_splits(config)
    x, y = splits["test"]
    expected = diagnostics.accuracy(model, evaluate.normalized_batches(x, config), y)
    assert recomputed["top1"] == pytest.approx(expected, abs=1e-9)
    assert not os.path.exists(os.path.join(logdir, "eval-test-last.json"))


def test_plot_activations_derivatives_and_figure(tmp_path):
    from lab import plot_activations
    x = np.linspace(-3, 3, 61).astype(np.float32)
    y, dy = plot_activations.value_and_derivative(activations.make("elu", 1, None), x)
    np.testing.assert_allclose(dy, np.where(x > 0, 1.0, np.exp(x)), rtol=1e-5)  # ELU'
    gaaf = activations.make("gaaf-relu", 1, None)
    y, dy = plot_activations.value_and_derivative(gaaf, np.float32([0.5]))
    assert dy[0] == pytest.approx(1 + 1 / (1 + np.exp(-4.5)), rel=1e-5)  # relu' + g' s(x)
    out = str(tmp_path / "acts.png")
    assert plot_activations.main(["--out", out]) == 0 and os.path.getsize(out) > 10000
