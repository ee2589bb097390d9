"""cifar_input: every field of hand-made records, both layouts, the split, the pipeline."""

import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from plumbing import cifar_download
import cifar_input
from conftest import synthetic_records, write_cifar10, write_cifar100
from plumbing.errors import DataError


@pytest.mark.parametrize("label_bytes", [1, 2])
def test_parse_record_reads_every_field_of_constant_plane_records(label_bytes):
    planes = [[10, 20, 30], [255, 0, 128], [1, 2, 3]]
    labels = [[7], [3], [9]] if label_bytes == 1 else [[4, 41], [19, 99], [0, 0]]
    records = synthetic_records(labels, planes)
    assert records.shape[1] == label_bytes + 3072
    strings = tf.constant([r.tobytes() for r in records])
    images, parsed = cifar_input.parse_record(strings, label_bytes)
    assert images.shape == [3, 32, 32, 3] and images.dtype == tf.uint8
    np.testing.assert_array_equal(parsed, labels)
    for i, (r, g, b) in enumerate(planes):
        np.testing.assert_array_equal(images[i, :, :, 0], r)  # R plane -> channel 0
        np.testing.assert_array_equal(images[i, :, :, 1], g)
        np.testing.assert_array_equal(images[i, :, :, 2], b)


def test_parse_record_is_depth_major_rows_first():
    pixels = np.arange(3072) % 251  # distinct-ish values, pattern checkable
    record = np.concatenate([[5], pixels]).astype(np.uint8)
    images, _ = cifar_input.parse_record(tf.constant([record.tobytes()]), 1)
    # pixel (row, col, channel) is byte channel * 1024 + row * 32 + col
    for row, col, ch in [(0, 0, 0), (0, 31, 0), (1, 0, 0), (31, 31, 2), (7, 13, 1)]:
        assert int(images[0, row, col, ch]) == pixels[ch * 1024 + row * 32 + col]


def test_load_split_cifar10_equals_a_numpy_reader(tmp_path):
    written = write_cifar10(str(tmp_path))
    images, labels = cifar_input.load_split(str(tmp_path), "train", "cifar10-sample")
    expected = np.concatenate([written[f"data_batch_{i}.bin"][0] for i in range(1, 6)])
    np.testing.assert_array_equal(images, expected)
    assert labels.dtype == np.int32 and list(labels[:12]) == list(np.arange(12) % 10)
    test_images, _ = cifar_input.load_split(str(tmp_path), "test", "cifar10-sample")
    np.testing.assert_array_equal(test_images, written["test_batch.bin"][0])


def test_load_split_cifar100_fine_coarse_and_mapping(tmp_path, monkeypatch):
    # Synthetic files are smaller than the official 50,000 / 10,000 records: skip that count check.
    monkeypatch.setitem(cifar_input.FORMATS["cifar100"], "records", {})
    written, table = write_cifar100(str(tmp_path))
    images, fine = cifar_input.load_split(str(tmp_path), "train", "cifar100", "fine")
    _, coarse = cifar_input.load_split(str(tmp_path), "train", "cifar100", "coarse")
    np.testing.assert_array_equal(images, written["train.bin"][0])
    np.testing.assert_array_equal(fine, written["train.bin"][1])
    np.testing.assert_array_equal(coarse, written["train.bin"][2])
    np.testing.assert_array_equal(cifar_input.fine_to_coarse(str(tmp_path)), table)
    assert cifar_input.num_classes("cifar100", "coarse") == 20
    assert cifar_input.class_names(str(tmp_path), "cifar100", "coarse")[3] == "coarse3"


