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
import contextlib
import difflib
import json
import math
import os
import re
import signal

import choices
import rundir
from errors import UserError, run_script
from help_format import HelpFormatter
from recipes import DESCRIPTIONS, RECIPES

# TensorFlow's start-up INFO and WARNING lines drown the progress output; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# --------------------------------------------------------------------------------------------------
# Settings (TensorFlow-free: `--help` and flag errors are instant)
# --------------------------------------------------------------------------------------------------

# Histograms of every weight and activation take longer than a training epoch of the bundled
# sample, and a small share of a full CIFAR-10 epoch: by default every few epochs.
HISTOGRAMS_EVERY = 5

# Flags that set an option of some models only (argparse destination -> models.build keyword).
MODEL_OPTION_FLAGS = {"depth": "depth", "resnet_version": "version", "shortcut": "shortcut",
                      "bottleneck": "bottleneck", "bottleneck_stride": "bottleneck_stride",
                      "projection_bn": "projection_bn", "stem_act": "stem_act",
                      "conv_bias": "conv_bias", "score_act": "score_act", "dropout": "dropout",
                      "dropout_rates": "dropout_rates", "order": "order"}
# Activation parameters and the activations that use them (others accept any activation).
ACTIVATION_PARAM_USERS = {"leak": ("lrelu",), "elu_alpha": ("elu",), "prelu_init": ("prelu",),
                          "rrelu_lower": ("rrelu",), "rrelu_upper": ("rrelu",),
                          "dropact_p": ("dropact",), "gaaf_k": ("gaaf-relu", "gaaf-tanh"),
                          "gaaf_shift": ("gaaf-relu",),
                          "gaaf_variant": ("gaaf-relu", "gaaf-tanh")}
