from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from anndata import AnnData

from ._utils import PROPORTIONS_KEY, _finish, _get_proportions, _setup_axes, _type_colors

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def predicted_vs_true(
    adata: AnnData | pd.DataFrame,
    truth: pd.DataFrame | str | None = None,
    *,
    key: str = PROPORTIONS_KEY,
    truth_prefix: str = "true_",
    mapping: Mapping[str, str] | None = None,
    cell_types: Sequence[str] | None = None,
    overall: bool = False,
    ncols: int = 4,
    panel_size: tuple[float, float] = (3.0, 3.0),
    color: str | None = None,
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    save: str | None = None,
    return_fig: bool = False,
) -> Figure | None:
    """Predicted against true proportions, one scatter panel per cell type.

    Each panel shows one point per sample, the identity line, and the Pearson
    correlation ``r`` and Lin's concordance correlation coefficient ``CCC``
    :cite:p:`Lin1989` of that cell type (with the number of samples ``n``). ``CCC`` is
    1 only when the points lie on the identity line; ``r`` ignores scale and offset.
    Samples are matched by name; cell types by name after ``mapping``. Nothing is written
    into ``adata``.

    Parameters
    ----------
    adata
        Samples with predicted proportions in ``adata.obsm[key]``, or the predicted
        proportions themselves (DataFrame, samples x cell types).
    truth
        True proportions: a DataFrame (samples x cell types), or the key of a DataFrame
        in ``adata.obsm``. Default: the columns of ``adata.obs`` whose names start with
        ``truth_prefix`` (``"true_B cells"`` is the truth of ``"B cells"``).
    key
        Key of the predicted proportions in ``adata.obsm``.
    truth_prefix
        Prefix of the truth columns in ``adata.obs`` when ``truth`` is ``None``.
    mapping
        Predicted cell type -> truth cell type, to compare at the resolution of the truth
        (e.g. ``{"CD4 T": "T cells", "CD8 T": "T cells"}``). Predicted types mapped to the
        same name are summed; types absent from ``mapping`` keep their name.
    cell_types
        Cell types (truth names) to plot, in this order. Default: every type present in
        both, in the order of the truth.
    overall
        Add a last panel pooling every cell type (points colored by type), with ``r`` and
        ``CCC`` over all pairs.
    ncols
        Number of panel columns.
    panel_size
        Size of one panel (inches).
    color
        Color of the points of the per-type panels. Default: matplotlib's first color.
    ax
        Axes to draw into, at least one per panel (e.g. the array from
        :func:`matplotlib.pyplot.subplots`). Default: a new figure.
    show
        Show the figure with :func:`matplotlib.pyplot.show`. Default: unless
        ``return_fig`` is set or ``ax`` is given.
    save
        Path to save the figure to (format from the extension).
    return_fig
        Return the figure instead of showing it.

    Returns
    -------
    matplotlib.figure.Figure | None
        The figure if ``return_fig``, else ``None``.

    Examples
    --------
    Truth in ``bulk.obs["true_<cell type>"]`` columns:

    >>> import hpvade
    >>> model.get_proportions(bulk)  # doctest: +SKIP
    >>> hpvade.pl.predicted_vs_true(bulk)  # doctest: +SKIP

    Truth in a separate DataFrame, at a coarser resolution than the reference:

    >>> hpvade.pl.predicted_vs_true(  # doctest: +SKIP
    ...     bulk, flow_fractions, mapping={"CD4 T": "T cells", "CD8 T": "T cells"}
    ... )
    """
    pred = _get_proportions(adata, key)
    true = _get_truth(adata, truth, truth_prefix=truth_prefix)
    if mapping is not None:
        names = [str(mapping.get(c, c)) for c in pred.columns]
        pred = pred.T.groupby(names, sort=False).sum(min_count=1).T

    samples = pred.index.intersection(true.index, sort=False)
    if len(samples) == 0:
        raise ValueError(
            "no sample is shared by the predictions and the truth (matched by name); "
            f"predicted: {list(pred.index[:3])}..., truth: {list(true.index[:3])}..."
        )
    n_dropped = len(pred.index) - len(samples)
    if n_dropped:
        warnings.warn(
            f"{n_dropped} predicted sample(s) have no truth and are not shown",
            UserWarning,
            stacklevel=2,
        )
    if cell_types is None:
        cell_types = [c for c in true.columns if c in pred.columns]
        if not cell_types:
            raise ValueError(
                "no cell type is shared by the predictions and the truth; pass `mapping=` "
                f"(predicted: {list(pred.columns)}, truth: {list(true.columns)})"
            )
    else:
        cell_types = list(cell_types)
        missing = [c for c in cell_types if c not in pred.columns or c not in true.columns]
        if missing:
            raise KeyError(f"cell types {missing} are not in both predictions and truth")

    pred = pred.loc[samples, cell_types]
    true = true.loc[samples, cell_types]
    n_panels = len(cell_types) + int(overall)
    fig, axes = _setup_axes(ax, n_panels, ncols=ncols, panel_size=panel_size)
    color = color or "C0"
    for axis, cell_type in zip(axes, cell_types, strict=False):
        _panel(axis, true[cell_type].to_numpy(), pred[cell_type].to_numpy(), color=color)
        axis.set_title(cell_type)
    if overall:
        axis = axes[-1]
        colors = _type_colors(cell_types, None)
        for cell_type, c in zip(cell_types, colors, strict=True):
            axis.scatter(true[cell_type], pred[cell_type], s=14, color=c, label=cell_type)
        _panel(axis, true.to_numpy().ravel(), pred.to_numpy().ravel(), color=None)
        axis.set_title("all cell types")
        axis.legend(fontsize="x-small", frameon=False, loc="lower right", markerscale=0.8)
    return _finish(fig, show=show, save=save, return_fig=return_fig, ax_given=ax is not None)


