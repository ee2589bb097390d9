"""Finding CIFAR: the extracted folder, else the official archive (checked, extracted safely),
else a download from the official URL.

    find_data(data_dir, dataset) -> the folder that holds cifar-10-batches-bin/ or cifar-100-binary/

1. `data_dir/cifar-10-batches-bin/` (or `cifar-100-binary/`) exists: use it.
2. `data_dir/cifar-10-binary.tar.gz` exists: check its md5 against the official one (a mismatch
   renames it to `*.bad` and stops), then extract it member by member, refusing any member that is
   not a plain file or folder (links, devices) or whose path would land outside `data_dir`.
3. Otherwise download it from https://www.cs.toronto.edu/~kriz/ to `<archive>.part`, with a
   progress display; only after the md5 matches is it renamed to the archive's name, so an
   interrupted download is never taken for a complete one. Then step 2.
`data_dir` itself must exist: a folder that does not (a typo) is neither created nor downloaded
into; one line says so. Offline, step 3 ends in one message that says where to put the archive
and how to run on the bundled sample (`--dataset cifar10-sample`).
"""

import gzip
import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zlib

from plumbing.errors import DataError

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository root
SAMPLE_DIR = os.path.join(HERE, "data", "cifar10-sample")

ARCHIVES = {
    "cifar10": dict(url="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                    file="cifar-10-binary.tar.gz", md5="c32a1d4ab5d03f1284b67883e8d87530",
                    folder="cifar-10-batches-bin"),
    "cifar100": dict(url="https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
                     file="cifar-100-binary.tar.gz", md5="03b5dce01913d631647c71ecec9e9cb8",
                     folder="cifar-100-binary"),
}


