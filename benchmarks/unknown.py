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

The second table tries the estimator an ``unknown`` column would need, outside the package
(:func:`free_background`): one background profile shared by the bulks of a call, a share of
it per bulk, fitted jointly with the fractions and the gene-wise platform scale. It is
scored on the same scenarios (the absent share's r and MAE; the reference types' r and MAE
with and without it) and on the real PBMC sets, where the truth has no absent cells to speak
of (Monaco: about 10%, its ``true_other`` and ``true_other_T`` columns) and the reference
types' r (over the truth columns one or more types map to) shows what the background takes
from them.

    python benchmarks/unknown.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import torch
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


def _mean_r(p: pd.DataFrame, t: pd.DataFrame) -> float:
    return float(np.nanmean([np.corrcoef(p[c], t[c])[0, 1] for c in t.columns if t[c].std() > 0]))


def score(name: str, p: pd.DataFrame, truth: pd.DataFrame) -> dict:
    types = list(p.columns)
    known = truth[types]
    renorm = known.div(known.sum(axis=1), axis=0)
    excess = (p - known).mean()
    return {
        "scenario": name,
        "absent share (true)": truth["absent"].mean(),
        "reference types, reported": p.sum(axis=1).mean(),
        "reference types, true": known.sum(axis=1).mean(),
        "r (true)": _mean_r(p, known),
        "MAE (true)": float((p - known).abs().to_numpy().mean()),
        "r (renormalised)": _mean_r(p, renorm),
        "MAE (renormalised)": float((p - renorm).abs().to_numpy().mean()),
        "most inflated": f"{excess.idxmax()} (+{excess.max():.2f})",
    }


def free_background(model, bulk, *, steps: int = 1500, lr: float = 0.05) -> pd.DataFrame:
    """Cell fractions with an ``unknown`` column, from a background fitted to ``bulk``.

    Model (square-root scale, the bulk model's gene weights left out): each bulk is
    ``(1 - u) * known + u * b``, with ``known`` the platform-scaled mixture of the reference
    types (CPM), ``b`` one background profile (CPM) and ``u`` the bulk's share of reads in
    it. ``b``, the gene-wise scale and every bulk's mixture are fitted jointly by Adam, from
    two starts (scale 1, and the model's platform scale), keeping the lower loss. The share
    becomes a cell fraction with the reference types' median mRNA content.
    """
    t = torch.as_tensor
    cpm = model._bulk_cpm(bulk, layer=None).astype(np.float64)
    p0, _ = model._fit(cpm, model._predict(cpm.astype(np.float32)))
    sig = model.module.signature.detach().double()
    mrna = model.module.mrna_content.detach().double().numpy()
    n, c = p0.shape
    target = torch.sqrt(1.0 + t(cpm))
    a0 = p0 * mrna
    a0 = a0 / a0.sum(axis=1, keepdims=True)
    rec = (a0 @ sig.numpy().T) * model.get_platform_scale().to_numpy()
    rec = rec * (1e6 / rec.sum(axis=1, keepdims=True))
    start_b = np.log(np.clip((cpm - rec).mean(axis=0), 0.0, None) + 1.0)
    best = None
    for log_scale in (np.zeros(cpm.shape[1]), np.log(model.get_platform_scale().to_numpy())):
        start = np.concatenate([0.95 * a0, np.full((n, 1), 0.05)], axis=1)
        logits = torch.log(t(start)).requires_grad_(True)
        logg = t(log_scale.copy()).requires_grad_(True)
        beta = t(start_b.copy()).requires_grad_(True)
        opt = torch.optim.Adam([logits, logg, beta], lr=lr)
        for _ in range(steps):
            opt.zero_grad()
            pi = torch.softmax(logits, dim=-1)
            known = (pi[:, :c] @ sig.T) * torch.exp(logg)
            known = known / known.sum(dim=-1, keepdim=True)
            back = pi[:, c:] * torch.softmax(beta, 0)
            mix = 1e6 * (known * pi[:, :c].sum(-1, keepdim=True) + back)
            loss = ((torch.sqrt(1.0 + mix) - target) ** 2).sum()
            loss.backward()
            opt.step()
        if best is None or float(loss) < best[0]:
            best = (float(loss), torch.softmax(logits, dim=-1).detach().numpy())
    pi = best[1]
    cells = np.concatenate([pi[:, :c] / mrna, pi[:, c:] / np.median(mrna)], axis=1)
    cells = cells / cells.sum(axis=1, keepdims=True)
    return pd.DataFrame(cells, index=bulk.obs_names, columns=[*model.cell_types_, "unknown"])