def _get_truth(
    adata: AnnData | pd.DataFrame, truth: pd.DataFrame | str | None, *, truth_prefix: str
) -> pd.DataFrame:
    if isinstance(truth, pd.DataFrame):
        df = truth
    elif isinstance(truth, str):
        if not isinstance(adata, AnnData) or truth not in adata.obsm:
            raise KeyError(f"`truth`: {truth!r} is not a key of adata.obsm")
        return _get_proportions(adata, truth)
    elif truth is None:
        if not isinstance(adata, AnnData):
            raise ValueError("pass `truth=` (a DataFrame) when the predictions are a DataFrame")
        cols = [c for c in adata.obs.columns if str(c).startswith(truth_prefix)]
        if not cols:
            raise KeyError(
                f"adata.obs has no column starting with {truth_prefix!r}; pass `truth=` "
                "or `truth_prefix=`"
            )
        df = adata.obs[cols]
        df.columns = [str(c)[len(truth_prefix) :] for c in cols]
    else:
        raise TypeError(f"`truth` must be a DataFrame, an obsm key or None, got {type(truth)}")
    return _get_proportions(df, "")


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; NaN when fewer than 2 points or either side is constant."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size < 2:
        return float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    denom = np.sqrt(np.sum(dx * dx) * np.sum(dy * dy))
    if denom == 0:
        return float("nan")
    return float(np.sum(dx * dy) / denom)


def _ccc(x: np.ndarray, y: np.ndarray) -> float:
    """Lin's concordance correlation coefficient (population moments); NaN if undefined."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size < 2:
        return float("nan")
    mx, my = x.mean(), y.mean()
    cov = np.mean((x - mx) * (y - my))
    denom = x.var() + y.var() + (mx - my) ** 2
    if denom == 0:
        return float("nan")
    return float(2 * cov / denom)


def _panel(ax: Axes, x: np.ndarray, y: np.ndarray, *, color: str | None) -> None:
    """Scatter (unless ``color`` is None: already drawn), identity line, r/CCC text."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if color is not None:
        ax.scatter(x, y, s=16, color=color, edgecolors="none")
    hi = float(max(np.max(x, initial=0.0), np.max(y, initial=0.0)))
    hi = hi * 1.05 if hi > 0 else 1.0
    lo = -0.03 * hi  # points at 0 stay whole
    ax.plot([lo, hi], [lo, hi], color="0.6", linestyle="--", linewidth=1, zorder=0)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("true proportion")
    ax.set_ylabel("predicted proportion")
    ax.text(
        0.04,
        0.96,
        f"r = {_pearson(x, y):.2f}\nCCC = {_ccc(x, y):.2f}\nn = {x.size}",
        transform=ax.transAxes,
        ha="left",
        va="top",
        fontsize="small",
        bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.7, "lw": 0},
    )