def test_the_bundled_sample_is_real_official_layout_and_small():
    root = cifar_download.find_data("ignored", "cifar10-sample")
    folder = os.path.join(root, "cifar-10-batches-bin")
    names = sorted(os.listdir(folder))
    assert names == ["batches.meta.txt"] + [f"data_batch_{i}.bin" for i in range(1, 6)] + \
        ["test_batch.bin"]
    assert sum(os.path.getsize(os.path.join(folder, n)) for n in names) <= 5 * 2 ** 20
    splits = cifar_input.load_dataset(root, "cifar10-sample")
    assert np.bincount(splits["train"][1]).tolist() == [100] * 10
    assert np.bincount(splits["test"][1]).tolist() == [50] * 10
    assert cifar_input.class_names(root, "cifar10-sample")[:2] == ["airplane", "automobile"]
    assert splits["train"][0].std() > 40  # real photographs, not constant planes


def numpy_reader(path, label_bytes):
    """The official layout read with numpy alone: the independent reference for load_split."""
    raw = np.fromfile(path, np.uint8).reshape(-1, label_bytes + 3072)
    return raw[:, label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), raw[:, :label_bytes]


def test_load_split_of_the_real_sample_equals_the_numpy_reader():
    folder = os.path.join(cifar_download.find_data("", "cifar10-sample"), "cifar-10-batches-bin")
    for split, names in [("train", [f"data_batch_{i}.bin" for i in range(1, 6)]),
                         ("test", ["test_batch.bin"])]:
        images, labels = cifar_input.load_split(os.path.dirname(folder), split, "cifar10-sample")
        parts = [numpy_reader(os.path.join(folder, n), 1) for n in names]
        np.testing.assert_array_equal(images, np.concatenate([p[0] for p in parts]))
        np.testing.assert_array_equal(labels, np.concatenate([p[1][:, 0] for p in parts]))


def test_make_sample_regenerates_the_bundled_sample_byte_for_byte(tmp_path):
    """Needs the copy of CIFAR-10 the sample was cut from, in CIFAR_DATA_DIR (docs/RESULTS.md)."""
    full = os.path.join(os.environ.get("CIFAR_DATA_DIR", ""), "cifar-10-batches-bin")
    if not os.environ.get("CIFAR_DATA_DIR") or not os.path.isdir(full):
        pytest.skip("set CIFAR_DATA_DIR to a folder holding cifar-10-batches-bin/")
    ours = os.path.join(cifar_download.SAMPLE_DIR, "cifar-10-batches-bin")
    with open(os.path.join(full, "data_batch_1.bin"), "rb") as a, \
            open(os.path.join(ours, "data_batch_1.bin"), "rb") as b:
        if a.read(3073) != b.read(3073):  # the sample starts with the first record of the file
            pytest.skip("CIFAR_DATA_DIR holds another copy of CIFAR-10 than the sample's source")
    sys.path.insert(0, os.path.join(cifar_download.HERE, "tools"))
    import make_sample
    make_sample.main(full, str(tmp_path))
    for name in os.listdir(ours):
        assert open(os.path.join(ours, name), "rb").read() == \
            open(os.path.join(tmp_path, "cifar-10-batches-bin", name), "rb").read(), name


def test_stratified_validation_split_is_exact_and_independent_of_run_seed():
    root = cifar_download.find_data("", "cifar10-sample")
    a = cifar_input.load_dataset(root, "cifar10-sample", val_fraction=0.2)
    b = cifar_input.load_dataset(root, "cifar10-sample", val_fraction=0.2)
    c = cifar_input.load_dataset(root, "cifar10-sample", val_fraction=0.2, split_seed=1)
    assert np.bincount(a["val"][1]).tolist() == [20] * 10
    assert np.bincount(a["train"][1]).tolist() == [80] * 10
    np.testing.assert_array_equal(a["val"][0], b["val"][0])
    assert not np.array_equal(a["val"][0], c["val"][0])
    # train and val are disjoint and together the training files
    full = cifar_input.load_dataset(root, "cifar10-sample")["train"][0]
    both = np.concatenate([a["train"][0], a["val"][0]]).reshape(1000, -1)
    assert len({r.tobytes() for r in both}) == len({r.tobytes() for r in full.reshape(1000, -1)})


