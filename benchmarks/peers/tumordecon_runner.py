"""DeconRNASeq and CIBERSORT as packaged in TumorDecon 1.1.1, with their defaults.

VARIANT is ``deconrnaseq`` or ``cibersort``. Signature: per-type mean CPM of the
reference on the union of the top 50 marker genes per type (the same markers as the
nu-SVR baseline); mixture: CPM (counts) or TPM as given. Both on the linear scale, with
TumorDecon's default min-max scaling (its CIBERSORT tries nu in {0.25, 0.5, 0.75}).
DeconRNASeq starts its optimiser at a random point: the global numpy seed is fixed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import args, cpm, markers, type_means, write


def main() -> None:
    d, out, variant = args()
    types = d["types"]
    genes = d["genes"].astype(str)
    samples = d["samples"].astype(str)
    sig = type_means(cpm(d["ref_X"]), d["ref_labels"], types)
    g = markers(sig, 50)
    sig_df = pd.DataFrame(sig[:, g].T, index=genes[g], columns=types)
    bulk = d["bulk_X"].astype(float)
    if d["params"]["bulk_units"] == "counts":
        bulk = cpm(bulk)
    rna_df = pd.DataFrame(bulk.T, index=genes, columns=samples)
    if variant == "deconrnaseq":
        from TumorDecon.DeconRNASeq import DeconRNASeq_main

        res = DeconRNASeq_main(rna_df, sig_df)
    elif variant == "cibersort":
        from TumorDecon.cibersort import cibersort_main

        res = cibersort_main(rna_df, sig_df)
    else:
        raise SystemExit(f"unknown variant {variant!r}")
    if not set(types) <= set(res.columns):  # documented as types x samples
        res = res.T
    res = res.loc[samples, types].astype(float)
    write(out, res.to_numpy(), samples, types)


if __name__ == "__main__":
    np.seterr(all="ignore")
    np.random.seed(0)  # noqa: NPY002 - DeconRNASeq starts SLSQP from np.random.rand
    main()
