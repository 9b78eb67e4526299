"""Does the signature update (step 3 of the refinement) hurt when the reference lacks a type?

A bulk cohort can hold cells the reference does not (neutrophils in blood, tumour cells).
The update regresses each gene on the fractions of the known types, so a missing type's
expression could leak into the profiles of the types it co-varies with. This script draws
60 pseudo-bulks of 500 cells (Dirichlet(1) over the 9 types) from the held-out half of
pbmc3k, removes one type at a time from the other half (the reference), and fits the bulks
with steps 1-2 and with steps 1-3 of ``get_proportions``' refinement (step 2 without
step 1's gene weights as its prior, as ``hpvade_anchor``: the default when this was
measured). The signature is
the reference's plain type means (``type_profiles``, as ``HPVADE`` starts from) on 1,000
genes chosen by ``hpvade.pp.select_genes`` (no trained model: the update is what is
measured). Scores are over the reference's types,
against the bulks' true cell fractions (which the missing type keeps below 1).

    python benchmarks/adapt_missing_type.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    import anndata as ad

    import hpvade.benchmark as bm
    from hpvade.model import adapt_signature, refine_proportions
    from hpvade.model._refine import robust_fit
    from hpvade.pp import select_genes
    from hpvade.pp._genes import _columns, _row_sums, match_genes, type_profiles

    full = ad.read_h5ad(a.data / "pbmc" / "ref_pbmc3k_hvg2000_counts.h5ad")
    train, held = bm.split_reference(full, labels_key="cell_type", seed=a.seed)
    bulk, truth = bm.pseudobulk(
        held, labels_key="cell_type", n_samples=60, n_cells=500, alpha=1.0, seed=a.seed
    )
    print("| type missing from the reference | steps 1-2 | steps 1-3 (default) |")
    print("|---|---|---|")
    for missing in [None, "FCGR3A+ Mono", "CD14+ Mono", "NK", "B"]:
        ref = train[train.obs["cell_type"] != missing].copy()
        ref.obs["cell_type"] = ref.obs["cell_type"].astype(str).astype("category")
        types = list(ref.obs["cell_type"].cat.categories)
        genes = select_genes(ref, labels_key="cell_type", bulk_genes=list(bulk.var_names))
        codes = ref.obs["cell_type"].cat.codes.to_numpy()
        x = _columns(ref.X, match_genes(ref.var_names, genes)[0])
        sig, mrna = type_profiles(x, _row_sums(ref.X), codes, len(types))
        b = _columns(bulk.X, match_genes(bulk.var_names, genes)[0]).toarray().astype(np.float64)
        cpm = 1e6 * b / b.sum(axis=1, keepdims=True)
        flat = np.full((len(cpm), len(types)), 1.0 / len(types))
        two, _ = refine_proportions(cpm, sig, mrna, robust_fit(cpm, sig, mrna, flat))
        three, _ = refine_proportions(cpm, adapt_signature(cpm, sig, mrna, two), mrna, two)
        cells = []
        for frac in (two, three):
            pred = pd.DataFrame(frac, index=bulk.obs_names, columns=types)
            m = bm.evaluate(pred, truth[types])
            cells.append(f"{m['pearson_mean']:.3f} / {m['ccc_overall']:.2f} / {m['mae']:.3f}")
        print(f"| {missing or 'none'} | {cells[0]} | {cells[1]} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