def md5sum(path, chunk=1 << 20):
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def safe_extract(archive, target):
    """Extract a .tar.gz into `target`, refusing links, devices and paths that leave `target`."""
    root = os.path.realpath(target)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            for m in members:
                dest = os.path.realpath(os.path.join(root, m.name))
                if not (m.isfile() or m.isdir()):
                    raise DataError(f"{archive} contains {m.name!r}, which is a link or a special "
                                    "file; refusing to extract it (not an official archive)")
                if os.path.isabs(m.name) or os.path.commonpath([root, dest]) != root:
                    raise DataError(f"{archive} contains {m.name!r}, which would land outside "
                                    f"{target}; refusing to extract it (not an official archive)")
            for m in members:
                dest = os.path.join(root, m.name)
                if m.isdir():
                    os.makedirs(dest, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with tar.extractfile(m) as src, open(dest + ".part", "wb") as out:
                    shutil.copyfileobj(src, out)
                os.replace(dest + ".part", dest)
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as e:  # damaged archive
        raise DataError(f"{archive} is not a readable .tar.gz ({e}); delete it and download it "
                        "again") from None
    except OSError as e:  # writing failed: disk full, permissions
        raise DataError(f"could not extract {archive} into {target} ({e.strerror or e}); check "
                        "the free space and permissions there") from None


class _Progress:
    """Bytes received: redrawn in place on a terminal, a line every 10 % otherwise."""

    def __init__(self, total, stream=sys.stderr):
        self.total, self.stream, self.tty = total, stream, stream.isatty()
        self.start, self.last_tenth = time.time(), -1

    def __call__(self, done):
        mb, rate = done / 1e6, done / 1e6 / max(time.time() - self.start, 1e-6)
        if self.total:
            text = f"downloading {mb:.1f} / {self.total / 1e6:.1f} MB ({rate:.1f} MB/s)"
            tenth = int(10 * done / self.total)
        else:
            text, tenth = f"downloading {mb:.1f} MB ({rate:.1f} MB/s)", int(mb // 20)
        if self.tty:
            self.stream.write("\r" + text)
        elif tenth != self.last_tenth:
            self.stream.write(text + "\n")
        self.last_tenth = tenth
        self.stream.flush()

    def finish(self):
        if self.tty:  # end the line redrawn in place
            self.stream.write("\n")


def download(url, path, md5, timeout=30):
    """Download `url` to `path` via `path.part`; rename only when the md5 matches."""
    part = path + ".part"
    done = total = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            progress, done = _Progress(total), 0
            while True:
                block = response.read(1 << 20)
                if not block:
                    break
                out.write(block)
                done += len(block)
                progress(done)
            progress.finish()
        if total and done != total:
            raise http.client.IncompleteRead(b"", total - done)
    except http.client.IncompleteRead:  # the connection dropped mid-file
        if os.path.exists(part):
            os.remove(part)
        got = f" after {done} of {total} bytes" if total else ""
        raise DataError(f"the download of {url} was interrupted{got} (nothing kept); run again "
                        f"to retry, or put that archive at {os.path.abspath(path)}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        if os.path.exists(part):
            os.remove(part)
        raise DataError(f"could not download {url} ({getattr(e, 'reason', e)}); put that "
                        f"archive at {os.path.abspath(path)}, or run offline on the bundled "
                        "sample with --dataset cifar10-sample") from None
    except BaseException:
        if os.path.exists(part):
            os.remove(part)
        raise
    if md5sum(part) != md5:
        os.replace(part, path + ".bad")
        raise DataError(f"the file downloaded from {url} has the wrong md5 (kept as {path}.bad); "
                        "run again to retry")
    os.replace(part, path)


def find_data(data_dir, dataset, download_missing=True, archives=None):
    """The folder holding the extracted binaries of `dataset` (see the module docstring).

    `archives` replaces ARCHIVES (URL, file name, md5) in the tests.
    """
    if dataset == "cifar10-sample":
        return SAMPLE_DIR
    archives = archives or ARCHIVES
    if dataset not in archives:
        raise DataError(f"unknown dataset {dataset!r}; choose cifar10, cifar100 or "
                        "cifar10-sample")
    spec = archives[dataset]
    if os.path.basename(os.path.normpath(data_dir)) == spec["folder"]:
        return os.path.dirname(os.path.normpath(data_dir)) or "."
    if os.path.isdir(os.path.join(data_dir, spec["folder"])):
        return data_dir
    if os.path.exists(data_dir) and not os.path.isdir(data_dir):
        raise DataError(f"--data-dir {data_dir} is a file, not a folder")
    if not os.path.isdir(data_dir):  # a typo is neither created nor downloaded into
        raise DataError(f"--data-dir {data_dir} does not exist; create it to download "
                        f"{spec['file']} into it, or correct the path")
    archive = os.path.join(data_dir, spec["file"])
    if not os.path.exists(archive):
        if not download_missing:
            raise DataError(f"no {spec['folder']}/ and no {spec['file']} in {data_dir}; put the "
                            "archive there, or use --dataset cifar10-sample")
        print(f"{spec['file']} not found in {data_dir}; downloading {spec['url']}",
              file=sys.stderr)
        download(spec["url"], archive, spec["md5"])
    elif md5sum(archive) != spec["md5"]:
        os.replace(archive, archive + ".bad")
        raise DataError(f"{archive} has the wrong md5 (not the official archive, or damaged); "
                        f"renamed it to {spec['file']}.bad; download it again from {spec['url']}")
    # Extract beside the target and move the folder into place last: an extraction that fails
    # half-way (disk full, corrupt gzip) never leaves a folder that looks complete.
    scratch = tempfile.mkdtemp(prefix=".extracting-", dir=data_dir)
    try:
        safe_extract(archive, scratch)
        if not os.path.isdir(os.path.join(scratch, spec["folder"])):
            raise DataError(f"{archive} did not contain {spec['folder']}/; it is not the "
                            "official archive")
        os.replace(os.path.join(scratch, spec["folder"]), os.path.join(data_dir, spec["folder"]))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return data_dir
