from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import scvi

from .._constants import PROPORTIONS_KEY

if TYPE_CHECKING:
    from collections.abc import Mapping

    from anndata import AnnData

    from ..model import HPVADE

logger = logging.getLogger(__name__)


def deconvolve(
    bulk: AnnData,
    reference: AnnData,
    *,
    labels_key: str,
    layer: str | None = None,
    bulk_layer: str | None = None,
    max_epochs: int = 50,
    kind: str = "cell",
    method: str = "refine",
    adapt: bool | None = None,
    mrna_content: Mapping[str, float] | None = None,
    key_added: str = PROPORTIONS_KEY,
    seed: int | None = 0,
    copy: bool = False,
    **train_kwargs,
) -> AnnData | HPVADE:
    """Train HP-VaDE on a reference and write the bulk's proportions into ``obsm``.

    The scanpy-style one-call path: :meth:`~hpvade.HPVADE.setup_anndata`, a model with the
    genes shared by ``reference`` and ``bulk``, :meth:`~hpvade.HPVADE.train` on pseudo-bulks
    simulated from the reference, then :meth:`~hpvade.HPVADE.get_proportions` (by default
    the head's fractions refined by the signature fits over all of ``bulk``).

    Parameters
    ----------
    bulk
        Bulk samples (counts or TPM), samples x genes.
    reference
        Labelled single-cell reference with raw counts.
    labels_key
        Column of ``reference.obs`` with the cell types.
    layer
        Layer of ``reference`` with the counts; ``None`` uses ``X``.
    bulk_layer
        Layer of ``bulk`` with its values; ``None`` uses ``X``.
    max_epochs
        Training epochs.
    kind
        ``"cell"`` (fractions of cells) or ``"mrna"`` (fractions of mRNA).
    method
        ``"refine"`` (default) or ``"head"``; see :meth:`~hpvade.HPVADE.get_proportions`.
    adapt
        Update the signature towards the bulks (step 3 of the refinement); ``None``: when
        there are at least five bulks per cell type. See :meth:`~hpvade.HPVADE.get_proportions`.
    mrna_content
        Measured relative mRNA content per cell type for the cell fractions; ``None`` uses
        the learnt one. See :meth:`~hpvade.HPVADE.get_proportions`.
    key_added
        ``bulk.obsm`` key of the proportions (a DataFrame indexed by ``obs_names``).
    seed
        Sets ``scvi.settings.seed`` before training; ``None`` leaves it.
    copy
        Return a copy of ``bulk`` with the result instead of writing into ``bulk``.
    **train_kwargs
        Passed to :meth:`~hpvade.HPVADE.train` (e.g. ``enable_progress_bar=False``).

    Returns
    -------
    AnnData | HPVADE
        The trained model if ``copy=False`` (``bulk`` is updated in place), else the annotated
        copy of ``bulk``. Keep the model with :meth:`~hpvade.HPVADE.save` if needed.

    Examples
    --------
    >>> import hpvade
    >>> ref, bulk = hpvade.data.synthetic(seed=0)
    >>> model = hpvade.tl.deconvolve(
    ...     bulk, ref, labels_key="cell_type", max_epochs=5, enable_progress_bar=False
    ... )
    >>> bulk.obsm["hpvade_proportions"].shape
    (24, 4)
    """
    from ..model import HPVADE

    if seed is not None:
        scvi.settings.seed = seed
    bulk = bulk.copy() if copy else bulk
    HPVADE.setup_anndata(reference, labels_key=labels_key, layer=layer)
    model = HPVADE(reference, bulk=bulk)
    model.train(bulk=bulk, bulk_layer=bulk_layer, max_epochs=max_epochs, **train_kwargs)
    model.get_proportions(
        bulk,
        layer=bulk_layer,
        key_added=key_added,
        kind=kind,
        method=method,
        adapt=adapt,
        mrna_content=mrna_content,
    )
    return bulk if copy else model