# Flags that only mean something together with another setting: destination -> (test, when).
DEPENDENT_FLAGS = {
    "bn_decay": (lambda a: a.bn, "with --bn"), "bn_epsilon": (lambda a: a.bn, "with --bn"),
    "bn_fused": (lambda a: a.bn, "with --bn"),
    "bn_test_batch_stats": (lambda a: a.bn, "with --bn"),
    "lr_steps": (lambda a: a.schedule == "step", "with --schedule step"),
    "lr_steps_unit": (lambda a: a.schedule == "step", "with --schedule step"),
    "warmup_fraction": (lambda a: a.schedule == "one-cycle", "with --schedule one-cycle"),
    "momentum": (lambda a: a.optimizer in ("momentum", "nesterov"),
                 "with --optimizer momentum or nesterov"),
    "padding": (lambda a: a.augment, "with --augment"),
    "flip": (lambda a: a.augment, "with --augment"),
    "labels": (lambda a: a.dataset == "cifar100",
               "with --dataset cifar100 (CIFAR-10 has no superclasses)"),
}


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
    A, M, T = choices.ACTIVATION_DEFAULTS, choices.MODEL_DEFAULTS, choices.TRAIN_DEFAULTS
    per_model = {key: ", ".join(f"{m} {d[key]}" for m, d in choices.MODEL_TRAIN_DEFAULTS.items())
                 for key in ("lr", "warmup_epochs")}
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
    d.add_argument("--dataset", choices=choices.DATASETS, default=T["dataset"],
                   help="cifar10-sample is bundled and runs offline")
    d.add_argument("--labels", choices=["fine", "coarse"], default="fine",
                   help="CIFAR-100 label set (coarse = the 20 superclasses)")
    d.add_argument("--val-fraction", type=float, default=0.0,
                   help="stratified share of the training files held out for validation")
    d.add_argument("--train-subset", type=int, default=0, metavar="N",
                   help="train on a stratified N of the training images left after the "
                        "validation split (0: all), for short experiments")
    d.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                   help="random crop (zero padding) and horizontal flip during training")
    d.add_argument("--padding", type=int, default=4, help="zero padding before the random crop")
    d.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True,
                   help="random horizontal flip")
    d.add_argument("--normalization", choices=choices.NORMALIZATIONS,
                   default=choices.NORMALIZATIONS[0],
                   help="per-channel mean/std of the training split, per-image standardisation, "
                        "or per-pixel: x/255 minus the training split's mean image")
    m = p.add_argument_group("model")
    m.add_argument("--model", choices=choices.MODELS, default=T["model"],
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
    m.add_argument("--bottleneck-stride", choices=["1x1", "3x3"],
                   default=choices.MODEL_OPTIONS["resnet"]["bottleneck_stride"],
                   help="ResNet bottleneck: the conv that strides")
    m.add_argument("--projection-bn", action=argparse.BooleanOptionalAction,
                   default=choices.MODEL_OPTIONS["resnet"]["projection_bn"],
                   help="ResNet v1, shortcut B: batch norm after the projection (default: with "
                        "--bn)")
    m.add_argument("--stem-act", choices=choices.ACTIVATIONS,
                   default=choices.MODEL_OPTIONS["resnet"]["stem_act"],
                   help="ResNet v1: activation after the first conv (default: --act)")
    m.add_argument("--conv-bias", action=argparse.BooleanOptionalAction,
                   default=choices.MODEL_OPTIONS["resnet"]["conv_bias"],
                   help="ResNet: keep conv biases even where batch norm follows")
    m.add_argument("--act", choices=choices.ACTIVATIONS, default=T["act"],
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
                        "(FusedBatchNormV3, through tf.raw_ops), the same formula (tested equal) and "
                        "faster; without it the written-out formulas of batch_norm.py run")
    m.add_argument("--bn-test-batch-stats", action=argparse.BooleanOptionalAction,
                   default=M["bn_test_batch_stats"],
                   help="educational: normalise test batches by their own statistics too (a "
                        "common bug)")
    m.add_argument("--score-act", action=argparse.BooleanOptionalAction,
                   default=choices.MODEL_OPTIONS["allcnn"]["score_act"],
                   help="allcnn: batch norm and activation on the class scores too, as the "
                        "paper's table (without batch norm a relu there can leave every score at "
                        "0 and the loss stuck at ln(classes))")
    m.add_argument("--dropout", choices=["none", "dropout", "spatial"], default=None,
                   help="cnn: dropout kind (spatial drops whole channels in the conv blocks; "
                        f"default {choices.MODEL_OPTIONS['cnn']['dropout']}); allcnn: dropout "
                        "turns on the paper's dropout (default none: without batch norm it "
                        "stalls short runs)")
    m.add_argument("--dropout-rates",
                   default=",".join(map(str, choices.MODEL_OPTIONS["cnn"]["dropout_rates"])),
                   help="cnn: rates after conv block 1, conv block 2, dense layer")
    m.add_argument("--order", default=choices.MODEL_OPTIONS["cnn"]["order"],
                   help="cnn: layer order within a block, dash-separated parts conv, bn, act, "
                        "pool, drop")
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, default=T["epochs"], help="epochs to train")
    o.add_argument("--batch-size", type=int, default=T["batch_size"], help="images per step")
    o.add_argument("--optimizer", choices=choices.OPTIMIZERS, default=T["optimizer"],
                   help="optimizers.py")
    o.add_argument("--momentum", type=float, default=T["momentum"],
                   help="momentum / nesterov only")
    o.add_argument("--lr", type=float, default=None,
                   help=f"base (peak) learning rate (default per model: {per_model['lr']})")
    o.add_argument("--warmup-epochs", type=float, default=None,
                   help="linear warm-up: lr(t) = schedule(t) * min(1, (t + 1) / W) over the "
                        f"first W = warmup_epochs * steps_per_epoch steps (default per model: "
                        f"{per_model['warmup_epochs']}; 0 with a --recipe)")
    o.add_argument("--schedule", choices=choices.SCHEDULES, default=T["schedule"],
                   help="learning-rate schedule (schedules.py)")
    o.add_argument("--lr-steps", default="",
                   help="step schedule: comma-separated boundaries where lr is multiplied by 0.1 "
                        "(default: none)")
    o.add_argument("--lr-steps-unit", choices=["epochs", "steps"], default="epochs",
                   help="unit of --lr-steps")
    o.add_argument("--warmup-fraction", type=float, default=0.15,
                   help="one-cycle: share of steps spent rising from lr/25 to lr")
    o.add_argument("--weight-decay", type=float, default=T["weight_decay"],
                   help="wd in loss += wd * sum(l2_loss(kernel)); gradient + wd * kernel")
    o.add_argument("--max-steps", type=int, default=0,
                   help="stop after this many steps in total; the schedule still spans "
                        "--epochs (0 = run all epochs)")
    r = p.add_argument_group("run")
    r.add_argument("--seed", type=int, default=0, help="weights, data order, augmentation")
    r.add_argument("--deterministic", action=argparse.BooleanOptionalAction, default=False,
                   help="deterministic ops: a resumed run ends bit-identical to an uninterrupted one")
    r.add_argument("--logdir", default=None,
                   help="log directory (default: runs/<dataset>-<model>-<act>[-bn]-seed<seed>)")
    r.add_argument("--change-settings", action="store_true",
                   help="continue a log directory although optimisation settings (--epochs, "
                        "--lr, --schedule, ...) differ from its config.json: the schedule is "
                        "rebuilt at the current step (the learning rate can jump) and the change "
                        "is recorded in config.json; without it such a re-run is refused")
    r.add_argument("--keep", type=int, default=3, help="number of recent checkpoints kept")
    r.add_argument("--checkpoint-every", type=int, default=500,
                   help="also checkpoint every this many steps (besides every epoch end)")
    r.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32",
                   help="compute dtype; variables stay float32 (fp16 uses dynamic loss scaling)")
    r.add_argument("--xla", action=argparse.BooleanOptionalAction, default=False,
                   help="compile the train step with XLA (jit_compile=True)")
    r.add_argument("--data-format", choices=["NHWC", "NCHW"], default=M["data_format"],
                   help="NCHW is usually faster on GPUs; TF's CPU kernels want NHWC")
    r.add_argument("--histograms-every", type=int, default=HISTOGRAMS_EVERY, metavar="N",
                   help="TensorBoard histograms of weights and activations every N epochs and "
                        "after the last (0 = never)")
    r.add_argument("--histograms", action=argparse.BooleanOptionalAction, default=True,
                   help="--no-histograms: none at all, the same as --histograms-every 0")
    r.add_argument("--test-every-epoch", action=argparse.BooleanOptionalAction, default=True,
                   help="evaluate the test split after every epoch; compare.py turns it off and "
                        "evaluates the checkpoint chosen on the validation split once")
    r.add_argument("--progress-every", type=float, default=60, metavar="SECONDS",
                   help="when the output is not a terminal (a log file, compare.py), a line with "
                        "the step, the running training loss and accuracy and the time left every "
                        "this many seconds within an epoch (0 = none); on a terminal one line is "
                        "redrawn in place every 10 steps")
    r.add_argument("--check-every", type=int, default=100,
                   help="read the non-finite flag on the host every this many steps (and at "
                        "epoch ends and before every checkpoint), not every step, so that a GPU "
                        "never waits for the host. A non-finite step changes no weight, nor does "
                        "any step after it; the check then stops the run with the last good "
                        "checkpoint intact")
    g = p.add_argument_group("several devices or machines (tf.distribute; README)")
    g.add_argument("--strategy", choices=choices.STRATEGIES, default="default",
                   help="default: one device; mirrored: every GPU of this machine (or the "
                        "--virtual-devices); multiworker: the machines listed in TF_CONFIG. "
                        "--batch-size is the global batch, split equally over the replicas; the "
                        "loss is averaged over the global batch and weight decay added once, so "
                        "one update equals the single-device update on the same batch, with the "
                        "same images and augmentation as a single-device run")
    g.add_argument("--virtual-devices", type=int, default=0,
                   help="split the first device (the CPU, or the first GPU) into this many "
                        "logical devices, e.g. to try --strategy mirrored on one CPU")
    g.add_argument("--sync-bn", action=argparse.BooleanOptionalAction, default=False,
                   help="batch norm with the statistics of the global batch (all replicas; the "
                        "written-out formulas, whatever --bn-fused says) instead of each "
                        "replica's share")
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
    refuse_flags_that_do_not_apply(p, args, given_on_command_line(argv))
    defaults = dict(choices.MODEL_TRAIN_DEFAULTS[args.model])
    if recipe:  # a recipe reproduces its source: no warm-up unless the source has one
        defaults["warmup_epochs"] = 0.0
    for key, value in defaults.items():
        if getattr(args, key) is None:  # not set by the command line or the recipe
            setattr(args, key, value)
    if args.dropout is None or isinstance(args.dropout, bool):  # the model's default, or a
        dropout = args.dropout                                    # recipe's True / False
        if dropout is None:
            dropout = choices.MODEL_OPTIONS.get(args.model, {}).get("dropout", "none")
        args.dropout = dropout if isinstance(dropout, str) else ("dropout" if dropout else "none")

    # Invalid combinations fail here, before any data is read or any model built.
    if args.batch_size <= 0:
        p.error(f"--batch-size must be positive, got {args.batch_size}")
    if args.epochs <= 0:
        p.error(f"--epochs must be positive, got {args.epochs}")
    if not (args.lr > 0 and math.isfinite(args.lr)):
        p.error(f"--lr must be a positive number, got {args.lr}")
    if not args.warmup_epochs >= 0:
        p.error(f"--warmup-epochs must be >= 0, got {args.warmup_epochs}")
    if args.histograms_every < 0:
        p.error(f"--histograms-every must be >= 0, got {args.histograms_every}")
    if not args.histograms:
        args.histograms_every = 0
    if args.max_steps < 0:
        p.error(f"--max-steps must be 0 (no limit) or positive, got {args.max_steps}")
    if not 0.0 <= args.val_fraction < 1.0:
        p.error(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    if args.weight_decay < 0:
        p.error(f"--weight-decay must be >= 0, got {args.weight_decay}")
    if args.padding < 0:
        p.error(f"--padding must be >= 0, got {args.padding}")
    if args.model == "allcnn" and args.dropout == "spatial":
        p.error("--dropout spatial is an option of --model cnn; allcnn takes dropout or none")
    if not 0.0 <= args.dropact_p <= 1.0:
        p.error(f"--dropact-p must be in [0, 1], got {args.dropact_p}")
    if not 0 < args.rrelu_lower <= args.rrelu_upper:
        p.error("--rrelu-lower and --rrelu-upper must satisfy 0 < lower <= upper")
    if not 0.0 < args.bn_decay < 1.0 or args.bn_epsilon <= 0:
        p.error("--bn-decay must be in (0, 1) and --bn-epsilon positive")
    if args.keep < 1 or args.checkpoint_every < 0:
        p.error("--keep must be >= 1 and --checkpoint-every >= 0")
    if args.check_every < 1 or args.virtual_devices < 0 or not args.progress_every >= 0:
        p.error("--check-every must be >= 1, --virtual-devices and --progress-every >= 0")
    try:
        args.dropout_rates = [float(r) for r in args.dropout_rates.split(",")]
        # Checked (positive, increasing) once, by schedules.build.
        args.lr_steps = [float(s) for s in args.lr_steps.split(",") if s.strip()]
    except ValueError:
        p.error("--dropout-rates and --lr-steps take comma-separated numbers, e.g. 91,136,182")
    if len(args.dropout_rates) != 3 or not all(0 <= r < 1 for r in args.dropout_rates):
        p.error("--dropout-rates needs three rates in [0, 1), e.g. 0.2,0.2,0.4")
    if args.logdir is None:  # dataset and seed in the name: a sample run and a real one differ
        model = f"resnet{args.depth}" if args.model == "resnet" else args.model
        args.logdir = os.path.join("runs", f"{args.dataset}-{model}-{args.act}" +
                                   ("-bn" if args.bn else "") + f"-seed{args.seed}")
    args.recipe_settings = recipe
    return args


def given_on_command_line(argv):
    """The argparse destinations the command line sets (not a default, not the recipe)."""
    probe = build_parser()
    for action in probe._actions:
        action.default = argparse.SUPPRESS
    return set(vars(probe.parse_args(argv)))


def refuse_flags_that_do_not_apply(p, args, given):
    """One line for a flag the chosen model, activation or setting would silently ignore."""
    flag = lambda dest: "--" + dest.replace("_", "-")
    for dest, option in MODEL_OPTION_FLAGS.items():
        takers = [m for m, options in choices.MODEL_OPTIONS.items() if option in options]
        if dest in given and args.model not in takers:
            p.error(f"{flag(dest)} is an option of --model {' and '.join(takers)}, not of "
                    f"{args.model}")
    for dest, users in ACTIVATION_PARAM_USERS.items():
        if dest in given and args.act not in users:
            p.error(f"{flag(dest)} applies to --act {' and '.join(users)}, not to {args.act}")
    for dest, (applies, when) in DEPENDENT_FLAGS.items():
        if dest in given and not applies(args):
            p.error(f"{flag(dest)} only applies {when}")


def activation_params(args):
    """The keyword arguments of activations.make, from the flags of the same names."""
    return {k: getattr(args, k) for k in choices.ACTIVATION_DEFAULTS}


def model_specific(args):
    """The model-only arguments of models.build for the chosen network (choices.MODEL_OPTIONS)."""
    dest = {option: d for d, option in MODEL_OPTION_FLAGS.items()}
    options = {key: getattr(args, dest[key]) for key in choices.MODEL_OPTIONS[args.model]}
    if args.model == "allcnn":  # its dropout is on or off
        options["dropout"] = args.dropout != "none"
    if "dropout_rates" in options:
        options["dropout_rates"] = tuple(options["dropout_rates"])
    return options


# --------------------------------------------------------------------------------------------------
# The train step and the eval step
# --------------------------------------------------------------------------------------------------

def make_steps(model, optimizer, weight_decay, precision, loss_scale, step, epoch_sums, xla,
               grad_norm_sums=None, bad_step=None, strategy=None, global_batch_size=None):
    """The train step and the eval step: two tf.functions, each traced once.

    The learning rate enters as a scalar tensor and the batch shape is fixed, so nothing in the
    loop retraces them. `step` (int64) and `epoch_sums` ([loss sum, correct, images], float64) are
    variables the train step updates in the graph: no host round trip per step. `loss_scale.scale`
    is 1 for fp32 and bf16 (multiplying and dividing by 1 is exact), S for fp16.
    `grad_norm_sums` ([len(model.trainable_variables)] float32), if given, adds each variable's
    gradient norm ||g|| of every applied step, in the graph too (read once per epoch). `bad_step`
    (int64, -1 while no step failed) receives the number of the first step whose loss could not
    be recovered; from then on no step changes a weight, and the host stops the run when it next
    reads `bad_step` (train.py --check-every).

    Under a tf.distribute `strategy` the train step runs once per replica on its share of the
    global batch of `global_batch_size` images (distribute.py); the eval step runs outside the
    replicas, on whole batches.
    """
    import tensorflow as tf

    import layers
    import optimizers

    strategy = strategy or tf.distribute.get_strategy()
    if xla and strategy.num_replicas_in_sync > 1:
        raise UserError("--xla compiles the single-device step; use it with --strategy default")
    if bad_step is None:
        with strategy.scope():
            bad_step = tf.Variable(-1, dtype=tf.int64, trainable=False, name="bad_step")
    variables = model.trainable_variables
    kernels = layers.decay_kernels(model)  # conv and dense kernels: the only decayed variables

    def replica_step(images, labels, lr):
        # images [b, 32, 32, 3] float32, labels [b] int32: this replica's share (b = B / replicas)
        with tf.GradientTape() as tape:
            logits = model(images, training=True)  # [b, classes] float32
            per_image = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)  # [b]
            # This replica's share of the global-batch loss: sum(xent) / B, and wd * sum(||k||^2
            # / 2) / replicas (the gradient of wd * sum(||k||^2 / 2) is wd * k; counted once).
            xent = tf.nn.compute_average_loss(per_image, global_batch_size=global_batch_size)
            loss = xent + tf.nn.scale_regularization_loss(
                weight_decay * tf.add_n([tf.nn.l2_loss(k) for k in kernels]))
            scaled_loss = loss * loss_scale.scale  # float16 gradients need scaling
        # Cross-replica sums (nothing to add with one device): the gradient of the global-batch
        # loss, and [loss, xent sum, correct, images] of the global batch in one all-reduce.
        grads = optimizers.sum_over_replicas(tape.gradient(scaled_loss, variables))
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32),
                                                 labels), tf.float32))
        totals = optimizers.sum_over_replicas([tf.stack(
            [loss, tf.reduce_sum(per_image), correct, tf.cast(tf.size(labels), tf.float32)])])[0]
        global_loss = totals[0]
        grads, finite = loss_scale.unscale(grads)
        ok = tf.logical_and(finite, tf.math.is_finite(global_loss))  # the same on every replica
        # A non-finite step changes no weight. With S > 1 it is skipped and S halved (fp16); at
        # S = 1 nothing can be lowered: `bad_step` records it, no later step changes a weight,
        # and the host stops the run at its next check.
        healthy = bad_step < 0
        if tf.logical_and(ok, healthy):
            optimizer.apply(grads, lr)
            if grad_norm_sums is not None:
                grad_norm_sums.assign_add(tf.stack([tf.norm(g) for g in grads]))
        keep_going = tf.logical_and(tf.math.is_finite(global_loss),
                                    tf.logical_or(ok, loss_scale.scale > 1.0))
        loss_scale.update(ok)
        step.assign_add(1)
        epoch_sums.assign_add(tf.cast(totals[1:], tf.float64))
        if tf.logical_and(healthy, tf.logical_not(keep_going)):
            bad_step.assign(step)
        return totals[1] / totals[3], keep_going  # the global batch's mean xent

    @tf.function(jit_compile=xla, reduce_retracing=True)
    def train_step(images, labels, lr):
        # images [B, 32, 32, 3] float32 and labels [B] int32 (under a strategy: tf.distribute
        # PerReplica values, each replica's share), lr [] float32
        xent, keep_going = strategy.run(replica_step, args=(images, labels, lr))
        # The same on every replica (from all-reduced sums): the first replica's.
        return (strategy.experimental_local_results(xent)[0],
                strategy.experimental_local_results(keep_going)[0])

    @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32),
                                  tf.TensorSpec([None], tf.int32)])
    def eval_step(images, labels):
        logits = model(images, training=False)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        correct = tf.equal(tf.argmax(logits, 1, output_type=tf.int32), labels)
        return tf.reduce_sum(losses), tf.reduce_sum(tf.cast(correct, tf.int64))

    return train_step, eval_step


