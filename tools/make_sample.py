"""Cut the bundled sample (data/cifar10-sample) from a full CIFAR-10 in the official binary layout.

    python tools/make_sample.py "$CIFAR_DATA_DIR/cifar-10-batches-bin" data/cifar10-sample

The bundled sample was cut from the copy of CIFAR-10 described in docs/RESULTS.md (rebuilt from
JPEG images in the official layout), so it regenerates byte for byte only from that copy.

The sample keeps the official layout (`cifar-10-batches-bin/data_batch_{1..5}.bin`,
`test_batch.bin`, `batches.meta.txt`), so every code path that reads real CIFAR-10 reads it too:
the first 20 images of each class from each training file (200 per file, 1,000 in all) and the
first 50 of each class from the test file (500): 1,500 records of 3,073 bytes = 4.6 MB. The
records keep their original order within each file, so the cut is deterministic.
"""

import os
import shutil
import sys

import numpy as np

RECORD = 1 + 32 * 32 * 3  # label byte + 3072 pixel bytes


def cut(src, dst, per_class):
    records = np.fromfile(src, np.uint8).reshape(-1, RECORD)
    labels = records[:, 0]
    keep = np.sort(np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(10)]))
    records[keep].tofile(dst)
    return len(keep)


def main(src_dir, out_dir):
    out = os.path.join(out_dir, "cifar-10-batches-bin")
    os.makedirs(out, exist_ok=True)
    for i in range(1, 6):
        name = f"data_batch_{i}.bin"
        print(name, cut(os.path.join(src_dir, name), os.path.join(out, name), 20))
    print("test_batch.bin", cut(os.path.join(src_dir, "test_batch.bin"),
                                os.path.join(out, "test_batch.bin"), 50))
    shutil.copy(os.path.join(src_dir, "batches.meta.txt"), os.path.join(out, "batches.meta.txt"))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
