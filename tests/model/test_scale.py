"""The reference is read in blocks, never copied whole: same results as whole-matrix code.

The oracle of each test is the code that copied the reference (``type_means`` of
``normalize_cpm`` of the columns copied out); the blocks are made tiny so that every pass
crosses many of them, and every storage the reference can have is covered (CSR, CSC,
dense, and backed CSR/CSC/dense read from an ``.h5ad``).
"""

from __future__ import annotations

import tracemalloc

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import hpvade
import hpvade.pp._chunks as chunks
from hpvade.pp import _scan
from hpvade.pp._genes import (
    _columns,
    _columns_and_row_sums,
    _row_sums,
    normalize_cpm,
    type_means,
    type_profiles,
)

STORAGES = ["csr", "csc", "dense", "backed-csr", "backed-csc", "backed-dense"]


def _reference(tmp_path, storage: str) -> tuple[ad.AnnData, ad.AnnData]:
    """The reference in ``storage``, and the same in memory."""
    ref, _ = hpvade.data.synthetic(n_genes=300, seed=3)
    X = sparse.csr_matrix(ref.X)
    if storage.endswith("csc"):
        ref.X = sparse.csc_matrix(X)
    elif storage.endswith("dense"):
        ref.X = X.toarray()
    if storage.startswith("backed"):
        ref.write_h5ad(tmp_path / "ref.h5ad")
        return ad.read_h5ad(tmp_path / "ref.h5ad", backed="r"), ref
    return ref, ref


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 97 stored values, so that passes cross rows, columns and blocks."""
    monkeypatch.setattr(chunks, "BLOCK_NNZ", 97)


def _old_select(adata, n_genes):
    """select_genes as it was: the candidate columns copied out, then whole-matrix means."""
    X = _columns(adata.X, np.arange(adata.n_vars))
    detected = np.flatnonzero(np.asarray((X > 0).sum(axis=0)).ravel() >= 3)
    labels = adata.obs["cell_type"].astype("category")
    logx = normalize_cpm(X[:, detected])
    logx.data = np.log1p(logx.data)
    return detected, type_means(logx, labels.cat.codes.to_numpy(), len(labels.cat.categories))


@pytest.mark.parametrize("storage", STORAGES)
def test_blocks_match_the_whole_matrix(tmp_path, small_blocks, storage):
    ref, mem = _reference(tmp_path, storage)
    X = ref.X
    dense = mem.X.toarray() if sparse.issparse(mem.X) else np.asarray(mem.X)
    codes = ref.obs["cell_type"].cat.codes.to_numpy()

    np.testing.assert_array_equal(chunks.column_counts(X), (dense > 0).sum(axis=0))
    np.testing.assert_array_equal(_row_sums(X), dense.sum(axis=1))
    cols = np.array([7, 3, 250, 0, 42])  # any order
    np.testing.assert_array_equal(_columns(X, cols).toarray(), dense[:, cols])
    np.testing.assert_array_equal(_columns(X, [5, 5, 1]).toarray(), dense[:, [5, 5, 1]])
    for idx in (cols, np.array([5, 5, 1])):  # one read for the columns and the row sums
        fused, totals = _columns_and_row_sums(X, idx)
        np.testing.assert_array_equal(fused.toarray(), dense[:, idx])
        np.testing.assert_array_equal(totals, dense.sum(axis=1))
    np.testing.assert_array_equal(_scan._scan(X).row_sums, dense.sum(axis=1))

    detected, means = _old_select(mem, 100)
    new = chunks.type_cpm_means(X, codes, 4, cols=detected, log1p=True)
    np.testing.assert_allclose(new, means, rtol=1e-12, atol=1e-12)
    genes = hpvade.pp.select_genes(ref, labels_key="cell_type", n_genes=100)
    assert genes == hpvade.pp.select_genes(mem, labels_key="cell_type", n_genes=100)

    Xg = _columns(X, cols)
    sig, mrna = type_profiles(Xg, _row_sums(X), codes, 4)
    keep = dense[:, cols].sum(axis=1) > 0
    old = type_means(normalize_cpm(sparse.csr_matrix(dense[keep][:, cols])), codes[keep], 4).T
    old = old * (1e6 / old.sum(axis=0))
    np.testing.assert_allclose(sig, old, rtol=1e-12)
    assert mrna.shape == (4,)
    if ref.isbacked:
        ref.file.close()


def test_gene_selection_does_not_copy_the_reference(monkeypatch):
    """select_genes and type_profiles hold a small share of the matrix, whatever its size."""
    monkeypatch.setattr(chunks, "BLOCK_NNZ", 1 << 14)
    rng = np.random.default_rng(0)
    n_cells, n_genes = 20_000, 2_000
    X = sparse.random(n_cells, n_genes, density=0.1, format="csr", dtype=np.float32, rng=rng)
    X.data = np.ceil(X.data * 10)
    ref = ad.AnnData(
        X,
        obs=pd.DataFrame({"cell_type": pd.Categorical(rng.integers(5, size=n_cells).astype(str))}),
    )
    ref.obs_names = [f"c{i}" for i in range(n_cells)]
    size = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes  # 32 MB
    tracemalloc.start()
    genes = hpvade.pp.select_genes(ref, labels_key="cell_type", n_genes=200)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(genes) == 200
    # it was three copies of the matrix and more (one float64): now blocks and per-cell sums
    assert peak < 0.15 * size, (peak, size)

    Xg = _columns(X, ref.var_names.get_indexer(genes))
    tracemalloc.start()
    type_profiles(Xg, _row_sums(X), ref.obs["cell_type"].cat.codes.to_numpy(), 5)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # it was a row subset, a float64 product and a float32 copy of Xg: now blocks and
    # per-cell sums (1.7 MB of Xg's 3.3 MB here)
    assert peak < 0.6 * (Xg.data.nbytes + Xg.indices.nbytes + Xg.indptr.nbytes), peak
