"""Schedules against numpy formulas, Keras schedules and (if installed) PyTorch's OneCycleLR."""

import math

import numpy as np
import pytest

import schedules
from errors import UserError


def test_step_schedule_equals_keras_piecewise_constant():
    import keras
    lr = schedules.build("step", 0.1, 200 * 390, 390, boundaries=[91, 136, 182])
    ref = keras.optimizers.schedules.PiecewiseConstantDecay(
        [91 * 390 - 1, 136 * 390 - 1, 182 * 390 - 1], [0.1, 0.01, 0.001, 0.0001])
    for step in [0, 1, 91 * 390 - 1, 91 * 390, 136 * 390, 150 * 390, 182 * 390, 199 * 390]:
        assert lr(step) == pytest.approx(float(ref(step)), rel=1e-6)
    assert lr(91 * 390 - 1) == pytest.approx(0.1) and lr(91 * 390) == pytest.approx(0.01)


def test_step_schedule_in_steps_he2016():
    lr = schedules.build("step", 0.1, 64000, 351, boundaries=[32000, 48000], unit="steps")
    assert [lr(31999), lr(32000), lr(47999), lr(48000)] == pytest.approx(
        [0.1, 0.01, 0.01, 0.001])


def test_cosine_equals_keras_cosine_decay():
    import keras
    lr = schedules.build("cosine", 0.05, 1000, 10)
    ref = keras.optimizers.schedules.CosineDecay(0.05, 1000)
    for step in [0, 1, 250, 500, 999, 1000]:
        assert lr(step) == pytest.approx(float(ref(step)), rel=1e-5, abs=1e-9)


def test_one_cycle_by_formula():
    total = 3900
    lr = schedules.build("one-cycle", 0.1, total, 390, warmup_fraction=0.15)
    warm = 585
    assert lr(0) == pytest.approx(0.004)
    assert lr(warm // 2) == pytest.approx(0.004 + 0.096 * (warm // 2) / warm)
    assert lr(warm) == pytest.approx(0.1)
    assert lr(total) == pytest.approx(0.004 / 1e4)
    t = (2000 - warm) / (total - warm)
    assert lr(2000) == pytest.approx(4e-7 + (0.1 - 4e-7) * 0.5 * (1 + math.cos(math.pi * t)))
    values = [lr(s) for s in range(total + 1)]
    assert np.all(np.diff(values[:warm + 1]) > 0) and np.all(np.diff(values[warm:]) <= 0)


def test_one_cycle_cosine_phase_equals_pytorch():
    torch = pytest.importorskip("torch")
    total, base = 1000, 0.1
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=base, total_steps=total + 1,
                                              pct_start=0.15, anneal_strategy="cos")
    torch_lrs = []
    for _ in range(total + 1):
        torch_lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    ours = schedules.build("one-cycle", base, total, 10, warmup_fraction=0.15)
    # Same start, peak and end; PyTorch's peak sits at step 0.15 * total - 1 (its own rounding),
    # and its warm-up is a cosine while ours is linear: compare endpoints and the decay phase.
    assert ours(0) == pytest.approx(torch_lrs[0], rel=1e-6)
    assert ours(total) == pytest.approx(torch_lrs[total], rel=1e-3)
    assert max(torch_lrs) == pytest.approx(max(ours(s) for s in range(total + 1)), rel=1e-5)
    for s in range(400, total + 1, 50):
        assert ours(s) == pytest.approx(torch_lrs[s], rel=2e-2)


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="step", base_lr=0.1, total_steps=10, steps_per_epoch=1, boundaries=[5, 3]),
     "increasing"),
    (dict(name="cosine", base_lr=0.0, total_steps=10, steps_per_epoch=1), "positive"),
    (dict(name="cosine", base_lr=0.1, total_steps=0, steps_per_epoch=1), "positive number"),
    (dict(name="linear", base_lr=0.1, total_steps=10, steps_per_epoch=1), "one-cycle"),
])
def test_invalid_arguments(kwargs, message):
    with pytest.raises(UserError, match=message):
        schedules.build(**kwargs)
