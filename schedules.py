"""Learning-rate schedules: step -> learning rate, plain Python (train.py feeds it as a tensor).

    constant   lr(t) = base
    step       lr(t) = base * gamma^(number of boundaries <= t)   boundaries in epochs or steps
    cosine     lr(t) = final + (base - final) * (1 + cos(pi * t / T)) / 2
    one-cycle  t < W:  lr = start + (base - start) * t / W                 (linear warm-up)
               t >= W: lr = final + (base - final) * (1 + cos(pi * (t - W) / (T - W))) / 2
               W = warmup_fraction * T; start = base / 25; final = start / 1e4

One-cycle (Smith & Topin 2017, arXiv 1708.07120) here rises linearly and falls along a half cosine;
PyTorch's OneCycleLR(anneal_strategy="cos") uses the same defaults (div_factor 25,
final_div_factor 1e4, pct_start) but a cosine warm-up too.
"""

import math

from errors import UserError

NAMES = ("constant", "step", "cosine", "one-cycle")


def build(name, base_lr, total_steps, steps_per_epoch, boundaries=(), unit="epochs", gamma=0.1,
          warmup_fraction=0.15, start_lr=None, final_lr=None):
    """callable(step: int) -> float for schedule `name` (see the module docstring)."""
    if name not in NAMES:
        raise UserError(f"unknown schedule {name!r}; choose one of {', '.join(NAMES)}")
    if not base_lr > 0:
        raise UserError(f"the learning rate must be positive, got {base_lr}")
    if total_steps <= 0 or steps_per_epoch <= 0:
        raise UserError(f"a schedule needs a positive number of steps, got {total_steps}")
    if name == "constant":
        return lambda step: base_lr
    if name == "step":
        if unit not in ("epochs", "steps"):
            raise UserError(f"boundary unit must be epochs or steps, got {unit!r}")
        scale = steps_per_epoch if unit == "epochs" else 1
        at = [round(b * scale) for b in boundaries]
        if any(b <= a for a, b in zip(at, at[1:])) or any(b <= 0 for b in at):
            raise UserError(f"step boundaries must be positive and increasing, got {boundaries}")
        return lambda step: base_lr * gamma ** sum(step >= b for b in at)
    if name == "cosine":
        final = 0.0 if final_lr is None else final_lr
        return lambda step: final + (base_lr - final) * 0.5 * (
            1 + math.cos(math.pi * min(step, total_steps) / total_steps))
    if not 0 <= warmup_fraction < 1:
        raise UserError(f"warm-up fraction must be in [0, 1), got {warmup_fraction}")
    start = base_lr / 25 if start_lr is None else start_lr
    final = start / 1e4 if final_lr is None else final_lr
    warm = max(1, round(warmup_fraction * total_steps)) if warmup_fraction else 0

    def one_cycle(step):
        if step < warm:
            return start + (base_lr - start) * step / warm
        t = min(step - warm, total_steps - warm) / max(total_steps - warm, 1)
        return final + (base_lr - final) * 0.5 * (1 + math.cos(math.pi * t))

    return one_cycle