def with_warmup(lr_at, warmup_steps):
    """lr(t) = schedule(t) * min(1, (t + 1) / W): a linear rise over the first W steps.

    A short warm-up (Goyal et al. 2017, arXiv 1706.02677, section 2.2) keeps the first large
    steps of an untrained network without batch norm from killing its units.
    """
    if warmup_steps <= 0:
        return lr_at
    return lambda t: lr_at(t) * min(1.0, (t + 1) / warmup_steps)


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


def check_same_settings(logdir, config, change_settings):
    """Refuse a log directory holding a run with other settings; return config to write.

    Settings that shape the model or the data must match. Optimisation settings (epochs, lr,
    schedule, ...) may change only with --change-settings; the change is kept in config.json,
    and so is the list of processes that trained the run ("trained_with").
    """
    if not os.path.exists(os.path.join(logdir, "config.json")):
        return dict(config, trained_with=[])
    old = rundir.read_config(logdir)
    diffs = rundir.config_differences(old, config)
    if diffs:
        raise UserError(f"{logdir!r} holds a run with other settings (" + "; ".join(diffs) +
                        "); use a new --logdir or the old flags")
    changed = rundir.config_differences(old, config, rundir.TRAINING)
    if changed and not change_settings:
        raise UserError(f"{logdir!r} was trained with other optimisation settings (" +
                        "; ".join(changed) + "); re-run with the old flags, use a new --logdir, "
                        "or add --change-settings to continue it with the new ones")
    config["trained_with"] = old.get("trained_with", [])
    config["settings_changes"] = old.get("settings_changes", []) + (
        [{"changes": changed}] if changed else [])
    return config


