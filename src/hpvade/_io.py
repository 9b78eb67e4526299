"""Reading a bulk from the files a sequencing core hands over (used by ``hpvade deconvolve``).

A bulk arrives as an ``.h5ad`` or as a table (``.csv``, ``.tsv``/``.txt``, gzipped or not,
``.parquet``), with genes in rows or in columns, and with gene identifiers that may differ
from the reference's by an Ensembl version suffix (``ENSG00000123456.7``). :func:`read_bulk`
returns it as an AnnData of samples x genes whose gene names are spelt as in the reference,
and says what it chose.
"""

from __future__ import annotations

import gzip
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from anndata import AnnData

logger = logging.getLogger(__name__)

#: suffixes :func:`read_bulk` understands, for the error message of an unknown one
SUPPORTED_SUFFIXES = (
    ".h5ad",
    ".csv",
    ".tsv",
    ".txt",
    ".csv.gz",
    ".tsv.gz",
    ".txt.gz",
    ".parquet",
)
_ENSEMBL_VERSION = re.compile(r"^(ENS[A-Z]*G\d{6,})\.\d+$")
# annotation columns that featureCounts writes before the samples
_FEATURECOUNTS = ("Chr", "Start", "End", "Strand", "Length")
_N_SHOW = 3


class InputFileError(ValueError):
    """An input file cannot be read or matched to the reference (the message says what to do)."""


@dataclass
class BulkReadReport:
    """What :func:`read_bulk` found and chose, in words and numbers."""

    path: str
    file_format: str
    orientation: str = ""
    n_samples: int = 0
    n_genes: int = 0
    n_matched: int = 0
    versions_stripped: str | None = None
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The notes, one sentence each."""
        return list(self.notes)


def strip_ensembl_version(names: Iterable[str]) -> pd.Index:
    """Ensembl gene IDs without their version suffix; other names unchanged.

    Parameters
    ----------
    names
        Gene names.

    Returns
    -------
    pandas.Index
        ``ENSG00000123456.7`` becomes ``ENSG00000123456``; ``CD3E`` stays ``CD3E``.

    Examples
    --------
    >>> from hpvade._io import strip_ensembl_version
    >>> list(strip_ensembl_version(["ENSG00000123456.7", "ENSMUSG00000000001.4", "CD3E"]))
    ['ENSG00000123456', 'ENSMUSG00000000001', 'CD3E']
    """
    return pd.Index([_ENSEMBL_VERSION.sub(r"\1", str(n)) for n in names])


def _has_versions(names: pd.Index) -> bool:
    return bool(any(_ENSEMBL_VERSION.match(str(n)) for n in names))


def _show(names: Iterable[object]) -> str:
    names = [str(n) for n in names]
    shown = ", ".join(repr(n) for n in names[:_N_SHOW])
    return shown + (", ..." if len(names) > _N_SHOW else "")


@dataclass
class _Match:
    """How one axis of the table matches the reference's genes."""

    names: pd.Index  # the axis' names, renamed to the reference's spelling where they match
    n_raw: int  # names equal to a reference gene as they are
    n: int  # names matching a reference gene, versions stripped if that matches more
    stripped: str | None  # "bulk", "reference", "both" or None
    example: tuple[str, str] | None = None  # one name as written -> the reference's


def _match_axis(names: pd.Index, reference: pd.Index) -> _Match:
    names = pd.Index([str(n) for n in names])
    n_raw = int(names.isin(reference).sum())
    bulk_v, ref_v = _has_versions(names), _has_versions(reference)
    if not (bulk_v or ref_v):
        return _Match(names, n_raw, n_raw, None)
    ref_key = strip_ensembl_version(reference)
    # a stripped ID that stands for several reference genes cannot be mapped back
    unique = ~ref_key.duplicated(keep=False)
    to_reference = pd.Series(np.asarray(reference)[unique], index=ref_key[unique])
    key = strip_ensembl_version(names)
    found = key.isin(to_reference.index)
    n_strip = int(found.sum())
    if n_strip <= n_raw:
        return _Match(names, n_raw, n_raw, None)
    renamed = pd.Index(np.where(found, to_reference.reindex(key).to_numpy(), np.asarray(names)))
    side = "both" if (bulk_v and ref_v) else ("bulk" if bulk_v else "reference")
    changed = np.flatnonzero(np.asarray(renamed) != np.asarray(names))
    example = (names[changed[0]], renamed[changed[0]]) if len(changed) else None
    return _Match(renamed, n_raw, n_strip, side, example)


