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
    assert verdicts.label(0.01, 0.01) == "holds"
    assert verdicts.label(-0.01, 0.01) == "reversed"
    assert verdicts.label(0.01, 0.05) == "within noise"  # the rule needs p < 0.05
    assert verdicts.label(0.01, 0.05, alpha=0.1) == "holds"
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

    assert [r["at_budget"] for r in out] == ["holds", "reversed", "within noise",
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
    assert out[0]["at_budget"] == "within noise" and out[0]["diff"]["n"] == 0


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


# --------------------------------------------------------------------------------------------------
# settle: a verdict only where the order has settled
# --------------------------------------------------------------------------------------------------

def seeds(base, gaps):
    """Two arms' accuracies per seed whose paired differences are `gaps`: ({s: a}, {s: b})."""
    return ({s: base + g for s, g in enumerate(gaps)}, {s: base for s in range(len(gaps))})


CLEAR_UP = [0.05, 0.051, 0.049, 0.0505]        # p < 1e-5: holds, whatever Holm does to it
CLEAR_DOWN = [-g for g in CLEAR_UP]
NOISE = [0.01, -0.012, 0.004, -0.001]           # mean +0.00025, p = 0.97


def budgets(*gap_lists, claim=None):
    """A study with one claim "a > b" at budgets 90, 270, 900, ... with the given per-seed gaps."""
    claim = claim or dict(better="a", worse="b", source="a 91 vs b 85")
    out = []
    for steps, gaps in zip([90, 270, 900, 2700], gap_lists):
        a, b = seeds(0.5, gaps)
        out.append((steps, verdicts.judge([claim], dict(a=a, b=b))))
    return out


def test_settle_by_hand():
    [v] = verdicts.settle(budgets(CLEAR_DOWN, CLEAR_UP, CLEAR_UP))
    assert v["verdict"] == "supported" and v["steps"] == 900 and v["previous_steps"] == 270
    assert v["reason"] is None
    [v] = verdicts.settle(budgets(CLEAR_UP, CLEAR_DOWN, CLEAR_DOWN))
    assert v["verdict"] == "contradicted"
    # The sign at the second-longest need not be significant, only the same.
    [v] = verdicts.settle(budgets(CLEAR_DOWN, NOISE, CLEAR_UP))
    assert v["verdict"] == "supported" and v["previous_mean"] == pytest.approx(0.00025)
    [v] = verdicts.settle(budgets(CLEAR_UP, CLEAR_UP, NOISE))
    assert v["verdict"] == "within noise" and v["reason"] is None


def test_a_claim_whose_sign_flips_between_the_two_longest_budgets_is_never_settled():
    # Holds clearly at the longest budget, the other sign at the one before: not settled,
    # whatever came earlier.
    for first in (CLEAR_UP, CLEAR_DOWN, NOISE):
        [v] = verdicts.settle(budgets(first, CLEAR_DOWN, CLEAR_UP))
        assert v["verdict"] == "not settled", first
        assert v["reason"] == "the sign changed since 270 steps"
        [v] = verdicts.settle(budgets(first, NOISE, CLEAR_DOWN))  # +0.00025, then down
        assert v["verdict"] == "not settled", first
    # On random data: whenever the sign at the two longest budgets differs, no verdict is
    # supported or contradicted; whenever it is the same, the verdict is the longest budget's.
    rng = np.random.default_rng(3)
    counts = {}
    for _ in range(300):
        gaps = [rng.normal(rng.normal(0, 0.03), rng.uniform(0.001, 0.03), size=3).tolist()
                for _ in range(3)]
        by_budget = budgets(*gaps)
        [v] = verdicts.settle(by_budget)
        longest, previous = np.mean(gaps[2]), np.mean(gaps[1])
        at_longest = by_budget[-1][1][0]["at_budget"]
        if (longest > 0) != (previous > 0):
            assert v["verdict"] in ("not settled", "within noise"), gaps
        else:
            assert v["verdict"] == {"holds": "supported", "reversed": "contradicted",
                                    "within noise": "within noise"}[at_longest], gaps
        counts[v["verdict"]] = counts.get(v["verdict"], 0) + 1
    assert set(counts) == {"supported", "contradicted", "not settled", "within noise"}, counts


def test_a_one_budget_study_is_never_supported_or_contradicted():
    for gaps in (CLEAR_UP, CLEAR_DOWN, NOISE):
        [v] = verdicts.settle(budgets(gaps))
        assert v["verdict"] in ("not settled", "within noise")
        assert v["previous_steps"] is None
    [v] = verdicts.settle(budgets(CLEAR_UP))
    assert v["verdict"] == "not settled" and v["reason"] == "one budget"
    assert verdicts.settle([]) == []


def test_no_pairs_at_the_second_longest_budget_is_no_sign():
    claim = dict(better="a", worse="b", source="")
    a, b = seeds(0.5, CLEAR_UP)
    by_budget = [(270, verdicts.judge([claim], dict(a=a))),  # arm b has no runs yet
                 (900, verdicts.judge([claim], dict(a=a, b=b)))]
    [v] = verdicts.settle(by_budget)
    assert v["verdict"] == "not settled"
    assert v["reason"] == "no difference measured at 270 steps"


def test_settle_keeps_the_claims_in_order_under_holm():
    # Two claims at two budgets: the Holm adjustment is over the claims of one budget.
    claims = [dict(better="a", worse="b", source="1"), dict(better="c", worse="b", source="2")]
    a, b = seeds(0.5, CLEAR_UP)
    c, _ = seeds(0.5, CLEAR_DOWN)
    c_early, _ = seeds(0.5, CLEAR_UP)
    out = verdicts.settle([(270, verdicts.judge(claims, dict(a=a, b=b, c=c_early))),
                           (900, verdicts.judge(claims, dict(a=a, b=b, c=c)))])
    assert [v["source"] for v in out] == ["1", "2"]
    assert [v["verdict"] for v in out] == ["supported", "not settled"]


def test_verdict_text_says_the_steps_the_share_and_why():
    share = "1.8 % of the post's about 50,000 steps of batch 128"
    [v] = verdicts.settle(budgets(CLEAR_DOWN, CLEAR_UP, CLEAR_UP))
    assert verdicts.verdict_text(v, share) == (
        f"supported at 900 steps ({share}); the same sign at 270 steps")
    [v] = verdicts.settle(budgets(CLEAR_DOWN, CLEAR_UP, CLEAR_DOWN))
    # It leans the data's way, b > a, not the source's.
    assert verdicts.verdict_text(v, share) == (
        f"leans b > a at 900 steps ({share}); not settled (the sign changed since 270 steps)")
    [v] = verdicts.settle(budgets(CLEAR_UP))
    assert verdicts.verdict_text(v) == "leans a > b at 90 steps; one budget: not settled"
    [v] = verdicts.settle(budgets(NOISE))
    assert verdicts.verdict_text(v, "x") == "within noise at 90 steps (x)"


def test_the_rule_states_the_settling_condition():
    for words in ("longest budget", "second-longest", "not settled", "share of the source's "
                  "training", "Holm"):
        assert words in verdicts.RULE, words
