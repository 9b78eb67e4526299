"""How well the deconvolution head generalises to cells it has not seen.

Trains hpvade on the half of pbmc3k that the ``pseudobulk`` benchmark set keeps as the
reference, then scores three sets of 200 pseudo-bulks (Dirichlet(1) fractions, 500 cells):
drawn from the training cells themselves, and drawn from the held-out half; the head's
fractions and the refined ones (``method="refine"``). Prints the mean per-type Pearson r.

    python benchmarks/head_gap.py --data ../shared/data [--n-genes 1000 5000] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import anndata as ad
import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, train one model per gene budget, print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    p.add_argument("--n-genes", type=int, nargs="+", default=[1000, 5000])
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    import scvi

    import hpvade
    import hpvade.benchmark as bm

    full = ad.read_h5ad(a.data / "pbmc" / "ref_pbmc3k_hvg2000_counts.h5ad")
    train, held = bm.split_reference(full, labels_key="cell_type", seed=0)
    sets = {}
    for name, cells in (("training cells", train), ("held-out cells", held)):
        sets[name] = bm.pseudobulk(
            cells, labels_key="cell_type", n_samples=200, n_cells=500, alpha=1.0, seed=1
        )
    rows = []
    for n_genes in a.n_genes:
        ref = train.copy()
        scvi.settings.seed = a.seed
        hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
        model = hpvade.HPVADE(ref, n_genes=n_genes)
        t0 = time.perf_counter()
        model.train(accelerator="cpu", enable_progress_bar=False)
        wall = time.perf_counter() - t0
        for name, (bulk, truth) in sets.items():
            for method in ("head", "refine"):
                pred = model.get_proportions(bulk, method=method, key_added=None)
                r = bm.evaluate(pred, truth)["pearson_mean"]
                rows.append((n_genes, len(model.genes_), name, method, round(r, 3), round(wall)))
    df = pd.DataFrame(rows, columns=["n_genes", "genes", "pseudo-bulks of", "method", "r", "s"])
    print(
        df.pivot_table(
            index=["n_genes", "genes", "s"], columns=["pseudo-bulks of", "method"], values="r"
        ).to_string()
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
