"""Verdicts on a source's claims: Holm-adjusted paired tests, failed runs, rank agreement.

A source (a paper, a blog post) claims orderings such as "ELU > ReLU" after its full training.
A study reruns the arms on the same seeds at one or more training budgets (steps) and gives each
claim one verdict by the rule `RULE` below. At each budget (`judge`):

    d_s      = acc_better(s) - acc_worse(s)  for each seed s both arms have
    p        = two-sided paired t test of the d_s  (`stats.paired_difference`)
    p_adj    = Holm's adjustment of the p of all claims of the study at that budget  (`holm`)
    at that budget: holds         if mean(d) > 0 and p_adj < ALPHA
                    reversed      if mean(d) < 0 and p_adj < ALPHA
                    within noise  otherwise

Then the verdict, at the longest budget L with the one before it, P (`settle`):

    supported     holds at L     and mean(d) > 0 at P
    contradicted  reversed at L  and mean(d) < 0 at P
    not settled   holds or reversed at L, but the sign of mean(d) at P differs (or is not
                  measured), or the study has one budget: it only leans one way
    within noise  within noise at L

Holm's method keeps the chance of calling any claim whose two arms do not differ "holds" or
"reversed" at one budget at most ALPHA for the whole study, whatever the number of claims and
with no assumption on how the claims depend on each other (they share arms). The condition at P
can only turn such a call into "not settled", so the bound holds for the verdicts too.

Why the sign at P and not Kendall's tau between the two longest budgets: tau measures the order of
all the arms, a claim concerns two. Arms the claim does not name can shuffle (a low tau) while its
two keep their order, and a high tau can hide the one pair that swapped; the claim's own sign is
what must have stopped moving. `rank_agreement` still reports tau, for the ranking as a whole.
"""

import math

from lab import stats

ALPHA = 0.05

