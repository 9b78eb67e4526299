"""Property-based tests of the public API (hypothesis): every legitimate input works.

Hypothesis generates references and bulks over what users vary (matrix dtype and format,
views, label types, gene and sample names, the scale and kind of bulk values, one or many
samples, orientation, gene order, all-zero genes, a handful of informative genes) and runs
them through ``HPVADE.setup_anndata``, ``HPVADE(...)``, ``train`` (one tiny epoch),
``get_proportions``, ``save``/``load``, ``hpvade.tl.deconvolve`` and ``setup_mudata``.

The property: a legitimate input gives finite proportions on the simplex, indexed like the
bulk, with the cell types as string columns; an input hpvade cannot use gives a
``ValueError``/``KeyError`` raised by hpvade itself (never from inside pandas, numpy or
torch) whose message says what to change; either way the user's objects are unchanged
apart from the documented keys. Each generated input knows which it is (``expect``), so a
legitimate input that fails, or a bad one that passes, fails the test.

The examples run with a fixed seed (``derandomize=True``) and a small budget in the default
run; the ``_long`` variants (marked ``slow``) run many more. Examples that hypothesis found
are regression cases in ``tests/pp/test_validate.py`` and ``tests/model/test_input_checks.py``.
"""

from __future__ import annotations

import tempfile
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anndata as ad
import mudata
import numpy as np
import pandas as pd
import pytest
import scvi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse

import hpvade
from hpvade.model._quality import QUALITY_SUFFIX

from .model.test_input_checks import SCVI_OBS, SCVI_UNS, TINY_MODEL, TINY_TRAIN, assert_unchanged

PACKAGE = Path(hpvade.__file__).resolve().parent
KEY = "hpvade_proportions"
QC_KEY = KEY + QUALITY_SUFFIX
N_TYPES, N_CELLS, N_GENES = 3, 30, 120

FAST = settings(
    max_examples=12,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LONG = settings(FAST, max_examples=120)


def _base() -> tuple[ad.AnnData, ad.AnnData]:
    return hpvade.data.synthetic(
        n_types=N_TYPES,
        n_cells_per_type=N_CELLS,
        n_genes=N_GENES,
        n_markers=8,
        n_bulk=6,
        seed=0,
    )


BASE_REF, BASE_BULK = _base()
CODES = BASE_REF.obs["cell_type"].cat.codes.to_numpy()


# ------------------------------------------------------------------------- outcomes


def assert_hpvade_error(err: BaseException, fragment: str | None) -> None:
    """``err`` is a ValueError/KeyError raised by hpvade's own code, with a useful message."""
    assert isinstance(err, (ValueError, KeyError)), f"{type(err).__name__}: {err}"
    frames = traceback.extract_tb(err.__traceback__)
    origin = Path(frames[-1].filename).resolve()
    assert PACKAGE in origin.parents, (
        f"{type(err).__name__} raised inside {origin} (not hpvade): {err}"
    )
    message = str(err)
    assert len(message) > 40, message  # a sentence, not a bare key
    if fragment is not None:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def assert_proportions(props: pd.DataFrame, bulk: ad.AnnData, types: list[str]) -> None:
    """Finite fractions on the simplex, indexed like ``bulk``, one string column per type."""
    assert list(props.index) == list(bulk.obs_names)
    assert list(props.columns) == types
    assert all(isinstance(c, str) for c in props.columns)
    values = props.to_numpy(dtype=np.float64)
    assert np.isfinite(values).all()
    assert (values >= 0).all()
    np.testing.assert_allclose(values.sum(axis=1), 1.0, atol=1e-6)


def _degenerate_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if "Degenerate bulk samples" in str(w.message)]


# ------------------------------------------------------------------------- references


@dataclass
class RefSpec:
    dtype: str
    fmt: str
    labels: str
    genes: str
    view: bool

    @property
    def expect(self) -> str | None:
        """The message fragment of the error this reference must raise; ``None``: it works."""
        # in the order hpvade checks them
        if self.view:
            return "is a view of another AnnData"
        if self.genes == "duplicates":
            return "duplicate gene names"
        if self.labels == "mixed":
            return "mix types"
        if self.labels == "unused-category":
            return "categories with no cells"
        return None


LABELS = {
    "str": lambda c: np.array(["B cell", "T cell", "NK"])[c],
    "int": lambda c: c.astype(np.int64) * 7,
    "uint8": lambda c: c.astype(np.uint8),
    "bool": lambda c: c > 0,
    "float": lambda c: c.astype(np.float64) / 2,
    "int-categorical": lambda c: pd.Categorical(c + 10),
    "unordered-categories": lambda c: pd.Categorical(
        np.array(["b", "a", "c"])[c], categories=["c", "b", "a"]
    ),
    "ordered-categories": lambda c: pd.Categorical(
        np.array(["lo", "mid", "hi"])[c], categories=["hi", "lo", "mid"], ordered=True
    ),
    "unused-category": lambda c: pd.Categorical(
        np.array(["b", "a", "c"])[c], categories=["a", "b", "c", "platelet"]
    ),
    "object-ints": lambda c: np.array([int(i) for i in c], dtype=object),
    "mixed": lambda c: np.array([[1, "T cell", 2.5][i] for i in c], dtype=object),
    "string-dtype": lambda c: pd.array(np.array(["x", "y", "z"])[c], dtype="string"),
}


