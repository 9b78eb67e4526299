"""The paired bootstrap of the accuracy metrics of :func:`evaluate`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._metrics import _aligned

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["bootstrap"]


def bootstrap(
    pred: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    mapping: Mapping[str, str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """The metrics of :func:`evaluate` on samples drawn with replacement (a bootstrap).

    Each of ``n_boot`` resamples draws as many samples as ``pred`` and ``truth`` share, with
    replacement, and scores them as :func:`evaluate` does. Percentiles of a column give an
    interval for the metric; on a handful of bulks they are wide. The samples are drawn from
    the shared samples in the order of ``truth``, so two calls with the same ``truth`` and
    ``seed`` draw the same resamples: comparing two methods row by row is a paired comparison.

    Parameters
    ----------
    pred
        Predicted proportions, samples x cell types.
    truth
        True proportions, samples x cell types.
    mapping
        Optional ``{predicted name: truth name}``, as in :func:`evaluate`.
    n_boot
        Number of resamples.
    seed
        Seed of the resampling.

    Returns
    -------
    One row per resample, columns ``pearson_mean``, ``ccc_overall`` and ``mae`` (NaN where
    a resample leaves the metric undefined, e.g. every sample the same).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from hpvade.benchmark import bootstrap
    >>> rng = np.random.default_rng(0)
    >>> truth = pd.DataFrame(rng.dirichlet(np.ones(3), size=20), columns=list("ABC"))
    >>> pred = truth + rng.normal(0, 0.02, size=truth.shape)
    >>> boot = bootstrap(pred, truth, n_boot=200)
    >>> boot.shape
    (200, 3)
    >>> lo, hi = boot["pearson_mean"].quantile([0.025, 0.975])
    >>> bool(0.9 < lo < hi <= 1.0)
    True
    """
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be a positive number of resamples, got {n_boot!r}.")
    pred, shared, types = _aligned(pred, truth, mapping)
    samples = truth.index[truth.index.isin(shared)]  # truth's order: the same resamples
    p = pred.loc[samples, types].to_numpy(dtype=float)
    t = truth.loc[samples, types].to_numpy(dtype=float)
    idx = np.random.default_rng(seed).integers(0, len(samples), size=(int(n_boot), len(samples)))
    return pd.DataFrame(
        _resampled_metrics(p, t, idx), columns=["pearson_mean", "ccc_overall", "mae"]
    )


def _resampled_metrics(p: np.ndarray, t: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``evaluate``'s mean per-type r, overall CCC and MAE for each row of sample indices.

    ``p`` and ``t`` are samples x types; ``idx`` is resamples x draws. Pairs that are not
    finite are left out, constant vectors give no r, as in :func:`pearson` and :func:`ccc`.
    """
    ok = np.isfinite(p) & np.isfinite(t)
    w = ok[idx].astype(float)  # resamples x draws x types
    pb = np.where(ok, p, 0.0)[idx]
    tb = np.where(ok, t, 0.0)[idx]

    def ptp(x: np.ndarray, axis) -> np.ndarray:
        hi = np.where(w > 0, x, -np.inf).max(axis=axis)
        lo = np.where(w > 0, x, np.inf).min(axis=axis)
        return hi - lo

    with np.errstate(invalid="ignore", divide="ignore"):
        # per type, over the draws
        n = w.sum(axis=1)
        dp = (pb - (w * pb).sum(axis=1, keepdims=True) / n[:, None]) * w
        dt = (tb - (w * tb).sum(axis=1, keepdims=True) / n[:, None]) * w
        den = np.sqrt((dp**2).sum(axis=1) * (dt**2).sum(axis=1))
        defined = (n >= 2) & (ptp(pb, 1) > 0) & (ptp(tb, 1) > 0) & (den > 0)
        r = np.where(defined, np.clip((dp * dt).sum(axis=1) / den, -1.0, 1.0), np.nan)
        counted = np.isfinite(r).sum(axis=1)
        r_mean = np.where(counted > 0, np.nansum(r, axis=1) / counted, np.nan)
        # pooled over draws and types
        wf = w.reshape(len(idx), -1)
        x, y = pb.reshape(len(idx), -1), tb.reshape(len(idx), -1)
        nf = wf.sum(axis=1)
        mx, my = (wf * x).sum(axis=1) / nf, (wf * y).sum(axis=1) / nf
        vx = (wf * (x - mx[:, None]) ** 2).sum(axis=1) / nf
        vy = (wf * (y - my[:, None]) ** 2).sum(axis=1) / nf
        cov = (wf * (x - mx[:, None]) * (y - my[:, None])).sum(axis=1) / nf
        denom = vx + vy + (mx - my) ** 2
        both_const = (ptp(pb, (1, 2)) == 0) & (ptp(tb, (1, 2)) == 0)
        c = np.where(denom > 0, 2.0 * cov / denom, np.nan)
        c = np.where(both_const, np.where(mx == my, np.nan, 0.0), c)
        c = np.where(nf >= 2, c, np.nan)
        mae = (wf * np.abs(x - y)).sum(axis=1) / nf
    return np.column_stack([r_mean, c, mae])
