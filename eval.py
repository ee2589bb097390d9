"""Evaluate checkpoints written by train.py.

    python eval.py --logdir runs/sample                 # latest checkpoint, test split
    python eval.py --logdir runs                        # every run under runs/ (like tensorboard)
    python eval.py --logdir runs/a runs/b --plot curves.png   # one table and the learning curves
    python eval.py --logdir runs/sample --data-dir data # a sample-trained run on the full test set
    python eval.py --logdir runs/a --best --split val   # needs a run trained with --val-fraction
    python eval.py --logdir runs/sample --export exported/   # SavedModel: images -> probabilities

The model is rebuilt from the log directory's config.json alone and run in inference mode (moving
batch-norm statistics, no dropout, expected value of random activations). The images are
normalised with the constants of the training set (config.json), whatever set is evaluated.

Which batch-norm statistics normalised the model is written into every output (the json's
`bn_statistics`, the confusion matrix's title, the table's `bn stats` column), since each mode gives
another accuracy for the same checkpoint: `moving` (the moving averages, the default), `recomputed`
on N training images (`--recompute-bn-stats`), `batch` statistics of each test batch of B images
(`--bn-test-batch-stats`), or none for a model without batch norm.

`--logdir` takes runs (folders with a config.json) or folders to search for runs at any depth,
as `tensorboard --logdir` does; anything else is skipped with a line saying so.

Written into each run's folder, named by split, checkpoint and mode, and printed:
    eval-<split>-<last|best|step-N>[-bnrecomputed][-batchstats<B>][-on-<dataset>].json
                                                 every figure below
    confusion-<same name>.png                    the confusion matrix
`-on-<dataset>` appears when the evaluated dataset is not the one the run was trained on.

Metrics:
- top-1 / top-5 accuracy and mean cross-entropy;
- per-class accuracy and the confusion matrix C[true, predicted];
- expected calibration error (Guo et al. 2017, "On Calibration of Modern Neural Networks",
  arXiv 1706.04599) with 15 equal-width confidence bins:
  ECE = sum_b (n_b / N) |accuracy_b - confidence_b|;
- CIFAR-100 with fine labels: superclass accuracy, mapping both the predicted and the true fine
  class to its coarse class through the training file's fine -> coarse table;
- the run's health (health.run_health): a dead run (training loss at ln C) or a diverged one is
  marked in the table, since its numbers mean nothing.
"""

import argparse
import json
import os
import re

from plumbing import signals, tf_logs

if __name__ == "__main__":
    # Ctrl-C while TensorFlow loads (seconds, e.g. just as compare.py starts the test
    # evaluation) ends eval.py as it does later: status 130, no traceback.
    signals.quiet_interrupt()

# TensorFlow's start-up INFO and WARNING lines would come before the project's own; errors still
# show. Before TensorFlow is imported (it reads the level once; plumbing/tf_logs.py).
tf_logs.quiet()

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # files only, no display needed

import matplotlib.lines  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from plumbing import choices  # noqa: E402
from plumbing import cifar_download  # noqa: E402
import cifar_input  # noqa: E402
import models  # noqa: E402
from models import probes  # noqa: E402
from plumbing import health, rundir  # noqa: E402
from plumbing.errors import UserError, run_script  # noqa: E402
from plumbing.help_format import HelpFormatter  # noqa: E402

ECE_BINS = 15


