"""CIFAR-10/100 binary records -> numpy arrays, and the training / evaluation input pipeline.

The official binary layouts (https://www.cs.toronto.edu/~kriz/cifar.html):

    CIFAR-10   cifar-10-batches-bin/data_batch_{1..5}.bin, test_batch.bin, batches.meta.txt
               record = <1 label byte><3072 pixel bytes>                 = 3073 bytes
    CIFAR-100  cifar-100-binary/train.bin, test.bin, coarse_label_names.txt, fine_label_names.txt
               record = <1 coarse label byte><1 fine label byte><3072 pixel bytes> = 3074 bytes

Pixels are depth-major: 1024 red bytes, then 1024 green, then 1024 blue, each plane row by row.
`parse_record` cuts a record with `tf.io.decode_raw` and `tf.strided_slice` (one commented slice
per field); files are read with `tf.data.FixedLengthRecordDataset`. Every file is checked first
(present, readable, whole records, the right dataset, labels in range), so a bad file ends in one
`DataError` line instead of a reshape error deep inside TensorFlow.

The pipeline works batch-wise on an in-memory copy. CIFAR-10 is 150 MB of uint8, so the whole
training set stays in memory as one tensor; each step gathers a batch of indices and crops and
flips the whole batch in the graph (the random offsets and the flip live in the gather indices).
It does the work of the TF1 tutorial's per-record `dataset.map` (pad-4 zero-padded crop + flip +
per-channel normalisation + batch) with two gathers per batch (rows, then columns) instead of one
map call per image;
docs/PERFORMANCE.md compares the two (`python -m benchmarks.bench_input`).

Order and augmentation are pure functions of (seed, epoch, step) (stateless random ops), so a run
resumed at step k of an epoch sees exactly the batches an uninterrupted run would have seen.
"""

import os

import numpy as np
import tensorflow as tf

from plumbing.choices import NORMALIZATIONS
from plumbing.errors import DataError

DATASETS = ("cifar10", "cifar100", "cifar10-sample")
IMAGE_BYTES = 32 * 32 * 3  # 3072

# Per dataset format: folder, label bytes per record, files per split, records per file.
FORMATS = {
    "cifar10": dict(folder="cifar-10-batches-bin", label_bytes=1,
                    files={"train": [f"data_batch_{i}.bin" for i in range(1, 6)],
                           "test": ["test_batch.bin"]},
                    records={"data_batch_1.bin": 10000, "data_batch_2.bin": 10000,
                             "data_batch_3.bin": 10000, "data_batch_4.bin": 10000,
                             "data_batch_5.bin": 10000, "test_batch.bin": 10000}),
    "cifar100": dict(folder="cifar-100-binary", label_bytes=2,
                     files={"train": ["train.bin"], "test": ["test.bin"]},
                     records={"train.bin": 50000, "test.bin": 10000}),
}


def _format(dataset):
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    return FORMATS["cifar100" if dataset == "cifar100" else "cifar10"]


def num_classes(dataset, labels="fine"):
    if _format(dataset)["label_bytes"] == 1:
        return 10
    return 100 if labels == "fine" else 20


def _folder(data_dir, dataset):
    """The folder with the binary files: data_dir/<official folder>, or data_dir itself."""
    name = _format(dataset)["folder"]
    if os.path.basename(os.path.normpath(data_dir)) == name:
        return data_dir
    return os.path.join(data_dir, name)


# --------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------

def _last_axis(x, start, stop):
    """x[..., start:stop] written as the tf.strided_slice it is (ellipsis over leading axes)."""
    return tf.strided_slice(x, [0, start], [0, stop], [1, 1], ellipsis_mask=1)


