"""Draw the landing page's figure from the benchmark harness's stored predictions.

    python docs/_figures/landing_figure.py --results results/s9 --data ../shared/data

reads ``<results>/predictions/<set>__hpvade.csv`` (written by ``benchmarks/run.py``) and the
truth of each PBMC set (``benchmarks/run.py::load_set``), checks that the figures it computes
are those of ``<results>/results.csv`` (the tables of docs/benchmarks.md), and writes
``docs/_static/landing_predicted_vs_flow.png``. Nothing is retrained or invented: the points
are the stored predictions of the run that docs/benchmarks.md reports.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import hpvade.benchmark as bm  # noqa: E402

SETS = {
    "finotello": "Finotello: 9 bulks, flow",
    "hoek": "Hoek: 8 bulks, FACS",
    "monaco": "Monaco: 12 bulks, flow",
}
#: one color per truth cell type, the same in every panel
COLORS = {
    "B": "#1f77b4",
    "CD4_T": "#ff7f0e",
    "CD8_T": "#2ca02c",
    "T": "#d62728",
    "NK": "#9467bd",
    "Monocytes": "#8c564b",
    "DC": "#e377c2",
}
LABELS = {"CD4_T": "CD4 T", "CD8_T": "CD8 T"}


def _mapped(pred: pd.DataFrame, mapping: dict[str, str] | None) -> pd.DataFrame:
    if mapping is None:
        return pred
    names = [mapping.get(c, c) for c in pred.columns]
    return pred.T.groupby(names, sort=False).sum().T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "results" / "s9")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "_static" / "landing_predicted_vs_flow.png"
    )
    args = parser.parse_args()
    from run import load_set  # benchmarks/run.py

    table = pd.read_csv(args.results / "results.csv").set_index(["method", "set"])
    plt.rcParams.update({"font.size": 8.5})
    fig, axes = plt.subplots(1, len(SETS), figsize=(7.2, 3.3), layout="constrained")
    seen: dict[str, object] = {}
    for ax, (name, title) in zip(axes, SETS.items(), strict=True):
        s = load_set(name, args.data)
        pred = pd.read_csv(args.results / "predictions" / f"{name}__hpvade.csv", index_col=0)
        res = bm.evaluate(pred, s.truth, mapping=s.mapping)
        stored = table.loc[("hpvade", name)]
        # the figure shows the run the tables report, to the last digit
        assert np.isclose(res["pearson_mean"], stored["pearson_mean"], atol=1e-9), name
        assert np.isclose(res["ccc_overall"], stored["ccc_overall"], atol=1e-9), name
        mapped = _mapped(pred, s.mapping)
        samples = mapped.index.intersection(s.truth.index)
        hi = 0.0
        for cell_type in s.truth.columns:
            x = s.truth.loc[samples, cell_type].to_numpy(float)
            y = mapped.loc[samples, cell_type].to_numpy(float)
            hi = max(hi, np.nanmax(x), np.nanmax(y))
            label = LABELS.get(cell_type, cell_type)
            seen[label] = ax.scatter(x, y, s=18, color=COLORS[cell_type], label=label)
        hi *= 1.05
        ax.plot([0, hi], [0, hi], color="0.6", linestyle="--", linewidth=1, zorder=0)
        ax.set_xlim(-0.02 * hi, hi)
        ax.set_ylim(-0.02 * hi, hi)
        ax.set_aspect("equal", adjustable="box")
        ax.set_title(
            f"{title}\nr {res['pearson_mean']:.2f}, CCC {res['ccc_overall']:.2f}",
            fontsize=8.5,
        )
        ax.set_xlabel("measured fraction")
    axes[0].set_ylabel("hpvade's fraction")
    fig.legend(
        seen.values(),
        seen.keys(),
        loc="outside lower center",
        ncols=len(seen),
        frameon=False,
        handletextpad=0.1,
        columnspacing=1.0,
    )
    fig.savefig(args.out, dpi=150)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