def build_parser():
    p = argparse.ArgumentParser(description="Evaluate checkpoints written by train.py.",
                                formatter_class=HelpFormatter)
    p.add_argument("--logdir", nargs="+", required=True,
                   help="runs written by train.py, or folders searched for runs at any depth")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--checkpoint", default=None,
                       help="a checkpoint prefix (e.g. DIR/ckpt/ckpt-390) instead of the latest")
    which.add_argument("--best", action="store_true",
                       help="the checkpoint with the best validation accuracy (needs a run "
                            "trained with --val-fraction > 0)")
    p.add_argument("--split", choices=["test", "val"], default="test",
                   help="val: the run's own validation split (on the dataset it was trained on)")
    p.add_argument("--dataset", choices=choices.DATASETS, default=None,
                   help="evaluate on this dataset (same label format as the run's); default: "
                        "the run's, or cifar10 in --data-dir for a run trained on cifar10-sample")
    p.add_argument("--data-dir", default=None,
                   help="where the dataset to evaluate on is, and the run's training images "
                        "for --recompute-bn-stats when it holds the run's dataset (default: "
                        "where training found them)")
    p.add_argument("--batch-size", type=int, default=500)
    # Batch statistics at test time never read the moving averages, recomputed or not.
    statistics = p.add_mutually_exclusive_group()
    statistics.add_argument("--bn-test-batch-stats", action="store_true",
                            help="educational: normalise with each test batch's own statistics "
                                 "instead of the moving averages (the mistake in the blog post "
                                 "'激活函数(relu,prelu,elu,+BN)对比on cifar10'); results depend on "
                                 "--batch-size")
    statistics.add_argument("--recompute-bn-stats", action="store_true",
                            help="first set every batch-norm layer's moving mean / variance to the "
                                 "exact statistics of its input in inference mode over 5,000 of "
                                 "the run's training images (models/probes.py): the remedy for "
                                 "the variance shift of dropout before BN and for short runs")
    p.add_argument("--row-normalized", action="store_true",
                   help="confusion matrix in shares of each true class instead of counts")
    p.add_argument("--plot", default=None, metavar="PNG",
                   help="also plot the runs' learning curves (metrics.jsonl) into this file")
    p.add_argument("--export", default=None, metavar="DIR",
                   help="also write a SavedModel: uint8 images [N, 32, 32, 3] or [32, 32, 3] -> "
                        "probabilities")
    return p


# --------------------------------------------------------------------------------------------------
# Which runs: entries of --logdir, searched like tensorboard --logdir
# --------------------------------------------------------------------------------------------------

def find_runs(entries):
    """Runs (folders holding config.json) among `entries`, searching folders at any depth.

    Returns (runs, skipped): skipped lists (entry, reason) for entries that hold no run. A path
    that does not exist is an error (a typo), not a skip.
    """
    runs, skipped = [], []
    for entry in entries:
        if not os.path.exists(entry):
            raise UserError(f"log directory {entry!r} does not exist; train first: "
                            f"python train.py --logdir {entry}")
        if not os.path.isdir(entry):
            skipped.append((entry, "a file, not a log directory"))
            continue
        if os.path.exists(os.path.join(entry, "config.json")):
            runs.append(entry)
            continue
        found = sorted(root for root, _, files in os.walk(entry) if "config.json" in files)
        if found:
            runs.extend(found)
        else:
            skipped.append((entry, "no config.json in it or in its sub-folders, so no run "
                                   "written by train.py"))
    unique = list(dict.fromkeys(runs))  # `runs runs/a` names runs/a twice
    return unique, skipped


def run_name(logdir):
    """A run's name in titles and legends: '<arm>/seed-<s>' for compare.py's OUT/<arm>/seed-<s>
    (the seed folder alone does not say which arm), else the run's folder name."""
    path = os.path.abspath(logdir)  # `--logdir .` inside a run still names its folder
    folder = os.path.basename(path)
    if re.fullmatch(r"seed-\d+", folder):
        return f"{os.path.basename(os.path.dirname(path))}/{folder}"
    return folder


# --------------------------------------------------------------------------------------------------
# Model and predictions
# --------------------------------------------------------------------------------------------------

def restore_model(logdir, checkpoint=None, best=False, test_batch_stats=False):
    """Rebuild the model from logdir/config.json and restore a checkpoint into it.

    Returns (model, config, checkpoint path, step).
    """
    config = rundir.read_config(logdir)
    if best and config.get("val_fraction", 0) == 0:
        raise UserError(f"--best needs a validation split: {logdir!r} was trained with "
                        "--val-fraction 0, so its best/ checkpoint was chosen on the test set; "
                        "evaluate the last checkpoint, or train with --val-fraction 0.1")
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
    mean = tf.constant(config["mean"], tf.float32)
    std = tf.constant(config["std"], tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.uint8)])
    def predict(images):
        x = cifar_input.normalize(images, config["normalization"], mean, std)  # [N,32,32,3] f32
        return tf.nn.softmax(model(x, training=False))

    return predict


def probabilities(predict, images, batch_size):
    return np.concatenate([predict(images[i:i + batch_size]).numpy()
                           for i in range(0, len(images), batch_size)])


def metrics(probs, labels, fine_to_coarse=None):
    """Every figure of the eval json from probabilities [N, C] and integer labels [N] (numpy)."""
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


# --------------------------------------------------------------------------------------------------
# Which data: the run's, or another dataset of the same label format
# --------------------------------------------------------------------------------------------------

# --------------------------------------------------------------------------------------------------
# Batch norm's statistics recomputed on training images (--recompute-bn-stats)
# --------------------------------------------------------------------------------------------------

