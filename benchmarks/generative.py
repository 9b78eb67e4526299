"""What the generative model adds to the fractions: intervals and each sample's expression.

Pseudo-bulks are made of real pbmc3k cells held out from training (half of each type),
never from the model's decoder, in three scenarios:

- ``plain``: each type's cells drawn at random;
- ``platform``: the same, every gene scaled by one log-normal factor (sd 0.5) shared by
  all the bulks, as a change of protocol would;
- ``state``: each type's cells drawn from one of two sub-clusters of it (k-means on PCA of
  the held-out cells), as a donor's state would.

Printed: the coverage and mean width of the 90% intervals (``quantiles=(0.05, 0.95)``) per
scenario (and per type on the pseudo-bulks) and on the real sets under ``--data`` (only
truth columns that one model type maps to; a sum of types has no interval), and, on the
``state`` pseudo-bulks, how well ``get_cell_type_expression`` recovers each type's true
expression in each sample.

    python benchmarks/generative.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scvi
from scipy import sparse

import hpvade

sys.path.insert(0, str(Path(__file__).parent))
import run as R

LEVEL = (0.05, 0.95)


def split(ref: ad.AnnData, seed: int = 0) -> tuple[ad.AnnData, ad.AnnData]:
    rng = np.random.default_rng(seed)
    held = np.zeros(ref.n_obs, dtype=bool)
    for idx in ref.obs.groupby("cell_type", observed=True).indices.values():
        held[rng.permutation(idx)[: len(idx) // 2]] = True
    return ref[~held].copy(), ref[held].copy()


def subclusters(cells: ad.AnnData) -> np.ndarray:
    from sklearn.cluster import KMeans

    x = cells.copy()
    sc.pp.normalize_total(x, target_sum=1e4)
    sc.pp.log1p(x)
    sc.pp.pca(x, n_comps=20)
    sub = np.zeros(cells.n_obs, dtype=int)
    for t in cells.obs["cell_type"].cat.categories:
        idx = np.flatnonzero(cells.obs["cell_type"] == t)
        if idx.size >= 10:
            sub[idx] = KMeans(2, n_init=5, random_state=0).fit_predict(x.obsm["X_pca"][idx])
    return sub


def pseudobulks(cells, *, scenario, sub, n=60, k=500, seed=1):
    """Bulks (CPM), true cell fractions, and each type's true summed counts per bulk."""
    rng = np.random.default_rng(seed)
    types = list(cells.obs["cell_type"].cat.categories)
    X = sparse.csr_matrix(cells.X)
    labels = cells.obs["cell_type"].to_numpy()
    bulks, truth, parts = [], [], []
    for _ in range(n):
        counts = rng.multinomial(k, rng.dirichlet(np.ones(len(types))))
        total, part = np.zeros(cells.n_vars), {}
        for t, c in zip(types, counts, strict=True):
            if c == 0:
                continue
            idx = np.flatnonzero(labels == t)
            if scenario == "state":
                pool = idx[sub[idx] == rng.integers(2)]
                idx = pool if pool.size else idx
            part[t] = np.asarray(X[rng.choice(idx, c)].sum(axis=0)).ravel()
            total += part[t]
        bulks.append(total)
        truth.append(counts / k)
        parts.append(part)
    bulks = np.array(bulks)
    if scenario == "platform":
        bulks = bulks * np.exp(np.random.default_rng(99).normal(0, 0.5, cells.n_vars))
    cpm = bulks * (1e6 / bulks.sum(axis=1, keepdims=True))
    obs = pd.DataFrame(index=[f"s{i}" for i in range(n)])
    bulk = ad.AnnData(cpm.astype(np.float32), obs=obs, var=cells.var[[]].copy())
    return bulk, pd.DataFrame(np.array(truth), index=obs.index, columns=types), parts


def train(ref: ad.AnnData, bulk: ad.AnnData) -> hpvade.HPVADE:
    ref = ref.copy()
    scvi.settings.seed = 0
    hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
    model = hpvade.HPVADE(ref)
    model.train(bulk=bulk, accelerator="cpu", enable_progress_bar=False)
    return model