def _open_text(path: Path):
    return gzip.open(path, "rt") if path.name.endswith(".gz") else path.open()


def _leading_comments(path: Path) -> int:
    """Number of ``#`` lines at the top of a text table (featureCounts writes one)."""
    n = 0
    with _open_text(path) as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            n += 1
    return n


def _file_format(path: Path) -> str:
    name = path.name.lower()
    gzipped = name.endswith(".gz")
    base = name[:-3] if gzipped else name
    for suffix in ("csv", "tsv", "txt") + (() if gzipped else ("h5ad", "parquet")):
        if base.endswith("." + suffix):
            return suffix
    raise InputFileError(
        f"Cannot tell the format of the bulk file '{path}' from its name. hpvade reads "
        f"{', '.join(SUPPORTED_SUFFIXES)}: rename the file, or convert it (e.g. with pandas: "
        "`pd.read_excel(...).to_csv('counts.tsv', sep='\\t')`)."
    )


def _read_table(path: Path, file_format: str) -> pd.DataFrame:
    if file_format == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError as err:
            raise InputFileError(
                f"Reading '{path}' (Parquet) needs pyarrow, which is not installed: run "
                "`pip install pyarrow`, or save the table as .tsv or .csv."
            ) from err
        df = pd.read_parquet(path, engine="pyarrow")
        # a table written without its index keeps the gene (or sample) names in a column
        if isinstance(df.index, pd.RangeIndex) and df.shape[1] > 0:
            first = df.columns[0]
            if not pd.api.types.is_numeric_dtype(df[first]):
                df = df.set_index(first)
        return df
    skip = _leading_comments(path)
    if file_format == "csv":
        return pd.read_csv(path, sep=",", index_col=0, skiprows=skip)
    df = pd.read_csv(path, sep="\t", index_col=0, skiprows=skip)
    if file_format == "txt" and df.shape[1] == 0:
        # a .txt that is not tab-separated: commas, else runs of spaces
        with _open_text(path) as fh:
            for _ in range(skip):
                fh.readline()
            header = fh.readline()
        sep = "," if "," in header else r"\s+"
        df = pd.read_csv(path, sep=sep, index_col=0, skiprows=skip)
    return df


