from __future__ import annotations

import contextlib
import inspect
import logging
import os
import random
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scvi
import torch

from .._constants import PROPORTIONS_KEY

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from anndata import AnnData

    from ..model import HPVADE

logger = logging.getLogger(__name__)

# environment variables that ``scvi.settings.seed = ...`` sets (through lightning's
# seed_everything and its JAX determinism flag)
_SEED_ENV = ("PL_GLOBAL_SEED", "PL_SEED_WORKERS", "XLA_FLAGS")


@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Seed scvi-tools, torch, numpy and random for the block, then put everything back.

    ``scvi.settings.seed = seed`` is what seeds the training (the pseudo-bulk simulator and
    the data splitter read it, lightning's ``seed_everything`` seeds the generators); it also
    sets cuDNN flags and environment variables. All of these, and the generators' states,
    are restored on exit, so the caller's global state is as it was.
    """
    if seed is None:
        yield
        return
    saved_seed = scvi.settings._seed
    env = {key: os.environ.get(key) for key in _SEED_ENV}
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002 - the caller's state
    torch_state = torch.random.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        scvi.settings.seed = seed
        yield
    finally:
        scvi.settings._seed = saved_seed
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002
        torch.random.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


def _reference_view(
    reference: AnnData, *, labels_key: str, layer: str | None, batch_key: str | None
) -> AnnData:
    """A new AnnData over the reference's count matrix, for scvi-tools to register.

    ``setup_anndata`` writes its registry into ``uns`` and coded columns into ``obs``, and
    turns the label column categorical. This AnnData shares the count matrix (``X`` or the
    layer: no copy) and holds copies of the two obs columns it needs, so none of that
    reaches the user's reference.
    """
    import anndata as ad

    from ..pp import InputKeyError

    # the checks that need the reference itself; setup_anndata checks the rest on the copy
    for key, role in ((labels_key, "labels"), (batch_key, "batch")):
        if key is not None and key not in reference.obs.columns:
            raise InputKeyError(
                f"The {role} column {key!r} is not in the reference's adata.obs; available "
                f"columns: {list(reference.obs.columns)}."
            )
    layers = {}
    if layer is not None:
        if layer not in reference.layers:
            raise InputKeyError(
                f"Layer {layer!r} not found in the reference's adata.layers; available layers: "
                f"{list(reference.layers) or 'none'}. Pass layer=None to use adata.X."
            )
        layers[layer] = reference.layers[layer]
    if getattr(reference, "isbacked", False):
        # a second handle on the file (read-only): set-up writes only into its own obs and
        # uns, and the counts are read in blocks as for any backed reference
        return ad.read_h5ad(reference.filename, backed="r")
    columns = [c for c in (labels_key, batch_key) if c is not None]
    return ad.AnnData(
        X=reference.X,
        obs=reference.obs[columns].copy(),
        var=pd.DataFrame(index=reference.var_names.copy()),
        layers=layers,
    )


def _versions() -> dict[str, str]:
    out = {}
    for name in ("hpvade", "scvi-tools", "torch", "anndata"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out


def _plain(value: Any) -> Any:
    """A value that ``write_h5ad`` stores: None, numbers, strings, lists and dicts of them."""
    if value is None or isinstance(value, bool | int | float | str | np.integer | np.floating):
        return value
    if isinstance(value, pd.Series):
        value = value.to_dict()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if all(isinstance(v, bool | int | float | str) for v in value):
            return list(value)
        return repr(value)
    return repr(value)


def deconvolve(
    bulk: AnnData,
    reference: AnnData,
    *,
    labels_key: str,
    layer: str | None = None,
    bulk_layer: str | None = None,
    batch_key: str | None = None,
    kind: str = "cell",
    method: str = "refine",
    adapt: bool | None = None,
    mrna_content: Mapping[str, float] | None = None,
    key_added: str = PROPORTIONS_KEY,
    seed: int | None = 0,
    copy: bool = False,
    return_model: bool = False,
    model_kwargs: Mapping[str, Any] | None = None,
    **train_kwargs,
) -> AnnData | HPVADE | tuple[AnnData, HPVADE] | None:
    """Train HP-VaDE on a reference and write the bulk's proportions into ``obsm``.

    The scanpy-style one-call path: :meth:`~hpvade.HPVADE.setup_anndata`, a model with the
    genes shared by ``reference`` and ``bulk``, :meth:`~hpvade.HPVADE.train` on pseudo-bulks
    simulated from the reference, then :meth:`~hpvade.HPVADE.get_proportions` (by default
    the head's fractions refined by the signature fits over all of ``bulk``).

    It follows scanpy's contract: the result goes into ``bulk`` (or its copy), global state
    is left alone (``scvi.settings.seed``, the random generators of torch, numpy and
    :mod:`random`, cuDNN flags) and ``reference`` is not changed (scvi-tools registers a new
    AnnData that shares the reference's count matrix; nothing is copied or densified).

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
    batch_key
        Column of ``reference.obs`` with the batch of each cell (optional).
    kind
        ``"cell"`` (fractions of cells) or ``"mrna"`` (fractions of mRNA).
    method
        ``"refine"`` (default) or ``"head"``; see :meth:`~hpvade.HPVADE.get_proportions`.
    adapt
        Update the signature towards the bulks (step 3 of the refinement); ``None``: the
        model's default (when there are enough bulks per cell type). Passed to
        :meth:`~hpvade.HPVADE.get_proportions`, or to :meth:`~hpvade.HPVADE.train` where
        that takes it.
    mrna_content
        Measured relative mRNA content per cell type for the cell fractions; ``None`` uses
        the learnt one. See :meth:`~hpvade.HPVADE.get_proportions`.
    key_added
        ``bulk.obsm`` key of the proportions (a DataFrame indexed by ``obs_names``).
    seed
        Seed of the training (``scvi.settings.seed`` for its duration only: the global
        value and the random generators' states are restored afterwards); ``None`` trains
        with the global settings as they are.
    copy
        Write into a copy of ``bulk`` and return it, instead of writing into ``bulk``.
    return_model
        Also return the trained model (keep it with :meth:`~hpvade.HPVADE.save`).
    model_kwargs
        Passed to :class:`~hpvade.HPVADE` (e.g. ``n_genes``).
    **train_kwargs
        Passed to :meth:`~hpvade.HPVADE.train` (e.g. ``max_epochs=50``,
        ``enable_progress_bar=False``).

    Returns
    -------
    AnnData | HPVADE | tuple[AnnData, HPVADE] | None
        By ``copy`` and ``return_model``:

        - ``copy=False, return_model=False``: ``None``;
        - ``copy=True, return_model=False``: the annotated copy of ``bulk``;
        - ``copy=False, return_model=True``: the trained model;
        - ``copy=True, return_model=True``: ``(copy, model)``.

        The proportions are in ``obsm[key_added]`` (samples x cell types, rows sum to 1) and
        ``uns["hpvade"]`` holds ``{"params": ..., "versions": ...}``: the parameters of the
        call and the versions of hpvade, scvi-tools, torch and anndata.

    Examples
    --------
    >>> import hpvade
    >>> ref, bulk = hpvade.data.synthetic(seed=0)
    >>> hpvade.tl.deconvolve(
    ...     bulk, ref, labels_key="cell_type", max_epochs=5, enable_progress_bar=False
    ... )
    >>> bulk.obsm["hpvade_proportions"].shape
    (24, 4)
    >>> sorted(bulk.uns["hpvade"])
    ['params', 'versions']
    """
    from ..model import HPVADE

    # checked before training, not after it
    if kind not in ("cell", "mrna"):
        raise ValueError(f"kind must be 'cell' or 'mrna', got {kind!r}.")
    if method not in ("refine", "head"):
        raise ValueError(f"method must be 'refine' or 'head', got {method!r}.")
    work = _reference_view(reference, labels_key=labels_key, layer=layer, batch_key=batch_key)
    bulk = bulk.copy() if copy else bulk
    # options left at None are not passed, so that the model's own defaults apply
    predict_kwargs: dict[str, Any] = {"kind": kind, "method": method}
    if mrna_content is not None:
        predict_kwargs["mrna_content"] = mrna_content
    fit_kwargs = dict(train_kwargs)
    if adapt is not None:
        # the signature update is an option of get_proportions or, in newer versions, of
        # train: pass it to whichever takes it
        if "adapt" in inspect.signature(HPVADE.get_proportions).parameters:
            predict_kwargs["adapt"] = adapt
        else:
            fit_kwargs["adapt"] = adapt
    with _seeded(seed):
        HPVADE.setup_anndata(work, labels_key=labels_key, layer=layer, batch_key=batch_key)
        model = HPVADE(work, bulk=bulk, **(model_kwargs or {}))
        model.train(bulk=bulk, bulk_layer=bulk_layer, **fit_kwargs)
        model.get_proportions(bulk, layer=bulk_layer, key_added=key_added, **predict_kwargs)
    params = {
        "labels_key": labels_key,
        "layer": layer,
        "bulk_layer": bulk_layer,
        "batch_key": batch_key,
        "kind": kind,
        "method": method,
        "adapt": adapt,
        "mrna_content": mrna_content,
        "key_added": key_added,
        "seed": seed,
        "model_kwargs": dict(model_kwargs or {}),
        "train_kwargs": train_kwargs,
        "n_genes": len(model.genes_),
    }
    bulk.uns["hpvade"] = {"params": _plain(params), "versions": _versions()}
    if copy and return_model:
        return bulk, model
    if copy:
        return bulk
    if return_model:
        return model
    return None
