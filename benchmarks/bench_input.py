"""Images/s of the training input pipeline, with augmentation: per record vs per batch.

    python -m benchmarks.bench_input --data-dir "$CIFAR_DATA_DIR" --dataset cifar10   # full set
    python -m benchmarks.bench_input --dataset cifar10-sample    # offline, the bundled sample

Both ways do the same work: pad by 4 with zeros, crop a random 32x32 window, flip with probability
1/2, normalise per channel, batch, prefetch.
- per record: the way of the TensorFlow 1 CIFAR-10 tutorial (tutorials/image/cifar10/
  cifar10_input.py in https://github.com/tensorflow/models), `dataset.map` on each record
  (parse_record on a batch of one, then tf.image ops on one image), shuffled with a 10,000-record
  buffer;
- per batch: `cifar_input.Pipeline`, the whole split in memory as one uint8 tensor, a batch of
  indices gathered and cropped + flipped batch-wise by two gathers (rows, then columns) in the
  graph.
Each rate is the median of `--reps` passes over `--images` images (after one warm-up pass).
"""

import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # also when started as `python benchmarks/bench_input.py`
    sys.path.insert(0, ROOT)

import tensorflow as tf

from plumbing import cifar_download
import cifar_input


def per_record_dataset(folder, batch_size, mean, std, padding=4):
    """The per-record pipeline: files -> records -> one augmented image per map call -> batches."""
    files = [os.path.join(folder, f"data_batch_{i}.bin") for i in range(1, 6)]

    def one(record):  # record: string scalar
        images, labels = cifar_input.parse_record(record[None], 1)  # [1, 32, 32, 3], [1, 1]
        size = 32 + 2 * padding
        image = tf.image.pad_to_bounding_box(images[0], padding, padding, size, size)  # zeros
        image = tf.image.random_flip_left_right(tf.image.random_crop(image, [32, 32, 3]))
        return cifar_input.normalize(image, "per-channel", mean, std), tf.cast(labels[0, 0],
                                                                               tf.int32)

    return (tf.data.FixedLengthRecordDataset(files, 1 + cifar_input.IMAGE_BYTES)
            .shuffle(10000, seed=0).repeat()
            .map(one, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))


def rate(batches, limit):
    """Images/s drawing `limit` images from the iterable `batches`."""
    start, n = time.perf_counter(), 0
    for x, _ in batches:
        n += int(x.shape[0])
        if n >= limit:
            break
    return n / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default="data", help="folder with cifar-10-batches-bin/")
    parser.add_argument("--dataset", default="cifar10", choices=["cifar10", "cifar10-sample"])
    parser.add_argument("--batch-size", type=int, default=128, help="images per batch")
    parser.add_argument("--images", type=int, default=20000, help="images per timed pass")
    parser.add_argument("--reps", type=int, default=5, help="timed passes per pipeline")
    args = parser.parse_args()

    root = cifar_download.find_data(args.data_dir, args.dataset)
    images, labels = cifar_input.load_split(root, "train", args.dataset)  # [N,32,32,3] uint8
    mean, std = cifar_input.channel_stats(images)
    limit = min(args.images, len(labels)) // args.batch_size * args.batch_size

    records = per_record_dataset(os.path.join(root, "cifar-10-batches-bin"), args.batch_size,
                                 mean, std)
    rate(records, 2048)  # warm-up: tracing, thread pools
    per_record = [rate(records, limit) for _ in range(args.reps)]

    pipeline = cifar_input.Pipeline(images, labels, args.batch_size, seed=0, mean=mean, std=std)
    rate(pipeline.epoch(0), 2048)
    per_batch = [rate(pipeline.epoch(e + 1), limit) for e in range(args.reps)]

    print(f"TF {tf.__version__}, {os.cpu_count()} CPUs, {len(labels)} training images, "
          f"batch {args.batch_size}, {limit} images per pass, median of {args.reps}")
    for name, rates in [("per record (dataset.map on each record)", per_record),
                        ("per batch (cifar_input.Pipeline, in memory)", per_batch)]:
        print(f"{name:45s} {statistics.median(rates):9.0f} images/s "
              f"(min {min(rates):.0f}, max {max(rates):.0f})")


if __name__ == "__main__":
    main()