def coverage(bulk, truth, mapping, kind) -> tuple[float, float, int, float]:
    """Coverage, mean width, pairs scored and seconds, of the 90% intervals."""
    p = bulk.obsm["hpvade_proportions"]
    lo, hi = (bulk.obsm[f"hpvade_proportions_q{round(100 * q):02d}"] for q in LEVEL)
    mapping = mapping or {c: c for c in p.columns}
    hits, widths = [], []
    for col in truth.columns:
        src = [c for c in p.columns if mapping.get(c) == col]
        if len(src) != 1:
            continue
        t = truth[col].reindex(p.index).to_numpy()
        ok = np.isfinite(t)
        a, b = lo[src[0]].to_numpy()[ok], hi[src[0]].to_numpy()[ok]
        hits.append((t[ok] >= a - 1e-9) & (t[ok] <= b + 1e-9))
        widths.append(b - a)
    hits, widths = np.concatenate(hits), np.concatenate(widths)
    return float(hits.mean()), float(widths.mean()), int(hits.size), kind


def coverage_per_type(bulk, truth) -> pd.Series:
    """Coverage of the 90% intervals per cell type (every column of ``truth`` is a type)."""
    lo, hi = (bulk.obsm[f"hpvade_proportions_q{round(100 * q):02d}"] for q in LEVEL)
    t = truth.reindex(index=lo.index, columns=lo.columns)
    return ((t >= lo - 1e-9) & (t <= hi + 1e-9)).mean()


def expression_r(model, bulk, parts, min_umis=20_000) -> pd.DataFrame:
    """Per type: median over bulks of the Pearson r over the model's genes between the
    inferred and the true change of log CPM from the type's mean (the type mean itself has
    no change: r = 0), and of log CPM against the truth, for the inferred expression and
    for the type mean. Only bulks with about 20 cells of the type or more are scored."""
    expr = model.get_cell_type_expression(bulk)
    sig = model.get_signature()
    genes = pd.Index(model.genes_)
    pos = bulk.var_names.get_indexer(genes)
    rows = []
    for t, e in expr.items():
        base = np.log1p(sig[t].to_numpy())
        r_diff, r_inf, r_mean = [], [], []
        for i, part in enumerate(parts):
            if t not in part or part[t].sum() == 0:
                continue
            true = part[t][pos]
            if true.sum() < min_umis:  # about 20 cells' worth: fewer make a noisy truth
                continue
            true = np.log1p(true * (1e6 / true.sum()))
            inf = np.log1p(e.iloc[i].to_numpy())
            r_diff.append(np.corrcoef(inf - base, true - base)[0, 1])
            r_inf.append(np.corrcoef(inf, true)[0, 1])
            r_mean.append(np.corrcoef(base, true)[0, 1])
        if r_diff:
            rows.append(
                {
                    "type": t,
                    "bulks": len(r_diff),
                    "r change (inferred vs true)": np.median(r_diff),
                    "r log CPM, inferred": np.median(r_inf),
                    "r log CPM, type mean": np.median(r_mean),
                }
            )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="shared/data for real sets")
    parser.add_argument("--sets", default="finotello,hoek,monaco,cellbench")
    args = parser.parse_args(argv)
    R.quiet_in_process()

    ref = hpvade.data.pbmc3k_reference()
    train_ref, held = split(ref)
    sub = subclusters(held)
    rows, expr_table, per_type = [], None, {}
    for scenario in ("plain", "platform", "state"):
        bulk, truth, parts = pseudobulks(held, scenario=scenario, sub=sub)
        model = train(train_ref, bulk)
        t0 = time.perf_counter()
        model.get_proportions(bulk, quantiles=LEVEL)
        secs = time.perf_counter() - t0
        cov, width, n, _ = coverage(bulk, truth, None, "cell")
        rows.append((f"pseudo-bulks, {scenario}", bulk.n_obs, n, cov, width, secs))
        per_type[scenario] = coverage_per_type(bulk, truth)
        if scenario == "state":
            expr_table = expression_r(model, bulk, parts)
    if args.data is not None:
        for name in [s for s in args.sets.split(",") if s]:
            s = R.load_set(name, args.data)
            model = train(s.ref, s.bulk)
            t0 = time.perf_counter()
            model.get_proportions(s.bulk, quantiles=LEVEL, kind=s.truth_kind)
            secs = time.perf_counter() - t0
            cov, width, n, _ = coverage(s.bulk, s.truth, s.mapping, s.truth_kind)
            rows.append((name, s.bulk.n_obs, n, cov, width, secs))
    table = pd.DataFrame(
        rows, columns=["set", "bulks", "pairs", "coverage of 90% intervals", "mean width", "s"]
    )
    print("## Intervals\n")
    print(table.to_markdown(index=False, floatfmt=".3f"))
    print("\n## Coverage per type (pseudo-bulks)\n")
    print(pd.DataFrame(per_type).to_markdown(floatfmt=".2f"))
    print("\n## Each sample's expression of a type (state pseudo-bulks)\n")
    print(expr_table.to_markdown(index=False, floatfmt=".3f"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
