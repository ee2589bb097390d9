"""Train a CIFAR network written in low-level TensorFlow 2.

    python train.py --act elu --bn                      # All-CNN-C, ELU, batch norm, CIFAR-10
    python train.py --dataset cifar10-sample --epochs 3 # offline, on the bundled 1,500 images
    python train.py --recipe dropact-resnet56           # a preset that reproduces a paper
    python train.py --help                              # every flag with its default

The script reads top to bottom as the algorithm: settings, data, model, optimizer and schedule,
the train step, then the loop (epochs of steps; evaluate, checkpoint, log; when to stop). The
train step is the plain single-device step (`train_step`); plumbing/step_wrappers.py runs it
under tf.distribute replicas, fp16 loss scaling and the non-finite guard. The flags live in
plumbing/command_line.py; the loop's book-keeping (the clock, progress, the non-finite check,
periodic saves, metrics.jsonl and TensorBoard) reaches it as six named calls of plumbing/hooks.py
(`banner`, `start_epoch`, `after_step`, `log_epoch`, `end_of_epoch`, `finish`). docs/READING.md
is a guided tour. Re-running the command of an interrupted run with the same --logdir continues
from its last checkpoint at the exact step.

Weight decay convention: loss += wd * sum_k l2_loss(k) = wd/2 * sum_k ||k||^2 over conv and dense
kernels only, so the gradient gets + wd * k (the Caffe / Torch convention of the ResNet and All-CNN
papers). Keras' `kernel_regularizer=l2(c)` adds c * ||k||^2: it equals --weight-decay 2c.
"""

import contextlib
import os
import time
import types

from plumbing import signals, tf_logs
from plumbing.command_line import activation_params, model_options, parse_args
from plumbing.errors import UserError, run_script

START = time.time()  # process start (TensorFlow is imported later), for the time to first step
# TensorFlow's start-up INFO and WARNING lines drown the progress output; errors still show.
tf_logs.quiet()
# Settings: `args = parse_args(argv)`, plumbing/command_line.py (TensorFlow-free: instant --help).


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------

def load_data(args):
    """The training pipeline and the evaluation splits, normalised with training-split constants
    (read before the log directory exists: a wrong --data-dir leaves nothing behind)."""
    import cifar_input
    from plumbing import cifar_download

    root = cifar_download.find_data(args.data_dir, args.dataset)
    splits = cifar_input.load_dataset(root, args.dataset, labels=args.labels,
                                      val_fraction=args.val_fraction,
                                      train_subset=args.train_subset)
    train_images, train_labels = splits["train"]  # uint8 [N, 32, 32, 3], int32 [N]
    # Normalisation constants come from the training split only and are stored in config.json.
    mean, std = cifar_input.normalization_stats(train_images, args.normalization)
    train = cifar_input.Pipeline(
        train_images, train_labels, args.batch_size, seed=args.seed, augment=args.augment,
        padding=args.padding, flip=args.flip, normalization=args.normalization, mean=mean,
        std=std, shuffle=True, drop_remainder=True)
    if train.steps_per_epoch == 0:
        raise UserError(f"--batch-size {args.batch_size} is larger than the "
                        f"{len(train_labels)} training images; lower it")
    evals = {name: cifar_input.Pipeline(
        images, labels, args.batch_size, seed=0, augment=False, normalization=args.normalization,
        mean=mean, std=std, shuffle=False, drop_remainder=False)
        for name, (images, labels) in [(n, splits[n]) for n in ("val", "test") if splits[n]]}
    return types.SimpleNamespace(
        root=root, train=train, evals=evals, train_size=len(train_labels), mean=mean, std=std,
        num_classes=cifar_input.num_classes(args.dataset, args.labels))


# --------------------------------------------------------------------------------------------------
# The train step and the eval step
# --------------------------------------------------------------------------------------------------

