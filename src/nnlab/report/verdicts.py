"""The report's comparative words, decided from numbers with an explicit noise rule.

A word like "meets", "beats", "best" or "stalled" is only written when the numbers carry
it: a difference counts when its interval excludes 0 (or the threshold), a change counts
when it exceeds a stated fraction.  Otherwise the report says the two cannot be told
apart.  Every rule here is a function, so a test can feed it a tie and see the tie wording.
"""

from __future__ import annotations

import math
import statistics

from nnlab.errors import NnlabValueError
from nnlab.metrics import INTERVAL_LEVEL

#: Confidence level of every interval the report computes (the bootstrap's too).
LEVEL = INTERVAL_LEVEL
#: A relative change smaller than this over a training budget counts as a plateau.
PLATEAU = 0.01
#: Two counts (or fractions) closer than this many standard errors of their difference are within noise.
NOISE_SE = 2.0


def mean_interval(values, level: float = LEVEL) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``values`` and its Student-t interval, ``mean ± t·sd/√n``."""
    values = [float(v) for v in values]
    if len(values) < 2:
        raise NnlabValueError(f"mean_interval: expected at least 2 values, got {len(values)}")
    mean = statistics.fmean(values)
    half = t_critical(len(values), level) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def accuracy_interval(values, level: float = LEVEL) -> dict:
    """The Student-t interval of a mean accuracy, clipped to [0, 1] (an accuracy cannot leave it).

    Returns ``{"mean", "low", "high", "t_low", "t_high", "clipped"}``: ``t_low``/``t_high`` are the
    unclipped ends, ``clipped`` whether either end was moved.
    """
    mean, t_low, t_high = mean_interval(values, level)
    low, high = max(t_low, 0.0), min(t_high, 1.0)
    return {"mean": mean, "low": low, "high": high, "t_low": t_low, "t_high": t_high,
            "clipped": (low, high) != (t_low, t_high)}


def against(low: float, high: float, reference: float = 0.0) -> str:
    """``"above"``, ``"below"`` or ``"tie"``: where an interval ``[low, high]`` lies relative to ``reference``."""
    if low > high:
        raise NnlabValueError(f"against: expected low <= high, got [{low}, {high}]")
    if low > reference:
        return "above"
    if high < reference:
        return "below"
    return "tie"


def paired(values_a, values_b, level: float = LEVEL) -> dict:
    """Split-by-split differences ``a - b`` and their mean's interval; ``verdict`` from :func:`against` 0.

    Returns ``{"diffs", "mean", "low", "high", "verdict", "higher", "equal", "lower"}``.
    """
    diffs = [a - b for a, b in zip(values_a, values_b, strict=True)]
    mean, low, high = mean_interval(diffs, level)
    return {"diffs": diffs, "mean": mean, "low": low, "high": high, "verdict": against(low, high),
            "higher": sum(d > 0 for d in diffs), "equal": sum(d == 0 for d in diffs),
            "lower": sum(d < 0 for d in diffs)}


def t_critical(n: int, level: float = LEVEL) -> float:
    """The two-sided Student-t critical value for the mean of ``n`` values, ``t_{(1+level)/2, n-1}``."""
    from scipy import stats

    if n < 2:
        raise NnlabValueError(f"t_critical: expected at least 2 values, got {n}")
    return float(stats.t.ppf((1 + level) / 2, n - 1))


def paired_t(values_a, values_b, level: float = LEVEL) -> dict:
    """Paired comparison of ``a - b`` over the same folds: mean, standard error, ``t`` and its critical value.

    ``se = sd(diffs)/sqrt(n)``, ``t = mean/se``; ``verdict`` is ``"tie"`` when ``|t| <= t_critical``
    (the same rule as :func:`paired`'s interval holding 0), else ``"above"`` or ``"below"``.  A zero
    ``se`` makes any nonzero mean real.  Returns ``{"diffs", "mean", "se", "t", "t_critical", "verdict"}``.
    """
    diffs = [float(a) - float(b) for a, b in zip(values_a, values_b, strict=True)]
    crit = t_critical(len(diffs), level)
    mean = statistics.fmean(diffs)
    se = statistics.stdev(diffs) / math.sqrt(len(diffs))
    t = mean / se if se > 0 else (0.0 if mean == 0 else math.copysign(math.inf, mean))
    verdict = "tie" if abs(t) <= crit else ("above" if t > 0 else "below")
    return {"diffs": diffs, "mean": mean, "se": se, "t": t, "t_critical": crit, "verdict": verdict}


def relative_change(before: float, after: float) -> float:
    """``(after - before) / |before|``."""
    if before == 0:
        raise NnlabValueError("relative_change: expected a nonzero starting value, got 0")
    return (after - before) / abs(before)


def trend(before: float, after: float, plateau: float = PLATEAU) -> str:
    """``"falls"``, ``"rises"`` or ``"stalls"`` (relative change within ``plateau``)."""
    change = relative_change(before, after)
    if abs(change) < plateau:
        return "stalls"
    return "falls" if change < 0 else "rises"


def proportion_gap(p_a: float, n_a: int, p_b: float, n_b: int, noise_se: float = NOISE_SE) -> dict:
    """Difference of two accuracies ``p_a - p_b`` (on ``n_a`` and ``n_b`` images) against its binomial error.

    ``se = sqrt(p_a(1-p_a)/n_a + p_b(1-p_b)/n_b)``; ``within_noise`` when ``|gap| < noise_se · se``
    (a zero ``se``, both accuracies 0 or 1, makes any nonzero gap real).
    """
    gap = p_a - p_b
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    return {"gap": gap, "se": se, "within_noise": abs(gap) < noise_se * se if se > 0 else gap == 0,
            "noise_se": noise_se}


def best_of(estimates: dict, differences: dict, ours: str, lower_is_better: bool) -> dict:
    """Which model is best, only as far as the paired intervals of ``ours`` minus each other model show.

    Args:
        estimates: model -> point estimate.
        differences: other model -> ``(delta, low, high)`` of ``ours`` minus it.
    Returns:
        ``{"top": model with the best point estimate, "shown_best": ours if every interval
        excludes 0 in ``ours``'s favour else None, "ties_with_top": whether ``ours``'s interval
        against ``top`` holds 0}``.
    """
    pick = min if lower_is_better else max
    top = pick(estimates, key=estimates.get)
    better = "below" if lower_is_better else "above"
    sides = {k: against(low, high) for k, (_, low, high) in differences.items()}
    shown = ours if sides and all(s == better for s in sides.values()) else None
    return {"top": top, "shown_best": shown, "ties_with_top": top != ours and sides.get(top) == "tie"}
