"""What hpvade reports when a bulk holds cells that no reference type stands for.

hpvade has no "unknown" fraction yet: the reference types' fractions always sum to 1. This
benchmark measures what that costs, on pseudo-bulks made of real cells held out from the
reference (half of each pbmc3k type; the other half trains the model):

- ``tumour``: lung adenocarcinoma cells (CellBench's H2228, H1975 and HCC827, CEL-seq2;
  genes mapped to symbols with ``data/cellbench_ensembl_to_symbol.csv.gz``) make 0-80% of
  the cells of each bulk, PBMC cells the rest. Each tumour cell's counts are scaled to the
  median library size of the PBMC cells (another protocol, with ten times the counts per
  cell), so a tumour cell carries as much mRNA as a typical PBMC.
- ``missing <type>``: one PBMC type is left out of the reference and makes 0-40% of the
  cells of each bulk.

Printed per scenario: the mean true share of the absent cells, the mean of the fractions
hpvade reports for the reference types (their sum is 1 in every bulk), the mean per-type r
and the mean absolute error of those fractions against the true fractions, and the same
errors against the truth renormalised over the reference's types (what a method without an
unknown component can at best report), and the type whose reported fraction exceeds its true
one most on average.

    python benchmarks/unknown.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

import hpvade

sys.path.insert(0, str(Path(__file__).parent))
import run as R
from generative import split, train

HERE = Path(__file__).parent


def tumour_cells(data: Path) -> ad.AnnData:
    """CellBench's cell-line cells with gene symbols as ``var_names``."""
    cells = ad.read_h5ad(data / "cellbench" / "ref_celseq2_3cl_counts.h5ad")
    table = pd.read_csv(HERE / "data" / "cellbench_ensembl_to_symbol.csv.gz")
    symbol = pd.Series(table["symbol"].to_numpy(), index=table["ensembl_id"])
    keep = cells.var_names.isin(symbol.index)
    cells = cells[:, keep].copy()
    cells.var_names = pd.Index(symbol.reindex(cells.var_names).to_numpy(), dtype=str)
    return cells


def mixtures(pbmc, absent, *, share_max, rescale, n=60, k=500, seed=5):
    """Bulks (CPM over ``pbmc``'s genes) of PBMC cells and ``absent`` cells, and the truth.

    ``absent`` holds the cells no reference type stands for, with counts over any genes;
    with ``rescale``, each is scaled to the PBMC cells' median library size (over the
    genes they share), for cells of another protocol.
    """
    rng = np.random.default_rng(seed)
    genes = pbmc.var_names
    X = sparse.csr_matrix(pbmc.X, dtype=np.float64)
    A = np.zeros((absent.n_obs, genes.size))
    shared = absent.var_names.intersection(genes)
    A[:, genes.get_indexer(shared)] = sparse.csr_matrix(absent[:, shared].X).toarray()
    if rescale:
        pbmc_lib = np.median(np.asarray(X.sum(axis=1)).ravel())
        A *= pbmc_lib / np.maximum(A.sum(axis=1, keepdims=True), 1.0)
    labels = pbmc.obs["cell_type"].to_numpy()
    types = list(pbmc.obs["cell_type"].cat.categories)
    bulks, truth = [], []
    for _ in range(n):
        n_absent = rng.binomial(k, rng.uniform(0.0, share_max))
        counts = rng.multinomial(k - n_absent, rng.dirichlet(np.ones(len(types))))
        total = np.zeros(genes.size)
        for t, c in zip(types, counts, strict=True):
            if c:
                total += np.asarray(X[rng.choice(np.flatnonzero(labels == t), c)].sum(0)).ravel()
        if n_absent:
            total += rng.poisson(A[rng.choice(absent.n_obs, n_absent)].sum(axis=0))
        bulks.append(total)
        truth.append(np.append(counts, n_absent) / k)
    bulks = np.array(bulks)
    obs = pd.DataFrame(index=[f"m{i}" for i in range(n)])
    bulk = ad.AnnData(
        (bulks * (1e6 / bulks.sum(axis=1, keepdims=True))).astype(np.float32),
        obs=obs,
        var=pd.DataFrame(index=genes),
    )
    return bulk, pd.DataFrame(np.array(truth), index=obs.index, columns=[*types, "absent"])


def score(name: str, p: pd.DataFrame, truth: pd.DataFrame) -> dict:
    types = list(p.columns)
    known = truth[types]
    renorm = known.div(known.sum(axis=1), axis=0)

    def mean_r(t: pd.DataFrame) -> float:
        return float(np.nanmean([np.corrcoef(p[c], t[c])[0, 1] for c in types if t[c].std() > 0]))

    excess = (p - known).mean()
    return {
        "scenario": name,
        "absent share (true)": truth["absent"].mean(),
        "reference types, reported": p.sum(axis=1).mean(),
        "reference types, true": known.sum(axis=1).mean(),
        "r (true)": mean_r(known),
        "MAE (true)": float((p - known).abs().to_numpy().mean()),
        "r (renormalised)": mean_r(renorm),
        "MAE (renormalised)": float((p - renorm).abs().to_numpy().mean()),
        "most inflated": f"{excess.idxmax()} (+{excess.max():.2f})",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="shared/data (CellBench cells)")
    parser.add_argument("--missing", default="B,NK,CD14+ Mono", help="types to leave out")
    args = parser.parse_args(argv)
    R.quiet_in_process()
    ref = hpvade.data.pbmc3k_reference()
    train_ref, held = split(ref)
    rows = []
    bulk, truth = mixtures(held, tumour_cells(args.data), share_max=0.8, rescale=True)
    model = train(train_ref, bulk)
    rows.append(score("tumour cells 0-80%", model.get_proportions(bulk, key_added=None), truth))
    for t in [s for s in args.missing.split(",") if s]:
        keep = held.obs["cell_type"] != t
        pbmc = held[keep].copy()
        pbmc.obs["cell_type"] = pbmc.obs["cell_type"].cat.remove_unused_categories()
        bulk, truth = mixtures(pbmc, held[~keep], share_max=0.4, rescale=False)
        ref_t = train_ref[train_ref.obs["cell_type"] != t].copy()
        ref_t.obs["cell_type"] = ref_t.obs["cell_type"].cat.remove_unused_categories()
        model = train(ref_t, bulk)
        p = model.get_proportions(bulk, key_added=None)
        rows.append(score(f"missing {t} 0-40%", p, truth))
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
