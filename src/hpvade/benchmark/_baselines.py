"""Baselines that need no training, to judge what training adds."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy.optimize import nnls

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)


def _untrained(reference: AnnData, bulk: AnnData, labels_key: str, layer: str | None):
    """An untrained HPVADE on a light copy of ``reference`` (the user's object untouched)."""
    from ..model import HPVADE
    from ..tl._deconvolve import _reference_view

    work = _reference_view(reference, labels_key=labels_key, layer=layer, batch_key=None)
    HPVADE.setup_anndata(work, labels_key=labels_key, layer=layer)
    return HPVADE(work, bulk=bulk)


def typemean(
    bulk: AnnData,
    reference: AnnData,
    *,
    labels_key: str,
    layer: str | None = None,
    bulk_layer: str | None = None,
    kind: Literal["cell", "mrna"] = "cell",
) -> pd.DataFrame:
    """HP-VaDE's inference with no training: type means and library sizes.

    The signature is each type's mean CPM profile in the reference, the mRNA contents its
    mean library size, and the fit starts from uniform fractions; the genes, the platform
    fit on ``bulk`` and the per-sample fit are those of :class:`~hpvade.HPVADE`. It is the
    row that says what training adds.

    Parameters
    ----------
    bulk
        Bulk samples (counts or TPM), samples x genes.
    reference
        Single-cell reference, raw counts.
    labels_key
        Column of ``reference.obs`` with the cell types.
    layer
        Layer of ``reference`` with the counts; ``None`` uses ``X``.
    bulk_layer
        Layer of ``bulk`` with the values; ``None`` uses ``X``.
    kind
        ``"cell"`` or ``"mrna"`` fractions.

    Returns
    -------
    pandas.DataFrame
        Samples x cell types; rows sum to 1.
    """
    from ..model._refine import mrna_fractions

    model = _untrained(reference, bulk, labels_key, layer)
    cpm = model._bulk_cpm(bulk, layer=bulk_layer)
    n_types = len(model.cell_types_)
    start = np.full((cpm.shape[0], n_types), 1.0 / n_types)
    model._fit_platform(cpm, adapt=None, p0=start)
    p, _ = model._fit(cpm, start, states=False)
    if kind == "mrna":
        p = mrna_fractions(p, model.module.mrna_content.detach().cpu().double().numpy())
    return pd.DataFrame(p, index=bulk.obs_names.copy(), columns=list(model.cell_types_))


def nnls_typemeans(
    bulk: AnnData,
    reference: AnnData,
    *,
    labels_key: str,
    layer: str | None = None,
    bulk_layer: str | None = None,
) -> pd.DataFrame:
    """Non-negative least squares of each bulk's CPM on the reference's type-mean CPM.

    The textbook baseline over every gene the two share, on the linear scale; its
    fractions are fractions of mRNA.

    Parameters
    ----------
    bulk
        Bulk samples (counts or TPM), samples x genes.
    reference
        Single-cell reference, raw counts.
    labels_key
        Column of ``reference.obs`` with the cell types.
    layer
        Layer of ``reference`` with the counts; ``None`` uses ``X``.
    bulk_layer
        Layer of ``bulk`` with the values; ``None`` uses ``X``.

    Returns
    -------
    pandas.DataFrame
        Samples x cell types; rows sum to 1.
    """
    from ..pp._genes import _columns, _get_matrix, _row_sums, match_genes, type_profiles
    from ..tl._deconvolve import _reference_view

    # the same checks of labels_key and layer as tl.deconvolve, on a light copy
    reference = _reference_view(reference, labels_key=labels_key, layer=layer, batch_key=None)
    genes = reference.var_names.intersection(bulk.var_names)
    if len(genes) == 0:
        raise ValueError("The reference and the bulk share no gene name.")
    labels = reference.obs[labels_key].astype("category")
    codes = labels.cat.codes.to_numpy()
    ref_pos, _ = match_genes(reference.var_names, genes)
    X = _get_matrix(reference, layer)
    sig, _ = type_profiles(_columns(X, ref_pos), _row_sums(X), codes, len(labels.cat.categories))
    bulk_pos, _ = match_genes(bulk.var_names, genes)
    B = _columns(_get_matrix(bulk, bulk_layer), bulk_pos).toarray().astype(np.float64)
    B = 1e6 * B / np.maximum(B.sum(axis=1, keepdims=True), 1e-300)
    p = np.vstack([nnls(sig, b)[0] for b in B])
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-300)
    columns = [str(c) for c in labels.cat.categories]
    return pd.DataFrame(p, index=bulk.obs_names.copy(), columns=columns)
