"""The model's input checks, end to end, and the user's AnnData objects left unchanged.

``setup_anndata``, ``train(bulk=...)`` and ``get_proportions`` must leave the user's AnnData
objects as they were, except for the documented keys:

- the reference after ``setup_anndata``: ``uns["_scvi_uuid"]``, ``uns["_scvi_manager_uuid"]``
  and the ``obs`` columns ``_scvi_labels`` / ``_scvi_batch`` (scvi-tools' registry);
- the bulk after ``get_proportions``: ``obsm[key_added]`` and ``uns[key_added + "_qc"]``
  (each sample's quality figures; nothing with ``key_added=None``).

The per-case behaviour of the checks themselves is tested in ``tests/pp/test_validate.py``;
here each model entry point is shown to call them.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scvi
from scipy import sparse

import hpvade

if TYPE_CHECKING:
    from collections.abc import Callable

SCVI_UNS = {"_scvi_uuid", "_scvi_manager_uuid"}
SCVI_OBS = {"_scvi_labels", "_scvi_batch"}
TINY_MODEL = {"n_hidden": 16, "n_latent": 4, "deconv_hidden": 16, "deconv_layers": 1}
TINY_TRAIN = {
    "max_epochs": 1,
    "n_pseudobulk": 8,
    "cells_per_pseudobulk": 20,
    "steps_per_epoch": 2,
    "batch_size": 32,
    "accelerator": "cpu",
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "logger": False,
}


def tiny() -> tuple[ad.AnnData, ad.AnnData]:
    return hpvade.data.synthetic(
        n_types=3, n_cells_per_type=30, n_genes=120, n_markers=8, n_bulk=4, seed=0
    )


# ----------------------------------------------------------------------- comparison


def _matrix_equal(a: Any, b: Any) -> bool:
    if sparse.issparse(a) != sparse.issparse(b) or a.dtype != b.dtype or a.shape != b.shape:
        return False
    if sparse.issparse(a):
        return a.format == b.format and all(
            np.array_equal(getattr(a, k), getattr(b, k)) for k in ("data", "indices", "indptr")
        )
    return np.array_equal(np.asarray(a), np.asarray(b))


def assert_unchanged(
    after: ad.AnnData,
    before: ad.AnnData,
    *,
    new_uns: set[str] = frozenset(),
    new_obs: set[str] = frozenset(),
    new_obsm: set[str] = frozenset(),
) -> None:
    """X, layers, obs, var (and the key sets of uns/obsm/varm) unchanged but for new keys."""
    assert _matrix_equal(after.X, before.X), "X changed"
    assert list(after.layers.keys()) == list(before.layers.keys())
    for key in before.layers:
        assert _matrix_equal(after.layers[key], before.layers[key]), f"layer {key!r} changed"
    pd.testing.assert_index_equal(after.obs_names, before.obs_names)
    pd.testing.assert_index_equal(after.var_names, before.var_names)
    obs_added = set(after.obs.columns) - set(before.obs.columns)
    assert obs_added <= set(new_obs), f"undocumented obs columns {obs_added - set(new_obs)}"
    pd.testing.assert_frame_equal(after.obs[list(before.obs.columns)], before.obs)
    pd.testing.assert_frame_equal(after.var, before.var)
    assert set(after.uns) - set(before.uns) <= set(new_uns), set(after.uns)
    assert set(after.obsm) - set(before.obsm) <= set(new_obsm), set(after.obsm)
    assert set(before.uns) <= set(after.uns)
    assert set(before.obsm) <= set(after.obsm)
    for key in before.obsm:
        a, b = after.obsm[key], before.obsm[key]
        if isinstance(b, pd.DataFrame):
            pd.testing.assert_frame_equal(a, b)
        else:
            assert _matrix_equal(a, b), f"obsm {key!r} changed"
    assert set(after.varm) == set(before.varm)


# ----------------------------------------------------------------------- setup_anndata


def _ref_dense64(ref: ad.AnnData) -> ad.AnnData:
    ref.X = ref.X.toarray().astype(np.float64)
    return ref


def _ref_counts_layer(ref: ad.AnnData) -> ad.AnnData:
    ref.layers["counts"] = ref.X.copy()
    ref.X = ref.X.log1p()  # what users keep in X after sc.pp.log1p
    return ref


def _ref_object_labels(ref: ad.AnnData) -> ad.AnnData:
    ref.obs["cell_type"] = ref.obs["cell_type"].astype(str).astype(object)
    ref.obs["donor"] = np.resize(["d1", "d2"], ref.n_obs)
    return ref


SETUPS = [
    pytest.param(lambda r: r, {}, id="csr-float32"),
    pytest.param(_ref_dense64, {}, id="dense-float64"),
    pytest.param(_ref_counts_layer, {"layer": "counts"}, id="counts-layer"),
    pytest.param(_ref_object_labels, {}, id="object-labels"),
    pytest.param(
        _ref_object_labels,
        {"batch_key": "donor"},
        id="batch-key",
    ),
]


@pytest.mark.parametrize(("prepare", "kwargs"), SETUPS)
def test_setup_and_train_leave_reference_unchanged(
    prepare: Callable[[ad.AnnData], ad.AnnData], kwargs: dict
) -> None:
    ref, bulk = tiny()
    ref = prepare(ref)
    ref_before, bulk_before = ref.copy(), bulk.copy()
    hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type", **kwargs)
    assert_unchanged(ref, ref_before, new_uns=SCVI_UNS, new_obs=SCVI_OBS)
    model = hpvade.HPVADE(ref, **TINY_MODEL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.train(bulk=bulk, **TINY_TRAIN)
    assert_unchanged(ref, ref_before, new_uns=SCVI_UNS, new_obs=SCVI_OBS)
    assert_unchanged(bulk, bulk_before)


# ----------------------------------------------------------------------- a trained model


@pytest.fixture(scope="module")
def trained() -> tuple[hpvade.HPVADE, ad.AnnData, ad.AnnData]:
    old = scvi.settings.seed
    scvi.settings.seed = 0
    ref, bulk = tiny()
    hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
    model = hpvade.HPVADE(ref, **TINY_MODEL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.train(bulk=bulk, **TINY_TRAIN)
    scvi.settings.seed = old
    return model, ref, bulk


def _bulk_tpm_sparse(bulk: ad.AnnData) -> ad.AnnData:
    X = bulk.X / bulk.X.sum(axis=1, keepdims=True) * 1e6
    return ad.AnnData(sparse.csr_matrix(X), obs=bulk.obs.copy(), var=bulk.var.copy())


def _bulk_shuffled_extra_genes(bulk: ad.AnnData) -> ad.AnnData:
    rng = np.random.default_rng(0)
    extra = ad.AnnData(
        np.ones((bulk.n_obs, 5), dtype=np.float32),
        obs=pd.DataFrame(index=bulk.obs_names),
        var=pd.DataFrame(index=[f"extra_{i}" for i in range(5)]),
    )
    both = ad.concat([bulk, extra], axis=1, merge="first")
    return both[:, rng.permutation(both.n_vars)].copy()


def _bulk_layer(bulk: ad.AnnData) -> ad.AnnData:
    bulk.layers["tpm"] = bulk.X / bulk.X.sum(axis=1, keepdims=True) * 1e6
    bulk.X = np.log2(bulk.layers["tpm"] + 1)
    return bulk


PREDICTIONS = [
    pytest.param(lambda b: b, {}, "hpvade_proportions", id="counts-default-key"),
    pytest.param(lambda b: b, {"key_added": None}, None, id="key-added-none"),
    pytest.param(lambda b: b, {"key_added": "props", "kind": "mrna"}, "props", id="custom-key"),
    pytest.param(_bulk_tpm_sparse, {}, "hpvade_proportions", id="tpm-sparse"),
    pytest.param(_bulk_shuffled_extra_genes, {}, "hpvade_proportions", id="genes-by-name"),
    pytest.param(_bulk_layer, {"layer": "tpm"}, "hpvade_proportions", id="tpm-layer"),
    pytest.param(lambda b: b[:1].copy(), {}, "hpvade_proportions", id="one-sample"),
]


@pytest.mark.parametrize(("prepare", "kwargs", "key"), PREDICTIONS)
def test_get_proportions_writes_only_key_added(trained, prepare, kwargs, key) -> None:
    model, _, bulk0 = trained
    bulk = prepare(bulk0.copy())
    before = bulk.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # valid input: no warning (one sample included)
        props = model.get_proportions(bulk, **kwargs)
    # the proportions and, beside them, each sample's quality figures (key + "_qc")
    written = set() if key is None else {key}
    assert_unchanged(bulk, before, new_obsm=written, new_uns={k + "_qc" for k in written})
    assert list(props.index) == list(bulk.obs_names)
    np.testing.assert_allclose(props.sum(axis=1), 1.0, rtol=1e-6)
    if key is not None:
        pd.testing.assert_frame_equal(bulk.obsm[key], props)


def test_get_proportions_of_a_view_leaves_the_parent_unchanged(trained) -> None:
    """Writing obsm on a view makes anndata copy the view (scverse convention)."""
    model, _, bulk0 = trained
    bulk = bulk0.copy()
    before = bulk.copy()
    view = bulk[1:3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anndata's ImplicitModificationWarning
        props = model.get_proportions(view)
    assert_unchanged(bulk, before)
    assert list(props.index) == list(bulk.obs_names[1:3])


# ----------------------------------------------------------------------- errors via the model


def _log_ref(ref: ad.AnnData, bulk: ad.AnnData):
    ref.X = ref.X.log1p()
    return ref, bulk


def _ensembl_bulk(ref: ad.AnnData, bulk: ad.AnnData):
    bulk.var_names = [f"ENSG{i:011d}" for i in range(bulk.n_vars)]
    return ref, bulk


def _log_bulk(ref: ad.AnnData, bulk: ad.AnnData):
    bulk.X = np.log1p(bulk.X)
    return ref, bulk


def _one_sample(ref: ad.AnnData, bulk: ad.AnnData):
    return ref, bulk[:1].copy()


def _few_cells(ref: ad.AnnData, bulk: ad.AnnData):
    labels = ref.obs["cell_type"].astype(str).to_numpy()
    labels[:3] = "rare"
    ref.obs["cell_type"] = pd.Categorical(labels)
    return ref, bulk


SETUP_ERRORS = [
    pytest.param(
        _log_ref, {}, ValueError, "looks log-transformed: pass raw counts", id="log-reference"
    ),
    pytest.param(
        lambda r, b: (r, b), {"labels_key": "celltype"}, KeyError, "'celltype'", id="no-labels"
    ),
    pytest.param(
        lambda r, b: (r, b), {"layer": "counts"}, KeyError, "Layer 'counts'", id="no-layer"
    ),
    pytest.param(_few_cells, {}, ValueError, "'rare' (3)", id="few-cells"),
    pytest.param(
        lambda r, b: (r[:60], b), {}, ValueError, "is a view of another AnnData", id="view"
    ),
]


@pytest.mark.parametrize(("prepare", "kwargs", "error", "fragment"), SETUP_ERRORS)
def test_setup_anndata_checks_the_reference(prepare, kwargs, error, fragment) -> None:
    ref, _ = prepare(*tiny())
    was_view = ref.is_view
    before = ref.copy()
    with pytest.raises(error) as info:
        hpvade.HPVADE.setup_anndata(ref, **{"labels_key": "cell_type", **kwargs})
    assert fragment in str(info.value)
    assert_unchanged(ref, before)  # nothing registered on failure
    assert ref.is_view == was_view


def test_setup_anndata_min_cells_per_type_is_adjustable() -> None:
    ref, _ = _few_cells(*tiny())
    hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type", min_cells_per_type=3)
    assert "rare" in hpvade.HPVADE(ref, **TINY_MODEL).cell_types_


BULK_ERRORS = [
    pytest.param(
        _ensembl_bulk, ValueError, "bulk genes look like Ensembl IDs", id="ensembl-vs-symbols"
    ),
    pytest.param(_log_bulk, ValueError, "looks log-transformed; pass counts", id="log-bulk"),
]


@pytest.mark.parametrize(("prepare", "error", "fragment"), BULK_ERRORS)
@pytest.mark.parametrize("entry", ["train", "get_proportions"])
def test_train_and_get_proportions_check_the_bulk(
    trained, prepare, error, fragment, entry
) -> None:
    model, ref, _ = trained
    _, bulk = prepare(*tiny())
    before = bulk.copy()
    if entry == "train":  # an untrained model on the same reference
        model = hpvade.HPVADE(ref, **TINY_MODEL)
        call = lambda: model.train(bulk=bulk, **TINY_TRAIN)  # noqa: E731
    else:
        call = lambda: model.get_proportions(bulk)  # noqa: E731
    with pytest.raises(error) as info:
        call()
    assert fragment in str(info.value)
    assert_unchanged(bulk, before)


def test_training_on_one_sample_warns(trained) -> None:
    _, ref, _ = trained
    _, bulk = _one_sample(*tiny())
    model = hpvade.HPVADE(ref, **TINY_MODEL)
    with pytest.warns(UserWarning, match="single sample"):
        model.train(bulk=bulk, **TINY_TRAIN)


def test_get_proportions_of_a_transposed_bulk(trained) -> None:
    model, _, bulk0 = trained
    bulk = bulk0.T.copy()
    with pytest.raises(ValueError, match="looks transposed"):
        model.get_proportions(bulk)


# ----------------------------------------------------------------------- found by hypothesis


def test_integer_labels_are_named_by_their_string() -> None:
    """Cluster numbers as labels crashed HPVADE(ref) with a TypeError from str.join."""
    ref, bulk = tiny()
    ref.obs["cluster"] = ref.obs["cell_type"].cat.codes.to_numpy().astype(np.int64) * 7
    hpvade.HPVADE.setup_anndata(ref, labels_key="cluster")
    model = hpvade.HPVADE(ref, **TINY_MODEL)
    assert model.cell_types_ == ["0", "7", "14"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.train(**TINY_TRAIN)
    props = model.get_proportions(bulk, method="head", key_added=None)
    assert list(props.columns) == ["0", "7", "14"]
    np.testing.assert_allclose(props.sum(axis=1), 1.0, rtol=1e-6)


def test_degenerate_bulk_samples_are_named(trained) -> None:
    """A single-gene sample and a sample of noise are named; the others are not."""
    model, _, bulk0 = trained
    X = bulk0.X.astype(np.float64).copy()
    X[0] = 0.0
    X[0, 11] = 5e6  # all the signal in one gene
    X[1] = np.rint(np.random.default_rng(7).lognormal(3.0, 2.0, size=X.shape[1]))  # noise
    bulk = ad.AnnData(X, obs=pd.DataFrame(index=bulk0.obs_names), var=bulk0.var[[]].copy())
    with pytest.warns(UserWarning, match="Degenerate bulk samples") as record:
        props = model.get_proportions(bulk, method="head")
    message = " | ".join(str(w.message) for w in record if "Degenerate" in str(w.message))
    names = list(bulk.obs_names)
    assert (
        f"1 sample rests on fewer than 10 informative genes (effective_genes): {names[0]!r} (1)"
        in message
    )
    # the single-gene sample is not explained either (a correlation needs 3 genes)
    explained = message.split("are explained below 10% by the signature (explained): ")[1]
    assert explained.startswith(f"{names[0]!r} (0), {names[1]!r} (")
    assert all(repr(n) not in message for n in names[2:])
    qc = bulk.uns["hpvade_proportions_qc"]
    assert qc["degenerate"].tolist() == [True, True] + [False] * (len(names) - 2)
    assert qc["effective_genes"].iloc[0] == pytest.approx(1.0)
    assert qc["explained"].iloc[1] < 0.1 < qc["explained"].iloc[2:].min()
    np.testing.assert_allclose(props.sum(axis=1), 1.0, rtol=1e-6)  # fractions still returned
