"""One color per cell type across hpvade's and scanpy's plots; intervals as whiskers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from anndata import AnnData
from matplotlib.colors import to_hex

from hpvade import pl

from .conftest import CELL_TYPES


def _legend_colors(ax) -> dict[str, str]:
    leg = ax.get_legend()
    return {
        t.get_text(): to_hex(h.get_facecolor())
        for t, h in zip(leg.get_texts(), leg.legend_handles, strict=True)
    }


@pytest.fixture
def reference() -> AnnData:
    """40 cells whose cell-type categories are in another order than the proportions'."""
    rng = np.random.default_rng(0)
    labels = pd.Categorical(
        np.repeat(CELL_TYPES, 10), categories=["T cells", "Monocytes", "NK cells", "B cells"]
    )
    ref = AnnData(
        rng.poisson(2.0, size=(40, 5)).astype(np.float32),
        obs=pd.DataFrame({"cell_type": labels}, index=[f"c{i}" for i in range(40)]),
    )
    ref.obsm["X_umap"] = rng.normal(size=(40, 2))
    return ref


def test_bars_take_the_colors_scanpy_gives_the_reference(bulk, reference):
    before = dict(reference.uns)
    fig = pl.proportions(bulk, reference=reference, labels_key="cell_type", return_fig=True)
    ours = _legend_colors(fig.axes[0])
    assert dict(reference.uns) == before  # nothing written into the reference
    # the colors scanpy picks when it first plots the column (and stores in uns)
    sc.pl.umap(reference, color="cell_type", show=False)
    theirs = dict(
        zip(
            reference.obs["cell_type"].cat.categories,
            reference.uns["cell_type_colors"],
            strict=True,
        )
    )
    assert ours == {k: to_hex(v) for k, v in theirs.items()}
    # by name, not by position: the proportions' first column is not the first category
    assert ours["T cells"] == "#1f77b4"


def test_stored_reference_colors_win_and_are_shared_by_every_plot(bulk, reference):
    reference.uns["cell_type_colors"] = ["#111111", "#222222", "#333333", "#444444"]
    expected = {"T cells": "#111111", "Monocytes": "#222222", "NK cells": "#333333"}
    expected["B cells"] = "#444444"
    fig = pl.proportions(bulk, reference=reference, labels_key="cell_type", return_fig=True)
    assert _legend_colors(fig.axes[0]) == expected
    props = bulk.obsm["hpvade_proportions"]
    for c in CELL_TYPES:
        bulk.obs[f"true_{c}"] = props[c]
    fig = pl.predicted_vs_true(
        bulk, reference=reference, labels_key="cell_type", overall=True, return_fig=True
    )
    axes = [ax for ax in fig.axes if ax.get_visible()]
    for ax in axes[:-1]:  # one panel per type, its points in the type's color
        assert to_hex(ax.collections[0].get_facecolor()[0]) == expected[ax.get_title()]
    assert _legend_colors(axes[-1]) == expected
    # an explicit palette still wins
    fig = pl.proportions(
        bulk, reference=reference, labels_key="cell_type", palette="tab10", return_fig=True
    )
    assert _legend_colors(fig.axes[0])["B cells"] == "#1f77b4"


def test_types_the_reference_lacks_get_unused_colors(bulk, reference):
    props = bulk.obsm["hpvade_proportions"].copy()
    props.insert(4, "unknown", 0.0)
    bulk.obsm["with_unknown"] = props
    fig = pl.proportions(
        bulk, key="with_unknown", reference=reference, labels_key="cell_type", return_fig=True
    )
    colors = _legend_colors(fig.axes[0])
    assert len(set(colors.values())) == 5


def test_reference_needs_its_labels_key(bulk, reference):
    with pytest.raises(ValueError, match="labels_key"):
        pl.proportions(bulk, reference=reference)
    with pytest.raises(KeyError, match="cell_type"):
        pl.proportions(bulk, reference=reference, labels_key="nope")


def test_default_colors_follow_scanpy_beyond_ten_types():
    from scanpy.plotting import palettes

    from hpvade.pl._utils import _type_colors

    assert _type_colors([str(i) for i in range(4)], None) == [
        "#1f77b4",
        "#ff7f0e",
        "#2ca02c",
        "#d62728",
    ]
    assert _type_colors([str(i) for i in range(12)], None) == [
        to_hex(c) for c in palettes.default_20[:12]
    ]


def _with_intervals(bulk: AnnData, half_width: float = 0.05) -> tuple[pd.DataFrame, ...]:
    props = bulk.obsm["hpvade_proportions"]
    rng = np.random.default_rng(4)
    lower = (props - rng.uniform(0, half_width, size=props.shape)).clip(lower=0)
    upper = (props + rng.uniform(0, half_width, size=props.shape)).clip(upper=1)
    bulk.obsm["hpvade_proportions_q05"] = lower
    bulk.obsm["hpvade_proportions_q95"] = upper
    return props, lower, upper


def _whisker_segments(ax) -> np.ndarray:
    """(n, 2, 2) segments of the errorbar's vertical lines."""
    from matplotlib.collections import LineCollection

    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    return np.concatenate([np.asarray(c.get_segments()) for c in lines]) if lines else []


