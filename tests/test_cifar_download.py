"""Download, checksum and safe extraction, against a local HTTP server on 127.0.0.1 only."""

import hashlib
import http.server
import io
import os
import socket
import tarfile
import threading

import pytest

from plumbing import cifar_download
import cifar_input
from conftest import write_cifar10
from plumbing.errors import DataError


def make_archive(path, tmp_path):
    """A CIFAR-10-shaped .tar.gz (small synthetic files, official folder name); returns md5."""
    src = tmp_path / "src"
    write_cifar10(str(src), per_file=10, test=10)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(str(src / "cifar-10-batches-bin"), arcname="cifar-10-batches-bin")
    return hashlib.md5(open(path, "rb").read()).hexdigest()


class Server:
    """Serves `payload` at /file; `cut` sends only that many bytes of a full Content-Length."""

    def __init__(self, payload, cut=None, length=True):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                if length:  # without it, the client cannot tell a dropped connection from the end
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload if cut is None else payload[:cut])
                self.wfile.flush()
                outer.requests += 1

            def log_message(self, *args):
                pass

        self.requests = 0
        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/file"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def spec(url, md5):
    return {"cifar10": dict(url=url, file="cifar-10-binary.tar.gz", md5=md5,
                            folder="cifar-10-batches-bin")}


@pytest.fixture
def archive(tmp_path):
    path = str(tmp_path / "official.tar.gz")
    return path, make_archive(path, tmp_path)


@pytest.fixture(autouse=True)
def small_counts(monkeypatch):
    monkeypatch.setitem(cifar_input.FORMATS["cifar10"], "records", {})


def test_download_checks_md5_extracts_and_loads(archive, tmp_path, capsys):
    path, md5 = archive
    server = Server(open(path, "rb").read())
    data = str(tmp_path / "data")
    os.mkdir(data)
    try:
        root = cifar_download.find_data(data, "cifar10", archives=spec(server.url, md5))
    finally:
        server.close()
    assert root == data and server.requests == 1
    assert os.path.exists(os.path.join(data, "cifar-10-binary.tar.gz"))
    assert not any(n.endswith(".part") for n in os.listdir(data))
    images, labels = cifar_input.load_split(root, "train", "cifar10")
    assert images.shape == (50, 32, 32, 3)
    assert "downloading" in capsys.readouterr().err  # progress display (not a tty: lines)
    # A second call finds the extracted folder and does not download again.
    assert cifar_download.find_data(data, "cifar10", archives=spec("http://127.0.0.1:9/", md5))


def test_wrong_checksum_download_is_refused_and_kept_as_bad(archive, tmp_path):
    path, _ = archive
    server = Server(open(path, "rb").read())
    data = str(tmp_path / "data")
    os.mkdir(data)
    try:
        with pytest.raises(DataError, match="wrong md5"):
            cifar_download.find_data(data, "cifar10", archives=spec(server.url, "0" * 32))
    finally:
        server.close()
    assert os.listdir(data) == ["cifar-10-binary.tar.gz.bad"]


