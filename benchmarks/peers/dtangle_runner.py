"""dtangle 0.1.1 (Hunt et al. 2019): log2 expression, pure samples from pooled cells.

Reference: each type's cells summed into up to 5 pseudo-pure pools, CPM, log2(x + 1);
bulk: CPM (counts) or TPM as given, log2(x + 1). gamma for RNA-seq, default markers
(ratio method, top 10% of each type's candidates).
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
from _common import args, cpm, pools, write
from dtangle import deconvolut


def main() -> None:
    d, out, _ = args()
    types = d["types"]
    genes = d["genes"].astype(str)
    px, plab = pools(d["ref_X"], d["ref_labels"], types, n_pools=5)
    ref = ad.AnnData(
        np.log2(cpm(px) + 1.0),
        obs=pd.DataFrame({"cell_type": plab}, index=[f"pool{i}" for i in range(len(plab))]),
        var=pd.DataFrame(index=genes),
    )
    bulk = d["bulk_X"].astype(float)
    if d["params"]["bulk_units"] == "counts":
        bulk = cpm(bulk)
    y = ad.AnnData(
        np.log2(bulk + 1.0),
        obs=pd.DataFrame(index=d["samples"].astype(str)),
        var=pd.DataFrame(index=genes),
    )
    deconvolut(y, ref, "cell_type", data_type="rna-seq")
    est = y.obsm["dtangle"][types]
    write(out, est.to_numpy(), d["samples"], types)


if __name__ == "__main__":
    main()
