from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

from .._constants import CPM_SCALE
from ._chunks import column_counts, columns_csr, is_backed, row_sums, type_cpm_means

if TYPE_CHECKING:
    from collections.abc import Sequence

    from anndata import AnnData

logger = logging.getLogger(__name__)


def _get_matrix(adata: AnnData, layer: str | None):
    """Return ``adata.X`` or ``adata.layers[layer]`` without copying."""
    if layer is None:
        return adata.X
    if layer not in adata.layers:
        raise KeyError(
            f"Layer {layer!r} is not in adata.layers (available: {list(adata.layers.keys())}). "
            "Pass layer=None to use adata.X."
        )
    return adata.layers[layer]


def _columns(X, idx: np.ndarray) -> sparse.csr_matrix:
    """Columns ``idx`` of ``X`` as a float32 CSR matrix (the full matrix is never densified).

    A backed or dense matrix is read in blocks of rows (no dense copy of the columns).
    """
    if sparse.issparse(X):
        return sparse.csr_matrix(X[:, idx], dtype=np.float32)
    return _read_columns(X, idx, row_totals=False)


def _read_columns(X, idx: np.ndarray, *, row_totals: bool):
    """:func:`~hpvade.pp._chunks.columns_csr` of ``idx`` in their order, repeats allowed."""
    idx = np.asarray(idx)
    uniq, inverse = np.unique(idx, return_inverse=True)
    if uniq.size == idx.size:
        return columns_csr(X, idx, row_totals=row_totals)
    out = columns_csr(X, uniq, row_totals=row_totals)  # repeated columns: read once
    return (out[0][:, inverse], out[1]) if row_totals else out[:, inverse]


def _row_sums(X) -> np.ndarray:
    if is_backed(X):
        return row_sums(X)
    return np.asarray(X.sum(axis=1), dtype=np.float64).ravel()


def _columns_and_row_sums(X, idx: np.ndarray) -> tuple[sparse.csr_matrix, np.ndarray]:
    """``(_columns(X, idx), _row_sums(X))``; a backed matrix is read twice for both, not thrice."""
    if not is_backed(X):
        return _columns(X, idx), _row_sums(X)
    return _read_columns(X, idx, row_totals=True)


def normalize_cpm(X, *, target_sum: float = CPM_SCALE) -> np.ndarray | sparse.csr_matrix:
    """Scale each row of ``X`` to sum to ``target_sum`` (counts per million by default).

    Rows that sum to zero stay zero.

    Parameters
    ----------
    X
        Dense array or sparse matrix, observations x genes.
    target_sum
        Sum of each row after scaling.

    Returns
    -------
    numpy.ndarray | scipy.sparse.csr_matrix
        A new matrix of the same kind (dense float32 array, or CSR float32).

    Examples
    --------
    >>> import numpy as np, hpvade
    >>> hpvade.pp.normalize_cpm(np.array([[1.0, 3.0]]))
    array([[250000., 750000.]], dtype=float32)
    """
    totals = _row_sums(X)
    scale = np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
    if sparse.issparse(X):
        return sparse.csr_matrix(sparse.diags(scale) @ X, dtype=np.float32)
    return (np.asarray(X, dtype=np.float64) * scale[:, None]).astype(np.float32)


def _type_indicator(codes: np.ndarray, n_types: int) -> sparse.csr_matrix:
    """Sparse (types x cells) matrix whose rows average the cells of each type."""
    n = codes.shape[0]
    ind = sparse.csr_matrix(
        (np.ones(n, dtype=np.float64), (codes, np.arange(n))), shape=(n_types, n)
    )
    counts = np.asarray(ind.sum(axis=1)).ravel()
    return sparse.diags(1.0 / np.maximum(counts, 1)) @ ind


def type_means(X, codes: np.ndarray, n_types: int) -> np.ndarray:
    """Per-type mean of the rows of ``X`` (types x genes, dense float64)."""
    out = _type_indicator(codes, n_types) @ X
    if sparse.issparse(out):
        out = out.toarray()
    return np.asarray(out, dtype=np.float64)


