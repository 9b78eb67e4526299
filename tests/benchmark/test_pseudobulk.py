from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from hpvade.benchmark import pseudobulk, split_reference, truth_from_obs


@pytest.fixture
def ref():
    rng = np.random.default_rng(1)
    labels = np.repeat(["A", "B", "C"], [10, 6, 2])
    obs = pd.DataFrame({"cell_type": rng.permutation(labels)}, index=[f"c{i}" for i in range(18)])
    # each type expresses its own gene, one count per cell, so mixtures are exact
    x = np.zeros((18, 3), dtype=np.float32)
    for j, t in enumerate(["A", "B", "C"]):
        x[obs["cell_type"].to_numpy() == t, j] = 1.0
    return ad.AnnData(sp.csr_matrix(x), obs=obs, var=pd.DataFrame(index=["gA", "gB", "gC"]))


def test_split_reference(ref):
    train, held = split_reference(ref, holdout_fraction=0.5, seed=0)
    assert train.n_obs + held.n_obs == ref.n_obs
    assert set(train.obs_names).isdisjoint(held.obs_names)
    assert held.obs["cell_type"].value_counts().to_dict() == {"A": 5, "B": 3, "C": 1}
    assert train.obs["cell_type"].value_counts().to_dict() == {"A": 5, "B": 3, "C": 1}
    again, _ = split_reference(ref, holdout_fraction=0.5, seed=0)
    assert list(again.obs_names) == list(train.obs_names)
    with pytest.raises(ValueError, match="holdout_fraction"):
        split_reference(ref, holdout_fraction=1.0)
    with pytest.raises(KeyError):
        split_reference(ref, labels_key="nope")


def test_pseudobulk_exact_fractions(ref):
    bulk, truth = pseudobulk(ref, n_samples=7, n_cells=40, seed=3)
    assert bulk.shape == (7, 3)
    assert list(truth.columns) == ["A", "B", "C"]
    np.testing.assert_allclose(truth.sum(axis=1), 1.0)
    # one count per cell in its type's gene: summed counts / n_cells == cell fractions
    x = bulk.X.toarray() if sp.issparse(bulk.X) else bulk.X
    np.testing.assert_allclose(x / 40, truth.to_numpy(), atol=1e-6)
    pd.testing.assert_frame_equal(truth_from_obs(bulk), truth, check_names=False)
    bulk2, truth2 = pseudobulk(ref, n_samples=7, n_cells=40, seed=3)
    pd.testing.assert_frame_equal(truth, truth2)
    assert list(bulk.var_names) == ["gA", "gB", "gC"]
