from __future__ import annotations

import numpy as np
import torch

from .._constants import CPM_SCALE

# The robust, calibration-free first step of the platform fit (``train(bulk=...)``): Cauchy
# gene weights at 4 x the median squared residual, iterated until no fraction moves by more
# than 5e-4 (at most 20 rounds). A scale of 1 or 1.5 drifted to wrong gene subsets on
# synthetic platform shifts; 3 and above did not.
ROBUST_WEIGHT_SCALE = 4.0
ROBUST_REWEIGHT_ROUNDS = 20
ROBUST_TOL = 5e-4
# The signature update of ``get_proportions``' third step: a ridge penalty (in units of each
# gene's mean expression) and the fewest samples per cell type that turn it on by default.
# Forced on about as many samples as types (the 8-9 PBMC bulks, 9 types) it lost accuracy;
# on CellBench's mixtures (3 types) it helps from 15 samples on (docs/benchmarks.md).
ADAPT_PENALTY = 0.3
ADAPT_MIN_SAMPLES_PER_TYPE = 5


def _mix(p: torch.Tensor, signature: torch.Tensor, mrna: torch.Tensor) -> torch.Tensor:
    """Bulk CPM of cell fractions ``p`` (samples x types) through ``signature`` (genes x types)."""
    w = p * mrna
    w = w / w.sum(dim=-1, keepdim=True).clamp(min=1e-30)
    return w @ signature.T


def mrna_fractions(p: np.ndarray, mrna: np.ndarray) -> np.ndarray:
    """Fractions of the samples' mRNA from cell fractions: ``p * mrna``, rows renormalised.

    Parameters
    ----------
    p
        Cell fractions, samples x types.
    mrna
        Relative mRNA content per type.

    Returns
    -------
    numpy.ndarray
        mRNA fractions, samples x types, rows summing to 1.
    """
    w = np.asarray(p, dtype=np.float64) * np.asarray(mrna, dtype=np.float64)
    return w / w.sum(axis=1, keepdims=True)


def calibrate_platform(
    cpm: np.ndarray, signature: np.ndarray, mrna: np.ndarray, p0: np.ndarray, *, eps: float = 1.0
) -> np.ndarray:
    """Gene-wise platform scale that makes the reconstruction of ``p0`` match the bulks.

    ``log g = mean over samples of log((b + eps) / (S m p0 + eps))``: the geometric mean ratio
    of observed to reconstructed CPM, where ``p0`` is a first estimate of the fractions (in
    ``get_proportions``, its first, calibration-free robust fit).
    It absorbs what is common to every bulk (protocol, gene length, depth of coverage, the
    reference's platform), not what differs between samples.

    Parameters
    ----------
    cpm
        Bulk profiles, samples x genes, CPM.
    signature
        Genes x types, CPM.
    mrna
        Relative mRNA content per type.
    p0
        Cell fractions, samples x types.
    eps
        Pseudo-count (CPM) of the ratio.

    Returns
    -------
    numpy.ndarray
        Scale per gene (geometric mean over genes is not normalised; only ratios matter).
    """
    rec = _mix(torch.as_tensor(p0), torch.as_tensor(signature), torch.as_tensor(mrna)).numpy()
    return np.exp(np.mean(np.log((cpm + eps) / (rec + eps)), axis=0))