def truncate_metrics_to_checkpoint(metrics_path, finished_epochs):
    """Keep only the metrics.jsonl lines of epochs the restored checkpoint has finished.

    A process killed between writing an epoch's line and saving its checkpoint repeats that
    epoch after resuming; without this its line would appear twice.
    """
    if os.path.exists(metrics_path):
        with open(metrics_path) as f:
            kept = [l for l in f if l.strip() and json.loads(l)["epoch"] <= finished_epochs]
        rundir.atomic_write(metrics_path, "".join(kept))


# TensorBoard names of the metrics.jsonl keys: train and test curves of a kind share a chart.
SCALAR_NAMES = {"train_loss": "loss/train", "val_loss": "loss/val", "test_loss": "loss/test",
                "train_accuracy": "accuracy/train", "val_accuracy": "accuracy/val",
                "test_accuracy": "accuracy/test", "lr": "optimizer/lr",
                "images_per_second": "speed/train_images_per_second"}


def log_epoch(writer, step, record, metrics_path, grad_norms=None, model=None,
              histogram_images=None):
    """One JSON line in metrics.jsonl; TensorBoard scalars, gradient norms and histograms.

    grad_norms: {variable path: mean gradient norm over the epoch}; model and histogram_images
    ([B, 32, 32, 3]): histograms of every variable and of the activations of one batch.
    """
    import tensorflow as tf

    with open(metrics_path, "a") as f:
        f.write(json.dumps(record) + "\n")
    with writer.as_default(step=step):
        for key, name in SCALAR_NAMES.items():
            if key in record:
                tf.summary.scalar(name, record[key])
        for path, value in (grad_norms or {}).items():
            tf.summary.scalar("grad_norm/" + path, value)
        if model is not None:
            # Named by their path in the model, e.g. weights/blocks/0/conv1/kernel.
            for path, v in model._flatten(predicate=lambda v: isinstance(v, tf.Variable),
                                          with_path=True):
                tf.summary.histogram("weights/" + "/".join(map(str, path)), v)
            for name, value in model.activation_outputs(histogram_images).items():
                tf.summary.histogram("activations/" + name, value)
    writer.flush()


