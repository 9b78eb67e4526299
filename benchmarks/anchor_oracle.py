"""How much a better level anchor would buy: the refinement calibrated from the truth.

A DIAGNOSTIC THAT USES THE TRUTH; it is not a method and its numbers are not results.

The refinement calibrates a gene-wise platform scale from a first estimate of the
fractions (the anchor), which sets the level of each cell type. This script trains the
default model on each benchmark set (as ``benchmarks/run.py`` does), then calibrates and
fits with the same code from three anchors: the head's fractions (the refinement before
0.2.0's robust step, ``hpvade_calhead``), the robust calibration-free fit (the anchor of
``get_proportions``; step 2 here does not take step 1's gene weights as its prior, as the
default does since they were carried over: this is the ``hpvade_anchor`` row's step 2),
and fractions taken from the truth (the "oracle anchor"; types the
truth splits finer or does not measure keep the head's share, rows renormalised). The gap
to the oracle row bounds what a better estimate of the levels could buy; the oracle row's
r shows what the fit itself resolves between samples.

    python benchmarks/anchor_oracle.py --data ../shared/data [--sets hoek pseudobulk] [--seed 0]
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _truth_anchor(head: pd.DataFrame, truth: pd.DataFrame, mapping: dict | None) -> np.ndarray:
    """Cell fractions over the model's types with the truth's levels."""
    mapping = mapping or {t: t for t in head.columns}
    out = head.to_numpy().copy()
    for j, t in enumerate(head.columns):
        group = mapping.get(t)
        if group not in truth.columns:
            continue
        members = [k for k, u in enumerate(head.columns) if mapping.get(u) == group]
        share = out[:, j] / np.maximum(head.to_numpy()[:, members].sum(axis=1), 1e-12)
        out[:, j] = truth.loc[head.index, group].to_numpy() * share
    return out / out.sum(axis=1, keepdims=True)


def main(argv: list[str] | None = None) -> int:
    """Train one default model per set and print default vs oracle-anchored refinement."""
    from _trained import diagnostic_args, evaluate_fractions, train_default

    a = diagnostic_args(__doc__.split("\n\n")[0], argv, HERE.parent.parent / "shared" / "data")
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    from hpvade.model import refine_proportions
    from hpvade.model._refine import robust_fit

    rows = []
    for name in a.sets:
        t = train_default(name, a.data, seed=a.seed)
        s, head, cpm, sig, mrna = t.bench, t.head, t.cpm, t.signature, t.mrna
        truth = s.truth
        if s.truth_kind == "mrna":  # RNA fractions: the anchor wants cell fractions
            cells = truth[list(head.columns)].to_numpy() / mrna
            truth = pd.DataFrame(
                cells / cells.sum(axis=1, keepdims=True), truth.index, head.columns
            )
        anchors = {
            "head": head.to_numpy(),
            "robust fit (default)": robust_fit(cpm, sig, mrna, head.to_numpy()),
            "truth (oracle)": _truth_anchor(head, truth, s.mapping),
        }
        for anchor, p0 in anchors.items():
            m = evaluate_fractions(t, refine_proportions(cpm, sig, mrna, p0)[0])
            rows.append(
                {
                    "set": name,
                    "anchor": anchor,
                    "r": round(m["pearson_mean"], 3),
                    "ccc": round(m["ccc_overall"], 3),
                    "mae": round(m["mae"], 4),
                }
            )
        print(f"{name}: trained in {t.train_s:.0f} s", file=sys.stderr)
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
