"""The bulk model's per-sample inference: each sample's fractions (and cell states) alone.

A bulk ``b_m`` (CPM over the model's genes) is modelled as

    rec_m = g * sum_c w_mc s_mc,  renormalised to 1e6,

with ``w_m`` the mRNA fractions of the cell fractions ``p_m`` (``p_m * k``, renormalised),
``s_mc`` the expression profile of type ``c`` in sample ``m`` (CPM, genes) and ``g`` the
gene-wise platform scale. The fit is weighted least squares on the square-root scale,
``sum_g u_g (sqrt(1 + rec_mg) - sqrt(1 + b_mg))^2 / (2 sigma^2)``, where the gene weights
``u`` and the residual variance ``sigma^2`` come from the platform fit of
:meth:`~hpvade.HPVADE.train` (what the user's bulks share), never from the other samples of
a call: a sample gets the same fractions alone or in a batch.

With per-sample states, ``s_mc = s_c * rho(zbar_c + d_mc) / rho(zbar_c)`` (columns back at
1e6): the reference profile of the type, moved along the VaDE decoder ``rho`` by the
sample's state offset ``d_mc``, whose prior is the spread of the type's cells in the latent
space, ``N(0, diag(sd_c^2))``. The decoder then says how a type's expression may change
(activation, donor state) within the range of states the reference spans.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from .._constants import CPM_SCALE

if TYPE_CHECKING:
    from collections.abc import Callable

#: Adam steps and learning rate of the per-sample fit
FIT_STEPS = 300
FIT_LR = 0.05
#: samples fitted at once (bounds memory for any number of bulks)
FIT_BATCH = 512


def reconstruct(
    p: torch.Tensor, profiles: torch.Tensor, mrna: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """Bulk CPM of cell fractions ``p`` (M x C).

    ``profiles`` are C x G (shared by all samples) or M x C x G (one set per sample).
    """
    w = p * mrna
    w = w / w.sum(dim=-1, keepdim=True).clamp(min=1e-30)
    if profiles.dim() == 2:
        mix = w @ profiles
    else:
        mix = torch.einsum("mc,mcg->mg", w, profiles)
    mix = mix * scale
    return CPM_SCALE * mix / mix.sum(dim=-1, keepdim=True).clamp(min=1e-30)


def sqrt_residuals(rec: torch.Tensor, cpm: torch.Tensor) -> torch.Tensor:
    """Squared residuals on the square-root scale, samples x genes."""
    return (torch.sqrt(1.0 + rec) - torch.sqrt(1.0 + cpm)) ** 2


def project_simplex(v: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of each row of ``v`` onto the probability simplex."""
    u, _ = torch.sort(v, dim=-1, descending=True)
    css = torch.cumsum(u, dim=-1) - 1.0
    k = torch.arange(1, v.shape[-1] + 1, dtype=v.dtype, device=v.device)
    rho = (u - css / k > 0).sum(dim=-1, keepdim=True).clamp(min=1)
    theta = torch.gather(css, -1, rho - 1) / rho.to(v.dtype)
    return (v - theta).clamp(min=0.0)


def _sqrt_objective(a, profiles, target, weights):
    """Per-sample weighted sum of squared square-root residuals, and R and sqrt(1 + R)."""
    mix = a @ profiles if profiles.dim() == 2 else torch.einsum("mc,mcg->mg", a, profiles)
    total = mix.sum(dim=-1, keepdim=True).clamp(min=1e-300)
    rec = CPM_SCALE * mix / total
    root = torch.sqrt(1.0 + rec)
    return ((root - target) ** 2 * weights).sum(dim=-1), rec, root, total


