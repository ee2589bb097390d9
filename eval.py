"""Evaluate checkpoints written by train.py.

    python eval.py --logdir runs/sample                 # latest checkpoint, test split
    python eval.py --logdir runs/a runs/b runs/c        # one comparison table
    python eval.py --logdir runs/a runs/b --plot curves.png   # and their learning curves
    python eval.py --logdir runs/sample --best --split val
    python eval.py --logdir runs/sample --export exported/   # SavedModel: uint8 images -> probs

The model is rebuilt from the log directory's config.json alone and run in inference mode (moving
batch-norm statistics, no dropout, expected value of random activations). Written beside the
checkpoints: eval.json (or eval-val.json) and confusion.png (or confusion-val.png).

Metrics:
- top-1 / top-5 accuracy and mean cross-entropy;
- per-class accuracy and the confusion matrix C[true, predicted];
- expected calibration error (Guo et al. 2017, arXiv 1706.04599) with 15 equal-width confidence
  bins: ECE = sum_b (n_b / N) |accuracy_b - confidence_b|;
- CIFAR-100 with fine labels: superclass accuracy, mapping both the predicted and the true fine
  class to its coarse class through the training file's fine -> coarse table.
"""

import argparse
import json
import os
import sys

from errors import UserError

# TensorFlow's start-up INFO and WARNING lines drown the progress output; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ECE_BINS = 15


def build_parser():
    p = argparse.ArgumentParser(description="Evaluate checkpoints written by train.py.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--logdir", nargs="+", required=True,
                   help="one or more log directories written by train.py")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--checkpoint", default=None,
                       help="a checkpoint prefix (e.g. DIR/ckpt/ckpt-390) instead of the latest")
    which.add_argument("--best", action="store_true",
                       help="the checkpoint with the best validation accuracy")
    p.add_argument("--split", choices=["test", "val"], default="test")
    p.add_argument("--data-dir", default=None,
                   help="where the data is (default: where training found it)")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--bn-test-batch-stats", action="store_true",
                   help="educational: normalise with each test batch's own statistics (the seed "
                        "blog's bug) instead of the moving averages; try several --batch-size")
    p.add_argument("--plot", default=None, metavar="PNG",
                   help="also plot every log directory's learning curves (metrics.jsonl) here")
    p.add_argument("--export", default=None, metavar="DIR",
                   help="also write a SavedModel: uint8 images [N, 32, 32, 3] -> probabilities")
    return p


def restore_model(logdir, checkpoint=None, best=False, test_batch_stats=False):
    """Rebuild the model from logdir/config.json and restore a checkpoint into it."""
    import tensorflow as tf

    import models
    import rundir

    config = rundir.read_config(logdir)
    if checkpoint is None:
        folder = os.path.join(logdir, "best" if best else "ckpt")
        checkpoint = tf.train.latest_checkpoint(folder)
        if checkpoint is None:
            raise UserError(f"{logdir!r} has no {'best ' if best else ''}checkpoint in {folder}; "
                            "train first (or let train.py finish an epoch)")
    elif not tf.io.gfile.exists(checkpoint + ".index"):
        raise UserError(f"checkpoint {checkpoint!r} does not exist (expected {checkpoint}.index)")
    try:
        model_config = dict(config["model_config"])
        if test_batch_stats:
            model_config["bn_test_batch_stats"] = True
        model = models.build(**model_config)
    except (KeyError, TypeError) as e:
        raise UserError(f"the config.json of {logdir!r} does not describe a model this version "
                        f"can build ({e}); re-train with this version") from None
    step = tf.Variable(0, dtype=tf.int64, name="step")
    rundir.restore_or_refuse(tf.train.Checkpoint(model=model, step=step), checkpoint, logdir,
                             partial=True)
    return model, config, checkpoint, int(step)


def make_predictor(model, config):
    """A tf.function: uint8 images [N, 32, 32, 3] -> class probabilities [N, classes] float32."""
    import tensorflow as tf

    import cifar_input

    mean = tf.constant(config["mean"], tf.float32)
    std = tf.constant(config["std"], tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.uint8)])
    def predict(images):
        x = cifar_input.normalize(images, config["normalization"], mean, std)  # [N,32,32,3] f32
        return tf.nn.softmax(model(x, training=False))

    return predict


def probabilities(predict, images, batch_size):
    import numpy as np
    return np.concatenate([predict(images[i:i + batch_size]).numpy()
                           for i in range(0, len(images), batch_size)])


def metrics(probs, labels, fine_to_coarse=None):
    """Every figure of eval.json from probabilities [N, C] and integer labels [N] (numpy)."""
    import numpy as np

    n, classes = probs.shape
    predicted = probs.argmax(1)
    top5 = np.argsort(-probs, axis=1)[:, :5]
    confusion = np.zeros([classes, classes], np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(1), 1)
    # ECE: bin by confidence (the max probability), compare each bin's accuracy and confidence.
    confidence = probs.max(1)
    correct = predicted == labels
    bins = np.minimum((confidence * ECE_BINS).astype(int), ECE_BINS - 1)
    ece = sum(abs(correct[bins == b].mean() - confidence[bins == b].mean()) * (bins == b).sum() / n
              for b in range(ECE_BINS) if (bins == b).any())
    out = {"images": int(n), "top1": float(correct.mean()),
           "top5": float((top5 == labels[:, None]).any(1).mean()),
           "loss": float(-np.log(np.maximum(probs[np.arange(n), labels], 1e-30)).mean()),
           "ece": float(ece), "per_class_accuracy": [float(a) for a in per_class],
           "confusion": confusion.tolist()}
    if fine_to_coarse is not None:
        out["superclass_top1"] = float((fine_to_coarse[predicted] == fine_to_coarse[labels]).mean())
    return out


