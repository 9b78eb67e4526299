from __future__ import annotations

import anndata as ad
import pandas as pd

from hpvade._cli import main


def test_deconvolve_command_writes_csv_and_reports_truth(tmp_path, synthetic_data, capsys):
    ref, bulk = synthetic_data
    ref.write_h5ad(tmp_path / "ref.h5ad")
    bulk.write_h5ad(tmp_path / "bulk.h5ad")
    out = tmp_path / "props.csv"
    code = main(
        [
            "deconvolve",
            "--reference",
            str(tmp_path / "ref.h5ad"),
            "--bulk",
            str(tmp_path / "bulk.h5ad"),
            "--labels-key",
            "cell_type",
            "--out",
            str(out),
            "--max-epochs",
            "10",
        ]
    )
    assert code == 0
    props = pd.read_csv(out, index_col=0)
    assert props.shape == (24, 4)
    assert list(props.index) == list(bulk.obs_names)
    text = capsys.readouterr().out
    assert "mean per-type Pearson r" in text
    r = float(text.split("mean per-type Pearson r = ")[1].split(";")[0])
    assert r > 0.9
    assert "Wall time" in text
    # the files the user passed are untouched
    assert ad.read_h5ad(tmp_path / "bulk.h5ad").obsm.keys() == bulk.obsm.keys()


def test_bad_input_is_a_one_line_error(tmp_path, synthetic_data, capsys):
    ref, bulk = synthetic_data
    ref.write_h5ad(tmp_path / "ref.h5ad")
    bulk.write_h5ad(tmp_path / "bulk.h5ad")
    code = main(
        [
            "deconvolve",
            "--reference",
            str(tmp_path / "ref.h5ad"),
            "--bulk",
            str(tmp_path / "bulk.h5ad"),
            "--labels-key",
            "no_such_column",
            "--out",
            str(tmp_path / "p.csv"),
        ]
    )
    assert code == 2
    assert "no_such_column" in capsys.readouterr().err
