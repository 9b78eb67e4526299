"""Input checks for the reference and the bulk: every misuse gets an actionable message.

The checks only read the user's AnnData: they never write to ``X``, ``obs``, ``var``,
``layers`` or anything else, and never densify a whole sparse matrix (sparse matrices are
scanned through ``.data``, dense ones in blocks of rows). The catalogue of cases and what
hpvade does for each is in ``docs/input-checks.md``; ``tests/pp/test_validate.py`` has one
test case per entry.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from anndata.abc import CSCDataset, CSRDataset
from scipy import sparse

from ._chunks import is_backed, row_sums

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from anndata import AnnData

logger = logging.getLogger(__name__)

__all__ = ["InputKeyError", "check_bulk", "check_reference", "check_shared_genes"]

#: non-integer data whose maximum is below this looks log-transformed
LOG_MAX = 30.0
#: a value further than this from the nearest integer is a non-integer
INT_ATOL = 1e-3
#: at least this fraction of the non-zero values must be non-integers to call data "log"
LOG_NONINT_FRACTION = 0.5
#: at least this fraction of negative entries makes data look scaled (z-scored)
SCALED_NEG_FRACTION = 0.05
#: values scanned at once (bounds the temporaries of a scan)
_CHUNK = 1 << 22
#: how many names an error message shows
_N_SHOW = 5

_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d{6,}(\.\d+)?$")
_ENSEMBL_VERSION = re.compile(r"\.\d+$")
_ENTREZ = re.compile(r"^\d+$")


class InputKeyError(KeyError, ValueError):
    """A layer, labels or batch column the user named does not exist.

    Subclass of both :class:`KeyError` (what pandas and AnnData raise for a missing key)
    and :class:`ValueError` (what the other input checks raise), so either ``except``
    catches it. Unlike :class:`KeyError`, its message prints without quotes.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# ----------------------------------------------------------------------------- helpers


def _show(names: Iterable[object], n: int = _N_SHOW) -> str:
    """Format the first ``n`` names for a message, with an ellipsis when there are more."""
    names = list(names)
    shown = ", ".join(repr(str(x)) for x in names[:n])
    return shown + (", ..." if len(names) > n else "")


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _have(n: int) -> str:
    return "has" if n == 1 else "have"


def _warn(message: str) -> None:
    # stacklevel 3: the warning points at whoever called check_reference / check_bulk
    warnings.warn(message, UserWarning, stacklevel=3)


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


@dataclass
class _Stats:
    """One pass over a matrix: what the checks need, with a few offending rows."""

    n_rows: int
    n_cols: int
    integer_dtype: bool
    n_nan: int = 0
    n_inf: int = 0
    n_neg: int = 0
    n_nonzero: int = 0
    n_nonint: int = 0
    vmin: float = 0.0
    vmax: float = 0.0
    total: float = 0.0
    total_sq: float = 0.0
    nonint_examples: list[float] = field(default_factory=list)
    bad_rows: list[np.ndarray] = field(default_factory=list)  # rows with NaN/Inf
    neg_rows: list[np.ndarray] = field(default_factory=list)  # rows with negatives
    row_sums: np.ndarray | None = None

    @property
    def n_entries(self) -> int:
        return self.n_rows * self.n_cols

    @property
    def mean(self) -> float:
        return self.total / self.n_entries

    @property
    def std(self) -> float:
        return float(np.sqrt(max(self.total_sq / self.n_entries - self.mean**2, 0.0)))

    def rows(self, which: str) -> np.ndarray:
        parts = self.bad_rows if which == "bad" else self.neg_rows
        return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)

    def update(self, d: np.ndarray, rows_of) -> None:
        """Fold a block of values ``d`` in; ``rows_of(mask)`` maps a mask over it to rows."""
        with np.errstate(invalid="ignore"):
            neg = d < 0  # NaN compares False; -Inf is reported as non-finite first
        if neg.any():
            self.n_neg += int(neg.sum())
            self.neg_rows.append(np.unique(rows_of(neg)))
        if not self.integer_dtype:
            finite = np.isfinite(d)
            if not finite.all():
                nan = np.isnan(d)
                self.n_nan += int(nan.sum())
                self.n_inf += int((~finite & ~nan).sum())
                self.bad_rows.append(np.unique(rows_of(~finite)))
                d = d[finite]
        if d.size == 0:
            return
        self.vmin = min(self.vmin, float(d.min()))
        self.vmax = max(self.vmax, float(d.max()))
        self.n_nonzero += int(np.count_nonzero(d))
        self.total += float(d.sum(dtype=np.float64))
        self.total_sq += float(np.square(d, dtype=np.float64).sum())
        if not self.integer_dtype:
            nonint = np.abs(d - np.rint(d)) > INT_ATOL
            k = int(nonint.sum())
            if k:
                self.n_nonint += k
                if len(self.nonint_examples) < 3:
                    self.nonint_examples.extend(d[nonint][:3].tolist())