def read_bulk(
    path: str | Path,
    *,
    reference_genes: Sequence[str] | pd.Index,
    layer: str | None = None,
) -> tuple[AnnData, BulkReadReport]:
    """Read a bulk file as samples x genes, with its genes spelt as in the reference.

    The orientation is the one whose names overlap most with ``reference_genes`` (ties keep
    the file's usual layout: genes in the rows of a table, in ``var`` of an ``.h5ad``).
    When an Ensembl version suffix on either side is what stops names from matching, the
    bulk's genes are renamed to the reference's IDs (the reference is never changed).
    Genes that end up with the same name are summed.

    Parameters
    ----------
    path
        ``.h5ad``, ``.csv``, ``.tsv``/``.txt`` (optionally ``.gz``) or ``.parquet`` file.
        Tables hold the sample (or gene) names in their first column and a header row; in a
        genes x samples table, non-numeric columns (e.g. a gene symbol) and featureCounts'
        ``Chr, Start, End, Strand, Length`` go to ``var``; in a samples x genes table,
        non-numeric columns go to ``obs``.
    reference_genes
        Gene names of the reference (``ref.var_names``).
    layer
        Layer of an ``.h5ad`` bulk with its values (tables have none).

    Returns
    -------
    bulk
        Samples x genes.
    report
        What was read and chosen (:attr:`BulkReadReport.notes` in words).

    Raises
    ------
    InputFileError
        Unknown extension, unreadable file, pyarrow missing for Parquet, a ``layer`` for a
        table, no numeric values, or neither rows nor columns matching the reference's
        genes (the message gives both overlaps and a few names from each side).
    """
    import anndata as ad

    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"The bulk file '{path}' does not exist (or is not a file).")
    file_format = _file_format(path)
    report = BulkReadReport(path=str(path), file_format=file_format)
    reference = pd.Index([str(g) for g in reference_genes])

    if file_format == "h5ad":
        try:
            adata = ad.read_h5ad(path)
        except Exception as err:  # any failure to parse is the file's
            raise InputFileError(
                f"Could not read '{path}' as .h5ad ({type(err).__name__}: {err}). Check that "
                "the file is complete and was written by anndata (adata.write_h5ad)."
            ) from err
        if layer is not None and layer not in adata.layers:
            raise InputFileError(
                f"The bulk '{path}' has no layer {layer!r} (layers: {list(adata.layers)}); "
                "pass one of them with --bulk-layer, or none to use X."
            )
        rows, cols = pd.Index(adata.obs_names), pd.Index(adata.var_names)
        genes_in_rows_default = False
    else:
        if layer is not None:
            raise InputFileError(
                f"--bulk-layer applies to .h5ad bulks; '{path}' is a {file_format} table. "
                "Drop --bulk-layer."
            )
        try:
            df = _read_table(path, file_format)
        except InputFileError:
            raise
        except Exception as err:
            raise InputFileError(
                f"Could not read '{path}' as a {file_format} table ({type(err).__name__}: "
                f"{err}). hpvade expects a header row and the gene (or sample) names in the "
                "first column."
            ) from err
        if df.shape[0] == 0 or df.shape[1] == 0:
            raise InputFileError(
                f"'{path}' holds no values after its first column and header ({df.shape[0]} "
                f"rows x {df.shape[1]} columns). Check the separator: .csv is read with "
                "commas, .tsv with tabs."
            )
        df.index = pd.Index([str(i) for i in df.index])
        df.columns = pd.Index([str(c) for c in df.columns])
        rows, cols = df.index, df.columns
        genes_in_rows_default = True

    m_rows, m_cols = _match_axis(rows, reference), _match_axis(cols, reference)
    if m_rows.n == 0 and m_cols.n == 0:
        raise InputFileError(
            f"Neither the rows nor the columns of '{path}' name the reference's genes: 0 of "
            f"its {len(rows)} row names ({_show(rows)}) and 0 of its {len(cols)} column names "
            f"({_show(cols)}) are among the reference's {len(reference)} genes "
            f"({_show(reference)}), even without Ensembl version suffixes. Use the same gene "
            "identifiers on both sides (e.g. map Ensembl IDs to symbols, or the reverse)."
        )
    if m_rows.n == m_cols.n:
        genes_in_rows = genes_in_rows_default
    else:
        genes_in_rows = m_rows.n > m_cols.n
    genes, other = (m_rows, m_cols) if genes_in_rows else (m_cols, m_rows)
    n_genes_axis = len(rows) if genes_in_rows else len(cols)
    n_other_axis = len(cols) if genes_in_rows else len(rows)
    report.orientation = "genes x samples" if genes_in_rows else "samples x genes"
    where = "rows" if genes_in_rows else "columns"
    elsewhere = "columns" if genes_in_rows else "rows"
    report.notes.append(
        f"Read '{path.name}' as {report.orientation} (genes in the {where}): {genes.n} of its "
        f"{n_genes_axis} {where[:-1]} names are reference genes, against {other.n} of its "
        f"{n_other_axis} {elsewhere[:-1]} names."
    )
    if genes.stripped is not None:
        report.versions_stripped = genes.stripped
        side = {
            "bulk": "the bulk's gene IDs",
            "reference": "the reference's gene IDs",
            "both": "the gene IDs of both",
        }[genes.stripped]
        example = f" (e.g. '{genes.example[0]}' -> '{genes.example[1]}')" if genes.example else ""
        report.notes.append(
            f"Matched genes without Ensembl version suffixes on {side}: {genes.n} genes match "
            f"that way, {genes.n_raw} as written; the bulk's genes take the reference's "
            f"IDs{example}."
        )

    if file_format == "h5ad":
        bulk = adata.T.copy() if genes_in_rows else adata
        if layer is not None:
            bulk.X = bulk.layers[layer]
            report.notes.append(f"Values from the layer {layer!r}.")
        if genes.names.is_unique:
            bulk.var_names = genes.names
        else:
            bulk = _sum_duplicate_genes(bulk.X, bulk.obs, genes.names, report)
    else:
        bulk = _table_to_anndata(df, genes, genes_in_rows=genes_in_rows, report=report)

    report.n_samples, report.n_genes = bulk.n_obs, bulk.n_vars
    report.n_matched = int(bulk.var_names.isin(reference).sum())
    for line in report.notes:
        logger.debug(line)
    return bulk, report


