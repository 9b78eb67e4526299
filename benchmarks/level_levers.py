"""More levers on the refinement, measured: an unknown component, an average, HLA genes.

Trains the default model on each benchmark set (as ``benchmarks/run.py`` does) and refines
the same head in several ways, so that the rows differ only in the refinement. Prints
mean per-type r, overall CCC and MAE per set and variant:

- ``default``: ``get_proportions(method="refine")`` as it was when this script was
  written (steps 1-2, and step 3 where the default runs it: at least five samples per
  cell type), before step 2 took step 1's gene weights as its prior (``hpvade_anchor``'s
  steps; the table in docs/benchmarks.md was measured then).
- ``unknown, both steps``: a flat profile (equal CPM on every gene) as an extra column of
  the signature in steps 1 and 2, calibrated with the others; its share is dropped and the
  rows renormalised. The issue's "unknown content" lever: the truth does not sum to one
  over the reference's types, and a type with a flat profile can soak up what no type
  explains.
- ``unknown, unscaled in step 2``: the same, but in step 2 the flat column is not
  multiplied by the platform scale (background in the bulks' own space).
- ``unknown, step 1 only``: the flat column only in the calibration-free first step, which
  sets the levels; steps 2 and 3 as in the default.
- ``mean of steps 1-2 and hpvade_robust``: the average of the default's steps 1-2 and the
  calibration-free fit with its weights iterated to convergence (the harness row
  ``hpvade_robust``), which lead on Finotello and on Hoek respectively.
- ``no HLA ...``: the named HLA genes get zero weight in every step (``gene_weights``).
  Class II genes are B-cell, monocyte and DC markers, but how much of each a donor
  expresses, and how many reads map to the reference allele, depends on the donor's HLA
  genotype: HLA-DRB3/4/5 exist only on some haplotypes, and the classical genes are the
  most polymorphic of the genome. "all" is every HLA gene in the model, "classical" the
  typed, polymorphic ones (A, B, C, DRB1, DRB3-5, DQA1, DQB1, DQA2, DQB2, DPA1, DPB1),
  "DQ and DRB3-5" the DQ genes and the haplotype-dependent DRB paralogues.

Every row runs step 3 where the default does, except the two with the unknown column in
step 2 and the mean, which stop after step 2. The variants are not defaults: see
docs/benchmarks.md ("Alternatives, measured and not adopted").

    python benchmarks/level_levers.py --data ../shared/data [--sets hoek finotello_1k]
"""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SETS = ["finotello", "hoek", "cellbench", "pseudobulk", "finotello_1k", "hoek_1k"]
CLASSICAL = {
    "HLA-A",
    "HLA-B",
    "HLA-C",
    "HLA-DRB1",
    "HLA-DRB3",
    "HLA-DRB4",
    "HLA-DRB5",
    "HLA-DQA1",
    "HLA-DQB1",
    "HLA-DQA2",
    "HLA-DQB2",
    "HLA-DPA1",
    "HLA-DPB1",
}
HLA_SETS = {
    "all": lambda g: g.startswith("HLA-"),
    "classical": lambda g: g in CLASSICAL,
    "DQ and DRB3-5": lambda g: re.match(r"^HLA-(DQ|DRB[3-5]$)", g) is not None,
}


def main(argv: list[str] | None = None) -> int:
    """Train one default model per set and print the variants of the refinement."""
    from _trained import diagnostic_args, evaluate_fractions, train_default

    a = diagnostic_args(__doc__.split("\n\n")[0], argv, HERE.parent.parent / "shared" / "data")
    if a.sets == ["finotello", "hoek", "cellbench", "pseudobulk"]:  # this script's default
        a.sets = SETS
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    from hpvade.model import adapt_signature, calibrate_platform, refine_proportions
    from hpvade.model._refine import (
        ADAPT_MIN_SAMPLES_PER_TYPE,
        _calibrated,
        robust_fit,
    )

    rows, dropped = [], []
    for name in a.sets:
        t = train_default(name, a.data, seed=a.seed)
        cpm, sig, mrna = t.cpm, t.signature, t.mrna
        head = t.head.to_numpy()
        n, c = head.shape
        genes = list(t.model.genes_)
        step3 = n >= ADAPT_MIN_SAMPLES_PER_TYPE * c

        def score(variant: str, p: np.ndarray, *, _t=t) -> None:
            m = evaluate_fractions(_t, p)
            rows.append(
                {
                    "set": _t.bench.name,
                    "variant": variant,
                    "r": round(m["pearson_mean"], 3),
                    "ccc": round(m["ccc_overall"], 3),
                    "mae": round(m["mae"], 3),
                }
            )

        def steps(
            p1: np.ndarray,
            weights: np.ndarray | None = None,
            *,
            _c=cpm,
            _s=sig,
            _m=mrna,
            step3=step3,
        ):
            """Steps 2 and 3 of the default from step 1's fractions ``p1``."""
            p2, _ = refine_proportions(_c, _s, _m, p1, gene_weights=weights)
            if not step3:
                return p2, p2
            adapted = adapt_signature(_c, _s, _m, p2)
            p3, _ = refine_proportions(_c, adapted, _m, p2, gene_weights=weights)
            return p2, p3

        p2, p3 = steps(robust_fit(cpm, sig, mrna, head))
        score("default", p3)
        if step3:
            score("default, steps 1-2", p2)

        # an unknown component: a flat profile as an extra type
        flat = np.full((sig.shape[0], 1), sig.sum(axis=0).mean() / sig.shape[0])
        sig_u = np.hstack([sig, flat])
        mrna_u = np.append(mrna, np.exp(np.log(mrna).mean()))
        head_u = np.hstack([0.95 * head, np.full((n, 1), 0.05)])
        p1u = robust_fit(cpm, sig_u, mrna_u, head_u)
        both, _ = refine_proportions(cpm, sig_u, mrna_u, p1u)
        score("unknown, both steps", both)
        known, content = _calibrated(sig, calibrate_platform(cpm, sig_u, mrna_u, p1u), mrna)
        unscaled, _ = refine_proportions(
            cpm,
            np.hstack([known, flat]),
            np.append(content, mrna_u[-1]),
            p1u,
            calibrate=False,
        )
        score("unknown, unscaled in step 2", unscaled)
        p2c, p3c = steps(p1u[:, :c] / p1u[:, :c].sum(axis=1, keepdims=True))
        score("unknown, step 1 only", p3c)
        if step3:
            score("unknown, step 1 only, steps 1-2", p2c)

        # an average of two refinements that each win one PBMC set
        robust, _ = refine_proportions(
            cpm, sig, mrna, head, calibrate=False, n_reweight=20, tol=5e-4, weight_scale=1.0
        )
        score("mean of steps 1-2 and hpvade_robust", (p2 + robust) / 2)

        # donor-genotype genes out of the fit
        for label, rule in HLA_SETS.items():
            out = np.array([rule(g) for g in genes])
            if not out.any():
                continue
            w = np.where(out, 0.0, 1.0)
            p2h, p3h = steps(robust_fit(cpm, sig, mrna, head, gene_weights=w), w)
            score(f"no HLA {label}", p3h)
            dropped.append(f"{name}, no HLA {label}: {', '.join(np.asarray(genes)[out])}")
        print(f"{name}: trained in {t.train_s:.0f} s", file=sys.stderr, flush=True)
    print(pd.DataFrame(rows).to_string(index=False))
    print("\nGenes given zero weight:\n" + "\n".join(dropped))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