def parse_record(records, label_bytes):
    """A batch of raw records -> (images uint8 [B, 32, 32, 3], labels uint8 [B, label_bytes]).

    records: string [B], each 3073 (CIFAR-10) or 3074 (CIFAR-100) bytes. Called eagerly (as
    `load_split` does), records of the wrong size raise DataError; inside a tf.data map the
    FixedLengthRecordDataset has already cut them to the right size.
    """
    if label_bytes not in (1, 2):
        raise ValueError(f"label_bytes is 1 (CIFAR-10) or 2 (CIFAR-100), not {label_bytes}")
    record_bytes = label_bytes + IMAGE_BYTES
    try:
        raw = tf.io.decode_raw(records, tf.uint8)  # [B, label_bytes + 3072]
    except tf.errors.InvalidArgumentError:  # eager only: records of different lengths
        raise DataError(f"records of different sizes, expected {record_bytes} bytes each: "
                        "the file is damaged; download the archive again") from None
    if tf.executing_eagerly() and raw.shape[0] and raw.shape[1] != record_bytes:
        raise DataError(f"records of {raw.shape[1]} bytes, expected {record_bytes} "
                        f"({label_bytes} label byte(s) + 3072 pixel bytes): wrong dataset or a "
                        "damaged file")
    # Byte offsets in one record:
    #   CIFAR-10   [0] class                 [1 : 3073] pixels
    #   CIFAR-100  [0] coarse class  [1] fine class  [2 : 3074] pixels
    # Bytes 0 .. label_bytes-1: the label(s). CIFAR-10: the class. CIFAR-100: coarse, then fine.
    labels = _last_axis(raw, 0, label_bytes)  # [B, label_bytes]
    # The remaining 3072 bytes: the image, depth-major (R plane, G plane, B plane; rows first).
    depth_major = _last_axis(raw, label_bytes, label_bytes + IMAGE_BYTES)  # [B, 3072]
    planes = tf.reshape(depth_major, [-1, 3, 32, 32])  # [B, channel, row, column]
    images = tf.transpose(planes, [0, 2, 3, 1])  # [B, row, column, channel] (NHWC)
    return images, labels


def check_file(path, dataset):
    """Raise DataError unless `path` holds whole records of `dataset` (and all of them)."""
    fmt = _format(dataset)
    record = fmt["label_bytes"] + IMAGE_BYTES
    if not os.path.isfile(path):
        raise DataError(f"missing data file {path}; the folder is incomplete: put the whole "
                        f"{fmt['folder']}/ there (or the official archive in its parent)")
    try:  # open it for real: os.access says yes to root, and a file can vanish meanwhile
        with open(path, "rb") as f:
            f.read(1)
    except OSError as e:
        raise DataError(f"cannot read {path} ({e.strerror}); fix its permissions") from None
    size = os.path.getsize(path)
    if size == 0:
        raise DataError(f"{path} is empty; delete it and download the archive again")
    if size % record:
        other = 3 + IMAGE_BYTES - fmt["label_bytes"]  # the other dataset's record size
        if size % other == 0:
            kind = "CIFAR-100" if other == 3074 else "CIFAR-10"
            raise DataError(f"{path} holds {kind} records ({other} bytes each), not "
                            f"{dataset} records ({record} bytes); check --dataset")
        raise DataError(f"{path} has {size} bytes, not a whole number of {record}-byte records "
                        "(a truncated download?); delete it and download the archive again")
    expected = fmt["records"].get(os.path.basename(path))
    if dataset != "cifar10-sample" and expected and size // record != expected:
        raise DataError(f"{path} has {size // record} records, the official file has "
                        f"{expected} (truncated, or a sample given as --dataset {dataset}?); "
                        "download the archive again")


