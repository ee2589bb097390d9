"""Train a CIFAR network written in low-level TensorFlow 2.

    python train.py --act elu --bn                      # All-CNN-C, ELU, batch norm, CIFAR-10
    python train.py --dataset cifar10-sample --epochs 3 # offline, on the bundled 1,500 images
    python train.py --recipe dropact-resnet56           # a preset that reproduces a paper
    python train.py --help                              # every flag with its default

The script reads top to bottom as the algorithm: settings, data, model, optimizer and schedule,
the `tf.function` train step, then the loop (train, evaluate, log, checkpoint). Re-running the same
command with the same --logdir continues from the last checkpoint at the exact step.

Weight decay convention: loss += wd * sum_k l2_loss(k) = wd/2 * sum_k ||k||^2 over conv and dense
kernels only, so the gradient gets + wd * k (the Caffe / Torch convention of the ResNet and All-CNN
papers). Keras' `kernel_regularizer=l2(c)` adds c * ||k||^2: it equals --weight-decay 2c.
"""

import time

START = time.time()  # process start, for the time-to-first-step figure

import argparse
import difflib
import json
import math
import os
import re
import signal
import sys

import choices
import rundir
from errors import UserError
from recipes import DESCRIPTIONS, RECIPES

# TensorFlow's start-up INFO and WARNING lines drown the progress output; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# --------------------------------------------------------------------------------------------------
# Settings (TensorFlow-free: `--help` and flag errors are instant)
# --------------------------------------------------------------------------------------------------

class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each default shown once (not for flags whose help states it); a newline starts a new line."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or "default" in text:
            return text
        return super()._get_help_string(action)

    def _split_lines(self, text, width):
        lines = []
        for part in text.split("\n"):
            lines += super()._split_lines(part, width)
        return lines


class Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line, with a suggestion for a mistyped choice."""

    def error(self, message):
        wrong = re.match(r"(argument \S+: invalid choice: )'?([^' ]*)'? \(choose from (.*)\)$",
                         message)
        if wrong:
            options = [o.strip("'") for o in wrong.group(3).split(", ")]
            close = difflib.get_close_matches(wrong.group(2), options, n=1)
            message = f"{wrong.group(1)}{wrong.group(2)!r}" + (
                f"; did you mean {close[0]}?" if close else "") + \
                f" (choose from {', '.join(options)})"
        self.exit(2, f"error: {message}\n")


def build_parser():
    A, M = choices.ACTIVATION_DEFAULTS, choices.MODEL_DEFAULTS
    p = Parser(
        description="Train a CIFAR network written in low-level TensorFlow 2. Re-run the same "
                    "command with the same --logdir to continue an interrupted run.",
        formatter_class=HelpFormatter)
    p.add_argument("--recipe", choices=sorted(RECIPES), default=None, metavar="NAME",
                   help="a named preset reproducing a source; flags given override it:\n" +
                        "\n".join(f"  {name}: {DESCRIPTIONS[name]}" for name in sorted(RECIPES)))
    d = p.add_argument_group("data")
    d.add_argument("--data-dir", default=os.environ.get("CIFAR_DATA_DIR", "data"),
                   help="folder with the extracted CIFAR binaries or the official .tar.gz "
                        "(default: the environment variable CIFAR_DATA_DIR if set, else data)")
    d.add_argument("--dataset", choices=choices.DATASETS, default="cifar10",
                   help="cifar10-sample is bundled and runs offline")
    d.add_argument("--labels", choices=["fine", "coarse"], default="fine",
                   help="CIFAR-100 label set (coarse = the 20 superclasses)")
    d.add_argument("--val-fraction", type=float, default=0.0,
                   help="stratified share of the training files held out for validation")
    d.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                   help="random crop (zero padding) and horizontal flip during training")
    d.add_argument("--padding", type=int, default=4, help="zero padding before the random crop")
    d.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True,
                   help="random horizontal flip")
    d.add_argument("--normalization", choices=["per-channel", "per-image"],
                   default="per-channel",
                   help="per-channel mean/std of the training split, or per-image standardisation")
    m = p.add_argument_group("model")
    m.add_argument("--model", choices=choices.MODELS, default="allcnn",
                   help="allcnn = All-CNN-C (models/allcnn.py), resnet = ResNet v1/v2 "
                        "(models/resnet.py), cnn = the dropout-placement CNN (models/cnn.py)")
    m.add_argument("--depth", type=int, default=choices.MODEL_OPTIONS["resnet"]["depth"],
                   help="ResNet depth: 6n+2 (basic blocks) or 9n+2 (v2 bottleneck)")
    m.add_argument("--resnet-version", type=int, choices=[1, 2],
                   default=choices.MODEL_OPTIONS["resnet"]["version"],
                   help="1 = post-activation (He 2015), 2 = pre-activation (He 2016)")
    m.add_argument("--bottleneck", action=argparse.BooleanOptionalAction,
                   default=choices.MODEL_OPTIONS["resnet"]["bottleneck"],
                   help="ResNet v2 bottleneck blocks (default: for 9n+2 depths from 164 on)")
    m.add_argument("--shortcut", choices=["A", "B"],
                   default=choices.MODEL_OPTIONS["resnet"]["shortcut"],
                   help="A = zero-padded identity (the CIFAR paper), B = 1x1 projection")
    m.add_argument("--act", choices=choices.ACTIVATIONS, default="relu",
                   help="activation (activations.py)")
    m.add_argument("--leak", type=float, default=A["leak"], help="lrelu negative slope")
    m.add_argument("--elu-alpha", type=float, default=A["elu_alpha"], help="elu alpha")
    m.add_argument("--prelu-init", type=float, default=A["prelu_init"],
                   help="prelu initial alpha")
    m.add_argument("--rrelu-lower", type=float, default=A["rrelu_lower"],
                   help="rrelu: a ~ U(lower, upper)")
    m.add_argument("--rrelu-upper", type=float, default=A["rrelu_upper"],
                   help="rrelu: a ~ U(lower, upper)")
    m.add_argument("--dropact-p", type=float, default=A["dropact_p"],
                   help="dropact: probability of keeping the ReLU")
    m.add_argument("--gaaf-shift", type=float, default=A["gaaf_shift"],
                   help="gaaf-relu: sigmoid shift")
    m.add_argument("--gaaf-k", type=float, default=A["gaaf_k"], help="gaaf: K of g(x)")
    m.add_argument("--gaaf-variant", choices=["floor", "round"], default=A["gaaf_variant"],
                   help="gaaf: the paper's floor or the GAAF-Keras round version")
    m.add_argument("--bn", action=argparse.BooleanOptionalAction, default=M["bn"],
                   help="batch normalisation after each convolution (batch_norm.py)")
    m.add_argument("--bn-decay", type=float, default=M["bn_decay"], help="moving-average decay")
    m.add_argument("--bn-epsilon", type=float, default=M["bn_epsilon"], help="variance epsilon")
    m.add_argument("--bn-fused", action=argparse.BooleanOptionalAction, default=M["bn_fused"],
                   help="speed switch: batch norm through TF's fused kernel "
                        "(tf.compat.v1.nn.fused_batch_norm), the same formula (tested equal) and "
                        "faster; without it the written-out formulas of batch_norm.py run")
    m.add_argument("--bn-test-batch-stats", action=argparse.BooleanOptionalAction,
                   default=M["bn_test_batch_stats"],
                   help="educational: normalise test batches by their own statistics too (a "
                        "common bug)")
    m.add_argument("--dropout", choices=["none", "dropout", "spatial"],
                   default=choices.MODEL_OPTIONS["cnn"]["dropout"],
                   help="cnn: dropout kind (spatial drops whole channels in the conv blocks); "
                        "allcnn: none switches its dropout off")
    m.add_argument("--dropout-rates",
                   default=",".join(map(str, choices.MODEL_OPTIONS["cnn"]["dropout_rates"])),
                   help="cnn: rates after conv block 1, conv block 2, dense layer")
    m.add_argument("--order", default=choices.MODEL_OPTIONS["cnn"]["order"],
                   help="cnn: layer order within a block, dash-separated parts conv, bn, act, "
                        "pool, drop")
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, default=30, help="epochs to train")
    o.add_argument("--batch-size", type=int, default=128, help="images per step")
    o.add_argument("--optimizer", choices=choices.OPTIMIZERS, default="momentum",
                   help="optimizers.py")
    o.add_argument("--momentum", type=float, default=0.9, help="momentum / nesterov only")
    o.add_argument("--lr", type=float, default=0.05, help="base (peak) learning rate")
    o.add_argument("--schedule", choices=choices.SCHEDULES, default="cosine",
                   help="learning-rate schedule (schedules.py)")
    o.add_argument("--lr-steps", default="",
                   help="step schedule: comma-separated boundaries where lr is multiplied by 0.1 "
                        "(default: none)")
    o.add_argument("--lr-steps-unit", choices=["epochs", "steps"], default="epochs",
                   help="unit of --lr-steps")
    o.add_argument("--warmup-fraction", type=float, default=0.15,
                   help="one-cycle: share of steps spent rising from lr/25 to lr")
    o.add_argument("--weight-decay", type=float, default=5e-4,
                   help="wd in loss += wd * sum(l2_loss(kernel)); gradient + wd * kernel")
    o.add_argument("--max-steps", type=int, default=0,
                   help="stop after this many steps in total (0 = run all epochs)")
    r = p.add_argument_group("run")
    r.add_argument("--seed", type=int, default=0, help="weights, data order, augmentation")
    r.add_argument("--deterministic", action=argparse.BooleanOptionalAction, default=False,
                   help="deterministic ops: a resumed run ends bit-identical to an uninterrupted one")
    r.add_argument("--logdir", default=None,
                   help="log directory (default: runs/<model>-<act>[-bn])")
    r.add_argument("--keep", type=int, default=3, help="number of recent checkpoints kept")
    r.add_argument("--checkpoint-every", type=int, default=500,
                   help="also checkpoint every this many steps (besides every epoch end)")
    r.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32",
                   help="compute dtype; variables stay float32 (fp16 uses dynamic loss scaling)")
    r.add_argument("--xla", action=argparse.BooleanOptionalAction, default=False,
                   help="compile the train step with XLA (jit_compile=True)")
    r.add_argument("--data-format", choices=["NHWC", "NCHW"], default=M["data_format"],
                   help="NCHW is usually faster on GPUs; TF's CPU kernels want NHWC")
    r.add_argument("--histograms", action=argparse.BooleanOptionalAction, default=True,
                   help="TensorBoard histograms of weights and activations every epoch")
    # For the tests: behave as if SIGINT arrived after this many steps of this process.
    r.add_argument("--interrupt-after", type=int, default=0, help=argparse.SUPPRESS)
    return p


def parse_args(argv=None):
    """Parse flags (recipe first, then the command line over it) and validate combinations."""
    p = build_parser()
    recipe = None
    known, _ = p.parse_known_args(argv)
    if known.recipe:  # the recipe replaces the defaults; flags on the command line still win
        recipe = RECIPES[known.recipe]
        p.set_defaults(**recipe)
    args = p.parse_args(argv)

    # Invalid combinations fail here, before any data is read or any model built.
    if args.batch_size <= 0:
        p.error(f"--batch-size must be positive, got {args.batch_size}")
    if args.epochs <= 0:
        p.error(f"--epochs must be positive, got {args.epochs}")
    if not (args.lr > 0 and math.isfinite(args.lr)):
        p.error(f"--lr must be a positive number, got {args.lr}")
    if args.max_steps < 0:
        p.error(f"--max-steps must be 0 (no limit) or positive, got {args.max_steps}")
    if not 0.0 <= args.val_fraction < 1.0:
        p.error(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    if args.weight_decay < 0:
        p.error(f"--weight-decay must be >= 0, got {args.weight_decay}")
    if args.padding < 0:
        p.error(f"--padding must be >= 0, got {args.padding}")
    if args.labels == "coarse" and args.dataset != "cifar100":
        p.error(f"--labels coarse needs --dataset cifar100 (CIFAR-10 has no superclasses)")
    if not 0.0 <= args.dropact_p <= 1.0:
        p.error(f"--dropact-p must be in [0, 1], got {args.dropact_p}")
    if not 0 < args.rrelu_lower <= args.rrelu_upper:
        p.error("--rrelu-lower and --rrelu-upper must satisfy 0 < lower <= upper")
    if not 0.0 < args.bn_decay < 1.0 or args.bn_epsilon <= 0:
        p.error("--bn-decay must be in (0, 1) and --bn-epsilon positive")
    if args.keep < 1 or args.checkpoint_every < 0:
        p.error("--keep must be >= 1 and --checkpoint-every >= 0")
    try:
        args.dropout_rates = [float(r) for r in args.dropout_rates.split(",")]
        # Checked (positive, increasing) once, by schedules.build.
        args.lr_steps = [float(s) for s in args.lr_steps.split(",") if s.strip()]
    except ValueError:
        p.error("--dropout-rates and --lr-steps take comma-separated numbers, e.g. 91,136,182")
    if len(args.dropout_rates) != 3 or not all(0 <= r < 1 for r in args.dropout_rates):
        p.error("--dropout-rates needs three rates in [0, 1), e.g. 0.2,0.2,0.4")
    if args.logdir is None:
        args.logdir = os.path.join("runs", f"{args.model}-{args.act}" + ("-bn" if args.bn else ""))
    args.recipe_settings = recipe
    return args


def activation_params(args):
    """The keyword arguments of activations.make, from the flags of the same names."""
    return {k: getattr(args, k) for k in choices.ACTIVATION_DEFAULTS}


def model_specific(args):
    """The model-only arguments of models.build for the chosen network."""
    if args.model == "resnet":
        return dict(depth=args.depth, version=args.resnet_version, shortcut=args.shortcut,
                    bottleneck=args.bottleneck)
    if args.model == "cnn":
        return dict(dropout=args.dropout, dropout_rates=tuple(args.dropout_rates),
                    order=args.order)
    return dict(dropout=args.dropout != "none")


# --------------------------------------------------------------------------------------------------
# The train step and the eval step
# --------------------------------------------------------------------------------------------------

def make_steps(model, optimizer, weight_decay, precision, loss_scale, step, epoch_sums, xla):
    """The train step and the eval step: two tf.functions, each traced once.

    The learning rate enters as a scalar tensor and the batch shape is fixed, so nothing in the
    loop retraces them. `step` (int64) and `epoch_sums` ([loss sum, correct, images], float64) are
    variables the train step updates in the graph: no host round trip per step. `loss_scale.scale`
    is 1 for fp32 and bf16 (multiplying and dividing by 1 is exact), S for fp16.
    """
    import tensorflow as tf

    import layers

    variables = model.trainable_variables
    kernels = layers.decay_kernels(model)  # conv and dense kernels: the only decayed variables

    @tf.function(jit_compile=xla, reduce_retracing=True)
    def train_step(images, labels, lr):
        # images [B, 32, 32, 3] float32, labels [B] int32, lr [] float32
        with tf.GradientTape() as tape:
            logits = model(images, training=True)  # [B, classes] float32
            xent = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
            # wd * sum(||k||^2 / 2): the gradient of this term is wd * k
            loss = xent + weight_decay * tf.add_n([tf.nn.l2_loss(k) for k in kernels])
            scaled_loss = loss * loss_scale.scale  # float16 gradients need scaling
        grads, finite = loss_scale.unscale(tape.gradient(scaled_loss, variables))
        ok = tf.logical_and(finite, tf.math.is_finite(loss))
        # A non-finite step changes no weight. With S > 1 it is skipped and S halved (fp16); at
        # S = 1 nothing can be lowered: the host sees `keep_going` false and stops the run.
        if ok:
            optimizer.apply(grads, lr)
        keep_going = tf.logical_and(tf.math.is_finite(loss),
                                    tf.logical_or(ok, loss_scale.scale > 1.0))
        loss_scale.update(ok)
        step.assign_add(1)
        n = tf.cast(tf.size(labels), tf.float64)
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32),
                                                 labels), tf.float64))
        epoch_sums.assign_add(tf.stack([tf.cast(xent, tf.float64) * n, correct, n]))
        return xent, keep_going

    @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32),
                                  tf.TensorSpec([None], tf.int32)])
    def eval_step(images, labels):
        logits = model(images, training=False)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        correct = tf.equal(tf.argmax(logits, 1, output_type=tf.int32), labels)
        return tf.reduce_sum(losses), tf.reduce_sum(tf.cast(correct, tf.int64))

    return train_step, eval_step


def make_loss_scale(precision):
    """Dynamic loss scaling for fp16; a scale fixed at 1 (it never grows) for fp32 and bf16."""
    from loss_scale import DynamicLossScale
    if precision == "fp16":
        return DynamicLossScale(initial_scale=2.0 ** 15)
    return DynamicLossScale(initial_scale=1.0, growth_interval=2 ** 62)


def evaluate(eval_step, pipeline):
    """Mean loss and accuracy over one pass of `pipeline`, in inference mode."""
    loss_sum, correct, n = 0.0, 0, 0
    for images, labels in pipeline.epoch(0):
        l, c = eval_step(images, labels)
        loss_sum, correct, n = loss_sum + float(l), correct + int(c), n + int(labels.shape[0])
    return loss_sum / n, correct / n


# --------------------------------------------------------------------------------------------------
# Book-keeping around the loop: log directory, resume, logging, interruption
# --------------------------------------------------------------------------------------------------

def run_config(args, model, num_classes, mean, std, steps_per_epoch, total_steps, train_size,
               data_root):
    """Everything config.json records: the flags, the model, the data constants, the machine."""
    config = {k: v for k, v in vars(args).items() if k not in ("recipe_settings",
                                                                "interrupt_after")}
    config.update(layout=rundir.LAYOUT, num_classes=num_classes,
                  model_config=json.loads(json.dumps(model.config)),  # tuples -> lists, as on disk
                  mean=mean.tolist(), std=std.tolist(),  # a mean image for per-pixel
                  steps_per_epoch=steps_per_epoch, total_steps=total_steps,
                  train_size=int(train_size), data_root=os.path.abspath(data_root),
                  **rundir.environment())
    return config


def refuse_other_settings(logdir, config):
    """A log directory that holds a run with other settings is refused with the differences."""
    if not os.path.exists(os.path.join(logdir, "config.json")):
        return
    diffs = rundir.config_differences(rundir.read_config(logdir), config)
    if diffs:
        raise UserError(f"{logdir!r} holds a run with other settings (" + "; ".join(diffs) +
                        "); use a new --logdir or the old flags")


def truncate_metrics_to_checkpoint(metrics_path, finished_epochs):
    """Keep only the metrics.jsonl lines of epochs the restored checkpoint has finished.

    A process killed between writing an epoch's line and saving its checkpoint repeats that
    epoch after resuming; without this its line would appear twice.
    """
    if os.path.exists(metrics_path):
        with open(metrics_path) as f:
            kept = [l for l in f if l.strip() and json.loads(l)["epoch"] <= finished_epochs]
        rundir.atomic_write(metrics_path, "".join(kept))


def log_epoch(writer, step, record, metrics_path, model=None, histogram_images=None):
    """One JSON line in metrics.jsonl, TensorBoard scalars and (with a model) histograms."""
    import tensorflow as tf

    with open(metrics_path, "a") as f:
        f.write(json.dumps(record) + "\n")
    with writer.as_default(step=step):
        for key, value in record.items():
            if key not in ("epoch", "step"):
                tf.summary.scalar(key, value)
        if model is not None:
            # Named by their path in the model, e.g. weights/blocks/0/conv1/kernel.
            for path, v in model._flatten(predicate=lambda v: isinstance(v, tf.Variable),
                                          with_path=True):
                tf.summary.histogram("weights/" + "/".join(map(str, path)), v)
            for name, value in model.activation_outputs(histogram_images).items():
                tf.summary.histogram("activations/" + name, value)
    writer.flush()


def epoch_line(args, record, eval_names, seconds, seconds_left):
    """The line printed at the end of each epoch."""
    return (f"epoch {record['epoch']}/{args.epochs}  train loss {record['train_loss']:.4f} acc "
            f"{100 * record['train_accuracy']:.2f}%  " + "  ".join(
                f"{n} loss {record[n + '_loss']:.4f} acc {100 * record[n + '_accuracy']:.2f}%"
                for n in eval_names) + f"  lr {record['lr']:.4g}  "
            f"{record['images_per_second']:.0f} img/s  {rundir.fmt_time(seconds)}, "
            f"~{rundir.fmt_time(seconds_left)} left")


def main(argv=None):
    args = parse_args(argv)
    # SIGINT / SIGTERM only set a flag; the loop finishes its step, saves a checkpoint and exits.
    stop_signal = []
    previous = {sig: signal.signal(sig, lambda signum, frame: stop_signal.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return train(args, stop_signal)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stop_requested(args, stop_signal, steps_done):
    """True once SIGINT/SIGTERM arrived (or the tests' --interrupt-after count is reached)."""
    if args.interrupt_after and steps_done >= args.interrupt_after and not stop_signal:
        stop_signal.append(signal.SIGINT)
    return bool(stop_signal)


def save_and_exit(checkpoints, step, signum):
    """After SIGINT / SIGTERM: save a checkpoint at `step` and return the exit status."""
    path = checkpoints.save(checkpoint_number=step)
    print(f"\ninterrupted by {signal.Signals(signum).name} at step {step}; checkpoint {path} "
          "written; re-run the same command to continue", flush=True)
    return 128 + signum


# --------------------------------------------------------------------------------------------------
# The algorithm
# --------------------------------------------------------------------------------------------------

def train(args, stop_signal):
    """The algorithm; `stop_signal` becomes non-empty when the process is asked to stop."""
    import tensorflow as tf

    import cifar_download
    import cifar_input
    import models
    import optimizers
    import schedules

    if args.model == "resnet":  # a depth that gives no ResNet fails before any data is read
        from models.resnet import layout
        try:
            layout(args.depth, args.resnet_version, args.bottleneck)
        except UserError as e:
            raise UserError(f"--depth: {e}") from None
    if args.data_format == "NCHW" and not tf.config.list_physical_devices("GPU"):
        raise UserError("--data-format NCHW needs a GPU: TensorFlow's CPU kernels compute the "
                        "filter gradient of a convolution in NHWC only; leave the default NHWC")
    if args.deterministic:
        # Every op picks a deterministic kernel (or raises if it has none).
        tf.config.experimental.enable_op_determinism()
    rundir.check_writable(args.logdir)  # before any data is read

    # ----------------------------------------------------------------------------------------------
    # Data
    # ----------------------------------------------------------------------------------------------
    data_root = cifar_download.find_data(args.data_dir, args.dataset)
    splits = cifar_input.load_dataset(data_root, args.dataset, labels=args.labels,
                                      val_fraction=args.val_fraction)
    train_images, train_labels = splits["train"]  # uint8 [N, 32, 32, 3], int32 [N]
    num_classes = cifar_input.num_classes(args.dataset, args.labels)
    # Normalisation constants come from the training split only and are stored in config.json.
    mean, std = cifar_input.normalization_stats(train_images, args.normalization)
    train_data = cifar_input.Pipeline(
        train_images, train_labels, args.batch_size, seed=args.seed, augment=args.augment,
        padding=args.padding, flip=args.flip, normalization=args.normalization, mean=mean,
        std=std, shuffle=True, drop_remainder=True)
    steps_per_epoch = train_data.steps_per_epoch
    if steps_per_epoch == 0:
        raise UserError(f"--batch-size {args.batch_size} is larger than the "
                        f"{len(train_labels)} training images; lower it")
    eval_sets = {name: cifar_input.Pipeline(
        images, labels, args.batch_size, seed=0, augment=False, normalization=args.normalization,
        mean=mean, std=std, shuffle=False, drop_remainder=False)
        for name, (images, labels) in [(n, splits[n]) for n in ("val", "test") if splits[n]]}
    total_steps = steps_per_epoch * args.epochs
    if args.max_steps:
        total_steps = min(total_steps, args.max_steps)

    # ----------------------------------------------------------------------------------------------
    # Model, optimizer, learning-rate schedule
    # ----------------------------------------------------------------------------------------------
    compute_dtype = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[args.precision]
    model = models.build(args.model, num_classes, act=args.act, act_params=activation_params(args),
                         bn=args.bn, bn_decay=args.bn_decay, bn_epsilon=args.bn_epsilon,
                         bn_test_batch_stats=args.bn_test_batch_stats,
                         bn_fused=args.bn_fused, seed=args.seed,
                         data_format=args.data_format, compute_dtype=compute_dtype,
                         **model_specific(args))
    optimizer = optimizers.build(args.optimizer, model.trainable_variables,
                                 momentum=args.momentum)
    try:  # schedules.build checks its arguments (--lr-steps positive and increasing) once
        lr_at = schedules.build(args.schedule, args.lr, total_steps, steps_per_epoch,
                                boundaries=args.lr_steps, unit=args.lr_steps_unit,
                                warmup_fraction=args.warmup_fraction)
    except UserError as e:
        raise UserError(f"--schedule {args.schedule}: {e}") from None
    loss_scale = make_loss_scale(args.precision)

    # ----------------------------------------------------------------------------------------------
    # Log directory: config, checkpoints (resume), metrics, TensorBoard
    # ----------------------------------------------------------------------------------------------
    config = run_config(args, model, num_classes, mean, std, steps_per_epoch, total_steps,
                        len(train_labels), data_root)
    refuse_other_settings(args.logdir, config)
    rundir.write_config(args.logdir, config)

    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")  # finished train steps
    best_accuracy = tf.Variable(-1.0, dtype=tf.float64, trainable=False, name="best_accuracy")
    # Running sums over the current epoch, in the checkpoint so an interrupted epoch's figures
    # are complete after resuming: [loss sum, correct, images].
    epoch_sums = tf.Variable(tf.zeros([3], tf.float64), trainable=False, name="epoch_sums")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step,
                                     best_accuracy=best_accuracy, epoch_sums=epoch_sums,
                                     loss_scale=loss_scale)
    last_ckpts = tf.train.CheckpointManager(checkpoint, os.path.join(args.logdir, "ckpt"),
                                            max_to_keep=args.keep)
    best_ckpts = tf.train.CheckpointManager(checkpoint, os.path.join(args.logdir, "best"),
                                            max_to_keep=1)
    if last_ckpts.latest_checkpoint:
        rundir.restore_or_refuse(checkpoint, last_ckpts.latest_checkpoint, args.logdir)
        print(f"resuming {args.logdir} from step {int(step)} "
              f"(epoch {int(step) // steps_per_epoch + 1}, step "
              f"{int(step) % steps_per_epoch} of {steps_per_epoch})", flush=True)
    start_step = int(step)
    metrics_path = os.path.join(args.logdir, "metrics.jsonl")
    truncate_metrics_to_checkpoint(metrics_path, start_step // steps_per_epoch)
    writer = tf.summary.create_file_writer(os.path.join(args.logdir, "tb"))

    # ----------------------------------------------------------------------------------------------
    # The train step and the eval step (each traced once: lr is a tensor argument, shapes fixed)
    # ----------------------------------------------------------------------------------------------
    train_step, eval_step = make_steps(model, optimizer, args.weight_decay, args.precision,
                                       loss_scale, step, epoch_sums, args.xla)

    # ----------------------------------------------------------------------------------------------
    # The loop: epochs of steps; evaluate, log and checkpoint at every epoch end
    # ----------------------------------------------------------------------------------------------
    progress = rundir.Progress()
    print(f"training {args.model} ({model.config.get('depth', '')}) act={args.act} bn={args.bn} on "
          f"{args.dataset}: {len(train_labels)} images, {steps_per_epoch} steps/epoch, "
          f"{total_steps} steps; logdir {args.logdir}", flush=True)
    run_start, first_step_seconds = time.time(), None
    gpus = ["/gpu:0"] if tf.config.list_physical_devices("GPU") else []
    while int(step) < total_steps:
        epoch = int(step) // steps_per_epoch  # 0-based epoch being trained
        first = int(step) % steps_per_epoch
        epoch_end = min((epoch + 1) * steps_per_epoch, total_steps)
        t0, seen = time.time(), 0
        batches = train_data.epoch(epoch, start_step=first)
        if gpus:  # copy the next batches to the GPU while it computes (last transformation)
            batches = batches.apply(tf.data.experimental.prefetch_to_device(gpus[0]))
        for images, labels in batches:
            lr = lr_at(int(step))
            xent, ok = train_step(images, labels, tf.constant(lr, tf.float32))
            seen += int(labels.shape[0])
            if first_step_seconds is None:
                first_step_seconds = time.time() - START
            if not bool(ok):
                raise UserError(
                    f"the loss became non-finite ({float(xent)}) at step {int(step)} with lr "
                    f"{lr:.3g}; no weights were changed by that step and the last good checkpoint "
                    f"stays in {args.logdir}; lower --lr (or use --precision fp32)")
            stopping = stop_requested(args, stop_signal, int(step) - start_step)
            if stopping and int(step) < epoch_end:  # at an epoch end: after its evaluation
                return save_and_exit(last_ckpts, int(step), stop_signal[0])
            if args.checkpoint_every and int(step) % args.checkpoint_every == 0 and \
                    int(step) < epoch_end:
                last_ckpts.save(checkpoint_number=int(step))
            done = int(step) - epoch * steps_per_epoch
            if progress.tty and done % 10 == 0:
                rate = seen / (time.time() - t0)
                left = (total_steps - int(step)) * args.batch_size / rate
                s = epoch_sums.numpy()
                progress.update(f"epoch {epoch + 1}/{args.epochs} step {done}/{steps_per_epoch} "
                                f"loss {s[0] / s[2]:.3f} acc {100 * s[1] / s[2]:.1f}% "
                                f"{rate:.0f} img/s, {rundir.fmt_time(left)} left")
            if int(step) >= epoch_end:
                break
        seconds = time.time() - t0
        seconds_left = (total_steps - int(step)) * seconds / max(seen // args.batch_size, 1)

        # Evaluate in inference mode (moving batch-norm statistics, no dropout).
        s = epoch_sums.numpy()
        record = {"epoch": epoch + 1, "step": int(step), "lr": lr,
                  "train_loss": s[0] / s[2], "train_accuracy": s[1] / s[2],
                  "seconds": seconds, "images_per_second": seen / max(seconds, 1e-9)}
        for name, pipeline in eval_sets.items():
            record[f"{name}_loss"], record[f"{name}_accuracy"] = evaluate(eval_step, pipeline)
        selection = "val" if "val" in eval_sets else "test"
        accuracy = record[f"{selection}_accuracy"]

        # Log: one JSON line, TensorBoard scalars and histograms.
        log_epoch(writer, int(step), record, metrics_path, model if args.histograms else None,
                  next(iter(eval_sets["test"].epoch(0)))[0] if args.histograms else None)
        progress.done(epoch_line(args, record, eval_sets, seconds, seconds_left))

        # Checkpoint: the best on validation (test when there is no validation split), then last.
        epoch_sums.assign(tf.zeros([3], tf.float64))
        if accuracy > float(best_accuracy):
            best_accuracy.assign(accuracy)
            best_ckpts.save(checkpoint_number=int(step))
        last_ckpts.save(checkpoint_number=int(step))
        if stop_signal:
            return save_and_exit(last_ckpts, int(step), stop_signal[0])

    summary = {"steps": int(step), "seconds_this_process": time.time() - run_start,
               "first_step_seconds": first_step_seconds,
               "train_step_traces": train_step.experimental_get_tracing_count(),
               "eval_step_traces": eval_step.experimental_get_tracing_count()}
    if start_step < total_steps:
        summary.update({k: v for k, v in record.items() if k.endswith("accuracy")})
    print("done: " + json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except UserError as e:  # the user's to fix: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