def score_background(name: str, model, bulk, truth: pd.DataFrame) -> dict:
    """The free background on a pseudo-bulk scenario (``truth`` has an ``absent`` column)."""
    without = model.get_proportions(bulk, key_added=None)
    with_bg = free_background(model, bulk)
    types = list(without.columns)
    u, true_u = with_bg["unknown"], truth["absent"]
    return {
        "scenario": name,
        "unknown (true)": true_u.mean(),
        "unknown (reported)": u.mean(),
        "unknown r": float(np.corrcoef(u, true_u)[0, 1]),
        "unknown MAE": float((u - true_u).abs().mean()),
        "types r, without": _mean_r(without, truth[types]),
        "types r, with": _mean_r(with_bg[types], truth[types]),
        "types MAE, without": float((without - truth[types]).abs().to_numpy().mean()),
        "types MAE, with": float((with_bg[types] - truth[types]).abs().to_numpy().mean()),
    }


def score_background_real(name: str, data: Path) -> dict:
    """The free background on a real set: the unknown share and the types' r against flow."""
    s = R.load_set(name, data)
    model = train(s.ref, s.bulk)
    without = model.get_proportions(s.bulk, key_added=None)
    with_bg = free_background(model, s.bulk)

    def mapped(p: pd.DataFrame) -> pd.DataFrame:
        cols = {
            col: p[[c for c in p.columns if s.mapping.get(c) == col]].sum(axis=1)
            for col in s.truth.columns
            if any(s.mapping.get(c) == col for c in p.columns)
        }
        return pd.DataFrame(cols)

    obs = s.bulk.obs
    other = [c for c in ("true_other", "true_other_T") if c in obs]
    return {
        "scenario": f"{name} (real)",
        "unknown (true)": obs[other].sum(axis=1).mean() if other else np.nan,
        "unknown (reported)": with_bg["unknown"].mean(),
        "types r, without": _mean_r(mapped(without), s.truth),
        "types r, with": _mean_r(mapped(with_bg), s.truth),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="shared/data (CellBench cells)")
    parser.add_argument("--missing", default="B,NK,CD14+ Mono", help="types to leave out")
    parser.add_argument("--real", default="finotello,hoek,monaco", help="real sets to score")
    args = parser.parse_args(argv)
    R.quiet_in_process()
    ref = hpvade.data.pbmc3k_reference()
    train_ref, held = split(ref)
    rows, bg_rows = [], []
    bulk, truth = mixtures(held, tumour_cells(args.data), share_max=0.8, rescale=True)
    model = train(train_ref, bulk)
    rows.append(score("tumour cells 0-80%", model.get_proportions(bulk, key_added=None), truth))
    bg_rows.append(score_background("tumour cells 0-80%", model, bulk, truth))
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
        bg_rows.append(score_background(f"missing {t} 0-40%", model, bulk, truth))
    for name in [s for s in args.real.split(",") if s]:
        bg_rows.append(score_background_real(name, args.data))
    print("## Without an unknown column (hpvade today)\n")
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f"))
    print("\n## A free background (not in the package)\n")
    print(pd.DataFrame(bg_rows).to_markdown(index=False, floatfmt=".3f"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