def load_split(data_dir, split, dataset="cifar10", labels="fine"):
    """Read one split -> (uint8 images [N, 32, 32, 3], int32 labels [N]) as numpy arrays."""
    fmt = _format(dataset)
    if split not in fmt["files"]:
        raise DataError(f"unknown split {split!r}; use train or test")
    if labels not in ("fine", "coarse"):
        raise DataError(f"unknown label set {labels!r}; use fine or coarse")
    if labels == "coarse" and fmt["label_bytes"] == 1:
        raise DataError("CIFAR-10 has no coarse labels; use --labels fine")
    folder = _folder(data_dir, dataset)
    if not os.path.isdir(folder):
        other = "cifar100" if fmt["label_bytes"] == 1 else "cifar10"
        hint = ""
        if os.path.isdir(os.path.join(data_dir, FORMATS[other]["folder"])):
            hint = f" (it holds {FORMATS[other]['folder']}/: use --dataset {other})"
        raise DataError(f"no {fmt['folder']}/ folder in {data_dir}{hint}; put the extracted "
                        "folder or the official archive there")
    paths = [os.path.join(folder, name) for name in fmt["files"][split]]
    for path in paths:
        check_file(path, dataset)
    record_bytes = fmt["label_bytes"] + IMAGE_BYTES
    # Whole file through parse_record, 8192 records at a time (fast: one op per batch).
    records = tf.data.FixedLengthRecordDataset(paths, record_bytes).batch(8192)
    try:
        parts = [parse_record(batch, fmt["label_bytes"]) for batch in records]
    except tf.errors.OpError as e:  # the file changed or became unreadable after the check
        raise DataError(f"cannot read {split} files in {folder} ({e.message.splitlines()[0]}); "
                        "check the files and their permissions") from None
    if not parts:
        raise DataError(f"no records in the {split} files of {folder}; download them again")
    images = np.concatenate([p[0].numpy() for p in parts])
    all_labels = np.concatenate([p[1].numpy() for p in parts]).astype(np.int32)
    # CIFAR-10: column 0 is the class. CIFAR-100: column 0 coarse, column 1 fine.
    column = 0 if fmt["label_bytes"] == 1 or labels == "coarse" else 1
    out = all_labels[:, column]
    limit = num_classes(dataset, labels)
    if out.size and out.max() >= limit:
        bad = int(np.argmax(out >= limit))
        raise DataError(f"label {out[bad]} of record {bad} in {split} is out of range for "
                        f"{dataset} ({limit} classes): the file is damaged or of another dataset")
    if fmt["label_bytes"] == 2 and all_labels.size and all_labels[:, 0].max() >= 20:
        raise DataError(f"a coarse label in {split} is >= 20: the file is damaged")
    return images, out


def fine_to_coarse(data_dir):
    """CIFAR-100: int32 [100], the coarse class of each fine class, read from train.bin."""
    _, coarse = load_split(data_dir, "train", "cifar100", labels="coarse")
    _, fine = load_split(data_dir, "train", "cifar100", labels="fine")
    mapping = np.full(100, -1, np.int32)
    mapping[fine] = coarse
    if (mapping < 0).any():
        raise DataError("train.bin does not contain all 100 fine classes; it is damaged")
    if not np.array_equal(mapping[fine], coarse):
        raise DataError("train.bin maps a fine class to two coarse classes; it is damaged")
    return mapping


def class_names(data_dir, dataset, labels="fine"):
    folder = _folder(data_dir, dataset)
    if _format(dataset)["label_bytes"] == 1:
        name = "batches.meta.txt"
    else:
        name = f"{labels}_label_names.txt"
    path = os.path.join(folder, name)
    count = num_classes(dataset, labels)
    try:
        with open(path) as f:
            names = [line.strip() for line in f if line.strip()]
    except OSError:
        names = []
    return names if len(names) == count else [str(i) for i in range(count)]