def normalized_batches(images, config, batch_size=500):
    """uint8 [N, 32, 32, 3] -> list of normalised float32 batches, as training saw them."""
    mean = tf.constant(config["mean"], tf.float32)
    std = tf.constant(config["std"], tf.float32)
    return [cifar_input.normalize(images[i:i + batch_size], config["normalization"], mean, std)
            for i in range(0, len(images), batch_size)]


def load_splits(config, data_dir=None):
    root = cifar_download.find_data(data_dir or config.get("data_root") or config["data_dir"],
                                    config["dataset"])
    return cifar_input.load_dataset(root, config["dataset"], labels=config["labels"],
                                    val_fraction=config["val_fraction"])


def subset(images, labels, n, seed=0):
    """The first n of a fixed random permutation (all of them when n >= len)."""
    order = np.random.default_rng(seed).permutation(len(labels))[:n]
    return images[order], labels[order]


def recompute_on_training_images(model, config, images=5000, data_dir=None):
    """recompute_bn_stats on `images` training images of the run (no augmentation); their count.

    The run's own training split (its validation images excluded), a fixed random subset, so the
    held-out splits stay untouched: `--recompute-bn-stats`.
    """
    from batch_norm import BatchNorm

    splits = load_splits(config, data_dir)
    train_x, _ = subset(*splits["train"], images)
    layers = sum(isinstance(m, BatchNorm) for m in model.submodules)
    # Slow: the layers one after another, each from a pass of the images through the network
    # (4 min 39 s for All-CNN-C's 8 and 1,000 images on 2 shared CPU cores, 2026-12-02).
    print(f"recomputing the statistics of {layers} batch-norm layers, one after another, each "
          f"from a pass of {len(train_x):,} training images through the network (minutes on a "
          "CPU)", flush=True)
    probes.recompute_bn_stats(model, normalized_batches(train_x, config))
    return int(len(train_x))


def bn_statistics(config, args, recomputed_on=None):
    """Which statistics batch norm normalised with: the json's `bn_statistics`.

    None: the model has no batch norm. {"mode": "moving"}: the moving averages training left.
    {"mode": "recomputed", "images": N}: moving averages replaced by the exact statistics of N
    training images (`--recompute-bn-stats`, recompute_on_training_images returns N).
    {"mode": "batch", "batch_size": B}: each test batch's own statistics, so the result depends
    on B (`--bn-test-batch-stats`, or a run trained with it: its config builds such a model).
    """
    if not config["bn"]:
        return None
    if args.bn_test_batch_stats or config["model_config"]["bn_test_batch_stats"]:
        return {"mode": "batch", "batch_size": args.batch_size}
    if recomputed_on is not None:
        return {"mode": "recomputed", "images": recomputed_on}
    return {"mode": "moving"}


def bn_statistics_words(statistics):
    """(long, short) words for a bn_statistics value: titles and log lines; the table's column."""
    if statistics is None:
        return "no batch norm", "none"
    if statistics["mode"] == "batch":
        return (f"BN: batch statistics (batch {statistics['batch_size']})",
                f"batch {statistics['batch_size']}")
    if statistics["mode"] == "recomputed":
        return (f"BN: statistics recomputed on {statistics['images']:,} training images",
                f"recomputed {statistics['images']:,}")
    return "BN: moving statistics", "moving"


def eval_dataset(config, args):
    """(dataset, data_dir) to evaluate on; a UserError for a combination that cannot be honoured.

    The run's dataset by default. `--data-dir` for a run trained on the bundled sample means the
    full CIFAR-10 in that folder (the sample has no other location). Another dataset must have the
    run's label format and number of classes (cifar10 and cifar10-sample share one).
    """
    trained = config["dataset"]
    dataset = args.dataset or ("cifar10" if trained == "cifar10-sample" and args.data_dir
                               else trained)
    if cifar_input.num_classes(dataset, config["labels"]) != config["num_classes"]:
        raise UserError(f"the run was trained on {trained} ({config['num_classes']} classes, "
                        f"{config['labels']} labels); it cannot be evaluated on {dataset}")
    if dataset == "cifar10-sample" and args.data_dir:
        raise UserError("--dataset cifar10-sample is the sample bundled in the repository; "
                        "--data-dir does not apply to it (leave it out)")
    if args.split == "val" and dataset != trained:
        raise UserError(f"--split val is the run's validation split of {trained}; on {dataset} "
                        "use --split test")
    if dataset == "cifar10-sample":
        return dataset, cifar_download.find_data("", dataset)
    if args.data_dir:
        return dataset, cifar_download.find_data(args.data_dir, dataset)
    if dataset == trained and os.path.isdir(config.get("data_root") or ""):
        return dataset, config["data_root"]  # the folder training found
    # Another dataset without --data-dir: where the environment says, else the default `data`.
    default = config["data_dir"] if dataset == trained else os.environ.get("CIFAR_DATA_DIR",
                                                                           "data")
    return dataset, cifar_download.find_data(default, dataset)


