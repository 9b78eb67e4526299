"""The one helper shared by every plot of :mod:`hpvade.pl`.

Every public plot takes the keyword-only arguments ``ax``, ``show``, ``save`` and
``return_fig`` and ends with :func:`_finish`, so the four behave the same everywhere:

- ``ax``: draw into existing axes (a single :class:`~matplotlib.axes.Axes`, or a sequence
  of them for multi-panel plots) instead of a new figure;
- ``save``: a path; the figure is written there with ``bbox_inches="tight"``;
- ``return_fig``: return the :class:`~matplotlib.figure.Figure` and do not show it;
- ``show``: call :func:`matplotlib.pyplot.show`. ``None`` means "show unless
  ``return_fig`` is set or axes were passed in" (the caller is composing a bigger figure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib import colors as mcolors

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: default ``obsm`` key of the proportions (mirrors ``hpvade._constants.PROPORTIONS_KEY``)
PROPORTIONS_KEY = "hpvade_proportions"


def _setup_ax(
    ax: Axes | None, *, figsize: tuple[float, float] | None = None
) -> tuple[Figure, Axes]:
    """Return ``(figure, axes)``: the given axes and their figure, or a new single panel."""
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return fig, ax
    if isinstance(ax, np.ndarray | Sequence):
        raise TypeError("this plot draws a single panel: pass one matplotlib Axes as `ax`")
    return ax.get_figure(), ax


def _setup_axes(
    ax: Axes | Sequence[Axes] | None,
    n: int,
    *,
    ncols: int,
    panel_size: tuple[float, float],
) -> tuple[Figure, list[Axes]]:
    """Return ``(figure, axes)`` with ``n`` panels on a grid of ``ncols`` columns.

    Unused cells of a new grid are hidden. Passed-in axes must number at least ``n``.
    """
    if n < 1:
        raise ValueError("nothing to plot")
    if ax is not None:
        axes = list(np.ravel(np.asarray(ax, dtype=object)))
        if len(axes) < n:
            raise ValueError(f"this plot needs {n} panels but `ax` holds {len(axes)} Axes")
        return axes[0].get_figure(), axes[:n]
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, grid = plt.subplots(
        nrows,
        ncols,
        figsize=(panel_size[0] * ncols, panel_size[1] * nrows),
        layout="constrained",
        squeeze=False,
    )
    flat = list(grid.ravel())
    for extra in flat[n:]:
        extra.set_visible(False)
    return fig, flat[:n]


def _finish(
    fig: Figure,
    *,
    show: bool | None,
    save: str | None,
    return_fig: bool,
    ax_given: bool = False,
) -> Figure | None:
    """Save, show and/or return ``fig`` (see the module docstring for the rules)."""
    if save is not None:
        fig.savefig(save, bbox_inches="tight")
    if show is None:
        show = not return_fig and not ax_given
    if show:
        plt.show()
    return fig if return_fig else None


def _get_proportions(data: AnnData | pd.DataFrame, key: str) -> pd.DataFrame:
    """Proportions as a samples x cell types DataFrame (a copy: plots never write into data)."""
    if isinstance(data, pd.DataFrame):
        df = data
    elif isinstance(data, AnnData):
        if key not in data.obsm:
            raise KeyError(
                f"adata.obsm has no {key!r}; run `model.get_proportions(adata)` first or pass "
                f"`key=` (obsm keys: {list(data.obsm.keys())})"
            )
        value = data.obsm[key]
        if isinstance(value, pd.DataFrame):
            df = value
        else:
            arr = np.asarray(value)
            df = pd.DataFrame(
                arr,
                index=data.obs_names,
                columns=[f"type_{i}" for i in range(arr.shape[1])],
            )
    else:
        raise TypeError(
            f"expected an AnnData or a pandas DataFrame of proportions, got {type(data).__name__}"
        )
    df = df.copy()
    df.index = df.index.astype(str)
    df.columns = df.columns.astype(str)
    try:
        df = df.astype(float)
    except (TypeError, ValueError) as err:
        raise ValueError("proportions must be numeric") from err
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise ValueError(f"proportions are empty (shape {df.shape})")
    return df


def _default_colors(n: int) -> list[str]:
    """The default colors of scanpy for ``n`` categories of an ``obs`` column.

    matplotlib's color cycle when it has enough colors (``tab10`` by default), else scanpy's
    20, 28 or 102-color palettes, else grey; so that a categorical ``obs`` column plotted by
    scanpy and the same cell types plotted here get the same colors.
    """
    from matplotlib import rcParams
    from scanpy.plotting import palettes

    cycle = rcParams["axes.prop_cycle"].by_key().get("color", [])
    if len(cycle) >= n:
        palette = list(cycle)
    elif n <= 20:
        palette = list(palettes.default_20)
    elif n <= 28:
        palette = list(palettes.default_28)
    elif n <= len(palettes.default_102):
        palette = list(palettes.default_102)
    else:
        palette = ["grey"] * n
    return [mcolors.to_hex(c) for c in palette[:n]]


def _type_colors(
    cell_types: Sequence[str],
    palette: str | Sequence[str] | Mapping[str, str] | None,
) -> list[str]:
    """One color (hex) per cell type, from a mapping, a list, a colormap name or the defaults.

    The defaults are scanpy's (:func:`_default_colors`): ``tab10`` up to 10 types.
    """
    n = len(cell_types)
    if isinstance(palette, Mapping):
        missing = [c for c in cell_types if c not in palette]
        if missing:
            raise KeyError(f"`palette` has no color for {missing}")
        return [mcolors.to_hex(palette[c]) for c in cell_types]
    if isinstance(palette, str):
        cmap = plt.get_cmap(palette)
        if isinstance(cmap, mcolors.ListedColormap) and cmap.N <= 32:
            return [mcolors.to_hex(cmap(i % cmap.N)) for i in range(n)]
        return [mcolors.to_hex(cmap(x)) for x in np.linspace(0, 1, n)]
    if palette is not None:
        palette = list(palette)
        if len(palette) < n:
            raise ValueError(f"`palette` has {len(palette)} colors for {n} cell types")
        return [mcolors.to_hex(c) for c in palette[:n]]
    return _default_colors(n)


def _reference_colors(reference: AnnData, labels_key: str | None) -> dict[str, str]:
    """Cell type -> color as scanpy colors ``reference.obs[labels_key]``, without writing.

    scanpy keeps the colors of a categorical ``obs`` column in
    ``uns[f"{labels_key}_colors"]``, in the order of its categories, and fills it with its
    default palette the first time it plots the column. These are read when they are there
    (and cover every category); otherwise scanpy's defaults for the same categories are used,
    which are the colors :func:`scanpy.pl.umap` will pick.
    """
    if not isinstance(reference, AnnData):
        raise TypeError(f"`reference` must be an AnnData, got {type(reference).__name__}")
    if labels_key is None:
        raise ValueError(
            "`reference` needs `labels_key`: the obs column of the cell types "
            "(the one given to HPVADE.setup_anndata)"
        )
    if labels_key not in reference.obs.columns:
        raise KeyError(
            f"`labels_key`: {labels_key!r} is not a column of reference.obs "
            f"(columns: {list(reference.obs.columns)})"
        )
    column = reference.obs[labels_key]
    values = pd.Categorical(column.astype(str) if column.dtype == bool else column)
    categories = [str(c) for c in values.categories]
    stored = reference.uns.get(f"{labels_key}_colors")
    if stored is not None and len(stored) >= len(categories):
        colors = [mcolors.to_hex(c) for c in list(stored)[: len(categories)]]
    else:
        colors = _default_colors(len(categories))
    return dict(zip(categories, colors, strict=True))


def _resolve_colors(
    cell_types: Sequence[str],
    palette: str | Sequence[str] | Mapping[str, str] | None,
    reference: AnnData | None,
    labels_key: str | None,
) -> dict[str, str]:
    """Cell type -> color: ``palette`` if given, else the reference's colors, else defaults.

    Cell types the reference does not hold (e.g. an unknown component) get colors of
    scanpy's 102-color palette that no other type uses.
    """
    cell_types = [str(c) for c in cell_types]
    if palette is not None or reference is None:
        return dict(zip(cell_types, _type_colors(cell_types, palette), strict=True))
    known = _reference_colors(reference, labels_key)
    colors = {c: known[c] for c in cell_types if c in known}
    if len(colors) < len(cell_types):
        from scanpy.plotting.palettes import default_102

        spare = (h for h in map(mcolors.to_hex, default_102) if h not in set(known.values()))
        for c in cell_types:
            if c not in colors:
                colors[c] = next(spare, "#808080")
    return {c: colors[c] for c in cell_types}


#: suffixes of the ``obsm`` keys of the lower and upper ends of the intervals
#: (``get_proportions(..., quantiles=(0.05, 0.95))``)
LOWER_SUFFIX, UPPER_SUFFIX = "_q05", "_q95"


def _get_intervals(
    data: AnnData | pd.DataFrame,
    key: str,
    props: pd.DataFrame,
    intervals: bool | None,
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Lower and upper ends aligned on ``props``, or None when none is to be drawn.

    They are ``obsm[key + "_q05"]`` and ``obsm[key + "_q95"]``, of the same samples and cell
    types as ``obsm[key]``. ``intervals=None`` draws them when both are there, ``True``
    requires them, ``False`` never draws them.
    """
    if intervals is False:
        return None
    lower_key, upper_key = key + LOWER_SUFFIX, key + UPPER_SUFFIX
    present = isinstance(data, AnnData) and lower_key in data.obsm and upper_key in data.obsm
    if not present:
        if intervals:
            raise KeyError(
                f"`intervals=True` needs adata.obsm[{lower_key!r}] and adata.obsm[{upper_key!r}]"
                " (get_proportions(..., quantiles=(0.05, 0.95)) writes them)"
            )
        return None
    ends = []
    for end_key in (lower_key, upper_key):
        end = _get_proportions(data, end_key)
        missing_rows = props.index.difference(end.index)
        missing_cols = props.columns.difference(end.columns)
        if len(missing_rows) or len(missing_cols):
            raise ValueError(
                f"adata.obsm[{end_key!r}] does not match adata.obsm[{key!r}]: it lacks "
                f"samples {list(missing_rows[:3])} and cell types {list(missing_cols[:3])}"
            )
        ends.append(end.loc[props.index, props.columns])
    lower, upper = ends
    tol = 1e-6
    if bool((lower > props + tol).to_numpy().any() or (upper < props - tol).to_numpy().any()):
        raise ValueError(
            f"the intervals in adata.obsm[{lower_key!r}] / [{upper_key!r}] do not hold the "
            f"proportions of adata.obsm[{key!r}] (lower <= proportion <= upper)"
        )
    # rounding below tol: the whiskers never have a negative length
    return lower.where(lower <= props, props), upper.where(upper >= props, props)
