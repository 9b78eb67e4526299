"""hpvade through its public API, with its defaults (run with hpvade's interpreter).

Reference: raw counts and labels; bulk: counts or TPM as given (hpvade brings both to
CPM itself). ``HPVADE(ref)``, ``train(bulk=bulk)`` with the default number of epochs,
``get_proportions(bulk, kind=...)``: cell fractions where the truth counts cells (flow
cytometry, pseudo-bulks), mRNA fractions where it measures RNA (CellBench mixtures).
The model is not tuned to these sets.
"""

from __future__ import annotations

import logging
import os
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from _common import args, write


def main() -> None:
    d, out, _ = args()
    import scvi

    import hpvade

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    warnings.filterwarnings("ignore")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    scvi.settings.seed = 0
    genes = pd.Index(d["genes"].astype(str))
    ref = ad.AnnData(
        sp.csr_matrix(d["ref_X"].astype(np.float32)),
        obs=pd.DataFrame(
            {"cell_type": pd.Categorical(d["ref_labels"])},
            index=[f"cell{i}" for i in range(len(d["ref_labels"]))],
        ),
        var=pd.DataFrame(index=genes),
    )
    bulk = ad.AnnData(
        d["bulk_X"].astype(np.float32),
        obs=pd.DataFrame(index=d["samples"].astype(str)),
        var=pd.DataFrame(index=genes),
    )
    hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
    model = hpvade.HPVADE(ref)
    model.train(bulk=bulk, accelerator="cpu", enable_progress_bar=False)
    kind = "mrna" if d["params"].get("truth_kind") == "mrna" else "cell"
    props = model.get_proportions(bulk, kind=kind)
    write(out, props.loc[bulk.obs_names, d["types"]].to_numpy(), bulk.obs_names, d["types"])


if __name__ == "__main__":
    main()
