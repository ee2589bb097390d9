"""Every bad data input ends in one DataError line that names the problem, never a deep TF error.

The cases: the parametrised ones below plus the hypothesis examples (random bytes and sizes).
"""

import io
import os
import tarfile

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, event, given, settings, strategies as st

from plumbing import cifar_download
import cifar_input
from conftest import synthetic_records, write_cifar10, write_cifar100
from plumbing.errors import DataError


@pytest.fixture(autouse=True)
def small_counts(monkeypatch):
    """Synthetic files are small: the official-count check is tested on its own below."""
    monkeypatch.setitem(cifar_input.FORMATS["cifar10"], "records", {})
    monkeypatch.setitem(cifar_input.FORMATS["cifar100"], "records", {})


def folder(tmp_path):
    return os.path.join(str(tmp_path), "cifar-10-batches-bin")


def test_missing_data_dir(tmp_path):
    with pytest.raises(DataError, match="no cifar-10-batches-bin/ folder"):
        cifar_input.load_split(str(tmp_path / "nowhere"), "train", "cifar10")


def test_empty_data_dir_without_download(tmp_path):
    with pytest.raises(DataError, match="no cifar-10-batches-bin/ and no cifar-10-binary.tar.gz"):
        cifar_download.find_data(str(tmp_path), "cifar10", download_missing=False)


def test_empty_folder(tmp_path):
    os.makedirs(folder(tmp_path))
    with pytest.raises(DataError, match="missing data file .*data_batch_1.bin"):
        cifar_input.load_split(str(tmp_path), "train", "cifar10")


def test_only_some_files_present(tmp_path):
    write_cifar10(str(tmp_path))
    os.remove(os.path.join(folder(tmp_path), "data_batch_4.bin"))
    with pytest.raises(DataError, match="data_batch_4.bin"):
        cifar_input.load_split(str(tmp_path), "train", "cifar10")
    cifar_input.load_split(str(tmp_path), "test", "cifar10")  # the test split is complete


def test_unreadable_file(tmp_path):
    write_cifar10(str(tmp_path))
    path = os.path.join(folder(tmp_path), "test_batch.bin")
    os.chmod(path, 0)
    if os.access(path, os.R_OK):  # root reads anything: use a directory in its place instead
        os.chmod(path, 0o644)
        os.remove(path)
        os.mkdir(path)
        with pytest.raises(DataError, match="test_batch.bin"):
            cifar_input.load_split(str(tmp_path), "test", "cifar10")
        return
    with pytest.raises(DataError, match="permission denied"):
        cifar_input.load_split(str(tmp_path), "test", "cifar10")


def test_file_that_cannot_be_opened(tmp_path, monkeypatch):
    write_cifar10(str(tmp_path))

    def refuse(path, *args, **kwargs):  # what open() does on a chmod 000 file for a non-root user
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(cifar_input, "open", refuse, raising=False)
    with pytest.raises(DataError, match="cannot read .*data_batch_1.bin .Permission denied.; "
                                        "fix its permissions"):
        cifar_input.load_split(str(tmp_path), "train", "cifar10")


def test_data_dir_holding_the_other_dataset_says_which_flag(tmp_path):
    write_cifar100(str(tmp_path), train=10, test=10)
    with pytest.raises(DataError, match="it holds cifar-100-binary/: use --dataset cifar100"):
        cifar_input.load_split(str(tmp_path), "train", "cifar10")


def test_empty_file(tmp_path):
    write_cifar10(str(tmp_path))
    open(os.path.join(folder(tmp_path), "data_batch_2.bin"), "wb").close()
    with pytest.raises(DataError, match="data_batch_2.bin is empty"):
        cifar_input.load_split(str(tmp_path), "train", "cifar10")


def test_truncated_file(tmp_path):
    write_cifar10(str(tmp_path))
    path = os.path.join(folder(tmp_path), "data_batch_3.bin")
    data = open(path, "rb").read()
    open(path, "wb").write(data[:-1000])
    with pytest.raises(DataError, match="not a whole number of 3073-byte records"):
        cifar_input.load_split(str(tmp_path), "train", "cifar10")