def test_interrupted_download_leaves_no_archive_and_no_part_file(archive, tmp_path):
    path, md5 = archive
    payload = open(path, "rb").read()
    server = Server(payload, cut=len(payload) // 2)
    data = str(tmp_path / "data")
    os.mkdir(data)
    try:
        with pytest.raises(DataError, match=r"was interrupted after \d+ of \d+ bytes "
                                            r"\(nothing kept\)"):
            cifar_download.find_data(data, "cifar10", archives=spec(server.url, md5))
    finally:
        server.close()
    assert os.listdir(data) == []


def test_dropped_connection_without_length_fails_the_md5_and_is_kept_as_bad(archive, tmp_path):
    path, md5 = archive
    payload = open(path, "rb").read()
    server = Server(payload, cut=len(payload) // 3, length=False)
    data = str(tmp_path / "data")
    os.mkdir(data)
    try:
        with pytest.raises(DataError, match="wrong md5"):
            cifar_download.find_data(data, "cifar10", archives=spec(server.url, md5))
    finally:
        server.close()
    assert os.listdir(data) == ["cifar-10-binary.tar.gz.bad"]  # never looks complete


def test_progress_is_a_line_every_tenth_when_not_a_terminal():
    stream = io.StringIO()  # isatty() is False
    progress = cifar_download._Progress(1000, stream)
    for done in range(0, 1001, 7):
        progress(done)
    lines = stream.getvalue().splitlines()
    assert 10 <= len(lines) <= 11 and lines[-1].startswith("downloading")


def test_offline_gives_one_message_with_the_path_and_the_sample(tmp_path):
    with socket.socket() as s:  # a port on 127.0.0.1 with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = str(tmp_path / "data")
    os.mkdir(data)
    with pytest.raises(DataError) as info:
        cifar_download.find_data(data, "cifar10",
                                 archives=spec(f"http://127.0.0.1:{port}/x", "0" * 32))
    message = str(info.value)
    assert f"put that archive at {os.path.join(data, 'cifar-10-binary.tar.gz')}," in message
    assert "--dataset cifar10-sample" in message and "\n" not in message


def test_local_archive_is_checked_and_extracted_without_download(archive, tmp_path):
    path, md5 = archive
    data = tmp_path / "data"
    data.mkdir()
    os.replace(path, data / "cifar-10-binary.tar.gz")
    root = cifar_download.find_data(str(data), "cifar10", archives=spec("http://127.0.0.1:9/",
                                                                         md5))
    assert os.path.isdir(os.path.join(root, "cifar-10-batches-bin"))


def test_local_archive_with_wrong_md5_is_renamed(archive, tmp_path):
    path, _ = archive
    data = tmp_path / "data"
    data.mkdir()
    os.replace(path, data / "cifar-10-binary.tar.gz")
    with pytest.raises(DataError, match="wrong md5"):
        cifar_download.find_data(str(data), "cifar10", archives=spec("http://127.0.0.1:9/",
                                                                     "0" * 32))
    assert os.listdir(data) == ["cifar-10-binary.tar.gz.bad"]


def test_the_real_archives_have_the_official_urls_and_md5s():
    assert cifar_download.ARCHIVES["cifar10"]["url"] == \
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    assert cifar_download.ARCHIVES["cifar10"]["md5"] == "c32a1d4ab5d03f1284b67883e8d87530"
    assert cifar_download.ARCHIVES["cifar100"]["url"] == \
        "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"
    assert cifar_download.ARCHIVES["cifar100"]["md5"] == "03b5dce01913d631647c71ecec9e9cb8"


def test_a_data_dir_that_does_not_exist_is_not_created_nor_downloaded_into(archive, tmp_path):
    """A typo in --data-dir used to create that folder and start a download into it."""
    path, md5 = archive
    server = Server(open(path, "rb").read())
    typo = str(tmp_path / "dta")
    try:
        with pytest.raises(DataError) as info:
            cifar_download.find_data(typo, "cifar10", archives=spec(server.url, md5))
    finally:
        server.close()
    assert str(info.value) == (f"--data-dir {typo} does not exist; create it to download "
                               "cifar-10-binary.tar.gz into it, or correct the path")
    assert server.requests == 0 and not os.path.exists(typo)


def test_the_full_archive_extracts_if_present(tmp_path):
    """CIFAR_DATA_DIR: a folder holding cifar-10-binary.tar.gz (the official archive, or a copy
    rebuilt in the same layout, whose own md5 is used since it need not be byte-identical)."""
    full = os.path.join(os.environ.get("CIFAR_DATA_DIR", ""), "cifar-10-binary.tar.gz")
    if not os.environ.get("CIFAR_DATA_DIR") or not os.path.exists(full):
        pytest.skip("set CIFAR_DATA_DIR to a folder holding cifar-10-binary.tar.gz")
    md5 = cifar_download.md5sum(full)
    data = tmp_path / "data"
    data.mkdir()
    os.symlink(full, data / "cifar-10-binary.tar.gz")
    cifar_download.find_data(str(data), "cifar10", archives=spec("http://127.0.0.1:9/", md5))
    assert os.path.getsize(data / "cifar-10-batches-bin" / "test_batch.bin") == 30730000
