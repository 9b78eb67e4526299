from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hpvade import pl
from hpvade.pl._predicted_vs_true import _ccc, _pearson


def _metrics(ax) -> tuple[float, float, int]:
    text = "\n".join(t.get_text() for t in ax.texts)
    r = float(re.search(r"r = (\S+)", text).group(1))
    ccc = float(re.search(r"CCC = (\S+)", text).group(1))
    n = int(re.search(r"n = (\d+)", text).group(1))
    return r, ccc, n


def test_pearson_and_ccc_by_hand():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=50)
    y = 0.5 * x + 0.1 + rng.normal(scale=0.05, size=50)
    assert _pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0], rel=1e-12)
    # Lin (1989): 2 s_xy / (s_x^2 + s_y^2 + (mean_x - mean_y)^2), population moments
    sxy = np.mean((x - x.mean()) * (y - y.mean()))
    expected = 2 * sxy / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    assert _ccc(x, y) == pytest.approx(expected, rel=1e-12)
    assert _ccc(x, x) == pytest.approx(1.0)
    assert _pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert _ccc(x, 2 * x + 1) < 0.5  # perfectly correlated but far from identity
    assert np.isnan(_pearson(x, np.ones_like(x)))
    assert np.isnan(_ccc(x[:1], x[:1]))


def test_truth_from_obs_prefix(bulk):
    pred = bulk.obsm["hpvade_proportions"]
    rng = np.random.default_rng(2)
    truth = (pred + rng.normal(scale=0.03, size=pred.shape)).clip(lower=0)
    for c in ["B cells", "NK cells"]:
        bulk.obs[f"true_{c}"] = truth[c]
    fig = pl.predicted_vs_true(bulk, return_fig=True)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["B cells", "NK cells"]
    for ax, c in zip(axes, ["B cells", "NK cells"], strict=True):
        offsets = ax.collections[0].get_offsets()
        assert offsets.shape == (8, 2)
        np.testing.assert_allclose(offsets[:, 0], truth[c])
        np.testing.assert_allclose(offsets[:, 1], pred[c])
        r, ccc, n = _metrics(ax)
        assert r == pytest.approx(stats.pearsonr(truth[c], pred[c])[0], abs=0.005)
        assert ccc == pytest.approx(_ccc(truth[c].to_numpy(), pred[c].to_numpy()), abs=0.005)
        assert n == 8
        assert ax.get_xlabel() == "true proportion"
        assert ax.get_ylabel() == "predicted proportion"


def test_truth_dataframe_with_mapping_and_sample_matching(bulk):
    pred = bulk.obsm["hpvade_proportions"]
    lymph = pred["B cells"] + pred["T cells"] + pred["NK cells"]
    # truth for 6 of the 8 samples, in another order, at a coarser resolution
    truth = pd.DataFrame(
        {"Lymphocytes": lymph, "Monocytes": pred["Monocytes"]}, index=pred.index
    ).iloc[[5, 0, 3, 1, 2, 4]]
    mapping = {"B cells": "Lymphocytes", "T cells": "Lymphocytes", "NK cells": "Lymphocytes"}
    with pytest.warns(UserWarning, match="2 predicted sample"):
        fig = pl.predicted_vs_true(bulk, truth, mapping=mapping, overall=True, return_fig=True)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["Lymphocytes", "Monocytes", "all cell types"]
    for ax in axes[:2]:
        offsets = ax.collections[0].get_offsets()
        assert offsets.shape == (6, 2)
        np.testing.assert_allclose(offsets[:, 0], offsets[:, 1])  # summed predictions = truth
        r, ccc, n = _metrics(ax)
        assert (r, ccc, n) == (1.0, 1.0, 6)
    # the pooled panel: one collection per type, 6 points each
    assert [len(c.get_offsets()) for c in axes[2].collections] == [6, 6]
    assert _metrics(axes[2]) == (1.0, 1.0, 12)


def test_missing_truth_values_are_dropped(bulk):
    pred = bulk.obsm["hpvade_proportions"]
    truth = pred.copy()
    truth.iloc[0, 0] = np.nan
    fig = pl.predicted_vs_true(pred, truth, return_fig=True)
    assert len(fig.axes[0].collections[0].get_offsets()) == 7
    assert _metrics(fig.axes[0])[2] == 7
    assert _metrics(fig.axes[1])[2] == 8
    assert sum(ax.get_visible() for ax in fig.axes) == 4


def test_given_axes(bulk):
    import matplotlib.pyplot as plt

    pred = bulk.obsm["hpvade_proportions"]
    fig, axes = plt.subplots(2, 2)
    assert pl.predicted_vs_true(pred, pred, ax=axes) is None
    assert [ax.get_title() for ax in axes.ravel()] == list(pred.columns)
    with pytest.raises(ValueError, match="needs 4 panels"):
        pl.predicted_vs_true(pred, pred, ax=axes[0])


def test_errors(bulk):
    pred = bulk.obsm["hpvade_proportions"]
    with pytest.raises(KeyError, match="true_"):
        pl.predicted_vs_true(bulk)
    with pytest.raises(ValueError, match="no sample"):
        pl.predicted_vs_true(pred, pred.set_axis([f"x{i}" for i in range(8)]))
    with pytest.raises(ValueError, match="mapping"):
        pl.predicted_vs_true(pred, pred.add_prefix("other "))
    with pytest.raises(ValueError, match="truth="):
        pl.predicted_vs_true(pred)


def test_same_numbers_as_the_benchmark_metrics():
    benchmark = pytest.importorskip("hpvade.benchmark")
    rng = np.random.default_rng(3)
    for _ in range(5):
        x = rng.dirichlet(np.ones(3), size=30)[:, 0]
        y = np.clip(x + rng.normal(scale=0.05, size=30), 0, None)
        assert _pearson(x, y) == pytest.approx(benchmark.pearson(x, y), rel=1e-9)
        assert _ccc(x, y) == pytest.approx(benchmark.ccc(x, y), rel=1e-9)


def test_metrics_hide_no_point(bulk):
    """The r / CCC / n text overlaps none of the points, wherever they lie."""
    rng = np.random.default_rng(5)
    names = [f"p{i}" for i in range(60)]
    # points everywhere in the panel, corners included
    grid = np.linspace(0.0, 1.0, 8)
    xy = np.array([(a, b) for a in grid for b in grid])[: len(names)]
    xy = np.clip(xy + rng.normal(scale=0.01, size=xy.shape), 0, 1)
    pred = pd.DataFrame({"A": xy[:, 1]}, index=names)
    truth = pd.DataFrame({"A": xy[:, 0]}, index=names)
    fig = pl.predicted_vs_true(pred, truth, return_fig=True)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    (text,) = [t for t in ax.texts if "CCC" in t.get_text()]
    box = text.get_window_extent(renderer)
    points = ax.transData.transform(ax.collections[0].get_offsets())
    radius = 3.0  # pixels: a marker of s=16 points^2 at the figure's dpi is smaller
    inside = (
        (points[:, 0] + radius >= box.x0)
        & (points[:, 0] - radius <= box.x1)
        & (points[:, 1] + radius >= box.y0)
        & (points[:, 1] - radius <= box.y1)
    )
    assert not inside.any()
    # and the title stays clear of the text
    assert ax.title.get_window_extent(renderer).y0 >= box.y1 - 1
