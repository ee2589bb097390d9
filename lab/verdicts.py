"""Verdicts on a source's claims: Holm-adjusted paired tests, failed runs, rank agreement.

A source (a paper, a blog post) claims orderings such as "ELU > ReLU". A study reruns the arms on
the same seeds and gives each claim one verdict by the rule `RULE` below:

    d_s      = acc_better(s) - acc_worse(s)  for each seed s both arms have
    p        = two-sided paired t test of the d_s  (`stats.paired_difference`)
    p_adj    = Holm's adjustment of the p of all claims of the study at one budget  (`holm`)
    verdict  = supported     if mean(d) > 0 and p_adj < ALPHA
               contradicted  if mean(d) < 0 and p_adj < ALPHA
               within noise  otherwise

Holm's method keeps the chance of calling any claim whose two arms do not differ "supported" or
"contradicted" at most ALPHA for the whole study, whatever the number of claims and with no
assumption on how the claims depend on each other (they share arms).
"""

import math

from lab import stats

ALPHA = 0.05

RULE = (
    "Each claim of a source is a pairwise ordering 'A > B' between two arms. For every seed both "
    "arms were run with, we take the difference of test accuracy A - B, and a two-sided paired "
    "t test over those seeds gives a p-value. The p-values of all the claims of one study at one "
    "training budget are adjusted together by Holm's method, so that the chance of calling any "
    "of those claims supported or contradicted when its two arms do not differ stays at most "
    "5%. A claim is "
    "supported when the mean difference has the source's sign and the adjusted p-value is below "
    "0.05, contradicted when it has the opposite sign and the adjusted p-value is below 0.05, "
    "and within noise otherwise, which includes every claim with fewer than 2 paired seeds."
)


def holm(p_values):
    """Holm-Bonferroni adjusted p-values (Holm 1979), in the order of `p_values`.

    With the m p-values that are not None sorted ascending, p_(1) <= ... <= p_(m):

        adjusted_(i) = max_{j <= i} min(1, (m - j + 1) * p_(j))

    Rejecting every hypothesis whose adjusted p-value is below alpha is Holm's step-down test at
    family-wise error rate alpha. None entries (no test was possible) stay None and do not count
    in m: a claim that could not be tested cannot produce a false verdict.
    """
    order = sorted((i for i, p in enumerate(p_values) if p is not None), key=lambda i: p_values[i])
    m = len(order)
    adjusted = [None] * len(p_values)
    running_max = 0.0
    for j, i in enumerate(order, start=1):
        # The running maximum keeps the adjusted values in the order of the raw ones.
        running_max = max(running_max, min(1.0, (m - j + 1) * p_values[i]))
        adjusted[i] = running_max
    return adjusted


def label(mean_diff, adjusted_p, alpha=ALPHA):
    """"supported", "contradicted" or "within noise" by `RULE`.

    `mean_diff` is better minus worse as the source claims it, so a positive sign agrees with the
    source. None for either (fewer than 2 paired seeds) is within noise.
    """
    if adjusted_p is None or adjusted_p >= alpha or not mean_diff:  # untested, weak, or no sign
        return "within noise"
    return "supported" if mean_diff > 0 else "contradicted"


def judge(claims, by_seed):
    """The verdict on each claim of one study, its p-values adjusted together by `holm`.

    `claims`: a list of dicts {"better": arm, "worse": arm, "source": the source's figures}.
    `by_seed`: {arm: {seed: test accuracy}}. Each claim uses only the seeds both of its arms have
    (`stats.paired_difference` pairs them), so an arm's missing or extra seeds change the number
    of pairs, never the pairing; an arm with no runs yet has no pairs and is within noise.

    Returns, per claim and in the same order, the claim's fields plus `diff` (the
    `stats.paired_difference` dict of better - worse), `p_value`, `p_adjusted` and `verdict`.
    """
    diffs = [stats.paired_difference(by_seed.get(c["better"], {}), by_seed.get(c["worse"], {}))
             for c in claims]
    adjusted = holm([d["p_value"] for d in diffs])
    return [dict(claim, diff=d, p_value=d["p_value"], p_adjusted=p,
                 verdict=label(d["mean"], p))
            for claim, d, p in zip(claims, diffs, adjusted)]


def at_chance(accuracy, failed, num_classes):
    """The accuracy a run counts with: 1 / num_classes if it failed (diverged or dead).

    A failed run is a result of the arm, not a missing value: dropping it would average the arm
    over its lucky seeds only and flatter exactly the arm that fails. A run that predicts nothing
    useful scores chance, 1 / num_classes, on a balanced test set like CIFAR's.
    """
    return 1.0 / num_classes if failed else accuracy


def ranks(means):
    """{arm: rank} with 1 for the highest mean; tied arms share the average of their ranks.

    The same ranks as `scipy.stats.rankdata(-means, method="average")`.
    """
    from scipy import stats as sp

    arms = list(means)
    return {arm: float(r) for arm, r in zip(arms, sp.rankdata([-means[a] for a in arms]))}


def rank_agreement(means_by_budget):
    """Does a longer training budget keep the order of the arms? Kendall's tau between budgets.

    `means_by_budget`: an ordered list of (budget_steps, {arm: mean accuracy}). For each pair of
    consecutive budgets, over the n arms both have, with P concordant pairs of arms, Q discordant
    ones and T_1, T_2 pairs tied at only the first or only the second budget:

        tau_b = (P - Q) / sqrt((P + Q + T_1) * (P + Q + T_2))

    (`scipy.stats.kendalltau`: 1 for the same order, -1 for the reversed order) with its two-sided
    p-value for "no association". With fewer than 2 common arms, or one budget where all are
    tied, tau and p are None.

    Returns {"ranks": [(budget_steps, ranks(means)) per budget],
             "pairs": [{"budgets": (b1, b2), "arms": [...], "tau": ..., "p_value": ...}, ...]}.
    """
    from scipy import stats as sp

    pairs = []
    for (b1, m1), (b2, m2) in zip(means_by_budget, means_by_budget[1:]):
        arms = [a for a in m1 if a in m2]
        tau = p = None
        if len(arms) >= 2:
            result = sp.kendalltau([m1[a] for a in arms], [m2[a] for a in arms])
            # scipy gives nan when one side is all ties: no order to agree with.
            if not math.isnan(result.statistic):
                tau, p = float(result.statistic), float(result.pvalue)
        pairs.append(dict(budgets=(b1, b2), arms=arms, tau=tau, p_value=p))
    return dict(ranks=[(b, ranks(m)) for b, m in means_by_budget], pairs=pairs)
