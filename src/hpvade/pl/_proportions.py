from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from anndata import AnnData

from ._draw import _bars, _heatmap
from ._utils import (
    PROPORTIONS_KEY,
    _finish,
    _get_intervals,
    _get_proportions,
    _resolve_colors,
    _setup_ax,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_MISSING_GROUP = "NA"


def proportions(
    adata: AnnData | pd.DataFrame,
    *,
    key: str = PROPORTIONS_KEY,
    kind: Literal["bar", "heatmap"] = "bar",
    groupby: str | None = None,
    sort_by: str | None = None,
    cell_types: Sequence[str] | None = None,
    palette: str | Sequence[str] | Mapping[str, str] | None = None,
    reference: AnnData | None = None,
    labels_key: str | None = None,
    intervals: bool | None = None,
    cmap: str = "viridis",
    annotate: bool | None = None,
    sample_labels: bool | None = None,
    legend: bool = True,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | None = None,
    return_fig: bool = False,
) -> Figure | None:
    """Cell-type proportions of every sample, as stacked bars or as a heatmap.

    One function draws both views; ``kind`` picks the view. Samples keep their order in
    ``adata`` unless ``groupby`` and/or ``sort_by`` reorder them. Nothing is written into
    ``adata``.

    Parameters
    ----------
    adata
        Bulk samples with the proportions in ``adata.obsm[key]`` (a DataFrame, samples x
        cell types, as written by :meth:`hpvade.HPVADE.get_proportions`), or that
        DataFrame itself.
    key
        Key of the proportions in ``adata.obsm``.
    kind
        ``"bar"``: one stacked bar per sample, one segment per cell type.
        ``"heatmap"``: samples as rows, cell types as columns, color = proportion.
    groupby
        Column of ``adata.obs`` (e.g. a condition). Samples are gathered by group, in the
        order of the categories, and each group is labelled (above the bars, or right of
        the heatmap rows).
    sort_by
        Order of the samples (within each group when ``groupby`` is set): a cell type
        (samples by decreasing proportion of that type, which is also moved to the bottom
        of the stack and the first column of the heatmap unless ``cell_types`` is given)
        or a column of ``adata.obs`` (increasing values).
    cell_types
        Cell types to show, in this order (stacking order and legend). Default: all, in
        the order of the columns.
    palette
        Colors of the cell types for ``kind="bar"``: a mapping cell type -> color, a list
        of colors or a matplotlib colormap name. Default: the colors of ``reference`` if
        given, else scanpy's defaults (``tab10`` up to 10 types).
    reference
        The single-cell reference, to color each cell type as scanpy colors it in
        ``reference.obs[labels_key]`` (``reference.uns[f"{labels_key}_colors"]``, or scanpy's
        default palette for its categories when that is not set yet), so that the bars and
        :func:`scanpy.pl.umap` of the reference share one color per cell type. Nothing is
        written into it.
    labels_key
        Column of ``reference.obs`` with the cell types (the ``labels_key`` given to
        :meth:`hpvade.HPVADE.setup_anndata`). Needed with ``reference``.
    intervals
        Draw the interval of each proportion as a whisker at the top of its segment
        (``kind="bar"``), from ``adata.obsm[key + "_q05"]`` to ``adata.obsm[key + "_q95"]``
        (written by ``get_proportions(..., quantiles=(0.05, 0.95))``). Default: when both
        keys are there. ``True`` requires them.
    cmap
        Colormap of ``kind="heatmap"``.
    annotate
        Write the values in the heatmap cells. Default: when there are at most 150 cells.
    sample_labels
        Write the sample names on the sample axis. Default: when there are at most 60
        samples.
    legend
        Draw the legend of cell types (``kind="bar"``).
    title
        Title of the axes.
    figsize
        Size of a new figure (inches); ignored when ``ax`` is given. Default: grows with
        the number of samples.
    ax
        Axes to draw into. Default: a new figure.
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
    >>> import hpvade
    >>> hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")  # doctest: +SKIP
    >>> model = hpvade.HPVADE(ref)  # doctest: +SKIP
    >>> model.train(bulk=bulk, max_epochs=50)  # doctest: +SKIP
    >>> model.get_proportions(bulk)  # doctest: +SKIP
    >>> hpvade.pl.proportions(bulk, groupby="condition", sort_by="B cells")  # doctest: +SKIP
    >>> hpvade.pl.proportions(bulk, kind="heatmap")  # doctest: +SKIP

    The colors of the reference's UMAP (``sc.pl.umap(ref, color="cell_type")``):

    >>> hpvade.pl.proportions(bulk, reference=ref, labels_key="cell_type")  # doctest: +SKIP
    """
    props = _get_proportions(adata, key)
    # colors follow the cell types, whatever the stacking order or subset
    all_types = list(props.columns)
    if isinstance(palette, Mapping):
        shown = list(cell_types) if cell_types is not None else all_types
        colors = _resolve_colors(shown, palette, None, None)
    else:
        colors = _resolve_colors(all_types, palette, reference, labels_key)
    if kind == "heatmap" and intervals:
        raise ValueError("`intervals=True` needs kind='bar' (a heatmap shows no intervals)")
    if cell_types is not None:
        missing = [c for c in cell_types if c not in props.columns]
        if missing:
            raise KeyError(f"cell types {missing} not in the proportions {list(props.columns)}")
        props = props.loc[:, list(cell_types)]
    elif sort_by is not None and sort_by in props.columns:
        # the sorting type at the bottom of the stack, where its ordering is visible
        props = props.loc[:, [sort_by, *(c for c in props.columns if c != sort_by)]]
    obs = adata.obs if isinstance(adata, AnnData) else None
    order, groups = _sample_order(props, obs, groupby=groupby, sort_by=sort_by)
    props = props.loc[order]
    ends = _get_intervals(adata, key, props, intervals) if kind == "bar" else None

    if kind == "bar":
        n, c = props.shape
        legend_cols = int(np.ceil(c / 18)) if legend else 0
        default_size = (
            min(14.0, max(4.0, 0.22 * n + 1.5)) + 1.5 * legend_cols,
            max(4.0, 0.2 * np.ceil(c / max(legend_cols, 1)) + 1.0),
        )
        fig, ax_ = _setup_ax(ax, figsize=figsize or default_size)
        _bars(
            ax_,
            props,
            groups,
            colors=colors,
            legend=legend,
            sample_labels=sample_labels,
            ends=ends,
        )
    elif kind == "heatmap":
        fig, ax_ = _setup_ax(
            ax,
            figsize=figsize
            or (max(4.0, 0.55 * props.shape[1] + 3.0), max(2.5, 0.24 * props.shape[0] + 1.5)),
        )
        _heatmap(ax_, props, groups, cmap=cmap, annotate=annotate, sample_labels=sample_labels)
    else:
        raise ValueError(f"`kind` must be 'bar' or 'heatmap', got {kind!r}")
    if title is not None:
        ax_.set_title(title)
    return _finish(fig, show=show, save=save, return_fig=return_fig, ax_given=ax is not None)


def _sample_order(
    props: pd.DataFrame,
    obs: pd.DataFrame | None,
    *,
    groupby: str | None,
    sort_by: str | None,
) -> tuple[list[str], pd.Series | None]:
    """Return the sample order and, with ``groupby``, the group of each sample in that order."""
    frame = pd.DataFrame(index=props.index)
    sort_cols: list[str] = []
    ascending: list[bool] = []
    groups = None
    if groupby is not None:
        if obs is None:
            raise ValueError("`groupby` needs an AnnData (a column of adata.obs)")
        if groupby not in obs.columns:
            raise KeyError(f"`groupby`: {groupby!r} is not a column of adata.obs")
        col = obs[groupby]
        cats = (
            list(col.cat.categories)
            if isinstance(col.dtype, pd.CategoricalDtype)
            else sorted(col.dropna().unique(), key=str)
        )
        codes = {c: i for i, c in enumerate(cats)}
        values = col.to_numpy()
        frame["_group_code"] = [
            codes.get(v, len(cats)) if not pd.isna(v) else len(cats) for v in values
        ]
        frame["_group"] = [_MISSING_GROUP if pd.isna(v) else str(v) for v in values]
        sort_cols.append("_group_code")
        ascending.append(True)
    if sort_by is not None:
        if sort_by in props.columns:
            frame["_sort"] = props[sort_by].to_numpy()
            ascending.append(False)
        elif obs is not None and sort_by in obs.columns:
            frame["_sort"] = obs[sort_by].to_numpy()
            ascending.append(True)
        else:
            where = "a cell type or a column of adata.obs" if obs is not None else "a cell type"
            raise KeyError(f"`sort_by`: {sort_by!r} is not {where}")
        sort_cols.append("_sort")
    if sort_cols:
        frame = frame.sort_values(sort_cols, ascending=ascending, kind="stable")
    if groupby is not None:
        groups = frame["_group"]
    return list(frame.index), groups