def train_step(model, optimizer, weight_decay, images, labels, lr):
    """One step of gradient descent on one device: images [B, 32, 32, 3], labels [B], lr [].
    plumbing/step_wrappers.py runs this same function under replicas, fp16 and the guard."""
    import tensorflow as tf
    from models import layers

    with tf.GradientTape() as tape:
        logits = model(images, training=True)  # [B, classes] float32
        xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)  # [B]
        loss = tf.reduce_mean(xent) + weight_decay * tf.add_n(  # the weight decay convention above
            [tf.nn.l2_loss(k) for k in layers.decay_kernels(model)])
        scaled = optimizer.scale_loss(loss)  # the loss itself; S * loss under fp16 loss scaling
    grads = tape.gradient(scaled, model.trainable_variables)
    optimizer.apply(grads, lr)
    return xent, logits


def make_steps(model, optimizer, weight_decay, loss_scale, step, epoch_sums, grad_norm_sums=None,
               bad_step=None, strategy=None, xla=False):
    """The train step and the eval step: two tf.functions, each traced once.

    `train_step` runs under the wrappers (plumbing/step_wrappers.py: `compile_train_step`), which
    also update in the graph `step` (int64), `epoch_sums` ([loss sum, correct, images], float64),
    `grad_norm_sums` ([len(model.trainable_variables)] float32, the gradient norms of the applied
    steps, if given) and `bad_step` (int64, -1 while no step failed: the first step whose loss
    could not be recovered). The learning rate enters as a scalar tensor and the batch shape is
    fixed, so nothing in the loop retraces them. The eval step runs on whole batches.
    """
    import tensorflow as tf

    from plumbing import step_wrappers

    wrapped = step_wrappers.compile_train_step(
        train_step, model, optimizer, weight_decay, loss_scale, step, epoch_sums, grad_norm_sums,
        bad_step, strategy, xla)

    @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32),
                                  tf.TensorSpec([None], tf.int32)])
    def eval_step(images, labels):
        logits = model(images, training=False)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        correct = tf.equal(tf.argmax(logits, 1, output_type=tf.int32), labels)
        return tf.reduce_sum(losses), tf.reduce_sum(tf.cast(correct, tf.int64))

    return wrapped, eval_step


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
# Model, optimizer and the two steps, from the settings
# --------------------------------------------------------------------------------------------------

def build(args, num_classes, strategy=None):
    """The model, the optimizer, the variables the train step updates and the two steps.

    One function for train.py, the studies' step timing, the benchmarks and the diagnostics, so
    that all of them run the same step. Under a tf.distribute `strategy` every variable has a
    copy on each replica.
    """
    import tensorflow as tf

    import batch_norm
    import models
    import optimizers

    strategy = strategy or tf.distribute.get_strategy()
    compute_dtype = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[args.precision]
    with strategy.scope():  # variables made here have a copy on every replica
        model = models.CLASSES[args.model](  # --model allcnn: AllCNN, models/allcnn.py
            num_classes, act=args.act, act_params=activation_params(args), bn=args.bn,
            bn_decay=args.bn_decay, bn_epsilon=args.bn_epsilon,
            bn_test_batch_stats=args.bn_test_batch_stats, bn_fused=args.bn_fused, seed=args.seed,
            data_format=args.data_format, compute_dtype=compute_dtype, **model_options(args))
        optimizer = optimizers.build(args.optimizer, model.trainable_variables,
                                     momentum=args.momentum)
        loss_scale = make_loss_scale(args.precision)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")  # finished steps
        # Sums over the current epoch ([loss sum, correct, images], each variable's gradient
        # norm), in the checkpoint: an interrupted epoch's figures are whole after resuming.
        epoch_sums = tf.Variable(tf.zeros([3], tf.float64), trainable=False, name="epoch_sums")
        grad_norm_sums = tf.Variable(tf.zeros([len(model.trainable_variables)]),
                                     trainable=False, name="grad_norm_sums")
        # The first non-finite step (-1: none); not in the checkpoint: a resumed run starts clean.
        bad_step = tf.Variable(-1, dtype=tf.int64, trainable=False, name="bad_step")
    for bn in batch_norm.layers_of(model):  # statistics over all replicas (written-out path)
        bn.sync = args.sync_bn
    train_step, eval_step = make_steps(model, optimizer, args.weight_decay, loss_scale, step,
                                       epoch_sums, grad_norm_sums, bad_step, strategy, args.xla)
    return types.SimpleNamespace(model=model, optimizer=optimizer, loss_scale=loss_scale,
                                 step=step, epoch_sums=epoch_sums, grad_norm_sums=grad_norm_sums,
                                 bad_step=bad_step, train_step=train_step, eval_step=eval_step)


