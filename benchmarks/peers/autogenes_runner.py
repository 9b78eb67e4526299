"""AutoGeneS (autogenes 1.0.4, Aliee & Theis 2021), following its tutorial.

Centroids: per-type means of normalised cells (counts per 10k, the tutorial's scale)
over the 2,000 genes with the largest variance of log1p(CPM) across cells (the
tutorial's HVG preselection, without scanpy); bulk: counts per 10k (from counts or TPM),
linear scale. ``optimize(mode="fixed",
nfeatures=400)``, default ``select()``, ``deconvolve(model="nusvr")``, coefficients
clipped at 0 and renormalised. Reduced for the 2-core machine: 100 generations instead
of the tutorial's 5,000.
"""

from __future__ import annotations

import autogenes as ag
import numpy as np
import pandas as pd
from _common import args, cpm, type_means, write

N_HVG, N_FEATURES, NGEN = 2000, 400, 100


def main() -> None:
    d, out, _ = args()
    types = d["types"]
    genes = d["genes"].astype(str)
    x = cpm(d["ref_X"]) / 100  # counts per 10k, as the tutorial's normalize_total
    hv = np.sort(np.argsort(-np.log1p(x).var(axis=0))[:N_HVG])
    centroids = pd.DataFrame(
        type_means(x[:, hv], d["ref_labels"], types), index=types, columns=genes[hv]
    )
    bulk = d["bulk_X"].astype(float)
    if d["params"]["bulk_units"] == "counts":
        bulk = cpm(bulk)
    bulk = bulk / 100
    bulk = pd.DataFrame(bulk, index=d["samples"].astype(str), columns=genes)
    ag.init(centroids)
    ag.optimize(ngen=NGEN, seed=0, nfeatures=min(N_FEATURES, len(hv)), mode="fixed", verbose=False)
    coef = ag.deconvolve(bulk, model="nusvr")
    write(out, np.asarray(coef), bulk.index, types)


if __name__ == "__main__":
    main()
