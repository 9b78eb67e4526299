"""Whether a bulk has the model's genes, and what a mismatch looks like when it has not."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pandas as pd

from ._messages import _show, _warn

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["check_shared_genes"]

_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d{6,}(\.\d+)?$")
_ENSEMBL_VERSION = re.compile(r"\.\d+$")
_ENTREZ = re.compile(r"^\d+$")


def _id_style(names: pd.Index) -> str:
    """Say what a gene list looks like: Ensembl IDs (with/without version), Entrez, symbols."""
    sample = pd.Index(names[:1000]).astype(str)
    if len(sample) == 0:
        return "empty"
    ens = sample.str.match(_ENSEMBL.pattern)
    if ens.mean() > 0.5:
        versioned = sample[ens].str.contains(_ENSEMBL_VERSION.pattern).mean() > 0.5
        return "Ensembl IDs with version suffixes" if versioned else "Ensembl IDs"
    if sample.str.match(_ENTREZ.pattern).mean() > 0.5:
        return "Entrez IDs (numbers)"
    upper = (sample == sample.str.upper()).mean()
    if upper > 0.8:
        return "upper-case gene symbols (human-style)"
    if (
        sample.str[:1].str.isupper() & (sample.str[1:] == sample.str[1:].str.lower())
    ).mean() > 0.5:
        return "capitalised gene symbols (mouse-style)"
    return "gene symbols"


def check_shared_genes(
    bulk_genes: Iterable[str],
    model_genes: Iterable[str],
    *,
    min_shared: int = 100,
    min_fraction: float = 0.5,
    bulk_obs_names: Iterable[str] | None = None,
    warn_missing: bool = True,
) -> pd.Index:
    """Check that a bulk has enough of the model's genes, and explain a mismatch.

    At least ``min(min_shared, len(model_genes))`` genes and ``min_fraction`` of the model's
    genes must be in the bulk. When too few are, the error shows how many are shared, a
    few names from each side, and what the mismatch looks like (Ensembl IDs vs symbols,
    Ensembl version suffixes, human vs mouse capitalisation, a transposed bulk). When
    enough are shared but some are missing, a warning gives the count.

    Parameters
    ----------
    bulk_genes
        Gene names of the bulk (``bulk.var_names``).
    model_genes
        Gene names of the model (the reference's selected genes).
    min_shared
        Fewest shared genes accepted (capped at the number of model genes).
    min_fraction
        Smallest fraction of the model's genes that must be in the bulk.
    bulk_obs_names
        The bulk's sample names, if available: used to recognise a transposed bulk.
    warn_missing
        Warn when some model genes are missing (pass ``False`` when the caller warns itself,
        saying how it handles them).

    Returns
    -------
    pandas.Index
        The shared genes, in the model's order.

    Examples
    --------
    >>> from hpvade.pp import check_shared_genes
    >>> check_shared_genes(["CD3E", "MS4A1", "LYZ"], ["MS4A1", "CD3E"], min_shared=2)
    Index(['MS4A1', 'CD3E'], dtype='object')

    Raises
    ------
    ValueError
        Too few shared genes.

    Warns
    -----
    UserWarning
        Some of the model's genes are missing from the bulk (when ``warn_missing``).
    """
    bulk = pd.Index([str(g) for g in bulk_genes])
    model = pd.Index([str(g) for g in model_genes])
    if len(model) == 0:
        raise ValueError("The model has no genes to match the bulk against.")
    shared = model[model.isin(bulk)]
    need = min(int(min_shared), len(model))
    frac = len(shared) / len(model)
    if len(shared) < need or frac < min_fraction:
        only_model = model[~model.isin(bulk)]
        only_bulk = bulk[~bulk.isin(model)]
        message = (
            f"Only {len(shared)} of the model's {len(model)} genes ({frac:.0%}) are among the "
            f"bulk's {len(bulk)} genes; hpvade needs at least {need} and {min_fraction:.0%}. "
            f"Reference genes: [{_show(only_model)}]; bulk genes: [{_show(only_bulk)}]."
        )
        hints = _diagnose_mismatch(model, bulk, len(shared), bulk_obs_names)
        if not hints:
            hints = (
                " If the bulk measures fewer genes (e.g. a panel), select the model's genes "
                "among the shared ones: pass the bulk before training, HPVADE(ref, bulk=bulk) "
                "or model.train(bulk=bulk)."
            )
        raise ValueError(message + hints)
    missing = len(model) - len(shared)
    if missing and warn_missing:
        _warn(
            f"{missing} of the model's {len(model)} genes are missing from the bulk (e.g. "
            f"{_show(model[~model.isin(bulk)])}); only the {len(shared)} shared genes "
            "carry information about the bulk."
        )
    return shared


def _diagnose_mismatch(
    model: pd.Index, bulk: pd.Index, n_shared: int, bulk_obs_names: Iterable[str] | None
) -> str:
    hints = []
    if bulk_obs_names is not None:
        obs = pd.Index([str(x) for x in bulk_obs_names])
        n_obs_shared = int(model.isin(obs).sum())
        if n_obs_shared > n_shared:
            hints.append(
                f"The bulk looks transposed (genes in rows): {n_obs_shared} of its sample "
                "names are model genes. Pass `bulk.T` (samples x genes)."
            )
    style_m, style_b = _id_style(model), _id_style(bulk)
    family = {
        s: s.split(" ")[0] if s.startswith(("Ensembl", "Entrez")) else "symbol"
        for s in (style_m, style_b)
    }
    if not hints and family[style_m] != family[style_b]:
        hints.append(
            f"Reference genes look like {style_m}, bulk genes look like {style_b}: convert "
            "one side (AnnData objects often keep the other identifier in a var column, e.g. "
            "`bulk.var_names = bulk.var['gene_symbols']`, or map with a gene annotation such "
            "as pybiomart or mygene)."
        )
    strip = lambda idx: idx.str.replace(_ENSEMBL_VERSION.pattern, "", regex=True)  # noqa: E731
    if "Ensembl" in style_m or "Ensembl" in style_b:
        n_strip = int(strip(model).isin(strip(bulk)).sum())
        if n_strip > n_shared:
            hints.append(
                f"{n_strip} genes match once the Ensembl version suffix ('.12') is removed "
                f"(reference genes look like {style_m}, bulk genes look like {style_b}): "
                "strip it on both sides, e.g. `bulk.var_names = "
                "bulk.var_names.str.replace(r'\\.\\d+$', '', regex=True)`."
            )
    n_case = int(model.str.upper().isin(bulk.str.upper()).sum())
    if n_case > n_shared and n_case > 0.5 * len(model):
        hints.append(
            f"{n_case} genes match when case is ignored (reference genes look like {style_m}, "
            f"bulk genes look like {style_b}): are the reference and the bulk from the same "
            "species? Map orthologues, or fix the case if it is a formatting difference."
        )
    return (" " + " ".join(hints)) if hints else ""
