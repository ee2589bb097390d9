"""The statistics of a comparison over seeds: mean, spread, intervals and paired differences.

For the values x_1 .. x_n of one arm (one per seed):

    mean   m = sum_i x_i / n
    std    s = sqrt(sum_i (x_i - m)^2 / (n - 1))            (the sample standard deviation)
    95% confidence interval of the mean (Student t, n - 1 degrees of freedom):
           m -+ t_{0.975, n-1} * s / sqrt(n)

For two arms A and B run on the same seeds, the paired difference d_i = a_i - b_i (seed i gives
both arms the same initial weights and the same data order, so d_i removes what the seed does to
both): the mean of d with its t interval as above, and the two-sided p-value of the paired t test
t = mean(d) / (s_d / sqrt(n)) (`scipy.stats.ttest_rel`). With fewer than 2 values (or 2 pairs)
the spread, the interval and the p-value are undefined and given as None.

A p-value over many arms is not corrected for multiple comparisons: with 20 arms, one in 20 pure
noise differences has p < 0.05. Read the intervals.
"""

import math

# The fewest values from which a report shows an interval or a p-value (lab/report.py: `shown`):
# from fewer the interval is too wide to read (with 2 seeds, t_{0.975, 1} = 12.7).
MIN_SEEDS_FOR_INTERVAL = 3


def summarize(values, confidence=0.95):
    """{n, mean, std, ci_low, ci_high, half_width} of the values (std etc. None if n < 2)."""
    from scipy import stats

    values = [float(v) for v in values]
    n = len(values)
    out = dict(n=n, mean=None, std=None, ci_low=None, ci_high=None, half_width=None)
    if n == 0:
        return out
    mean = sum(values) / n
    out["mean"] = mean
    if n < 2:
        return out
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)
    out.update(std=std, ci_low=mean - half, ci_high=mean + half, half_width=half)
    return out


def paired_difference(a, b, confidence=0.95):
    """Mean of a_i - b_i with its t interval and the paired t test's p-value.

    `a` and `b` are dicts seed -> value; only seeds present in both are paired.
    """
    from scipy import stats

    seeds = sorted(set(a) & set(b))
    diffs = [float(a[s]) - float(b[s]) for s in seeds]
    out = summarize(diffs, confidence)
    out.update(seeds=seeds, p_value=None)
    if len(seeds) >= 2:
        if out["std"] == 0.0:
            # Every pair differs by the same amount: t is infinite (or 0/0 when that amount is 0).
            out["p_value"] = 1.0 if out["mean"] == 0.0 else 0.0
        else:
            out["p_value"] = float(stats.ttest_rel([a[s] for s in seeds],
                                                   [b[s] for s in seeds]).pvalue)
    return out