def test_truncated_at_a_record_boundary_is_caught_by_the_official_count(tmp_path, monkeypatch):
    monkeypatch.setitem(cifar_input.FORMATS["cifar10"], "records", {"test_batch.bin": 10000})
    write_cifar10(str(tmp_path))
    with pytest.raises(DataError, match="has 30 records, the official file has 10000"):
        cifar_input.load_split(str(tmp_path), "test", "cifar10")


def test_cifar100_records_given_as_cifar10(tmp_path):
    write_cifar10(str(tmp_path))
    records = synthetic_records([[1, 2]] * 20, [[1, 2, 3]] * 20)  # 3074-byte records
    records.tofile(os.path.join(folder(tmp_path), "data_batch_1.bin"))
    with pytest.raises(DataError, match="holds CIFAR-100 records"):
        cifar_input.load_split(str(tmp_path), "train", "cifar10")


def test_cifar10_records_given_as_cifar100(tmp_path):
    write_cifar100(str(tmp_path))
    records = synthetic_records([[1]] * 20, [[1, 2, 3]] * 20)  # 3073-byte records
    records.tofile(os.path.join(str(tmp_path), "cifar-100-binary", "train.bin"))
    with pytest.raises(DataError, match="holds CIFAR-10 records"):
        cifar_input.load_split(str(tmp_path), "train", "cifar100")


@pytest.mark.parametrize("dataset, labels, bad_label, message", [
    ("cifar10", "fine", [10], "label 10 .* out of range for cifar10"),
    ("cifar10", "fine", [255], "label 255"),
    ("cifar100", "fine", [3, 100], "label 100 .* out of range for cifar100"),
    ("cifar100", "coarse", [20, 5], "label 20 .* out of range"),
    ("cifar100", "fine", [20, 5], "coarse label"),
])
def test_label_bytes_out_of_range(tmp_path, dataset, labels, bad_label, message):
    if dataset == "cifar10":
        write_cifar10(str(tmp_path))
        path = os.path.join(folder(tmp_path), "test_batch.bin")
    else:
        write_cifar100(str(tmp_path))
        path = os.path.join(str(tmp_path), "cifar-100-binary", "test.bin")
    raw = bytearray(open(path, "rb").read())
    record = len(bad_label) + 3072
    raw[7 * record:7 * record + len(bad_label)] = bytes(bad_label)  # record 7
    open(path, "wb").write(bytes(raw))
    with pytest.raises(DataError, match=message):
        cifar_input.load_split(str(tmp_path), "test", dataset, labels)


def tar_with(tmp_path, member_setup):
    path = str(tmp_path / "cifar-10-binary.tar.gz")
    with tarfile.open(path, "w:gz") as tar:
        member_setup(tar)
    return path


