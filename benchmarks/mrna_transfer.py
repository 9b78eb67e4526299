"""Is the reference's mRNA content per cell type right for bulk? Transfer it across sets.

A DIAGNOSTIC THAT USES THE TRUTH OF ONE SET TO PREDICT ANOTHER; not a default.

``get_proportions`` turns the fitted mRNA fractions into cell fractions with a relative
mRNA content per type that starts from the reference's mean library size. If single-cell
library sizes misjudge the mRNA per cell of a bulk, every bulk of that tissue is off the
same way. This script tests that on the two PBMC sets, which share a reference but not a
lab or a protocol: it finds the content factors (one per scored group: T, monocytes, B,
NK; DC and platelets unchanged) that make one set's mean predicted cell fractions match
its flow cytometry, applies them to the other set's predictions, and scores both ways.
Applying factors ``c`` is what ``get_proportions(mrna_content=learnt * c)`` does: the cell
fractions become ``p / c``, rows renormalised.

It reads the predictions written by ``benchmarks/run.py`` (``--out`` dirs of a run on the
main sets and of one on the ``_1k`` sets)::

    python benchmarks/run.py --data ../shared/data --out results/r1k \\
        --sets finotello_1k,hoek_1k --methods hpvade,hpvade_head,hpvade_robust
    python benchmarks/mrna_transfer.py --data ../shared/data --results results \\
        --results-1k results/r1k
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# reference types of each scored group (the truth's vocabulary of both PBMC sets)
GROUPS = {
    "T": ["Naive CD4 T", "Memory CD4 T", "CD8 T"],
    "Monocytes": ["CD14+ Mono", "FCGR3A+ Mono"],
    "B": ["B"],
    "NK": ["NK"],
}


def apply_factors(p: pd.DataFrame, factors: dict[str, float]) -> pd.DataFrame:
    """Cell fractions with each group's mRNA content multiplied by its factor."""
    from hpvade.model._refine import mrna_fractions

    scale = pd.Series(1.0, index=p.columns)
    for group, types in GROUPS.items():
        scale[types] = factors[group]
    # as get_proportions(mrna_content=learnt * scale) does it
    return pd.DataFrame(mrna_fractions(p, 1.0 / scale), index=p.index, columns=p.columns)


def group_truth(truth: pd.DataFrame) -> pd.Series:
    """Mean true fraction of each group (Finotello splits T into CD4 and CD8)."""
    t = truth.copy()
    if "T" not in t:
        t["T"] = t["CD4_T"] + t["CD8_T"]
    return t[list(GROUPS)].mean()


def fit_factors(p: pd.DataFrame, target: pd.Series, *, n_iter: int = 200) -> dict[str, float]:
    """Factors (geometric mean 1) that bring the groups' mean fractions to ``target``."""
    factors = dict.fromkeys(GROUPS, 1.0)
    for _ in range(n_iter):
        q = apply_factors(p, factors)
        for group, types in GROUPS.items():
            factors[group] *= np.sqrt(q[types].sum(axis=1).mean() / target[group])
    centre = np.exp(np.mean(np.log(list(factors.values()))))
    return {g: f / centre for g, f in factors.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    p.add_argument("--results", type=Path, default=HERE.parent / "results")
    p.add_argument("--results-1k", type=Path, default=HERE.parent / "results" / "r1k")
    p.add_argument("--methods", nargs="+", default=["hpvade", "hpvade_head", "hpvade_robust"])
    a = p.parse_args(argv)
    logging.disable(logging.WARNING)
    from run import load_set

    import hpvade.benchmark as bm

    print(
        "| reference | method | factors from -> applied to | T | Mono | B | NK | before | after |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for suffix, results in (("", a.results), ("_1k", a.results_1k)):
        sets = {name: load_set(name + suffix, a.data) for name in ("finotello", "hoek")}
        for method in a.methods:
            pred = {}
            for name, s in sets.items():
                path = results / "predictions" / f"{s.name}__{method}.csv"
                if not path.exists():
                    raise SystemExit(f"{path} not found: run benchmarks/run.py first (see --help)")
                pred[name] = pd.read_csv(path, index_col=0)
            for src, dst in (("finotello", "hoek"), ("hoek", "finotello")):
                factors = fit_factors(pred[src], group_truth(sets[src].truth))
                s = sets[dst]
                cells = []
                for q in (pred[dst], apply_factors(pred[dst], factors)):
                    r = bm.evaluate(q, s.truth, mapping=s.mapping)
                    cells.append(
                        f"{r['pearson_mean']:.3f} / {r['ccc_overall']:.2f} / {r['mae']:.3f}"
                    )
                ref = "all genes, 983 cells" if suffix else "2,000 HVGs, 2,638 cells"
                f = " | ".join(f"{factors[g]:.2f}" for g in GROUPS)
                print(f"| {ref} | {method} | {src} -> {dst} | {f} | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