def gene_names(style: str, n: int) -> list[str]:
    if style == "numeric":
        return [str(i) for i in range(n)]
    if style == "whitespace":
        return [f" gene {i}\t" for i in range(n)]
    if style == "ensembl-version":
        return [f"ENSG{i:011d}.{i % 7 + 1}" for i in range(n)]
    names = [f"GENE{i}" for i in range(n)]
    if style == "duplicates":
        names[5] = names[4]
    return names


def cast(X: np.ndarray, dtype: str, fmt: str) -> Any:
    X = np.asarray(X).astype(dtype)
    if dtype == "float16":  # scipy.sparse has no float16: users hold it dense
        return X
    if fmt == "csr":
        return sparse.csr_matrix(X)
    if fmt == "csc":
        return sparse.csc_matrix(X)
    return X


def make_reference(spec: RefSpec) -> ad.AnnData:
    ref = ad.AnnData(
        cast(BASE_REF.X.toarray(), spec.dtype, spec.fmt),
        obs=pd.DataFrame({"label": LABELS[spec.labels](CODES)}, index=BASE_REF.obs_names),
        var=pd.DataFrame(index=gene_names(spec.genes, BASE_REF.n_vars)),
    )
    return ref[: ref.n_obs - 3] if spec.view else ref


def expected_types(ref: ad.AnnData) -> list[str]:
    """The cell types as the model must show them: the labels' categories, as strings."""
    return [str(c) for c in ref.obs["label"].astype("category").cat.categories]


def matching_bulk(ref: ad.AnnData) -> ad.AnnData:
    return ad.AnnData(
        BASE_BULK.X.copy(), obs=pd.DataFrame(index=BASE_BULK.obs_names), var=ref.var.copy()
    )


ref_specs = st.builds(
    RefSpec,
    dtype=st.sampled_from(["int32", "int64", "float16", "float32", "float64"]),
    fmt=st.sampled_from(["dense", "csr", "csc"]),
    labels=st.sampled_from(sorted(LABELS)),
    genes=st.sampled_from(["symbols", "numeric", "whitespace", "ensembl-version", "duplicates"]),
    view=st.sampled_from([False, False, False, True]),
)