def solve_simplex(
    target: torch.Tensor,
    profiles: torch.Tensor,
    weights: torch.Tensor,
    a0: torch.Tensor,
    *,
    max_iter: int = 100,
    inner_iter: int = 100,
    tol: float = 1e-6,
) -> torch.Tensor:
    """Mixture weights on the simplex minimising the weighted square-root residuals.

    Each sample's ``a`` (M x C, rows on the simplex) minimises
    ``sum_g u_g (sqrt(1 + R_g(a)) - target_g)^2`` with ``R(a) = 1e6 (a V) / sum(a V)``,
    where ``V`` is ``profiles`` (C x G, or M x C x G). Damped Gauss-Newton: each step
    solves the linearised problem, a C x C quadratic over the simplex, by accelerated
    projected gradient, and is halved until the objective decreases. Samples are
    independent; every operation is batched over them, and its cost is that of a few
    products of the profiles, not of thousands of first-order steps.

    Parameters
    ----------
    target
        ``sqrt(1 + b)`` of the bulks, M x G.
    profiles
        C x G or M x C x G, non-negative.
    weights
        Gene weights, G or M x G.
    a0
        Starting weights, M x C (rows are projected onto the simplex).
    max_iter, inner_iter, tol
        Gauss-Newton steps, most projected-gradient steps per Gauss-Newton step (they stop
        once no weight moves by 1e-9), and the
        largest change of any weight under which a sample has converged (a sample whose
        objective falls by less than 1e-12 of itself has converged too).

    Returns
    -------
    torch.Tensor
        M x C, rows on the simplex.
    """
    a = project_simplex(a0)
    f, rec, root, total = _sqrt_objective(a, profiles, target, weights)
    shared = profiles.dim() == 2
    colsum = profiles.sum(dim=-1)  # C or M x C
    active = torch.arange(a.shape[0], device=a.device)
    for _ in range(max_iter):
        # only the samples that have not converged are stepped (each is fitted alone)
        idx = active
        prof = profiles if shared else profiles[idx]
        cs = colsum if shared else colsum[idx]
        w_i = weights if weights.dim() == 1 else weights[idx]
        tg = target[idx]
        a_i, f_i, rec_i, root_i, total_i = a[idx], f[idx], rec[idx], root[idx], total[idx]
        if shared:
            jr = CPM_SCALE * prof[None] - rec_i[:, None, :] * cs[None, :, None]
        else:
            jr = CPM_SCALE * prof - rec_i[:, None, :] * cs[:, :, None]
        jac = jr / (total_i[:, :, None] * 2.0 * root_i[:, None, :])  # m x C x G
        jw = jac * w_i
        hess = torch.einsum("mcg,mdg->mcd", jw, jac)
        grad = torch.einsum("mcg,mg->mc", jw, root_i - tg)
        lip = torch.linalg.eigvalsh(hess)[:, -1].clamp(min=1e-30)[:, None]
        x, y, t = a_i, a_i, 1.0
        for k in range(inner_iter):  # FISTA on 0.5 d'Hd + grad'd over the simplex
            g = torch.einsum("mcd,md->mc", hess, y - a_i) + grad
            x_new = project_simplex(y - g / lip)
            t_new = 0.5 * (1.0 + (1.0 + 4.0 * t * t) ** 0.5)
            y = x_new + ((t - 1.0) / t_new) * (x_new - x)
            done = k % 10 == 9 and float((x_new - x).abs().max()) < 1e-9
            x, t = x_new, t_new
            if done:
                break
        step = x - a_i
        scale = torch.ones_like(f_i)
        for _ in range(20):  # halve the step until the objective decreases
            cand = a_i + scale[:, None] * step
            f_new, rec_new, root_new, total_new = _sqrt_objective(cand, prof, tg, w_i)
            better = f_new <= f_i
            if bool(better.all()):
                break
            scale = torch.where(better, scale, 0.5 * scale)
        better = f_new <= f_i
        gain = torch.where(better, f_i - f_new, torch.zeros_like(f_i))
        new = torch.where(better[:, None], cand, a_i)
        moved = (new - a_i).abs().amax(dim=-1)
        f_i = torch.where(better, f_new, f_i)
        a[idx] = new
        f[idx] = f_i
        rec[idx] = torch.where(better[:, None], rec_new, rec_i)
        root[idx] = torch.where(better[:, None], root_new, root_i)
        total[idx] = torch.where(better[:, None], total_new, total_i)
        active = idx[(moved > tol) & (gain > 1e-12 * f_i.abs())]
        if active.numel() == 0:
            break
    return a


