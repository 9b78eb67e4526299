"""Time and peak memory of hpvade at scale, on synthetic sparse data (no files needed).

Usage (from the repository root)::

    python benchmarks/scale.py                       # the default grid, 3 runs each
    python benchmarks/scale.py --cells 10000 100000 --bulks 1000 10000 --repeats 3
    python benchmarks/scale.py --cells 300000 --backed --threads 1   # reference read backed

Each configuration is generated once into ``.h5ad`` files (the reference written block by
block, so generating it takes little memory): a reference of ``--cells`` cells x
``--genes`` genes (10 types, ``--umis`` UMIs per cell drawn from its type's profile, CSR
float32) and ``--bulks`` bulks mixed from the type profiles. Each run is a fresh
subprocess (so that its peak RSS is its own) that reads the files (the reference in memory,
or with ``backed="r"`` under ``--backed``) and times ``HPVADE(ref)`` (checks and gene
selection: "build"), ``train(bulk=...)`` (the default schedule and the platform fit) and
``get_proportions``. Runs are repeated ``--repeats`` times for each torch thread setting
of ``--threads`` (``0``: torch's default, the number of cores); medians are printed.
Memory columns: the RSS once the files are read, the peak RSS of the run, the size of the
reference's CSR matrix in memory (read or not) and the peak less that size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

N_TYPES = 10


def _profiles(n_genes: int, rng) -> np.ndarray:
    profiles = rng.gamma(0.3, size=(N_TYPES, n_genes))
    return profiles / profiles.sum(axis=1, keepdims=True)


def _write_reference(path: str, n_cells: int, n_genes: int, umis: int, rng, profiles) -> None:
    """Write the reference block by block: each cell's ``umis`` UMIs drawn from its profile."""
    import anndata as ad
    import h5py
    import pandas as pd
    from anndata.io import sparse_dataset, write_elem
    from scipy import sparse

    labels = rng.integers(N_TYPES, size=n_cells)
    cdf = np.cumsum(profiles, axis=1)
    cdf /= cdf[:, -1:]
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical([f"t{t}" for t in labels])},
        index=[f"c{i}" for i in range(n_cells)],
    )
    var = pd.DataFrame(index=[f"g{i}" for i in range(n_genes)])
    chunk = 20_000
    with h5py.File(path, "w") as f:
        f.attrs["encoding-type"], f.attrs["encoding-version"] = "anndata", "0.1.0"
        for start in range(0, n_cells, chunk):
            lab = labels[start : start + chunk]
            keys = []
            for t in np.unique(lab):
                cells = np.flatnonzero(lab == t)
                genes = np.searchsorted(cdf[t], rng.random((cells.size, umis)), side="right")
                keys.append((cells[:, None] * n_genes + np.minimum(genes, n_genes - 1)).ravel())
            key, count = np.unique(np.concatenate(keys), return_counts=True)
            block = sparse.csr_matrix(
                (count.astype(np.float32), (key // n_genes, key % n_genes)),
                shape=(lab.size, n_genes),
            )
            if start == 0:
                write_elem(f, "X", block)
                X = sparse_dataset(f["X"])
            else:
                X.append(block)
        write_elem(f, "obs", obs)
        write_elem(f, "var", var)
        for key in ("uns", "obsm", "varm", "obsp", "varp", "layers"):
            write_elem(f, key, {})
    ad.read_h5ad(path, backed="r").file.close()  # a valid .h5ad


def _generate(cfg: dict) -> dict:
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(0)
    profiles = _profiles(cfg["genes"], rng)
    _write_reference(
        cfg["dir"] + "/ref.h5ad", cfg["cells"], cfg["genes"], cfg["umis"], rng, profiles
    )
    p = rng.dirichlet(np.ones(N_TYPES), size=cfg["bulks"])
    noise = np.exp(0.3 * rng.standard_normal(cfg["genes"]))
    X = np.empty((cfg["bulks"], cfg["genes"]), dtype=np.float32)
    for i in range(0, cfg["bulks"], 10_000):  # float32 rows in blocks: 100k bulks fit in 8 GB
        X[i : i + 10_000] = 1e6 * (p[i : i + 10_000] @ profiles) * noise
    bulk = ad.AnnData(
        X,
        obs=pd.DataFrame(index=[f"s{i}" for i in range(cfg["bulks"])]),
        var=pd.DataFrame(index=[f"g{i}" for i in range(cfg["genes"])]),
    )
    bulk.write_h5ad(cfg["dir"] + "/bulk.h5ad")
    return {}


def _matrix_mb(X) -> float:
    """Size of the reference's CSR matrix in memory (for a backed one, once loaded)."""
    if hasattr(X, "group"):
        g = X.group
        arrays = [g["data"], g["indices"], g["indptr"]]
        return sum(a.shape[0] * a.dtype.itemsize for a in arrays) / 2**20
    return (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20


def _child(cfg: dict) -> dict:
    import logging
    import warnings

    import torch

    if cfg["threads"] > 0:
        torch.set_num_threads(cfg["threads"])
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    import anndata as ad

    import hpvade

    ref = ad.read_h5ad(cfg["dir"] + "/ref.h5ad", backed="r" if cfg["backed"] else None)
    bulk = ad.read_h5ad(cfg["dir"] + "/bulk.h5ad")
    loaded_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
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
        "matrix_mb": _matrix_mb(ref.X),
        "threads": torch.get_num_threads(),
    }


def _run(cfg: dict, flag: str) -> dict:
    env = dict(os.environ)
    if cfg.get("threads") == 0:  # torch's own default, not one a shell variable imposes
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.pop(var, None)
    out = subprocess.run(
        [sys.executable, __file__, flag, json.dumps(cfg)], capture_output=True, text=True, env=env
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Run the grid, one subprocess per configuration, thread setting and repeat."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cells", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--bulks", type=int, nargs="+", default=[1_000, 10_000])
    p.add_argument("--genes", type=int, default=20_000)
    p.add_argument("--umis", type=int, default=1_500)
    p.add_argument(
        "--threads", type=int, nargs="+", default=[1, 0], help="torch threads (0: default)"
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--backed", action="store_true", help="read the reference with backed='r'")
    p.add_argument(
        "--data-dir",
        help="keep the generated files in DATA_DIR/<cells>x<bulks> and reuse them if there",
    )
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
    names = [f"{t} thread{'s' * (t != 1)}" if t else "default" for t in a.threads]
    times = " | ".join(f"{w} s ({n})" for w in ("train", "predict") for n in names)
    print(
        f"| cells | bulks | reference | build s | {times} | RSS after reading MiB "
        "| peak RSS MiB | X MiB | peak - X MiB |"
    )
    print("|---" * (8 + 2 * len(names)) + "|", flush=True)
    for cells, bulks in configs:
        with tempfile.TemporaryDirectory(prefix="hpvade_scale_") as tmp:
            where = tmp
            if a.data_dir:
                where = os.path.join(a.data_dir, f"{cells}x{bulks}x{a.genes}x{a.umis}")
                os.makedirs(where, exist_ok=True)
            cfg = {"cells": cells, "bulks": bulks, "genes": a.genes, "umis": a.umis, "dir": where}
            if not os.path.exists(os.path.join(where, "bulk.h5ad")):
                _run(cfg, "--generate")
            runs: dict[int, list[dict]] = {}
            try:
                for threads in a.threads:
                    cfg_t = {**cfg, "threads": threads, "backed": a.backed}
                    runs[threads] = []
                    for _ in range(a.repeats):
                        runs[threads].append(_run(cfg_t, "--child"))
                        print(json.dumps({**cfg_t, **runs[threads][-1]}), file=sys.stderr)
            except RuntimeError as err:
                print(f"| {cells:,} | {bulks:,} | failed: {err} |", flush=True)
                continue
        every = [r for rs in runs.values() for r in rs]

        def med(key, rs=every):
            return float(np.median([r[key] for r in rs]))

        cols = " | ".join(f"{med(k, runs[t]):.1f}" for k in ("train_s", "predict_s") for t in runs)
        n_default = {r["threads"] for t, rs in runs.items() if t == 0 for r in rs}
        kind = "backed" if a.backed else "in memory"
        # a backed reference is not in memory: its peak is all hpvade's (and Python's)
        above = "-" if a.backed else f"{med('peak_rss_mb') - med('matrix_mb'):.0f}"
        print(
            f"| {cells:,} | {bulks:,} | {kind} | {med('build_s'):.1f} | {cols} | "
            f"{med('loaded_rss_mb'):.0f} | {med('peak_rss_mb'):.0f} | {med('matrix_mb'):.0f} | "
            f"{above} |",
            flush=True,
        )
        if n_default:
            print(f"(default: {sorted(n_default)} threads; {os.cpu_count()} cores)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