def load_images(dataset, data_dir, config, split):
    """(uint8 images [N, 32, 32, 3], int32 labels [N]) of `split`."""
    if split == "test":  # no need to read the training files
        return cifar_input.load_split(data_dir, "test", dataset, config["labels"])
    splits = cifar_input.load_dataset(data_dir, dataset, labels=config["labels"],
                                      val_fraction=config["val_fraction"])
    if splits["val"] is None:
        raise UserError("the run was trained without a validation split (--val-fraction 0); "
                        "use --split test")
    return splits["val"]


def output_name(config, checkpoint_kind, split, dataset, args):
    """eval-<split>-<checkpoint>[-bnrecomputed][-batchstats<B>][-on-<dataset>]: what, how."""
    name = f"{split}-{checkpoint_kind}"
    if getattr(args, "recompute_bn_stats", False):
        name += "-bnrecomputed"
    if args.bn_test_batch_stats:
        name += f"-batchstats{args.batch_size}"
    if dataset != config["dataset"]:
        name += f"-on-{dataset}"
    return name


# --------------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------------

def plot_confusion(confusion, names, path, title, row_normalized=False):
    """Confusion matrix C[true, predicted]: counts, or shares of each true class; a colour bar."""
    confusion = np.asarray(confusion)
    rates = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    shown = rates if row_normalized else confusion
    size = 4.5 + 0.12 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if row_normalized else None)
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("share of the true class" if row_normalized else "images")
    ticks = range(len(names))
    label_size = 8 if len(names) <= 20 else 4
    ax.set_xticks(ticks, names, rotation=90, fontsize=label_size)
    ax.set_yticks(ticks, names, fontsize=label_size)
    if len(names) <= 20:
        bright = (1 if row_normalized else max(shown.max(), 1)) / 2  # half the colour scale
        for i in ticks:
            for j in ticks:
                text = f"{rates[i, j]:.2f}" if row_normalized else str(confusion[i, j])
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if shown[i, j] > bright else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def read_metrics(logdir):
    try:
        with open(os.path.join(logdir, "metrics.jsonl")) as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {logdir}/metrics.jsonl ({e})") from None


