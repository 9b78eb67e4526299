"""How sure is a ranking? Bootstrap intervals of the harness's metrics over the samples.

Usage (from the repository root, after ``benchmarks/run.py`` has written its predictions)::

    python benchmarks/uncertainty.py --data ../shared/data --results results/

Reads ``<results>/results.csv`` (the methods that ran), their
``<results>/predictions/<set>__<method>.csv`` and each set's truth, resamples the
samples with replacement (the same resamples for every method, so that comparisons are
paired) and prints, per set:

- each method's mean per-type Pearson r and overall CCC with 95% percentile intervals;
- for hpvade, the share of resamples in which it is ahead of the best other method
  (hpvade's ablation rows are not counted as other methods);
- the ceiling of mean per-type r: each type's best r over all methods, averaged. No single
  method reaches it; it is the most a set's best-of-everything can claim.

A set with 8 or 9 samples cannot separate two methods whose r differs by a few hundredths:
the printout says by how much the intervals overlap. Nothing is trained.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import SETS, load_set  # noqa: E402

import hpvade.benchmark as bm  # noqa: E402


def _interval(v: pd.Series) -> str:
    lo, hi = np.nanpercentile(v, [2.5, 97.5])
    return f"{lo:.2f}-{hi:.2f}"


def summarise(
    name: str, data: Path, results: Path, *, n_boot: int, seed: int, focus: str
) -> pd.DataFrame | None:
    """Print one set's table; return it (``None`` if no prediction of ``focus`` exists)."""
    s = load_set(name, data, seed=0)
    # the methods of the harness's last report (predictions of older runs may lie beside them)
    table = pd.read_csv(results / "results.csv")
    methods = table.loc[(table["set"] == name) & (table["status"] == "ok"), "method"]
    files = [results / "predictions" / f"{name}__{m}.csv" for m in methods]
    preds = {f.stem.split("__", 1)[1]: pd.read_csv(f, index_col=0) for f in files if f.exists()}
    if focus not in preds:
        print(f"{name}: no predictions of {focus} under {results / 'predictions'}; skipped")
        return None
    rows, boots = [], {}
    for method, pred in preds.items():
        pred.index = pred.index.astype(str)
        # every method predicts the same samples: the same seed draws the same resamples
        boot = bm.bootstrap(pred, s.truth, mapping=s.mapping, n_boot=n_boot, seed=seed)
        res = bm.evaluate(pred, s.truth, mapping=s.mapping or {c: c for c in pred.columns})
        boots[method] = boot
        rows.append(
            {
                "method": method,
                "r": res["pearson_mean"],
                "r 95%": _interval(boot["pearson_mean"]),
                "ccc": res["ccc_overall"],
                "ccc 95%": _interval(boot["ccc_overall"]),
                "per_type_r": res["per_type"]["pearson"],
            }
        )
    df = pd.DataFrame(rows).set_index("method").sort_values("r", ascending=False)
    ceiling = pd.concat(df["per_type_r"].to_list(), axis=1).max(axis=1).mean()
    peers = df.drop(index=[m for m in df.index if m.startswith("hpvade")])
    n = res["n_samples"]
    print(f"\n## {name}: {n} samples, {n_boot} resamples of the samples\n")
    show = df.drop(columns="per_type_r").copy()
    show["r"] = show["r"].map("{:.2f}".format)
    show["ccc"] = show["ccc"].map("{:.2f}".format)
    print(show.to_markdown())
    print(f"\nceiling of mean per-type r (each type's best method): {ceiling:.2f}")
    for metric, col in (("r", "pearson_mean"), ("ccc", "ccc_overall")):
        best = peers[metric].idxmax()
        ahead = np.mean(boots[focus][col] > boots[best][col])
        print(
            f"{focus} vs the best other method on {metric} ({best}, "
            f"{peers.loc[best, metric]:.2f}): ahead in {100 * ahead:.0f}% of resamples"
        )
    return df


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and print the tables."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    p.add_argument("--results", type=Path, default=HERE.parent / "results")
    p.add_argument("--sets", default=",".join(SETS), help="comma-separated")
    p.add_argument("--focus", default="hpvade", help="the method compared with the others")
    p.add_argument("--n-boot", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    for name in [x.strip() for x in a.sets.split(",") if x.strip()]:
        summarise(name, a.data, a.results, n_boot=a.n_boot, seed=a.seed, focus=a.focus)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