def _calibrated(
    signature: np.ndarray, scale: np.ndarray, mrna: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The signature and mRNA contents of the bulks' platform, given its gene-wise scale.

    The bulks see ``g * (S w)``, renormalised per sample (as
    :meth:`~hpvade.model.HPVADEModule.reconstruct_bulk` and :func:`calibrate_platform`
    model them). The same, written with columns back at 1e6 (CPM): the signature
    ``g * S`` with each column rescaled to 1e6, and each type's mRNA content multiplied by
    the factor its column was divided by. A type whose genes the platform favours then
    weighs more in every bulk, and the fractions ``p0`` that calibrated ``g`` are
    reconstructed as calibrated; rescaling the columns alone would shift the fit's levels
    away from them.
    """
    sig = signature * scale[:, None]
    total = sig.sum(axis=0)
    base = signature.sum(axis=0)
    ok = (total > 0) & (base > 0)  # an empty column stays empty and keeps its content
    factor = np.where(ok, total / np.where(ok, base, 1.0), 1.0)
    sig = sig / np.where(ok, total, 1.0)
    return CPM_SCALE * sig, mrna * factor / np.exp(np.log(factor).mean())


def _fit_sqrt(
    target: torch.Tensor,
    signature: torch.Tensor,
    mrna: torch.Tensor,
    p0: np.ndarray,
    weights: torch.Tensor,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares on the square-root scale over the simplex, started at ``p0``.

    Solved in the mRNA weights by :func:`~hpvade.model._bulk.solve_simplex`. Returns the
    cell fractions and the squared residuals (samples x genes) at the solution.
    """
    from ._bulk import solve_simplex

    a0 = torch.as_tensor(p0) * mrna
    a0 = a0 / a0.sum(dim=-1, keepdim=True).clamp(min=1e-300)
    profiles = signature.T.contiguous()
    a = solve_simplex(target, profiles, weights, a0)
    with torch.no_grad():
        p = a / mrna
        p = p / p.sum(dim=-1, keepdim=True)
        res = (torch.sqrt(1.0 + _mix(p, signature, mrna)) - target) ** 2
    return p.numpy(), res.numpy()


def _prior_weights(gene_weights: np.ndarray | None, n_genes: int) -> np.ndarray:
    """Validated prior gene weights, mean 1 (ones if ``None``)."""
    if gene_weights is None:
        return np.ones(n_genes)
    w = np.asarray(gene_weights, dtype=np.float64)
    if w.shape != (n_genes,) or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(
            f"gene_weights must hold {n_genes} finite, non-negative numbers (one per gene of "
            "the signature), not all zero."
        )
    return w / w.mean()


def refine_proportions(
    cpm: np.ndarray,
    signature: np.ndarray,
    mrna: np.ndarray,
    p0: np.ndarray,
    *,
    calibrate: bool = True,
    n_reweight: int = 1,
    weight_scale: float = 1.0,
    tol: float = 0.0,
    gene_weights: np.ndarray | None = None,
    return_weights: bool = False,
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Refine cell fractions by fitting the bulks with the signature on a square-root scale.

    1. With ``calibrate=True``, the starting fractions ``p0`` set a gene-wise platform scale
       ``g`` (:func:`calibrate_platform`): what every bulk shares and the reference lacks.
    2. Each sample's fractions minimise ``mean_g w_g (sqrt(1 + rec_g) - sqrt(1 + b_g))^2``
       with ``rec = g S m p / sum(m p)`` renormalised to CPM sample by sample (the model
       the calibration assumes, so that ``p0`` is reconstructed as calibrated; a type whose
       genes ``g`` favours weighs more in every bulk), over the simplex (damped
       Gauss-Newton started at ``p0``). The square root stabilises the count noise, so
       that neither the few highest genes (linear scale) nor the many low, noisy ones (log
       scale) dominate.
    3. Gene weights start equal; each of ``n_reweight`` rounds sets
       ``w_g = 1 / (v_g + c median(v))`` (``c = weight_scale``), ``v_g`` being gene g's mean
       squared residual over the samples, and fits again: Cauchy weights with the scale
       ``c median(v)``. The default ``c = 1`` discounts harder than the textbook tuning
       (2.385 standard deviations, ``c`` about 12.5). Genes the signature cannot explain in
       these bulks (donor biology, protocol artefacts) lose weight; where the signature
       fits, weights stay near equal. ``tol`` > 0 with many rounds iterates the weights to
       convergence (a robust M-estimate).

    A single sample has nothing to calibrate against (the scale would explain it entirely):
    with ``calibrate=True`` it keeps ``p0``.

    Parameters
    ----------
    cpm
        Bulk profiles, samples x genes, CPM.
    signature
        Genes x types, CPM (columns sum to 1e6).
    mrna
        Relative mRNA content per type.
    p0
        Starting cell fractions, samples x types (the head's, or a first fit's).
    calibrate
        Whether to calibrate the platform scale from ``p0`` first.
    n_reweight
        Rounds of gene reweighting after the first fit.
    weight_scale
        ``c`` of the gene weights, in units of the median squared residual.
    tol
        Reweighting stops early once no fraction changes by more than ``tol`` between two
        rounds (``0``: run every round).
    gene_weights
        Prior weight per gene (non-negative, e.g. the inverse of a known noise variance);
        ``None`` weighs genes equally. The first fit uses them as they are; each
        reweighting round multiplies them by the Cauchy weights of the residuals
        standardised by them. Only their ratios matter.
    return_weights
        Also return the gene weights of the last fit.

    Returns
    -------
    p : numpy.ndarray
        Refined cell fractions, samples x types, rows summing to 1.
    scale : numpy.ndarray
        The gene-wise platform scale that was used (ones if ``calibrate=False``).
    weights : numpy.ndarray
        Only with ``return_weights=True``: the gene weights of the last fit (the prior
        times the Cauchy weights of the last reweighting round, mean 1).

    Examples
    --------
    >>> import numpy as np
    >>> from hpvade.model import refine_proportions
    >>> rng = np.random.default_rng(0)
    >>> S = rng.gamma(1.0, size=(200, 3))
    >>> S = 1e6 * S / S.sum(axis=0)
    >>> p_true = rng.dirichlet(np.ones(3), size=20)
    >>> p, _ = refine_proportions(p_true @ S.T, S, np.ones(3), np.full((20, 3), 1 / 3),
    ...                           calibrate=False)
    >>> bool(np.abs(p - p_true).max() < 0.02)
    True
    """
    cpm = np.asarray(cpm, dtype=np.float64)
    signature = np.asarray(signature, dtype=np.float64)
    mrna = np.asarray(mrna, dtype=np.float64)
    p0 = np.asarray(p0, dtype=np.float64)
    prior = _prior_weights(gene_weights, signature.shape[0])
    if calibrate:
        scale = calibrate_platform(cpm, signature, mrna, p0)
    else:
        scale = np.ones(signature.shape[0])
    if calibrate and cpm.shape[0] < 2:
        p = p0 / p0.sum(axis=1, keepdims=True)
        return (p, scale, prior) if return_weights else (p, scale)
    sig, content = _calibrated(signature, scale, mrna)

    with torch.enable_grad():
        s_t = torch.as_tensor(sig)
        m_t = torch.as_tensor(content)
        target = torch.sqrt(1.0 + torch.as_tensor(cpm))
        w = prior
        p, res = _fit_sqrt(target, s_t, m_t, p0, torch.as_tensor(w))
        for _ in range(n_reweight):
            v = res.mean(axis=0) * prior
            w = prior / (v + weight_scale * max(float(np.median(v)), 1e-12))
            w = w / w.mean()
            previous = p
            p, res = _fit_sqrt(target, s_t, m_t, p, torch.as_tensor(w))
            if np.abs(p - previous).max() < tol:
                break
    p = p / p.sum(axis=1, keepdims=True)
    return (p, scale, w) if return_weights else (p, scale)


def robust_fit(
    cpm: np.ndarray,
    signature: np.ndarray,
    mrna: np.ndarray,
    p0: np.ndarray,
    *,
    gene_weights: np.ndarray | None = None,
    return_weights: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The first, calibration-free step of ``get_proportions(method="refine")``.

    :func:`refine_proportions` without a platform scale, its Cauchy gene weights (scale
    ``ROBUST_WEIGHT_SCALE`` times the median squared residual) iterated until no fraction
    moves by more than ``ROBUST_TOL`` (at most ``ROBUST_REWEIGHT_ROUNDS`` rounds). Its
    fractions anchor the calibration of the second step, and its gene weights are the
    second step's prior weights. ``gene_weights`` are passed on to
    :func:`refine_proportions`.

    Parameters
    ----------
    cpm
        Bulk profiles, samples x genes, CPM.
    signature
        Genes x types, CPM (columns sum to 1e6).
    mrna
        Relative mRNA content per type.
    p0
        Starting cell fractions, samples x types.
    gene_weights
        Prior weight per gene, as in :func:`refine_proportions`.
    return_weights
        Also return the gene weights of the last fit.

    Returns
    -------
    p : numpy.ndarray
        Cell fractions, samples x types, rows summing to 1.
    weights : numpy.ndarray
        Only with ``return_weights=True``: the gene weights of the last fit (the prior
        times the Cauchy weights, mean 1); genes the signature cannot explain in these
        bulks without a platform scale weigh little.

    Examples
    --------
    >>> import numpy as np
    >>> from hpvade.model import robust_fit
    >>> rng = np.random.default_rng(0)
    >>> S = rng.gamma(1.0, size=(200, 3))
    >>> S = 1e6 * S / S.sum(axis=0)
    >>> p_true = rng.dirichlet(np.ones(3), size=20)
    >>> bulk = p_true @ S.T
    >>> bulk[:, :20] *= 8.0  # the bulks' platform measures 20 genes 8-fold higher
    >>> p, w = robust_fit(bulk, S, np.ones(3), np.full((20, 3), 1 / 3), return_weights=True)
    >>> bool(w[:20].max() < w[20:].min())
    True
    """
    p, _, weights = refine_proportions(
        cpm,
        signature,
        mrna,
        p0,
        calibrate=False,
        n_reweight=ROBUST_REWEIGHT_ROUNDS,
        weight_scale=ROBUST_WEIGHT_SCALE,
        tol=ROBUST_TOL,
        gene_weights=gene_weights,
        return_weights=True,
    )
    return (p, weights) if return_weights else p


def adapt_signature(
    cpm: np.ndarray,
    signature: np.ndarray,
    mrna: np.ndarray,
    p: np.ndarray,
    *,
    penalty: float = ADAPT_PENALTY,
) -> np.ndarray:
    """The signature updated towards the bulks, given their fractions (a reference update).

    With the gene-wise platform scale ``g`` calibrated from ``p`` (:func:`calibrate_platform`),
    each gene's profile over the types is re-estimated from the bulks by a ridge regression
    of its expression on the samples' mRNA fractions as the bulks' platform weighs them
    (see :func:`refine_proportions`: each type's content times the factor of its calibrated
    column), shrunk towards the calibrated signature:
    ``s = argmin ||c - W s||^2 + penalty ||s - s0||^2``, with ``c`` and ``s`` in units of the
    gene's mean expression over the bulks, so that one ``penalty`` suits every gene. One linear
    solve serves all genes. The result is floored at 1% of the calibrated signature, the
    platform scale is taken out again, and columns sum to 1e6 again. With many samples of
    varied composition it moves each type's profile to the cells the bulks actually hold (the
    cells of a reference are a finite sample, and the bulks' cells differ from them); with few
    samples, the penalty keeps it near the reference.

    Parameters
    ----------
    cpm
        Bulk profiles, samples x genes, CPM over the signature's genes.
    signature
        Genes x types, CPM (columns sum to 1e6).
    mrna
        Relative mRNA content per type.
    p
        Cell fractions of the samples (e.g. the refined ones), samples x types.
    penalty
        Ridge penalty towards the calibrated signature; larger keeps it closer.

    Returns
    -------
    numpy.ndarray
        The updated signature, genes x types, CPM (columns sum to 1e6).
    """
    if not (np.isfinite(penalty) and penalty > 0):
        raise ValueError(f"penalty must be a positive number, got {penalty!r}.")
    cpm = np.asarray(cpm, dtype=np.float64)
    scale = calibrate_platform(cpm, signature, mrna, p)
    start, content = _calibrated(np.asarray(signature, dtype=np.float64), scale, mrna)
    w = mrna_fractions(p, content)  # samples x types, fractions of the bulks' mRNA
    unit = cpm.mean(axis=0) + 1.0  # each gene's mean expression (CPM)
    s0 = (start / unit[:, None]).T  # types x genes
    lhs = w.T @ w + penalty * np.eye(w.shape[1])
    delta = np.linalg.solve(lhs, w.T @ (cpm / unit - w @ s0))
    updated = np.maximum((s0 + delta).T * unit[:, None], 0.01 * start) / scale[:, None]
    return CPM_SCALE * updated / updated.sum(axis=0, keepdims=True)
