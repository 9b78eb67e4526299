"""hpvade through its public API, with its defaults (run with hpvade's interpreter).

Reference: raw counts and labels; bulk: counts or TPM as given (hpvade brings both to
CPM itself). ``HPVADE(ref)``, ``train(bulk=bulk)`` with the default number of epochs,
``get_proportions(bulk, kind=...)``: cell fractions where the truth counts cells (flow
cytometry, pseudo-bulks), mRNA fractions where it measures RNA (CellBench mixtures).
The model is not tuned to these sets.

Variants (the ablation rows of docs/benchmarks.md; each changes one thing against the
row before it, the default last):

- ``v1``: the defaults of hpvade 0.1.0's first release (5,000 genes, the head's output);
- ``seed``: ``v1`` with the seed's adaptation to the real bulks (``real_bulk_weight=1``);
- ``head``: 1,000 genes, the head's output (``method="head"``);
- ``fit``: ``head`` refined by the square-root signature fit, no calibration, no reweighting;
- ``cal``: ``fit`` with the gene-wise platform scale calibrated from the head;
- ``calhead``: ``cal`` plus one round of gene reweighting (the refinement before the
  robust first step: calibrated from the head's fractions);
- ``anchor``: the scale calibrated from a robust, calibration-free fit with Cauchy gene
  weights iterated to convergence, then ``calhead``'s fit (the default before the signature
  update);
- ``noadapt``: ``anchor`` with the robust fit's gene weights as the calibrated fit's prior
  weights (``get_proportions(adapt=False)``: the default without its signature update);
- no variant: the defaults (``noadapt``, then, with at least five samples per cell type,
  the signature updated towards the bulks and the fit repeated).

Alternatives, measured and not adopted (docs/benchmarks.md):

- ``noise``: ``calhead`` trained on pseudo-bulks with gene-wise log-normal noise
  (``gene_noise=1``), and ``headnoise``: its head's output;
- ``robust``: ``fit`` with the default gene weights iterated to convergence (at most 20
  rounds, until no fraction moves by 5e-4), no calibration;
- ``cauchy``: ``robust`` with the textbook Cauchy weight scale (``weight_scale=12.5``).

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


def main() -> None:
    d, out, variant = args()
    refit = ("fit", "cal", "calhead", "noise", "robust", "cauchy")
    known = (None, "v1", "seed", "head", "headnoise", "noadapt", "anchor", *refit)
    if variant not in known:
        raise SystemExit(f"unknown variant {variant!r}")
    import scvi

    import hpvade

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
    hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
    init = {}
    if variant in ("v1", "seed"):
        init = {"n_genes": 5000, "real_bulk_weight": 1.0 if variant == "seed" else 0.0}
    model = hpvade.HPVADE(ref, **init)
    noise = 1.0 if variant in ("noise", "headnoise") else 0.0
    model.train(bulk=bulk, accelerator="cpu", enable_progress_bar=False, gene_noise=noise)
    kind = "mrna" if d["params"].get("truth_kind") == "mrna" else "cell"
    if variant in (*refit, "anchor"):
        from hpvade.model import refine_proportions, robust_fit
        from hpvade.model._refine import mrna_fractions

        p0 = model.get_proportions(bulk, method="head", key_added=None)
        sig = model.get_signature().to_numpy()
        mrna = model.get_mrna_content().to_numpy()
        cpm = model._bulk_cpm(bulk, layer=None)
        if variant == "anchor":
            p, _ = refine_proportions(cpm, sig, mrna, robust_fit(cpm, sig, mrna, p0.to_numpy()))
        else:
            p, _ = refine_proportions(
                cpm,
                sig,
                mrna,
                p0.to_numpy(),
                calibrate=variant in ("cal", "calhead", "noise"),
                n_reweight={"fit": 0, "cal": 0, "calhead": 1, "noise": 1}.get(variant, 20),
                weight_scale=12.5 if variant == "cauchy" else 1.0,
                tol=5e-4,
            )
        if kind == "mrna":
            p = mrna_fractions(p, mrna)
        props = pd.DataFrame(p, index=p0.index, columns=p0.columns)
    else:
        method = "head" if variant in ("v1", "seed", "head", "headnoise") else "refine"
        adapt = False if variant == "noadapt" else None
        props = model.get_proportions(bulk, kind=kind, method=method, adapt=adapt)
    write(out, props.loc[bulk.obs_names, d["types"]].to_numpy(), bulk.obs_names, d["types"])


if __name__ == "__main__":
    main()
