"""Accuracy metrics of predicted against true cell-type proportions."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Mapping

    from anndata import AnnData

logger = logging.getLogger(__name__)

__all__ = ["ccc", "evaluate", "map_labels", "pearson", "truth_from_obs"]


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two vectors.

    Pairs where either value is not finite are dropped first.

    Parameters
    ----------
    x
        First vector.
    y
        Second vector, same length as ``x``.

    Returns
    -------
    The correlation coefficient, or NaN when fewer than two finite pairs remain or when
    either vector is constant (the coefficient is undefined then).

    Examples
    --------
    >>> from hpvade.benchmark import pearson
    >>> round(pearson([0.1, 0.2, 0.3], [0.2, 0.4, 0.7]), 4)
    0.9934
    """
    x, y = _finite_pairs(x, y)
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    dx = x - x.mean()
    dy = y - y.mean()
    sxx = float(np.dot(dx, dx))
    syy = float(np.dot(dy, dy))
    if sxx <= 0.0 or syy <= 0.0:
        return float("nan")
    r = float(np.dot(dx, dy)) / np.sqrt(sxx * syy)
    return float(np.clip(r, -1.0, 1.0))


def ccc(x: np.ndarray, y: np.ndarray) -> float:
    """Lin's concordance correlation coefficient of two vectors.

    ``2 cov(x, y) / (var(x) + var(y) + (mean(x) - mean(y))^2)`` with population (ddof=0)
    moments, as defined by Lin (1989). Unlike Pearson's r it penalises shifts and
    scale differences, so it measures agreement rather than association. Pairs where
    either value is not finite are dropped first.

    Parameters
    ----------
    x
        First vector.
    y
        Second vector, same length as ``x``.

    Returns
    -------
    The coefficient, or NaN when fewer than two finite pairs remain or when both vectors
    are the same constant (0/0). Two different constants give 0.

    Examples
    --------
    >>> from hpvade.benchmark import ccc
    >>> ccc([0.1, 0.2, 0.3], [0.1, 0.2, 0.3])
    1.0
    """
    x, y = _finite_pairs(x, y)
    if x.size < 2:
        return float("nan")
    if np.ptp(x) == 0 and np.ptp(y) == 0:
        return float("nan") if x[0] == y[0] else 0.0
    mx, my = x.mean(), y.mean()
    vx = float(np.mean((x - mx) ** 2))
    vy = float(np.mean((y - my) ** 2))
    cov = float(np.mean((x - mx) * (y - my)))
    denom = vx + vy + float(mx - my) ** 2
    if denom <= 0.0:
        return float("nan")
    return float(2.0 * cov / denom)


def map_labels(pred: pd.DataFrame, mapping: Mapping[str, str]) -> pd.DataFrame:
    """Rename and merge predicted cell types into the truth's vocabulary.

    Columns of ``pred`` that map to the same name are summed (e.g. naive and memory CD4 T
    cells both to ``"CD4_T"``). Only the mapped columns are kept: a column of ``pred``
    that is not a key of ``mapping`` is dropped (list it as ``{"X": "X"}`` to keep it
    under its own name). Keys of ``mapping`` absent from ``pred`` are ignored, with a
    debug message.

    Parameters
    ----------
    pred
        Samples x cell types.
    mapping
        ``{predicted name: truth name}``.

    Returns
    -------
    Samples x mapped names, same index as ``pred``; the columns follow the order in which
    the names first appear among the values of ``mapping``.

    Examples
    --------
    >>> import pandas as pd
    >>> from hpvade.benchmark import map_labels
    >>> pred = pd.DataFrame({"Naive CD4 T": [0.2], "Memory CD4 T": [0.3], "B": [0.5]})
    >>> map_labels(pred, {"Naive CD4 T": "CD4_T", "Memory CD4 T": "CD4_T", "B": "B"})
       CD4_T    B
    0    0.5  0.5
    """
    if not isinstance(pred, pd.DataFrame):
        raise TypeError(f"`pred` must be a pandas DataFrame, got {type(pred).__name__}.")
    present = {k: v for k, v in mapping.items() if k in pred.columns}
    missing = [k for k in mapping if k not in pred.columns]
    if missing:
        logger.debug("map_labels: %d mapped names absent from pred: %s", len(missing), missing)
    targets = list(dict.fromkeys(mapping.values()))
    out = pd.DataFrame(index=pred.index)
    for t in targets:
        cols = [k for k, v in present.items() if v == t]
        if cols:
            out[t] = pred[cols].astype(float).sum(axis=1)
    if out.shape[1] == 0:
        raise ValueError(
            "None of the keys of `mapping` is a column of `pred`; "
            f"pred columns: {list(pred.columns)}, mapping keys: {list(mapping)}."
        )
    return out


def truth_from_obs(adata: AnnData, *, prefix: str = "true_") -> pd.DataFrame:
    """Collect true proportions stored as ``obs`` columns.

    Parameters
    ----------
    adata
        Bulk samples with truth columns such as ``obs["true_CD4_T"]``.
    prefix
        Prefix of the truth columns; it is stripped from the returned column names.

    Returns
    -------
    Samples (``obs_names``) x cell types, float.

    Examples
    --------
    >>> import anndata as ad, numpy as np, pandas as pd
    >>> from hpvade.benchmark import truth_from_obs
    >>> obs = pd.DataFrame({"true_B": [0.1, 0.3], "donor": ["a", "b"]}, index=["s1", "s2"])
    >>> truth_from_obs(ad.AnnData(np.zeros((2, 1)), obs=obs))
          B
    s1  0.1
    s2  0.3
    """
    cols = [c for c in adata.obs.columns if str(c).startswith(prefix)]
    if not cols:
        raise ValueError(
            f"No column of `adata.obs` starts with {prefix!r}; columns: {list(adata.obs.columns)}."
        )
    truth = adata.obs[cols].astype(float)
    truth.columns = [str(c)[len(prefix) :] for c in cols]
    truth.index = adata.obs_names.copy()
    return truth


