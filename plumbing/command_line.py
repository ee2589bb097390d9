"""train.py's command line: every flag with its default and help, and the checks of their values.

TensorFlow-free, so that `python train.py --help` and a mistyped flag answer at once. The flags come
in groups, one function each (data, model, activation, batch norm, optimisation, run, devices);
`parse_args` applies a --recipe, fills the per-model defaults and refuses, in one line, a value
out of range or a flag that the chosen model or activation would silently ignore.
"""

import argparse
import difflib
import math
import os
import re

from plumbing import choices
from plumbing.errors import UserError
from plumbing.help_format import HelpFormatter
from plumbing.recipes import DESCRIPTIONS, RECIPES

HISTOGRAMS_EVERY = 5

# Flags that set an option of some models only (argparse destination -> constructor argument).
MODEL_OPTION_FLAGS = {"depth": "depth", "resnet_version": "version", "shortcut": "shortcut",
                      "bottleneck": "bottleneck", "bottleneck_stride": "bottleneck_stride",
                      "projection_bn": "projection_bn", "stem_act": "stem_act",
                      "conv_bias": "conv_bias", "score_act": "score_act", "dropout": "dropout",
                      "dropout_rates": "dropout_rates", "order": "order"}
# Activation parameters and the activations that use them (others accept any activation).
ACTIVATION_PARAM_USERS = {param: tuple(act for act, params in choices.ACTIVATION_PARAMS.items()
                                       if param in params)
                          for param in choices.ACTIVATION_DEFAULTS}
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
    """train.py's command line: a preset, then one group of flags per concern."""
    p = Parser(
        description="Train a CIFAR network written in low-level TensorFlow 2. Re-run the same "
                    "command with the same --logdir to continue an interrupted run.",
        formatter_class=HelpFormatter)
    p.add_argument("--recipe", choices=sorted(RECIPES), default=None, metavar="NAME",
                   help="a named preset reproducing a source; flags given override it:\n" +
                        "\n".join(f"  {name}: {DESCRIPTIONS[name]}" for name in sorted(RECIPES)))
    data_flags(p.add_argument_group("data"))
    model_flags(p.add_argument_group("model"))
    activation_flags(p.add_argument_group("activation"))
    batch_norm_flags(p.add_argument_group("batch norm"))
    optimisation_flags(p.add_argument_group("optimisation"))
    run_flags(p.add_argument_group("run"))
    device_flags(p.add_argument_group("several devices or machines (tf.distribute; README)"))
    return p


def data_flags(g):
    T = choices.TRAIN_DEFAULTS
    g.add_argument("--data-dir", default=os.environ.get("CIFAR_DATA_DIR", "data"),
                   help="folder with the extracted CIFAR binaries or the official .tar.gz "
                        "(default: the environment variable CIFAR_DATA_DIR if set, else data)")
    g.add_argument("--dataset", choices=choices.DATASETS, default=T["dataset"],
                   help="cifar10-sample is bundled and runs offline")
    g.add_argument("--labels", choices=["fine", "coarse"], default="fine",
                   help="CIFAR-100 label set (coarse = the 20 superclasses)")
    g.add_argument("--val-fraction", type=float, default=0.0,
                   help="stratified share of the training files held out for validation")
    g.add_argument("--train-subset", type=int, default=0, metavar="N",
                   help="train on a stratified N of the training images left after the "
                        "validation split (0: all), for short experiments")
    g.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                   help="random crop (zero padding) and horizontal flip during training")
    g.add_argument("--padding", type=int, default=4, help="zero padding before the random crop")
    g.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True,
                   help="random horizontal flip")
    g.add_argument("--normalization", choices=choices.NORMALIZATIONS,
                   default=choices.NORMALIZATIONS[0],
                   help="per-channel mean/std of the training split, per-image standardisation, "
                        "or per-pixel: x/255 minus the training split's mean image")


