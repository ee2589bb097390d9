"""bench.py's FLOP count against a hand count, and its peers' shapes (the speed itself is measured
by running bench.py, never in a test)."""

import numpy as np
import pytest

import bench
import bench_peers
import models


def test_resnet20_forward_flops_equal_the_hand_count():
    # MACs: stem 32*32*16*27; stage 1: 6 convs of 32*32*16*16*9; stage 2: 16*16*32*16*9 then 5 of
    # 16*16*32*32*9; stage 3: 8*8*64*32*9 then 5 of 8*8*64*64*9; dense 64*10.
    macs = (32 * 32 * 16 * 27 + 6 * 32 * 32 * 16 * 16 * 9 + 16 * 16 * 32 * 16 * 9
            + 5 * 16 * 16 * 32 * 32 * 9 + 8 * 8 * 64 * 32 * 9 + 5 * 8 * 8 * 64 * 64 * 9 + 64 * 10)
    assert bench.forward_flops(models.build("resnet", 10, depth=20), 4) == 2 * macs


def test_torch_peer_has_the_same_parameter_count():
    torch = pytest.importorskip("torch")
    ours = models.build("resnet", 10, depth=20)
    peer = bench_peers.torch_resnet_v1(20)
    assert sum(p.numel() for p in peer.parameters()) == \
        sum(int(np.prod(v.shape)) for v in ours.trainable_variables)
    assert peer(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
