"""Held-out pseudo-bulks: a reference split and mixtures with known cell fractions."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

__all__ = ["pseudobulk", "split_reference"]


def split_reference(
    adata: AnnData,
    *,
    labels_key: str = "cell_type",
    holdout_fraction: float = 0.5,
    seed: int = 0,
) -> tuple[AnnData, AnnData]:
    """Split a labelled reference into a training and a held-out part, per cell type.

    Within each cell type, ``round(holdout_fraction * n)`` cells chosen at random are held
    out, but at least one cell of every type with two or more cells stays on each side.

    Parameters
    ----------
    adata
        Labelled reference (cells x genes).
    labels_key
        Column of ``adata.obs`` with the cell-type labels.
    holdout_fraction
        Fraction of each type's cells held out, in (0, 1).
    seed
        Seed of the random split.

    Returns
    -------
    ``(train, heldout)``, two AnnData copies whose cells partition ``adata``'s, each in
    the original order.

    Examples
    --------
    >>> import anndata as ad, numpy as np, pandas as pd
    >>> from hpvade.benchmark import split_reference
    >>> obs = pd.DataFrame({"cell_type": list("aaaabb")}, index=[f"c{i}" for i in range(6)])
    >>> train, held = split_reference(ad.AnnData(np.ones((6, 2)), obs=obs))
    >>> train.n_obs, held.n_obs
    (3, 3)
    """
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"`holdout_fraction` must lie in (0, 1), got {holdout_fraction}.")
    if labels_key not in adata.obs:
        raise KeyError(f"{labels_key!r} is not a column of `adata.obs`.")
    rng = np.random.default_rng(seed)
    labels = adata.obs[labels_key].astype(str).to_numpy()
    held = np.zeros(adata.n_obs, dtype=bool)
    for lab in pd.unique(labels):
        idx = np.flatnonzero(labels == lab)
        k = round(holdout_fraction * idx.size)
        if idx.size >= 2:
            k = min(max(k, 1), idx.size - 1)
        held[rng.choice(idx, size=k, replace=False)] = True
    return adata[~held].copy(), adata[held].copy()


def pseudobulk(
    adata: AnnData,
    *,
    labels_key: str = "cell_type",
    n_samples: int = 50,
    n_cells: int = 500,
    alpha: float = 1.0,
    seed: int = 0,
) -> tuple[AnnData, pd.DataFrame]:
    """Sum random cells of a labelled reference into pseudo-bulks with known cell fractions.

    For each sample, proportions are drawn from a symmetric Dirichlet(``alpha``) over the
    cell types, turned into cell numbers summing to ``n_cells`` (multinomial), and that
    many cells of each type are drawn with replacement; their counts are summed with one
    sparse matrix product.

    Parameters
    ----------
    adata
        Labelled cells, counts in ``X``.
    labels_key
        Column of ``adata.obs`` with the cell-type labels.
    n_samples
        Number of pseudo-bulks.
    n_cells
        Cells per pseudo-bulk.
    alpha
        Concentration of the Dirichlet; below 1 gives sparse mixtures.
    seed
        Seed of the draws.

    Returns
    -------
    ``(bulk, truth)``: an AnnData of summed counts (samples x ``adata.var_names``, with
    the fractions also in ``obs["true_<type>"]``) and the realised cell fractions
    (samples x types, rows sum to 1).

    Examples
    --------
    >>> import anndata as ad, numpy as np, pandas as pd
    >>> from hpvade.benchmark import pseudobulk
    >>> obs = pd.DataFrame({"cell_type": list("aabb")}, index=list("wxyz"))
    >>> bulk, truth = pseudobulk(ad.AnnData(np.eye(4), obs=obs), n_samples=3, n_cells=10)
    >>> bulk.shape, truth.sum(axis=1).round(6).tolist()
    ((3, 4), [1.0, 1.0, 1.0])
    """
    import anndata as ad

    if labels_key not in adata.obs:
        raise KeyError(f"{labels_key!r} is not a column of `adata.obs`.")
    rng = np.random.default_rng(seed)
    labels = adata.obs[labels_key].astype(str).to_numpy()
    types = sorted(pd.unique(labels))
    members = [np.flatnonzero(labels == t) for t in types]
    props = rng.dirichlet(np.full(len(types), alpha), size=n_samples)
    counts = np.vstack([rng.multinomial(n_cells, p) for p in props])
    rows, cols = [], []
    for j, idx in enumerate(members):
        for i in range(n_samples):
            k = counts[i, j]
            if k:
                rows.append(np.full(k, i))
                cols.append(rng.choice(idx, size=k, replace=True))
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    w = sp.csr_matrix((np.ones(r.size), (r, c)), shape=(n_samples, adata.n_obs))
    x = w @ (adata.X if sp.issparse(adata.X) else sp.csr_matrix(adata.X))
    names = [f"pb_{i:03d}" for i in range(n_samples)]
    truth = pd.DataFrame(counts / n_cells, index=names, columns=types)
    obs = truth.add_prefix("true_")
    bulk = ad.AnnData(sp.csr_matrix(x, dtype=np.float32), obs=obs)
    bulk.var_names = adata.var_names.copy()
    logger.debug("pseudobulk: %d samples x %d genes from %d types", *bulk.shape, len(types))
    return bulk, truth