def model_flags(g):
    T = choices.TRAIN_DEFAULTS
    g.add_argument("--model", choices=choices.MODELS, default=T["model"],
                   help="allcnn = All-CNN-C (models/allcnn.py), resnet = ResNet v1/v2 "
                        "(models/resnet.py), cnn = the dropout-placement CNN (models/cnn.py)")
    g.add_argument("--depth", type=int, default=choices.MODEL_OPTIONS["resnet"]["depth"],
                   help="ResNet depth: 6n+2 (basic blocks) or 9n+2 (v2 bottleneck)")
    g.add_argument("--resnet-version", type=int, choices=[1, 2],
                   default=choices.MODEL_OPTIONS["resnet"]["version"],
                   help="1 = post-activation (He 2015), 2 = pre-activation (He 2016)")
    g.add_argument("--bottleneck", action=argparse.BooleanOptionalAction,
                   default=choices.MODEL_OPTIONS["resnet"]["bottleneck"],
                   help="ResNet v2 bottleneck blocks (default: for 9n+2 depths from 164 on)")
    g.add_argument("--shortcut", choices=["A", "B"],
                   default=choices.MODEL_OPTIONS["resnet"]["shortcut"],
                   help="A = zero-padded identity (the CIFAR paper), B = 1x1 projection")
    g.add_argument("--bottleneck-stride", choices=["1x1", "3x3"],
                   default=choices.MODEL_OPTIONS["resnet"]["bottleneck_stride"],
                   help="ResNet bottleneck: the conv that strides")
    g.add_argument("--projection-bn", action=argparse.BooleanOptionalAction,
                   default=choices.MODEL_OPTIONS["resnet"]["projection_bn"],
                   help="ResNet v1, shortcut B: batch norm after the projection (default: with "
                        "--bn)")
    g.add_argument("--stem-act", choices=choices.ACTIVATIONS,
                   default=choices.MODEL_OPTIONS["resnet"]["stem_act"],
                   help="ResNet v1: activation after the first conv (default: --act)")
    g.add_argument("--conv-bias", action=argparse.BooleanOptionalAction,
                   default=choices.MODEL_OPTIONS["resnet"]["conv_bias"],
                   help="ResNet: keep conv biases even where batch norm follows")
    g.add_argument("--score-act", action=argparse.BooleanOptionalAction,
                   default=choices.MODEL_OPTIONS["allcnn"]["score_act"],
                   help="allcnn: batch norm and activation on the class scores too, as the "
                        "paper's table (without batch norm a relu there can leave every score at "
                        "0 and the loss stuck at ln(classes))")
    g.add_argument("--dropout", choices=["none", "dropout", "spatial"], default=None,
                   help="cnn: dropout kind (spatial drops whole channels in the conv blocks; "
                        f"default {choices.MODEL_OPTIONS['cnn']['dropout']}); allcnn: dropout "
                        "turns on the paper's dropout (default none: without batch norm it "
                        "stalls short runs)")
    g.add_argument("--dropout-rates",
                   default=",".join(map(str, choices.MODEL_OPTIONS["cnn"]["dropout_rates"])),
                   help="cnn: rates after conv block 1, conv block 2, dense layer")
    g.add_argument("--order", default=choices.MODEL_OPTIONS["cnn"]["order"],
                   help="cnn: layer order within a block, dash-separated parts conv, bn, act, "
                        "pool, drop")


def activation_flags(g):
    A, T = choices.ACTIVATION_DEFAULTS, choices.TRAIN_DEFAULTS
    g.add_argument("--act", choices=choices.ACTIVATIONS, default=T["act"],
                   help="activation (activations.py)")
    g.add_argument("--leak", type=float, default=A["leak"], help="lrelu negative slope")
    g.add_argument("--elu-alpha", type=float, default=A["elu_alpha"], help="elu alpha")
    g.add_argument("--prelu-init", type=float, default=A["prelu_init"],
                   help="prelu initial alpha")
    g.add_argument("--rrelu-lower", type=float, default=A["rrelu_lower"],
                   help="rrelu: a ~ U(lower, upper)")
    g.add_argument("--rrelu-upper", type=float, default=A["rrelu_upper"],
                   help="rrelu: a ~ U(lower, upper)")
    g.add_argument("--dropact-p", type=float, default=A["dropact_p"],
                   help="dropact: probability of keeping the ReLU")
    g.add_argument("--gaaf-shift", type=float, default=A["gaaf_shift"],
                   help="gaaf-relu: sigmoid shift")
    g.add_argument("--gaaf-k", type=float, default=A["gaaf_k"], help="gaaf: K of g(x)")
    g.add_argument("--gaaf-variant", choices=["floor", "round"], default=A["gaaf_variant"],
                   help="gaaf: the paper's floor or the GAAF-Keras round version")


