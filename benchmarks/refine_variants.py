"""Variants of the refinement that were measured against the default and not adopted.

Trains the default model once per benchmark set (as ``benchmarks/run.py`` does, one seed)
and refines its head's fractions in several ways with the same code paths, so that every
row shares the model and differs only in the refinement:

- ``steps 1-2``: the robust fit, then the calibrated fit without step 1's gene weights as
  its prior (``hpvade_anchor``: the default's steps 1-2 before they were carried over);
- ``robust fit alone``: its first, calibration-free step only;
- ``step 2 to convergence``: the calibrated fit with its Cauchy weights (scale 4) iterated
  to convergence instead of one round;
- ``dispersion prior``: both steps with prior gene weights ``1 / D_g``, ``D_g`` being the
  reference's within-type variance over mean of gene g (cells normalised to 10,000
  counts, summed over types): genes that vary between cells of one type, and so between
  samples' cell states, count less (the idea of MuSiC's and DWLS's weights);
- ``dispersion prior, sqrt``: the same with ``1 / sqrt(D_g)``;
- ``reference means``: the default two steps with the plain per-type mean profile of the
  reference (pooled counts, CPM) instead of the learnt signature, on the model's genes;
- ``reference means, all genes``: the same on every gene the reference and the bulks share.

Metrics are those of the harness (mean per-type Pearson r / overall CCC / MAE).

    python benchmarks/refine_variants.py --data ../shared/data [--sets hoek pseudobulk] [--seed 0]

About a minute per set on one core, except the all-genes row on CellBench (340 mixtures on
every shared gene): about 40 minutes.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if sp.issparse(x) else x, dtype=np.float64)


def _dispersion(x: np.ndarray, labels: np.ndarray, types: list[str]) -> np.ndarray:
    """Within-type variance over mean per gene, summed over types (cells at 1e4 counts)."""
    x = 1e4 * x / np.maximum(x.sum(axis=1, keepdims=True), 1.0)
    mean = np.array([x[labels == t].mean(axis=0) for t in types])
    var = np.array([x[labels == t].var(axis=0) for t in types])
    return (var.sum(axis=0) + 1e-9) / (mean.sum(axis=0) + 1e-9)


def _pooled_profiles(x: np.ndarray, labels: np.ndarray, types: list[str]) -> np.ndarray:
    """Pooled per-type profiles (each type's summed counts), genes x types, CPM.

    Unlike the model's starting signature (``pp._genes.type_profiles``, the mean of each
    cell's CPM), cells weigh by their library size here, as in a bulk of that type.
    """
    from hpvade.pp._genes import type_means

    codes = pd.Categorical(labels, categories=types).codes
    keep = codes >= 0
    s = type_means(x[keep], codes[keep], len(types)).T
    return 1e6 * s / np.maximum(s.sum(axis=0, keepdims=True), 1e-12)


def main(argv: list[str] | None = None) -> int:
    """Train one default model per set and print the refinement variants side by side."""
    from _trained import diagnostic_args, evaluate_fractions, train_default

    a = diagnostic_args(__doc__.split("\n\n")[0], argv, HERE.parent.parent / "shared" / "data")
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    from hpvade.model import refine_proportions
    from hpvade.model._refine import (
        ROBUST_REWEIGHT_ROUNDS,
        ROBUST_TOL,
        ROBUST_WEIGHT_SCALE,
        robust_fit,
    )

    def two_steps(cpm, sig, mrna, p0, prior=None):
        first = robust_fit(cpm, sig, mrna, p0, gene_weights=prior)
        return refine_proportions(cpm, sig, mrna, first, gene_weights=prior)[0]

    rows = []
    for name in a.sets:
        t = train_default(name, a.data, seed=a.seed)
        s, ref, head = t.bench, t.ref, t.head
        cpm, sig, mrna = t.cpm, t.signature, t.mrna
        types = list(head.columns)
        p0 = head.to_numpy()
        labels = ref.obs["cell_type"].astype(str).to_numpy()
        x_model = _dense(ref[:, t.model.genes_].X)
        disp = _dispersion(x_model, labels, types)
        shared = ref.var_names.intersection(s.bulk.var_names)
        b_all = _dense(s.bulk[:, shared].X)
        cpm_all = 1e6 * b_all / b_all.sum(axis=1, keepdims=True)
        robust = robust_fit(cpm, sig, mrna, p0)
        x_shared = _dense(ref[:, shared].X)
        variants = {
            "steps 1-2": refine_proportions(cpm, sig, mrna, robust)[0],
            "robust fit alone": robust,
            "step 2 to convergence": refine_proportions(
                cpm,
                sig,
                mrna,
                robust,
                n_reweight=ROBUST_REWEIGHT_ROUNDS,
                weight_scale=ROBUST_WEIGHT_SCALE,
                tol=ROBUST_TOL,
            )[0],
            "dispersion prior": two_steps(cpm, sig, mrna, p0, 1.0 / disp),
            "dispersion prior, sqrt": two_steps(cpm, sig, mrna, p0, disp**-0.5),
            "reference means": two_steps(cpm, _pooled_profiles(x_model, labels, types), mrna, p0),
            "reference means, all genes": two_steps(
                cpm_all, _pooled_profiles(x_shared, labels, types), mrna, p0
            ),
        }
        for variant, frac in variants.items():
            m = evaluate_fractions(t, frac)
            rows.append(
                {
                    "variant": variant,
                    "set": name,
                    "value": f"{m['pearson_mean']:.3f} / {m['ccc_overall']:.2f} / {m['mae']:.3f}",
                }
            )
        print(f"{name}: trained in {t.train_s:.0f} s", file=sys.stderr)
    table = pd.DataFrame(rows).pivot(index="variant", columns="set", values="value")
    table = table.loc[list(dict.fromkeys(r["variant"] for r in rows)), a.sets]
    print("mean per-type r / overall CCC / MAE")
    print(table.to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