RULE = (
    "Each claim of a source is a pairwise ordering 'A > B' between two arms. At each training "
    "budget, for every seed both arms were run with, we take the difference of test accuracy "
    "A - B, and a two-sided paired t test over those seeds gives a p-value; the p-values of all "
    "the claims of one study at one budget are adjusted together by Holm's method, so that the "
    "chance of finding any claim whose two arms do not differ to hold or to be reversed stays at "
    "most 5 %. "
    "At that budget a claim holds when the mean difference has the source's sign and the "
    "adjusted p-value is below 0.05, is reversed when it has the opposite sign and the adjusted "
    "p-value is below 0.05, and is within noise otherwise, which includes every claim with fewer "
    "than 2 paired seeds. The verdict is read at the study's longest budget, and only where the "
    "order has settled: a claim is supported when it holds at the longest budget and its mean "
    "difference has the same sign at the second-longest, contradicted when it is reversed at the "
    "longest budget and its mean difference has that reversed sign at the second-longest too. A "
    "claim that holds or is reversed at the longest budget but whose sign changed since the "
    "second-longest, or whose study has one budget, is not settled: it only leans one way. A "
    "claim within noise at the longest budget is within noise. The condition on the "
    "second-longest budget can only withhold a verdict, so the 5 % bound stays. Every verdict "
    "states its steps and their share of the source's training."
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
    """"holds", "reversed" or "within noise": a claim's test at one budget, by `RULE`.

    `mean_diff` is better minus worse as the source claims it, so a positive sign agrees with the
    source. None for either (fewer than 2 paired seeds) is within noise. Never a verdict by
    itself: `settle` reads it at the longest budget with the sign at the one before.
    """
    if adjusted_p is None or adjusted_p >= alpha or not mean_diff:  # untested, weak, or no sign
        return "within noise"
    return "holds" if mean_diff > 0 else "reversed"


def judge(claims, by_seed):
    """The verdict on each claim of one study, its p-values adjusted together by `holm`.

    `claims`: a list of dicts {"better": arm, "worse": arm, "source": the source's figures}.
    `by_seed`: {arm: {seed: test accuracy}}. Each claim uses only the seeds both of its arms have
    (`stats.paired_difference` pairs them), so an arm's missing or extra seeds change the number
    of pairs, never the pairing; an arm with no runs yet has no pairs and is within noise.

    Returns, per claim and in the same order, the claim's fields plus `diff` (the
    `stats.paired_difference` dict of better - worse), `p_value`, `p_adjusted` and `at_budget`
    (`label`: holds, reversed or within noise at this budget).
    """
    diffs = [stats.paired_difference(by_seed.get(c["better"], {}), by_seed.get(c["worse"], {}))
             for c in claims]
    adjusted = holm([d["p_value"] for d in diffs])
    return [dict(claim, diff=d, p_value=d["p_value"], p_adjusted=p,
                 at_budget=label(d["mean"], p))
            for claim, d, p in zip(claims, diffs, adjusted)]


def settle(by_budget):
    """The verdict on each claim of a study by `RULE`, from its tests at every budget.

    `by_budget`: [(steps, judge(claims, ...))] in increasing steps, the same claims in the same
    order at each budget. The verdict is read at the longest budget L: `supported` or
    `contradicted` only when the claim holds or is reversed there (Holm) and its mean difference
    has the same sign at the budget before, P; `not settled` when it holds or is reversed at L
    but the sign at P differs or was not measured, or there is no P (one budget); `within noise`
    when it is within noise at L.

    Returns per claim {better, worse, source, steps (L), mean (at L), at_budget (at L),
    previous_steps (P or None), previous_mean, verdict, reason}: `reason` says why a claim is not
    settled ("one budget", "the sign changed since P steps", "no difference measured at P
    steps"), else None.
    """
    if not by_budget:
        return []
    steps, longest = by_budget[-1]
    previous_steps, previous = by_budget[-2] if len(by_budget) > 1 else (None, None)
    out = []
    for i, claim in enumerate(longest):
        mean = claim["diff"]["mean"]
        before = previous[i]["diff"]["mean"] if previous else None
        verdict, reason = claim["at_budget"], None
        if verdict == "within noise":
            pass
        elif previous is None:
            verdict, reason = "not settled", "one budget"
        elif not before:  # no pairs, or exactly no difference: no sign to agree with
            verdict, reason = "not settled", f"no difference measured at {previous_steps} steps"
        elif (before > 0) != (mean > 0):
            verdict, reason = "not settled", f"the sign changed since {previous_steps} steps"
        else:
            verdict = "supported" if verdict == "holds" else "contradicted"
        out.append(dict(better=claim["better"], worse=claim["worse"], source=claim["source"],
                        steps=steps, mean=mean, at_budget=claim["at_budget"],
                        previous_steps=previous_steps, previous_mean=before, verdict=verdict,
                        reason=reason))
    return out


def verdict_text(v, share=None):
    """A verdict of `settle` as a sentence with its steps and their share of the source's training
    (`share`, e.g. "0.16 % of the post's about 50,000 steps of batch 128"):

        supported at 900 steps (1.8 % of ...); the same sign at 270 steps
        leans A > B at 900 steps (...); not settled (the sign changed since 270 steps)
        leans A > B at 78 steps (...); one budget: not settled
        within noise at 900 steps (...)
    """
    at = f"at {v['steps']} steps" + (f" ({share})" if share else "")
    if v["verdict"] in ("supported", "contradicted"):
        return f"{v['verdict']} {at}; the same sign at {v['previous_steps']} steps"
    if v["verdict"] == "within noise":
        return f"within noise {at}"
    # Not settled: the way it leans at the longest budget, the data's order (not the source's).
    a, b = (v["better"], v["worse"]) if v["mean"] > 0 else (v["worse"], v["better"])
    if v["reason"] == "one budget":
        return f"leans {a} > {b} {at}; one budget: not settled"
    return f"leans {a} > {b} {at}; not settled ({v['reason']})"


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