def batch_norm_flags(g):
    M = choices.MODEL_DEFAULTS
    g.add_argument("--bn", action=argparse.BooleanOptionalAction, default=M["bn"],
                   help="batch normalisation after each convolution (batch_norm.py)")
    g.add_argument("--bn-decay", type=float, default=M["bn_decay"], help="moving-average decay")
    g.add_argument("--bn-epsilon", type=float, default=M["bn_epsilon"], help="variance epsilon")
    g.add_argument("--bn-fused", action=argparse.BooleanOptionalAction, default=M["bn_fused"],
                   help="speed switch: batch norm through TF's fused kernel "
                        "(FusedBatchNormV3, through tf.raw_ops), the same formula (tested equal) and "
                        "faster; without it the written-out formulas of batch_norm.py run")
    g.add_argument("--bn-test-batch-stats", action=argparse.BooleanOptionalAction,
                   default=M["bn_test_batch_stats"],
                   help="educational: normalise test batches by their own statistics too (a "
                        "common bug)")


def optimisation_flags(g):
    T = choices.TRAIN_DEFAULTS
    per_model = {key: ", ".join(f"{m} {d[key]}" for m, d in choices.MODEL_TRAIN_DEFAULTS.items())
                 for key in ("lr", "warmup_epochs")}
    g.add_argument("--epochs", type=int, default=T["epochs"], help="epochs to train")
    g.add_argument("--batch-size", type=int, default=T["batch_size"], help="images per step")
    g.add_argument("--optimizer", choices=choices.OPTIMIZERS, default=T["optimizer"],
                   help="optimizers.py")
    g.add_argument("--momentum", type=float, default=T["momentum"],
                   help="momentum / nesterov only")
    g.add_argument("--lr", type=float, default=None,
                   help=f"base (peak) learning rate (default per model: {per_model['lr']})")
    g.add_argument("--warmup-epochs", type=float, default=None,
                   help="linear warm-up: lr(t) = schedule(t) * min(1, (t + 1) / W) over the "
                        f"first W = warmup_epochs * steps_per_epoch steps (default per model: "
                        f"{per_model['warmup_epochs']}; 0 with a --recipe)")
    g.add_argument("--schedule", choices=choices.SCHEDULES, default=T["schedule"],
                   help="learning-rate schedule (schedules.py)")
    g.add_argument("--lr-steps", default="",
                   help="step schedule: comma-separated boundaries where lr is multiplied by 0.1 "
                        "(default: none)")
    g.add_argument("--lr-steps-unit", choices=["epochs", "steps"], default="epochs",
                   help="unit of --lr-steps")
    g.add_argument("--warmup-fraction", type=float, default=0.15,
                   help="one-cycle: share of steps spent rising from lr/25 to lr")
    g.add_argument("--weight-decay", type=float, default=T["weight_decay"],
                   help="wd in loss += wd * sum(l2_loss(kernel)); gradient + wd * kernel")
    g.add_argument("--max-steps", type=int, default=0,
                   help="stop after this many steps in total; the schedule still spans "
                        "--epochs (0 = run all epochs)")


