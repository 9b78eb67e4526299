"""Rectangle (rectanglepy 1.7.0, Hippen et al.; scverse): hierarchical signature deconvolution.

Reference: the single cells' raw counts with their types, as an AnnData; bulk: as given
(counts or TPM, samples x genes); Rectangle scales each bulk to one million over the
shared genes itself. ``rectanglepy.rectangle`` with its defaults (bootstrapped DESeq2
markers with the cut-off grid search, clustering of similar types, mRNA-bias correction,
unknown-content estimation), except that pydeseq2's processes are capped at the
harness's thread count (it takes every CPU otherwise; its results do not depend on it).

Rectangle returns cell fractions plus an ``Unknown`` fraction (content that no reference
type explains). The ``Unknown`` column is dropped and the reference's types renormalised
to sum to one, as the truth is scored over the reference's types. Where the truth is
mRNA fractions (``truth_kind == "mrna"``, CellBench), Rectangle's mRNA-bias correction is
switched off, so that it returns mRNA fractions rather than cell fractions.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import rectanglepy
import rectanglepy.pp.create_signature as rcs
from _common import args, threads, write


def _cap_processes(n: int) -> None:
    """Make every pydeseq2 ``DefaultInference`` of Rectangle use at most ``n`` processes."""
    base = rcs.DefaultInference

    def capped(*a, n_cpus=None, **kw):
        return base(*a, n_cpus=min(n_cpus or n, n), **kw)

    rcs.DefaultInference = capped


def main() -> None:
    d, out, _ = args()
    nt = threads()
    _cap_processes(nt)
    types = d["types"]
    genes = d["genes"].astype(str)
    samples = d["samples"].astype(str)
    ref = ad.AnnData(
        np.rint(d["ref_X"]).astype(np.float64),
        obs=pd.DataFrame(
            {"cell_type": d["ref_labels"].astype(str)},
            index=[f"cell{i}" for i in range(len(d["ref_labels"]))],
        ),
        var=pd.DataFrame(index=genes),
    )
    bulk = pd.DataFrame(d["bulk_X"].astype(np.float64), index=samples, columns=genes)
    mrna = d["params"].get("truth_kind") == "mrna"
    est, _ = rectanglepy.rectangle(ref, bulk, "cell_type", correct_mrna_bias=not mrna, n_cpus=nt)
    est = est.drop(columns=["Unknown"], errors="ignore")
    missing = [t for t in types if t not in est.columns]
    if missing:
        raise RuntimeError(f"Rectangle returned no fraction for {missing}: {list(est.columns)}")
    est = est.loc[samples, types]
    write(out, est.to_numpy(), samples, types)  # renormalises each row over the types


if __name__ == "__main__":
    main()
