"""What :class:`~hpvade.HPVADE` does with bulks: the platform fit and each sample's fit."""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import torch
from mudata import MuData
from scvi import REGISTRY_KEYS

from .._constants import CPM_SCALE, PROPORTIONS_KEY
from ..pp._genes import _columns, _get_matrix, match_genes
from ..pp._validate import check_bulk, check_shared_genes
from ._bulk import fit_platform, fit_samples
from ._intervals import (
    _check_quantiles,
)
from ._quality import QUALITY_SUFFIX, sample_quality, warn_degenerate
from ._refine import ADAPT_MIN_SAMPLES_PER_TYPE, mrna_fractions

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from anndata import AnnData

logger = logging.getLogger(__name__)

#: most bulks the platform fit of ``train(bulk=...)`` uses (a seeded random subset beyond)
PLATFORM_MAX_BULKS = 1000


def _mudata_modalities(mdata: MuData) -> tuple[AnnData, AnnData]:
    """The reference and bulk modalities recorded by :meth:`HPVADE.setup_mudata`."""
    mods = mdata.uns.get("hpvade")
    if not mods:
        raise ValueError("Set up the MuData first: HPVADE.setup_mudata(mdata, labels_key=...).")
    return mdata.mod[mods["reference_mod"]], mdata.mod[mods["bulk_mod"]]