def variable_paths(model):
    """The path of each trainable variable in the model, e.g. blocks/0/conv1/kernel, in the
    order of model.trainable_variables."""
    import tensorflow as tf
    paths = {v.ref(): "/".join(map(str, path)) for path, v in model._flatten(
        predicate=lambda v: isinstance(v, tf.Variable), with_path=True)}
    return [paths[v.ref()] for v in model.trainable_variables]


def warn_if_dead(logdir, num_classes, args):
    """After an epoch: a warning line when the training loss sits at ln(classes)."""
    health = rundir.run_health(logdir, num_classes)
    if health and health.startswith("dead"):
        causes = [f"a learning rate too high for this model (--lr {args.lr:g}: the first large "
                  "steps leave units that never fire) or too low",
                  "a warm-up too short (--warmup-epochs)" if args.warmup_epochs < 1 else None,
                  "no batch norm (--bn)" if not args.bn else None]
        print(f"warning: the network is not learning ({health}); likely causes: "
              + "; ".join(c for c in causes if c), flush=True)


def stop_on_non_finite(args, logdir, step, found_at_step, lr):
    """Write DIR/diverged.json and say what to change, with hints that fit this run.

    `step` is the first step whose loss or gradients were not finite; the host reads that
    step every --check-every steps, so it learns of it at `found_at_step`.
    """
    rundir.atomic_write(os.path.join(logdir, "diverged.json"), json.dumps(
        {"step": step, "found_at_step": found_at_step, "check_every": args.check_every,
         "lr": lr}))
    hints = [f"lower --lr (now {args.lr:g})"]
    if args.warmup_epochs < 1:
        hints.append("a longer warm-up (--warmup-epochs 1)")
    if not args.bn:
        hints.append("batch norm (--bn)")
    if args.precision != "fp32":
        hints.append("--precision fp32")
    raise UserError(f"the loss became non-finite at step {step} (found at step {found_at_step}, "
                    f"checked every {args.check_every} steps) with lr {lr:.3g}; no "
                    f"weights were changed by that step and the last good checkpoint stays in "
                    f"{logdir}; try " + ", or ".join(hints))


