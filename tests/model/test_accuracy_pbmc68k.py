"""Accuracy on real cells of another donor set: pseudo-bulks of held-out pbmc68k_reduced cells.

scanpy ships ``pbmc68k_reduced`` (700 PBMCs); its ``.raw`` holds log1p of counts normalised to
1e4 per cell over the 765 genes kept there, and ``obs["n_counts"]`` the library size. Counts are
recovered as ``round(expm1(raw) * n_counts / 1e4)``; the largest rounding gap is below 0.1, so
the values are the original integers. Labels are the Louvain clusters of the data set (11
clusters, 13-130 cells). Half of each cluster is held out; the model trains on the other half
and on the bulks, 100 pseudo-bulks (500 cells each, Dirichlet and sparse proportions) built
only from held-out cells: fresh cells of each type, in their own states.

Inside the test, the two baselines without training are computed on the same data: NNLS on
the type means and HP-VaDE's inference on type means (``hpvade.benchmark.typemean``).
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import scanpy as sc
import scvi
from scipy import sparse

import hpvade
from hpvade.model import PseudobulkSimulator

from ..conftest import TRAIN_KW


def _pbmc68k_counts() -> ad.AnnData:
    adata = sc.datasets.pbmc68k_reduced()
    raw = adata.raw.to_adata()
    X = raw.X.toarray() if sparse.issparse(raw.X) else np.asarray(raw.X)
    counts = np.expm1(X) * adata.obs["n_counts"].to_numpy()[:, None] / 1e4
    assert np.abs(counts - np.rint(counts)).max() < 0.1  # the recovery is exact
    return ad.AnnData(
        sparse.csr_matrix(np.rint(counts).astype(np.float32)),
        obs=adata.obs[["louvain"]].copy(),
        var=raw.var[[]].copy(),
    )


def _score(pred, truth) -> tuple[float, float]:
    return np.corrcoef(pred.ravel(), truth.ravel())[0, 1], np.abs(pred - truth).mean()


def test_heldout_pseudobulks_beat_the_baselines_without_training():
    cells = _pbmc68k_counts()
    rng = np.random.default_rng(0)
    held = np.zeros(cells.n_obs, dtype=bool)
    for idx in cells.obs.groupby("louvain", observed=True).indices.values():
        held[rng.permutation(idx)[: len(idx) // 2]] = True
    train, test = cells[~held].copy(), cells[held].copy()
    types = list(test.obs["louvain"].cat.categories)
    sim = PseudobulkSimulator(test.X, test.obs["louvain"].cat.codes.to_numpy(), len(types), seed=1)
    cpm, truth = sim.sample(100)
    bulk = ad.AnnData(cpm, var=test.var[[]].copy())

    nnls = hpvade.benchmark.nnls_typemeans(bulk, train, labels_key="louvain")[types].to_numpy()
    untrained = hpvade.benchmark.typemean(bulk, train, labels_key="louvain")[types].to_numpy()

    scvi.settings.seed = 0
    hpvade.HPVADE.setup_anndata(train, labels_key="louvain")
    model = hpvade.HPVADE(train)
    model.train(bulk=bulk, **TRAIN_KW)
    pred = model.get_proportions(bulk)[types].to_numpy()
    head = model.get_proportions(bulk, method="head")[types].to_numpy()

    r, mae = _score(pred, truth)
    r_nnls, mae_nnls = _score(nnls, truth)
    r_typemean, mae_typemean = _score(untrained, truth)
    # measured (seeds 0 and 1): r 0.962, MAE 0.023; typemean 0.963 / 0.022; NNLS 0.951 /
    # 0.029; the head alone 0.87 / 0.043. The seed's bar is 0.85 / 0.05
    assert r > 0.95, r
    assert mae < 0.027, mae
    assert r > r_nnls + 0.005, (r, r_nnls)
    assert mae < mae_nnls - 0.004, (mae, mae_nnls)
    # training must not cost accuracy against its own untrained inference (beating it is
    # the open goal of the model: see docs/benchmarks.md)
    assert r > r_typemean - 0.005, (r, r_typemean)
    assert mae < mae_typemean + 0.002, (mae, mae_typemean)
    # the per-sample fit generalises to held-out cells better than the head alone
    assert mae < np.abs(head - truth).mean()
    losses = model.history["train_loss"].to_numpy(dtype=float).ravel()
    assert np.isfinite(losses).all()