class BulkMixin:
    """Bulk-side methods of :class:`~hpvade.HPVADE`: platform fit, per-sample fits, getters."""

    def _checked_cpm(self, bulk: AnnData, *, layer: str | None) -> np.ndarray:
        """:meth:`_bulk_cpm` of a bulk to deconvolve, after the checks with messages for people.

        Gene names first: a transposed or wrongly annotated bulk is the likelier mistake, and
        its values would otherwise be judged against the wrong axis.
        """
        check_shared_genes(
            bulk.var_names, self.genes_, bulk_obs_names=bulk.obs_names, warn_missing=False
        )
        check_bulk(bulk, layer=layer, warn_single=False)
        return self._bulk_cpm(bulk, layer=layer)

    def _bulk_cpm(self, bulk: AnnData, *, layer: str | None) -> np.ndarray:
        """Bulk profiles as CPM over the model's genes (samples x G, float32).

        Genes are matched by name. Missing genes are filled with the signature's mean
        expression, and the present genes are scaled so that their share of the 1e6 matches
        that of the signature, so that a missing gene never looks like a zero.
        """
        # too few shared genes -> an error that shows both sides; missing ones warn below
        check_shared_genes(
            bulk.var_names, self.genes_, bulk_obs_names=bulk.obs_names, warn_missing=False
        )
        positions, missing = match_genes(bulk.var_names, self.genes_)
        n_genes = len(self.genes_)
        present = positions >= 0
        if missing:
            warnings.warn(
                f"{len(missing)} of the model's {n_genes} genes are missing from the bulk "
                f"(e.g. {missing[:5]}); they are filled with the signature's mean expression.",
                UserWarning,
                stacklevel=3,  # the user's call of train / get_proportions
            )
        # values were checked by check_bulk (finite, non-negative, linear scale)
        X = _columns(_get_matrix(bulk, layer), positions[present]).toarray().astype(np.float64)
        sig_mean = self.module.signature.detach().cpu().numpy().mean(axis=1).astype(np.float64)
        share = sig_mean[present].sum() / CPM_SCALE
        totals = X.sum(axis=1, keepdims=True)
        if (totals <= 0).any():
            empty = list(bulk.obs_names[(totals <= 0).ravel()][:5])
            raise ValueError(
                f"Bulk samples with no counts over the model's genes: {empty}. Remove them."
            )
        out = np.empty((bulk.n_obs, n_genes), dtype=np.float64)
        out[:, present] = X * (CPM_SCALE * share / totals)
        out[:, ~present] = sig_mean[~present][None, :]
        return out.astype(np.float32)

    def _reference_sample(self, max_cells_per_type: int = 500) -> list[np.ndarray]:
        """A seeded subset of each type's cells (at most ``max_cells_per_type``), by type."""
        codes = np.asarray(self.adata_manager.get_from_registry(REGISTRY_KEYS.LABELS_KEY)).ravel()
        rng = np.random.default_rng(0)
        keep = []
        for c in range(len(self.cell_types_)):
            idx = np.flatnonzero(codes == c)
            if idx.size > max_cells_per_type:
                idx = np.sort(rng.choice(idx, max_cells_per_type, replace=False))
            keep.append(idx)
        return keep

    @torch.inference_mode()
    def _set_states(self) -> None:
        """Each type's mean state and spread in the latent space, from its encoded cells."""
        self._intervals_cache = None
        keep = self._reference_sample()
        order = np.concatenate(keep)
        q_m = self._cell_outputs(None, order, None, "q_m")
        mean = np.zeros((len(self.cell_types_), q_m.shape[1]), dtype=np.float32)
        sd = np.ones_like(mean)
        start = 0
        for c, idx in enumerate(keep):
            z = q_m[start : start + idx.size]
            start += idx.size
            if len(z):
                mean[c] = z.mean(axis=0)
            if len(z) > 1:
                sd[c] = np.maximum(z.std(axis=0), 1e-3)
        self.module.state_mean.copy_(torch.as_tensor(mean))
        self.module.state_sd.copy_(torch.as_tensor(sd))

    def _fit_platform(
        self, cpm: np.ndarray, *, adapt: bool | None, p0: np.ndarray | None = None
    ) -> None:
        """Fit what the bulks ``cpm`` share (see :func:`~hpvade.model._bulk.fit_platform`).

        ``p0`` starts the robust fit (default: the head's fractions).
        """
        m = self.module
        self._intervals_cache = None
        n_types = len(self.cell_types_)
        if adapt is None:
            adapt = cpm.shape[0] >= ADAPT_MIN_SAMPLES_PER_TYPE * n_types
        if cpm.shape[0] > PLATFORM_MAX_BULKS:  # a gene-wise mean: a random subset suffices
            keep = np.sort(
                np.random.default_rng(0).choice(cpm.shape[0], PLATFORM_MAX_BULKS, replace=False)
            )
            cpm = cpm[keep]
            p0 = None if p0 is None else p0[keep]
        fit = fit_platform(
            cpm,
            m.signature.detach().cpu().double().numpy(),
            m.mrna_content.detach().cpu().double().numpy(),
            self._predict(cpm) if p0 is None else p0,
            adapt=adapt,
        )
        with torch.no_grad():
            logits = np.log(fit["signature"] + 1e-2)
            m.signature_logits.copy_(torch.as_tensor(logits, dtype=torch.float32))
            m.log_gene_scale.copy_(torch.as_tensor(np.log(fit["scale"]), dtype=torch.float32))
            m.gene_weights.copy_(torch.as_tensor(fit["weights"], dtype=torch.float32))
            m.residual_var.fill_(float(fit["residual_var"]))
            m.platform_fitted.fill_(True)
        self.diagnostics_["platform"] = {
            "n_bulks": int(cpm.shape[0]),
            "signature_adapted": bool(adapt),
            "residual_var": float(fit["residual_var"]),
            "scale_log_sd": float(np.log(fit["scale"]).std()),
        }
        logger.info(
            "Platform fit on %d bulks: log-scale sd %.2f, signature %s",
            cpm.shape[0],
            np.log(fit["scale"]).std(),
            "updated towards the bulks" if adapt else "kept",
        )

    def _fit(self, cpm: np.ndarray, p0: np.ndarray, *, states: bool = False):
        """Each sample's fractions (and state offsets) under the bulk model, alone."""
        m = self.module
        m.eval()
        params = [q for q in m.parameters() if q.requires_grad]
        for q in params:  # gradients go to the samples' parameters only
            q.requires_grad_(False)
        try:
            return fit_samples(
                cpm,
                m.signature.detach().cpu().double().numpy(),
                m.mrna_content.detach().cpu().double().numpy(),
                p0,
                scale=self.get_platform_scale().to_numpy(),
                weights=self.get_gene_weights().to_numpy(),
                residual_var=float(m.residual_var),
                decoder=m.decode_states if states else None,
                state_mean=m.state_mean.detach().cpu().numpy(),
                state_sd=m.state_sd.detach().cpu().numpy(),
            )
        finally:
            for q in params:
                q.requires_grad_(True)

    # ------------------------------------------------------------------ outputs
    @torch.inference_mode()
    def _predict(self, cpm: np.ndarray, *, batch_size: int = 1024) -> np.ndarray:
        """The head's cell fractions of bulk CPM profiles (samples x types, float64)."""
        self.module.eval()
        out = []
        for start in range(0, cpm.shape[0], batch_size):
            x = torch.as_tensor(cpm[start : start + batch_size], device=self.device)
            p = torch.softmax(self.module.predict_logits(x), dim=-1)
            out.append(p.double().cpu().numpy())
        p = np.concatenate(out, axis=0)
        return p / p.sum(axis=1, keepdims=True)

    def get_proportions(
        self,
        bulk: AnnData | MuData,
        *,
        layer: str | None = None,
        key_added: str | None = PROPORTIONS_KEY,
        kind: Literal["cell", "mrna"] = "cell",
        method: Literal["refine", "head"] = "refine",
        mrna_content: Mapping[str, float] | pd.Series | None = None,
        quantiles: Sequence[float] | None = None,
        batch_size: int = 1024,
    ) -> pd.DataFrame:
        """Cell-type proportions of bulk samples.

        The deconvolution head predicts the fractions of every sample in one forward pass
        (``method="head"``). By default (``method="refine"``) each sample is then fitted by
        the bulk model on its own: its CPM profile against the signature, the mRNA
        contents and the platform fit of :meth:`train` (the gene-wise platform scale and
        gene weights estimated from all the bulks given to ``train``, saved with the
        model; :meth:`get_platform_scale`), by weighted least squares on a square-root
        scale over the simplex. A sample gets
        the same fractions alone or with others, in any call.

        A model trained without bulks has no platform fit: it then fits with a flat scale
        and equal gene weights, and warns. Pass the bulks of one protocol to
        ``train(bulk=...)``.

        Parameters
        ----------
        bulk
            Bulk samples (counts or TPM), samples x genes; genes are matched by name. A
            MuData set up with :meth:`setup_mudata` stands for its bulk modality (the
            proportions go into that modality's ``obsm``).
        layer
            Layer of ``bulk`` with the values; ``None`` uses ``bulk.X``.
        key_added
            ``bulk.obsm`` key the proportions are written to; ``None`` writes nothing.
            Each sample's quality figures go to ``bulk.uns[key_added + "_qc"]``: a sample whose
            signal rests on a few genes, or that the signature hardly explains, is
            degenerate and named in a warning (see ``docs/input-checks.md``).
        kind
            ``"cell"``: fractions of cells (what flow cytometry measures); ``"mrna"``:
            fractions of the sample's mRNA.
        method
            ``"refine"``: the head's fractions refined by the signature fits above;
            ``"head"``: the head's fractions as they are.
        mrna_content
            Relative mRNA content of every cell type (only ratios matter), used instead of
            the learnt one (:meth:`get_mrna_content`) to turn the samples' mRNA fractions
            into cell fractions. ``None`` (default) uses the learnt one, which starts from
            the reference's mean library size per type. Pass measured contents when you
            have them: single-cell library sizes can misjudge the bulk's mRNA per cell
            (on PBMC, 10x UMI totals make monocytes too light against T cells; see
            the benchmarks page). It changes cell fractions only, not ``kind="mrna"``.
        quantiles
            Quantiles of each fraction to write next to it, e.g. ``(0.05, 0.95)`` for a 90%
            interval: ``bulk.obsm[key_added + "_q05"]`` and ``[key_added + "_q95"]``, data
            frames like the proportions, with the lower bound at most the fraction and the
            upper at least it, in [0, 1]. Each sample is refitted under draws of the cell
            states the reference spans and of gene weights (a Bayesian bootstrap), and the
            spread of those fits is scaled so that intervals reach their coverage on
            pseudo-bulks of held-out reference cells (split-conformal calibration; see
            the docs page "Intervals and cell-type expression"). Needs
            ``method="refine"`` and ``key_added``; it adds about 30 fits per sample.
        batch_size
            Samples per forward pass.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``bulk.obs_names``, one column per cell type; rows sum to 1.

        Examples
        --------
        >>> import hpvade
        >>> ref, bulk = hpvade.data.synthetic(seed=0)
        >>> hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
        >>> model = hpvade.HPVADE(ref)
        >>> model.train(max_epochs=2, enable_progress_bar=False)
        >>> content = model.get_mrna_content()
        >>> content.iloc[0] *= 2  # the first type carries twice the mRNA per cell
        >>> p = model.get_proportions(bulk, mrna_content=content, key_added=None)
        >>> bool(abs(p.sum(axis=1) - 1).max() < 1e-9)
        True
        """
        self._check_if_trained(warn=False)
        if isinstance(bulk, MuData):
            bulk = _mudata_modalities(bulk)[1]
        if kind not in ("cell", "mrna"):
            raise ValueError(f"kind must be 'cell' or 'mrna', got {kind!r}.")
        if method not in ("refine", "head"):
            raise ValueError(f"method must be 'refine' or 'head', got {method!r}.")
        quantiles = _check_quantiles(quantiles, method=method, key_added=key_added)
        content = None if mrna_content is None else self._content_array(mrna_content)
        cpm = self._checked_cpm(bulk, layer=layer)
        p = self._predict(cpm, batch_size=batch_size)
        mrna = self.module.mrna_content.detach().cpu().double().numpy()
        if method == "refine":
            if not bool(self.module.platform_fitted):
                warnings.warn(
                    "The model was trained without bulks, so it has no platform fit (gene-wise "
                    "scale and gene weights of your bulks' protocol): fitting without them. "
                    "Pass your bulks to train(bulk=...) for the full model.",
                    UserWarning,
                    stacklevel=2,
                )
            p, _ = self._fit(cpm, p)

        def convert(q: np.ndarray) -> np.ndarray:
            if kind == "mrna":
                return mrna_fractions(q, mrna)
            if content is not None:  # mRNA fractions (learnt content) -> cells (the user's)
                return mrna_fractions(q, mrna / content)
            return q

        bounds = self._intervals(cpm, p, quantiles, convert) if quantiles else {}
        p = convert(p)
        # degenerate samples (signal in a few genes, unrelated to the signature) are named
        signature = self.module.signature.detach().cpu().double().numpy()
        quality = sample_quality(cpm, signature, index=bulk.obs_names.copy())
        warn_degenerate(quality)
        if key_added is not None:
            bulk.uns[key_added + QUALITY_SUFFIX] = quality
        df = pd.DataFrame(p, index=bulk.obs_names.copy(), columns=list(self.cell_types_))
        if key_added is not None:
            bulk.obsm[key_added] = df
            for name, values in bounds.items():
                bulk.obsm[f"{key_added}_{name}"] = pd.DataFrame(
                    values, index=df.index.copy(), columns=df.columns.copy()
                )
        return df
