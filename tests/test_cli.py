from __future__ import annotations

import base64
import re
import shutil
import subprocess

import anndata as ad
import pandas as pd
import pytest

import hpvade
from hpvade._cli import main
from hpvade._report import write_report


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


# ----------------------------------------------------------------------------- bulk files
def _args(ref, bulk, out, *extra):
    return [
        "deconvolve",
        "--reference",
        str(ref),
        "--bulk",
        str(bulk),
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The .h5ad path once: 1 epoch, model saved, report written (shared, read-only)."""
    root = tmp_path_factory.mktemp("cli")
    ref, bulk = hpvade.data.synthetic(seed=0)
    ref.write_h5ad(root / "ref.h5ad")
    bulk.write_h5ad(root / "bulk.h5ad")
    code = main(
        _args(
            root / "ref.h5ad",
            root / "bulk.h5ad",
            root / "props.csv",
            "--labels-key",
            "cell_type",
            "--max-epochs",
            "1",
            "--save-model",
            str(root / "model"),
            "--report",
            str(root / "report.html"),
        )
    )
    assert code == 0
    return root, bulk, pd.read_csv(root / "props.csv", index_col=0)


def test_tsv_genes_x_samples_trains_to_the_h5ad_proportions(saved, tmp_path, capsys):
    root, bulk, expected = saved
    bulk.to_df().T.to_csv(tmp_path / "counts.tsv.gz", sep="\t")
    code = main(
        _args(
            root / "ref.h5ad",
            tmp_path / "counts.tsv.gz",
            tmp_path / "p.csv",
            "--labels-key",
            "cell_type",
            "--max-epochs",
            "1",
        )
    )
    assert code == 0
    assert "as genes x samples (genes in the rows)" in capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "p.csv", index_col=0), expected)


def _parquet(df, path):
    pytest.importorskip("pyarrow")
    df.to_parquet(path)


# tests/test_io.py checks that every format (gzipped or not) and orientation reads to the
# .h5ad's values exactly; here a few go through the whole command
@pytest.mark.parametrize(
    ("name", "write", "orientation"),
    [
        ("b.csv", lambda df, p: df.to_csv(p), "samples x genes"),
        ("b.tsv", lambda df, p: df.T.to_csv(p, sep="\t"), "genes x samples"),
        ("b.parquet", lambda df, p: _parquet(df.T, p), "genes x samples"),
        ("t.h5ad", lambda df, p: ad.AnnData(df.T).write_h5ad(p), "genes x samples"),
    ],
)
def test_every_format_and_orientation_gives_the_h5ad_proportions_with_a_saved_model(
    saved, tmp_path, capsys, monkeypatch, name, write, orientation
):
    root, bulk, expected = saved

    def no_training(*args, **kwargs):
        raise AssertionError("--model must not train")

    monkeypatch.setattr(hpvade.HPVADE, "train", no_training)
    write(bulk.to_df(), tmp_path / name)
    code = main(
        _args(
            root / "ref.h5ad", tmp_path / name, tmp_path / "p.csv", "--model", str(root / "model")
        )
    )
    assert code == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert f"as {orientation}" in text
    assert f"Loaded the trained model from '{root / 'model'}': not training" in text
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "p.csv", index_col=0), expected)


def test_versioned_ensembl_ids_in_the_bulk_match_the_reference(saved, tmp_path, capsys):
    root, bulk, _ = saved
    ref = ad.read_h5ad(root / "ref.h5ad")
    ids = [f"ENSG{i:011d}" for i in range(ref.n_vars)]
    ref.var_names = ids
    ref.write_h5ad(tmp_path / "ref.h5ad")
    df = bulk.to_df().T
    df.index = [f"{g}.{i % 5 + 1}" for i, g in enumerate(ids)]
    df.to_csv(tmp_path / "counts.tsv", sep="\t")
    code = main(
        _args(
            tmp_path / "ref.h5ad",
            tmp_path / "counts.tsv",
            tmp_path / "p.csv",
            "--labels-key",
            "cell_type",
            "--max-epochs",
            "1",
            "--kind",
            "mrna",
        )
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "without Ensembl version suffixes on the bulk's gene IDs: 400 genes match" in text
    assert "'ENSG00000000000.1' -> 'ENSG00000000000'" in text
    props = pd.read_csv(tmp_path / "p.csv", index_col=0)
    assert props.shape == (24, 4)


def test_neither_orientation_matching_exits_2_naming_the_overlap(saved, tmp_path, capsys):
    root, bulk, _ = saved
    df = bulk.to_df().T
    df.index = [f"ENSG{i:011d}" for i in range(len(df))]
    df.to_csv(tmp_path / "counts.tsv", sep="\t")
    code = main(
        _args(
            root / "ref.h5ad",
            tmp_path / "counts.tsv",
            tmp_path / "p.csv",
            "--labels-key",
            "cell_type",
        )
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("hpvade: error: Neither the rows nor the columns")
    assert "0 of its 400 row names" in err
    assert "0 of its 24 column names" in err
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize(
    ("setup", "extra", "match"),
    [
        (lambda d: (d / "b.xlsx").write_bytes(b"x"), [], "Cannot tell the format"),
        (lambda d: None, [], "does not exist"),
        (
            lambda d: (d / "b.xlsx").write_bytes(b"x"),
            ["--out", "/no/such/dir/p.csv"],
            "folder of --out",
        ),
        (
            lambda d: (d / "m").mkdir() or (d / "m" / "f").write_text("x"),
            ["--save-model", "{d}/m"],
            "not an empty folder",
        ),
        (lambda d: (d / "m").mkdir(), ["--model", "{d}/m"], "not a saved hpvade model"),
    ],
)
def test_bad_inputs_exit_2_before_training(
    saved, tmp_path, capsys, monkeypatch, setup, extra, match
):
    root, _, _ = saved
    monkeypatch.setattr(hpvade.HPVADE, "train", lambda *a, **k: pytest.fail("trained"))
    setup(tmp_path)
    extra = [e.format(d=tmp_path) for e in extra]
    code = main(
        _args(
            root / "ref.h5ad",
            tmp_path / "b.xlsx",
            tmp_path / "p.csv",
            "--labels-key",
            "cell_type",
            *extra,
        )
    )
    assert code == 2
    assert match in capsys.readouterr().err


def test_labels_key_is_needed_only_to_train(saved, tmp_path, capsys):
    root, _, _ = saved
    code = main(_args(root / "ref.h5ad", root / "bulk.h5ad", tmp_path / "p.csv"))
    assert code == 2
    assert "--labels-key is required to train" in capsys.readouterr().err


def test_a_model_that_does_not_fit_the_reference_exits_2(saved, tmp_path, capsys):
    root, _, _ = saved
    ref = ad.read_h5ad(root / "ref.h5ad")
    ref[:, :300].copy().write_h5ad(tmp_path / "small.h5ad")
    code = main(
        _args(
            tmp_path / "small.h5ad",
            root / "bulk.h5ad",
            tmp_path / "p.csv",
            "--model",
            str(root / "model"),
        )
    )
    assert code == 2
    assert "does not fit the reference" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("error", "name"),
    [
        (RuntimeError("out of memory"), "RuntimeError"),
        # a ValueError that no input check of hpvade raised is not the user's input
        (ValueError("out of memory"), "ValueError"),
    ],
)
def test_anything_else_exits_1(saved, tmp_path, capsys, monkeypatch, error, name):
    root, _, _ = saved

    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(hpvade.tl, "deconvolve", broken)
    code = main(
        _args(
            root / "ref.h5ad", root / "bulk.h5ad", tmp_path / "p.csv", "--labels-key", "cell_type"
        )
    )
    assert code == 1
    err = capsys.readouterr().err
    assert f"hpvade: internal error: {name}: out of memory" in err
    assert "-v" in err


# ----------------------------------------------------------------------------- report
def _images(html: str) -> list[bytes]:
    sources = re.findall(r'<img[^>]*src="data:image/png;base64,([^"]+)"', html)
    return [base64.b64decode(s, validate=True) for s in sources]


def test_report_is_self_contained_with_decodable_pngs(saved):
    root, bulk, expected = saved
    html = (root / "report.html").read_text()
    images = _images(html)
    assert len(images) == 3  # bars, heatmap, training history
    assert html.count("<img") == 3
    for png in images:
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(png) > 5000
    assert not re.search(r"(src|href)=\"(?!data:)", html)  # nothing fetched from outside
    for text in ("Training history", "bulk_23", "type_3", "scvi-tools", "torch", "ref.h5ad"):
        assert text in html
    assert f"{expected.iloc[0, 0]:.4f}" in html  # the table
    assert "Against the measured fractions" in html  # the bulk had obs['true_*']


def test_report_of_a_model_without_history_skips_that_figure(saved, tmp_path):
    root, bulk, expected = saved

    class Loaded:
        history_ = None

    write_report(tmp_path / "r.html", props=expected, model=Loaded(), inputs={"bulk": "x"})
    html = (tmp_path / "r.html").read_text()
    assert len(_images(html)) == 2
    assert "loaded without a training history" in html


@pytest.mark.slow
def test_report_renders_in_headless_chromium(saved, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed")
    root, _, _ = saved
    # the report plus a script that records, once loaded, the decoded size of every image
    html = (
        (root / "report.html")
        .read_text()
        .replace(
            "</body>",
            "<script>window.addEventListener('load', () => { document.body.dataset.images = "
            "Array.from(document.images).map(i => i.complete ? i.naturalWidth : -1).join(','); "
            "});</script></body>",
        )
    )
    page = tmp_path / "page.html"
    page.write_text(html)
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run(
        [*common, "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    widths = re.search(r'data-images="([^"]*)"', dom)
    assert widths is not None, dom[:500]
    widths = [int(w) for w in widths.group(1).split(",")]
    assert len(widths) == 3
    assert all(w > 100 for w in widths), widths  # decoded, not broken
    shot = tmp_path / "report.png"
    subprocess.run(
        [*common, "--window-size=1200,2400", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    assert shot.stat().st_size > 50_000


def test_quantiles_are_written_beside_the_proportions_and_drawn_in_the_report(
    saved, tmp_path, capsys
):
    root, _, expected = saved
    out = tmp_path / "p.csv"
    code = main(
        _args(
            root / "ref.h5ad",
            root / "bulk.h5ad",
            out,
            "--model",
            str(root / "model"),
            "--quantiles",
            "0.95",
            "0.05",
            "--report",
            str(tmp_path / "r.html"),
        )
    )
    assert code == 0
    props = pd.read_csv(out, index_col=0)
    lo = pd.read_csv(tmp_path / "p_q05.csv", index_col=0)
    hi = pd.read_csv(tmp_path / "p_q95.csv", index_col=0)
    pd.testing.assert_index_equal(lo.index, props.index)
    assert (lo.to_numpy() <= props.to_numpy() + 1e-9).all()
    assert (hi.to_numpy() >= props.to_numpy() - 1e-9).all()
    assert "0.05 quantile" in capsys.readouterr().out
    assert len(_images((tmp_path / "r.html").read_text())) == 3
