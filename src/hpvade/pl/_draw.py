"""Drawing helpers of :func:`hpvade.pl.proportions`: stacked bars, whiskers and heatmap."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib import transforms

from ._utils import LOWER_SUFFIX, UPPER_SUFFIX

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pandas as pd
    from matplotlib.axes import Axes


def _group_spans(groups: pd.Series) -> list[tuple[str, int, int]]:
    """Return the runs of equal consecutive groups as ``(name, first, last)`` positions."""
    spans: list[tuple[str, int, int]] = []
    for i, g in enumerate(groups.to_numpy()):
        if spans and spans[-1][0] == g:
            spans[-1] = (g, spans[-1][1], i)
        else:
            spans.append((g, i, i))
    return spans


def _bars(
    ax: Axes,
    props: pd.DataFrame,
    groups: pd.Series | None,
    *,
    colors: Mapping[str, str],
    legend: bool,
    sample_labels: bool | None,
    ends: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> None:
    n = props.shape[0]
    x = np.arange(n, dtype=float)
    spans = _group_spans(groups) if groups is not None else []
    if spans:
        # a gap of half a bar between consecutive groups
        for k, (_, first, last) in enumerate(spans):
            x[first : last + 1] += 0.5 * k
    values = props.to_numpy()
    bottom = np.zeros(n)
    ax.set_axisbelow(True)  # grid lines of a style sheet stay behind the bars
    for j, cell_type in enumerate(props.columns):
        heights = np.nan_to_num(values[:, j])
        ax.bar(
            x,
            heights,
            bottom=bottom,
            width=0.85,
            color=colors[cell_type],
            label=cell_type,
            linewidth=0,
        )
        bottom += heights
    top = max(1.0, float(np.max(bottom)))
    if ends is not None:
        top = max(top, _whiskers(ax, x, props, ends))
    ax.set_ylim(0, top)
    ax.set_xlim(x[0] - 0.6, x[-1] + 0.6)
    ax.set_ylabel("proportion")
    ax.spines[["top", "right"]].set_visible(False)
    if sample_labels is None:
        sample_labels = n <= 60
    ax.set_xticks(x)
    if sample_labels:
        ax.set_xticklabels(props.index, rotation=90)
    else:
        ax.set_xticklabels([])
        ax.tick_params(axis="x", length=0)
        ax.set_xlabel(f"{n} samples")
    if spans:
        trans = transforms.blended_transform_factory(ax.transData, ax.transAxes)
        for name, first, last in spans:
            ax.text(
                (x[first] + x[last]) / 2,
                1.01,
                name,
                transform=trans,
                ha="center",
                va="bottom",
                fontsize="small",
            )
    if legend:
        handles, labels = ax.get_legend_handles_labels()
        title = "cell type"
        if ends is not None:
            title += f"\n(whiskers: {_interval_label()})"
        # reversed, so that the legend reads in the order of the stack
        ax.legend(
            handles[::-1],
            labels[::-1],
            title=title,
            alignment="left",
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            frameon=False,
            fontsize="small",
            ncols=int(np.ceil(len(labels) / 18)),
        )


def _interval_label() -> str:
    lo, hi = LOWER_SUFFIX.removeprefix("_q"), UPPER_SUFFIX.removeprefix("_q")
    return f"{int(lo)}-{int(hi)}% interval"


def _whiskers(
    ax: Axes, x: np.ndarray, props: pd.DataFrame, ends: tuple[pd.DataFrame, pd.DataFrame]
) -> float:
    """Draw each segment's interval at the top of the segment; return the highest end.

    The whisker of a segment spans its bottom plus the lower and the upper end of its
    proportion, so it crosses the segment's top edge where the point estimate is.
    """
    values = np.nan_to_num(props.to_numpy())
    lower, upper = (np.nan_to_num(e.to_numpy()) for e in ends)
    bottoms = np.cumsum(values, axis=1) - values
    ok = np.isfinite(props.to_numpy()) & np.isfinite(ends[0].to_numpy())
    ok &= np.isfinite(ends[1].to_numpy())
    cols = np.broadcast_to(x[:, None], values.shape)[ok]
    top = bottoms[ok] + values[ok]
    ax.errorbar(
        cols,
        top,
        yerr=np.vstack([values[ok] - lower[ok], upper[ok] - values[ok]]),
        fmt="none",
        ecolor="0.1",
        elinewidth=0.8,
        capsize=2,
        capthick=0.8,
        zorder=3,
    )
    return float(np.max(bottoms[ok] + upper[ok], initial=0.0))


def _heatmap(
    ax: Axes,
    props: pd.DataFrame,
    groups: pd.Series | None,
    *,
    cmap: str,
    annotate: bool | None,
    sample_labels: bool | None,
) -> None:
    values = props.to_numpy()
    n, c = values.shape
    vmax = float(np.nanmax(values)) if np.isfinite(values).any() else 1.0
    im = ax.imshow(values, aspect="auto", cmap=cmap, vmin=0.0, vmax=max(vmax, 1e-12))
    ax.grid(False)  # scanpy's figure style draws a grid over the cells otherwise
    cbar = ax.get_figure().colorbar(im, ax=ax, shrink=0.8, pad=0.02)
    cbar.set_label("proportion")
    ax.set_xticks(np.arange(c))
    ax.set_xticklabels(props.columns, rotation=90)
    ax.set_xlabel("cell type")
    if sample_labels is None:
        sample_labels = n <= 60
    if sample_labels:
        ax.set_yticks(np.arange(n))
        ax.set_yticklabels(props.index)
    else:
        ax.set_yticks([])
    ax.set_ylabel(f"{n} samples" if not sample_labels else "sample")
    if annotate is None:
        annotate = n * c <= 150
    if annotate:
        threshold = 0.6 * max(vmax, 1e-12)
        for i in range(n):
            for j in range(c):
                v = values[i, j]
                if not np.isfinite(v):
                    continue
                ax.text(
                    j,
                    i,
                    f"{v:.2f}",
                    ha="center",
                    va="center",
                    fontsize="x-small",
                    color="black" if v > threshold else "white",
                )
    if groups is not None:
        spans = _group_spans(groups)
        trans = transforms.blended_transform_factory(ax.transAxes, ax.transData)
        for k, (name, first, last) in enumerate(spans):
            if k > 0:
                ax.axhline(first - 0.5, color="white", linewidth=2)
            ax.text(
                1.01,
                (first + last) / 2,
                name,
                transform=trans,
                ha="left",
                va="center",
                fontsize="small",
            )
