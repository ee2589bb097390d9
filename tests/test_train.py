"""train.py on the bundled sample: learning, checkpoints, resume, flag validation, faults.

The runs are tiny (ResNet-8, 1,000 sample images, batch 100: 10 steps per epoch), a few seconds
each. Slower runs have files of their own, so that `pytest -n 2 --dist loadfile` can give them to
the other worker: All-CNN-C at its defaults in test_train_allcnn.py, the README's first command in
test_readme.py, subprocesses (real signals, kill -9) in test_train_faults.py.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

import activations
import eval as evaluate
import models
import train
from plumbing import command_line, health, summaries
from plumbing.errors import UserError

TINY = ["--dataset", "cifar10-sample", "--model", "resnet", "--depth", "8", "--bn",
        "--batch-size", "100", "--lr", "0.05", "--schedule", "cosine", "--weight-decay", "5e-4",
        "--checkpoint-every", "0", "--no-histograms"]


def metrics_of(logdir):
    with open(os.path.join(logdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def done_line(out):
    return json.loads(next(l for l in out.splitlines() if l.startswith("done: "))[6:])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Three epochs of ResNet-8 on the sample; returns (logdir, printed output)."""
    logdir = str(tmp_path_factory.mktemp("tiny"))
    import io
    import contextlib
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert train.main([a for a in TINY if a != "--no-histograms"] + [
            "--epochs", "3", "--logdir", logdir, "--histograms-every", "2",
            "--progress-every", "1e-9"]) == 0  # a progress line after every step
    return logdir, out.getvalue()


def test_loss_falls_and_every_epoch_is_logged(tiny_run):
    logdir, _ = tiny_run
    rows = metrics_of(logdir)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] - 0.05
    assert rows[0]["train_loss"] < 2.6  # starts near ln(10) = 2.30, not diverging
    assert all(r["images_per_second"] > 0 and 0 <= r["test_accuracy"] <= 1 for r in rows)
    assert rows[-1]["step"] == 30


def test_train_step_traced_once(tiny_run):
    _, out = tiny_run
    summary = done_line(out)
    # lr is a tensor argument and shapes are fixed: one trace for 30 steps over 3 epochs.
    assert summary["train_step_traces"] == 1
    assert summary["eval_step_traces"] == 1


def test_config_records_everything_eval_needs(tiny_run):
    logdir, _ = tiny_run
    with open(os.path.join(logdir, "config.json")) as f:
        config = json.load(f)
    for key in ("tensorflow", "device", "git_commit", "mean", "std", "model_config", "act"):
        assert key in config
    assert config["tensorflow"] == tf.__version__
    assert models.build(**config["model_config"]).config == models.build(
        **config["model_config"]).config


def test_batch_norm_statistics_change_and_are_restored(tiny_run):
    logdir, _ = tiny_run
    latest = tf.train.latest_checkpoint(os.path.join(logdir, "ckpt"))
    reader = tf.train.load_checkpoint(latest)
    names = [n for n, _ in tf.train.list_variables(latest) if "moving_mean" in n]
    assert names, "no batch-norm moving mean in the checkpoint"
    saved = {n: reader.get_tensor(n) for n in names}
    assert any(np.abs(v).max() > 1e-3 for v in saved.values())  # moved away from the zero init
    model, _, _, step = evaluate.restore_model(logdir)
    assert step == 30
    restored = sorted(v.numpy().tolist() for v in model.variables if "moving_mean" in v.name)
    assert restored == sorted(v.tolist() for v in saved.values())


def test_eval_reproduces_the_accuracy_at_the_end_of_training(tiny_run):
    logdir, _ = tiny_run
    assert evaluate.main(["--logdir", logdir]) == 0
    with open(os.path.join(logdir, "eval-test-last.json")) as f:
        result = json.load(f)
    # Same checkpoint, same images, inference mode: equal up to one image of 500 whose argmax a
    # different batch size's float rounding could flip.
    assert abs(result["top1"] - metrics_of(logdir)[-1]["test_accuracy"]) <= 1 / 500
    assert abs(result["loss"] - metrics_of(logdir)[-1]["test_loss"]) < 1e-4
    assert os.path.getsize(os.path.join(logdir, "confusion-test-last.png")) > 1000


def test_tensorboard_has_scalars_and_histograms(tiny_run):
    logdir, _ = tiny_run
    from tensorboard.backend.event_processing import event_accumulator
    acc = event_accumulator.EventAccumulator(os.path.join(logdir, "tb"),
                                             size_guidance={"tensors": 0})
    acc.Reload()
    tags = acc.Tags()["tensors"]
    # Grouped so that train and test overlay in one chart.
    for tag in ("loss/train", "loss/test", "accuracy/train", "accuracy/test", "optimizer/lr"):
        assert tag in tags
    assert [e.step for e in acc.Tensors("loss/train")] == [10, 20, 30]
    # Gradient norms per variable, one value per epoch, finite and positive.
    norms = [t for t in tags if t.startswith("grad_norm/")]
    assert len(norms) == len(summaries.variable_paths(models.build(
        "resnet", 10, depth=8, bn=True))) and any("kernel" in t for t in norms)
    for tag in norms:
        values = [float(tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)]
        assert len(values) == 3 and all(np.isfinite(values)) and all(v > 0 for v in values)
    # Histograms every 2 epochs and after the last: epochs 2 and 3.
    weights = [t for t in tags if t.startswith("weights/")]
    assert weights and any(t.startswith("activations/") for t in tags)
    assert [e.step for e in acc.Tensors(weights[0])] == [20, 30]


