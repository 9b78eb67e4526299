"""Time of hpvade's defaults on each real benchmark set, inside one Python process.

For each set (read as ``run.py`` reads it): ``HPVADE(ref, bulk=bulk)`` (checks and gene
selection: "build"), ``train(bulk=bulk)`` (the training schedule and the platform fit) and
``get_proportions(bulk)``, with torch on one thread. Imports (about 8 s for torch,
scvi-tools and scanpy) are paid once per process and are not in these times; the wall
times of ``run.py`` include them. Medians of ``--repeats`` runs, each on fresh copies.

    python benchmarks/speed.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scvi

import hpvade

sys.path.insert(0, str(Path(__file__).parent))
import run as R


def time_set(s: R.BenchSet) -> tuple[float, float, float]:
    """Seconds of build, train and predict of one run on fresh copies of the set."""
    ref, bulk = s.ref.copy(), s.bulk.copy()
    scvi.settings.seed = 0
    hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
    t0 = time.perf_counter()
    model = hpvade.HPVADE(ref, bulk=bulk)
    t1 = time.perf_counter()
    model.train(bulk=bulk, accelerator="cpu", enable_progress_bar=False)
    t2 = time.perf_counter()
    model.get_proportions(bulk, kind=s.truth_kind)
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="shared/data")
    parser.add_argument("--sets", default="finotello,hoek,monaco,cellbench,pseudobulk")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    R.quiet_in_process()
    rows = []
    for name in [s for s in args.sets.split(",") if s]:
        s = R.load_set(name, args.data)
        runs = np.array([time_set(s) for _ in range(args.repeats)])
        build, train, predict = np.median(runs, axis=0)
        total = np.median(runs[:, 1] + runs[:, 2])
        rows.append((name, s.ref.n_obs, s.bulk.n_obs, build, train, predict, total))
    table = pd.DataFrame(
        rows,
        columns=["set", "cells", "bulks", "build s", "train s", "predict s", "train + predict s"],
    )
    print(f"One thread; medians of {args.repeats} runs.\n")
    print(table.to_markdown(index=False, floatfmt=".1f"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