def short_run_note(args, total_steps):
    """A note when the run is too short for batch norm's moving averages to forget their start.

    Each step sets m <- decay * m + (1 - decay) * batch statistic, so after S steps the initial
    values (mean 0, variance 1) still weigh decay^S in the statistics that evaluation uses.
    """
    from diagnostics import initial_share_left

    if not args.bn or args.bn_test_batch_stats:
        return None
    left = initial_share_left(args.bn_decay, total_steps)
    if left <= 0.01:
        return None
    forgets = math.floor(1000 * 0.001 ** (1 / total_steps)) / 1000  # decay^S <= 0.1 %
    return (f"note: after {total_steps} steps batch norm's moving averages still hold "
            f"{100 * left:.0f} % of their initial values (--bn-decay "
            f"{args.bn_decay:g}), and evaluation uses them; for a run this short, "
            f"--bn-decay {forgets:g} leaves at most 0.1 %, or evaluate with eval.py "
            f"--bn-test-batch-stats")


def epoch_line(args, record, eval_names, seconds, seconds_left):
    """The line printed at the end of each epoch."""
    return (f"epoch {record['epoch']}/{args.epochs}  train loss {record['train_loss']:.4f} acc "
            f"{100 * record['train_accuracy']:.2f}%  " + "  ".join(
                f"{n} loss {record[n + '_loss']:.4f} acc {100 * record[n + '_accuracy']:.2f}%"
                for n in eval_names) + f"  lr {record['lr']:.4g}  "
            f"{record['images_per_second']:.0f} img/s  {rundir.fmt_time(seconds)}, "
            f"~{rundir.fmt_time(seconds_left)} left")


def describe_model(args):
    """The model in words for the first line, e.g. 'ResNet-20 v1 (shortcut A), act elu, BN'."""
    if args.model == "resnet":
        name = f"ResNet-{args.depth} v{args.resnet_version} (shortcut {args.shortcut}" + (
            ", bottleneck)" if args.bottleneck else ")")
    elif args.model == "cnn":
        name = f"cnn ({args.order}, {args.dropout} {','.join(map(str, args.dropout_rates))})"
    else:
        name = "All-CNN-C" + (" without dropout" if args.dropout == "none" else "")
    bn = ("batch norm (" + ("fused kernel" if args.bn_fused else "written-out formulas") + ")"
          if args.bn else "no batch norm")
    return f"{name}, act {args.act}, {bn}"