def test_same_seed_same_initial_weights_for_every_act():
    reference = None
    for act in activations.NAMES:
        args = train.parse_args(["--model", "resnet", "--depth", "8", "--bn", "--act", act])
        model = models.build(args.model, 10, act=args.act, act_params=train.activation_params(args),
                             bn=True, seed=args.seed, **train.model_options(args))
        kernels = [v.numpy() for v in sorted(model.trainable_variables, key=lambda v: v.name)
                   if "kernel" in v.name]
        if reference is None:
            reference = kernels
        assert len(kernels) == len(reference)
        for a, b in zip(kernels, reference):
            np.testing.assert_array_equal(a, b)


def test_deterministic_resume_is_bit_identical(tmp_path):
    """An interrupted-and-resumed run ends with exactly the weights of an uninterrupted one."""
    # rrelu draws from the run-time generator, so its state must be checkpointed too.
    base = TINY + ["--epochs", "2", "--deterministic", "--act", "rrelu"]
    whole, parts = str(tmp_path / "whole"), str(tmp_path / "parts")
    assert train.main(base + ["--logdir", whole]) == 0
    # Interrupted twice: mid-epoch (step 7) and at an epoch boundary region (step 13).
    assert train.main(base + ["--logdir", parts, "--interrupt-after", "7"]) == 128 + 2
    assert train.main(base + ["--logdir", parts, "--interrupt-after", "6"]) == 128 + 2
    assert train.main(base + ["--logdir", parts]) == 0

    def weights(logdir):
        path = tf.train.latest_checkpoint(os.path.join(logdir, "ckpt"))
        reader = tf.train.load_checkpoint(path)
        return {n: reader.get_tensor(n) for n, _ in tf.train.list_variables(path)
                if n.startswith("model/") or n.startswith("optimizer/")}

    a, b = weights(whole), weights(parts)
    assert a.keys() == b.keys() and len(a) > 20
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert [r["epoch"] for r in metrics_of(parts)] == [1, 2]
    for ra, rb in zip(metrics_of(whole), metrics_of(parts)):
        assert ra["train_loss"] == rb["train_loss"] and ra["test_accuracy"] == rb["test_accuracy"]


def test_changed_architecture_is_refused_with_the_difference(tiny_run, tmp_path):
    logdir = str(tmp_path / "run")
    assert train.main(TINY + ["--epochs", "1", "--max-steps", "2", "--logdir", logdir]) == 0
    with pytest.raises(UserError, match=r"depth: 8 in the log directory, 14 now"):
        train.main([a if a != "8" else "14" for a in TINY] + ["--epochs", "1",
                                                              "--logdir", logdir])
    with pytest.raises(UserError, match=r"act"):
        train.main(TINY + ["--epochs", "1", "--act", "elu", "--logdir", logdir])
    # A speed-only switch (same variables, same numbers) may change between runs.
    assert train.main(TINY + ["--epochs", "1", "--max-steps", "4", "--bn-fused",
                              "--logdir", logdir]) == 0


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    logdir = str(tmp_path / "run")
    assert train.main(TINY + ["--epochs", "2", "--max-steps", "10", "--logdir", logdir]) == 0
    good = tf.train.latest_checkpoint(os.path.join(logdir, "ckpt"))
    before = {n: tf.train.load_checkpoint(good).get_tensor(n)
              for n, _ in tf.train.list_variables(good) if n.startswith("model/")}
    with pytest.raises(UserError, match="non-finite"):
        train.main(TINY + ["--epochs", "2", "--lr", "1e30", "--schedule", "constant",
                           "--no-bn", "--logdir", str(tmp_path / "other")])
    # Resume the good run with an absurd learning rate: it must stop, checkpoint untouched.
    with pytest.raises(UserError, match="non-finite"):
        train.main(TINY + ["--epochs", "2", "--lr", "1e30", "--schedule", "constant",
                           "--change-settings", "--logdir", logdir])
    assert tf.train.latest_checkpoint(os.path.join(logdir, "ckpt")) == good
    reader = tf.train.load_checkpoint(good)
    for n, value in before.items():
        np.testing.assert_array_equal(reader.get_tensor(n), value)
        assert np.all(np.isfinite(value))


