"""Input/output shared by every method runner (numpy, numpy only).

A runner is called as ``python <runner>.py INPUT_DIR OUTPUT_CSV [VARIANT]`` with the
interpreter of its own venv. ``INPUT_DIR/inputs.npz`` holds the reference (cells x
genes, raw counts), its labels, the bulk (samples x the same genes, counts or TPM) and
``params.json`` the run settings. The runner writes samples x cell types to OUTPUT_CSV.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import numpy as np


def load(input_dir: str | Path) -> dict:
    """Read the inputs written by the harness."""
    d = Path(input_dir)
    z = np.load(d / "inputs.npz", allow_pickle=False)
    out = {k: z[k] for k in z.files}
    out["params"] = json.loads((d / "params.json").read_text())
    out["types"] = sorted(np.unique(out["ref_labels"]).tolist())
    return out


def args() -> tuple[dict, Path, str | None]:
    """Parse ``INPUT_DIR OUTPUT_CSV [VARIANT]`` and load the inputs."""
    variant = sys.argv[3] if len(sys.argv) > 3 else None
    return load(sys.argv[1]), Path(sys.argv[2]), variant


def cpm(x: np.ndarray) -> np.ndarray:
    """Scale each row to sum to one million."""
    x = np.asarray(x, dtype=np.float64)
    s = x.sum(axis=1, keepdims=True)
    s[s == 0] = 1.0
    return x / s * 1e6


def type_means(x: np.ndarray, labels: np.ndarray, types: list[str]) -> np.ndarray:
    """Mean row of ``x`` per type: types x genes."""
    return np.vstack([x[labels == t].mean(axis=0) for t in types])


def pools(
    x: np.ndarray, labels: np.ndarray, types: list[str], *, n_pools: int = 5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-pure samples: each type's cells split at random into up to ``n_pools`` sums."""
    rng = np.random.default_rng(seed)
    rows, labs = [], []
    for t in types:
        idx = rng.permutation(np.flatnonzero(labels == t))
        for part in np.array_split(idx, min(n_pools, idx.size)):
            rows.append(x[part].sum(axis=0))
            labs.append(t)
    return np.vstack(rows), np.asarray(labs)


def markers(sig: np.ndarray, n: int) -> np.ndarray:
    """Indices of the top ``n`` genes per type by log2 fold change over the others' mean."""
    logsig = np.log2(sig + 1.0)
    out = set()
    for j in range(sig.shape[0]):
        others = np.delete(logsig, j, axis=0).mean(axis=0)
        score = logsig[j] - others
        top = np.argsort(-score)[:n]
        out.update(top[score[top] > 0].tolist())
    return np.array(sorted(out))


def write(path: str | Path, props: np.ndarray, samples, types) -> None:
    """Write proportions (rows renormalised to sum to one; negatives set to zero)."""
    p = np.clip(np.asarray(props, dtype=float), 0.0, None)
    s = p.sum(axis=1, keepdims=True)
    s[s == 0] = 1.0
    p = p / s
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["", *types])
        for name, row in zip(samples, p, strict=True):
            w.writerow([str(name), *(repr(float(v)) for v in row)])


def threads() -> int:
    """Threads a runner may use (the harness sets OMP_NUM_THREADS)."""
    return int(os.environ.get("OMP_NUM_THREADS", "1"))
