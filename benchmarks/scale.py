"""Time and peak memory of hpvade at scale, on synthetic sparse data (no files needed).

Usage (from the repository root)::

    python benchmarks/scale.py                       # the default grid, one thread
    python benchmarks/scale.py --cells 10000 100000 --bulks 1000 10000 --repeats 3

Each configuration runs in a fresh subprocess (so that its peak RSS is its own): a
reference of ``--cells`` cells x ``--genes`` genes (10 types, about ``--umis`` UMIs per cell,
CSR float32; each type has its own profile) and ``--bulks`` bulks mixed from the type
profiles; ``HPVADE(ref)``, ``train(bulk=...)`` (the default schedule), ``get_proportions``.
The data are written to ``.h5ad`` files by one subprocess and read by another, which
runs hpvade. Printed per configuration: the seconds of building the model (gene
selection), of training (including the platform fit on the bulks), of
``get_proportions``, the RSS once the files are read, the peak RSS of the process and the
size of the reference's sparse matrix; medians over ``--repeats``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def _data(n_cells: int, n_genes: int, n_bulks: int, umis: int, seed: int = 0):
    import anndata as ad
    import pandas as pd
    from scipy import sparse

    rng = np.random.default_rng(seed)
    n_types = 10
    profiles = rng.gamma(0.3, size=(n_types, n_genes))
    profiles /= profiles.sum(axis=1, keepdims=True)
    labels = rng.integers(n_types, size=n_cells)
    # each cell: ~umis UMIs drawn from its type's profile (sparse multinomial by chunks)
    rows, cols, vals = [], [], []
    chunk = 500  # keeps the generator's own peak memory small
    for start in range(0, n_cells, chunk):
        lab = labels[start : start + chunk]
        lam = profiles[lab] * umis  # chunk x genes
        counts = rng.poisson(lam).astype(np.float32)
        r, c = np.nonzero(counts)
        rows.append(r + start)
        cols.append(c)
        vals.append(counts[r, c])
    X = sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_cells, n_genes),
    )
    genes = pd.Index([f"g{i}" for i in range(n_genes)])
    ref = ad.AnnData(
        X,
        obs=pd.DataFrame(
            {"cell_type": pd.Categorical([f"t{t}" for t in labels])},
            index=[f"c{i}" for i in range(n_cells)],
        ),
        var=pd.DataFrame(index=genes),
    )
    p = rng.dirichlet(np.ones(n_types), size=n_bulks)
    bulk = ad.AnnData(
        (1e6 * (p @ profiles) * np.exp(0.3 * rng.standard_normal(n_genes))).astype(np.float32),
        obs=pd.DataFrame(index=[f"s{i}" for i in range(n_bulks)]),
        var=pd.DataFrame(index=genes),
    )
    return ref, bulk


def _child(cfg: dict) -> dict:
    import logging
    import warnings

    import torch

    torch.set_num_threads(cfg["threads"])
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    import anndata as ad

    import hpvade

    ref = ad.read_h5ad(cfg["dir"] + "/ref.h5ad")
    bulk = ad.read_h5ad(cfg["dir"] + "/bulk.h5ad")
    loaded_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    X = ref.X
    matrix_mb = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20
    t0 = time.perf_counter()
    hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
    model = hpvade.HPVADE(ref, bulk=bulk)
    t1 = time.perf_counter()
    model.train(
        bulk=bulk, accelerator="cpu", enable_progress_bar=False, enable_model_summary=False
    )
    t2 = time.perf_counter()
    model.get_proportions(bulk, key_added=None)
    t3 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    return {
        "build_s": t1 - t0,
        "train_s": t2 - t1,
        "predict_s": t3 - t2,
        "peak_rss_mb": rss,
        "loaded_rss_mb": loaded_mb,
        "matrix_mb": matrix_mb,
    }


def _generate(cfg: dict) -> dict:
    ref, bulk = _data(cfg["cells"], cfg["genes"], cfg["bulks"], cfg["umis"])
    ref.write_h5ad(cfg["dir"] + "/ref.h5ad")
    bulk.write_h5ad(cfg["dir"] + "/bulk.h5ad")
    return {}


def main(argv: list[str] | None = None) -> int:
    """Run the grid, one subprocess per configuration and repeat, and print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cells", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--bulks", type=int, nargs="+", default=[1_000, 10_000])
    p.add_argument("--genes", type=int, default=20_000)
    p.add_argument("--umis", type=int, default=1_500)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--generate", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(_child(json.loads(a.child))))
        return 0
    if a.generate:
        print(json.dumps(_generate(json.loads(a.generate))))
        return 0
    configs = [(c, a.bulks[0]) for c in a.cells] + [(a.cells[0], b) for b in a.bulks[1:]]
    print(
        "| cells | bulks | genes | build s | train s | predict s | RSS after reading MiB "
        "| peak RSS MiB | X MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for cells, bulks in configs:
        tmp = tempfile.TemporaryDirectory(prefix="hpvade_scale_")
        cfg = {
            "cells": cells,
            "bulks": bulks,
            "genes": a.genes,
            "umis": a.umis,
            "threads": a.threads,
            "dir": tmp.name,
        }
        subprocess.run(
            [sys.executable, __file__, "--generate", json.dumps(cfg)],
            check=True,
            capture_output=True,
        )
        runs = []
        for _ in range(a.repeats):
            out = subprocess.run(
                [sys.executable, __file__, "--child", json.dumps(cfg)],
                capture_output=True,
                text=True,
            )
            if out.returncode != 0:
                print(f"| {cells} | {bulks} | failed: {out.stderr.strip().splitlines()[-1]} |")
                break
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        if runs:
            med = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
            print(
                f"| {cells:,} | {bulks:,} | {a.genes:,} | {med['build_s']:.1f} | "
                f"{med['train_s']:.1f} | {med['predict_s']:.1f} | {med['loaded_rss_mb']:.0f} | "
                f"{med['peak_rss_mb']:.0f} | {med['matrix_mb']:.0f} |",
                flush=True,
            )
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
