from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse


def synthetic(
    *,
    n_types: int = 4,
    n_cells_per_type: int = 150,
    n_genes: int = 400,
    n_markers: int = 15,
    n_bulk: int = 24,
    bulk_depth: float = 5e6,
    mrna_content: tuple[float, ...] | None = None,
    seed: int = 0,
) -> tuple[AnnData, AnnData]:
    """Simulate a labelled single-cell reference and bulks with known cell-type fractions.

    Cell types share a log-normal base profile; each type has ``n_markers`` genes raised 3-8
    fold. Cells are gamma-Poisson (negative binomial) counts whose library size scales with the
    type's mRNA content. A bulk mixes the types' expected profiles in proportion to their
    mRNA (cell fraction x mRNA content) and draws Poisson counts at ``bulk_depth``.

    Parameters
    ----------
    n_types
        Number of cell types (named ``type_0``, ``type_1``, ...).
    n_cells_per_type
        Reference cells per type.
    n_genes
        Number of genes.
    n_markers
        Marker genes per type.
    n_bulk
        Number of bulk samples.
    bulk_depth
        Total counts of each bulk sample.
    mrna_content
        Relative mRNA content (library size) per type; default ``1, 1.5, 2, ...``.
    seed
        Random seed.

    Returns
    -------
    ref
        Cells x genes, raw counts (CSR) in ``X``, types in ``obs["cell_type"]``.
    bulk
        Samples x genes, counts in ``X``; true cell fractions in ``obs["true_<type>"]`` and in
        ``obsm["true_proportions"]`` (DataFrame).

    Examples
    --------
    >>> import hpvade
    >>> ref, bulk = hpvade.data.synthetic(seed=0)
    >>> ref.n_obs, bulk.n_obs
    (600, 24)
    """
    rng = np.random.default_rng(seed)
    if n_types * n_markers > n_genes:
        raise ValueError("n_types * n_markers must not exceed n_genes.")
    types = [f"type_{i}" for i in range(n_types)]
    genes = [f"gene_{i}" for i in range(n_genes)]
    size = np.asarray(mrna_content if mrna_content is not None else 1 + 0.5 * np.arange(n_types))
    base = rng.lognormal(mean=0.0, sigma=1.0, size=n_genes)
    profiles = np.tile(base, (n_types, 1)) * rng.lognormal(0.0, 0.2, size=(n_types, n_genes))
    marker_genes = rng.permutation(n_genes)[: n_types * n_markers].reshape(n_types, n_markers)
    for t in range(n_types):
        profiles[t, marker_genes[t]] *= rng.uniform(3, 8, size=n_markers)
    profiles /= profiles.sum(axis=1, keepdims=True)

    codes = np.repeat(np.arange(n_types), n_cells_per_type)
    lib = 1500.0 * size[codes] * rng.lognormal(0.0, 0.3, size=codes.size)
    mu = lib[:, None] * profiles[codes]
    theta = 5.0
    counts = rng.poisson(rng.gamma(theta, mu / theta)).astype(np.float32)
    ref = AnnData(
        X=sparse.csr_matrix(counts),
        obs=pd.DataFrame(
            {"cell_type": pd.Categorical([types[c] for c in codes], categories=types)},
            index=[f"cell_{i}" for i in range(codes.size)],
        ),
        var=pd.DataFrame(index=genes),
    )

    frac = rng.dirichlet(np.ones(n_types), size=n_bulk)
    mrna = frac * size
    mrna /= mrna.sum(axis=1, keepdims=True)
    bulk_counts = rng.poisson(bulk_depth * (mrna @ profiles)).astype(np.float32)
    obs_names = [f"bulk_{i}" for i in range(n_bulk)]
    truth = pd.DataFrame(frac, index=obs_names, columns=types)
    bulk = AnnData(
        X=bulk_counts,
        obs=pd.DataFrame({f"true_{t}": frac[:, i] for i, t in enumerate(types)}, index=obs_names),
        var=pd.DataFrame(index=genes),
    )
    bulk.obsm["true_proportions"] = truth
    return ref, bulk
