"""Step 2 with or without step 1's gene weights as its prior, on synthetic platform shifts.

The default refinement (``get_proportions``) calibrates step 2 from step 1's robust fit and
keeps step 1's converged Cauchy gene weights as step 2's prior weights. This script
measures that choice where the truth is known exactly: synthetic mixtures (300 genes,
4 types, Gamma(0.7) signatures, 20 Dirichlet(1) samples, no count noise), whose bulks see
a gene-wise platform scale ``exp(N(0, 0.5^2))`` on every gene, plus, on a fifth of the
genes, one of

- ``none``: nothing more (the scale alone, which the calibration absorbs);
- ``uneven``: a distortion that differs between cell types (``exp(U(-2, 2))`` per gene and
  type), which one scale per gene cannot absorb;
- ``sample``: a sample-specific factor (``exp(N(0, 1))`` per sample and gene), like donor
  programmes;

and prints the mean absolute error of step 1, of steps 1-2 without the prior (the
``hpvade_anchor`` row of the harness) and with it (the default's steps 1-2), as the median
over 8 seeds, with the number of seeds where the prior helps. No data needed; about a
minute on one core.

    python benchmarks/carry_weights.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from hpvade.model import refine_proportions, robust_fit


def _case(seed: int, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    S = rng.gamma(0.7, size=(300, 4))
    S = 1e6 * S / S.sum(axis=0)
    p = rng.dirichlet(np.ones(4), size=20)
    bad = rng.choice(300, size=60, replace=False)
    distortion = np.ones_like(S)
    if kind == "uneven":
        distortion[bad] = np.exp(rng.uniform(-2, 2, size=(bad.size, 4)))
    bulk = (p @ (S * distortion).T) * np.exp(rng.normal(0, 0.5, 300))
    if kind == "sample":
        bulk[:, bad] *= np.exp(rng.normal(0, 1.0, size=(p.shape[0], bad.size)))
    return S, p, 1e6 * bulk / bulk.sum(axis=1, keepdims=True)


def main() -> None:
    """Print the error table."""
    torch.set_num_threads(1)
    rows = []
    for kind in ("none", "uneven", "sample"):
        errors = []
        for seed in range(8):
            S, p, bulk = _case(seed, kind)
            mrna = np.ones(4)
            first, weights = robust_fit(bulk, S, mrna, np.full_like(p, 0.25), return_weights=True)
            without, _ = refine_proportions(bulk, S, mrna, first)
            with_prior, _ = refine_proportions(bulk, S, mrna, first, gene_weights=weights)
            errors.append([np.abs(x - p).mean() for x in (first, without, with_prior)])
        e = np.array(errors)
        rows.append(
            {
                "extra shift": kind,
                "step 1": round(float(np.median(e[:, 0])), 4),
                "steps 1-2, no prior": round(float(np.median(e[:, 1])), 4),
                "steps 1-2, step 1's weights (default)": round(float(np.median(e[:, 2])), 4),
                "seeds where the prior helps": f"{int((e[:, 2] < e[:, 1]).sum())} of {len(e)}",
            }
        )
    print("mean absolute error, median over 8 seeds")
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