def run_flags(g):
    M = choices.MODEL_DEFAULTS
    g.add_argument("--seed", type=int, default=0, help="weights, data order, augmentation")
    g.add_argument("--deterministic", action=argparse.BooleanOptionalAction, default=False,
                   help="deterministic ops: a resumed run ends bit-identical to an uninterrupted one")
    g.add_argument("--logdir", default=None,
                   help="log directory (default: runs/<dataset>-<model>-<act>[-bn]-seed<seed>)")
    g.add_argument("--change-settings", action="store_true",
                   help="continue a log directory although optimisation settings (--epochs, "
                        "--lr, --schedule, ...) differ from its config.json: the schedule is "
                        "rebuilt at the current step (the learning rate can jump) and the change "
                        "is recorded in config.json; without it such a re-run is refused")
    g.add_argument("--keep", type=int, default=3, help="number of recent checkpoints kept")
    g.add_argument("--checkpoint-every", type=int, default=500,
                   help="also checkpoint every this many steps (besides every epoch end)")
    g.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32",
                   help="compute dtype; variables stay float32 (fp16 uses dynamic loss scaling)")
    g.add_argument("--xla", action=argparse.BooleanOptionalAction, default=False,
                   help="compile the train step with XLA (jit_compile=True)")
    g.add_argument("--data-format", choices=["NHWC", "NCHW"], default=M["data_format"],
                   help="NCHW is usually faster on GPUs; TF's CPU kernels want NHWC")
    g.add_argument("--histograms-every", type=int, default=HISTOGRAMS_EVERY, metavar="N",
                   help="TensorBoard histograms of weights and activations every N epochs and "
                        "after the last (0 = never)")
    g.add_argument("--histograms", action=argparse.BooleanOptionalAction, default=True,
                   help="--no-histograms: none at all, the same as --histograms-every 0")
    g.add_argument("--test-every-epoch", action=argparse.BooleanOptionalAction, default=True,
                   help="evaluate the test split after every epoch; compare.py turns it off and "
                        "evaluates the checkpoint chosen on the validation split once")
    g.add_argument("--progress-every", type=float, default=60, metavar="SECONDS",
                   help="when the output is not a terminal (a log file, compare.py), a line with "
                        "the step, the running training loss and accuracy and the time left every "
                        "this many seconds within an epoch (0 = none); on a terminal one line is "
                        "redrawn in place every 10 steps")
    g.add_argument("--check-every", type=int, default=100,
                   help="read the non-finite flag on the host every this many steps (and at "
                        "epoch ends and before every checkpoint), not every step, so that a GPU "
                        "never waits for the host. A non-finite step changes no weight, nor does "
                        "any step after it; the check then stops the run with the last good "
                        "checkpoint intact")
    # For the tests: behave as if SIGINT arrived after this many steps of this process.
    g.add_argument("--interrupt-after", type=int, default=0, help=argparse.SUPPRESS)


def device_flags(g):
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
    """The chosen activation's own parameters, from the flags of the same names: {"elu_alpha":
    1.0} for --act elu, {} for --act relu (choices.ACTIVATION_PARAMS)."""
    return {k: getattr(args, k) for k in choices.ACTIVATION_PARAMS.get(args.act, {})}


def model_options(args):
    """The chosen model's own constructor arguments, from their flags (choices.MODEL_OPTIONS):
    AllCNN dropout and score_act; ResNet depth, version (--resnet-version), shortcut, ...;
    CNN dropout, dropout_rates and order."""
    dest = {option: d for d, option in MODEL_OPTION_FLAGS.items()}
    options = {key: getattr(args, dest[key]) for key in choices.MODEL_OPTIONS[args.model]}
    if args.model == "allcnn":  # its dropout is on or off
        options["dropout"] = args.dropout != "none"
    if "dropout_rates" in options:
        options["dropout_rates"] = tuple(options["dropout_rates"])
    return options


def check_depth(args):
    """A depth that gives no ResNet fails before any data is read (models/resnet.py: layout)."""
    if args.model == "resnet":
        from models.resnet import layout
        try:
            layout(args.depth, args.resnet_version, args.bottleneck)
        except UserError as e:
            raise UserError(f"--depth: {e}") from None