def learning_rate(args, schedule_steps, steps_per_epoch):
    """step -> learning rate: the --schedule over every epoch, after the linear warm-up."""
    import schedules

    try:  # schedules.build checks its arguments (--lr-steps positive and increasing) once
        lr_at = schedules.build(args.schedule, args.lr, schedule_steps, steps_per_epoch,
                                boundaries=args.lr_steps, unit=args.lr_steps_unit,
                                warmup_fraction=args.warmup_fraction)
    except UserError as e:
        raise UserError(f"--schedule {args.schedule}: {e}") from None
    return with_warmup(lr_at, round(args.warmup_epochs * steps_per_epoch))


def with_warmup(lr_at, warmup_steps):
    """lr(t) = schedule(t) * min(1, (t + 1) / W): a linear rise over the first W steps.

    A short warm-up (Goyal et al. 2017, arXiv 1706.02677, section 2.2) keeps the first large
    steps of an untrained network without batch norm from killing its units.
    """
    if warmup_steps <= 0:
        return lr_at
    return lambda t: lr_at(t) * min(1.0, (t + 1) / warmup_steps)


def make_checkpoints(args, t, strategy, has_val):
    """The run's checkpoint (model, optimizer, the step variables, the loss scale, the best
    validation accuracy so far) and its managers: the last --keep under ckpt/, and the best under
    best/, chosen on the validation split only; without one (None) the last checkpoint is the
    result (choosing on test accuracy would overstate it)."""
    import tensorflow as tf

    with strategy.scope():
        best_accuracy = tf.Variable(-1.0, dtype=tf.float64, trainable=False,
                                    name="best_accuracy")
    checkpoint = tf.train.Checkpoint(model=t.model, optimizer=t.optimizer, step=t.step,
                                     best_accuracy=best_accuracy, epoch_sums=t.epoch_sums,
                                     grad_norm_sums=t.grad_norm_sums, loss_scale=t.loss_scale)
    last = tf.train.CheckpointManager(checkpoint, os.path.join(args.logdir, "ckpt"),
                                      max_to_keep=args.keep)
    best = tf.train.CheckpointManager(checkpoint, os.path.join(args.logdir, "best"),
                                      max_to_keep=1) if has_val else None
    return checkpoint, best_accuracy, last, best


# --------------------------------------------------------------------------------------------------
# The algorithm
# --------------------------------------------------------------------------------------------------