def quiet_train(model: hpvade.HPVADE, **kwargs: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.train(**TINY_TRAIN, **kwargs)


def reference_property(spec: RefSpec) -> None:
    ref = make_reference(spec)
    before = ref.copy()
    error = None
    try:
        hpvade.HPVADE.setup_anndata(ref, labels_key="label")
    except (ValueError, KeyError, TypeError) as err:
        error = err
    if error is not None:
        assert spec.expect is not None, f"a legitimate reference failed: {error!r}"
        assert_hpvade_error(error, spec.expect)
        assert_unchanged(ref, before)
        return
    assert spec.expect is None, f"{spec} was accepted; expected {spec.expect!r}"
    assert_unchanged(ref, before, new_uns=SCVI_UNS, new_obs=SCVI_OBS)
    model = hpvade.HPVADE(ref, **TINY_MODEL)
    types = expected_types(before)
    assert model.cell_types_ == types
    quiet_train(model)
    bulk = matching_bulk(ref)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        props = model.get_proportions(bulk, method="head")
    assert_proportions(props, bulk, types)
    assert _degenerate_warnings(record) == []
    assert model.get_signature().columns.tolist() == types
    assert model.get_mrna_content().index.tolist() == types
    assert_unchanged(ref, before, new_uns=SCVI_UNS, new_obs=SCVI_OBS)


@settings(FAST, max_examples=25)
@given(spec=ref_specs)
def test_reference_inputs(spec: RefSpec) -> None:
    reference_property(spec)


@pytest.mark.slow
@LONG
@given(spec=ref_specs)
def test_reference_inputs_long(spec: RefSpec) -> None:
    reference_property(spec)


# ------------------------------------------------------------------------- bulks


@pytest.fixture(scope="module")
def model() -> hpvade.HPVADE:
    """A tiny model on the synthetic reference, trained one epoch (shared, read-only)."""
    old = scvi.settings.seed
    scvi.settings.seed = 0
    ref = BASE_REF.copy()
    hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
    m = hpvade.HPVADE(ref, **TINY_MODEL)
    quiet_train(m, bulk=BASE_BULK.copy())
    scvi.settings.seed = old
    return m


@dataclass
class BulkSpec:
    values: str  # counts | tpm | fractions | fpkm
    log10_scale: int
    dtype: str
    fmt: str
    n_samples: int
    order: str  # model | reversed | shuffled
    extra_genes: int
    zero_genes: int
    informative_genes: int  # 0: all; k: only k genes are non-zero
    sample_names: str  # plain | numeric | whitespace | duplicates
    transposed: bool
    view: bool
    method: str

    @property
    def integer(self) -> bool:
        return self.dtype.startswith("int")

    @property
    def n_obs(self) -> int:
        """Samples in the bulk passed (a view leaves one out)."""
        return self.n_samples - 1 if self.view and self.n_samples > 1 else self.n_samples

    @property
    def expect(self) -> str | None:
        if self.transposed:
            return "looks transposed"
        if self.sample_names == "duplicates" and self.n_obs > 1:
            return "duplicate sample names"
        return None

    @property
    def may_fail(self) -> str | None:
        """The error a legitimate bulk may get: data that float16 cannot hold are named
        (any hpvade error), and linear values with unequal totals and a maximum below 30
        (counts divided by 1e6) look log-transformed unless most of them round to 0."""
        if self.dtype == "float16":
            return ""
        if self.values in ("counts", "fpkm") and self.log10_scale <= -6 and not self.integer:
            return "If they are linear values at a small scale"
        return None


def make_bulk(spec: BulkSpec, genes: list[str]) -> ad.AnnData:
    rng = np.random.default_rng(spec.n_samples * 31 + spec.zero_genes)
    counts = BASE_BULK.X[np.arange(spec.n_samples) % BASE_BULK.n_obs].astype(np.float64)
    counts = counts[:, [BASE_BULK.var_names.get_loc(g) for g in genes]]
    if spec.zero_genes:
        counts[:, rng.choice(len(genes), spec.zero_genes, replace=False)] = 0
    if spec.informative_genes:
        keep = np.argsort(-counts.sum(axis=0))[: spec.informative_genes]
        mask = np.zeros(len(genes), dtype=bool)
        mask[keep] = True
        counts[:, ~mask] = 0
    if spec.extra_genes:  # genes the model does not have, measured like the others
        counts = np.hstack([counts, rng.poisson(50.0, size=(spec.n_samples, spec.extra_genes))])
    totals = counts.sum(axis=1, keepdims=True)
    if spec.values == "tpm":
        X = counts / totals * 1e6
    elif spec.values == "fractions":
        X = counts / totals
    elif spec.values == "fpkm":
        X = counts / totals * 1e6 * rng.uniform(0.5, 2.0, size=(spec.n_samples, 1))
    else:
        X = counts
    if spec.integer:  # integer matrices hold counts as they are, unscaled
        X = np.rint(counts)
    else:
        X = X * 10.0**spec.log10_scale
    names = list(genes) + [f"extra{i}" for i in range(spec.extra_genes)]
    order = np.arange(len(names))
    if spec.order == "reversed":
        order = order[::-1]
    elif spec.order == "shuffled":
        order = rng.permutation(len(names))
    X, names = X[:, order], [names[i] for i in order]
    samples = {
        "plain": [f"sample{i}" for i in range(spec.n_samples)],
        "numeric": [str(10 * i) for i in range(spec.n_samples)],
        "whitespace": [f" donor {i} " for i in range(spec.n_samples)],
        "duplicates": ["s"] * spec.n_samples,
    }[spec.sample_names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # float16 overflow is a case here
        bulk = ad.AnnData(
            cast(X, spec.dtype, spec.fmt),
            obs=pd.DataFrame(index=samples),
            var=pd.DataFrame(index=names),
        )
    if spec.transposed:
        bulk = bulk.T.copy()
    return bulk[: max(1, bulk.n_obs - 1)] if spec.view and bulk.n_obs > 1 else bulk


bulk_specs = st.builds(
    BulkSpec,
    values=st.sampled_from(["counts", "tpm", "fractions", "fpkm"]),
    log10_scale=st.sampled_from([-6, -3, 0, 0, 3, 25]),
    dtype=st.sampled_from(["int32", "int64", "float16", "float32", "float64"]),
    fmt=st.sampled_from(["dense", "csr", "csc"]),
    n_samples=st.sampled_from([1, 2, 5, 40]),
    order=st.sampled_from(["model", "reversed", "shuffled"]),
    extra_genes=st.sampled_from([0, 0, 7]),
    zero_genes=st.sampled_from([0, 0, 12]),
    informative_genes=st.sampled_from([0, 0, 0, 1, 3]),
    sample_names=st.sampled_from(["plain", "numeric", "whitespace", "duplicates"]),
    transposed=st.sampled_from([False, False, False, True]),
    view=st.booleans(),
    method=st.sampled_from(["head", "head", "head", "refine"]),
)


def bulk_property(model: hpvade.HPVADE, spec: BulkSpec) -> None:
    bulk = make_bulk(spec, model.genes_)
    view = bulk.is_view
    before = bulk.copy()
    error = None
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        try:
            props = model.get_proportions(bulk, method=spec.method)
        except (ValueError, KeyError, TypeError, FloatingPointError, RuntimeError) as err:
            error = err
    if error is not None:
        fragment = spec.expect if spec.expect is not None else spec.may_fail
        assert fragment is not None, f"a legitimate bulk failed: {error!r}"
        assert_hpvade_error(error, fragment or None)
        assert_unchanged(bulk, before)
        return
    assert spec.expect is None, f"{spec} was accepted; expected {spec.expect!r}"
    assert_proportions(props, before, model.cell_types_)
    if not view:  # writing obsm turns a view into a copy (anndata); the parent is untouched
        assert_unchanged(bulk, before, new_obsm={KEY}, new_uns={QC_KEY})
    pd.testing.assert_frame_equal(bulk.obsm[KEY], props)
    qc = bulk.uns[QC_KEY]
    assert list(qc.index) == list(before.obs_names)
    degenerate = _degenerate_warnings(record)
    if spec.informative_genes:  # the signal sits in 1 or 3 genes: every sample is named
        assert qc["degenerate"].all(), qc
        assert len(degenerate) == 1
        assert str(before.obs_names[0]) in degenerate[0]
    elif spec.dtype != "float16":
        assert not qc["degenerate"].any(), qc
        assert degenerate == []


@settings(FAST, max_examples=40)
@given(spec=bulk_specs)
def test_bulk_inputs(model: hpvade.HPVADE, spec: BulkSpec) -> None:
    bulk_property(model, spec)


@pytest.mark.slow
@LONG
@given(spec=bulk_specs)
def test_bulk_inputs_long(model: hpvade.HPVADE, spec: BulkSpec) -> None:
    bulk_property(model, spec)


# ------------------------------------------------------------------------- save/load, tl, MuData

legit_labels = st.sampled_from(
    ["str", "int", "bool", "float", "int-categorical", "unordered-categories", "object-ints"]
)


@settings(FAST, max_examples=3)
@given(labels=legit_labels)
def test_save_load_keeps_types_and_proportions(labels: str) -> None:
    ref = make_reference(RefSpec("float32", "csr", labels, "symbols", view=False))
    hpvade.HPVADE.setup_anndata(ref, labels_key="label")
    model = hpvade.HPVADE(ref, **TINY_MODEL)
    quiet_train(model)
    bulk = matching_bulk(ref)
    props = model.get_proportions(bulk, method="head", key_added=None)
    with tempfile.TemporaryDirectory() as tmp:
        model.save(tmp, overwrite=True)
        loaded = hpvade.HPVADE.load(tmp, adata=ref)
    again = loaded.get_proportions(bulk, method="head", key_added=None)
    assert loaded.cell_types_ == expected_types(ref)
    pd.testing.assert_frame_equal(again, props)


@settings(FAST, max_examples=2)
@given(labels=legit_labels, n_samples=st.sampled_from([1, 6]))
def test_tl_deconvolve(labels: str, n_samples: int) -> None:
    ref = make_reference(RefSpec("int64", "dense", labels, "symbols", view=False))
    bulk = matching_bulk(ref)[:n_samples].copy()
    ref_before, before = ref.copy(), bulk.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hpvade.tl.deconvolve(bulk, ref, labels_key="label", method="head", **TINY_TRAIN)
    assert_proportions(bulk.obsm[KEY], before, expected_types(ref))
    # uns["hpvade"]: the call's parameters, where tl.deconvolve records them
    assert_unchanged(bulk, before, new_obsm={KEY}, new_uns={QC_KEY, "hpvade"})
    assert_unchanged(ref, ref_before, new_uns=SCVI_UNS, new_obs=SCVI_OBS)
    assert not bulk.uns[QC_KEY]["degenerate"].any()


@settings(FAST, max_examples=3)
@given(labels=legit_labels)
def test_mudata_path(labels: str) -> None:
    ref = make_reference(RefSpec("float32", "csc", labels, "symbols", view=False))
    bulk = matching_bulk(ref)
    mdata = mudata.MuData({"rna": ref, "bulk": bulk})
    hpvade.HPVADE.setup_mudata(mdata, labels_key="label")
    model = hpvade.HPVADE(mdata, **TINY_MODEL)
    quiet_train(model)
    props = model.get_proportions(mdata, method="head")
    assert_proportions(props, mdata["bulk"], expected_types(ref))
    pd.testing.assert_frame_equal(mdata["bulk"].obsm[KEY], props)