def load_dataset(data_dir, dataset, labels="fine", val_fraction=0.0, split_seed=0,
                 train_subset=0):
    """train / val / test as numpy (images, labels); val is a stratified share of train.

    The validation images are, in every class, the same `round(val_fraction * n_class)` images
    for a given `split_seed`, whatever the run's seed, so runs with different seeds compare on the
    same validation set. `train_subset` > 0 then keeps a stratified `train_subset` of the remaining
    training images (in every class round(train_subset * n_class / n)), also fixed by `split_seed`:
    short experiments train on fewer images and still validate on the same held-out set.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(f"val_fraction must be in [0, 1), got {val_fraction}")
    train_images, train_labels = load_split(data_dir, "train", dataset, labels)
    test = load_split(data_dir, "test", dataset, labels)
    val = None
    if val_fraction > 0:
        rng = np.random.default_rng(split_seed)
        held = []
        for c in np.unique(train_labels):
            members = np.flatnonzero(train_labels == c)
            held.append(rng.permutation(members)[:int(round(val_fraction * len(members)))])
        is_val = np.zeros(len(train_labels), bool)
        is_val[np.concatenate(held)] = True
        val = (train_images[is_val], train_labels[is_val])
        train_images, train_labels = train_images[~is_val], train_labels[~is_val]
    if train_subset:
        if not 0 < train_subset <= len(train_labels):
            raise DataError(f"train_subset must be in [1, {len(train_labels)}] (the training "
                            f"images left after the validation split), got {train_subset}")
        rng = np.random.default_rng([split_seed, 1])  # a stream of its own, fixed per split_seed
        kept = []
        for c in np.unique(train_labels):
            members = np.flatnonzero(train_labels == c)
            share = int(round(train_subset * len(members) / len(train_labels)))
            kept.append(rng.permutation(members)[:share])
        kept = np.sort(np.concatenate(kept))
        train_images, train_labels = train_images[kept], train_labels[kept]
    return {"train": (train_images, train_labels), "val": val, "test": test}


# --------------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------------

def channel_stats(images):
    """Per-channel mean and std (population) of uint8 images [N, 32, 32, 3], on the 0..1 scale.

    From a 256-bin histogram per channel (exact: mean = sum_v v * count_v / n, var = E[v^2] -
    mean^2 in float64), so the 150 MB of uint8 are never converted to float64 as a whole.
    """
    values = np.arange(256, dtype=np.float64) / 255.0
    mean, std = [], []
    for c in range(3):
        counts = np.bincount(images[..., c].ravel(), minlength=256).astype(np.float64)
        p = counts / counts.sum()
        m = p @ values
        mean.append(m)
        std.append(np.sqrt(max(p @ values ** 2 - m * m, 0.0)))
    return np.array(mean, np.float32), np.array(std, np.float32)


def pixel_mean(images):
    """The mean image of uint8 images [N, 32, 32, 3] on the 0..1 scale: float32 [32, 32, 3].

    Accumulated in float64 (numpy's pairwise sum), then rounded once to float32.
    """
    return (np.mean(images, axis=0, dtype=np.float64) / 255.0).astype(np.float32)


def normalization_stats(images, normalization):
    """(mean, std) of the training images that `normalize` needs, as float32 numpy arrays.

    per-channel: mean [3] and std [3]; per-pixel: the mean image [32, 32, 3] and std ones [3]
    (unused); per-image: the per-channel statistics, unused by the normalisation itself.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {normalization!r}")
    if normalization == "per-pixel":
        return pixel_mean(images), np.ones(3, np.float32)
    return channel_stats(images)


def normalize(images, normalization, mean=None, std=None):
    """uint8 (or float 0..255) images [N, 32, 32, 3] -> float32, normalised.

    per-channel:  (x / 255 - mean_c) / std_c  with the training split's statistics
    per-pixel:    x / 255 - mean[h, w, c], the training split's mean image (He et al. 2015,
                  arXiv 1512.03385, section 4.2: "the per-pixel mean subtracted"; kobiso/GAAF-keras
                  `subtract_pixel_mean`); no division
    per-image:    tf.image.per_image_standardization (each image to zero mean, unit variance)
    """
    x = tf.cast(images, tf.float32) / 255.0
    if normalization == "per-channel":
        return (x - tf.cast(mean, tf.float32)) / tf.cast(std, tf.float32)
    if normalization == "per-pixel":
        return x - tf.cast(mean, tf.float32)  # [32, 32, 3] broadcast over the batch
    if normalization == "per-image":
        return tf.image.per_image_standardization(x)
    raise ValueError(f"unknown normalization {normalization!r}")


# --------------------------------------------------------------------------------------------------
# Pipeline
# --------------------------------------------------------------------------------------------------

class Pipeline:
    """Batches of (normalised float32 [B, 32, 32, 3], int32 [B]) from in-memory uint8 arrays.

    Augmentation (training): zero-pad by `padding` pixels, crop a random 32x32 window, flip
    horizontally with probability 1/2. Both are done for the whole batch by two gathers: one
    picks each image's 32 rows (from its random top offset), the next its 32 columns (from its
    random left offset, read right to left where the image is flipped).
    """

    def __init__(self, images, labels, batch_size, seed, augment=True, padding=4, flip=True,
                 normalization="per-channel", mean=None, std=None, shuffle=True,
                 drop_remainder=True):
        if normalization in ("per-channel", "per-pixel") and (mean is None or std is None):
            mean, std = normalization_stats(images, normalization)
        self.images = tf.constant(images)  # uint8 [N, 32, 32, 3], the whole split
        self.labels = tf.constant(np.asarray(labels, np.int32))  # int32 [N]
        self.size = len(labels)
        self.batch_size = batch_size
        self.seed = seed
        self.augment = augment
        self.padding = padding if augment else 0
        self.flip = flip and augment
        self.normalization = normalization
        self.mean = tf.constant(np.zeros(3) if mean is None else mean, tf.float32)
        self.std = tf.constant(np.ones(3) if std is None else std, tf.float32)
        self.shuffle = shuffle
        self.drop_remainder = drop_remainder
        if drop_remainder:
            self.steps_per_epoch = self.size // batch_size
        else:
            self.steps_per_epoch = -(-self.size // batch_size)

    def _order(self, epoch):
        """int32 [N]: the permutation of epoch `epoch` (identity when not shuffling)."""
        if not self.shuffle:
            return tf.range(self.size)
        keys = tf.random.stateless_uniform([self.size], seed=[self.seed, epoch])
        return tf.argsort(keys)

    def _batch(self, order, epoch, step):
        start = step * self.batch_size
        index = order[start:tf.minimum(start + self.batch_size, self.size)]  # [B]
        images = tf.gather(self.images, index)  # uint8 [B, 32, 32, 3]
        labels = tf.gather(self.labels, index)  # int32 [B]
        if self.augment:
            images = self._crop_and_flip(images, epoch, step)
        return normalize(images, self.normalization, self.mean, self.std), labels

    def _crop_and_flip(self, images, epoch, step):
        p = self.padding
        b = tf.shape(images)[0]
        seed = tf.random.experimental.stateless_fold_in(
            tf.stack([tf.cast(self.seed, tf.int64), tf.cast(epoch, tf.int64)]), step)
        padded = tf.pad(images, [[0, 0], [p, p], [p, p], [0, 0]])  # [B, 32+2p, 32+2p, 3]
        offsets = tf.random.stateless_uniform([b, 2], seed=seed, maxval=2 * p + 1,
                                              dtype=tf.int32)  # top, left of each crop
        ramp = tf.range(32)[None, :]  # [1, 32]
        rows = offsets[:, :1] + ramp  # [B, 32]
        cols = offsets[:, 1:] + ramp  # [B, 32]
        if self.flip:  # reading the columns right to left is the horizontal flip
            flipped = tf.random.stateless_uniform(
                [b, 1], seed=tf.random.experimental.stateless_fold_in(seed, 1)) < 0.5
            cols = tf.where(flipped, offsets[:, 1:] + 31 - ramp, cols)
        images = tf.gather(padded, rows, axis=1, batch_dims=1)  # [B, 32, 32+2p, 3]
        return tf.gather(images, cols, axis=2, batch_dims=1)  # [B, 32, 32, 3]

    def epoch(self, epoch, start_step=0):
        """tf.data.Dataset of the batches of `epoch`, from batch `start_step` on."""
        order = self._order(epoch)
        steps = tf.data.Dataset.range(start_step, self.steps_per_epoch)
        return steps.map(lambda s: self._batch(order, epoch, tf.cast(s, tf.int32)),
                         num_parallel_calls=tf.data.AUTOTUNE,
                         deterministic=True).prefetch(2)