def plot_curves(logdirs, path, datasets=None):
    """Loss and accuracy per epoch of several runs, side by side: training solid, held-out dashed.

    One colour per run, named (run_name: arm and seed for compare.py's folders) in one legend
    right of both plots, where it covers no curve however many runs there are. Runs of under 20
    epochs get a marker on every epoch, so a 2-epoch run is not a bare line.
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
    colors = plt.get_cmap("tab10" if len(logdirs) <= 10 else "tab20").colors
    runs, held_outs = [], set()
    for i, logdir in enumerate(logdirs):
        rows = read_metrics(logdir)
        epochs = [r["epoch"] for r in rows]
        # The held-out curve: validation, else test; neither with --no-test-every-epoch alone.
        held_out = next((n for n in ("val", "test") if rows and f"{n}_accuracy" in rows[0]), None)
        style = dict(color=colors[i % len(colors)], marker="o" if len(rows) < 20 else None,
                     markersize=4)
        line, = left.plot(epochs, [r["train_loss"] for r in rows], label=run_name(logdir),
                          **style)
        runs.append(line)
        right.plot(epochs, [100 * r["train_accuracy"] for r in rows], **style)
        if held_out:
            held_outs.add(held_out)
            left.plot(epochs, [r[f"{held_out}_loss"] for r in rows], linestyle="--", **style)
            right.plot(epochs, [100 * r[f"{held_out}_accuracy"] for r in rows], linestyle="--",
                       **style)
    left.set(xlabel="epoch", ylabel="loss (cross-entropy)")
    right.set(xlabel="epoch", ylabel="accuracy %")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))  # whole epochs
    held = " / ".join(sorted(held_outs))
    kinds = [matplotlib.lines.Line2D([], [], color="gray", label="training")]
    if held:
        kinds.append(matplotlib.lines.Line2D([], [], color="gray", linestyle="--", label=held))
    fig.legend(handles=runs + kinds, loc="outside right upper", fontsize=7)
    on = ", ".join(sorted(set(datasets))) if datasets else "?"
    what = run_name(logdirs[0]) if len(logdirs) == 1 else f"{len(logdirs)} runs"
    fig.suptitle(f"Learning curves of {what} on {on}: training (solid)"
                 + (f" and {held} (dashed)" if held else ""), fontsize=10)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------------------------------
# Export: a SavedModel that is hard to misuse
# --------------------------------------------------------------------------------------------------

class Exported(tf.Module):
    """What `tf.saved_model.load(DIR)` returns, used as

        model = tf.saved_model.load(DIR)
        probabilities = model(images)   # uint8 [N, 32, 32, 3] -> [N, C]; [32, 32, 3] -> [C]
        model.class_names               # string [C]

    Any dtype but uint8 is refused with an error naming the fix (the scale of float images cannot
    be guessed); float32 images in [0, 1] go through `model.from_unit_float(images)` explicitly.
    The signature `serving_default` takes `images` uint8 [N, 32, 32, 3] and returns
    `probabilities` [N, C].
    """

    REFUSED = (tf.float16, tf.float32, tf.float64, tf.int32, tf.int64)

    def __init__(self, model, predict, class_names):
        super().__init__(name="exported")
        self.model = model  # tracks the variables
        self.predict = predict
        self.class_names = tf.Variable(class_names, dtype=tf.string, trainable=False,
                                       name="class_names")

    def _any_shape(self, images):
        """uint8 [32, 32, 3] or [N, 32, 32, 3] -> probabilities [C] or [N, C] (static rank)."""
        if images.shape.rank == 3:
            return self.predict(images[None])[0]
        return self.predict(images)

    @tf.function
    def __call__(self, images):
        if images.dtype != tf.uint8:  # decided at trace time: this graph only refuses
            tf.debugging.Assert(False, [f"images must be uint8 (0..255), got {images.dtype.name};"
                                        " for float32 images in [0, 1] call "
                                        "model.from_unit_float(images)"])
            return tf.zeros([0], tf.float32)
        return self._any_shape(images)

    @tf.function
    def from_unit_float(self, images):
        """float32 images in [0, 1] (uint8 / 255), [32, 32, 3] or [N, 32, 32, 3]."""
        tf.debugging.Assert(tf.logical_and(tf.reduce_min(images) >= 0.0,
                                           tf.reduce_max(images) <= 1.0),
                            ["from_unit_float takes images in [0, 1], got values from",
                             tf.reduce_min(images), "to", tf.reduce_max(images)])
        return self._any_shape(tf.cast(tf.round(images * 255.0), tf.uint8))


def export(model, predict, class_names, path):
    """Write the SavedModel of `Exported`: every accepted and every refusing input traced."""
    module = Exported(model, predict, class_names)
    for shape in ([None, 32, 32, 3], [32, 32, 3]):  # a batch, one image
        module.__call__.get_concrete_function(tf.TensorSpec(shape, tf.uint8, name="images"))
        module.from_unit_float.get_concrete_function(tf.TensorSpec(shape, tf.float32,
                                                                   name="images"))
    for dtype in Exported.REFUSED:  # any shape: the graph only says what to pass instead
        module.__call__.get_concrete_function(tf.TensorSpec(None, dtype, name="images"))
    serving = tf.function(lambda images: {"probabilities": module.predict(images)},
                          input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.uint8,
                                                         name="images")])
    tf.saved_model.save(module, path, signatures={"serving_default": serving})


# --------------------------------------------------------------------------------------------------
# One run, then the table
# --------------------------------------------------------------------------------------------------

def evaluate_logdir(logdir, args):
    model, config, checkpoint, step = restore_model(logdir, args.checkpoint, args.best,
                                                    args.bn_test_batch_stats)
    kind = "best" if args.best else f"step-{step}" if args.checkpoint else "last"
    dataset, data_dir = eval_dataset(config, args)
    recomputed_on = None
    if args.recompute_bn_stats and config["bn"]:
        # The run's own training images: in --data-dir when that holds the run's dataset (a moved
        # or copied folder), else where training found them.
        training_dir = data_dir if dataset == config["dataset"] else None
        recomputed_on = recompute_on_training_images(model, config, data_dir=training_dir)
        print(f"{logdir}: batch-norm statistics recomputed on {recomputed_on:,} training images",
              flush=True)
    statistics = bn_statistics(config, args, recomputed_on)
    statistics_words, _ = bn_statistics_words(statistics)
    images, labels = load_images(dataset, data_dir, config, args.split)
    print(f"evaluating {logdir}: {kind} checkpoint (step {step}) on the {args.split} split of "
          f"{dataset} ({len(labels):,} images), {statistics_words}", flush=True)
    predict = make_predictor(model, config)
    probs = probabilities(predict, images, args.batch_size)
    mapping = None
    if dataset == "cifar100" and config["labels"] == "fine":
        mapping = np.asarray(cifar_input.fine_to_coarse(data_dir))
    result = metrics(probs, np.asarray(labels), mapping)
    state = health.run_health(logdir, config["num_classes"])
    result.update(logdir=logdir, checkpoint=checkpoint, checkpoint_kind=kind, step=step,
                  split=args.split, dataset=dataset, data_dir=data_dir,
                  trained_on=config["dataset"], bn_test_batch_stats=args.bn_test_batch_stats,
                  bn_statistics=statistics, batch_size=args.batch_size, model=config["model"],
                  act=config["act"], bn=config["bn"], health=state)
    name = output_name(config, kind, args.split, dataset, args)
    json_path = os.path.join(logdir, f"eval-{name}.json")
    rundir.atomic_write(json_path, json.dumps(result, indent=1))  # never half a file
    names = cifar_input.class_names(data_dir, dataset, config["labels"])
    png_path = os.path.join(logdir, f"confusion-{name}.png")
    plot_confusion(result["confusion"], names, png_path,
                   f"{run_name(logdir)}: {dataset} {args.split}, "
                   f"{kind} checkpoint (step {step})\n"
                   f"top-1 {100 * result['top1']:.2f}%, {statistics_words}",
                   row_normalized=args.row_normalized)
    print(f"  wrote {json_path} and {png_path}")
    if args.export:
        export(model, predict, names, args.export)
        print(f"  exported SavedModel to {args.export} (model = tf.saved_model.load("
              f"{args.export!r}); model(uint8 images) -> probabilities)")
    return result


def print_table(results):
    """One row per run; `bn stats` says which batch-norm statistics gave its numbers."""
    header = f"{'logdir':<32} {'model':<8} {'act':<10} {'bn stats':<17} {'step':>7} " \
             f"{'top-1':>7} {'top-5':>7} {'loss':>7} {'ECE':>6}"
    print()
    print(header)
    print("-" * len(header))
    for r in results:
        _, statistics = bn_statistics_words(r["bn_statistics"])
        print(f"{r['logdir'][-32:]:<32} {r['model']:<8} {r['act']:<10} {statistics:<17} "
              f"{r['step']:>7} {100 * r['top1']:>6.2f}% {100 * r['top5']:>6.2f}% "
              f"{r['loss']:>7.4f} {r['ece']:>6.4f}")
        if "superclass_top1" in r:
            print(f"{'':<32} superclass top-1 {100 * r['superclass_top1']:.2f}%")
        if r["health"]:
            print(f"{'':<32} ^ {r['health']}: its numbers mean nothing")
    key = {"moving": "moving = the moving averages of training",
           "recomputed": "recomputed N = recomputed on N training images",
           "batch": "batch B = each test batch's own statistics, B images a batch"}
    modes = {r["bn_statistics"]["mode"] for r in results if r["bn_statistics"]}
    if modes:
        print("bn stats: " + "; ".join(words for mode, words in key.items() if mode in modes))


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.batch_size <= 0:
        raise UserError(f"--batch-size must be positive, got {args.batch_size}")
    runs, skipped = find_runs(args.logdir)
    if not runs:
        raise UserError("no run to evaluate: " + "; ".join(f"{entry}: {reason}"
                                                           for entry, reason in skipped))
    for entry, reason in skipped:
        print(f"skipping {entry}: {reason}")
    if args.export and len(runs) > 1:
        raise UserError(f"--export takes one run, got {len(runs)}")
    if args.checkpoint and len(runs) > 1:
        raise UserError(f"--checkpoint takes one run, got {len(runs)}")
    results = [evaluate_logdir(logdir, args) for logdir in runs]
    if args.plot:
        plot_curves(runs, args.plot, [r["trained_on"] for r in results])
        print(f"  wrote the learning curves to {args.plot}")
    print_table(results)
    return 0


if __name__ == "__main__":
    run_script(main)
