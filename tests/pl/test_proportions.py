from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from hpvade import pl
from hpvade.pl._proportions import _sample_order


def _bar_heights(ax) -> np.ndarray:
    """Heights of the bar patches as (cell types, samples), in drawing order."""
    return np.array([p.get_height() for p in ax.patches])


def test_bar_one_patch_per_sample_and_type(bulk):
    props = bulk.obsm["hpvade_proportions"]
    fig = pl.proportions(bulk, return_fig=True)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.patches) == 8 * 4
    # stacked: segments of type j are the j-th block of 8, in sample order
    heights = _bar_heights(ax).reshape(4, 8)
    np.testing.assert_allclose(heights, props.to_numpy().T)
    bottoms = np.array([p.get_y() for p in ax.patches]).reshape(4, 8)
    np.testing.assert_allclose(bottoms, np.cumsum(props.to_numpy(), axis=1).T - heights)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(bulk.obs_names)
    assert ax.get_ylabel() == "proportion"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["Monocytes", "NK cells", "T cells", "B cells"]  # stack order, top first


def test_bar_groupby_and_sort_by_type(bulk):
    props = bulk.obsm["hpvade_proportions"]
    fig = pl.proportions(bulk, groupby="condition", sort_by="B cells", return_fig=True)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    cond = bulk.obs["condition"]
    # categories order ("treated" first), then decreasing B cells within each group
    expected = []
    for group in ["treated", "ctrl"]:
        sub = props.loc[cond == group, "B cells"]
        expected += list(sub.sort_values(ascending=False).index)
    assert labels == expected
    # the first 8 patches are B cells, in that order
    np.testing.assert_allclose(_bar_heights(ax)[:8], props.loc[expected, "B cells"])
    # groups labelled, separated by a gap of half a bar
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["treated", "ctrl"]
    x = np.array([p.get_x() for p in ax.patches[:8]])
    np.testing.assert_allclose(np.diff(x), [1, 1, 1, 1.5, 1, 1, 1])


def test_sort_by_obs_column_is_increasing(bulk):
    order, groups = _sample_order(
        bulk.obsm["hpvade_proportions"], bulk.obs, groupby=None, sort_by="age"
    )
    assert order == [f"s{i}" for i in range(7, -1, -1)]
    assert groups is None


def test_cell_types_subset_and_order(bulk):
    fig = pl.proportions(bulk, cell_types=["T cells", "B cells"], return_fig=True)
    ax = fig.axes[0]
    assert len(ax.patches) == 8 * 2
    np.testing.assert_allclose(
        _bar_heights(ax)[:8], bulk.obsm["hpvade_proportions"]["T cells"].to_numpy()
    )


def test_heatmap_values_and_labels(bulk):
    props = bulk.obsm["hpvade_proportions"]
    fig = pl.proportions(bulk, kind="heatmap", groupby="condition", return_fig=True)
    ax = fig.axes[0]
    image = ax.get_images()[0].get_array()
    assert image.shape == (8, 4)
    order = [t.get_text() for t in ax.get_yticklabels()]
    np.testing.assert_allclose(np.asarray(image), props.loc[order].to_numpy())
    assert [t.get_text() for t in ax.get_xticklabels()] == list(props.columns)
    # 32 annotations plus the 2 group labels
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 8 * 4 + 2
    assert f"{props.loc[order[0], 'B cells']:.2f}" == texts[0]
    assert texts[-2:] == ["treated", "ctrl"]
    assert fig.axes[1].get_ylabel() == "proportion"  # the colorbar


def test_dataframe_input_and_ndarray_obsm(bulk):
    props = bulk.obsm["hpvade_proportions"]
    fig = pl.proportions(props, return_fig=True)
    assert len(fig.axes[0].patches) == 32
    bulk.obsm["arr"] = props.to_numpy()
    fig = pl.proportions(bulk, key="arr", return_fig=True)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["type_3", "type_2", "type_1", "type_0"]


def test_into_given_ax_and_save(bulk, tmp_path):
    fig, axes = plt.subplots(1, 2)
    out = pl.proportions(bulk, ax=axes[1], kind="heatmap", save=str(tmp_path / "p.png"))
    assert out is None
    assert len(axes[1].get_images()) == 1
    assert len(axes[0].patches) == 0
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_does_not_write_into_adata(bulk):
    before = (bulk.obs.copy(), dict(bulk.obsm), dict(bulk.uns), bulk.obsm["hpvade_proportions"])
    props = before[3].copy()
    pl.proportions(bulk, groupby="condition", sort_by="age", return_fig=True)
    pl.proportions(bulk, kind="heatmap", return_fig=True)
    pd.testing.assert_frame_equal(bulk.obs, before[0])
    assert set(bulk.obsm) == set(before[1])
    assert bulk.uns == before[2]
    pd.testing.assert_frame_equal(bulk.obsm["hpvade_proportions"], props)


def test_errors(bulk):
    with pytest.raises(KeyError, match="get_proportions"):
        pl.proportions(bulk, key="missing")
    with pytest.raises(KeyError, match="sort_by"):
        pl.proportions(bulk, sort_by="nope")
    with pytest.raises(KeyError, match="groupby"):
        pl.proportions(bulk, groupby="nope")
    with pytest.raises(ValueError, match="kind"):
        pl.proportions(bulk, kind="pie")
    with pytest.raises(ValueError, match="AnnData"):
        pl.proportions(bulk.obsm["hpvade_proportions"], groupby="condition")


def test_sort_by_type_goes_to_the_bottom_of_the_stack(bulk):
    props = bulk.obsm["hpvade_proportions"]
    fig = pl.proportions(bulk, sort_by="NK cells", return_fig=True)
    ax = fig.axes[0]
    first = _bar_heights(ax)[:8]
    np.testing.assert_allclose(first, np.sort(props["NK cells"].to_numpy())[::-1])
    np.testing.assert_allclose([p.get_y() for p in ax.patches[:8]], 0.0)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[-1] == "NK cells"
    # an explicit cell_types order wins
    fig = pl.proportions(bulk, sort_by="NK cells", cell_types=list(props.columns), return_fig=True)
    np.testing.assert_allclose(
        _bar_heights(fig.axes[0])[:8],
        props["B cells"].loc[props["NK cells"].sort_values(ascending=False).index],
    )


def test_colors_follow_cell_types(bulk):
    from matplotlib.colors import to_hex

    def colors(fig):
        leg = fig.axes[0].get_legend()
        return {
            t.get_text(): to_hex(h.get_facecolor())
            for t, h in zip(leg.get_texts(), leg.legend_handles, strict=True)
        }

    plain = colors(pl.proportions(bulk, return_fig=True))
    assert plain == {
        "B cells": "#1f77b4",
        "T cells": "#ff7f0e",
        "NK cells": "#2ca02c",
        "Monocytes": "#d62728",
    }
    assert colors(pl.proportions(bulk, sort_by="Monocytes", return_fig=True)) == plain
    sub = colors(pl.proportions(bulk, cell_types=["NK cells"], return_fig=True))
    assert sub == {"NK cells": "#2ca02c"}
    custom = colors(
        pl.proportions(bulk, cell_types=["NK cells"], palette={"NK cells": "k"}, return_fig=True)
    )
    assert custom == {"NK cells": "#000000"}
    with pytest.raises(KeyError, match="palette"):
        pl.proportions(bulk, palette={"NK cells": "k"})