def main(argv=None):
    args = parse_args(argv)
    # SIGINT / SIGTERM only set a flag; the loop finishes its step, saves a checkpoint and exits.
    stop_signal = []
    previous = {sig: signal.signal(sig, lambda signum, frame: stop_signal.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with contextlib.ExitStack() as held:  # the log directory's lock, released on any exit
            return train(args, stop_signal, held)
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

def train(args, stop_signal, held):
    """The algorithm; `stop_signal` becomes non-empty when the process is asked to stop, `held`
    (a contextlib.ExitStack) holds what the run keeps until it returns."""
    import tensorflow as tf

    import batch_norm
    import cifar_download
    import cifar_input
    import distribute
    import models
    import optimizers
    import schedules

    # Devices first: logical devices can only be made before TensorFlow initialises them.
    strategy = distribute.make_strategy(args.strategy, args.virtual_devices)
    distribute.check_batch_size(strategy, args.batch_size)
    shared_logdir = args.logdir
    if not distribute.is_chief(strategy):
        # multiworker: worker 0 writes the log directory. Every worker takes part in saving a
        # checkpoint (collective reads), so the others write theirs to a scratch folder, and
        # all of them resume from worker 0's checkpoints.
        import tempfile
        args.logdir = tempfile.mkdtemp(prefix="rawtf-worker-")
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

    # ----------------------------------------------------------------------------------------------
    # Data (found and read before the log directory exists: a wrong --data-dir leaves nothing)
    # ----------------------------------------------------------------------------------------------
    data_root = cifar_download.find_data(args.data_dir, args.dataset)
    splits = cifar_input.load_dataset(data_root, args.dataset, labels=args.labels,
                                      val_fraction=args.val_fraction,
                                      train_subset=args.train_subset)
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
    schedule_steps = steps_per_epoch * args.epochs  # the schedule spans every epoch
    total_steps = min(schedule_steps, args.max_steps) if args.max_steps else schedule_steps

    # ----------------------------------------------------------------------------------------------
    # Model, optimizer, learning-rate schedule
    # ----------------------------------------------------------------------------------------------
    compute_dtype = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[args.precision]
    with strategy.scope():  # variables made here have a copy on every replica
        model = models.build(args.model, num_classes, act=args.act,
                             act_params=activation_params(args), bn=args.bn,
                             bn_decay=args.bn_decay, bn_epsilon=args.bn_epsilon,
                             bn_test_batch_stats=args.bn_test_batch_stats,
                             bn_fused=args.bn_fused, seed=args.seed,
                             data_format=args.data_format, compute_dtype=compute_dtype,
                             **model_specific(args))
        optimizer = optimizers.build(args.optimizer, model.trainable_variables,
                                     momentum=args.momentum)
        loss_scale = make_loss_scale(args.precision)
    for bn in batch_norm.layers_of(model):  # statistics over all replicas (written-out path)
        bn.sync = args.sync_bn
    try:  # schedules.build checks its arguments (--lr-steps positive and increasing) once
        lr_at = schedules.build(args.schedule, args.lr, schedule_steps, steps_per_epoch,
                                boundaries=args.lr_steps, unit=args.lr_steps_unit,
                                warmup_fraction=args.warmup_fraction)
    except UserError as e:
        raise UserError(f"--schedule {args.schedule}: {e}") from None
    lr_at = with_warmup(lr_at, round(args.warmup_epochs * steps_per_epoch))

    # ----------------------------------------------------------------------------------------------
    # Log directory: config, checkpoints (resume), metrics, TensorBoard
    # ----------------------------------------------------------------------------------------------
    rundir.check_writable(args.logdir)
    held.enter_context(rundir.only_writer(args.logdir))  # one train.py per log directory
    config = run_config(args, model, num_classes, mean, std, steps_per_epoch, total_steps,
                        len(train_labels), data_root)
    # Refused here, before any checkpoint is read; written once it is known that this process
    # trains (a finished run's config.json stays as it is).
    config = check_same_settings(args.logdir, config, args.change_settings)

    with strategy.scope():
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")  # finished steps
        best_accuracy = tf.Variable(-1.0, dtype=tf.float64, trainable=False,
                                    name="best_accuracy")
        # Running sums over the current epoch, in the checkpoint so an interrupted epoch's
        # figures are complete after resuming: [loss sum, correct, images] and each variable's
        # gradient norm.
        epoch_sums = tf.Variable(tf.zeros([3], tf.float64), trainable=False, name="epoch_sums")
        grad_norm_sums = tf.Variable(tf.zeros([len(model.trainable_variables)]),
                                     trainable=False, name="grad_norm_sums")
        # The first non-finite step (-1: none); not in the checkpoint: a resumed run starts clean.
        bad_step = tf.Variable(-1, dtype=tf.int64, trainable=False, name="bad_step")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step,
                                     best_accuracy=best_accuracy, epoch_sums=epoch_sums,
                                     grad_norm_sums=grad_norm_sums, loss_scale=loss_scale)
    last_ckpts = tf.train.CheckpointManager(checkpoint, os.path.join(args.logdir, "ckpt"),
                                            max_to_keep=args.keep)
    # The best checkpoint is chosen on the validation split only; without one, the last
    # checkpoint is the result (choosing on test accuracy would overstate it).
    best_ckpts = tf.train.CheckpointManager(checkpoint, os.path.join(args.logdir, "best"),
                                            max_to_keep=1) if "val" in eval_sets else None
    resume_from = tf.train.latest_checkpoint(os.path.join(shared_logdir, "ckpt"))
    start_step = 0
    if resume_from:
        rundir.restore_or_refuse(checkpoint, resume_from, shared_logdir)
        start_step = int(step.numpy())
        if start_step >= total_steps:
            print(f"{args.logdir} is already complete ({start_step}/{total_steps} steps); to "
                  "train on, raise --epochs (with --change-settings) or use a new --logdir",
                  flush=True)
            return 0
        print(f"resuming {args.logdir} from step {start_step} "
              f"(epoch {start_step // steps_per_epoch + 1}, step "
              f"{start_step % steps_per_epoch} of {steps_per_epoch})", flush=True)
    # Which code, library and machine trained which steps: one entry per process that trains.
    config["trained_with"].append({"from_step": start_step,
                                   **{k: config[k] for k in rundir.ENVIRONMENT}})
    rundir.write_config(args.logdir, config)
    metrics_path = os.path.join(args.logdir, "metrics.jsonl")
    truncate_metrics_to_checkpoint(metrics_path, start_step // steps_per_epoch)
    if os.path.exists(os.path.join(args.logdir, "diverged.json")):  # an earlier attempt's
        os.remove(os.path.join(args.logdir, "diverged.json"))
    writer = tf.summary.create_file_writer(os.path.join(args.logdir, "tb"))
    paths = variable_paths(model)

    # ----------------------------------------------------------------------------------------------
    # The train step and the eval step (each traced once: lr is a tensor argument, shapes fixed)
    # ----------------------------------------------------------------------------------------------
    train_step, eval_step = make_steps(model, optimizer, args.weight_decay, args.precision,
                                       loss_scale, step, epoch_sums, args.xla, grad_norm_sums,
                                       bad_step=bad_step, strategy=strategy,
                                       global_batch_size=args.batch_size)

    def check_finite(host_step):
        """One host read: stop the run if a step since the last check could not be recovered."""
        bad = int(bad_step.numpy())
        if bad >= 0:
            stop_on_non_finite(args, args.logdir, bad, host_step, lr_at(bad - 1))

    # ----------------------------------------------------------------------------------------------
    # The loop: epochs of steps; evaluate, log and checkpoint at every epoch end
    # ----------------------------------------------------------------------------------------------
    progress = rundir.Progress(every=args.progress_every)
    print(f"training {describe_model(args)} on {args.dataset}: {len(train_labels)} images, "
          f"{steps_per_epoch} steps/epoch, {total_steps} steps; logdir {args.logdir}", flush=True)
    note = short_run_note(args, total_steps)
    if note:
        print(note, flush=True)
    run_start, first_step_seconds = time.time(), None
    seconds_per_step = None  # of whole epochs (train, evaluate, log, checkpoint): for time left
    gpus = ["/gpu:0"] if tf.config.list_physical_devices("GPU") else []
    # Finished steps, counted on the host: no read of the variable `step` per step (the graph
    # increments it; it is the truth in every checkpoint and the two stay equal).
    host_step = start_step
    while host_step < total_steps:
        epoch = host_step // steps_per_epoch  # 0-based epoch being trained
        first = host_step % steps_per_epoch
        epoch_end = min((epoch + 1) * steps_per_epoch, total_steps)
        t0, seen, t_first, seen_first = time.time(), 0, None, 0

        def images_per_second(now):
            """This epoch's rate so far without its first step (tracing, the input pipeline's
            start): the same measure for a whole epoch and for a resumed partial one."""
            return (seen - seen_first) / (now - t_first) if seen > seen_first else \
                seen / (now - t0)

        # Each replica gets its share of every global batch (the whole batch on one device).
        batches = distribute.distribute_batches(
            strategy, lambda: train_data.epoch(epoch, start_step=first))
        if gpus and strategy.num_replicas_in_sync == 1:  # copy the next batches to the GPU
            batches = batches.apply(tf.data.experimental.prefetch_to_device(gpus[0]))
        for images, labels in batches:
            lr = lr_at(host_step)
            train_step(images, labels, tf.constant(lr, tf.float32))
            host_step += 1
            seen += args.batch_size  # full global batches (drop_remainder)
            if t_first is None:  # the rate leaves out this process's first step (tracing)
                t_first, seen_first = time.time(), seen
            if first_step_seconds is None:
                first_step_seconds = time.time() - START
            stopping = stop_requested(args, stop_signal, host_step - start_step)
            saving = args.checkpoint_every and host_step % args.checkpoint_every == 0
            # The non-finite check: every --check-every steps, at the epoch end, before a save.
            if host_step % args.check_every == 0 or host_step >= epoch_end or stopping or saving:
                check_finite(host_step)
            if stopping and host_step < epoch_end:  # at an epoch end: after its evaluation
                return save_and_exit(last_ckpts, host_step, stop_signal[0])
            if saving and host_step < epoch_end:
                last_ckpts.save(checkpoint_number=host_step)
            done = host_step - epoch * steps_per_epoch
            if progress.due(done):
                # Until a whole epoch is timed, the estimate counts training steps only.
                per_step = seconds_per_step or (time.time() - t0) * args.batch_size / seen
                text = (f"epoch {epoch + 1}/{args.epochs} step {done}/{steps_per_epoch} "
                        f"{rundir.fmt_time((total_steps - host_step) * per_step)} "
                        + ("left" if seconds_per_step else "of training left"))
                if not progress.tty:  # at most once a minute: reading the sums costs one wait
                    s = epoch_sums.numpy()  # [loss sum, correct, images] of this epoch so far
                    text += (f"  train loss {s[0] / s[2]:.4f} acc {100 * s[1] / s[2]:.2f}%  "
                             f"{images_per_second(time.time()):.0f} img/s")
                progress.update(text)
            if host_step >= epoch_end:
                break
        t_end = time.time()
        rate = images_per_second(t_end)

        # Evaluate in inference mode (moving batch-norm statistics, no dropout).
        s = epoch_sums.numpy()
        record = {"epoch": epoch + 1, "step": host_step, "lr": lr,
                  "train_loss": s[0] / s[2], "train_accuracy": s[1] / s[2],
                  "seconds": t_end - t0, "images_per_second": rate}
        if first:
            record["resumed_at_step"] = epoch * steps_per_epoch + first
        for name, pipeline in eval_sets.items():
            if name == "test" and not args.test_every_epoch:
                continue
            record[f"{name}_loss"], record[f"{name}_accuracy"] = evaluate(eval_step, pipeline)

        # Log: one JSON line; TensorBoard scalars, gradient norms and (every few epochs) histograms.
        epoch_steps = s[2] / args.batch_size  # steps of this epoch, before and after a resume
        grad_norms = dict(zip(paths, (grad_norm_sums.numpy() / epoch_steps).tolist()))
        histograms = args.histograms_every and ((epoch + 1) % args.histograms_every == 0 or
                                                host_step >= total_steps)
        # Activation histograms of 32 test images (a whole batch costs about 3x as much).
        histogram_images = next(iter(eval_sets["test"].epoch(0)))[0][:32] if histograms else None
        log_epoch(writer, host_step, record, metrics_path, grad_norms,
                  model if histograms else None, histogram_images)
        warn_if_dead(args.logdir, num_classes, args)

        # Checkpoint: the best on validation accuracy (when there is a validation split), then last.
        epoch_sums.assign(tf.zeros([3], tf.float64))
        grad_norm_sums.assign(tf.zeros_like(grad_norm_sums))
        if best_ckpts is not None and record["val_accuracy"] > float(best_accuracy.numpy()):
            best_accuracy.assign(record["val_accuracy"])
            best_ckpts.save(checkpoint_number=host_step)
        last_ckpts.save(checkpoint_number=host_step)

        # Time left from whole epochs: training, evaluation, histograms and checkpoints.
        epoch_seconds = time.time() - t0
        seconds_per_step = epoch_seconds / max(seen // args.batch_size, 1)
        progress.done(epoch_line(args, record, [n for n in eval_sets if n + "_loss" in record],
                                 epoch_seconds,
                                 (total_steps - host_step) * seconds_per_step))
        if stop_signal:
            return save_and_exit(last_ckpts, host_step, stop_signal[0])

    summary = {"steps": host_step, "seconds_this_process": time.time() - run_start,
               "first_step_seconds": first_step_seconds,
               "train_step_traces": train_step.experimental_get_tracing_count(),
               "eval_step_traces": eval_step.experimental_get_tracing_count()}
    summary.update({k: v for k, v in record.items() if k.endswith("accuracy")})
    print("done: " + json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    run_script(main)
