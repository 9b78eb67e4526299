"""Input checks for the reference and the bulk: every misuse gets an actionable message.

The checks only read the user's AnnData: they never write to ``X``, ``obs``, ``var``,
``layers`` or anything else, and never densify a whole sparse matrix (the statistics come
from one blockwise scan, :mod:`._scan`). The catalogue of cases and what hpvade does for
each is in ``docs/input-checks.md``; ``tests/pp/test_validate.py`` has one test case per
entry. Whether a bulk has the model's genes is checked in :mod:`._shared_genes`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

from ._chunks import is_backed
from ._messages import _N_SHOW, _have, _plural, _show, _warn
from ._scan import INT_ATOL, SCALED_NEG_FRACTION, _common_total, _looks_log, _scan, _Stats
from ._shared_genes import check_shared_genes

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

__all__ = ["InputKeyError", "check_bulk", "check_reference", "check_shared_genes"]


class InputKeyError(KeyError, ValueError):
    """A layer, labels or batch column the user named does not exist.

    Subclass of both :class:`KeyError` (what pandas and AnnData raise for a missing key)
    and :class:`ValueError` (what the other input checks raise), so either ``except``
    catches it. Unlike :class:`KeyError`, its message prints without quotes.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _get_matrix(adata: AnnData, layer: str | None, what: str):
    """Return the matrix to check (the user's own object, only read) and where it is."""
    backed = getattr(adata, "isbacked", False)
    if backed and what != "reference":
        raise ValueError(
            f"The {what} AnnData is backed (opened with backed='r' from {adata.filename}); "
            "hpvade needs it in memory. Load it with `adata = adata.to_memory()` or read the "
            "file without `backed=`."
        )
    if layer is not None:
        if layer not in adata.layers:
            available = list(adata.layers.keys())
            raise InputKeyError(
                f"Layer {layer!r} not found in the {what}'s adata.layers; available layers: "
                f"{available if available else 'none'}. Pass layer=None to use adata.X."
            )
        X = adata.layers[layer]
        where = f"adata.layers[{layer!r}]"
    else:
        X = adata.X
        where = "adata.X"
        if X is None:
            raise ValueError(
                f"The {what}'s adata.X is empty (None). Put the counts in adata.X or pass "
                f"layer= naming one of adata.layers ({list(adata.layers.keys())})."
            )
    if adata.n_obs == 0 or adata.n_vars == 0:
        unit = "cells" if what == "reference" else "samples"
        raise ValueError(f"The {what} is empty: {adata.n_obs} {unit} x {adata.n_vars} genes.")
    if isinstance(X, np.matrix):
        X = np.asarray(X)
    if sparse.issparse(X):
        if X.format not in ("csr", "csc"):
            X = X.tocsr()  # a converted copy; the user's matrix is untouched
    elif not (isinstance(X, np.ndarray) or (backed and is_backed(X))):
        raise ValueError(
            f"The {what}'s {where} is a {type(X).__module__}.{type(X).__name__}; hpvade "
            "accepts a numpy array or a scipy.sparse matrix. Load it into memory first "
            "(e.g. `adata = adata.to_memory()`, or `.compute()` a dask array)."
        )
    if X.dtype == bool or not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
        raise ValueError(
            f"The {what}'s {where} has dtype {X.dtype}; hpvade needs numeric expression "
            "values (integer or floating point)."
        )
    return X, where


def _check_finite(stats: _Stats, obs_names: pd.Index, what: str, unit: str) -> None:
    if stats.n_nan or stats.n_inf:
        rows = stats.rows("bad")
        raise ValueError(
            f"The {what} contains {stats.n_nan} NaN and {stats.n_inf} infinite values, in "
            f"{_plural(rows.size, unit)} (first: {_show(obs_names[rows].tolist())}). "
            "Expression values must be finite: find where they came from (a failed "
            f"normalisation, a division by zero, a log of zero) or drop these {unit}s."
        )


def _check_negative(stats: _Stats, obs_names: pd.Index, what: str, unit: str) -> None:
    if stats.n_neg == 0:
        return
    frac = stats.n_neg / stats.n_entries
    linear = "raw counts" if what == "reference" else "counts or TPM on the linear scale"
    if frac >= SCALED_NEG_FRACTION:
        raise ValueError(
            f"The {what} looks scaled or z-scored: {frac:.0%} of the values are negative "
            f"(mean {stats.mean:.3g}, min {stats.vmin:.3g}). hpvade needs {linear}, not "
            "data after sc.pp.scale or z-scoring; use the unscaled matrix (e.g. a layer "
            "saved before scaling, or adata.raw)."
        )
    rows = stats.rows("neg")
    where = f" in {_plural(rows.size, unit)} (first: {_show(obs_names[rows].tolist())})"
    hint = (
        f" With a maximum of {stats.vmax:.3g} this looks log-transformed without a "
        "pseudocount (log of values below 1 is negative)."
        if _looks_log(stats)
        else ""
    )
    raise ValueError(
        f"The {what} contains {_plural(stats.n_neg, 'negative value')} (min {stats.vmin:.3g})"
        f"{where if rows.size else ''}; expression values cannot be negative.{hint} Pass "
        f"{linear}."
    )


