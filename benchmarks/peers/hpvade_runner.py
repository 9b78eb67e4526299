"""hpvade through its public API, with its defaults (run with hpvade's interpreter).

Reference: raw counts and labels; bulk: counts or TPM as given (hpvade brings both to
CPM itself). ``HPVADE(ref)``, ``train(bulk=bulk)`` with the default schedule,
``get_proportions(bulk, kind=...)``: cell fractions where the truth counts cells (flow
cytometry, pseudo-bulks), mRNA fractions where it measures RNA (CellBench mixtures).
The model is not tuned to these sets.

Variants (the ablation table of docs/benchmarks.md; each changes one component of the
default):

- ``typemean``: no training at all: the reference's type-mean CPM and mean library sizes
  through the same platform fit and per-sample fit (``hpvade.benchmark.typemean``);
- ``states``: the per-sample fit also fits each sample's state of each type, decoded by
  the VaDE (``fit_samples`` with the decoder);
- ``noscale``: the per-sample fit without the platform scale (all ones; gene weights kept);
- ``noadapt``: ``train(adapt=False)``: no signature update towards the bulks;
- ``head``: the deconvolution head's fractions, no per-sample fit (``method="head"``).

The seed is 0, or ``HPVADE_SEED`` from the environment (to measure seed-to-seed spread).
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

VARIANTS = (None, "typemean", "states", "noscale", "noadapt", "head")


def main() -> None:
    d, out, variant = args()
    if variant not in VARIANTS:
        raise SystemExit(f"unknown variant {variant!r}")
    import scvi

    import hpvade
    from hpvade.model._bulk import fit_samples
    from hpvade.model._refine import mrna_fractions

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    warnings.filterwarnings("ignore")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    scvi.settings.seed = int(os.environ.get("HPVADE_SEED", "0"))  # seed-to-seed spread
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
    kind = "mrna" if d["params"].get("truth_kind") == "mrna" else "cell"
    if variant == "typemean":
        props = hpvade.benchmark.typemean(bulk, ref, labels_key="cell_type", kind=kind)
    else:
        hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
        model = hpvade.HPVADE(ref)
        adapt = False if variant == "noadapt" else None
        model.train(bulk=bulk, adapt=adapt, accelerator="cpu", enable_progress_bar=False)
        method = "head" if variant == "head" else "refine"
        props = model.get_proportions(bulk, kind=kind, method=method, key_added=None)
        if variant in ("states", "noscale"):
            cpm = model._bulk_cpm(bulk, layer=None)
            head = model.get_proportions(bulk, method="head", key_added=None).to_numpy()
            mrna = model.module.mrna_content.detach().cpu().double().numpy()
            if variant == "states":
                p, _ = model._fit(cpm, head, states=True)
            else:
                p, _ = fit_samples(
                    cpm,
                    model.get_signature().to_numpy(),
                    mrna,
                    head,
                    scale=np.ones(len(model.genes_)),
                    weights=model.get_gene_weights().to_numpy(),
                )
            if kind == "mrna":
                p = mrna_fractions(p, mrna)
            props = pd.DataFrame(p, index=props.index, columns=props.columns)
    write(out, props.loc[bulk.obs_names, d["types"]].to_numpy(), bulk.obs_names, d["types"])


if __name__ == "__main__":
    main()
