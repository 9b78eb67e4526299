"""The bulk model's parameters as tables: signature, mRNA contents, scale, gene weights."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Mapping


class ParamsMixin:
    """Getters of the bulk model's parameters (and the check of user-given mRNA contents)."""

    def get_signature(self) -> pd.DataFrame:
        """The signature: each cell type's expression profile, as the model uses it.

        Starts as the reference's mean CPM per type over the model's genes; the platform fit
        of :meth:`train` updates it towards the bulks when it has enough of them
        (``adapt``).

        Returns
        -------
        pandas.DataFrame
            Genes (``model.genes_``) x cell types, CPM: each column sums to 1e6.

        Examples
        --------
        >>> import hpvade
        >>> ref, bulk = hpvade.data.synthetic(seed=0)
        >>> hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
        >>> model = hpvade.HPVADE(ref)
        >>> model.train(bulk=bulk, max_epochs=2, enable_progress_bar=False)
        >>> sig = model.get_signature()
        >>> bool(abs(sig.sum(axis=0) - 1e6).max() < 1)
        True
        """
        S = self.module.signature.detach().cpu().numpy().astype(np.float64)
        return pd.DataFrame(S, index=pd.Index(self.genes_), columns=self.cell_types_)

    def get_mrna_content(self) -> pd.Series:
        """Relative mRNA content of each cell type (mean 1).

        The reference's mean library size per type (only ratios matter). It turns the
        mRNA fractions that the bulk reads measure into cell fractions; pass measured
        contents to :meth:`get_proportions` with ``mrna_content=`` instead.

        Returns
        -------
        pandas.Series
            One positive value per cell type, mean 1.

        Examples
        --------
        >>> import hpvade
        >>> ref, bulk = hpvade.data.synthetic(seed=0)
        >>> hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
        >>> model = hpvade.HPVADE(ref)
        >>> model.train(bulk=bulk, max_epochs=2, enable_progress_bar=False)
        >>> content = model.get_mrna_content()
        >>> bool((content > 0).all())
        True
        """
        m = self.module.mrna_content.detach().cpu().numpy().astype(np.float64)
        return pd.Series(m / m.mean(), index=self.cell_types_, name="mrna_content")

    def _content_array(self, mrna_content: Mapping[str, float] | pd.Series) -> np.ndarray:
        """``mrna_content`` as an array in the model's type order, checked."""
        given = pd.Series(dict(mrna_content.items()), dtype=object)
        types = list(self.cell_types_)
        missing = [t for t in types if t not in given.index]
        unknown = [str(t) for t in given.index if t not in types]
        if missing or unknown:
            raise ValueError(
                f"mrna_content needs one value for each of the model's cell types {types}; "
                f"missing: {missing}, unknown: {unknown}. Start from "
                "model.get_mrna_content() and change the values you have measured."
            )
        values = pd.to_numeric(given[types], errors="coerce").to_numpy(dtype=np.float64)
        bad = [t for t, v in zip(types, values, strict=True) if not (np.isfinite(v) and v > 0)]
        if bad:
            raise ValueError(
                f"mrna_content must be a positive, finite number for every cell type; got "
                f"{dict(zip(bad, given[bad].tolist(), strict=True))}."
            )
        return values

    def get_platform_scale(self) -> pd.Series:
        """Gene-wise scale between the bulks' protocol and the reference, as used.

        Estimated by :meth:`train` from all the bulks given to it (geometric mean 1; a
        gene at 2 reads twice as high in those bulks as the reference predicts) and used
        by :meth:`get_proportions` for every sample. All ones for a model trained without
        bulks.

        Returns
        -------
        pandas.Series
            One value per model gene (``model.genes_``).

        Examples
        --------
        >>> import hpvade
        >>> ref, bulk = hpvade.data.synthetic(seed=0)
        >>> hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
        >>> model = hpvade.HPVADE(ref)
        >>> model.train(bulk=bulk, max_epochs=2, enable_progress_bar=False)
        >>> g = model.get_platform_scale()
        >>> bool((g > 0).all())
        True
        """
        g = self.module.log_gene_scale.detach().cpu().double().exp().numpy()
        return pd.Series(g, index=pd.Index(self.genes_), name="platform_scale")

    def get_gene_weights(self) -> pd.Series:
        """Weight of each gene in the fit of :meth:`get_proportions` (mean 1).

        Robust (Cauchy) weights from the platform fit of :meth:`train`: genes that the
        signature cannot explain in the training bulks, even after the platform scale
        (donor biology, protocol artefacts), weigh little. All ones for a model trained
        without bulks.

        Returns
        -------
        pandas.Series
            One value per model gene (``model.genes_``).

        Examples
        --------
        >>> import hpvade
        >>> ref, bulk = hpvade.data.synthetic(seed=0)
        >>> hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
        >>> model = hpvade.HPVADE(ref)
        >>> model.train(bulk=bulk, max_epochs=2, enable_progress_bar=False)
        >>> w = model.get_gene_weights()
        >>> bool((w >= 0).all())
        True
        """
        w = self.module.gene_weights.detach().cpu().numpy().astype(np.float64)
        return pd.Series(w, index=pd.Index(self.genes_), name="gene_weight")
