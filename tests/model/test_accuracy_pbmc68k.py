"""The seed's quality bar on real cells: pseudo-bulks of held-out cells of pbmc68k_reduced.

scanpy ships ``pbmc68k_reduced`` (700 PBMCs); its ``.raw`` holds log1p of counts normalised to
1e4 per cell over the 765 genes kept there, and ``obs["n_counts"]`` the library size. Counts are
recovered as ``round(expm1(raw) * n_counts / 1e4)``; the largest rounding gap is below 0.1, so
the values are the original integers. Labels are the Louvain clusters of the data set (11
clusters, 13-130 cells). Half of each cluster is held out; the model trains on the other half,
then predicts 100 pseudo-bulks (500 cells each, Dirichlet and sparse proportions) built only
from held-out cells.
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


def test_heldout_pseudobulks_meet_the_seed_bar():
    cells = _pbmc68k_counts()
    rng = np.random.default_rng(0)
    held = np.zeros(cells.n_obs, dtype=bool)
    for idx in cells.obs.groupby("louvain", observed=True).indices.values():
        held[rng.permutation(idx)[: len(idx) // 2]] = True
    train, test = cells[~held].copy(), cells[held].copy()
    types = test.obs["louvain"].cat.categories
    sim = PseudobulkSimulator(test.X, test.obs["louvain"].cat.codes.to_numpy(), len(types), seed=1)
    cpm, truth = sim.sample(100)
    bulk = ad.AnnData(cpm, var=test.var[[]].copy())

    scvi.settings.seed = 0
    hpvade.HPVADE.setup_anndata(train, labels_key="louvain")
    model = hpvade.HPVADE(train)
    model.train(max_epochs=50, **TRAIN_KW)
    pred = model.get_proportions(bulk)[list(types)].to_numpy()
    head = model.get_proportions(bulk, method="head")[list(types)].to_numpy()

    r = np.corrcoef(pred.ravel(), truth.ravel())[0, 1]
    mae = np.abs(pred - truth).mean()
    # measured: r 0.962, MAE 0.022 with seeds 0 and 1 (0.931 / 0.029 without the signature
    # update of 100 bulks, 11 types; the head alone: MAE 0.038); the seed's bar is 0.85 / 0.05
    assert r > 0.95, r
    assert mae < 0.027, mae
    # the signature fit generalises to held-out cells better than the head alone
    assert mae < np.abs(head - truth).mean()
    losses = model.history["train_loss"].to_numpy(dtype=float).ravel()
    assert np.isfinite(losses).all()