@pytest.mark.parametrize("flags, message", [
    (["--act", "rleu"], "invalid choice"),
    (["--batch-size", "0"], "--batch-size must be positive"),
    (["--batch-size", "-5"], "--batch-size must be positive"),
    (["--lr", "0"], "--lr must be a positive"),
    (["--lr", "nan"], "--lr must be a positive"),
    (["--epochs", "0"], "--epochs must be positive"),
    (["--val-fraction", "1.0"], "--val-fraction must be in"),
    (["--val-fraction", "-0.1"], "--val-fraction must be in"),
    (["--labels", "coarse"], "--labels only applies with --dataset cifar100"),
    (["--model", "cnn", "--dropout-rates", "0.2,0.2"], "three rates"),
    (["--act", "dropact", "--dropact-p", "1.5"], "--dropact-p must be in"),
])
def test_invalid_flags_fail_at_parsing(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(flags)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [
    (["--model", "resnet", "--depth", "21"], r"6n\+2"),
    (["--model", "resnet", "--depth", "1001"], "not valid for v1"),
    (["--schedule", "step"], "boundaries"),
    (["--lr-steps", "30,20", "--schedule", "step"], "increasing"),
])
def test_invalid_settings_fail_before_training(flags, message, tmp_path):
    logdir = str(tmp_path / "run")
    with pytest.raises(UserError, match=message):
        train.main(["--dataset", "cifar10-sample", "--logdir", logdir] + flags)
    assert not os.path.exists(os.path.join(logdir, "metrics.jsonl"))


def test_valid_resnet_depths_pass():
    assert train.parse_args(["--model", "resnet", "--depth", "164", "--resnet-version", "2"])
    assert train.parse_args(["--model", "resnet", "--depth", "56"])


def test_recipes_set_their_numbers_and_flags_override():
    args = train.parse_args(["--recipe", "dropact-resnet56"])
    assert (args.model, args.depth, args.act, args.lr, args.lr_steps, args.weight_decay,
            args.padding, args.normalization, args.val_fraction) == \
        ("resnet", 56, "dropact", 0.1, [91, 136, 182], 4e-4, 5, "per-image", 0.2)
    assert train.parse_args(["--recipe", "dropact-resnet56", "--depth", "20"]).depth == 20
    for name in command_line.RECIPES:
        train.parse_args(["--recipe", name])  # every recipe is a valid flag combination


def test_unwritable_logdir_is_refused_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(UserError, match="not writable"):
        train.main(TINY + ["--logdir", str(blocker / "run")])


@pytest.mark.parametrize("flags", [["--precision", "bf16"], ["--xla"], ["--data-format", "NCHW"],
                                   ["--bn-fused"]])
def test_speed_options_train_and_checkpoint(flags, tmp_path):
    """The GPU-minded paths (mixed precision, XLA, NCHW, fused BN) run and learn on the CPU."""
    logdir = str(tmp_path / "run")
    args = TINY + ["--epochs", "1", "--max-steps", "6", "--logdir", logdir] + flags
    if "NCHW" in flags and not tf.config.list_physical_devices("GPU"):
        # TF's CPU kernels have no NCHW filter gradient ("Conv2DCustomBackpropFilterOp only
        # supports NHWC"): refused in one line instead of a TensorFlow traceback mid-run.
        with pytest.raises(UserError, match="NCHW needs a GPU"):
            train.main(args)
        assert not os.path.exists(logdir)
        return
    assert train.main(args) == 0
    rows = metrics_of(logdir)
    assert np.isfinite(rows[-1]["train_loss"]) and rows[-1]["train_loss"] < 3.0


def test_fp16_train_step_with_loss_scaling():
    """fp16 (a GPU option): train.train_step under the loss-scaling wrapper (train.make_steps);
    the CPU emulates fp16, so the batch is tiny."""
    import optimizers
    from loss_scale import DynamicLossScale
    model = models.build("resnet", 10, depth=8, bn=True, compute_dtype="float16")
    scale = DynamicLossScale(initial_scale=2.0 ** 15)
    step = tf.Variable(0, dtype=tf.int64)
    sums = tf.Variable(tf.zeros([3], tf.float64))
    optimizer = optimizers.build("momentum", model.trainable_variables)
    train_step, _ = train.make_steps(model, optimizer, 5e-4, scale, step, sums)
    images = tf.random.stateless_normal([8, 32, 32, 3], seed=[0, 1])
    labels = tf.range(8) % 10
    before = [v.numpy() for v in model.trainable_variables]
    losses = [float(train_step(images, labels, tf.constant(0.05))[0]) for _ in range(3)]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert all(v.dtype == tf.float32 for v in model.trainable_variables)
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(before, model.trainable_variables))
    assert int(step) == 3 and float(scale.scale) in (2.0 ** 15, 2.0 ** 14, 2.0 ** 13)


class SoftmaxRegression(tf.Module):
    """logits = flatten(x) @ kernel + bias: a model small enough to differentiate by hand."""

    def __init__(self, features, classes):
        super().__init__()
        rng = np.random.default_rng(0)
        self.kernel = tf.Variable(rng.normal(0, 0.1, [features, classes]).astype(np.float32),
                                  name="kernel")
        self.bias = tf.Variable(rng.normal(0, 0.1, [classes]).astype(np.float32), name="bias")

    def __call__(self, images, training):
        return tf.matmul(tf.reshape(images, [tf.shape(images)[0], -1]), self.kernel) + self.bias