def test_bars_draw_each_segment_interval_at_its_top(bulk):
    props, lower, upper = _with_intervals(bulk)
    fig = pl.proportions(bulk, return_fig=True)
    ax = fig.axes[0]
    segments = _whisker_segments(ax)
    assert len(segments) == 8 * 4
    values = props.to_numpy()
    bottoms = (np.cumsum(values, axis=1) - values).ravel()  # sample by sample
    np.testing.assert_allclose(segments[:, 0, 1], bottoms + lower.to_numpy().ravel())
    np.testing.assert_allclose(segments[:, 1, 1], bottoms + upper.to_numpy().ravel())
    np.testing.assert_allclose(segments[:, 0, 0], np.repeat(np.arange(8.0), 4))
    assert "5-95% interval" in ax.get_legend().get_title().get_text()
    assert len(ax.patches) == 32  # the bars themselves are unchanged
    # off on request, and the heatmap shows none
    fig = pl.proportions(bulk, intervals=False, return_fig=True)
    assert len(_whisker_segments(fig.axes[0])) == 0
    pl.proportions(bulk, kind="heatmap", return_fig=True)
    with pytest.raises(ValueError, match="kind='bar'"):
        pl.proportions(bulk, kind="heatmap", intervals=True)


def test_bars_intervals_follow_sorting_and_subsets(bulk):
    props, lower, upper = _with_intervals(bulk)
    fig = pl.proportions(bulk, sort_by="NK cells", cell_types=["NK cells"], return_fig=True)
    segments = _whisker_segments(fig.axes[0])
    order = props["NK cells"].sort_values(ascending=False).index
    np.testing.assert_allclose(segments[:, 0, 1], lower.loc[order, "NK cells"])
    np.testing.assert_allclose(segments[:, 1, 1], upper.loc[order, "NK cells"])


def test_predicted_vs_true_draws_whiskers(bulk):
    props, lower, upper = _with_intervals(bulk)
    for c in CELL_TYPES:
        bulk.obs[f"true_{c}"] = props[c] * 0.9
    fig = pl.predicted_vs_true(bulk, return_fig=True)
    for ax in [a for a in fig.axes if a.get_visible()]:
        c = ax.get_title()
        segments = _whisker_segments(ax)
        np.testing.assert_allclose(segments[:, 0, 0], props[c] * 0.9)
        np.testing.assert_allclose(segments[:, 0, 1], lower[c])
        np.testing.assert_allclose(segments[:, 1, 1], upper[c])
        assert ax.get_ylim()[1] >= upper[c].max()
    fig = pl.predicted_vs_true(bulk, intervals=False, return_fig=True)
    assert len(_whisker_segments(fig.axes[0])) == 0


def test_summed_types_get_no_whiskers(bulk):
    props, _, upper = _with_intervals(bulk)
    truth = pd.DataFrame(
        {"Lymphocytes": props[["B cells", "T cells"]].sum(axis=1), "NK cells": props["NK cells"]}
    )
    mapping = {"B cells": "Lymphocytes", "T cells": "Lymphocytes"}
    fig = pl.predicted_vs_true(bulk, truth, mapping=mapping, overall=True, return_fig=True)
    axes = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    assert len(_whisker_segments(axes["Lymphocytes"])) == 0
    np.testing.assert_allclose(_whisker_segments(axes["NK cells"])[:, 1, 1], upper["NK cells"])
    assert len(_whisker_segments(axes["all cell types"])) == 8


def test_interval_errors(bulk):
    props = bulk.obsm["hpvade_proportions"]
    with pytest.raises(KeyError, match="hpvade_proportions_q05"):
        pl.proportions(bulk, intervals=True)
    with pytest.raises(KeyError, match="quantiles"):
        pl.predicted_vs_true(bulk, props, intervals=True)
    bulk.obsm["hpvade_proportions_q05"] = props - 0.01
    bulk.obsm["hpvade_proportions_q95"] = props - 0.01  # upper below the point
    with pytest.raises(ValueError, match="lower <= proportion <= upper"):
        pl.proportions(bulk)
    bulk.obsm["hpvade_proportions_q95"] = props.iloc[:, :2] + 0.01
    with pytest.raises(ValueError, match="lacks"):
        pl.proportions(bulk)


def test_report_draws_the_intervals_on_its_bars(bulk, tmp_path, monkeypatch):
    from hpvade import _report

    props, lower, upper = _with_intervals(bulk)
    drawn = []
    real = pl.proportions

    def spy(*args, **kwargs):
        fig = real(*args, **kwargs)
        if kwargs.get("kind") == "bar":
            drawn.append(len(_whisker_segments(fig.axes[0])))
        return fig

    monkeypatch.setattr("hpvade.pl.proportions", spy)
    out = tmp_path / "report.html"
    _report.write_report(out, props=props, model=None, inputs={}, intervals=(lower, upper))
    assert drawn == [32]
    assert "Whiskers" in out.read_text()
    drawn.clear()
    _report.write_report(out, props=props, model=None, inputs={})
    assert drawn == [0]
