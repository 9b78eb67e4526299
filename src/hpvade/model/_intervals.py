"""Intervals of the cell fractions: posterior spread, calibrated on held-out reference cells.

Each sample's spread comes from refitting it under draws of what the bulk model leaves
uncertain (:func:`posterior_draws`):

- **cell states**: each draw replaces every type's profile by the mean of one local state of
  the type (a random cell of the type and its nearest neighbours on the principal
  components of the cells' log expression, :func:`expression_components`, a quarter of the
  type's cells), so a sample may hold any state the reference spans;
- **genes**: each draw reweights the genes by independent Exp(1) weights (a Bayesian
  bootstrap over genes), for the gene-wise misfit that the platform scale does not absorb.

A sample's spread ``sigma`` is the root mean square deviation of its draws from its fitted
fractions. The profile mismatch that moves the fractions lies largely *in* the span of the
signature, where no posterior built from one sample can see it, so ``sigma`` is too small on
its own (90% intervals from the draws alone covered 30-45% of the true fractions on
pseudo-bulks of held-out cells). Its scale is therefore calibrated by split-conformal
prediction (:func:`calibrate`): the reference's cells are split in halves, a signature is
built from one, pseudo-bulks are made from the other with each type drawn from one local
state, and the interval for a level ``1 - alpha`` is ``p +/- s * (sigma + DELTA)`` with
``s`` the ``1 - alpha`` quantile of ``|p - truth| / (sigma + DELTA)`` over those
pseudo-bulks.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import sparse
from scipy.sparse.linalg import LinearOperator, svds

from .._constants import CPM_SCALE
from ..pp._genes import type_profiles
from ._bulk import fit_samples, solve_simplex

#: posterior draws per sample
N_DRAWS = 30
#: a local state: this share of the type's cells nearest a random one on the components
STATE_FRACTION = 0.25
#: principal components of the cells' log expression that place them in states
N_COMPONENTS = 20
#: floor added to each sample's spread (a fraction); keeps intervals open at the simplex's edge
DELTA = 0.01
#: the solver's limits for a draw (its spread needs 1e-3, not the point fit's 1e-6)
DRAW_MAX_ITER = 20
DRAW_INNER_ITER = 50
DRAW_TOL = 1e-4
#: calibration pseudo-bulks, and cells summed into each
N_CALIBRATION = 60
CALIBRATION_CELLS = 500


def _cpm_rows(X) -> sparse.csr_matrix:
    X = sparse.csr_matrix(X, dtype=np.float64)
    total = np.asarray(X.sum(axis=1)).ravel()
    return sparse.diags(CPM_SCALE / np.where(total > 0, total, 1.0)) @ X


def expression_components(X, n_comps: int = N_COMPONENTS, *, seed: int = 0) -> np.ndarray:
    """The cells' first ``n_comps`` principal components of log expression (cells x comps).

    Each cell's counts ``X`` (cells x genes, sparse) are scaled to the cells' median total
    and log1p-transformed; the components are those of the centred matrix, found by a
    truncated SVD that centres implicitly, so ``X`` is never densified. Cells close on them
    share an expression state, which the VaDE latent space, trained to separate the types,
    does not follow within a type.
    """
    X = sparse.csr_matrix(X, dtype=np.float64)
    total = np.asarray(X.sum(axis=1)).ravel()
    target = np.median(total[total > 0]) if (total > 0).any() else 1.0
    L = (sparse.diags(target / np.where(total > 0, total, 1.0)) @ X).log1p().tocsr()
    n, g = L.shape
    k = min(n_comps, min(n, g) - 1)
    if k < 1:
        return np.zeros((n, 1))
    mu = np.asarray(L.mean(axis=0)).ravel()

    def centred(v: np.ndarray) -> np.ndarray:  # (L - 1 mu^T) v, for a vector or a matrix
        return L @ v - mu @ v

    def centred_t(u: np.ndarray) -> np.ndarray:  # (L - 1 mu^T)^T u
        return L.T @ u - np.multiply.outer(mu, u.sum(axis=0))

    op = LinearOperator(
        (n, g),
        matvec=centred,
        rmatvec=centred_t,
        matmat=centred,
        rmatmat=centred_t,
        dtype=np.float64,
    )
    u, s, _ = svds(op, k=k, random_state=seed)
    return u * s


def _local_state(z: np.ndarray, anchor: int, n: int) -> np.ndarray:
    """Indices (into ``z``) of the ``n`` cells nearest ``z[anchor]``."""
    d = ((z - z[anchor]) ** 2).sum(axis=1)
    return np.argpartition(d, n - 1)[:n] if n < len(z) else np.arange(len(z))


def state_signatures(
    X, codes: np.ndarray, states: np.ndarray, n_types: int, *, n_draws: int, seed: int
) -> np.ndarray:
    """``n_draws`` signatures (draws x genes x types, CPM), each type at one local state.

    ``X`` holds the cells' counts over the model's genes, ``codes`` their types and
    ``states`` their positions in expression (:func:`expression_components`).
    """
    rng = np.random.default_rng(seed)
    cpm = _cpm_rows(X)
    out = np.zeros((n_draws, X.shape[1], n_types))
    for c in range(n_types):
        idx = np.flatnonzero(codes == c)
        if idx.size == 0:
            continue
        z = states[idx]
        n = max(1, int(round(STATE_FRACTION * idx.size)))
        for k in range(n_draws):
            cells = idx[_local_state(z, int(rng.integers(idx.size)), n)]
            prof = np.asarray(cpm[cells].mean(axis=0)).ravel()
            out[k, :, c] = prof * (CPM_SCALE / max(prof.sum(), 1e-300))
    return out


def gene_draws(n_genes: int, n_draws: int, *, seed: int) -> np.ndarray:
    """Exp(1) gene weights of the Bayesian bootstrap, draws x genes (the same for any sample)."""
    return np.random.default_rng(seed).exponential(1.0, (n_draws, n_genes))


def posterior_draws(
    cpm: np.ndarray,
    p: np.ndarray,
    signatures: np.ndarray,
    mrna: np.ndarray,
    *,
    scale: np.ndarray,
    weights: np.ndarray,
    reweight: np.ndarray,
    batch_size: int = 512,
) -> np.ndarray:
    """Each sample's cell fractions refitted under every draw: draws x samples x types.

    Draw ``k`` fits the sample against ``signatures[k]`` (times the platform ``scale``) with
    gene weights ``weights * reweight[k]``, from its fitted fractions ``p``. Samples are
    fitted independently, so a sample's draws do not depend on the others in the call.
    """
    cpm = np.asarray(cpm, dtype=np.float64)
    mr = torch.as_tensor(np.asarray(mrna, dtype=np.float64))
    g = torch.as_tensor(np.asarray(scale, dtype=np.float64))
    w = torch.as_tensor(np.asarray(weights, dtype=np.float64))
    w = w / w.mean()
    out = np.empty((signatures.shape[0], *p.shape))
    for start in range(0, cpm.shape[0], batch_size):
        sl = slice(start, start + batch_size)
        target = torch.sqrt(1.0 + torch.as_tensor(cpm[sl]))
        a0 = torch.as_tensor(p[sl]) * mr
        a0 = a0 / a0.sum(dim=-1, keepdim=True)
        for k in range(signatures.shape[0]):
            profiles = torch.as_tensor(signatures[k].T) * g
            a = solve_simplex(
                target,
                profiles,
                w * torch.as_tensor(reweight[k]),
                a0,
                max_iter=DRAW_MAX_ITER,
                inner_iter=DRAW_INNER_ITER,
                tol=DRAW_TOL,
            )
            q = a / mr
            out[k, sl] = (q / q.sum(dim=-1, keepdim=True)).numpy()
    return out


def spread(p: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Root mean square deviation of the draws from ``p``, plus :data:`DELTA`."""
    return np.sqrt(((draws - p[None]) ** 2).mean(axis=0)) + DELTA