def evaluate(
    pred: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    mapping: Mapping[str, str] | None = None,
    renormalize: bool = False,
) -> dict[str, Any]:
    """Compare predicted with true cell-type proportions.

    Samples are aligned by index (their intersection, in the order of ``pred``) and cell
    types by column name: metrics are computed on the types present in both, after
    ``mapping`` has been applied to ``pred`` (see :func:`map_labels`). Truth columns
    must carry the bare type names; use :func:`truth_from_obs` for ``obs["true_*"]``.
    Entries that are not finite (e.g. an unmeasured population in the truth) are left
    out pairwise.

    Parameters
    ----------
    pred
        Predicted proportions, samples x cell types.
    truth
        True proportions, samples x cell types.
    mapping
        Optional ``{predicted name: truth name}``; predicted types mapping to one name
        are summed and unmapped predicted types are dropped.
    renormalize
        If `True`, rescale each sample of both tables to sum to one over the shared
        types before scoring (useful when the truth covers only part of the sample).
        Off by default: proportions are scored as given.

    Returns
    -------
    A dict with

    - ``pearson_mean``: mean over types of the per-type Pearson r across samples (types
      with an undefined r, i.e. a constant column, are skipped; NaN if all are);
    - ``ccc_mean``: the same for Lin's CCC;
    - ``pearson_overall``, ``ccc_overall``: computed on all samples x types pooled
      (as TAPE reports them);
    - ``rmse``, ``mae``: over all samples x types;
    - ``per_type``: DataFrame types x [``pearson``, ``ccc``, ``rmse``, ``mae``];
    - ``n_samples``, ``types`` (list of the shared types).

    Examples
    --------
    >>> import pandas as pd
    >>> from hpvade.benchmark import evaluate
    >>> truth = pd.DataFrame({"A": [0.2, 0.5, 0.7], "B": [0.8, 0.5, 0.3]})
    >>> pred = pd.DataFrame({"A": [0.25, 0.45, 0.7], "B": [0.75, 0.55, 0.3]})
    >>> res = evaluate(pred, truth)
    >>> round(res["pearson_mean"], 3), round(res["mae"], 3)
    (0.984, 0.033)
    """
    pred, samples, types = _aligned(pred, truth, mapping)
    p = pred.loc[samples, types].to_numpy(dtype=float)
    t = truth.loc[samples, types].to_numpy(dtype=float)
    if renormalize:
        p = p / np.nansum(p, axis=1, keepdims=True)
        t = t / np.nansum(t, axis=1, keepdims=True)

    rows = []
    for j in range(len(types)):
        pj, tj = _finite_pairs(p[:, j], t[:, j])
        rows.append(
            {
                "pearson": pearson(pj, tj),
                "ccc": ccc(pj, tj),
                "rmse": float(np.sqrt(np.mean((pj - tj) ** 2))) if pj.size else np.nan,
                "mae": float(np.mean(np.abs(pj - tj))) if pj.size else np.nan,
            }
        )
    per_type = pd.DataFrame(rows, index=pd.Index(types, name="cell_type"))
    pf, tf = _finite_pairs(p.ravel(), t.ravel())
    return {
        "pearson_mean": _nanmean(per_type["pearson"].to_numpy()),
        "ccc_mean": _nanmean(per_type["ccc"].to_numpy()),
        "pearson_overall": pearson(pf, tf),
        "ccc_overall": ccc(pf, tf),
        "rmse": float(np.sqrt(np.mean((pf - tf) ** 2))) if pf.size else float("nan"),
        "mae": float(np.mean(np.abs(pf - tf))) if pf.size else float("nan"),
        "per_type": per_type,
        "n_samples": len(samples),
        "types": types,
    }


def _aligned(
    pred: pd.DataFrame, truth: pd.DataFrame, mapping: Mapping[str, str] | None
) -> tuple[pd.DataFrame, pd.Index, list]:
    """``pred`` mapped to the truth's names, and the samples and types the two share.

    Samples follow the order of ``pred``; a ValueError says what is wrong when the names
    are not unique or nothing is shared.
    """
    for name, df in (("pred", pred), ("truth", truth)):
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"`{name}` must be a pandas DataFrame, got {type(df).__name__}.")
    if mapping is not None:
        pred = map_labels(pred, mapping)
    samples = pred.index[pred.index.isin(truth.index)]
    if samples.has_duplicates or truth.index.has_duplicates:
        raise ValueError("Sample names (the index of `pred` and `truth`) must be unique.")
    if len(samples) == 0:
        raise ValueError(
            "`pred` and `truth` share no sample name (index); "
            f"pred starts with {list(pred.index[:3])}, truth with {list(truth.index[:3])}."
        )
    types = [c for c in pred.columns if c in truth.columns]
    if not types:
        raise ValueError(
            "`pred` and `truth` share no cell type (column)"
            + ("" if mapping is not None else "; pass `mapping` to rename predicted types")
            + f". pred columns: {list(pred.columns)}, truth columns: {list(truth.columns)}."
        )
    dropped = [c for c in truth.columns if c not in types]
    if dropped:
        logger.info("truth types without a prediction, not scored: %s", dropped)
    return pred, samples, types


def _finite_pairs(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"Vectors differ in length: {x.size} and {y.size}.")
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def _nanmean(a: np.ndarray) -> float:
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else float("nan")
