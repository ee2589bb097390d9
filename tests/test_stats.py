"""stats.py against hand-computed cases and scipy's own routines."""

import math

import numpy as np
import pytest
from scipy import stats as sp

from lab import stats


def test_summary_by_hand():
    # 1, 2, 3: mean 2, s^2 = (1 + 0 + 1) / 2 = 1, t_{0.975, 2} = 4.302653, half = 4.302653 / sqrt(3)
    s = stats.summarize([1, 2, 3])
    assert s["n"] == 3 and s["mean"] == 2.0 and s["std"] == 1.0
    assert s["half_width"] == pytest.approx(4.302653 / math.sqrt(3), abs=1e-6)
    assert s["ci_low"] == pytest.approx(2 - 2.484138, abs=1e-6)
    assert s["ci_high"] == pytest.approx(2 + 2.484138, abs=1e-6)


def test_summary_matches_scipy_interval():
    x = np.random.default_rng(0).normal(0.8, 0.01, size=7)
    s = stats.summarize(x)
    low, high = sp.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sp.sem(x))
    assert s["mean"] == pytest.approx(x.mean(), rel=1e-12)
    assert s["std"] == pytest.approx(x.std(ddof=1), rel=1e-12)
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((low, high), rel=1e-10)


def test_summary_of_one_or_none_has_no_spread():
    assert stats.summarize([0.5]) == dict(n=1, mean=0.5, std=None, ci_low=None, ci_high=None,
                                          half_width=None)
    assert stats.summarize([])["mean"] is None


def test_paired_difference_by_hand_and_scipy():
    a = {0: 0.90, 1: 0.92, 2: 0.91}
    b = {0: 0.88, 1: 0.91, 2: 0.87, 3: 0.5}  # seed 3 has no partner: left out
    d = stats.paired_difference(a, b)
    # d = 0.02, 0.01, 0.04: mean 0.07/3, s^2 = ((-1/3)^2 + (-4/3)^2 + (5/3)^2) * 1e-4 / 2 = 7/3e-4
    assert d["seeds"] == [0, 1, 2]
    assert d["mean"] == pytest.approx(0.07 / 3, abs=1e-12)
    assert d["std"] == pytest.approx(math.sqrt(7 / 3) * 1e-2, rel=1e-9)
    t = (0.07 / 3) / (math.sqrt(7 / 3) * 1e-2 / math.sqrt(3))
    assert d["p_value"] == pytest.approx(2 * sp.t.sf(t, 2), rel=1e-9)
    assert d["p_value"] == pytest.approx(sp.ttest_rel([.90, .92, .91], [.88, .91, .87]).pvalue,
                                         rel=1e-9)


def test_paired_difference_constant_gap():
    d = stats.paired_difference({0: 1.0, 1: 2.0}, {0: 0.5, 1: 1.5})
    assert d["mean"] == pytest.approx(0.5) and d["std"] == 0.0 and d["p_value"] == 0.0
    same = stats.paired_difference({0: 1.0, 1: 2.0}, {0: 1.0, 1: 2.0})
    assert same["mean"] == 0.0 and same["p_value"] == 1.0
