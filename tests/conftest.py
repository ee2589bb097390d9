"""Shared helpers: synthetic CIFAR files in the exact official binary layouts."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# ---- Order of the files under `pytest -n 2 --dist loadfile` (the README's test command) ----------
# xdist hands out whole files, by default those with the most tests first; a file of one slow test
# (the README's command, about a minute) handed out last runs alone while the other worker idles.
# So the slowest files go first (longest first, as in any list scheduling) and xdist keeps the
# order. Measured with `--durations=0` on two cores, 2026-12-02; the order changes the wall time of
# the suite, never which tests run or what they check.
SLOWEST_FIRST = ["test_train.py", "test_distribute.py", "test_train_faults.py", "test_readme.py",
                 "test_reading.py", "test_train_allcnn.py", "test_compare.py", "test_eval.py",
                 "test_models.py", "test_diagnostics.py", "test_studies.py"]


def pytest_configure(config):
    if hasattr(config.option, "loadscopereorder"):  # pytest-xdist >= 3.6: keep the order below
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable


def synthetic_records(labels, planes):
    """Records with the given label bytes [N, 1 or 2] and constant R, G, B planes [N, 3]."""
    labels = np.asarray(labels, np.uint8).reshape(len(planes), -1)
    pixels = np.repeat(np.asarray(planes, np.uint8), 1024, axis=1)  # [N, 3072] depth-major
    return np.concatenate([labels, pixels], axis=1)


def write_cifar10(root, per_file=20, test=30, seed=0):
    """A small CIFAR-10 in the official layout under root/cifar-10-batches-bin; returns arrays."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, "cifar-10-batches-bin")
    os.makedirs(folder, exist_ok=True)
    out = {}
    for name, n in [(f"data_batch_{i}.bin", per_file) for i in range(1, 6)] + \
            [("test_batch.bin", test)]:
        labels = np.arange(n) % 10
        images = rng.integers(0, 256, size=[n, 32, 32, 3], dtype=np.uint8)
        chw = images.transpose(0, 3, 1, 2).reshape(n, -1)
        np.concatenate([labels[:, None].astype(np.uint8), chw], 1).tofile(
            os.path.join(folder, name))
        out[name] = (images, labels)
    with open(os.path.join(folder, "batches.meta.txt"), "w") as f:
        f.write("\n".join(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                           "horse", "ship", "truck"]) + "\n")
    return out


def write_cifar100(root, train=200, test=50, seed=0):
    """A synthetic CIFAR-100 (coarse byte, fine byte, pixels) under root/cifar-100-binary."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, "cifar-100-binary")
    os.makedirs(folder, exist_ok=True)
    fine_to_coarse = np.arange(100) % 20  # a made-up but consistent superclass table
    out = {}
    for name, n in [("train.bin", train), ("test.bin", test)]:
        fine = np.arange(n) % 100
        images = rng.integers(0, 256, size=[n, 32, 32, 3], dtype=np.uint8)
        chw = images.transpose(0, 3, 1, 2).reshape(n, -1)
        np.concatenate([fine_to_coarse[fine][:, None].astype(np.uint8),
                        fine[:, None].astype(np.uint8), chw], 1).tofile(os.path.join(folder, name))
        out[name] = (images, fine, fine_to_coarse[fine])
    for kind, count in [("fine", 100), ("coarse", 20)]:
        with open(os.path.join(folder, f"{kind}_label_names.txt"), "w") as f:
            f.write("\n".join(f"{kind}{i}" for i in range(count)) + "\n")
    return out, fine_to_coarse
