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


def _type_colors(
    cell_types: Sequence[str],
    palette: str | Sequence[str] | Mapping[str, str] | None,
) -> list[str]:
    """One color (hex) per cell type, from a mapping, a list, a colormap name or the defaults.

    The defaults are matplotlib's ``tab10``/``tab20`` and scanpy's 102-color palette beyond 20.
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
    if n <= 10:
        cmap = plt.get_cmap("tab10")
        return [mcolors.to_hex(cmap(i)) for i in range(n)]
    if n <= 20:
        cmap = plt.get_cmap("tab20")
        return [mcolors.to_hex(cmap(i)) for i in range(n)]
    from scanpy.plotting.palettes import default_102

    return [mcolors.to_hex(default_102[i % len(default_102)]) for i in range(n)]