def test_the_plain_train_step_is_one_sgd_step_on_the_hand_computed_gradient():
    """train.train_step with plain SGD: w <- w - lr * (d mean xent / dw + wd * kernel), the
    gradient of softmax cross-entropy written out in numpy (float64)."""
    import optimizers
    rng = np.random.default_rng(1)
    x = rng.normal(size=[6, 2, 2, 3]).astype(np.float32)
    y = np.array([0, 1, 2, 3, 4, 1], np.int32)
    wd, lr = 0.01, 0.5
    model = SoftmaxRegression(12, 5)
    w, b = model.kernel.numpy().astype(np.float64), model.bias.numpy().astype(np.float64)
    xent, logits = train.train_step(model, optimizers.build("sgd", model.trainable_variables),
                                    wd, tf.constant(x), tf.constant(y), tf.constant(lr))
    # By hand: p = softmax(X W + b), d mean xent / d logits = (p - onehot) / B.
    X = x.reshape(6, -1).astype(np.float64)
    z = X @ w + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = (p - np.eye(5)[y]) / 6
    # Tolerance: float32 arithmetic against float64, values of order 1.
    np.testing.assert_allclose(logits.numpy(), z, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(xent.numpy(), -np.log(p[np.arange(6), y]), rtol=1e-5)
    np.testing.assert_allclose(model.kernel.numpy(), w - lr * (X.T @ dz + wd * w), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(model.bias.numpy(), b - lr * dz.sum(0), rtol=1e-5, atol=1e-6)


def twin_steps(scale=None, steps=2, images=None):
    """A ResNet-8 (seed 3) after `steps` momentum steps of train.train_step: under the wrappers
    (train.make_steps) with DynamicLossScale(`scale`), or plain (scale None) in a tf.function."""
    import optimizers
    from loss_scale import DynamicLossScale
    model = models.build("resnet", 10, depth=8, bn=True, seed=3)
    optimizer = optimizers.build("momentum", model.trainable_variables)
    x = tf.random.stateless_normal([16, 32, 32, 3], seed=[0, 2]) if images is None else images
    labels, lr = tf.range(16) % 10, tf.constant(0.1)
    counters = {"step": tf.Variable(0, dtype=tf.int64), "epoch_sums": tf.Variable(
        tf.zeros([3], tf.float64)), "bad_step": tf.Variable(-1, dtype=tf.int64)}
    if scale is None:
        step = tf.function(lambda: train.train_step(model, optimizer, 5e-4, x, labels, lr))
    else:
        loss_scale = DynamicLossScale(initial_scale=scale, growth_interval=2 ** 62)
        wrapped, _ = train.make_steps(model, optimizer, 5e-4, loss_scale, counters["step"],
                                      counters["epoch_sums"], bad_step=counters["bad_step"])
        step = lambda: wrapped(x, labels, lr)  # noqa: E731
        counters.update(traces=wrapped, loss_scale=loss_scale)
    out = [step() for _ in range(steps)]
    return model, counters, out


def test_the_wrapped_step_on_one_device_computes_what_the_plain_step_computes():
    plain, _, plain_out = twin_steps()
    wrapped, counters, wrapped_out = twin_steps(scale=1.0)
    for a, b in zip(plain.variables, wrapped.variables):  # weights and moving averages
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)
    # The counters: 2 steps of 16 images; the epoch's loss sum is that of the per-image losses.
    xent_sum = sum(float(tf.reduce_sum(xent)) for xent, _ in plain_out)
    sums = counters["epoch_sums"].numpy()
    assert int(counters["step"]) == 2 and sums[2] == 32 and int(counters["bad_step"]) == -1
    np.testing.assert_allclose(sums[0], xent_sum, rtol=1e-6)
    assert float(wrapped_out[-1][0]) == pytest.approx(float(tf.reduce_mean(plain_out[-1][0])))
    assert counters["traces"].experimental_get_tracing_count() == 1


def test_loss_scaling_by_a_power_of_two_changes_no_weight():
    """S = 2^10 multiplies every gradient of the backward pass by 2^10 and the unscaling divides
    it out: only exponents move, so an fp32 model's weights are bit for bit those of S = 1."""
    one, _, _ = twin_steps(scale=1.0)
    scaled, _, _ = twin_steps(scale=2.0 ** 10)
    for a, b in zip(one.variables, scaled.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)


def test_the_guard_changes_no_weight_on_a_non_finite_step():
    """A NaN batch at S = 1: no weight changes, `bad_step` is that step and the step says stop.
    Gradients that overflow once scaled (S = 2^125, a finite loss): the step is skipped, S
    halved, and the run goes on."""
    import optimizers
    from loss_scale import DynamicLossScale
    untouched, _, _ = twin_steps(steps=0)
    model, counters, out = twin_steps(scale=1.0, steps=1,
                                      images=tf.fill([16, 32, 32, 3], float("nan")))
    for a, b in zip(untouched.trainable_variables, model.trainable_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)
    assert int(counters["bad_step"]) == 1 and not bool(out[0][1])

    model = SoftmaxRegression(12, 5)
    before = [v.numpy() for v in model.trainable_variables]
    scale = DynamicLossScale(initial_scale=2.0 ** 125)
    bad_step = tf.Variable(-1, dtype=tf.int64)
    wrapped, _ = train.make_steps(model, optimizers.build("sgd", model.trainable_variables), 0.0,
                                  scale, tf.Variable(0, dtype=tf.int64),
                                  tf.Variable(tf.zeros([3], tf.float64)), bad_step=bad_step)
    # Inputs of 1e4: kernel gradients of order 1e3, times 2^125 (4e37): inf in float32.
    xent, keep_going = wrapped(tf.fill([4, 2, 2, 3], 1e4), tf.range(4), tf.constant(0.1))
    assert np.isfinite(float(xent)) and bool(keep_going) and int(bad_step) == -1
    assert float(scale.scale) == 2.0 ** 124
    for a, b in zip(before, model.trainable_variables):
        np.testing.assert_array_equal(a, b.numpy())


def test_help_is_quiet_and_imports_no_tensorflow():
    """--help parses and prints without importing TensorFlow (instant, no start-up lines)."""
    import subprocess
    import sys
    code = ("import sys, contextlib, io\n"
            "sys.argv = ['train.py', '--help']\n"
            "import train\n"
            "out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out):\n"
            "    try:\n"
            "        train.parse_args()\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print('tensorflow' in sys.modules, len(out.getvalue()))\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                          timeout=60)
    imported, length = proc.stdout.split()
    assert imported == "False" and int(length) > 1000, proc.stderr
    assert proc.stderr == ""
    # Parsing a full command line does not import it either.
    proc = subprocess.run([sys.executable, "-c", "import sys, train; train.parse_args("
                           "['--act', 'elu', '--bn', '--model', 'resnet', '--depth', '56']); "
                           "print('tensorflow' in sys.modules)"], cwd=root, capture_output=True,
                          text=True, timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr


def test_help_names_each_recipe_with_its_description(capsys):
    from plumbing import recipes
    with pytest.raises(SystemExit):
        train.parse_args(["--help"])
    out = capsys.readouterr().out
    assert "(default: None)" not in out and "(default: )" not in out
    out = "".join(out.split())  # argparse wraps lines, also after a hyphen
    for name, text in recipes.DESCRIPTIONS.items():
        assert "".join(f"{name}: {text}".split()) in out
    assert "conv,bn,act,pool,drop" in out


def test_mistyped_choice_is_one_line_with_a_suggestion(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(["--act", "rleu"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "did you mean relu?" in err


def test_data_dir_default_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("CIFAR_DATA_DIR", raising=False)
    assert train.parse_args([]).data_dir == "data"
    monkeypatch.setenv("CIFAR_DATA_DIR", "/somewhere/cifar")
    assert train.parse_args([]).data_dir == "/somewhere/cifar"
    assert train.parse_args(["--data-dir", "x"]).data_dir == "x"


# ---- Issue 11: nothing silently ignored, settings that fit, honest output ----------------------

@pytest.mark.parametrize("flags, message", [
    (["--depth", "56", "--resnet-version", "2"], "--depth is an option of --model resnet"),
    (["--order", "conv-act-bn-pool-drop"], "--order is an option of --model cnn"),
    (["--dropout-rates", "0.1,0.1,0.1"], "--dropout-rates is an option of --model cnn"),
    (["--model", "resnet", "--dropout", "none"], "--dropout is an option of --model allcnn and cnn"),
    (["--dropout", "spatial"], "--dropout spatial is an option of --model cnn"),
    (["--leak", "0.1"], "--leak applies to --act lrelu"),
    (["--act", "elu", "--dropact-p", "0.9"], "--dropact-p applies to --act dropact"),
    (["--bn-decay", "0.9"], "--bn-decay only applies with --bn"),
    (["--bn-fused"], "--bn-fused only applies with --bn"),
    (["--lr-steps", "10"], "--lr-steps only applies with --schedule step"),
    (["--optimizer", "adam", "--momentum", "0.8"], "--momentum only applies with --optimizer"),
    (["--no-augment", "--padding", "2"], "--padding only applies with --augment"),
])
def test_flags_that_would_be_ignored_are_refused(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(flags)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_recipe_values_are_not_refused_and_applicable_flags_pass():
    # The recipe sets batch-norm settings; --no-bn on the command line switches BN off.
    args = train.parse_args(["--recipe", "blog-allcnn", "--no-bn", "--act", "relu"])
    assert not args.bn
    assert train.parse_args(["--model", "resnet", "--depth", "56", "--resnet-version", "2"])
    assert train.parse_args(["--model", "cnn", "--order", "conv-act-bn-pool-drop",
                             "--dropout", "spatial", "--bn", "--bn-decay", "0.9"])
    assert train.parse_args(["--act", "lrelu", "--leak", "0.1"]).leak == 0.1


def test_training_defaults_come_from_choices_per_model():
    from plumbing import choices
    for model in choices.MODELS:
        args = train.parse_args(["--model", model])
        for key, value in choices.MODEL_TRAIN_DEFAULTS[model].items():
            assert getattr(args, key) == value
    assert train.parse_args(["--lr", "0.2"]).lr == 0.2  # the command line wins
    assert train.parse_args(["--recipe", "dropact-resnet56"]).lr == 0.1  # and the recipe
    # A recipe reproduces its source: no warm-up added unless asked for.
    assert train.parse_args(["--recipe", "dropact-resnet56"]).warmup_epochs == 0
    assert train.parse_args(["--recipe", "dropact-resnet56", "--warmup-epochs", "2"]
                            ).warmup_epochs == 2


def test_histogram_flags():
    assert train.parse_args([]).histograms_every == command_line.HISTOGRAMS_EVERY
    assert train.parse_args(["--no-histograms"]).histograms_every == 0
    assert train.parse_args(["--histograms-every", "1"]).histograms_every == 1


def test_default_logdir_names_dataset_and_seed():
    sample = train.parse_args(["--dataset", "cifar10-sample"]).logdir
    full = train.parse_args([]).logdir
    seed1 = train.parse_args(["--seed", "1"]).logdir
    assert len({sample, full, seed1}) == 3
    assert "cifar10-sample" in sample and sample.endswith("seed0") and seed1.endswith("seed1")


def test_warmup_rises_linearly_to_the_schedule():
    base = lambda t: 0.1  # noqa: E731
    warm = train.with_warmup(base, 4)
    assert [warm(t) for t in range(6)] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1])
    assert train.with_warmup(base, 0) is base


def test_changed_optimisation_settings_are_refused_or_changed_on_request(tmp_path):
    logdir = str(tmp_path / "run")
    assert train.main(TINY + ["--epochs", "1", "--max-steps", "3", "--logdir", logdir]) == 0
    with pytest.raises(UserError, match=r"epochs: 1 in the log directory, 2 now.*lr: 0.05 in "
                                        r"the log directory, 0.02 now.*--change-settings"):
        train.main(TINY + ["--epochs", "2", "--lr", "0.02", "--logdir", logdir])
    with pytest.raises(UserError, match=r"weight_decay"):
        train.main(TINY + ["--epochs", "1", "--weight-decay", "0", "--logdir", logdir])
    # --max-steps only stops early (the schedule spans --epochs): free to change.
    assert train.main(TINY + ["--epochs", "1", "--max-steps", "5", "--logdir", logdir]) == 0
    assert train.main(TINY + ["--epochs", "2", "--max-steps", "12", "--change-settings",
                              "--logdir", logdir]) == 0
    with open(os.path.join(logdir, "config.json")) as f:
        config = json.load(f)
    assert config["epochs"] == 2
    assert config["settings_changes"] == [{"changes": ["epochs: 1 in the log directory, 2 now"]}]


def test_config_lists_every_process_that_trained_the_run(tmp_path):
    from plumbing import rundir
    logdir = str(tmp_path / "run")
    path = os.path.join(logdir, "config.json")
    assert train.main(TINY + ["--epochs", "1", "--max-steps", "3", "--logdir", logdir]) == 0
    with open(path) as f:
        config = json.load(f)
    assert config["trained_with"] == [dict(from_step=0, **rundir.environment())]
    config["trained_with"][0]["git_commit"] = "an older commit"  # as if trained with older code
    with open(path, "w") as f:
        json.dump(config, f)
    assert train.main(TINY + ["--epochs", "1", "--max-steps", "5", "--logdir", logdir]) == 0
    with open(path) as f:
        trained_with = json.load(f)["trained_with"]
    assert [(p["from_step"], p["git_commit"]) for p in trained_with] == [
        (0, "an older commit"), (3, rundir.environment()["git_commit"])]
    # Re-running the finished run trains nothing and leaves config.json as it was.
    with open(path) as f:
        before = f.read()
    assert train.main(TINY + ["--epochs", "1", "--max-steps", "5", "--logdir", logdir]) == 0
    with open(path) as f:
        assert f.read() == before


def test_a_second_train_py_on_the_same_logdir_is_refused(tmp_path):
    import subprocess
    import sys
    from plumbing import rundir
    logdir = str(tmp_path / "run")
    os.makedirs(logdir)
    with rundir.only_writer(logdir):  # as if another train.py were training it
        with pytest.raises(UserError, match=r"is being trained by process \d+ on .*another "
                                            r"--logdir"):
            train.main(TINY + ["--epochs", "1", "--max-steps", "1", "--logdir", logdir])
    assert not os.path.exists(os.path.join(logdir, "config.json"))  # it touched nothing
    # A holder killed with SIGKILL leaves no stale lock: the operating system dropped it.
    code = ("import os, sys\nfrom plumbing import rundir\nwith rundir.only_writer(sys.argv[1]):\n"
            "    os.kill(os.getpid(), 9)")
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    assert subprocess.run([sys.executable, "-c", code, logdir], cwd=here).returncode == -9
    assert train.main(TINY + ["--epochs", "1", "--max-steps", "1", "--logdir", logdir]) == 0
    with rundir.only_writer(logdir):  # and train.py released it when it returned
        pass


def test_finished_run_says_already_complete(tiny_run, capsys):
    logdir, _ = tiny_run
    assert train.main([a for a in TINY if a != "--no-histograms"] + [
        "--epochs", "3", "--logdir", logdir, "--histograms-every", "2"]) == 0
    out = capsys.readouterr().out
    assert "already complete (30/30 steps)" in out and "resuming" not in out


def test_a_log_file_gets_progress_lines_with_the_running_loss(tiny_run):
    logdir, out = tiny_run  # stdout was a StringIO, not a terminal: plain lines
    lines = [l for l in out.splitlines() if l.startswith("epoch 1/3 step ")]
    assert [l.split()[3] for l in lines] == [f"{k}/10" for k in range(1, 11)]
    # At the epoch's last step the running mean is the epoch's training loss and accuracy.
    last = lines[-1].split()
    first_epoch = metrics_of(logdir)[0]
    assert float(last[last.index("loss") + 1]) == pytest.approx(first_epoch["train_loss"],
                                                                abs=1e-4)
    assert float(last[last.index("acc") + 1].rstrip("%")) == pytest.approx(
        100 * first_epoch["train_accuracy"], abs=0.01)
    assert "\r" not in out
    # Epoch 1 has no timed evaluation yet: its estimate says it counts training only.
    assert all(" of training left" in l for l in lines)
    later = [l for l in out.splitlines() if l.startswith("epoch 2/3 step ")]
    assert later and all(" of training left" not in l and " left" in l for l in later)


def test_a_run_too_short_for_the_moving_averages_says_so(tiny_run):
    # The README's sample run: 14 steps at decay 0.99 keep 0.99^14 = 87 % of the initial values.
    args = train.parse_args(["--dataset", "cifar10-sample", "--act", "elu", "--bn"])
    note = health.short_run_note(args, 14)
    assert "after 14 steps" in note and f" {100 * 0.99 ** 14:.0f} % " in note
    decay = float(note.split("--bn-decay ")[2].split()[0])  # the suggested decay
    assert decay ** 14 <= 0.001 < (decay + 0.001) ** 14
    assert health.short_run_note(args, 1000) is None  # 0.99^1000 = 0.004 %
    for quiet in (["--no-bn"], ["--bn-test-batch-stats"]):
        assert health.short_run_note(train.parse_args(["--act", "elu", "--bn"] + quiet), 14) is None
    # train.py prints it under the banner: the tiny run is 30 steps at ResNet's decay.
    _, out = tiny_run
    tiny = train.parse_args([a for a in TINY if a != "--no-histograms"] + ["--epochs", "3"])
    expected = health.short_run_note(tiny, 30)  # 0.99^30 = 74 %
    assert expected is not None and expected in out


def test_banner_describes_the_model(tiny_run):
    _, out = tiny_run
    line = next(l for l in out.splitlines() if l.startswith("training "))
    assert line.startswith("training ResNet-8 v1 (shortcut A), act relu, batch norm (written-out "
                           "formulas) on cifar10-sample")
    assert "()" not in line


def test_non_finite_loss_writes_diverged_json_with_hints_that_fit(tmp_path):
    logdir = str(tmp_path / "run")
    with pytest.raises(UserError) as info:
        train.main(TINY + ["--epochs", "1", "--lr", "1e30", "--schedule", "constant",
                           "--warmup-epochs", "0", "--logdir", logdir])
    message = str(info.value)
    assert "non-finite" in message and "lower --lr" in message
    assert "--precision fp32" not in message  # the run is fp32 already
    with open(os.path.join(logdir, "diverged.json")) as f:
        info = json.load(f)
    assert info["step"] >= 0 and info["lr"] == 1e30
    # found at the next check (--check-every 100, or the end of the 10-step epoch), never before
    assert info["step"] <= info["found_at_step"] <= 10 and info["check_every"] == 100
    assert f"at step {info['step']} (found at step {info['found_at_step']}," in message
    assert health.run_health(logdir, 10).startswith("diverged")
    with pytest.raises(UserError, match=r"--precision fp32"):
        train.main(TINY + ["--epochs", "1", "--lr", "1e30", "--schedule", "constant",
                           "--precision", "bf16", "--logdir", str(tmp_path / "bf16")])


def test_a_dead_epoch_prints_a_warning_with_causes(tmp_path, capsys):
    import math
    with open(tmp_path / "metrics.jsonl", "w") as f:
        f.write(json.dumps({"epoch": 2, "train_loss": math.log(10), "train_accuracy": 0.1}) + "\n")
    args = train.parse_args(["--dataset", "cifar10-sample"])
    health.warn_if_dead(str(tmp_path), 10, args)
    out = capsys.readouterr().out
    assert out.startswith("warning: the network is not learning (dead:") and "--lr" in out
    assert "--bn" in out  # this run has no batch norm
    with open(tmp_path / "metrics.jsonl", "w") as f:
        f.write(json.dumps({"epoch": 2, "train_loss": 1.9, "train_accuracy": 0.3}) + "\n")
    health.warn_if_dead(str(tmp_path), 10, args)
    assert capsys.readouterr().out == ""


def test_a_data_dir_typo_leaves_no_log_directory(tmp_path):
    not_a_folder = tmp_path / "cifar.txt"
    not_a_folder.write_text("x")
    logdir = tmp_path / "run"
    with pytest.raises(UserError):
        train.main(["--data-dir", str(not_a_folder), "--logdir", str(logdir)])
    assert not logdir.exists()


# ---- Issue 8: honest selection, gradient norms ---------------------------------------------------

def test_without_a_validation_split_no_best_checkpoint_is_chosen(tiny_run):
    logdir, _ = tiny_run
    assert not os.path.exists(os.path.join(logdir, "best"))  # the last checkpoint is the result


def test_with_a_validation_split_the_best_checkpoint_is_chosen_on_it(tmp_path):
    # As compare.py runs it: the test split is not evaluated during training at all.
    logdir = str(tmp_path / "run")
    assert train.main(TINY + ["--epochs", "3", "--val-fraction", "0.2", "--no-test-every-epoch",
                              "--logdir", logdir]) == 0
    rows = metrics_of(logdir)
    assert all("val_loss" in r and "test_loss" not in r and "test_accuracy" not in r
               for r in rows)
    val = [r["val_accuracy"] for r in rows]
    best_step = rows[int(np.argmax(val))]["step"]  # the first epoch with the highest val acc
    best = tf.train.latest_checkpoint(os.path.join(logdir, "best"))
    assert int(best.rsplit("-", 1)[1]) == best_step


def test_gradient_norms_equal_the_norms_of_the_tapes_gradients():
    """The in-graph per-variable norms of one step vs an independent GradientTape on a twin."""
    from models import layers
    import optimizers
    images = tf.random.stateless_normal([16, 32, 32, 3], seed=[0, 2])
    labels = tf.range(16) % 10
    twin = models.build("resnet", 10, depth=8, bn=True, seed=3)
    with tf.GradientTape() as tape:
        logits = twin(images, training=True)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)) + \
            5e-4 * tf.add_n([tf.nn.l2_loss(k) for k in layers.decay_kernels(twin)])
    expected = [np.linalg.norm(g.numpy()) for g in tape.gradient(loss, twin.trainable_variables)]

    model = models.build("resnet", 10, depth=8, bn=True, seed=3)
    sums = tf.Variable(tf.zeros([len(model.trainable_variables)]))
    train_step, _ = train.make_steps(
        model, optimizers.build("momentum", model.trainable_variables), 5e-4,
        train.make_loss_scale("fp32"), tf.Variable(0, dtype=tf.int64),
        tf.Variable(tf.zeros([3], tf.float64)), sums)
    train_step(images, labels, tf.constant(0.1))
    np.testing.assert_allclose(sums.numpy(), expected, rtol=1e-4)
    assert len(summaries.variable_paths(model)) == len(expected)


def test_fp32_loss_scale_stays_one():
    scale = train.make_loss_scale("fp32")
    for _ in range(3):
        scale.update(tf.constant(True))
    assert float(scale.scale) == 1.0 and scale.growth_interval > 10 ** 15


def test_dropout_defaults_follow_the_model_and_the_recipe():
    # All-CNN: off unless asked for (the allcnn-c recipe asks); cnn: its own default kind.
    options = lambda argv: train.model_options(train.parse_args(argv))
    assert options([])["dropout"] is False
    assert options(["--dropout", "dropout"])["dropout"] is True
    assert options(["--recipe", "allcnn-c"])["dropout"] is True
    assert options(["--recipe", "allcnn-c", "--dropout", "none"])["dropout"] is False
    assert options(["--recipe", "blog-allcnn"])["dropout"] is False
    assert options(["--model", "cnn"])["dropout"] == "dropout"
    assert options(["--model", "cnn", "--dropout", "spatial"])["dropout"] == "spatial"


def test_every_model_option_of_a_recipe_reaches_the_model():
    from plumbing import choices
    from plumbing import recipes
    for name, recipe in recipes.RECIPES.items():
        options = train.model_options(train.parse_args(["--recipe", name]))
        assert set(options) == set(choices.MODEL_OPTIONS[recipe["model"]])
        for key, value in recipe.items():
            if key in options:
                assert options[key] == value, (name, key)
    assert train.model_options(train.parse_args(["--model", "resnet", "--stem-act", "elu"])
                                )["stem_act"] == "elu"