def _integer_layers_hint(adata: AnnData, layer: str | None) -> str:
    """Name layers (or ``adata.raw``) that hold integer values, sampling their first values."""

    def is_integer(M) -> bool:
        if isinstance(M, np.matrix):
            M = np.asarray(M)
        if sparse.issparse(M):
            d = M.data[:100_000]
        elif isinstance(M, np.ndarray):
            d = M[: max(1, 100_000 // max(M.shape[1], 1))].ravel()
        else:
            return False
        if not np.issubdtype(d.dtype, np.number) or d.size == 0:
            return False
        return bool(np.all(np.isfinite(d)) and np.all(np.abs(d - np.rint(d)) <= INT_ATOL))

    found = [
        f"layer={name!r}" for name, M in adata.layers.items() if name != layer and is_integer(M)
    ]
    if layer is not None and adata.X is not None and is_integer(adata.X):
        found.append("layer=None (adata.X)")
    hint = ""
    if found:
        hint += f" These hold integer values and may be the raw counts: {', '.join(found)}."
    if adata.raw is not None and adata.raw.n_vars and is_integer(adata.raw.X):
        hint += " adata.raw holds integer values: `adata.raw.to_adata()` gives them as an AnnData."
    return hint


# ------------------------------------------------------------------------- reference


def check_reference(
    adata: AnnData,
    *,
    layer: str | None,
    labels_key: str,
    batch_key: str | None = None,
    min_cells_per_type: int = 5,
) -> None:
    """Check a labelled single-cell reference before :meth:`hpvade.HPVADE.setup_anndata`.

    The reference must hold raw counts (the VaDE decoder is negative binomial), have unique
    gene names, no empty cells, and at least two cell types with ``min_cells_per_type``
    cells each. ``adata`` is only read, never modified; sparse matrices are never
    densified. Dense or sparse (CSR/CSC), float32, float64 or integer matrices are all
    accepted, and so are a view and a backed AnnData (read with ``backed="r"``), whose
    matrix is read from its file in blocks. What each case does is catalogued in
    ``docs/input-checks.md``.

    Parameters
    ----------
    adata
        The reference, cells x genes.
    layer
        Layer holding the raw counts; ``None`` uses ``adata.X``.
    labels_key
        Column of ``adata.obs`` with the cell-type labels.
    batch_key
        Optional column of ``adata.obs`` with the batch of each cell.
    min_cells_per_type
        Fewest cells a cell type needs.

    Raises
    ------
    InputKeyError
        The layer, labels or batch column does not exist (a :class:`KeyError` and a
        :class:`ValueError`).
    ValueError
        For anything else hpvade cannot use; the message says what is wrong and how to
        fix it.

    Warns
    -----
    UserWarning
        Duplicate cell names (outputs indexed by cell name would be ambiguous).

    Examples
    --------
    >>> import hpvade
    >>> from hpvade.pp import check_reference
    >>> ref, _ = hpvade.data.synthetic()
    >>> check_reference(ref, layer=None, labels_key="cell_type")
    """
    what = "reference"
    if int(min_cells_per_type) < 1:
        raise ValueError(f"min_cells_per_type must be at least 1, got {min_cells_per_type}.")
    # cheap metadata first, so a typo fails before a scan of the matrix
    X, where = _get_matrix(adata, layer, what)
    for key, role in ((labels_key, "labels"), (batch_key, "batch")):
        if key is not None and key not in adata.obs.columns:
            raise InputKeyError(
                f"The {role} column {key!r} is not in the reference's adata.obs; available "
                f"columns: {list(adata.obs.columns)}."
            )
    _check_unique(adata.var_names, "gene", what, fatal=True)

    labels = adata.obs[labels_key]
    _check_labels(labels, labels_key, min_cells_per_type)
    if batch_key is not None:
        n_na = int(adata.obs[batch_key].isna().sum())
        if n_na:
            raise ValueError(
                f"{_plural(n_na, 'cell')} of the reference {_have(n_na)} no batch (NaN in "
                f"adata.obs[{batch_key!r}]). Fill them (e.g. with 'unknown') or drop them: "
                f"`ref = ref[ref.obs[{batch_key!r}].notna()].copy()`."
            )

    stats = _scan(X)
    _check_finite(stats, adata.obs_names, what, "cell")
    _check_negative(stats, adata.obs_names, what, "cell")
    if stats.n_nonint:
        examples = ", ".join(f"{v:.4g}" for v in stats.nonint_examples[:3])
        total = _common_total(stats.row_sums)
        hint = _integer_layers_hint(adata, layer)
        if total is not None:
            raise ValueError(
                f"The reference in {where} looks normalised: every cell sums to {total:.4g} "
                f"(e.g. sc.pp.normalize_total) and values are non-integers ({examples}). "
                "hpvade needs raw counts for the reference (its decoder is negative "
                f"binomial): pass the counts from before normalisation.{hint}"
            )
        if _looks_log(stats):
            raise ValueError(
                f"The reference in {where} looks log-transformed: pass raw counts (e.g. "
                "adata.layers['counts'] or expm1 and multiply by library size). Its values "
                f"are non-integers ({examples}, ...) with a maximum of {stats.vmax:.3g}."
                f"{hint}"
            )
        raise ValueError(
            f"The reference in {where} has {stats.n_nonint} non-integer values ({examples}, "
            f"...); hpvade needs raw integer counts for the reference (its decoder is "
            "negative binomial), not TPM/CPM or other normalised values. If these are "
            "corrected counts (e.g. ambient-RNA removal), round them into a layer: "
            f"`ref.layers['counts'] = np.rint(ref.X)` and pass layer='counts'.{hint}"
        )
    empty = np.flatnonzero(stats.row_sums == 0)
    if empty.size:
        raise ValueError(
            f"The reference has {_plural(empty.size, 'all-zero cell')} (no counts over its "
            f"{adata.n_vars} genes; first: {_show(adata.obs_names[empty].tolist())}). "
            "Remove them with sc.pp.filter_cells(adata, min_counts=1)."
        )
    _check_unique(adata.obs_names, "cell", what, fatal=False)
    logger.debug(
        "reference OK: %d cells x %d genes, %s %s, %d cell types",
        adata.n_obs,
        adata.n_vars,
        "sparse " + X.format if sparse.issparse(X) else "dense",
        X.dtype,
        labels.nunique(),
    )


def _check_unique(names: pd.Index, unit: str, what: str, *, fatal: bool) -> None:
    if names.is_unique:
        return
    dup = names[names.duplicated()].unique()
    attr = "var_names" if unit == "gene" else "obs_names"
    message = (
        f"The {what} has duplicate {unit} names: {_plural(len(dup), 'name')} "
        f"{'occurs' if len(dup) == 1 else 'occur'} more than "
        f"once (first: {_show(dup.tolist())})."
    )
    if unit == "gene":
        message += (
            " hpvade matches genes by name, so each must be unique. Make them unique with "
            "`adata.var_names_make_unique()`, or sum the duplicates."
        )
    elif fatal:
        message += (
            f" Proportions are indexed by {unit} name, so each must be unique: "
            f"`adata.{attr}_make_unique()`."
        )
    else:
        message += (
            " hpvade works on positions, so this is accepted, but outputs indexed by cell "
            f"name will be ambiguous; `adata.{attr}_make_unique()` fixes it."
        )
        _warn(message)
        return
    raise ValueError(message)


def _check_label_types(labels: pd.Series, labels_key: str) -> None:
    """Labels of any one hashable type are cell types; the outputs show them as strings.

    Labels that mix types (``1`` and ``"B cell"`` in an object column) cannot be sorted
    into categories (scvi-tools sorts them), and two of them could read the same as strings
    (``1`` and ``"1"``): an error that says how to make them one type.
    """
    if isinstance(labels.dtype, pd.CategoricalDtype):
        values = list(labels.cat.categories)
    else:
        values = list(labels.dropna().unique())
    array = np.empty(len(values), dtype=object)  # 1-d even when the labels are tuples
    array[:] = values
    try:
        np.unique(array)  # what scvi-tools does to the categories
    except TypeError:
        kinds = sorted({type(v).__name__ for v in values})
        raise ValueError(
            f"The labels adata.obs[{labels_key!r}] mix types ({', '.join(kinds)}: e.g. "
            f"{', '.join(repr(v) for v in values[:_N_SHOW])}), which cannot be sorted into "
            f"cell types. Make them one type, e.g. strings: `ref.obs[{labels_key!r}] = "
            f"ref.obs[{labels_key!r}].astype(str)`."
        ) from None


def _check_labels(labels: pd.Series, labels_key: str, min_cells: int) -> None:
    n_na = int(labels.isna().sum())
    if n_na:
        raise ValueError(
            f"{_plural(n_na, 'cell')} of the reference {_have(n_na)} missing labels (NaN in "
            f"adata.obs[{labels_key!r}]). Drop them, `ref = ref[ref.obs[{labels_key!r}]"
            ".notna()].copy()`, or fill them with a cell type."
        )
    _check_label_types(labels, labels_key)
    counts = labels.value_counts(sort=False)
    unused = counts.index[counts == 0]
    if len(unused):
        raise ValueError(
            f"The categorical labels adata.obs[{labels_key!r}] have categories with no "
            f"cells: {_show(unused.tolist())}; each category becomes a cell type of the "
            "model. Drop them with `ref.obs[key] = ref.obs[key].cat.remove_unused_categories()`"
            " (e.g. after subsetting)."
        )
    if len(counts) < 2:
        raise ValueError(
            f"The reference has a single cell type ({_show(counts.index.tolist())} in "
            f"adata.obs[{labels_key!r}]); deconvolution needs at least two cell types."
        )
    small = counts[counts < min_cells].sort_values()
    if len(small):
        listed = ", ".join(f"{name!r} ({n})" for name, n in small.items())
        raise ValueError(
            f"{_plural(len(small), 'cell type')} of adata.obs[{labels_key!r}] "
            f"{_have(len(small))} fewer than {min_cells} cells: {listed}. "
            "hpvade cannot learn a cell type from so few cells. Remove them, "
            f"`ref = ref[~ref.obs[{labels_key!r}].isin([...])].copy()` then "
            "remove_unused_categories(), merge them into a broader type, or lower "
            "min_cells_per_type."
        )


# ------------------------------------------------------------------------------ bulk


def check_bulk(adata: AnnData, *, layer: str | None = None, warn_single: bool = True) -> str:
    """Check bulk RNA-seq samples before training on them or predicting their proportions.

    Bulk samples may be counts or relative values on the linear scale (TPM, CPM, FPKM):
    both are brought to CPM over the model's genes. Log-transformed, scaled, negative or
    non-finite values, duplicate gene or sample names and all-zero samples are errors.
    ``adata`` is only read, never modified.

    Parameters
    ----------
    adata
        The bulk, samples x genes.
    layer
        Layer holding the values; ``None`` uses ``adata.X``.
    warn_single
        Warn when the bulk has a single sample (pass ``False`` for prediction, where one
        sample is fine).

    Returns
    -------
    ``"counts"`` when every value is an integer, ``"relative"`` otherwise (TPM/CPM/FPKM-like).

    Raises
    ------
    InputKeyError
        The layer does not exist (a :class:`KeyError` and a :class:`ValueError`).
    ValueError
        For anything else hpvade cannot use; the message says what and how to fix it.

    Warns
    -----
    UserWarning
        A bulk with a single sample, when ``warn_single`` (fine for prediction, too little to
        adapt the model to).

    Examples
    --------
    >>> import hpvade
    >>> from hpvade.pp import check_bulk
    >>> _, bulk = hpvade.data.synthetic()
    >>> check_bulk(bulk)
    'counts'
    """
    what = "bulk"
    X, where = _get_matrix(adata, layer, what)
    _check_unique(adata.var_names, "gene", what, fatal=True)
    _check_unique(adata.obs_names, "sample", what, fatal=True)
    stats = _scan(X)
    _check_finite(stats, adata.obs_names, what, "sample")
    _check_negative(stats, adata.obs_names, what, "sample")
    if stats.n_nonint and _common_total(stats.row_sums) is None and _looks_log(stats):
        examples = ", ".join(f"{v:.4g}" for v in stats.nonint_examples[:3])
        raise ValueError(
            f"The bulk in {where} looks log-transformed; pass counts or TPM on the linear "
            "scale (np.expm1 / 2**x - 1). Its values are non-integers "
            f"({examples}, ...) with a maximum of {stats.vmax:.3g}. If they are linear "
            "values at a small scale (e.g. counts divided by 1e6, with samples summing to "
            "different totals), multiply them back, e.g. by 1e6."
        )
    empty = np.flatnonzero(stats.row_sums == 0)
    if empty.size:
        raise ValueError(
            f"The bulk has {_plural(empty.size, 'all-zero sample')} (nothing expressed over "
            f"its {adata.n_vars} genes): {_show(adata.obs_names[empty].tolist())}. Remove "
            "such samples, e.g. `bulk = bulk[np.asarray(bulk.X.sum(axis=1)).ravel() > 0].copy()`, "
            "or check how the file was read."
        )
    if adata.n_obs == 1 and warn_single:
        _warn(
            f"The bulk has a single sample ({adata.obs_names[0]!r}). That is fine for "
            "get_proportions, but training on it (train(bulk=...)) adapts the model to one "
            "profile only."
        )
    kind = "counts" if stats.n_nonint == 0 else "relative"
    logger.debug("bulk OK: %d samples x %d genes, %s", adata.n_obs, adata.n_vars, kind)
    return kind