def plot_confusion(confusion, names, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    confusion = np.asarray(confusion)
    rates = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    size = 4 + 0.12 * len(names)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(names))
    label_size = 8 if len(names) <= 20 else 4
    ax.set_xticks(ticks, names, rotation=90, fontsize=label_size)
    ax.set_yticks(ticks, names, fontsize=label_size)
    if len(names) <= 20:
        for i in ticks:
            for j in ticks:
                ax.text(j, i, confusion[i, j], ha="center", va="center", fontsize=6,
                        color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_curves(logdirs, path):
    """Train loss and held-out accuracy per epoch of several runs, side by side (metrics.jsonl)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for logdir in logdirs:
        try:
            with open(os.path.join(logdir, "metrics.jsonl")) as f:
                rows = [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError) as e:
            raise UserError(f"cannot read {logdir}/metrics.jsonl ({e})") from None
        epochs = [r["epoch"] for r in rows]
        held_out = "val" if rows and "val_accuracy" in rows[0] else "test"
        label = os.path.basename(os.path.normpath(logdir))
        left.plot(epochs, [r["train_loss"] for r in rows], label=label)
        right.plot(epochs, [100 * r[f"{held_out}_accuracy"] for r in rows],
                   label=f"{label} ({held_out})")
    left.set(xlabel="epoch", ylabel="train loss (cross-entropy)")
    right.set(xlabel="epoch", ylabel="accuracy %")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def export(model, config, predict, path):
    """SavedModel whose `serving_default` maps uint8 images [N, 32, 32, 3] to probabilities."""
    import tensorflow as tf

    module = tf.Module()
    module.model = model  # tracks the variables
    module.predict = predict
    tf.saved_model.save(module, path, signatures={"serving_default": predict})


def evaluate_logdir(logdir, args):
    import numpy as np

    import cifar_download
    import cifar_input

    model, config, checkpoint, step = restore_model(logdir, args.checkpoint, args.best,
                                                    args.bn_test_batch_stats)
    data_dir = args.data_dir or config.get("data_root") or config["data_dir"]
    if config["dataset"] == "cifar10-sample" or args.data_dir:
        data_dir = cifar_download.find_data(data_dir, config["dataset"])
    elif not os.path.isdir(data_dir):
        data_dir = cifar_download.find_data(config["data_dir"], config["dataset"])
    splits = cifar_input.load_dataset(data_dir, config["dataset"], labels=config["labels"],
                                      val_fraction=config["val_fraction"])
    if splits[args.split] is None:
        raise UserError(f"{logdir!r} was trained without a validation split (--val-fraction 0); "
                        "use --split test")
    images, labels = splits[args.split]
    predict = make_predictor(model, config)
    probs = probabilities(predict, images, args.batch_size)
    mapping = None
    if config["dataset"] == "cifar100" and config["labels"] == "fine":
        mapping = np.asarray(cifar_input.fine_to_coarse(data_dir))
    result = metrics(probs, np.asarray(labels), mapping)
    result.update(logdir=logdir, checkpoint=checkpoint, step=step, split=args.split,
                  bn_test_batch_stats=args.bn_test_batch_stats, batch_size=args.batch_size,
                  dataset=config["dataset"], model=config["model"], act=config["act"],
                  bn=config["bn"])
    suffix = "" if args.split == "test" else "-" + args.split
    with open(os.path.join(logdir, f"eval{suffix}.json"), "w") as f:
        json.dump(result, f, indent=1)
    names = cifar_input.class_names(data_dir, config["dataset"], config["labels"])
    plot_confusion(result["confusion"], names, os.path.join(logdir, f"confusion{suffix}.png"),
                   f"{logdir}  {args.split}  top-1 {100 * result['top1']:.2f}%")
    if args.export:
        export(model, config, predict, args.export)
        print(f"exported SavedModel to {args.export}")
    return result


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.batch_size <= 0:
        raise UserError(f"--batch-size must be positive, got {args.batch_size}")
    if args.export and len(args.logdir) > 1:
        raise UserError("--export takes one --logdir")
    if args.checkpoint and len(args.logdir) > 1:
        raise UserError("--checkpoint takes one --logdir")
    results = [evaluate_logdir(logdir, args) for logdir in args.logdir]
    if args.plot:
        plot_curves(args.logdir, args.plot)

    header = f"{'logdir':<32} {'model':<8} {'act':<10} {'bn':<3} {'step':>7} {'top-1':>7} " \
             f"{'top-5':>7} {'loss':>7} {'ECE':>6}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['logdir'][-32:]:<32} {r['model']:<8} {r['act']:<10} {'yes' if r['bn'] else 'no':<3}"
              f" {r['step']:>7} {100 * r['top1']:>6.2f}% {100 * r['top5']:>6.2f}% "
              f"{r['loss']:>7.4f} {r['ece']:>6.4f}")
        if "superclass_top1" in r:
            print(f"{'':<32} superclass top-1 {100 * r['superclass_top1']:.2f}%")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
