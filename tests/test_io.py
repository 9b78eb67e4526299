"""Reading the bulk files of ``hpvade deconvolve`` (no training here)."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

import hpvade
from hpvade._io import InputFileError, read_bulk, strip_ensembl_version


@pytest.fixture(scope="module")
def data():
    return hpvade.data.synthetic(seed=0)


def _write(df: pd.DataFrame, path, fmt: str) -> None:
    if fmt in ("tsv", "tsv.gz", "txt", "txt.gz"):
        df.to_csv(path, sep="\t")
    elif fmt in ("csv", "csv.gz"):
        df.to_csv(path)
    else:
        raise AssertionError(fmt)


def _same_bulk(read, bulk) -> None:
    assert list(read.obs_names) == list(bulk.obs_names)
    assert list(read.var_names) == list(bulk.var_names)
    np.testing.assert_array_equal(read.X, bulk.to_df().to_numpy())


@pytest.mark.parametrize("fmt", ["tsv", "tsv.gz", "csv", "csv.gz", "txt", "txt.gz"])
@pytest.mark.parametrize("genes_in_rows", [True, False])
def test_tables_in_both_orientations_read_as_the_h5ad(tmp_path, data, fmt, genes_in_rows):
    ref, bulk = data
    df = bulk.to_df()
    path = tmp_path / f"counts.{fmt}"
    _write(df.T if genes_in_rows else df, path, fmt)
    read, report = read_bulk(path, reference_genes=ref.var_names)
    _same_bulk(read, bulk)
    expected = "genes x samples" if genes_in_rows else "samples x genes"
    assert report.orientation == expected
    assert expected in report.notes[0]
    assert "400 of its 400" in report.notes[0]


def test_space_separated_txt(tmp_path, data):
    ref, bulk = data
    path = tmp_path / "counts.txt"
    bulk.to_df().T.to_csv(path, sep=" ")
    read, _ = read_bulk(path, reference_genes=ref.var_names)
    _same_bulk(read, bulk)


@pytest.mark.parametrize("genes_in_rows", [True, False])
@pytest.mark.parametrize("index", [True, False])
def test_parquet_in_both_orientations(tmp_path, data, genes_in_rows, index):
    pytest.importorskip("pyarrow")
    ref, bulk = data
    df = bulk.to_df()
    df = df.T if genes_in_rows else df
    if not index:  # names in a first column, as R's arrow::write_parquet writes them
        df = df.rename_axis("name").reset_index()
    path = tmp_path / "counts.parquet"
    df.to_parquet(path, index=index)
    read, _ = read_bulk(path, reference_genes=ref.var_names)
    _same_bulk(read, bulk)


def test_parquet_without_pyarrow_says_how_to_install_it(tmp_path, data, monkeypatch):
    ref, _ = data
    path = tmp_path / "counts.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ImportError
    with pytest.raises(InputFileError, match="pip install pyarrow"):
        read_bulk(path, reference_genes=ref.var_names)


def test_transposed_h5ad_is_turned_around(tmp_path, data):
    ref, bulk = data
    bulk.T.write_h5ad(tmp_path / "t.h5ad")
    read, report = read_bulk(tmp_path / "t.h5ad", reference_genes=ref.var_names)
    assert report.orientation == "genes x samples"
    _same_bulk(read, bulk)
    read, report = read_bulk(_h5ad(tmp_path, bulk), reference_genes=ref.var_names)
    assert report.orientation == "samples x genes"
    _same_bulk(read, bulk)
    assert "true_type_0" in read.obs  # the h5ad's annotations travel


def _h5ad(tmp_path, bulk):
    bulk.write_h5ad(tmp_path / "b.h5ad")
    return tmp_path / "b.h5ad"


def _ensembl(names, version: bool) -> list[str]:
    out = []
    for i, _ in enumerate(names):
        gene = f"ENSG{i:011d}"
        out.append(f"{gene}.{i % 9 + 1}" if version else gene)
    return out


@pytest.mark.parametrize(
    ("ref_versions", "bulk_versions", "side"),
    [(False, True, "the bulk's"), (True, False, "the reference's"), (True, True, "both")],
)
def test_ensembl_versions_are_stripped_when_that_makes_genes_match(
    tmp_path, data, ref_versions, bulk_versions, side
):
    ref, bulk = data
    ref_genes = _ensembl(ref.var_names, ref_versions)
    df = bulk.to_df().T
    df.index = _ensembl(df.index, bulk_versions)
    if ref_versions and bulk_versions:  # other versions on each side
        df.index = [g[:-2] + f".{int(g[-1]) % 9 + 1}" if "." in g else g for g in df.index]
    df.to_csv(tmp_path / "ens.tsv.gz", sep="\t")
    read, report = read_bulk(tmp_path / "ens.tsv.gz", reference_genes=ref_genes)
    # the bulk's genes take the reference's IDs, in the file's order
    assert list(read.var_names) == ref_genes
    np.testing.assert_array_equal(read.X, bulk.to_df().to_numpy())
    assert report.versions_stripped is not None
    text = " ".join(report.notes)
    assert "Ensembl version" in text
    assert side in text
    assert "400 genes match that way" in text


def test_matching_ids_are_not_renamed(tmp_path, data):
    ref, bulk = data
    genes = _ensembl(ref.var_names, True)
    df = bulk.to_df().T
    df.index = genes
    df.to_csv(tmp_path / "same.tsv", sep="\t")
    read, report = read_bulk(tmp_path / "same.tsv", reference_genes=genes)
    assert list(read.var_names) == genes
    assert report.versions_stripped is None
    assert not any("Ensembl" in n for n in report.notes)


def test_strip_ensembl_version_leaves_other_names():
    names = ["ENSG00000123456.7", "ENSMUSG00000000001.12", "CD3E", "HLA-A.1", "ENSG00000123456"]
    assert list(strip_ensembl_version(names)) == [
        "ENSG00000123456",
        "ENSMUSG00000000001",
        "CD3E",
        "HLA-A.1",
        "ENSG00000123456",
    ]


def test_neither_orientation_matching_names_both_overlaps(tmp_path, data):
    ref, bulk = data
    df = bulk.to_df().T
    df.index = [f"other_{i}" for i in range(len(df))]
    df.to_csv(tmp_path / "x.tsv", sep="\t")
    with pytest.raises(InputFileError) as info:
        read_bulk(tmp_path / "x.tsv", reference_genes=ref.var_names)
    message = str(info.value)
    assert "0 of its 400 row names ('other_0'" in message
    assert "0 of its 24 column names ('bulk_0'" in message
    assert "reference's 400 genes ('gene_0'" in message


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("counts.xlsx", b"x", r"Cannot tell the format.*\.tsv"),
        ("counts.h5ad.gz", b"x", "Cannot tell the format"),
        ("counts.h5ad", b"not hdf5", "Could not read .* as .h5ad"),
        ("counts.tsv", b"", "Could not read .* as a tsv table"),
        ("counts.csv", b"gene\nA\nB\n", "holds no values"),
    ],
)
def test_unreadable_files_are_input_errors(tmp_path, data, name, content, match):
    ref, _ = data
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InputFileError, match=match):
        read_bulk(tmp_path / name, reference_genes=ref.var_names)


def test_missing_file_and_layer_of_a_table(tmp_path, data):
    ref, bulk = data
    with pytest.raises(InputFileError, match="does not exist"):
        read_bulk(tmp_path / "nope.tsv", reference_genes=ref.var_names)
    bulk.to_df().T.to_csv(tmp_path / "c.tsv", sep="\t")
    with pytest.raises(InputFileError, match="Drop --bulk-layer"):
        read_bulk(tmp_path / "c.tsv", reference_genes=ref.var_names, layer="counts")


def test_h5ad_layer_values_are_read(tmp_path, data):
    ref, bulk = data
    bulk.layers["counts"] = bulk.to_df().to_numpy() * 2
    path = _h5ad(tmp_path, bulk)
    read, report = read_bulk(path, reference_genes=ref.var_names, layer="counts")
    np.testing.assert_array_equal(np.asarray(read.X), bulk.layers["counts"])
    assert "layer 'counts'" in " ".join(report.notes)
    with pytest.raises(InputFileError, match="no layer 'tpm'"):
        read_bulk(path, reference_genes=ref.var_names, layer="tpm")


def test_featurecounts_table_with_annotations(tmp_path, data):
    ref, bulk = data
    df = bulk.to_df().T
    table = pd.DataFrame(
        {"Chr": "chr1", "Start": 1, "End": 100, "Strand": "+", "Length": 1000}, index=df.index
    ).join(df)
    table.insert(0, "symbol", [f"S{i}" for i in range(len(df))])
    table.index.name = "Geneid"
    path = tmp_path / "fc.txt"
    with open(path, "w") as fh:
        fh.write("# Program:featureCounts v2.0.3; Command:...\n")
        table.to_csv(fh, sep="\t")
    read, report = read_bulk(path, reference_genes=ref.var_names)
    _same_bulk(read, bulk)
    assert {"Chr", "Length", "symbol"} <= set(read.var.columns)
    assert "featureCounts" in " ".join(report.notes)


def test_sample_annotations_of_a_samples_x_genes_table_go_to_obs(tmp_path, data):
    ref, bulk = data
    df = bulk.to_df()
    df.insert(0, "condition", ["a", "b"] * 12)
    df.to_csv(tmp_path / "s.csv")
    read, _ = read_bulk(tmp_path / "s.csv", reference_genes=ref.var_names)
    _same_bulk(read, bulk)
    assert list(read.obs["condition"]) == ["a", "b"] * 12


def test_genes_that_share_a_name_after_stripping_are_summed(tmp_path, data):
    ref, bulk = data
    df = bulk.to_df().T.iloc[:3]
    df.index = ["ENSG00000000001.1", "ENSG00000000001.2", "ENSG00000000002.1"]
    df.to_csv(tmp_path / "d.tsv", sep="\t")
    genes = ["ENSG00000000001", "ENSG00000000002"]
    read, report = read_bulk(tmp_path / "d.tsv", reference_genes=genes)
    assert list(read.var_names) == genes
    np.testing.assert_allclose(read.X[:, 0], df.iloc[0] + df.iloc[1])
    assert "summed" in " ".join(report.notes)
