from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from hpvade.benchmark import bootstrap, ccc, evaluate, map_labels, pearson, truth_from_obs
from hpvade.benchmark._bootstrap import _resampled_metrics


def _r(x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    dx, dy = x - x.mean(), y - y.mean()
    return (dx * dy).sum() / np.sqrt((dx**2).sum() * (dy**2).sum())


def _ccc(x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    cov = ((x - x.mean()) * (y - y.mean())).mean()
    return 2 * cov / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


def test_pearson_hand_computed():
    # x = [1, 2, 3], y = [1, 3, 2]: dx = [-1, 0, 1], dy = [-1, 1, 0]
    # sum dx dy = 1, sum dx^2 = 2, sum dy^2 = 2 -> r = 1/2
    assert pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_ccc_hand_computed():
    # x = [1, 2, 3], y = [2, 3, 4]: cov = 2/3, var x = var y = 2/3, shift^2 = 1
    # ccc = (4/3) / (4/3 + 1) = 4/7
    assert ccc([1, 2, 3], [2, 3, 4]) == pytest.approx(4 / 7)
    assert ccc([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    # y = 2x: cov = 4/3, var x = 2/3, var y = 8/3, shift^2 = 4 -> 8/3 / (22/3) = 4/11
    assert ccc([1, 2, 3], [2, 4, 6]) == pytest.approx(4 / 11)


def test_constant_columns():
    assert np.isnan(pearson([0.2, 0.2, 0.2], [0.1, 0.2, 0.3]))
    # same constant: 0/0 -> NaN; different constants -> 0
    assert np.isnan(ccc([0.2, 0.2], [0.2, 0.2]))
    assert ccc([0.2, 0.2], [0.3, 0.3]) == 0.0
    assert np.isnan(pearson([1.0], [2.0]))


def test_nan_pairs_dropped():
    assert pearson([1, 2, np.nan, 3], [1, 3, 5, 2]) == pytest.approx(0.5)


def test_evaluate_hand_computed():
    rng = np.random.default_rng(0)
    t = rng.dirichlet(np.ones(3), size=6)
    p = np.clip(t + rng.normal(0, 0.05, size=t.shape), 0, None)
    idx = [f"s{i}" for i in range(6)]
    truth = pd.DataFrame(t, index=idx, columns=["A", "B", "C"])
    pred = pd.DataFrame(p, index=idx, columns=["A", "B", "C"])
    res = evaluate(pred, truth)
    per = [_r(p[:, j], t[:, j]) for j in range(3)]
    assert res["pearson_mean"] == pytest.approx(np.mean(per))
    assert res["per_type"]["pearson"].to_numpy() == pytest.approx(per)
    assert res["per_type"]["ccc"].to_numpy() == pytest.approx(
        [_ccc(p[:, j], t[:, j]) for j in range(3)]
    )
    assert res["pearson_overall"] == pytest.approx(_r(p.ravel(), t.ravel()))
    assert res["ccc_overall"] == pytest.approx(_ccc(p.ravel(), t.ravel()))
    assert res["rmse"] == pytest.approx(np.sqrt(np.mean((p - t) ** 2)))
    assert res["mae"] == pytest.approx(np.mean(np.abs(p - t)))
    assert res["n_samples"] == 6
    assert res["types"] == ["A", "B", "C"]
    assert list(res["per_type"].columns) == ["pearson", "ccc", "rmse", "mae"]


def test_evaluate_small_exact():
    truth = pd.DataFrame({"A": [0.0, 0.5, 1.0], "B": [1.0, 0.5, 0.0]})
    pred = pd.DataFrame({"A": [0.0, 0.5, 1.0], "B": [1.0, 0.5, 0.0]})
    res = evaluate(pred, truth)
    assert res["pearson_mean"] == pytest.approx(1.0)
    assert res["ccc_overall"] == pytest.approx(1.0)
    assert res["rmse"] == 0.0
    assert res["mae"] == 0.0


def test_evaluate_aligns_samples_and_types():
    truth = pd.DataFrame(
        {"B": [0.1, 0.2, 0.3], "NK": [0.3, 0.1, 0.2], "DC": [0.0, 0.1, 0.0]},
        index=["s1", "s2", "s3"],
    )
    pred = pd.DataFrame(
        {"NK": [0.2, 0.3, 0.9], "B": [0.3, 0.1, 0.9], "Platelet": [0.5, 0.6, 0.9]},
        index=["s3", "s1", "s9"],
    )
    res = evaluate(pred, truth)
    assert res["n_samples"] == 2
    assert res["types"] == ["NK", "B"]
    p = np.array([[0.2, 0.3], [0.3, 0.1]])
    t = np.array([[0.2, 0.3], [0.3, 0.1]])
    assert res["mae"] == pytest.approx(np.mean(np.abs(p - t)))
    assert res["mae"] == pytest.approx(0.0)


def test_evaluate_constant_column_skipped_in_mean():
    truth = pd.DataFrame({"A": [0.2, 0.4, 0.6], "B": [0.3, 0.3, 0.3]})
    pred = pd.DataFrame({"A": [0.1, 0.5, 0.6], "B": [0.2, 0.3, 0.4]})
    res = evaluate(pred, truth)
    assert np.isnan(res["per_type"].loc["B", "pearson"])
    assert res["pearson_mean"] == pytest.approx(_r([0.1, 0.5, 0.6], [0.2, 0.4, 0.6]))


def test_evaluate_renormalize():
    truth = pd.DataFrame({"A": [0.2, 0.1], "B": [0.2, 0.3], "X": [0.6, 0.6]})
    pred = pd.DataFrame({"A": [0.5, 0.25], "B": [0.5, 0.75]})
    res = evaluate(pred, truth, renormalize=True)
    assert res["mae"] == pytest.approx(0.0)
    assert evaluate(pred, truth)["mae"] > 0.2


def test_map_labels_sums():
    pred = pd.DataFrame(
        {
            "Naive CD4 T": [0.1, 0.2],
            "Memory CD4 T": [0.2, 0.1],
            "CD8 T": [0.1, 0.1],
            "CD14+ Mono": [0.3, 0.1],
            "FCGR3A+ Mono": [0.1, 0.1],
            "Platelet": [0.2, 0.4],
        },
        index=["a", "b"],
    )
    mapping = {
        "Naive CD4 T": "CD4_T",
        "Memory CD4 T": "CD4_T",
        "CD8 T": "CD8_T",
        "CD14+ Mono": "Monocytes",
        "FCGR3A+ Mono": "Monocytes",
        "DC": "DC",
    }
    out = map_labels(pred, mapping)
    assert list(out.columns) == ["CD4_T", "CD8_T", "Monocytes"]
    assert list(out.index) == ["a", "b"]
    np.testing.assert_allclose(out["CD4_T"], [0.3, 0.3])
    np.testing.assert_allclose(out["Monocytes"], [0.4, 0.2])
    # many-to-one onto total T
    tot = map_labels(pred, {"Naive CD4 T": "T", "Memory CD4 T": "T", "CD8 T": "T"})
    np.testing.assert_allclose(tot["T"], [0.4, 0.4])


def test_evaluate_with_mapping():
    pred = pd.DataFrame({"x1": [0.1, 0.2, 0.3], "x2": [0.1, 0.2, 0.2], "y": [0.8, 0.6, 0.5]})
    truth = pd.DataFrame({"X": [0.2, 0.4, 0.5], "Y": [0.8, 0.6, 0.5]})
    res = evaluate(pred, truth, mapping={"x1": "X", "x2": "X", "y": "Y"})
    assert res["types"] == ["X", "Y"]
    assert res["mae"] == pytest.approx(0.0)


def test_map_labels_no_match_raises():
    with pytest.raises(ValueError, match="None of the keys"):
        map_labels(pd.DataFrame({"a": [1.0]}), {"b": "B"})


def test_evaluate_errors():
    truth = pd.DataFrame({"A": [0.1]}, index=["s1"])
    with pytest.raises(ValueError, match="share no sample"):
        evaluate(pd.DataFrame({"A": [0.1]}, index=["s2"]), truth)
    with pytest.raises(ValueError, match="share no cell type"):
        evaluate(pd.DataFrame({"Z": [0.1]}, index=["s1"]), truth)
    with pytest.raises(TypeError):
        evaluate(np.zeros((1, 1)), truth)


def test_truth_from_obs():
    obs = pd.DataFrame(
        {"true_B": [0.1, 0.2], "true_NK": [0.3, np.nan], "donor": ["d1", "d2"]},
        index=["s1", "s2"],
    )
    adata = ad.AnnData(np.zeros((2, 3), dtype=np.float32), obs=obs)
    truth = truth_from_obs(adata)
    assert list(truth.columns) == ["B", "NK"]
    assert list(truth.index) == ["s1", "s2"]
    assert all(np.issubdtype(d, np.floating) for d in truth.dtypes)
    with pytest.raises(ValueError, match="starts with"):
        truth_from_obs(adata, prefix="frac_")


def _metric_cases():
    rng = np.random.default_rng(3)
    t = rng.dirichlet(np.ones(4), size=12)
    p = np.clip(t + rng.normal(0, 0.05, size=t.shape), 0, None)
    yield p, t
    t2 = t.copy()
    t2[[1, 5], 2] = np.nan  # unmeasured entries, dropped pairwise
    yield p, t2
    p3 = p.copy()
    p3[:, 1] = 0.2  # a constant prediction: no r for that type
    yield p3, t
    yield np.full_like(p, 0.25), np.full_like(t, 0.25)  # nothing defined at all


@pytest.mark.parametrize("case", range(4))
def test_resampled_metrics_match_evaluate(case):
    """The identity resample gives evaluate's numbers, NaN where evaluate has NaN."""
    p, t = list(_metric_cases())[case]
    got = _resampled_metrics(p, t, np.arange(len(p))[None, :])[0]
    res = evaluate(pd.DataFrame(p), pd.DataFrame(t))
    want = [res["pearson_mean"], res["ccc_overall"], res["mae"]]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, equal_nan=True)


def test_resampled_metrics_match_evaluate_on_duplicated_draws():
    """A resample that draws samples twice is scored like a table that holds them twice."""
    p, t = next(_metric_cases())
    idx = np.array([[0, 0, 3, 5, 5, 5, 7, 8, 8, 10, 11, 2]])
    got = _resampled_metrics(p, t, idx)[0]
    res = evaluate(pd.DataFrame(p[idx[0]]), pd.DataFrame(t[idx[0]]))
    np.testing.assert_allclose(got, [res["pearson_mean"], res["ccc_overall"], res["mae"]])


def test_bootstrap_intervals_and_pairing():
    rng = np.random.default_rng(0)
    names = [f"s{i}" for i in range(30)]
    truth = pd.DataFrame(rng.dirichlet(np.ones(3), size=30), index=names, columns=list("ABC"))
    good = truth + rng.normal(0, 0.01, size=truth.shape)
    bad = truth + rng.normal(0, 0.08, size=truth.shape)
    b_good = bootstrap(good, truth, n_boot=500, seed=1)
    b_bad = bootstrap(bad.iloc[::-1], truth, n_boot=500, seed=1)  # order of pred is irrelevant
    assert list(b_good.columns) == ["pearson_mean", "ccc_overall", "mae"]
    assert b_good.shape == (500, 3)
    point = evaluate(good, truth)["pearson_mean"]
    lo, hi = b_good["pearson_mean"].quantile([0.025, 0.975])
    assert lo <= point <= hi
    assert hi - lo < 0.02
    # paired: the better method is ahead in every resample
    assert (b_good["pearson_mean"] > b_bad["pearson_mean"]).all()
    assert (b_good["mae"] < b_bad["mae"]).all()
    # same seed, same resamples; another seed, others
    pd.testing.assert_frame_equal(b_good, bootstrap(good, truth, n_boot=500, seed=1))
    assert not b_good.equals(bootstrap(good, truth, n_boot=500, seed=2))


def test_bootstrap_mapping_and_errors():
    truth = pd.DataFrame({"T": [0.5, 0.6, 0.7], "B": [0.5, 0.4, 0.3]})
    pred = pd.DataFrame({"CD4": [0.3, 0.3, 0.4], "CD8": [0.2, 0.3, 0.3], "B": [0.5, 0.4, 0.3]})
    boot = bootstrap(pred, truth, mapping={"CD4": "T", "CD8": "T", "B": "B"}, n_boot=50)
    assert np.nanmax(boot["mae"]) < 1e-12
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap(pred, truth, n_boot=0)
    with pytest.raises(ValueError, match="share no"):
        bootstrap(pred[["CD4", "CD8"]], truth)
    with pytest.raises(TypeError, match="DataFrame"):
        bootstrap(pred.to_numpy(), truth)