def fit_samples(
    cpm: np.ndarray,
    signature: np.ndarray,
    mrna: np.ndarray,
    p0: np.ndarray,
    *,
    scale: np.ndarray,
    weights: np.ndarray,
    residual_var: float = 1.0,
    decoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
    state_mean: np.ndarray | None = None,
    state_sd: np.ndarray | None = None,
    n_steps: int = FIT_STEPS,
    lr: float = FIT_LR,
    batch_size: int = FIT_BATCH,
) -> tuple[np.ndarray, np.ndarray | None]:
    """MAP fractions (and state offsets) of each sample, fitted independently.

    Parameters
    ----------
    cpm
        Bulk profiles, samples x genes, CPM over the signature's genes.
    signature
        Genes x types, CPM: each type's reference profile.
    mrna
        Relative mRNA content per type.
    p0
        Starting cell fractions, samples x types.
    scale
        Gene-wise platform scale.
    weights
        Gene weights (non-negative).
    residual_var
        Variance of the square-root-scale residuals; sets the weight of the data against
        the states' prior.
    decoder
        Function of latent states (... x L) to normalised expression (... x G, rows sum
        to 1); ``None`` fits no states.
    state_mean, state_sd
        Each type's mean state and spread in the latent space (C x L).
    n_steps, lr
        Adam steps and learning rate.
    batch_size
        Samples fitted at once.

    Returns
    -------
    p : numpy.ndarray
        Cell fractions, samples x types, rows summing to 1.
    offsets : numpy.ndarray or None
        State offsets ``d``, samples x types x L (``None`` without a decoder).
    """
    cpm = np.asarray(cpm, dtype=np.float64)
    n = cpm.shape[0]
    ps, ds = [], []
    for start in range(0, n, batch_size):
        sl = slice(start, start + batch_size)
        p, d = _fit_batch(
            torch.as_tensor(cpm[sl]),
            torch.as_tensor(np.asarray(signature, dtype=np.float64).T),
            torch.as_tensor(np.asarray(mrna, dtype=np.float64)),
            torch.as_tensor(np.asarray(p0, dtype=np.float64)[sl]),
            torch.as_tensor(np.asarray(scale, dtype=np.float64)),
            torch.as_tensor(np.asarray(weights, dtype=np.float64)),
            float(residual_var),
            decoder,
            state_mean,
            state_sd,
            n_steps,
            lr,
        )
        ps.append(p)
        ds.append(d)
    p = np.concatenate(ps)
    return p / p.sum(axis=1, keepdims=True), (None if decoder is None else np.concatenate(ds))


def state_profiles(
    profiles: torch.Tensor,
    offsets: torch.Tensor,
    decoder: Callable[[torch.Tensor], torch.Tensor],
    state_mean: torch.Tensor,
) -> torch.Tensor:
    """Each sample's profile of each type: M x C x G, CPM.

    ``profiles`` (C x G) moved by the decoder's log-fold change between the type's mean
    state and the state ``state_mean + offsets`` (M x C x L).
    """
    base = torch.log(decoder(state_mean).clamp(min=1e-12))  # C x G
    moved = torch.log(decoder(state_mean + offsets).clamp(min=1e-12))  # M x C x G
    s = profiles * torch.exp(moved - base)
    return CPM_SCALE * s / s.sum(dim=-1, keepdim=True).clamp(min=1e-30)


def bulk_loss(
    logits: torch.Tensor,
    offsets: torch.Tensor | None,
    target: torch.Tensor,
    profiles: torch.Tensor,
    mrna: torch.Tensor,
    scale: torch.Tensor,
    weights: torch.Tensor,
    residual_var: float,
    decoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
    state_mean: torch.Tensor | None = None,
    state_sd: torch.Tensor | None = None,
) -> torch.Tensor:
    """Negative log posterior of each sample (M): the bulk likelihood plus the states' prior.

    ``logits`` (M x C) give the cell fractions through a softmax; ``offsets`` (M x C x L,
    whitened: in units of each type's spread ``state_sd``) the states, decoded by
    ``decoder``; ``target`` is ``sqrt(1 + b)``. Gradients reach the fractions, the
    states and, through the decoder, its parameters.
    """
    p = torch.softmax(logits, dim=-1)
    if decoder is None or offsets is None:
        rec = reconstruct(p, profiles, mrna, scale)
        prior = torch.zeros(p.shape[0], dtype=rec.dtype, device=rec.device)
    else:
        moved = state_profiles(profiles.float(), offsets * state_sd, decoder, state_mean)
        rec = reconstruct(p, moved.to(profiles.dtype), mrna, scale)
        prior = 0.5 * (offsets**2).sum(dim=(1, 2)).to(rec.dtype)
    res = (torch.sqrt(1.0 + rec) - target) ** 2
    return 0.5 * (res * weights).sum(dim=-1) / residual_var + prior


