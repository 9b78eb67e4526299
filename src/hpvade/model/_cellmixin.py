"""Cell-level outputs of :class:`~hpvade.HPVADE`: latent positions and VaDE responsibilities."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from scvi import REGISTRY_KEYS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from anndata import AnnData


class CellMixin:
    """Per-cell outputs of a trained :class:`~hpvade.HPVADE` on reference-like cells."""

    @torch.inference_mode()
    def _cell_outputs(
        self,
        adata: AnnData | None,
        indices: Sequence[int] | None,
        batch_size: int | None,
        key: str,
        transform=None,
    ) -> np.ndarray:
        """Concatenate ``inference`` output ``key`` (optionally transformed) over cells."""
        self._check_if_trained(warn=False)
        adata = self._validate_anndata(adata)
        self.module.eval()
        loader = self._make_data_loader(adata=adata, indices=indices, batch_size=batch_size)
        parts = []
        for tensors in loader:
            x = self.module.select_genes(tensors[REGISTRY_KEYS.X_KEY].to(self.device))
            out = self.module.inference(x, tensors.get(REGISTRY_KEYS.BATCH_KEY))[key]
            parts.append((out if transform is None else transform(out)).cpu().numpy())
        return np.concatenate(parts)

    def get_latent_representation(
        self,
        adata: AnnData | None = None,
        *,
        indices: Sequence[int] | None = None,
        give_mean: bool = True,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Latent representation of reference cells (for ``obsm["X_hpvade"]``).

        Parameters
        ----------
        adata
            AnnData set up like the reference; ``None`` uses the reference.
        indices
            Cells to use; ``None`` uses all.
        give_mean
            Return the posterior mean (otherwise a sample).
        batch_size
            Cells per forward pass.

        Returns
        -------
        numpy.ndarray
            Cells x ``n_latent``. Store it with
            ``adata.obsm["X_hpvade"] = model.get_latent_representation()``.

        Examples
        --------
        >>> import hpvade
        >>> ref, bulk = hpvade.data.synthetic(seed=0)
        >>> hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
        >>> model = hpvade.HPVADE(ref)
        >>> model.train(max_epochs=2, enable_progress_bar=False)
        >>> ref.obsm["X_hpvade"] = model.get_latent_representation()
        >>> ref.obsm["X_hpvade"].shape == (ref.n_obs, 10)
        True
        """
        return self._cell_outputs(adata, indices, batch_size, "q_m" if give_mean else "z")

    def get_cell_type_posterior(
        self,
        adata: AnnData | None = None,
        *,
        indices: Sequence[int] | None = None,
        batch_size: int | None = None,
    ) -> pd.DataFrame:
        """VaDE cell-type responsibilities q(c | z) of each cell.

        How strongly the latent position of each cell belongs to each cell type's
        component of the VaDE prior: a check of the reference's labels (a cell whose
        responsibility for its own label is low may be mislabelled).

        Parameters
        ----------
        adata
            AnnData set up like the reference; ``None`` uses the reference.
        indices
            Cells to use; ``None`` uses all.
        batch_size
            Cells per forward pass.

        Returns
        -------
        pandas.DataFrame
            Cells x cell types; each row sums to 1.

        Examples
        --------
        >>> import hpvade
        >>> ref, bulk = hpvade.data.synthetic(seed=0)
        >>> hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
        >>> model = hpvade.HPVADE(ref)
        >>> model.train(max_epochs=2, enable_progress_bar=False)
        >>> post = model.get_cell_type_posterior()
        >>> bool(abs(post.sum(axis=1) - 1).max() < 1e-5)
        True
        """
        adata_ = self._validate_anndata(adata)
        post = self._cell_outputs(
            adata, indices, batch_size, "q_m", self.module.cell_type_posterior
        )
        index = adata_.obs_names if indices is None else adata_.obs_names[np.asarray(indices)]
        return pd.DataFrame(post, index=index, columns=self.cell_types_)
