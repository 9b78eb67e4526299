"""One test case per catalogued input case of ``docs/input-checks.md``.

Each case builds a small synthetic AnnData (Poisson counts), runs the check, asserts the
outcome (exception type + message fragments, warning + fragments, or acceptance) and that
the inputs are unchanged afterwards.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from hpvade.pp import _scan
from hpvade.pp._validate import InputKeyError, check_bulk, check_reference, check_shared_genes

if TYPE_CHECKING:
    from collections.abc import Callable

DOCS = Path(__file__).resolve().parents[2] / "docs" / "input-checks.md"
TYPES = ["B cell", "T cell", "monocyte"]


# ------------------------------------------------------------------------- builders


def _counts(n_obs: int = 60, n_vars: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.poisson(3.0, size=(n_obs, n_vars)).astype(np.float32) + (
        np.arange(n_vars) == 0
    )  # gene 0 is never zero: no accidental all-zero cell


def ref(X: Any = None, **obs_columns: Any) -> ad.AnnData:
    X = _counts() if X is None else X
    n_obs, n_vars = X.shape
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical(np.resize(TYPES, n_obs)), **obs_columns},
        index=[f"cell{i}" for i in range(n_obs)],
    )
    var = pd.DataFrame(index=[f"GENE{j}" for j in range(n_vars)])
    return ad.AnnData(X, obs=obs, var=var)


def bulk(X: Any = None, n_obs: int = 4) -> ad.AnnData:
    X = (_counts(n_obs, 40, seed=1) * 50) if X is None else X
    return ad.AnnData(
        X,
        obs=pd.DataFrame(index=[f"sample{i}" for i in range(X.shape[0])]),
        var=pd.DataFrame(index=[f"GENE{j}" for j in range(X.shape[1])]),
    )


def with_value(a: ad.AnnData, row: int, col: int, value: float) -> ad.AnnData:
    X = np.array(a.X, dtype=np.float32)
    X[row, col] = value
    a.X = X
    return a


def ref_log_with_counts_layer() -> ad.AnnData:
    a = ref()
    a.layers["counts"] = a.X.copy()
    a.X = np.log1p(a.X)
    return a


def ref_normalised() -> ad.AnnData:
    a = ref()
    a.X = a.X / a.X.sum(axis=1, keepdims=True) * 1e4
    return a


def ref_relabel(labels: list[Any], categorical: bool = True) -> ad.AnnData:
    a = ref()
    a.obs["cell_type"] = pd.Categorical(labels) if categorical else labels
    return a


def ref_dup(axis: str) -> ad.AnnData:
    a = ref()
    if axis == "var":
        a.var_names = ["GENE0", *a.var_names[:-1]]
    else:
        a.obs_names = ["cell0", *a.obs_names[:-1]]
    return a


def ref_zero_cells() -> ad.AnnData:
    X = _counts()
    X[[3, 7, 11]] = 0
    return ref(sparse.csr_matrix(X))


def ref_unused_category() -> ad.AnnData:
    a = ref()
    a.obs["cell_type"] = a.obs["cell_type"].cat.add_categories(["platelet"])
    return a


def backed(path: Path, a: ad.AnnData) -> ad.AnnData:
    a.write_h5ad(path / "x.h5ad")
    return ad.read_h5ad(path / "x.h5ad", backed="r")


def bulk_dup(axis: str) -> ad.AnnData:
    b = bulk()
    if axis == "var":
        b.var_names = ["GENE0", *b.var_names[:-1]]
    else:
        b.obs_names = ["sample0", *b.obs_names[:-1]]
    return b


def bulk_relative(total: float) -> ad.AnnData:
    b = bulk()
    b.X = b.X / b.X.sum(axis=1, keepdims=True) * total
    return b


def bulk_zero_sample() -> ad.AnnData:
    b = bulk()
    b.X[2] = 0
    return b


def genes(n: int, fmt: str = "GENE{}") -> list[str]:
    return [fmt.format(i) for i in range(n)]


ENSEMBL = [f"ENSG{i:011d}" for i in range(200)]
SYMBOLS = genes(200)


# ------------------------------------------------------------------------- the catalogue


@dataclass
class Case:
    """A catalogued input case: what to call on what, and what must happen."""

    call: str  # "reference" | "bulk" | "genes"
    build: Callable[[Path], Any]
    raises: type[Exception] | None = None
    warns: type[Warning] | None = None
    match: tuple[str, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    returns: Any = None


def R(build: Callable[[], Any], **kw: Any) -> Case:
    return Case("reference", lambda _: build(), **kw)


def B(build: Callable[[], Any], **kw: Any) -> Case:
    return Case("bulk", lambda _: build(), **kw)


def G(bulk_genes: list[str], model_genes: list[str], **kw: Any) -> Case:
    return Case("genes", lambda _: (list(bulk_genes), list(model_genes)), **kw)


CASES = [
    # --- reference ---------------------------------------------------------------
    pytest.param(
        R(ref, kwargs={"layer": "counts"}, raises=KeyError, match=("Layer 'counts' not found",)),
        id="ref-layer-missing",
    ),
    pytest.param(
        R(
            lambda: ad.AnnData(obs=pd.DataFrame({"cell_type": ["a", "b"]}, index=["x", "y"])),
            raises=ValueError,
            match=("adata.X is empty (None)",),
        ),
        id="ref-x-none",
    ),
    pytest.param(
        R(lambda: ref()[:0].copy(), raises=ValueError, match=("is empty: 0 cells x 40 genes",)),
        id="ref-empty",
    ),
    pytest.param(
        R(lambda: ref(_counts() > 2), raises=ValueError, match=("dtype bool", "numeric")),
        id="ref-non-numeric",
    ),
    pytest.param(
        R(
            lambda: with_value(ref(), 5, 2, np.nan),
            raises=ValueError,
            match=("1 NaN and 0 infinite", "'cell5'"),
        ),
        id="ref-nan",
    ),
    pytest.param(
        R(
            lambda: with_value(ref(), 9, 2, np.inf),
            raises=ValueError,
            match=("0 NaN and 1 infinite", "'cell9'"),
        ),
        id="ref-inf",
    ),
    pytest.param(
        R(
            lambda: with_value(ref(), 4, 3, -2.0),
            raises=ValueError,
            match=("1 negative value ", "'cell4'", "raw counts"),
        ),
        id="ref-negative",
    ),
    pytest.param(
        R(
            lambda: ref((_counts() - _counts().mean(0)) / _counts().std(0)),
            raises=ValueError,
            match=("looks scaled or z-scored", "sc.pp.scale"),
        ),
        id="ref-scaled",
    ),
    pytest.param(
        R(
            lambda: ref(np.log1p(_counts())),
            raises=ValueError,
            match=(
                "looks log-transformed: pass raw counts (e.g. adata.layers['counts'] or "
                "expm1 and multiply by library size)",
            ),
        ),
        id="ref-log",
    ),
    pytest.param(
        R(
            ref_log_with_counts_layer,
            raises=ValueError,
            match=("looks log-transformed", "layer='counts'"),
        ),
        id="ref-log-counts-layer-hint",
    ),
    pytest.param(
        R(ref_normalised, raises=ValueError, match=("looks normalised", "sums to 1e+04")),
        id="ref-normalised",
    ),
    pytest.param(
        R(
            lambda: ref(_counts() * 37.3),
            raises=ValueError,
            match=("non-integer values", "TPM/CPM", "np.rint"),
        ),
        id="ref-non-integer",
    ),
    pytest.param(
        R(
            lambda: ref_dup("var"),
            raises=ValueError,
            match=("duplicate gene names", "'GENE0'", "var_names_make_unique"),
        ),
        id="ref-duplicate-genes",
    ),
    pytest.param(
        R(
            lambda: ref_dup("obs"),
            warns=UserWarning,
            match=("duplicate cell names", "'cell0'", "obs_names_make_unique"),
        ),
        id="ref-duplicate-cells",
    ),
    pytest.param(
        R(
            ref_zero_cells,
            raises=ValueError,
            match=(
                "3 all-zero cells",
                "'cell3', 'cell7', 'cell11'",
                "sc.pp.filter_cells(adata, min_counts=1)",
            ),
        ),
        id="ref-all-zero-cells",
    ),
    pytest.param(
        R(
            ref,
            kwargs={"labels_key": "celltype"},
            raises=KeyError,
            match=("labels column 'celltype' is not in", "'cell_type'"),
        ),
        id="ref-labels-missing",
    ),
    pytest.param(
        R(
            lambda: ref_relabel([*TYPES * 19, "B cell", None, None]),
            raises=ValueError,
            match=("2 cells of the reference have missing labels (NaN", ".notna()"),
        ),
        id="ref-labels-nan",
    ),
    pytest.param(
        R(
            ref_unused_category,
            raises=ValueError,
            match=("categories with no cells: 'platelet'", "remove_unused_categories"),
        ),
        id="ref-labels-unused-category",
    ),
    pytest.param(
        R(
            lambda: ref_relabel([*TYPES * 19, "B cell", "pDC", "pDC"], categorical=False),
            raises=ValueError,
            match=("fewer than 5 cells: 'pDC' (2)", "min_cells_per_type"),
        ),
        id="ref-type-few-cells",
    ),
    pytest.param(
        R(
            lambda: ref_relabel(["T cell"] * 60),
            raises=ValueError,
            match=("single cell type", "at least two cell types"),
        ),
        id="ref-single-type",
    ),
    pytest.param(
        R(
            ref,
            kwargs={"batch_key": "donor"},
            raises=KeyError,
            match=("batch column 'donor' is not in",),
        ),
        id="ref-batch-missing",
    ),
    pytest.param(
        R(
            lambda: ref(donor=[None, *["d1"] * 59]),
            kwargs={"batch_key": "donor"},
            raises=ValueError,
            match=("1 cell of the reference has no batch",),
        ),
        id="ref-batch-nan",
    ),
    pytest.param(
        Case("reference", lambda p: backed(p, ref())),  # read in blocks, file unchanged
        id="ref-backed",
    ),
    pytest.param(R(lambda: ref()[5:50, 3:]), id="ref-view"),
    pytest.param(R(lambda: ref(_counts().astype(np.float64))), id="ref-dense-float64"),
    pytest.param(R(lambda: ref(sparse.csr_matrix(_counts()))), id="ref-csr-float32"),
    pytest.param(
        R(lambda: ref(sparse.csc_matrix(_counts().astype(np.float64)))), id="ref-csc-float64"
    ),
    pytest.param(R(lambda: ref(_counts().astype(np.int64))), id="ref-int64"),
    pytest.param(
        R(lambda: ref_relabel(np.resize([0, 1, 2], 60), categorical=False)),
        id="ref-integer-labels",
    ),
    # found by tests/test_properties.py: labels of any one hashable type are cell types
    pytest.param(
        R(lambda: ref_relabel(np.resize([True, False], 60), categorical=False)),
        id="ref-bool-labels",
    ),
    pytest.param(
        R(lambda: ref_relabel(np.resize([0.0, 0.5, 1.0], 60), categorical=False)),
        id="ref-float-labels",
    ),
    pytest.param(
        R(
            lambda: ref_relabel(np.resize(np.array([1, "T cell", 2.5], dtype=object), 60), False),
            raises=ValueError,
            match=("mix types (float, int, str: e.g. 1, 'T cell', 2.5)", ".astype(str)"),
        ),
        id="ref-labels-mixed-types",
    ),
    pytest.param(
        R(
            ref,
            kwargs={"min_cells_per_type": 0},
            raises=ValueError,
            match=("min_cells_per_type must be at least 1",),
        ),
        id="ref-min-cells-invalid",
    ),
    # --- bulk --------------------------------------------------------------------
    pytest.param(
        B(bulk, kwargs={"layer": "tpm"}, raises=KeyError, match=("Layer 'tpm' not found",)),
        id="bulk-layer-missing",
    ),
    pytest.param(
        B(lambda: bulk()[:0].copy(), raises=ValueError, match=("bulk is empty: 0 samples",)),
        id="bulk-empty",
    ),
    pytest.param(
        B(lambda: bulk(np.full((3, 40), "1")), raises=ValueError, match=("numeric",)),
        id="bulk-non-numeric",
    ),
    pytest.param(
        B(
            lambda: with_value(bulk(), 1, 0, np.nan),
            raises=ValueError,
            match=("1 NaN", "'sample1'"),
        ),
        id="bulk-nan",
    ),
    pytest.param(
        B(
            lambda: with_value(bulk(), 2, 0, -np.inf),
            raises=ValueError,
            match=("1 infinite", "'sample2'"),
        ),
        id="bulk-inf",
    ),
    pytest.param(
        B(
            lambda: with_value(bulk(), 3, 1, -5.0),
            raises=ValueError,
            match=("1 negative value ", "'sample3'", "linear scale"),
        ),
        id="bulk-negative",
    ),
    pytest.param(
        B(
            lambda: bulk(np.random.default_rng(0).standard_normal((6, 40))),
            raises=ValueError,
            match=("looks scaled or z-scored",),
        ),
        id="bulk-zscored",
    ),
    pytest.param(
        B(
            lambda: bulk(np.log2(bulk().X + 1)),
            raises=ValueError,
            match=(
                "looks log-transformed; pass counts or TPM on the linear scale "
                "(np.expm1 / 2**x - 1)",
            ),
        ),
        id="bulk-log",
    ),
    pytest.param(
        B(
            lambda: bulk(with_value(bulk(np.log2(bulk_relative(1e6).X + 1)), 0, 5, -3.3).X),
            raises=ValueError,
            match=("1 negative value", "log-transformed without a pseudocount"),
        ),
        id="bulk-log-no-pseudocount",
    ),
    pytest.param(
        B(lambda: bulk_dup("var"), raises=ValueError, match=("duplicate gene names",)),
        id="bulk-duplicate-genes",
    ),
    pytest.param(
        B(
            lambda: bulk_dup("obs"),
            raises=ValueError,
            match=("duplicate sample names", "'sample0'", "obs_names_make_unique"),
        ),
        id="bulk-duplicate-samples",
    ),
    pytest.param(
        B(bulk_zero_sample, raises=ValueError, match=("1 all-zero sample", "'sample2'")),
        id="bulk-all-zero-sample",
    ),
    pytest.param(
        B(
            lambda: bulk(n_obs=1),
            warns=UserWarning,
            match=("single sample", "'sample0'"),
            returns="counts",
        ),
        id="bulk-one-sample",
    ),
    pytest.param(
        B(lambda: bulk(n_obs=1), kwargs={"warn_single": False}, returns="counts"),
        id="bulk-one-sample-predict",
    ),
    pytest.param(B(bulk, returns="counts"), id="bulk-counts"),
    pytest.param(B(lambda: bulk_relative(1e6), returns="relative"), id="bulk-tpm"),
    pytest.param(B(lambda: bulk_relative(1.0), returns="relative"), id="bulk-fractions"),
    pytest.param(
        B(
            lambda: bulk(bulk_relative(1e6).X * np.array([[1.0], [2], [3], [4]])),
            returns="relative",
        ),
        id="bulk-fpkm-unequal-totals",
    ),
    pytest.param(
        B(lambda: bulk(sparse.csr_matrix(bulk().X)), returns="counts"), id="bulk-csr-float32"
    ),
    pytest.param(B(lambda: bulk(bulk().X.astype(np.int32)), returns="counts"), id="bulk-int32"),
    pytest.param(
        B(lambda: bulk(bulk_relative(1e6).X.astype(np.float64)), returns="relative"),
        id="bulk-dense-float64",
    ),
    pytest.param(
        Case("bulk", lambda p: backed(p, bulk()), raises=ValueError, match=("is backed",)),
        id="bulk-backed",
    ),
    pytest.param(B(lambda: bulk()[1:3], returns="counts"), id="bulk-view"),
    pytest.param(
        B(
            lambda: bulk(bulk().X * 1e-4 * np.array([[1.0], [2], [3], [4]])),
            raises=ValueError,
            match=("looks log-transformed", "linear values at a small scale", "by 1e6"),
        ),
        id="bulk-small-linear-scale",
    ),
    # --- shared genes ------------------------------------------------------------
    pytest.param(
        G(
            genes(10) + genes(300, "OTHER{}"),
            SYMBOLS,
            raises=ValueError,
            match=(
                "Only 10 of the model's 200 genes (5%)",
                "'GENE10'",
                "'OTHER0'",
                "select the model's genes among the shared ones",
            ),
        ),
        id="genes-too-few",
    ),
    pytest.param(
        G(
            SYMBOLS,
            ENSEMBL,
            raises=ValueError,
            match=(
                "Only 0 of the model's 200 genes",
                "'ENSG00000000000'",
                "'GENE0'",
                "Reference genes look like Ensembl IDs, bulk genes look like upper-case "
                "gene symbols",
            ),
        ),
        id="genes-ensembl-vs-symbols",
    ),
    pytest.param(
        G(
            [f"{g}.7" for g in ENSEMBL],
            ENSEMBL,
            raises=ValueError,
            match=(
                "Ensembl IDs with version suffixes",
                "200 genes match once the Ensembl version suffix",
            ),
        ),
        id="genes-ensembl-version",
    ),
    pytest.param(
        G(
            genes(200, "Gene{}"),
            SYMBOLS,
            raises=ValueError,
            match=(
                "capitalised gene symbols (mouse-style)",
                "200 genes match when case is ignored",
            ),
        ),
        id="genes-case-mismatch",
    ),
    pytest.param(
        Case(
            "genes",
            lambda _: (genes(8, "sample{}"), SYMBOLS),
            raises=ValueError,
            kwargs={"bulk_obs_names": SYMBOLS},
            match=("looks transposed", "bulk.T"),
        ),
        id="genes-transposed-bulk",
    ),
    pytest.param(
        G(
            SYMBOLS[:150],
            SYMBOLS,
            warns=UserWarning,
            match=(
                "50 of the model's 200 genes are missing from the bulk",
                "'GENE150'",
                "only the 150 shared genes",
            ),
            returns=SYMBOLS[:150],
        ),
        id="genes-some-missing",
    ),
    pytest.param(
        G(SYMBOLS[:150], SYMBOLS, kwargs={"warn_missing": False}, returns=SYMBOLS[:150]),
        id="genes-some-missing-silent",
    ),
    pytest.param(
        G(SYMBOLS[::-1] + genes(50, "X{}"), SYMBOLS, returns=SYMBOLS), id="genes-all-shared"
    ),
    pytest.param(G(SYMBOLS, SYMBOLS[:50], returns=SYMBOLS[:50]), id="genes-small-model"),
]


# ------------------------------------------------------------------------- helpers


def _file_digest(adata: ad.AnnData) -> str:
    return hashlib.sha256(Path(adata.filename).read_bytes()).hexdigest()


def _assert_matrix_equal(a: Any, b: Any) -> None:
    assert sparse.issparse(a) == sparse.issparse(b)
    assert a.dtype == b.dtype
    assert a.shape == b.shape
    if sparse.issparse(a):
        assert a.format == b.format
        for attr in ("data", "indices", "indptr"):
            assert np.array_equal(getattr(a, attr), getattr(b, attr), equal_nan=True)
    elif a.dtype.kind in "fc":
        assert np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
    else:
        assert np.array_equal(np.asarray(a), np.asarray(b))


def assert_adata_unchanged(after: ad.AnnData, before: ad.AnnData) -> None:
    """Compare X, layers, obs, var and the key sets of uns/obsm/varm/obsp."""
    pd.testing.assert_index_equal(after.obs_names, before.obs_names)
    pd.testing.assert_index_equal(after.var_names, before.var_names)
    pd.testing.assert_frame_equal(after.obs, before.obs)
    pd.testing.assert_frame_equal(after.var, before.var)
    if before.X is None:
        assert after.X is None
    else:
        _assert_matrix_equal(after.X, before.X)
    assert list(after.layers.keys()) == list(before.layers.keys())
    for key in before.layers:
        _assert_matrix_equal(after.layers[key], before.layers[key])
    for attr in ("uns", "obsm", "varm", "obsp", "varp"):
        assert list(getattr(after, attr).keys()) == list(getattr(before, attr).keys()), attr


def _snapshot(obj: Any) -> Any:
    if isinstance(obj, ad.AnnData):
        if obj.isbacked:
            return (_file_digest(obj), obj.obs.copy(), obj.var.copy())
        return (obj.copy(), obj.is_view)
    return [list(x) if x is not None else None for x in obj]


def _assert_unchanged(obj: Any, snap: Any) -> None:
    if isinstance(obj, ad.AnnData):
        if obj.isbacked:
            assert _file_digest(obj) == snap[0]
            pd.testing.assert_frame_equal(obj.obs, snap[1])
            pd.testing.assert_frame_equal(obj.var, snap[2])
        else:
            assert obj.is_view == snap[1], "a view was turned into an actual AnnData"
            assert_adata_unchanged(obj, snap[0])
    else:
        assert [list(x) for x in obj] == snap


def _run(case: Case, obj: Any) -> Any:
    if case.call == "reference":
        kwargs = {"layer": None, "labels_key": "cell_type", **case.kwargs}
        return check_reference(obj, **kwargs)
    if case.call == "bulk":
        return check_bulk(obj, **case.kwargs)
    return check_shared_genes(*obj, **case.kwargs)


# ------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("case", CASES)
def test_input_case(case: Case, tmp_path: Path) -> None:
    """Every catalogued case: the documented outcome, and the inputs left unchanged."""
    obj = case.build(tmp_path)
    snap = _snapshot(obj)
    try:
        if case.raises is not None:
            with pytest.raises(case.raises) as info:
                _run(case, obj)
            message = str(info.value)
        elif case.warns is not None:
            with pytest.warns(case.warns) as record:
                result = _run(case, obj)
            message = " | ".join(str(w.message) for w in record)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # an accepted input warns about nothing
                result = _run(case, obj)
            message = ""
        for fragment in case.match:
            assert fragment in message, f"{fragment!r} not in {message!r}"
        if case.raises is None:
            if case.call == "genes":
                assert list(result) == list(case.returns)
            else:
                assert result == case.returns
        _assert_unchanged(obj, snap)
    finally:
        if isinstance(obj, ad.AnnData) and obj.isbacked:
            obj.file.close()


def test_missing_key_error_is_both_key_and_value_error() -> None:
    with pytest.raises(ValueError, match="available columns") as info:
        check_reference(ref(), layer=None, labels_key="nope")
    assert isinstance(info.value, KeyError)
    assert isinstance(info.value, InputKeyError)
    assert not str(info.value).startswith("'"), "the message prints without KeyError quotes"


def test_docs_catalogue_lists_every_case() -> None:
    """docs/input-checks.md and this file catalogue the same cases (by id)."""
    documented = set(re.findall(r"^\|\s*`([a-z0-9-]+)`\s*\|", DOCS.read_text(), re.MULTILINE))
    tested = {p.id for p in CASES}
    assert tested - documented == set(), "cases tested but not documented"
    assert documented - tested == set(), "cases documented but not tested"


def _no_dense(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("a sparse matrix was densified")


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_matrices_are_never_densified(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    a = ref(sparse.csr_matrix(_counts()).asformat(fmt))
    b = bulk(sparse.csr_matrix(bulk().X).asformat(fmt))
    for cls in (sparse.csr_matrix, sparse.csc_matrix, sparse.coo_matrix):
        monkeypatch.setattr(cls, "toarray", _no_dense)
        monkeypatch.setattr(cls, "todense", _no_dense)
    check_reference(a, layer=None, labels_key="cell_type")
    assert check_bulk(b) == "counts"


@pytest.mark.parametrize("fmt", ["dense", "csr", "csc"])
@pytest.mark.parametrize("chunk", [1, 7, 1 << 22])
def test_blockwise_scan_matches_numpy(fmt: str, chunk: int, monkeypatch) -> None:
    """The blockwise scan finds the same values and rows whatever the block size."""
    monkeypatch.setattr(_scan, "_CHUNK", chunk)
    rng = np.random.default_rng(3)
    X = rng.poisson(0.7, size=(13, 9)).astype(np.float64)
    X[2, 4], X[11, 0], X[5, 8], X[7, 7] = np.nan, np.inf, -1.0, 0.5
    M = X if fmt == "dense" else sparse.csr_matrix(X).asformat(fmt)
    stats = _scan._scan(M)
    finite = X[np.isfinite(X)]
    assert (stats.n_nan, stats.n_inf, stats.n_neg) == (1, 1, 1)
    assert stats.rows("bad").tolist() == [2, 11]
    assert stats.rows("neg").tolist() == [5]
    assert stats.n_nonint == 1
    assert stats.vmax == finite.max()
    assert stats.total == pytest.approx(finite.sum())
