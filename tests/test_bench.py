"""benchmarks/bench.py's FLOP count against a hand count, its peers' shapes, and that the
benchmarks start from the repository root (the speed itself is measured by running them, never in
a test)."""

import os
import subprocess
import sys

import numpy as np
import pytest

import models
from benchmarks import bench
from benchmarks import bench_peers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_resnet20_forward_flops_equal_the_hand_count():
    # MACs: stem 32*32*16*27; stage 1: 6 convs of 32*32*16*16*9; stage 2: 16*16*32*16*9 then 5 of
    # 16*16*32*32*9; stage 3: 8*8*64*32*9 then 5 of 8*8*64*64*9; dense 64*10.
    macs = (32 * 32 * 16 * 27 + 6 * 32 * 32 * 16 * 16 * 9 + 16 * 16 * 32 * 16 * 9
            + 5 * 16 * 16 * 32 * 32 * 9 + 8 * 8 * 64 * 32 * 9 + 5 * 8 * 8 * 64 * 64 * 9 + 64 * 10)
    assert bench.forward_flops(models.build("resnet", 10, depth=20), 4) == 2 * macs


@pytest.mark.parametrize("model", ["resnet", "allcnn"])
def test_torch_peer_has_the_same_parameter_count(model):
    """Like with like, as bench.py runs them: ours with batch norm (`--bn`, so the convolutions
    before it have no bias) against the peer with batch norm (gamma and beta per channel; its
    running statistics are buffers, not parameters)."""
    torch = pytest.importorskip("torch")
    if model == "resnet":
        ours = models.build("resnet", 10, depth=20, bn=True)
        peer = bench_peers.torch_resnet_v1(20)
    else:
        ours = models.build("allcnn", 10, bn=True)
        peer = bench_peers.torch_allcnn(10, bn=True)
    assert sum(p.numel() for p in peer.parameters()) == \
        sum(int(np.prod(v.shape)) for v in ours.trainable_variables)
    assert peer.eval()(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("command", [["-m", "benchmarks.bench"], ["benchmarks/bench.py"],
                                     ["-m", "benchmarks.bench_input"]])
def test_benchmarks_start_from_the_repository_root(command):
    """The README's commands: one command from the root, as a module or as a file."""
    out = subprocess.run([sys.executable, *command, "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout


def test_the_measuring_subprocess_runs_the_moved_bench():
    """Every row runs `python -m benchmarks.bench --worker ...` in the root; a worker that cannot
    start comes back as a skipped row, so a broken path would only show as empty tables."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench", "--worker", "nope"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert "KeyError: 'nope'" in out.stderr  # reached the worker table: the module imported


def test_the_interleaved_benchmark_prints_every_row_and_its_ratios():
    """`python -m benchmarks.bench --smoke`: one round of one step of every kind of row (ours, ours
    with fused batch norm, Keras, PyTorch), batch 4; the table has each row, measured, and the
    per-round ratio to PyTorch (1.00 for PyTorch itself). Speed is not checked."""
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench", "--smoke"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    header = next(l for l in out.stdout.splitlines() if l.startswith("| row |"))
    assert "x torch eager, ratio of medians" in header and "each round" in header
    rows = {l.split(" | ")[0][2:]: l.split(" | ") for l in out.stdout.splitlines()
            if l.startswith("| ") and not l.startswith("| row |")}
    assert set(rows) == {"ours", "ours, fused batch norm", "keras train_on_batch", "torch eager"}
    for cells in rows.values():
        assert int(cells[1]) == 269722  # ResNet-20 with batch norm, the same in every framework
        assert float(cells[2]) > 0  # median img/s
    assert rows["torch eager"][header.split(" | ").index("each round")] == "1.00"
