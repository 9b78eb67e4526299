"""One blockwise pass over a matrix: the statistics the input checks judge it by.

Sparse matrices are scanned through ``.data`` (a backed one from its file), dense ones in
blocks of rows; nothing is densified whole and nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from anndata.abc import CSCDataset, CSRDataset
from scipy import sparse

from ._chunks import is_backed, row_sums

if TYPE_CHECKING:
    from collections.abc import Iterator

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
    """Scan a matrix once (blockwise) and collect the statistics the checks need.

    The row sums take a second pass (for a backed matrix, a second read of its file: with
    the file in the page cache that is faster than mapping every value of the first pass
    to its row).
    """
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


def _looks_log(stats: _Stats) -> bool:
    frac = stats.n_nonint / max(stats.n_nonzero, 1)
    return stats.vmax < LOG_MAX and frac >= LOG_NONINT_FRACTION