def test_train_subset_is_stratified_disjoint_from_val_and_fixed_by_the_split_seed():
    root = cifar_download.find_data("", "cifar10-sample")
    a = cifar_input.load_dataset(root, "cifar10-sample", val_fraction=0.2, train_subset=300)
    b = cifar_input.load_dataset(root, "cifar10-sample", val_fraction=0.2, train_subset=300)
    full = cifar_input.load_dataset(root, "cifar10-sample", val_fraction=0.2)
    assert np.bincount(a["train"][1]).tolist() == [30] * 10  # 300 * 80 / 800 per class
    np.testing.assert_array_equal(a["train"][0], b["train"][0])
    np.testing.assert_array_equal(a["val"][0], full["val"][0])  # the same held-out images
    kept = {r.tobytes() for r in a["train"][0].reshape(300, -1)}
    assert kept <= {r.tobytes() for r in full["train"][0].reshape(800, -1)}
    assert not kept & {r.tobytes() for r in a["val"][0].reshape(200, -1)}
    with pytest.raises(DataError, match="train_subset"):
        cifar_input.load_dataset(root, "cifar10-sample", val_fraction=0.2, train_subset=801)


def test_normalisation_against_numpy():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, [6, 32, 32, 3], dtype=np.uint8)
    mean, std = cifar_input.channel_stats(images)
    x = images.astype(np.float64) / 255
    np.testing.assert_allclose(mean, x.mean((0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(std, x.std((0, 1, 2)), rtol=1e-6)
    out = cifar_input.normalize(images, "per-channel", mean, std).numpy()
    np.testing.assert_allclose(out, (x - mean) / std, rtol=1e-5, atol=1e-5)
    per_image = cifar_input.normalize(images, "per-image").numpy()
    np.testing.assert_allclose(per_image.mean((1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(per_image.std((1, 2, 3)), 1, atol=1e-3)


def test_per_pixel_mean_normalisation_as_kobiso_gaaf_keras():
    """kobiso/GAAF-keras main.py: x_train = x_train.astype('float32') / 255; x_train_mean =
    np.mean(x_train, axis=0); x -= x_train_mean (train and test alike)."""
    rng = np.random.default_rng(1)
    train = rng.integers(0, 256, [40, 32, 32, 3], dtype=np.uint8)
    test = rng.integers(0, 256, [5, 32, 32, 3], dtype=np.uint8)
    x_train = train.astype("float32") / 255
    x_train_mean = np.mean(x_train, axis=0)  # [32, 32, 3]
    mean, std = cifar_input.normalization_stats(train, "per-pixel")
    assert mean.shape == (32, 32, 3) and mean.dtype == np.float32
    np.testing.assert_allclose(mean, x_train_mean, rtol=1e-6)
    for images in (train, test):
        out = cifar_input.normalize(images, "per-pixel", mean, std).numpy()
        np.testing.assert_allclose(out, images.astype("float32") / 255 - x_train_mean,
                                   atol=1e-6)
    # As stored in config.json (nested lists) and read back by eval.py: the same numbers.
    again = cifar_input.normalize(test, "per-pixel", tf.constant(mean.tolist()), std.tolist())
    np.testing.assert_array_equal(again, cifar_input.normalize(test, "per-pixel", mean, std))
    # The pipeline computes the mean image itself when not given one.
    pipe = cifar_input.Pipeline(train, np.zeros(40), 8, seed=0, augment=False,
                                normalization="per-pixel", shuffle=False)
    batch = next(iter(pipe.epoch(0)))[0].numpy()
    np.testing.assert_allclose(batch, x_train[:8] - x_train_mean, atol=1e-6)


def test_normalization_stats_per_channel_are_channel_stats():
    images = np.random.default_rng(2).integers(0, 256, [6, 32, 32, 3], dtype=np.uint8)
    for a, b in zip(cifar_input.normalization_stats(images, "per-channel"),
                    cifar_input.channel_stats(images)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="unknown normalization"):
        cifar_input.normalization_stats(images, "zca")


def padded_crops(image, padding):
    """Every crop (and its mirror) of a zero-padded image, as a set of bytes: numpy reference."""
    p = np.pad(image, [[padding, padding], [padding, padding], [0, 0]])
    crops = set()
    for top in range(2 * padding + 1):
        for left in range(2 * padding + 1):
            crop = p[top:top + 32, left:left + 32]
            crops.add(crop.tobytes())
            crops.add(crop[:, ::-1].tobytes())
    return crops


def test_every_augmented_image_is_a_padded_crop_or_its_mirror():
    rng = np.random.default_rng(1)
    images = rng.integers(1, 256, [12, 32, 32, 3], dtype=np.uint8)
    labels = np.arange(12) % 10
    pipe = cifar_input.Pipeline(images, labels, 4, seed=3, normalization="per-channel",
                                mean=np.zeros(3), std=np.ones(3) / 255.0, shuffle=False)
    flipped = shifted = 0
    for epoch in range(3):
        for step, (x, y) in enumerate(pipe.epoch(epoch)):
            out = np.rint(x.numpy()).astype(np.uint8)  # undo the identity normalisation
            for i in range(4):
                src = images[step * 4 + i]
                assert out[i].tobytes() in padded_crops(src, 4)
                assert y[i] == labels[step * 4 + i]
                flipped += not any(out[i].tobytes() == c for c in [src.tobytes()]) and \
                    out[i].tobytes() in {np.pad(src, [[4, 4], [4, 4], [0, 0]])[t:t + 32, l:l + 32]
                                         [:, ::-1].tobytes() for t in range(9) for l in range(9)}
                shifted += out[i].tobytes() != src.tobytes()
    assert flipped > 5 and shifted > 20  # augmentation actually happens (36 images)


def test_pipeline_is_deterministic_and_resumes_mid_epoch():
    root = cifar_download.find_data("", "cifar10-sample")
    images, labels = cifar_input.load_split(root, "train", "cifar10-sample")
    pipe = cifar_input.Pipeline(images, labels, 64, seed=5)
    whole = [(x.numpy(), y.numpy()) for x, y in pipe.epoch(2)]
    again = [(x.numpy(), y.numpy()) for x, y in pipe.epoch(2)]
    tail = [(x.numpy(), y.numpy()) for x, y in pipe.epoch(2, start_step=6)]
    assert len(whole) == 1000 // 64 == pipe.steps_per_epoch
    for (a, b), (c, d) in zip(whole, again):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    assert len(tail) == len(whole) - 6
    for (a, b), (c, d) in zip(whole[6:], tail):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    # a pure function of (seed, epoch, step): a new Pipeline object gives the same batches
    fresh = cifar_input.Pipeline(images, labels, 64, seed=5)
    x, y = next(iter(fresh.epoch(2, start_step=3)))
    np.testing.assert_array_equal(x, whole[3][0])
    np.testing.assert_array_equal(y, whole[3][1])
    reseeded = next(iter(cifar_input.Pipeline(images, labels, 64, seed=6).epoch(2)))
    assert not np.array_equal(reseeded[1], whole[0][1])  # another seed, another order
    other = next(iter(pipe.epoch(3)))[1].numpy()
    assert not np.array_equal(whole[0][1], other)  # a new order each epoch
    # each epoch visits every image at most once
    seen = np.concatenate([b for _, b in whole])
    assert len(seen) == 960


def test_eval_pipeline_keeps_the_last_partial_batch_in_order():
    images = np.zeros([10, 32, 32, 3], np.uint8)
    labels = np.arange(10)
    pipe = cifar_input.Pipeline(images, labels, 4, seed=0, augment=False, shuffle=False,
                                drop_remainder=False)
    got = [y.numpy().tolist() for _, y in pipe.epoch(0)]
    assert got == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