def _fit_batch(
    cpm, profiles, mrna, p0, scale, weights, residual_var, decoder, state_mean, state_sd, n, lr
):
    target = torch.sqrt(1.0 + cpm)
    w = weights / weights.mean()
    if decoder is None:  # one profile per type: the fast solver in the mRNA weights
        a0 = p0 * mrna
        a = solve_simplex(target, profiles * scale, w, a0 / a0.sum(dim=-1, keepdim=True))
        p = a / mrna
        return (p / p.sum(dim=-1, keepdim=True)).numpy(), None
    mean = torch.as_tensor(state_mean, dtype=torch.float32)
    sd = torch.as_tensor(state_sd, dtype=torch.float32)
    logits = torch.log(p0.clamp(min=1e-4)).requires_grad_(True)
    offsets = torch.zeros((cpm.shape[0], *mean.shape), requires_grad=True)
    opt = torch.optim.Adam([logits, offsets], lr=lr)
    with torch.enable_grad():
        for _ in range(n):
            opt.zero_grad()
            loss = bulk_loss(
                logits, offsets, target, profiles, mrna, scale, w, residual_var, decoder, mean, sd
            )
            loss.sum().backward()  # each sample's terms depend on its own parameters only
            opt.step()
    with torch.no_grad():
        return torch.softmax(logits, dim=-1).numpy(), (offsets * sd).numpy()


def fit_platform(
    cpm: np.ndarray,
    signature: np.ndarray,
    mrna: np.ndarray,
    p0: np.ndarray,
    *,
    adapt: bool,
) -> dict[str, np.ndarray | float]:
    """What the user's bulks share: the platform scale, gene weights and residual variance.

    Run once by :meth:`~hpvade.HPVADE.train` on all the bulks given to it:

    1. a robust fit without a platform scale (:func:`~hpvade.model.robust_fit`), its Cauchy
       gene weights iterated to convergence, sets each type's level whatever the start;
    2. the gene-wise platform scale calibrated from those fractions
       (:func:`~hpvade.model.calibrate_platform`) and a fit with one round of gene
       reweighting, step 1's weights as its prior (:func:`~hpvade.model.refine_proportions`);
    3. with ``adapt``, the signature updated towards the bulks
       (:func:`~hpvade.model.adapt_signature`) and step 2 repeated with it.

    The last fit's platform scale and gene weights, and the weighted mean of its squared
    residuals, are what :func:`fit_samples` then uses for any sample.

    Returns
    -------
    dict
        ``signature`` (genes x types, CPM), ``scale`` (genes, geometric mean 1),
        ``weights`` (genes, mean 1), ``residual_var`` (float) and ``p`` (the bulks'
        fractions of the last fit).
    """
    from ._refine import adapt_signature, refine_proportions, robust_fit

    cpm = np.asarray(cpm, dtype=np.float64)
    signature = np.asarray(signature, dtype=np.float64)
    mrna = np.asarray(mrna, dtype=np.float64)
    p1, w1 = robust_fit(cpm, signature, mrna, p0, return_weights=True)
    if cpm.shape[0] < 2:  # nothing to calibrate against: no scale, the robust weights
        scale, weights, p = np.ones(signature.shape[0]), w1, p1
    else:
        p, scale, weights = refine_proportions(
            cpm, signature, mrna, p1, gene_weights=w1, return_weights=True
        )
        if adapt:
            signature = adapt_signature(cpm, signature, mrna, p)
            # the updated signature fits the genes that step 1 shed: weights start afresh
            p, scale, weights = refine_proportions(cpm, signature, mrna, p, return_weights=True)
    scale = scale / np.exp(np.mean(np.log(scale)))
    t = torch.as_tensor
    res = sqrt_residuals(reconstruct(t(p), t(signature.T), t(mrna), t(scale)), t(cpm)).numpy()
    residual_var = float((res * weights).mean() / weights.mean())
    return {
        "signature": signature,
        "scale": scale,
        "weights": weights / weights.mean(),
        "residual_var": max(residual_var, 1e-8),
        "p": p,
    }