def _blocks(X) -> Iterator[tuple[np.ndarray, object]]:
    """Yield ``(values, rows_of)`` blocks of a CSR/CSC/dense matrix without densifying it.

    Implicit zeros of a sparse matrix are not yielded (they change none of the checks
    except the mean, which uses the matrix's full size).
    """
    if sparse.issparse(X) or isinstance(X, CSRDataset | CSCDataset):
        # a backed matrix (AnnData read with backed="r") is read from its file in blocks
        group = X.group if isinstance(X, CSRDataset | CSCDataset) else None
        data = X.data if group is None else group["data"]
        indptr = X.indptr if group is None else np.asarray(group["indptr"][...])
        indices = X.indices if group is None else group["indices"]
        for start in range(0, data.shape[0], _CHUNK):
            stop = min(start + _CHUNK, data.shape[0])

            def rows_of(mask, start=start):
                pos = np.flatnonzero(mask) + start
                if X.format == "csr":
                    return np.searchsorted(indptr, pos, side="right") - 1
                return np.asarray(indices[pos])

            yield np.asarray(data[start:stop]), rows_of
    else:
        n_rows, n_cols = X.shape
        step = max(1, _CHUNK // max(n_cols, 1))
        for start in range(0, n_rows, step):
            block = np.asarray(X[start : start + step])

            def rows_of(mask, start=start, n_cols=n_cols):
                return np.flatnonzero(mask) // n_cols + start

            yield block.ravel(), rows_of


def _scan(X) -> _Stats:
    """Scan a matrix once (blockwise) and collect the statistics the checks need."""
    n_rows, n_cols = X.shape
    stats = _Stats(n_rows, n_cols, integer_dtype=np.issubdtype(X.dtype, np.integer))
    for d, rows_of in _blocks(X):
        stats.update(d, rows_of)
    if stats.n_nan == 0 and stats.n_inf == 0:
        if is_backed(X):
            stats.row_sums = row_sums(X)
        elif sparse.issparse(X):
            stats.row_sums = np.asarray(X.sum(axis=1, dtype=np.float64)).ravel()
        else:
            step = max(1, _CHUNK // max(n_cols, 1))
            stats.row_sums = np.concatenate(
                [
                    np.asarray(X[i : i + step]).sum(axis=1, dtype=np.float64)
                    for i in range(0, n_rows, step)
                ]
            )
    return stats


def _common_total(row_sums: np.ndarray | None) -> float | None:
    """Return the total every non-empty row sums to, if they all share it (normalised data).

    A single row only counts when its total is a power of ten (1, 100, 1e4, 1e6, ...), so
    that the sum of one log-transformed profile is not mistaken for a normalised total.
    """
    if row_sums is None:
        return None
    rs = row_sums[row_sums > 0]
    if rs.size == 0:
        return None
    mean = float(rs.mean())
    if float(rs.max() - rs.min()) > 1e-3 * mean:
        return None
    if rs.size == 1:
        lg = np.log10(mean)
        if abs(lg - round(lg)) > 1e-4:
            return None
    return mean


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


def _looks_log(stats: _Stats) -> bool:
    frac = stats.n_nonint / max(stats.n_nonzero, 1)
    return stats.vmax < LOG_MAX and frac >= LOG_NONINT_FRACTION


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


# ----------------------------------------------------------------------- shared genes


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