def train(args, stop_signal, held):
    """Train as `args` say; `stop_signal` becomes non-empty when the process is asked to stop,
    `held` (a contextlib.ExitStack) keeps the log directory's lock until the run returns."""
    import tensorflow as tf

    from plumbing import distribute, hooks, progress, rundir
    from plumbing.command_line import check_depth

    strategy, shared_logdir = distribute.setup(args)  # devices first, before any op runs
    check_depth(args)  # a depth that gives no ResNet fails before any data is read

    # Data: a shuffled, augmented training pipeline; validation and test in fixed order.
    data = load_data(args)
    steps_per_epoch = data.train.steps_per_epoch
    schedule_steps = steps_per_epoch * args.epochs  # the schedule spans every epoch
    total_steps = min(schedule_steps, args.max_steps) if args.max_steps else schedule_steps

    # Model, optimizer, learning-rate schedule, and the two tf.functions.
    t = build(args, data.num_classes, strategy)
    lr_at = learning_rate(args, schedule_steps, steps_per_epoch)

    # Log directory: config.json, checkpoints (resume from the last), metrics, TensorBoard.
    config = rundir.open_logdir(args, rundir.run_config(
        args, t.model, data.num_classes, data.mean, data.std, steps_per_epoch, total_steps,
        data.train_size, data.root), held)
    checkpoint, best_accuracy, last_ckpts, best_ckpts = make_checkpoints(
        args, t, strategy, has_val="val" in data.evals)
    start_step = rundir.resume(checkpoint, shared_logdir, args.logdir, total_steps,
                               steps_per_epoch)
    if start_step is None:  # already complete
        return 0
    rundir.start_training(args.logdir, config, start_step, steps_per_epoch)
    hook = hooks.Hooks(args, t, lr_at, steps_per_epoch, total_steps, last_ckpts, data.num_classes,
                       lambda: next(iter(data.evals["test"].epoch(0)))[0][:32], START)
    hook.banner(progress.describe_model(args), data.train_size)

    # The loop: epochs of steps; evaluate, log and checkpoint at every epoch end; stop after
    # `total_steps`, or earlier when asked to (Ctrl-C, SIGTERM: checkpoint first, exit 128 + n).
    # Finished steps are counted on the host: no read of the variable `step` per step (the graph
    # increments it; it is the truth in every checkpoint and the two stay equal).
    step = start_step
    while step < total_steps:
        epoch = step // steps_per_epoch
        first = step % steps_per_epoch  # > 0 when a resumed run starts within the epoch
        epoch_end = min((epoch + 1) * steps_per_epoch, total_steps)  # the step it ends after
        hook.start_epoch(epoch, first, epoch_end)  # the epoch's clock
        # Each replica gets its share of every global batch (the whole batch on one device).
        for images, labels in distribute.batches_for(
                strategy, lambda: data.train.epoch(epoch, start_step=first)):
            lr = lr_at(step)
            t.train_step(images, labels, tf.constant(lr, tf.float32))
            step += 1
            stop = signals.stop_requested(args, stop_signal, step - start_step)
            hook.after_step(step, stop)  # the non-finite check, --checkpoint-every, progress
            if stop and step < epoch_end:  # at an epoch end: after its evaluation, below
                return signals.save_and_exit(last_ckpts, step, stop_signal[0])
            if step >= epoch_end:
                break

        # Evaluate in inference mode (moving batch-norm statistics, no dropout).
        s = t.epoch_sums.numpy()  # [loss sum, correct, images] of this epoch
        record = {"epoch": epoch + 1, "step": step, "lr": lr,
                  "train_loss": s[0] / s[2], "train_accuracy": s[1] / s[2]}
        for name, pipeline in data.evals.items():
            if name == "test" and not args.test_every_epoch:
                continue
            record[f"{name}_loss"], record[f"{name}_accuracy"] = evaluate(t.eval_step, pipeline)
        hook.log_epoch(record)  # metrics.jsonl, TensorBoard, a warning if it does not learn

        # Checkpoint: the best on validation accuracy (when there is a validation split), then
        # the last. The next epoch's running sums start at zero.
        t.epoch_sums.assign(tf.zeros([3], tf.float64))
        t.grad_norm_sums.assign(tf.zeros_like(t.grad_norm_sums))
        if best_ckpts is not None and record["val_accuracy"] > float(best_accuracy.numpy()):
            best_accuracy.assign(record["val_accuracy"])
            best_ckpts.save(checkpoint_number=step)
        last_ckpts.save(checkpoint_number=step)
        hook.end_of_epoch(step)  # the epoch line with the time left
        if stop_signal:  # asked to stop during this epoch's end
            return signals.save_and_exit(last_ckpts, step, stop_signal[0])

    hook.finish(step, t.train_step, t.eval_step)
    return 0


def main(argv=None):
    args = parse_args(argv)
    # SIGINT / SIGTERM only set a flag; the loop finishes its step, saves a checkpoint and exits.
    with signals.stop_flag() as stop_signal, contextlib.ExitStack() as held:
        return train(args, stop_signal, held)


if __name__ == "__main__":
    run_script(main)
