"""Schedules against hand-computed values, Keras's schedules and PyTorch's OneCycleLR (its formula
ported below from torch/optim/lr_scheduler.py, and torch itself when it is installed)."""

import math

import numpy as np
import pytest

import schedules
from plumbing.errors import UserError


def test_constant():
    lr = schedules.build("constant", 0.01, 100, 10)
    assert [lr(0), lr(50), lr(100), lr(1000)] == [0.01] * 4


def test_step_changes_on_the_first_step_after_the_boundary_epoch():
    # 10 steps per epoch, boundaries after epochs 2 and 3: steps 0-19 at 1, 20-29 at 0.5, then 0.25.
    lr = schedules.build("step", 1.0, 50, 10, boundaries=[2, 3], gamma=0.5)
    assert [lr(0), lr(19), lr(20), lr(29), lr(30), lr(49)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_step_fractional_epochs():
    lr = schedules.build("step", 1.0, 50, 10, boundaries=[1.5], gamma=0.1)
    assert lr(14) == 1.0 and lr(15) == pytest.approx(0.1)


def test_step_schedule_equals_keras_piecewise_constant():
    # The DropActivation recipe: 0.1 / 0.01 / 0.001 / 0.0001 from epochs 91, 136, 182 (390 steps
    # per epoch). Keras's boundary B means "values[0] while step <= B": B = 91 * 390 - 1.
    import keras
    lr = schedules.build("step", 0.1, 200 * 390, 390, boundaries=[91, 136, 182])
    ref = keras.optimizers.schedules.PiecewiseConstantDecay(
        [91 * 390 - 1, 136 * 390 - 1, 182 * 390 - 1], [0.1, 0.01, 0.001, 0.0001])
    for e in [91, 136, 182]:
        for step in [e * 390 - 1, e * 390, e * 390 + 1]:  # both sides of each transition
            assert lr(step) == pytest.approx(float(ref(step)), rel=1e-6)
    for step in [0, 1, 150 * 390, 199 * 390]:
        assert lr(step) == pytest.approx(float(ref(step)), rel=1e-6)
    assert lr(91 * 390 - 1) == pytest.approx(0.1) and lr(91 * 390) == pytest.approx(0.01)


def test_step_schedule_in_steps_he2016():
    lr = schedules.build("step", 0.1, 64000, 391, boundaries=[32000, 48000], unit="steps")
    assert [lr(31999), lr(32000), lr(47999), lr(48000), lr(63999)] == pytest.approx(
        [0.1, 0.01, 0.01, 0.001, 0.001], rel=1e-12)


def test_cosine_by_hand():
    lr = schedules.build("cosine", 0.2, 100, 10, final_lr=0.02)
    # start, a quarter (cos = 1/sqrt 2), half way (the mean), end, and past the end (clamped)
    assert lr(0) == pytest.approx(0.2, rel=1e-12)
    assert lr(25) == pytest.approx(0.02 + 0.18 * (1 + math.sqrt(0.5)) / 2, rel=1e-12)
    assert lr(50) == pytest.approx(0.11, rel=1e-12)
    assert lr(100) == pytest.approx(0.02, rel=1e-12) and lr(150) == pytest.approx(0.02, rel=1e-12)


@pytest.mark.parametrize("final_lr", [None, 0.005])
def test_cosine_equals_keras_cosine_decay(final_lr):
    import keras
    lr = schedules.build("cosine", 0.05, 1000, 10, final_lr=final_lr)
    alpha = 0.0 if final_lr is None else final_lr / 0.05  # Keras: final = alpha * base
    ref = keras.optimizers.schedules.CosineDecay(0.05, 1000, alpha=alpha)
    for step in [0, 1, 250, 500, 777, 999, 1000, 1200]:
        # Keras computes in float32: 1e-5 relative, and 1e-9 absolute where the value is ~0
        assert lr(step) == pytest.approx(float(ref(step)), rel=1e-5, abs=1e-9)


def test_one_cycle_by_formula():
    total = 3900
    lr = schedules.build("one-cycle", 0.1, total, 390, warmup_fraction=0.15)
    warm = 585  # 0.15 * 3900
    assert lr(0) == pytest.approx(0.004, rel=1e-12)  # 0.1 / 25
    assert lr(100) == pytest.approx(0.004 + 0.096 * 100 / warm, rel=1e-12)
    assert lr(warm) == pytest.approx(0.1, rel=1e-12)  # the peak
    assert lr(total) == pytest.approx(0.004 / 1e4, rel=1e-9)
    assert lr(total + 10) == pytest.approx(0.004 / 1e4, rel=1e-9)
    t = (2000 - warm) / (total - warm)
    assert lr(2000) == pytest.approx(4e-7 + (0.1 - 4e-7) * 0.5 * (1 + math.cos(math.pi * t)),
                                     rel=1e-12)
    values = np.array([lr(s) for s in range(total + 1)])
    assert np.all(np.diff(values[:warm + 1]) > 0) and np.all(np.diff(values[warm:]) < 0)
    assert values.argmax() == warm


def torch_one_cycle_lrs(max_lr, total_steps, pct_start, anneal, div=25.0, final_div=1e4):
    """PyTorch's OneCycleLR(three_phase=False) learning rates at steps 0..total_steps-1, ported
    from torch/optim/lr_scheduler.py (`_schedule_phases`, `get_lr`, `_annealing_cos/linear`)."""
    initial = max_lr / div
    phases = [(float(pct_start * total_steps) - 1, initial, max_lr),
              (total_steps - 1, max_lr, initial / final_div)]
    lrs = []
    for step_num in range(total_steps):
        start_step = 0.0
        for i, (end_step, start, end) in enumerate(phases):
            if step_num <= end_step or i == len(phases) - 1:
                pct = (step_num - start_step) / (end_step - start_step)
                if anneal == "cos":
                    lrs.append(end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1))
                else:
                    lrs.append((end - start) * pct + start)
                break
            start_step = end_step
    return lrs