def _table_to_anndata(
    df: pd.DataFrame, genes: _Match, *, genes_in_rows: bool, report: BulkReadReport
) -> AnnData:
    """Samples x genes AnnData from a table; annotation columns go to var or obs."""
    import anndata as ad

    df = df.copy()
    if genes_in_rows:
        df.index = genes.names
        var = pd.DataFrame(index=df.index)
        if all(c in df.columns for c in _FEATURECOUNTS):
            var = df[list(_FEATURECOUNTS)].copy()
            df = df.drop(columns=list(_FEATURECOUNTS))
            report.notes.append(
                "Moved featureCounts' annotation columns (Chr, Start, End, Strand, Length) to var."
            )
        text = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
        if text:
            var = var.join(df[text])
            df = df.drop(columns=text)
            report.notes.append(f"Kept the non-numeric columns {text[:5]} as gene annotations.")
        values, obs = df.T, pd.DataFrame(index=df.columns)
    else:
        df.columns = genes.names
        text = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
        obs = df[text].copy() if text else pd.DataFrame(index=df.index)
        if text:
            df = df.drop(columns=text)
            report.notes.append(f"Kept the non-numeric columns {text[:5]} as sample annotations.")
        values, var = df, pd.DataFrame(index=df.columns)
    if values.shape[0] == 0 or values.shape[1] == 0:
        raise InputFileError(
            f"'{report.path}' has no numeric {'sample' if genes_in_rows else 'gene'} columns. "
            "Every cell except the names and annotations must be a count or a TPM value."
        )
    X = values.to_numpy(dtype=np.float64)
    if not values.columns.is_unique:
        return _sum_duplicate_genes(X, obs, values.columns, report)
    return ad.AnnData(X=X, obs=obs, var=var)


def _sum_duplicate_genes(X, obs: pd.DataFrame, names: pd.Index, report: BulkReadReport) -> AnnData:
    """Samples x genes, the columns of genes that share a name summed.

    Counts and TPM add up; gene annotations are dropped.
    """
    import anndata as ad
    import scipy.sparse as sp

    names = pd.Index(names)
    codes, uniques = pd.factorize(names)
    n_dup = len(names) - len(uniques)
    indicator = sp.csr_matrix(
        (np.ones(len(codes)), (np.arange(len(codes)), codes)), shape=(len(codes), len(uniques))
    )
    summed = X @ indicator
    summed = summed.toarray() if sp.issparse(summed) else np.asarray(summed)
    report.notes.append(
        f"{n_dup} gene names appeared more than once (e.g. {_show(names[names.duplicated()])}); "
        "their values are summed."
    )
    return ad.AnnData(X=summed, obs=obs.copy(), var=pd.DataFrame(index=pd.Index(uniques)))