def calibrate(
    X, libsize: np.ndarray, codes: np.ndarray, states: np.ndarray, n_types: int, *, seed: int
) -> np.ndarray:
    """Conformity scores ``|p - truth| / spread`` on pseudo-bulks of held-out reference cells.

    Half of each type's cells make a signature (and mRNA contents) and the state draws; the
    other half make :data:`N_CALIBRATION` pseudo-bulks with Dirichlet(1) fractions, each
    type's cells drawn from one local state of it (of the size the draws use,
    :data:`STATE_FRACTION` of the type's cells). Returns the sorted scores of every
    (pseudo-bulk, type) pair.
    """
    rng = np.random.default_rng(seed)
    X = sparse.csr_matrix(X)
    half = np.zeros(codes.size, dtype=bool)
    for c in range(n_types):
        idx = np.flatnonzero(codes == c)
        half[rng.permutation(idx)[: max(1, idx.size // 2)]] = True
    a_idx, b_idx = np.flatnonzero(half), np.flatnonzero(~half)
    sig, mrna = type_profiles(X[a_idx], libsize[a_idx], codes[a_idx], n_types)
    draws_sig = state_signatures(
        X[a_idx], codes[a_idx], states[a_idx], n_types, n_draws=N_DRAWS, seed=seed + 1
    )
    by_type = [b_idx[codes[b_idx] == c] for c in range(n_types)]
    bulks = np.zeros((N_CALIBRATION, X.shape[1]))
    truth = np.zeros((N_CALIBRATION, n_types))
    for i in range(N_CALIBRATION):
        counts = rng.multinomial(CALIBRATION_CELLS, rng.dirichlet(np.ones(n_types)))
        for c, idx in enumerate(by_type):
            if idx.size == 0:
                counts[c] = 0
                continue
            if counts[c] == 0:
                continue
            n = max(1, int(round(STATE_FRACTION * idx.size)))  # a state as the draws see it
            pool = idx[_local_state(states[idx], int(rng.integers(idx.size)), n)]
            bulks[i] += np.asarray(X[rng.choice(pool, counts[c])].sum(axis=0)).ravel()
        truth[i] = counts / counts.sum()
    cpm = bulks * (CPM_SCALE / bulks.sum(axis=1, keepdims=True))
    ones = np.ones(X.shape[1])
    p, _ = fit_samples(
        cpm, sig, mrna, np.full(truth.shape, 1.0 / n_types), scale=ones, weights=ones
    )
    reweight = gene_draws(X.shape[1], N_DRAWS, seed=seed + 2)
    d = posterior_draws(cpm, p, draws_sig, mrna, scale=ones, weights=ones, reweight=reweight)
    present = np.array([idx.size > 0 for idx in by_type])
    scores = np.abs(p - truth) / spread(p, d)
    return np.sort(scores[:, present].ravel())


def half_width(scores: np.ndarray, level: float) -> float:
    """The conformal multiplier of a two-sided interval of coverage ``level``."""
    n = scores.size
    k = min(n - 1, int(np.ceil((n + 1) * level)) - 1)
    return float(scores[max(k, 0)])


def quantile_key(q: float) -> str:
    """``obsm`` suffix of quantile ``q``: ``0.05`` -> ``"q05"``, ``0.975`` -> ``"q97.5"``."""
    pct = round(100.0 * q, 6)
    return f"q{int(pct):02d}" if float(pct).is_integer() else f"q{pct:g}"


def _check_quantiles(quantiles, *, method: str, key_added: str | None) -> list[float]:
    if quantiles is None:
        return []
    if isinstance(quantiles, (int, float)):
        quantiles = [quantiles]
    values = [float(q) for q in quantiles]
    bad = [q for q in values if not 0.0 < q < 1.0]
    if bad:
        raise ValueError(
            f"quantiles must lie strictly between 0 and 1, e.g. (0.05, 0.95); got {bad}."
        )
    if method != "refine":
        raise ValueError("quantiles come from the bulk model's fit: use method='refine'.")
    if key_added is None:
        raise ValueError(
            "quantiles are written to bulk.obsm[key_added + '_q..']: pass a key_added."
        )
    return values