def test_torch_port_equals_torch():
    torch = pytest.importorskip("torch")
    for anneal in ("cos", "linear"):
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=1000,
                                                    pct_start=0.6, anneal_strategy=anneal,
                                                    cycle_momentum=False)
        lrs = []
        for _ in range(1000):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        np.testing.assert_allclose(lrs, torch_one_cycle_lrs(0.1, 1000, 0.6, anneal), rtol=1e-12)


def test_one_cycle_equals_pytorch_in_each_phase():
    # Ours over T = 999 steps ends at step 999, PyTorch's over N = 1000 at step N - 1 = 999.
    # With pct_start 0.6 both warm-ups end at step 599 (ours round(0.6 * 999), PyTorch's
    # 0.6 * 1000 - 1; with 0.15 they differ by one step). The cosine phase then matches
    # anneal_strategy="cos", and our linear warm-up matches anneal_strategy="linear".
    ours = schedules.build("one-cycle", 0.1, 999, 10, warmup_fraction=0.6)
    cos = torch_one_cycle_lrs(0.1, 1000, 0.6, "cos")
    linear = torch_one_cycle_lrs(0.1, 1000, 0.6, "linear")
    np.testing.assert_allclose([ours(s) for s in range(600)], linear[:600], rtol=1e-12)
    np.testing.assert_allclose([ours(s) for s in range(599, 1000)], cos[599:], rtol=1e-9)


def test_one_cycle_default_fraction_close_to_pytorch():
    # The default 0.15: PyTorch's peak is one step earlier (0.15 * 1001 - 1 = 149.15 vs 150).
    ours = schedules.build("one-cycle", 0.1, 1000, 10)
    cos = torch_one_cycle_lrs(0.1, 1001, 0.15, "cos")
    assert ours(0) == pytest.approx(cos[0], rel=1e-12) and ours(0) == pytest.approx(0.004)
    assert ours(1000) == pytest.approx(cos[1000], rel=1e-9)
    np.testing.assert_allclose([ours(s) for s in range(200, 1001, 50)], cos[200::50], rtol=1e-2)


def test_one_cycle_explicit_start_and_final():
    lr = schedules.build("one-cycle", 1.0, 100, 10, warmup_fraction=0.5, start_lr=0.5,
                         final_lr=0.0)
    assert [lr(0), lr(25), lr(50), lr(75), lr(100)] == pytest.approx([0.5, 0.75, 1.0, 0.5, 0.0])


def test_describe_names_every_schedule():
    for name in schedules.NAMES:
        assert schedules.describe(name).startswith(f"{name}: lr(t) = ")


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="step", boundaries=[5, 3]), "increasing"),
    (dict(name="step", boundaries=[0.01]), "positive"),  # rounds to step 0
    (dict(name="step", boundaries=[]), "needs boundaries"),
    (dict(name="step", boundaries=[5], unit="hours"), "epochs or steps"),
    (dict(name="step", boundaries=[5], gamma=0.0), "gamma"),
    (dict(name="cosine", base_lr=0.0), "must be positive"),
    (dict(name="cosine", base_lr=-0.1), "must be positive"),
    (dict(name="cosine", total_steps=0), "positive number of steps"),
    (dict(name="cosine", final_lr=0.5), "final learning rate"),
    (dict(name="one-cycle", warmup_fraction=1.0), "warm-up fraction"),
    (dict(name="one-cycle", start_lr=0.5), "start learning rate"),
    (dict(name="linear"), "constant, step, cosine, one-cycle"),
])
def test_invalid_arguments(kwargs, message):
    args = dict(base_lr=0.1, total_steps=100, steps_per_epoch=10) | kwargs
    with pytest.raises(UserError, match=message) as e:
        schedules.build(**args)
    assert "\n" not in str(e.value)  # one line


def gaaf_keras_lr_schedule(epoch):
    """kobiso/GAAF-keras utils.lr_schedule, as written there; Keras' LearningRateScheduler calls
    it with the 0-based epoch index at the start of each epoch."""
    lr = 1e-3
    if epoch > 180:
        lr *= 0.5e-3
    elif epoch > 160:
        lr *= 1e-3
    elif epoch > 120:
        lr *= 1e-2
    elif epoch > 80:
        lr *= 1e-1
    return lr


def test_step_factors_reproduce_the_gaaf_keras_schedule_epoch_by_epoch():
    # `epoch > 80` first holds for 0-based epoch 81: the drop comes once 81 epochs are complete.
    spe = 390
    lr = schedules.build("step", 1e-3, 200 * spe, spe, boundaries=[81, 121, 161, 181],
                         factors=[0.1, 0.01, 0.001, 0.0005])
    for epoch in range(200):
        for step in (epoch * spe, epoch * spe + spe - 1):  # first and last step of the epoch
            assert lr(step) == pytest.approx(gaaf_keras_lr_schedule(epoch), rel=1e-12)


def test_step_factors_need_one_positive_factor_per_boundary():
    with pytest.raises(UserError, match="one learning-rate factor per step boundary"):
        schedules.build("step", 0.1, 100, 10, boundaries=[2, 5], factors=[0.1])
    with pytest.raises(UserError, match="positive"):
        schedules.build("step", 0.1, 100, 10, boundaries=[2], factors=[0.0])
    default = schedules.build("step", 0.1, 100, 10, boundaries=[2, 5])
    same = schedules.build("step", 0.1, 100, 10, boundaries=[2, 5], factors=[0.1, 0.01])
    assert [default(t) for t in range(100)] == pytest.approx([same(t) for t in range(100)])