def add_file(tar, name, data=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def add_link(tar, name, target, kind):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    tar.addfile(info)


@pytest.mark.parametrize("setup, message", [
    (lambda t: add_file(t, "../evil.bin"), "outside"),
    (lambda t: add_file(t, "cifar-10-batches-bin/../../evil.bin"), "outside"),
    (lambda t: add_file(t, "/tmp/rawtf-absolute-evil.bin"), "outside"),
    (lambda t: add_link(t, "cifar-10-batches-bin/link", "/etc/passwd", tarfile.SYMTYPE),
     "link"),
    (lambda t: add_link(t, "cifar-10-batches-bin/hard", "/etc/passwd", tarfile.LNKTYPE),
     "link"),
    (lambda t: add_link(t, "cifar-10-batches-bin/fifo", "", tarfile.FIFOTYPE), "special"),
])
def test_dangerous_archive_members_are_refused(tmp_path, setup, message):
    path = tar_with(tmp_path, setup)
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(DataError, match=message):
        cifar_download.safe_extract(path, str(target))
    assert not (tmp_path / "evil.bin").exists() and list(target.iterdir()) == []
    assert not os.path.exists("/tmp/rawtf-absolute-evil.bin")


def test_corrupt_gzip_is_refused(tmp_path):
    path = tmp_path / "cifar-10-binary.tar.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(2000))
    spec = {"cifar10": dict(url="http://127.0.0.1:9/", file="cifar-10-binary.tar.gz",
                            md5=cifar_download.md5sum(str(path)),
                            folder="cifar-10-batches-bin")}
    with pytest.raises(DataError, match="not a readable .tar.gz"):
        cifar_download.find_data(str(tmp_path), "cifar10", archives=spec)


def test_truncated_gzip_is_refused(tmp_path):
    src = tmp_path / "src"
    write_cifar10(str(src))
    path = str(tmp_path / "a.tar.gz")
    with tarfile.open(path, "w:gz") as tar:
        tar.add(str(src / "cifar-10-batches-bin"), arcname="cifar-10-batches-bin")
    data = open(path, "rb").read()
    open(path, "wb").write(data[:len(data) // 2])
    with pytest.raises(DataError, match="not a readable"):
        cifar_download.safe_extract(path, str(tmp_path / "out"))


def test_disk_full_during_extraction_leaves_no_folder_that_looks_complete(tmp_path,
                                                                          monkeypatch):
    src = tmp_path / "src"
    write_cifar10(str(src))
    data = tmp_path / "data"
    data.mkdir()
    path = str(data / "cifar-10-binary.tar.gz")
    with tarfile.open(path, "w:gz") as tar:
        tar.add(str(src / "cifar-10-batches-bin"), arcname="cifar-10-batches-bin")
    spec = {"cifar10": dict(url="http://127.0.0.1:9/", file="cifar-10-binary.tar.gz",
                            md5=cifar_download.md5sum(path), folder="cifar-10-batches-bin")}
    copied = []

    def copy_then_fill_the_disk(src, dst):  # the third file finds the disk full
        if len(copied) == 2:
            raise OSError(28, "No space left on device")
        copied.append(dst.write(src.read()))

    monkeypatch.setattr(cifar_download.shutil, "copyfileobj", copy_then_fill_the_disk)
    with pytest.raises(DataError, match="could not extract .*No space left on device.*free space"):
        cifar_download.find_data(str(data), "cifar10", archives=spec)
    assert os.listdir(data) == ["cifar-10-binary.tar.gz"]  # two files were written, none left
    assert len(copied) == 2


def test_failed_extraction_leaves_no_folder_that_looks_complete(tmp_path):
    src = tmp_path / "src"
    write_cifar10(str(src))
    data = tmp_path / "data"
    data.mkdir()
    path = str(data / "cifar-10-binary.tar.gz")
    with tarfile.open(path, "w:gz") as tar:
        tar.add(str(src / "cifar-10-batches-bin"), arcname="cifar-10-batches-bin")
    blob = open(path, "rb").read()
    open(path, "wb").write(blob[:len(blob) * 3 // 4])  # the last quarter of the archive lost
    spec = {"cifar10": dict(url="http://127.0.0.1:9/", file="cifar-10-binary.tar.gz",
                            md5=cifar_download.md5sum(path), folder="cifar-10-batches-bin")}
    with pytest.raises(DataError, match="not a readable .tar.gz"):
        cifar_download.find_data(str(data), "cifar10", archives=spec)
    assert os.listdir(data) == ["cifar-10-binary.tar.gz"]  # no folder, no scratch left


# ------------------------------------------------------------------------------------------------
# Fuzzing
# ------------------------------------------------------------------------------------------------

def records_like(draw_bytes, record, count, label_limits):
    """`count` random records whose label bytes are mostly in range (so some files are valid)."""
    raw = np.frombuffer(draw_bytes, np.uint8).copy().reshape(count, record)
    for column, limit in enumerate(label_limits):
        raw[:, column] %= limit + 1  # in range, or exactly one past it (the edge)
    return raw.tobytes()


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), dataset=st.sampled_from(["cifar10", "cifar100"]),
       shape=st.sampled_from(["records", "bytes"]))
def test_fuzz_any_bytes_as_a_training_file_load_or_data_error(tmp_path_factory, data, dataset,
                                                              shape):
    root = str(tmp_path_factory.mktemp("fuzz"))
    if dataset == "cifar10":
        write_cifar10(root, per_file=2, test=2)
        path, record, limits = os.path.join(root, "cifar-10-batches-bin", "data_batch_1.bin"), \
            3073, [10]
    else:
        write_cifar100(root, train=3, test=2)
        path, record, limits = os.path.join(root, "cifar-100-binary", "train.bin"), 3074, [20, 100]
    if shape == "records":  # whole records, random pixels and (nearly valid) label bytes
        count = data.draw(st.integers(1, 3))
        blob = records_like(data.draw(st.binary(min_size=count * record,
                                                max_size=count * record)),
                            record, count, limits)
    else:  # any bytes at all, any length
        blob = data.draw(st.binary(min_size=0, max_size=3 * 3074))
    open(path, "wb").write(blob)
    try:
        images, labels = cifar_input.load_split(root, "train", dataset)
    except DataError as e:
        event("DataError")  # --hypothesis-show-statistics counts the refused inputs
        assert "\n" not in str(e)
        return
    event("accepted")
    # Accepted only if it really is whole records of this dataset with every label in range.
    assert len(blob) % record == 0 and len(blob) > 0
    n = len(blob) // record
    raw = np.frombuffer(blob, np.uint8).reshape(n, record)
    assert all(raw[:, c].max() < limit for c, limit in enumerate(limits))
    np.testing.assert_array_equal(labels[:n], raw[:, len(limits) - 1])  # fine = the last byte
    np.testing.assert_array_equal(images[:n], raw[:, len(limits):].reshape(n, 3, 32, 32)
                                  .transpose(0, 2, 3, 1))


@settings(max_examples=60, deadline=None)
@given(records=st.lists(st.binary(min_size=3074, max_size=3074), min_size=1, max_size=5),
       label_bytes=st.sampled_from([1, 2]))
def test_fuzz_parse_record_equals_a_numpy_reader(records, label_bytes):
    size = label_bytes + 3072
    strings = [r[:size] for r in records]
    images, labels = cifar_input.parse_record(tf.constant(strings), label_bytes)
    raw = np.frombuffer(b"".join(strings), np.uint8).reshape(len(strings), size)
    np.testing.assert_array_equal(labels, raw[:, :label_bytes])
    np.testing.assert_array_equal(images, raw[:, label_bytes:].reshape(-1, 3, 32, 32)
                                  .transpose(0, 2, 3, 1))


# Record lengths: the two real sizes and their neighbours (one byte missing or extra), or anything.
LENGTHS = st.one_of(st.sampled_from([0, 1, 3072, 3073, 3074, 3075]), st.integers(0, 7000))


@settings(max_examples=80, deadline=None)
@given(lengths=st.lists(LENGTHS, min_size=1, max_size=4), seed=st.integers(0, 2 ** 32 - 1),
       label_bytes=st.sampled_from([1, 2]), whole=st.booleans())
def test_fuzz_parse_record_with_any_sizes_parses_or_raises_data_error(lengths, seed, label_bytes,
                                                                      whole):
    if whole:  # also batches of right-sized records, so the accepting path is fuzzed too
        lengths = [label_bytes + 3072] * len(lengths)
    rng = np.random.default_rng(seed)
    records = [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in lengths]
    size = label_bytes + 3072
    try:
        images, labels = cifar_input.parse_record(tf.constant(records), label_bytes)
    except DataError as e:
        event("DataError")
        assert "\n" not in str(e)
        assert any(len(r) != size for r in records)
        return
    event("accepted")
    assert all(len(r) == size for r in records)  # accepted only when every record fits
    raw = np.frombuffer(b"".join(records), np.uint8).reshape(len(records), size)
    np.testing.assert_array_equal(labels, raw[:, :label_bytes])
    np.testing.assert_array_equal(images, raw[:, label_bytes:].reshape(-1, 3, 32, 32)
                                  .transpose(0, 2, 3, 1))


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.one_of(st.integers(min_value=0, max_value=60 * 3074),  # any size, or whole
                     st.integers(1, 60).flatmap(lambda k: st.sampled_from([k * 3073, k * 3074]))),
       dataset=st.sampled_from(["cifar10", "cifar100"]))
def test_fuzz_file_check_by_size(tmp_path_factory, size, dataset):
    path = os.path.join(str(tmp_path_factory.mktemp("size")), "test.bin")
    with open(path, "wb") as f:
        f.truncate(size)
    record = 3073 if dataset == "cifar10" else 3074
    try:
        cifar_input.check_file(path, dataset)
    except DataError as e:
        event("DataError")
        assert size == 0 or size % record != 0, str(e)
        return
    event("accepted")
    assert size > 0 and size % record == 0
