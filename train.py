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
import json
import math
import os
import signal
import sys

from errors import UserError
from recipes import RECIPES

# TensorFlow's start-up INFO and WARNING lines drown the progress output; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# --------------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------------

def build_parser():
    import activations  # the registry of activation names (imports TensorFlow)
    p = argparse.ArgumentParser(
        description="Train a CIFAR network written in low-level TensorFlow 2. Re-run the same "
                    "command with the same --logdir to continue an interrupted run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--recipe", choices=sorted(RECIPES), default=None,
                   help="a named preset reproducing a source; flags given override it")
    d = p.add_argument_group("data")
    d.add_argument("--data-dir", default="data",
                   help="folder with the extracted CIFAR binaries or the official .tar.gz")
    d.add_argument("--dataset", choices=["cifar10", "cifar100", "cifar10-sample"],
                   default="cifar10", help="cifar10-sample is bundled and runs offline")
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
    m.add_argument("--model", choices=["allcnn", "resnet", "cnn"], default="allcnn")
    m.add_argument("--depth", type=int, default=20,
                   help="ResNet depth: 6n+2 (basic blocks) or 9n+2 (v2 bottleneck)")
    m.add_argument("--resnet-version", type=int, choices=[1, 2], default=1,
                   help="1 = post-activation (He 2015), 2 = pre-activation (He 2016)")
    m.add_argument("--bottleneck", action=argparse.BooleanOptionalAction, default=None,
                   help="ResNet v2 bottleneck blocks (default: for 9n+2 depths from 164 on)")
    m.add_argument("--shortcut", choices=["A", "B"], default="A",
                   help="A = zero-padded identity (the CIFAR paper), B = 1x1 projection")
    m.add_argument("--act", choices=activations.NAMES, default="relu", help="activation")
    m.add_argument("--leak", type=float, default=0.2, help="lrelu negative slope")
    m.add_argument("--elu-alpha", type=float, default=1.0, help="elu alpha")
    m.add_argument("--prelu-init", type=float, default=0.25, help="prelu initial alpha")
    m.add_argument("--rrelu-lower", type=float, default=3.0, help="rrelu: a ~ U(lower, upper)")
    m.add_argument("--rrelu-upper", type=float, default=8.0, help="rrelu: a ~ U(lower, upper)")
    m.add_argument("--p", dest="dropact_p", type=float, default=0.95,
                   help="dropact: probability of keeping the ReLU")
    m.add_argument("--shift", dest="gaaf_shift", type=float, default=4.0,
                   help="gaaf-relu: sigmoid shift")
    m.add_argument("--gaaf-k", type=float, default=1e4, help="gaaf: K of g(x)")
    m.add_argument("--gaaf-variant", choices=["floor", "round"], default="floor",
                   help="gaaf: the paper's floor or the GAAF-Keras round version")
    m.add_argument("--bn", action=argparse.BooleanOptionalAction, default=False,
                   help="batch normalisation after each convolution")
    m.add_argument("--bn-decay", type=float, default=0.99, help="moving-average decay")
    m.add_argument("--bn-epsilon", type=float, default=1e-3, help="variance epsilon")
    m.add_argument("--bn-fused", action=argparse.BooleanOptionalAction, default=True,
                   help="batch norm through TF's fused kernel: the same formula (tested equal) "
                        "at 1.3x the training speed; --no-bn-fused runs the written-out version")
    m.add_argument("--bn-test-batch-stats", action=argparse.BooleanOptionalAction, default=False,
                   help="educational: use batch statistics at test time too (the seed blog's bug)")
    m.add_argument("--dropout", choices=["none", "dropout", "spatial"], default="dropout",
                   help="cnn: dropout kind (spatial drops whole channels in the conv blocks); "
                        "allcnn: none switches its dropout off")
    m.add_argument("--dropout-rates", default="0.2,0.2,0.4",
                   help="cnn: rates after conv block 1, conv block 2, dense layer")
    m.add_argument("--order", default="conv-bn-act-pool-drop", help="cnn: layer order")
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, default=30)
    o.add_argument("--batch-size", type=int, default=128)
    o.add_argument("--optimizer", choices=["momentum", "nesterov", "sgd", "adam"],
                   default="momentum")
    o.add_argument("--momentum", type=float, default=0.9)
    o.add_argument("--lr", type=float, default=0.05, help="base (peak) learning rate")
    o.add_argument("--schedule", choices=["step", "cosine", "one-cycle", "constant"],
                   default="cosine")
    o.add_argument("--lr-steps", default="",
                   help="step schedule: comma-separated boundaries where lr is multiplied by 0.1")
    o.add_argument("--lr-steps-unit", choices=["epochs", "steps"], default="epochs")
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
    r.add_argument("--logdir", default=None, help="log directory (default runs/<model>-<act>)")
    r.add_argument("--keep", type=int, default=3, help="number of recent checkpoints kept")
    r.add_argument("--checkpoint-every", type=int, default=500,
                   help="also checkpoint every this many steps (besides every epoch end)")
    r.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32",
                   help="compute dtype; variables stay float32 (fp16 uses dynamic loss scaling)")
    r.add_argument("--xla", action=argparse.BooleanOptionalAction, default=False,
                   help="compile the train step with XLA (jit_compile=True)")
    r.add_argument("--data-format", choices=["NHWC", "NCHW"], default="NHWC",
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
        p.error(f"--p (dropact) must be in [0, 1], got {args.dropact_p}")
    if not 0 < args.rrelu_lower <= args.rrelu_upper:
        p.error("--rrelu-lower and --rrelu-upper must satisfy 0 < lower <= upper")
    if not 0.0 < args.bn_decay < 1.0 or args.bn_epsilon <= 0:
        p.error("--bn-decay must be in (0, 1) and --bn-epsilon positive")
    if args.keep < 1 or args.checkpoint_every < 0:
        p.error("--keep must be >= 1 and --checkpoint-every >= 0")
    if args.model == "resnet":
        from models.resnet import layout
        try:
            layout(args.depth, args.resnet_version, args.bottleneck)
        except UserError as e:
            p.error(f"--depth: {e}")
    try:
        args.dropout_rates = [float(r) for r in args.dropout_rates.split(",")]
        args.lr_steps = [float(s) for s in args.lr_steps.split(",") if s.strip()]
    except ValueError:
        p.error("--dropout-rates and --lr-steps take comma-separated numbers, e.g. 91,136,182")
    if len(args.dropout_rates) != 3 or not all(0 <= r < 1 for r in args.dropout_rates):
        p.error("--dropout-rates needs three rates in [0, 1), e.g. 0.2,0.2,0.4")
    if args.schedule == "step" and not args.lr_steps:
        p.error("--schedule step needs --lr-steps, e.g. --lr-steps 91,136,182")
    if any(b <= a for a, b in zip(args.lr_steps, args.lr_steps[1:])) or \
            any(s <= 0 for s in args.lr_steps):
        p.error("--lr-steps must be positive and increasing")
    if args.logdir is None:
        args.logdir = os.path.join("runs", f"{args.model}-{args.act}" + ("-bn" if args.bn else ""))
    args.recipe_settings = recipe
    return args


def activation_params(args):
    return dict(leak=args.leak, elu_alpha=args.elu_alpha, prelu_init=args.prelu_init,
                rrelu_lower=args.rrelu_lower, rrelu_upper=args.rrelu_upper,
                dropact_p=args.dropact_p, gaaf_k=args.gaaf_k, gaaf_shift=args.gaaf_shift,
                gaaf_variant=args.gaaf_variant)


def model_specific(args):
    """The model-only arguments of models.build for the chosen network."""
    if args.model == "resnet":
        return dict(depth=args.depth, version=args.resnet_version, shortcut=args.shortcut,
                    bottleneck=args.bottleneck)
    if args.model == "cnn":
        return dict(dropout=args.dropout, dropout_rates=tuple(args.dropout_rates),
                    order=args.order)
    return dict(dropout=args.dropout != "none")


class Progress:
    """One line per epoch; on a terminal it is redrawn in place every few steps."""

    def __init__(self, stream=sys.stdout):
        self.stream = stream
        self.tty = stream.isatty()

    def update(self, text):
        if self.tty:
            self.stream.write("\r\033[K" + text)
            self.stream.flush()

    def done(self, text):
        self.stream.write(("\r\033[K" if self.tty else "") + text + "\n")
        self.stream.flush()


def fmt_time(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s"


def make_steps(model, optimizer, weight_decay, precision, loss_scale, step, epoch_sums, xla):
    """The train step and the eval step: two tf.functions, each traced once.

    The learning rate enters as a scalar tensor and the batch shape is fixed, so nothing in the
    loop retraces them. `step` (int64) and `epoch_sums` ([loss sum, correct, images], float64) are
    variables the train step updates in the graph: no host round trip per step.
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
            if precision == "fp16":
                loss_for_grads = loss * loss_scale.scale  # float16 gradients need scaling
        if precision == "fp16":
            grads, ok = loss_scale.unscale(tape.gradient(loss_for_grads, variables))
            ok = tf.logical_and(ok, tf.math.is_finite(loss))
        else:
            grads, ok = tape.gradient(loss, variables), tf.math.is_finite(loss)
        # A non-finite step changes no weight: the host sees `ok` and stops the run
        # (fp16 instead skips the step and halves the loss scale).
        if ok:
            optimizer.apply(grads, lr)
        if precision == "fp16":
            loss_scale.update(ok)
        step.assign_add(1)
        n = tf.cast(tf.size(labels), tf.float64)
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32),
                                                 labels), tf.float64))
        epoch_sums.assign_add(tf.stack([tf.cast(xent, tf.float64) * n, correct, n]))
        keep_going = tf.math.is_finite(loss) if precision == "fp16" else ok
        return xent, keep_going

    @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32),
                                  tf.TensorSpec([None], tf.int32)])
    def eval_step(images, labels):
        logits = model(images, training=False)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        correct = tf.equal(tf.argmax(logits, 1, output_type=tf.int32), labels)
        return tf.reduce_sum(losses), tf.reduce_sum(tf.cast(correct, tf.int64))

    return train_step, eval_step


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


def train(args, stop_signal):
    """The algorithm; `stop_signal` becomes non-empty when the process is asked to stop."""
    import tensorflow as tf

    import cifar_download
    import cifar_input
    import models
    import optimizers
    import rundir
    import schedules
    from loss_scale import DynamicLossScale

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
    lr_at = schedules.build(args.schedule, args.lr, total_steps, steps_per_epoch,
                            boundaries=args.lr_steps, unit=args.lr_steps_unit,
                            warmup_fraction=args.warmup_fraction)
    loss_scale = DynamicLossScale(initial_scale=2.0 ** 15 if args.precision == "fp16" else 1.0)

    # ----------------------------------------------------------------------------------------------
    # Log directory: config, checkpoints (resume), metrics, TensorBoard
    # ----------------------------------------------------------------------------------------------
    config = {k: v for k, v in vars(args).items() if k != "recipe_settings"}
    config.update(layout=rundir.LAYOUT, num_classes=num_classes, model_config=model.config,
                  mean=mean.tolist(), std=std.tolist(),
                  steps_per_epoch=steps_per_epoch, total_steps=total_steps,
                  train_size=int(len(train_labels)), data_root=os.path.abspath(data_root),
                  **rundir.environment())
    config["model_config"] = json.loads(json.dumps(model.config))  # tuples -> lists, as on disk
    if os.path.exists(os.path.join(args.logdir, "config.json")):
        old = rundir.read_config(args.logdir)
        diffs = rundir.config_differences(old, config)
        if diffs:
            raise UserError(f"{args.logdir!r} holds a run with other settings ("
                            + "; ".join(diffs) + "); use a new --logdir or the old flags")
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
    # metrics.jsonl keeps only epochs the restored checkpoint has finished (a kill between writing
    # a line and saving the checkpoint must not leave a duplicate line).
    metrics_path = os.path.join(args.logdir, "metrics.jsonl")
    if os.path.exists(metrics_path):
        with open(metrics_path) as f:
            kept = [l for l in f if l.strip() and json.loads(l)["epoch"] <= start_step
                    // steps_per_epoch]
        rundir.atomic_write(metrics_path, "".join(kept))
    writer = tf.summary.create_file_writer(os.path.join(args.logdir, "tb"))

    # ----------------------------------------------------------------------------------------------
    # The train step and the eval step (each traced once: lr is a tensor argument, shapes fixed)
    # ----------------------------------------------------------------------------------------------
    train_step, eval_step = make_steps(model, optimizer, args.weight_decay, args.precision,
                                       loss_scale, step, epoch_sums, args.xla)

    def evaluate(pipeline):
        loss_sum, correct, n = 0.0, 0, 0
        for images, labels in pipeline.epoch(0):
            l, c = eval_step(images, labels)
            loss_sum, correct, n = loss_sum + float(l), correct + int(c), n + int(labels.shape[0])
        return loss_sum / n, correct / n

    # ----------------------------------------------------------------------------------------------
    # Interruption: after SIGINT / SIGTERM the current step ends, a checkpoint is saved
    # ----------------------------------------------------------------------------------------------
    def save_and_exit(signum):
        path = last_ckpts.save(checkpoint_number=int(step))
        print(f"\ninterrupted by {signal.Signals(signum).name} at step {int(step)}; checkpoint "
              f"{path} written; re-run the same command to continue", flush=True)
        return 128 + signum

    # ----------------------------------------------------------------------------------------------
    # The loop: epochs of steps; evaluate, log and checkpoint at every epoch end
    # ----------------------------------------------------------------------------------------------
    progress = Progress()
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
            if args.interrupt_after and int(step) - start_step >= args.interrupt_after:
                stop_signal.append(signal.SIGINT)
            if not bool(ok):
                raise UserError(
                    f"the loss became non-finite ({float(xent)}) at step {int(step)} with lr "
                    f"{lr:.3g}; no weights were changed by that step and the last good checkpoint "
                    f"stays in {args.logdir}; lower --lr (or use --precision fp32)")
            if stop_signal and int(step) < epoch_end:  # at an epoch end: after its evaluation
                return save_and_exit(stop_signal[0])
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
                                f"{rate:.0f} img/s, {fmt_time(left)} left")
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
            record[f"{name}_loss"], record[f"{name}_accuracy"] = evaluate(pipeline)
        selection = "val" if "val" in eval_sets else "test"
        accuracy = record[f"{selection}_accuracy"]

        # Log: one JSON line, TensorBoard scalars and histograms.
        with open(metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        with writer.as_default(step=int(step)):
            for key, value in record.items():
                if key not in ("epoch", "step"):
                    tf.summary.scalar(key, value)
            if args.histograms:
                # Named by their path in the model, e.g. weights/blocks/0/conv1/kernel.
                for path, v in model._flatten(predicate=lambda v: isinstance(v, tf.Variable),
                                              with_path=True):
                    tf.summary.histogram("weights/" + "/".join(map(str, path)), v)
                test_batch = next(iter(eval_sets["test"].epoch(0)))[0]  # [B, 32, 32, 3]
                for name, value in model.activation_outputs(test_batch).items():
                    tf.summary.histogram("activations/" + name, value)
        writer.flush()
        progress.done(
            f"epoch {epoch + 1}/{args.epochs}  train loss {record['train_loss']:.4f} acc "
            f"{100 * record['train_accuracy']:.2f}%  " + "  ".join(
                f"{n} loss {record[n + '_loss']:.4f} acc {100 * record[n + '_accuracy']:.2f}%"
                for n in eval_sets) + f"  lr {lr:.4g}  {record['images_per_second']:.0f} img/s  "
            f"{fmt_time(seconds)}, ~{fmt_time(seconds_left)} left")

        # Checkpoint: the best on validation (test when there is no validation split), then last.
        epoch_sums.assign(tf.zeros([3], tf.float64))
        if accuracy > float(best_accuracy):
            best_accuracy.assign(accuracy)
            best_ckpts.save(checkpoint_number=int(step))
        last_ckpts.save(checkpoint_number=int(step))
        if stop_signal:
            return save_and_exit(stop_signal[0])

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
