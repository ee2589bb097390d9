"""lab/verdicts.py against hand-worked cases, statsmodels' Holm and scipy's Kendall tau."""

import numpy as np
import pytest
from scipy import stats as sp

from lab import stats, verdicts


def test_holm_by_hand():
    # m = 4 (None is not counted); sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1:
    # 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06.
    adjusted = verdicts.holm([0.01, 0.04, 0.03, None, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, None, 0.02], abs=1e-12)
    assert verdicts.holm([0.6, 0.7]) == [1.0, 1.0]  # 2 * 0.6 is capped at 1
    assert verdicts.holm([None, None]) == [None, None]
    assert verdicts.holm([]) == []


def test_holm_matches_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = np.random.default_rng(0).uniform(0, 0.1, size=9).tolist()
    expected = multitest.multipletests(p, method="holm")[1]
    assert verdicts.holm(p) == pytest.approx(expected.tolist(), rel=1e-12)


def test_label():
    assert verdicts.label(0.01, 0.01) == "supported"
    assert verdicts.label(-0.01, 0.01) == "contradicted"
    assert verdicts.label(0.01, 0.05) == "within noise"  # the rule needs p < 0.05
    assert verdicts.label(0.01, 0.05, alpha=0.1) == "supported"
    assert verdicts.label(0.0, 0.01) == "within noise"
    assert verdicts.label(None, None) == "within noise"


def test_judge():
    a = {s: 0.90 + 0.001 * s for s in range(5)}
    b = {s: 0.85 + 0.002 * s for s in range(5)}           # a - b = 0.05 - 0.001 s
    c = {s: a[s] - 0.03 - 0.002 * (s % 2) for s in range(5)}
    d = {0: 0.4, 7: 0.5}                                  # shares only seed 0 with b
    e = {s: b[s] + g for s, g in enumerate([0.01, 0.02, 0.0, 0.015, 0.008])}  # p = 0.035
    f = {s: b[s] + g for s, g in enumerate([0.01, -0.01, 0.005, -0.004, 0.002])}  # p = 0.87
    claims = [dict(better="a", worse="b", source="a 91 vs b 85"),
              dict(better="c", worse="a", source="c 93 vs a 91"),
              dict(better="b", worse="d", source="b 85 vs d 40"),
              dict(better="e", worse="b", source="e 86 vs b 85"),
              dict(better="f", worse="b", source="f 86 vs b 85")]
    out = verdicts.judge(claims, dict(a=a, b=b, c=c, d=d, e=e, f=f))

    assert [r["verdict"] for r in out] == ["supported", "contradicted", "within noise",
                                           "within noise", "within noise"]
    assert out[0]["source"] == "a 91 vs b 85" and out[0]["better"] == "a"
    assert out[0]["diff"] == stats.paired_difference(a, b)
    assert out[2]["diff"]["seeds"] == [0] and out[2]["p_value"] is None
    assert out[2]["p_adjusted"] is None
    raw = [r["p_value"] for r in out]
    assert [r["p_adjusted"] for r in out] == verdicts.holm(raw)
    # e > b alone would pass; 3rd smallest of 4 tested p-values, Holm doubles it above 0.05.
    assert raw[3] == pytest.approx(0.0347, abs=1e-4)
    assert out[3]["p_adjusted"] == pytest.approx(2 * raw[3], rel=1e-12)


def test_judge_arm_without_runs_is_within_noise():
    out = verdicts.judge([dict(better="x", worse="y", source="")], {"y": {0: 0.5, 1: 0.6}})
    assert out[0]["verdict"] == "within noise" and out[0]["diff"]["n"] == 0


def test_at_chance():
    assert verdicts.at_chance(0.93, False, 10) == 0.93
    assert verdicts.at_chance(0.93, True, 10) == 0.1
    assert verdicts.at_chance(float("nan"), True, 100) == 0.01


def test_ranks():
    assert verdicts.ranks(dict(a=0.9, b=0.8, c=0.9, d=0.7)) == dict(a=1.5, b=3.0, c=1.5, d=4.0)
    x = np.random.default_rng(1).uniform(size=6)
    means = {f"arm{i}": v for i, v in enumerate(x)}
    assert list(verdicts.ranks(means).values()) == sp.rankdata(-x).tolist()


def test_rank_agreement_by_hand():
    same = dict(a=0.5, b=0.6, c=0.7)
    out = verdicts.rank_agreement([(100, same),
                                   (200, dict(a=0.6, b=0.7, c=0.8, d=0.1)),  # d: one budget only
                                   (400, dict(a=0.9, b=0.8, c=0.7)),
                                   (800, dict(a=0.9))])
    first, second, third = out["pairs"]
    assert first["budgets"] == (100, 200) and first["arms"] == ["a", "b", "c"]
    assert first["tau"] == pytest.approx(1.0) and second["tau"] == pytest.approx(-1.0)
    assert third["tau"] is None and third["p_value"] is None  # one common arm
    assert out["ranks"][0] == (100, dict(a=3.0, b=2.0, c=1.0))
    assert [b for b, _ in out["ranks"]] == [100, 200, 400, 800]


def test_rank_agreement_matches_scipy():
    rng = np.random.default_rng(2)
    x, y = rng.uniform(size=8), rng.uniform(size=8)
    arms = [f"arm{i}" for i in range(8)]
    out = verdicts.rank_agreement([(1, dict(zip(arms, x))), (2, dict(zip(arms, y)))])
    expected = sp.kendalltau(x, y)
    assert out["pairs"][0]["tau"] == pytest.approx(expected.statistic, rel=1e-12)
    assert out["pairs"][0]["p_value"] == pytest.approx(expected.pvalue, rel=1e-12)
