"""Learning-rate schedules: step -> learning rate, plain Python (train.py feeds it as a tensor).

`step` counts finished training steps from 0; T = total_steps.

    constant   lr(t) = base
    step       lr(t) = base * gamma^k,  k = number of boundaries b <= t
               or, with one factor per boundary, lr(t) = base * factors[k - 1] (base for k = 0)
    cosine     lr(t) = final + (base - final) * (1 + cos(pi * min(t, T) / T)) / 2
    one-cycle  t < W:   lr(t) = start + (base - start) * t / W             (linear warm-up)
               t >= W:  lr(t) = final + (base - final) * (1 + cos(pi * (t - W) / (T - W))) / 2
               W = round(warmup_fraction * T)

Defaults: cosine final = 0; one-cycle start = base / 25, final = start / 1e4.

`step`: boundaries are in epochs (`unit="epochs"`, converted to steps as round(b *
steps_per_epoch), so fractional epochs work) or in steps (`unit="steps"`). A boundary b in epochs
takes effect once b epochs are complete, at step b * steps_per_epoch: the first step of 0-based
epoch b, as PyTorch's MultiStepLR(milestones=[b]) stepped once per epoch. Examples: the
DropActivation recipe, 0.1 -> 0.01 -> 0.001 -> 0.0001 at epochs 91, 136, 182; He et al. 2015
(arXiv 1512.03385), 0.1 divided by 10 at 32k and 48k iterations (`unit="steps"`). `factors` gives
each boundary its own multiplier of the base rate instead of a power of gamma, e.g. the GAAF
recipe's x0.1, x0.01, x0.001, x0.0005 (kobiso/GAAF-keras `utils.lr_schedule`).

`cosine` is SGDR's half cosine without restarts (Loshchilov & Hutter 2016, arXiv 1608.03983),
Keras's CosineDecay(base, T, alpha=final / base); after T it stays at final.

`one-cycle` (Smith & Topin 2017, arXiv 1708.07120) rises linearly and falls along a half cosine.
PyTorch's OneCycleLR(anneal_strategy="cos") has the same defaults (div_factor 25, final_div_factor
1e4, pct_start) but a cosine warm-up too, and ends its warm-up at step pct_start * N - 1 for N
total steps (its last lr at step N - 1); the tests compare both phases with it where the two
definitions meet. No momentum cycling here: the optimizer's momentum stays fixed.
"""

import math

from plumbing.choices import SCHEDULES
from plumbing.errors import UserError

NAMES = SCHEDULES

FORMULAS = {
    "constant": "lr(t) = base",
    "step": "lr(t) = base * gamma^k, k = number of boundaries <= t (or base * factors[k - 1])",
    "cosine": "lr(t) = final + (base - final) * (1 + cos(pi * min(t, T) / T)) / 2",
    "one-cycle": "lr(t) = start + (base - start) * t / W for t < W, then cosine from base at W "
                 "to final at T; W = round(warmup_fraction * T)",
}


def describe(name):
    """One line: the formula of schedule `name`."""
    if name not in FORMULAS:
        raise UserError(f"unknown schedule {name!r}; choose one of {', '.join(NAMES)}")
    return f"{name}: {FORMULAS[name]}"


def build(name, base_lr, total_steps, steps_per_epoch, boundaries=(), unit="epochs", gamma=0.1,
          factors=None, warmup_fraction=0.15, start_lr=None, final_lr=None):
    """callable(step: int) -> float for schedule `name` (the formulas are in the module docstring).

    boundaries and unit: `step` only; gamma, or factors (one multiplier of base_lr per boundary,
    replacing gamma^k): `step` only; warmup_fraction, start_lr: `one-cycle`;
    final_lr: `cosine` and `one-cycle`. Other arguments are ignored by a schedule that has no use
    for them (train.py passes them all).
    """
    if name not in NAMES:
        raise UserError(f"unknown schedule {name!r}; choose one of {', '.join(NAMES)}")
    if not base_lr > 0 or not math.isfinite(base_lr):
        raise UserError(f"the learning rate must be positive, got {base_lr}")
    if not total_steps > 0 or not steps_per_epoch > 0:
        raise UserError(f"a schedule needs a positive number of steps, got total_steps="
                        f"{total_steps} and steps_per_epoch={steps_per_epoch}")
    if final_lr is not None and not 0 <= final_lr <= base_lr:
        raise UserError(f"the final learning rate must be in [0, {base_lr}], got {final_lr}")

    if name == "constant":
        return lambda step: float(base_lr)

    if name == "step":
        if unit not in ("epochs", "steps"):
            raise UserError(f"step boundaries are counted in epochs or steps, got unit {unit!r}")
        if not boundaries:
            raise UserError("the step schedule needs boundaries, e.g. 91,136,182 (epochs)")
        if not gamma > 0:
            raise UserError(f"the step factor gamma must be positive, got {gamma}")
        if factors is not None:
            factors = [float(f) for f in factors]
            if len(factors) != len(boundaries):
                raise UserError(f"give one learning-rate factor per step boundary: "
                                f"{len(boundaries)} boundaries, {len(factors)} factors")
            if not all(f > 0 for f in factors):
                raise UserError(f"learning-rate factors must be positive, got {factors}")
        scale = steps_per_epoch if unit == "epochs" else 1
        at = [round(b * scale) for b in boundaries]  # boundaries in steps
        if any(b <= a for a, b in zip(at, at[1:])) or at[0] <= 0:
            raise UserError(f"step boundaries must be positive and increasing (in steps: {at}), "
                            f"got {list(boundaries)} {unit}")
        if factors is None:
            return lambda step: float(base_lr * gamma ** sum(step >= b for b in at))
        multipliers = [1.0] + factors  # index k = number of boundaries passed
        return lambda step: float(base_lr * multipliers[sum(step >= b for b in at)])

    if name == "cosine":
        final = 0.0 if final_lr is None else final_lr
        return lambda step: float(final + (base_lr - final) * 0.5 * (
            1 + math.cos(math.pi * min(step, total_steps) / total_steps)))

    # one-cycle
    if not 0 <= warmup_fraction < 1:
        raise UserError(f"the warm-up fraction must be in [0, 1), got {warmup_fraction}")
    start = base_lr / 25 if start_lr is None else start_lr
    if not 0 < start <= base_lr:
        raise UserError(f"the one-cycle start learning rate must be in (0, {base_lr}], "
                        f"got {start}")
    final = start / 1e4 if final_lr is None else final_lr
    warm = min(round(warmup_fraction * total_steps), total_steps - 1)  # W, in steps

    def one_cycle(step):
        if step < warm:
            return float(start + (base_lr - start) * step / warm)
        t = min(step - warm, total_steps - warm) / (total_steps - warm)  # 0 -> 1 over the decay
        return float(final + (base_lr - final) * 0.5 * (1 + math.cos(math.pi * t)))

    return one_cycle
