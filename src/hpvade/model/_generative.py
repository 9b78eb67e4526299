"""What only a generative model gives: intervals of the fractions, each sample's expression."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from mudata import MuData

from .._constants import CPM_SCALE
from ..pp._genes import type_profiles
from ._bulk import reconstruct
from ._bulkmixin import _mudata_modalities
from ._intervals import (
    N_DRAWS,
    calibrate,
    expression_components,
    gene_draws,
    half_width,
    posterior_draws,
    quantile_key,
    spread,
    state_signatures,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from anndata import AnnData


class GenerativeMixin:
    """Intervals and per-sample expression of :class:`~hpvade.HPVADE` (uses the bulk fit)."""

    def _interval_model(self) -> dict:
        """What the intervals need, computed once per trained model (seeded, so reproducible).

        Signature draws at local cell states, relative to the reference's type means and
        applied to the model's signature; the genes' bootstrap weights; the conformity
        scores of :func:`~hpvade.model._intervals.calibrate`.
        """
        cached = getattr(self, "_intervals_cache", None)
        if cached is not None:
            return cached
        keep = self._reference_sample()
        order = np.concatenate(keep)
        codes = np.concatenate([np.full(idx.size, c) for c, idx in enumerate(keep)])
        Xg, _, libsize, _ = self._reference_counts(self.genes_)
        X, lib = Xg[order], np.asarray(libsize)[order]
        states = expression_components(X, seed=0)
        n_types = len(self.cell_types_)
        draws = state_signatures(X, codes, states, n_types, n_draws=N_DRAWS, seed=0)
        base, _ = type_profiles(X, lib, codes, n_types)
        sig = self.module.signature.detach().cpu().double().numpy()
        draws = sig[None] * (draws + 1.0) / (base[None] + 1.0)  # pseudo-count of 1 CPM
        draws *= CPM_SCALE / draws.sum(axis=1, keepdims=True)
        self._intervals_cache = {
            "signatures": draws,
            "reweight": gene_draws(len(self.genes_), N_DRAWS, seed=1),
            "scores": calibrate(X, lib, codes, states, n_types, seed=0),
        }
        return self._intervals_cache

    def _intervals(
        self,
        cpm: np.ndarray,
        p: np.ndarray,
        quantiles: Sequence[float],
        convert: Callable[[np.ndarray], np.ndarray],
    ) -> dict[str, np.ndarray]:
        """Bounds at ``quantiles`` of the fractions ``convert(p)`` (cell fractions ``p``)."""
        im = self._interval_model()
        draws = posterior_draws(
            cpm,
            p,
            im["signatures"],
            self.module.mrna_content.detach().cpu().double().numpy(),
            scale=self.get_platform_scale().to_numpy(),
            weights=self.get_gene_weights().to_numpy(),
            reweight=im["reweight"],
        )
        point = convert(p)
        sigma = spread(point, np.stack([convert(d) for d in draws]))
        out = {}
        for q in quantiles:
            s = half_width(im["scores"], abs(2.0 * q - 1.0))
            out[quantile_key(q)] = np.clip(point + np.sign(q - 0.5) * s * sigma, 0.0, 1.0)
        return out

    def get_cell_type_expression(
        self,
        bulk: AnnData | MuData,
        cell_type: str | None = None,
        *,
        layer: str | None = None,
    ) -> pd.DataFrame | dict[str, pd.DataFrame]:
        """Each sample's expression of a cell type: its share of the sample's reads.

        The bulk model writes each gene's CPM in a sample as the sum of what each type
        contributes, ``g * w_c * s_c`` (platform scale, mRNA fraction, profile). Given the
        sample's fitted fractions, the expected share of the sample's reads of a gene that
        come from type ``c`` is ``w_c s_c / sum_k w_k s_k`` (the posterior mean of the
        reads' allocation to types, as in BayesPrism). A type's expression in the sample
        is then its reference profile times the ratio of the sample's CPM to the model's
        reconstruction of it, ``s_c * b / rec``: a gene the sample expresses more than the
        model predicts is raised in every type that expresses it, in proportion to what
        that type contributes. It is returned on the reference's scale (without the
        platform scale, which is the same for every sample). Comparing two groups of bulks
        on it separates a change of a type's expression from a change of its proportion,
        which differential expression of the bulks themselves cannot; a gene expressed by
        several types gets the change in all of them.

        Parameters
        ----------
        bulk
            Bulk samples (counts or TPM), samples x genes, as for :meth:`get_proportions`.
        cell_type
            One of the model's cell types; ``None`` returns every type.
        layer
            Layer of ``bulk`` with the values; ``None`` uses ``bulk.X``.

        Returns
        -------
        pandas.DataFrame or dict
            Samples x the model's genes (``model.genes_``), CPM: non-negative, each row
            summing to 1e6. With ``cell_type=None``, a dict of them by cell type.

        Examples
        --------
        >>> import hpvade
        >>> ref, bulk = hpvade.data.synthetic(seed=0)
        >>> hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
        >>> model = hpvade.HPVADE(ref)
        >>> model.train(bulk=bulk, max_epochs=2, enable_progress_bar=False)
        >>> expr = model.get_cell_type_expression(bulk, model.cell_types_[0])
        >>> expr.shape == (bulk.n_obs, len(model.genes_))
        True
        """
        self._check_if_trained(warn=False)
        if isinstance(bulk, MuData):
            bulk = _mudata_modalities(bulk)[1]
        types = list(self.cell_types_)
        if cell_type is not None and str(cell_type) not in types:
            raise ValueError(
                f"cell_type must be one of the model's cell types {types}; got {cell_type!r}."
            )
        cpm = self._checked_cpm(bulk, layer=layer)
        p, _ = self._fit(cpm, self._predict(cpm))
        cpm = cpm.astype(np.float64)
        m = self.module
        t = torch.as_tensor
        signature = m.signature.detach().cpu().double().numpy()  # G x C
        rec = reconstruct(
            t(p),
            t(signature.T),
            m.mrna_content.detach().cpu().double(),
            t(self.get_platform_scale().to_numpy()),
        ).numpy()
        ratio = (cpm + 1.0) / (rec + 1.0)  # 1 CPM keeps unexpressed genes at their profile
        profiles = signature.T[None] * ratio[:, None, :]  # samples x types x genes
        profiles *= CPM_SCALE / profiles.sum(axis=-1, keepdims=True)
        genes = pd.Index(self.genes_)
        out = {
            t: pd.DataFrame(profiles[:, i], index=bulk.obs_names.copy(), columns=genes.copy())
            for i, t in enumerate(types)
            if cell_type is None or t == str(cell_type)
        }
        return out if cell_type is None else out[str(cell_type)]
