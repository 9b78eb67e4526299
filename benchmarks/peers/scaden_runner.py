"""Scaden (scaden 1.1.2, Menden et al. 2020) through its own command line.

``scaden simulate`` from the raw reference counts (100 cells per pseudo-bulk, default),
``scaden process`` (log2 + per-sample min-max, genes shared with the bulk), ``scaden
train`` (ensemble of the three published architectures), ``scaden predict`` on the bulk
as given (counts, or TPM for Hoek: Scaden scales every sample itself). Reduced for the
2-core machine: 1,000 simulated samples (the default; the paper used 32,000) and 500
training steps per model instead of 5,000. Needs ``TF_USE_LEGACY_KERAS=1``.

The simulated training set is the same in every run (numpy seeded in the simulating
process, a fixed hash seed for the order of the cell types). The training is not: with
``--seed 0`` (the default) and even with TensorFlow's op determinism switched on, two
trainings on the same files give different predictions on this CPU, so Scaden's numbers
vary from run to run (docs/benchmarks.md gives the spread over repeated runs).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from _common import args, write

N_SIM, CELLS, STEPS = 1000, 100, 500


def _run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    # scaden orders the cell types through a set: fix the hash seed so that the order, and
    # with it which simulated fraction goes to which type, is the same in every run
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONHASHSEED": "0"})


def main() -> None:
    d, out, _ = args()
    genes = d["genes"].astype(str)
    samples = d["samples"].astype(str)
    tmp = Path(tempfile.mkdtemp(prefix="scaden_"))
    os.chdir(tmp)
    (tmp / "sc").mkdir()
    (tmp / "sim").mkdir()
    x = pd.DataFrame(d["ref_X"], columns=genes)
    # numeric cell names: scaden reads the file with dtype=float32, index included
    x.index = np.arange(len(x))
    x.to_csv(tmp / "sc" / "ref_counts.txt", sep="\t")
    pd.DataFrame({"Celltype": d["ref_labels"]}).to_csv(
        tmp / "sc" / "ref_celltypes.txt", sep="\t", index=False
    )
    pd.DataFrame(d["bulk_X"].T, index=genes, columns=samples).to_csv(tmp / "bulk.txt", sep="\t")
    scaden = str(Path(sys.executable).parent / "scaden")
    # `scaden simulate` draws from numpy's global state and has no seed option: seed it in
    # the process that simulates (`scaden train` and `predict` take --seed, default 0)
    seeded = "import sys, numpy; numpy.random.seed(0); from scaden.__main__ import main; "
    seeded += "sys.argv[0] = 'scaden'; sys.exit(main())"
    sim = [sys.executable, "-c", seeded, "simulate", "-d", "sc", "-o", "sim", "-n", str(N_SIM)]
    sim += ["-c", str(CELLS)]
    sim += ["--pattern", "*_counts.txt"]
    _run(sim)
    # scaden 1.1.2 writes the merged training set to the working directory
    merged = "data.h5ad" if Path("data.h5ad").exists() else "sim/data.h5ad"
    _run([scaden, "process", merged, "bulk.txt", "--processed_path", "proc.h5ad"])
    _run([scaden, "train", "proc.h5ad", "--model_dir", "model", "--steps", str(STEPS)])
    _run([scaden, "predict", "bulk.txt", "--model_dir", "model", "--outname", "pred.txt"])
    pred = pd.read_table(tmp / "pred.txt", index_col=0)
    pred.index = pred.index.astype(str)
    write(out, pred.loc[samples, d["types"]].to_numpy(), samples, d["types"])


if __name__ == "__main__":
    main()