def type_profiles(
    X, libsize: np.ndarray, codes: np.ndarray, n_types: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each type's mean CPM profile and mean library size: a signature and mRNA contents.

    Parameters
    ----------
    X
        Counts of the reference's cells over the chosen genes, cells x genes.
    libsize
        Each cell's library size (over all the reference's genes).
    codes
        Cell-type code of each cell, ``0 .. n_types - 1``.
    n_types
        Number of cell types.

    Returns
    -------
    signature : numpy.ndarray
        Genes x types, the mean CPM of the cells with counts, each non-empty column
        rescaled to sum to 1e6.
    mrna : numpy.ndarray
        Mean library size per type; a type without cells takes the median of the others.
    """
    # one pass over the rows' values in blocks: no copy of X, however many cells
    signature = type_cpm_means(X, codes, n_types, drop_empty=True, target_sum=CPM_SCALE).T  # G x C
    col = signature.sum(axis=0)
    signature = signature * (CPM_SCALE / np.where(col > 0, col, 1.0))
    mrna = type_means(np.asarray(libsize, dtype=np.float64)[:, None], codes, n_types).ravel()
    mrna = np.where(mrna > 0, mrna, np.median(mrna[mrna > 0]))
    return signature, mrna


def select_genes(
    adata: AnnData,
    *,
    labels_key: str,
    layer: str | None = None,
    n_genes: int = 1000,
    bulk_genes: Sequence[str] | None = None,
    min_cells: int = 3,
) -> list[str]:
    """Choose the genes a deconvolution model works on.

    Genes are first restricted to those present in the bulk (when ``bulk_genes`` is given) and
    detected in at least ``min_cells`` reference cells. If more than ``n_genes`` remain, half
    of the budget goes to cell-type markers (for each type, the genes whose mean log-CPM most
    exceeds the mean of the other types, taken in turn across types) and the rest to the genes
    whose mean log-CPM varies most between types. Gene order follows the reference.

    Parameters
    ----------
    adata
        Reference with raw counts, cells x genes.
    labels_key
        Column of ``adata.obs`` with the cell types.
    layer
        Layer with the counts; ``None`` uses ``adata.X``.
    n_genes
        Largest number of genes returned.
    bulk_genes
        Gene names of the bulk samples to be deconvolved, matched by name.
    min_cells
        A gene must be detected in at least this many reference cells.

    Returns
    -------
    list[str]
        The selected gene names, in the reference's order.

    Examples
    --------
    >>> import hpvade
    >>> ref, bulk = hpvade.data.synthetic(n_genes=300, seed=0)
    >>> genes = hpvade.pp.select_genes(ref, labels_key="cell_type", n_genes=100)
    >>> len(genes)
    100
    """
    if n_genes < 1:
        raise ValueError(f"n_genes must be a positive integer, got {n_genes}.")
    var_names = pd.Index(adata.var_names)
    shared = np.ones(adata.n_vars, dtype=bool)
    if bulk_genes is not None:
        shared = var_names.isin(pd.Index(bulk_genes))
    # passes over the reference's values in blocks (in memory or backed): never copied whole
    M = _get_matrix(adata, layer)
    detected = column_counts(M) >= min(min_cells, adata.n_obs)
    candidates = np.flatnonzero(shared & detected)
    if candidates.size == 0:
        raise ValueError(
            "No gene is both shared with the bulk and detected in the reference "
            f"(reference genes e.g. {list(var_names[:5])}, bulk genes e.g. "
            f"{list(bulk_genes[:5]) if bulk_genes is not None else []}). Check that both use "
            "the same gene identifiers (symbols or Ensembl IDs)."
        )
    if candidates.size <= n_genes:
        return list(var_names[candidates])

    labels = adata.obs[labels_key].astype("category")
    codes = labels.cat.codes.to_numpy()
    n_types = len(labels.cat.categories)
    # mean log1p-CPM per type (CPM over the candidates), types x candidates
    means = type_cpm_means(M, codes, n_types, cols=candidates, log1p=True, target_sum=CPM_SCALE)

    chosen = np.zeros(candidates.size, dtype=bool)
    n_markers = n_genes // 2
    if n_types > 1:
        total = means.sum(axis=0)
        others = (total[None, :] - means) / (n_types - 1)
        order = np.argsort(-(means - others), axis=1, kind="stable")  # types x genes
        # round-robin over types (best marker of each type, then the second best, ...) so
        # that rare types get markers too; first occurrences keep that order
        flat = order.T.ravel()
        _, first = np.unique(flat, return_index=True)
        chosen[flat[np.sort(first)][:n_markers]] = True
    spread = means.var(axis=0)
    spread[chosen] = -np.inf
    n_rest = n_genes - int(chosen.sum())
    chosen[np.argsort(-spread, kind="stable")[:n_rest]] = True
    return list(var_names[candidates[np.sort(np.flatnonzero(chosen))]])


def match_genes(var_names: Sequence[str], genes: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Locate ``genes`` in ``var_names`` by name.

    Parameters
    ----------
    var_names
        Gene names of the data (e.g. a bulk's ``var_names``), in any order.
    genes
        Gene names the model needs, in the model's order.

    Returns
    -------
    positions : numpy.ndarray
        The position of each of ``genes`` in ``var_names`` (-1 where absent).
    missing : list[str]
        The absent genes.
    """
    index = pd.Index(var_names)
    if not index.is_unique:
        dup = index[index.duplicated()].unique()[:5].tolist()
        raise ValueError(
            f"Gene names must be unique; duplicated e.g. {dup}. "
            "Call adata.var_names_make_unique() on a copy first."
        )
    positions = index.get_indexer(pd.Index(genes))
    missing = [g for g, p in zip(genes, positions, strict=True) if p < 0]
    return positions, missing
