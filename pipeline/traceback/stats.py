"""Target-vs-reference statistics with spatial units (blocks, sections, tiles) as samples.

Voxels of one block are not independent samples, so nothing here counts voxels: each unit
contributes one value, the p-value is a one-sided permutation test over unit labels
(exact when the labellings are few), and the interval is a bootstrap over units within each
group. Effect sizes are reported three ways because each fails somewhere: the difference
of means (always defined), the relative difference (undefined when the reference is ~0)
and a standardised difference (Cohen's d with the pooled unit standard deviation).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

PERMUTATIONS = 4000
BOOTSTRAP = 2000


def _perm_p(values: np.ndarray, n_target: int, sign: float, observed: float,
            rng: np.random.Generator) -> float:
    """P(sign * (mean_t - mean_r) >= sign * observed) under exchangeable labels."""
    n = len(values)
    total = values.sum()

    def diff(t_sum):
        return t_sum / n_target - (total - t_sum) / (n - n_target)

    if math.comb(n, n_target) <= PERMUTATIONS:
        sums = np.array([values[list(c)].sum()
                         for c in itertools.combinations(range(n), n_target)])
        d = diff(sums)
        return float(np.mean(sign * d >= sign * observed - 1e-12))
    idx = np.argsort(rng.random((PERMUTATIONS, n)), axis=1)[:, :n_target]
    d = diff(values[idx].sum(axis=1))
    return float((1 + np.sum(sign * d >= sign * observed - 1e-12)) / (PERMUTATIONS + 1))


def compare(target: np.ndarray, reference: np.ndarray, worse: str | None,
            seed: int = 0) -> dict:
    """Difference of the target's units from the reference's.

    ``worse`` = "lower" or "higher" makes the test one-sided in that direction; "either"
    and None (a descriptive metric) test both directions.
    """
    t = np.asarray(target, float)
    r = np.asarray(reference, float)
    t, r = t[np.isfinite(t)], r[np.isfinite(r)]
    out: dict = {"target": _summary(t), "reference": _summary(r), "difference": None,
                 "relative": None, "ci95": None, "effect_size": None, "p": None}
    if len(t) < 2 or len(r) < 2:
        return out
    rng = np.random.default_rng(seed)
    diff = float(t.mean() - r.mean())
    out["difference"] = diff
    scale = abs(float(r.mean()))
    out["relative"] = diff / scale if scale > 1e-9 else None
    pooled = math.sqrt(((len(t) - 1) * t.var(ddof=1) + (len(r) - 1) * r.var(ddof=1))
                       / (len(t) + len(r) - 2))
    out["effect_size"] = diff / pooled if pooled > 1e-12 else (
        0.0 if abs(diff) < 1e-12 else math.copysign(math.inf, diff))
    boot = (rng.choice(t, (BOOTSTRAP, len(t))).mean(axis=1)
            - rng.choice(r, (BOOTSTRAP, len(r))).mean(axis=1))
    out["ci95"] = [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]
    values = np.concatenate([t, r])
    if worse in ("lower", "higher"):
        out["p"] = _perm_p(values, len(t), -1.0 if worse == "lower" else 1.0, diff, rng)
    else:  # two-sided: twice the smaller tail
        lo = _perm_p(values, len(t), -1.0, diff, rng)
        hi = _perm_p(values, len(t), 1.0, diff, rng)
        out["p"] = min(1.0, 2 * min(lo, hi))
    return out


def _summary(v: np.ndarray) -> dict:
    return {"n": int(len(v)), "mean": float(v.mean()) if len(v) else None,
            "median": float(np.median(v)) if len(v) else None,
            "values": [round(float(x), 6) for x in v]}


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm-adjusted p-values (family-wise error over one layer's metrics)."""
    present = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    m = len(present)
    for k, (p, i) in enumerate(present):
        running = max(running, min(1.0, (m - k) * p))
        out[i] = running
    return out
