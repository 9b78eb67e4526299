from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from anndata import AnnData

from ._utils import (
    PROPORTIONS_KEY,
    _finish,
    _get_intervals,
    _get_proportions,
    _resolve_colors,
    _setup_axes,
)

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
    ncols: int = 3,
    panel_size: tuple[float, float] = (2.8, 2.8),
    color: str | None = None,
    palette: str | Sequence[str] | Mapping[str, str] | None = None,
    reference: AnnData | None = None,
    labels_key: str | None = None,
    intervals: bool | None = None,
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    save: str | None = None,
    return_fig: bool = False,
) -> Figure | None:
    """Predicted against true proportions, one scatter panel per cell type.

    Each panel shows one point per sample, the identity line, and the Pearson
    correlation ``r`` and Lin's concordance correlation coefficient ``CCC``
    :cite:p:`Lin1989` of that cell type (with the number of samples ``n``), written under
    the panel's title, where they hide no point. ``CCC`` is 1 only when the points lie on
    the identity line; ``r`` ignores scale and offset.
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
        One color for the points of every per-type panel. Default: each cell type's color
        (see ``palette``).
    palette
        Colors of the cell types (truth names): a mapping cell type -> color, a list of
        colors or a matplotlib colormap name. Default: the colors of ``reference`` if given,
        else scanpy's defaults (``tab10`` up to 10 types).
    reference
        The single-cell reference, to color each cell type as scanpy colors it in
        ``reference.obs[labels_key]`` (``reference.uns[f"{labels_key}_colors"]``); types of
        the truth that the reference does not name get other colors. Nothing is written
        into it.
    labels_key
        Column of ``reference.obs`` with the cell types. Needed with ``reference``.
    intervals
        Draw each prediction's interval as a vertical whisker, from
        ``adata.obsm[key + "_q05"]`` to ``adata.obsm[key + "_q95"]`` (written by
        ``get_proportions(..., quantiles=(0.05, 0.95))``). Default: when both keys are
        there. ``True`` requires them. A truth type that sums several predicted types
        (``mapping``) gets no whiskers: the interval of a sum is not the sum of intervals.
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
    ends = _get_intervals(adata, key, pred, intervals)
    # truth name -> the predicted types summed into it
    sources: dict[str, list[str]] = {}
    for c in pred.columns:
        sources.setdefault(str(mapping.get(c, c)) if mapping else c, []).append(c)
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
    colors = _resolve_colors(cell_types, palette, reference, labels_key)

    def whiskers(cell_type: str) -> tuple[np.ndarray, np.ndarray] | None:
        if ends is None or len(sources.get(cell_type, [])) != 1:
            return None
        (source,) = sources[cell_type]
        return tuple(end.loc[samples, source].to_numpy() for end in ends)

    for axis, cell_type in zip(axes, cell_types, strict=False):
        _panel(
            axis,
            true[cell_type].to_numpy(),
            pred[cell_type].to_numpy(),
            color=color or colors[cell_type],
            ends=whiskers(cell_type),
        )
        axis.set_title(cell_type, pad=_TITLE_PAD)
    if overall:
        axis = axes[-1]
        for cell_type in cell_types:
            x, y = true[cell_type].to_numpy(), pred[cell_type].to_numpy()
            axis.scatter(x, y, s=14, color=colors[cell_type], label=cell_type, edgecolors="none")
            _errorbars(axis, x, y, whiskers(cell_type), color=colors[cell_type])
        all_ends = [whiskers(c) for c in cell_types]
        upper = [e[1] for e in all_ends if e is not None]
        _panel(
            axis,
            true.to_numpy().ravel(),
            pred.to_numpy().ravel(),
            color=None,
            highest=max((float(np.nanmax(u, initial=0.0)) for u in upper), default=0.0),
        )
        axis.set_title("all cell types", pad=_TITLE_PAD)
        # under the panel, where it hides no point and widens no column of the grid
        axis.legend(
            fontsize="x-small",
            frameon=False,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.3),
            ncols=min(len(cell_types), 3),
            markerscale=0.8,
            borderaxespad=0.0,
            handletextpad=0.2,
            columnspacing=0.8,
        )
    return _finish(fig, show=show, save=save, return_fig=return_fig, ax_given=ax is not None)


#: points between a panel's title and its top edge, room for the line of r / CCC / n
_TITLE_PAD = 16.0


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


def _errorbars(
    ax: Axes,
    x: np.ndarray,
    y: np.ndarray,
    ends: tuple[np.ndarray, np.ndarray] | None,
    *,
    color: str,
) -> None:
    """Vertical whiskers from the lower to the upper end of each prediction."""
    if ends is None:
        return
    lower, upper = ends
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(lower) & np.isfinite(upper)
    if not ok.any():
        return
    ax.errorbar(
        x[ok],
        y[ok],
        yerr=np.vstack([y[ok] - lower[ok], upper[ok] - y[ok]]),
        fmt="none",
        ecolor=color,
        elinewidth=1.0,
        alpha=0.6,
        capsize=0,
        zorder=1,
    )


def _panel(
    ax: Axes,
    x: np.ndarray,
    y: np.ndarray,
    *,
    color: str | None,
    ends: tuple[np.ndarray, np.ndarray] | None = None,
    highest: float = 0.0,
) -> None:
    """Scatter (unless ``color`` is None: already drawn), whiskers, identity line, r/CCC.

    The metrics go on one line between the title and the axes, so they never hide a point.
    """
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if ends is not None:
        ends = (ends[0][ok], ends[1][ok])
        highest = max(highest, float(np.nanmax(ends[1], initial=0.0)))
    if color is not None:
        ax.scatter(x, y, s=16, color=color, edgecolors="none", zorder=2)
        _errorbars(ax, x, y, ends, color=color)
    hi = float(max(np.max(x, initial=0.0), np.max(y, initial=0.0), highest))
    hi = hi * 1.05 if hi > 0 else 1.0
    lo = -0.03 * hi  # points at 0 stay whole
    ax.plot([lo, hi], [lo, hi], color="0.6", linestyle="--", linewidth=1, zorder=0)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("true proportion")
    ax.set_ylabel("predicted proportion")
    ax.text(
        0.5,
        1.02,
        f"r = {_pearson(x, y):.2f}   CCC = {_ccc(x, y):.2f}   n = {x.size}",
        transform=ax.transAxes,
        ha="center",
        va="bottom",
        fontsize="small",
    )
