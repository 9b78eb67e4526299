"""One default hpvade model trained on a benchmark set, for the diagnostic scripts."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def diagnostic_args(description: str, argv: list[str] | None, data: Path) -> argparse.Namespace:
    """``--data`` (default ``data``), ``--sets`` (all four) and ``--seed`` of a diagnostic."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", type=Path, default=data)
    p.add_argument("--sets", nargs="+", default=["finotello", "hoek", "cellbench", "pseudobulk"])
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


@dataclass
class Trained:
    """A benchmark set, the default model trained on it, and what the refinement needs."""

    bench: Any  # run.BenchSet
    model: Any  # hpvade.HPVADE
    ref: Any  # the set-up copy of the reference (AnnData)
    head: pd.DataFrame  # the head's cell fractions
    cpm: np.ndarray  # bulks, samples x the model's genes, CPM
    signature: np.ndarray  # genes x types, CPM
    mrna: np.ndarray  # relative mRNA content per type
    train_s: float


def train_default(name: str, data: Path, *, seed: int = 0) -> Trained:
    """Train the default model on set ``name`` as ``benchmarks/run.py`` does (CPU)."""
    import scvi
    from run import load_set

    import hpvade

    s = load_set(name, data)
    ref = s.ref.copy()
    scvi.settings.seed = seed
    hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
    model = hpvade.HPVADE(ref)
    t0 = time.perf_counter()
    model.train(bulk=s.bulk, accelerator="cpu", enable_progress_bar=False)
    return Trained(
        bench=s,
        model=model,
        ref=ref,
        head=model.get_proportions(s.bulk, method="head", key_added=None),
        cpm=model._bulk_cpm(s.bulk, layer=None),
        signature=model.get_signature().to_numpy(),
        mrna=model.get_mrna_content().to_numpy(),
        train_s=time.perf_counter() - t0,
    )


def evaluate_fractions(t: Trained, frac: np.ndarray) -> dict:
    """``hpvade.benchmark.evaluate`` of cell fractions over ``t``'s model's types.

    Columns beyond the model's types (e.g. an extra component) are dropped and the rows
    renormalised; where the set's truth is in mRNA fractions, the cell fractions are turned
    into mRNA fractions with the model's contents first.
    """
    from run import bm

    from hpvade.model._refine import mrna_fractions

    frac = np.asarray(frac, dtype=np.float64)[:, : t.head.shape[1]]
    frac = frac / frac.sum(axis=1, keepdims=True)
    if t.bench.truth_kind == "mrna":
        frac = mrna_fractions(frac, t.mrna)
    pred = pd.DataFrame(frac, index=t.head.index, columns=t.head.columns)
    return bm.evaluate(pred, t.bench.truth, mapping=t.bench.mapping)
