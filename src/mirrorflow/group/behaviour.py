"""The behavioural correlation between EQ and imitation accuracy."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["correlate"]


def correlate(table: pd.DataFrame, *, x: str, y: str, n_boot: int = 5000, seed: int = 0) -> dict:
    """Pearson and Spearman correlation of two columns with a percentile bootstrap 95% CI
    of Pearson's r (participants resampled with replacement)."""
    values = table[[x, y]].to_numpy(float)
    n = len(values)
    if n < 4:
        raise ValueError(f"a correlation needs at least 4 participants, got {n}")
    pearson = stats.pearsonr(values[:, 0], values[:, 1])
    spearman = stats.spearmanr(values[:, 0], values[:, 1])
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_boot, n))
    boot = np.array([np.corrcoef(values[d, 0], values[d, 1])[0, 1] for d in draws])
    low, high = np.nanpercentile(boot, [2.5, 97.5])
    return {
        "x": x,
        "y": y,
        "n": n,
        "pearson_r": float(pearson.statistic),
        "pearson_p": float(pearson.pvalue),
        "spearman_rho": float(spearman.statistic),
        "spearman_p": float(spearman.pvalue),
        "pearson_r_ci95": [float(low), float(high)],
        "bootstrap_samples": n_boot,
        "seed": seed,
    }
