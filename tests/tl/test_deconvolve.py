from __future__ import annotations

import os
import random

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scvi
import torch

import hpvade

from ..conftest import TRAIN_KW


@pytest.fixture
def global_seed():
    """A known global scvi-tools seed for the test, and the session's back afterwards."""
    saved = scvi.settings._seed
    scvi.settings.seed = 123
    yield 123
    scvi.settings._seed = saved


def test_deconvolve_writes_obsm_in_place_or_on_a_copy(synthetic_data):
    ref, bulk = synthetic_data
    copy = hpvade.tl.deconvolve(
        bulk, ref, labels_key="cell_type", max_epochs=8, copy=True, **TRAIN_KW
    )
    assert "hpvade_proportions" not in bulk.obsm
    assert "hpvade" not in bulk.uns
    props = copy.obsm["hpvade_proportions"]
    np.testing.assert_allclose(props.sum(axis=1), 1.0, atol=1e-5)
    truth = bulk.obsm["true_proportions"][props.columns]
    assert np.corrcoef(props.to_numpy().ravel(), truth.to_numpy().ravel())[0, 1] > 0.9

    out = hpvade.tl.deconvolve(
        bulk, ref, labels_key="cell_type", max_epochs=2, key_added="p", kind="mrna", **TRAIN_KW
    )
    assert out is None  # scanpy's contract: in place, nothing returned
    assert bulk.obsm["p"].index.equals(bulk.obs_names)
    assert bulk.uns["hpvade"]["params"]["kind"] == "mrna"


def test_return_shapes_uns_and_options_passed_through(synthetic_data, tmp_path):
    ref, bulk = synthetic_data
    copy, model = hpvade.tl.deconvolve(
        bulk,
        ref,
        labels_key="cell_type",
        copy=True,
        return_model=True,
        seed=3,
        adapt=False,
        model_kwargs={"n_latent": 3},
        max_epochs=2,
        **TRAIN_KW,
    )
    assert isinstance(copy, ad.AnnData)
    assert isinstance(model, hpvade.HPVADE)
    assert copy is not bulk
    # training options reach HPVADE.train, model options HPVADE
    assert len(model.history["loss_bulk_train"]) == 2
    assert model.init_params_["non_kwargs"]["n_latent"] == 3
    info = copy.uns["hpvade"]
    assert info["params"]["seed"] == 3
    assert info["params"]["labels_key"] == "cell_type"
    assert info["params"]["train_kwargs"]["max_epochs"] == 2
    assert info["params"]["layer"] is None
    assert info["params"]["adapt"] is False
    assert set(info["versions"]) >= {"hpvade", "scvi-tools", "torch"}
    assert info["versions"]["scvi-tools"] == scvi.__version__
    # what tl.deconvolve writes can be saved
    copy.write_h5ad(tmp_path / "b.h5ad")
    assert ad.read_h5ad(tmp_path / "b.h5ad").uns["hpvade"]["params"]["seed"] == 3


def test_global_state_and_reference_are_left_as_they_were(synthetic_data, global_seed):
    ref, bulk = synthetic_data
    ref.obs["cell_type"] = ref.obs["cell_type"].astype(str)  # setup_anndata would recode it
    ref.layers["counts"] = ref.X.copy()
    before = ref.copy()
    X, counts = ref.X, ref.layers["counts"]
    torch.manual_seed(5)
    np.random.seed(5)  # noqa: NPY002 - the global state under test
    random.seed(5)
    states = (torch.random.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())  # noqa: NPY002
    env = dict(os.environ)
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)

    hpvade.tl.deconvolve(
        bulk, ref, labels_key="cell_type", layer="counts", seed=0, max_epochs=1, **TRAIN_KW
    )

    assert scvi.settings.seed == global_seed
    assert torch.equal(torch.random.get_rng_state(), states[0])
    np.testing.assert_array_equal(np.random.get_state()[1], states[1])  # noqa: NPY002
    assert random.getstate() == states[2]
    assert dict(os.environ) == env
    assert (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark) == cudnn
    # the reference: same objects, same values, no registry, no recoded column
    assert ref.X is X
    assert ref.layers["counts"] is counts
    assert (ref.X != before.X).nnz == 0
    pd.testing.assert_frame_equal(ref.obs, before.obs)
    pd.testing.assert_frame_equal(ref.var, before.var)
    assert ref.obs["cell_type"].dtype == object
    assert dict(ref.uns) == dict(before.uns)
    assert list(ref.layers) == ["counts"]
    assert list(ref.obsm) == list(before.obsm)
    assert "hpvade_proportions" in bulk.obsm


def test_seed_none_trains_with_the_global_settings(synthetic_data, global_seed):
    ref, bulk = synthetic_data
    hpvade.tl.deconvolve(bulk, ref, labels_key="cell_type", seed=None, max_epochs=1, **TRAIN_KW)
    assert scvi.settings.seed == global_seed
    assert bulk.uns["hpvade"]["params"]["seed"] is None


def test_bad_kind_is_refused_before_training(synthetic_data, monkeypatch):
    ref, bulk = synthetic_data

    def no_training(*args, **kwargs):
        raise AssertionError("trained")

    monkeypatch.setattr(hpvade.HPVADE, "train", no_training)
    with pytest.raises(ValueError, match="kind must be"):
        hpvade.tl.deconvolve(bulk, ref, labels_key="cell_type", kind="cells")
    with pytest.raises(KeyError, match="no_such"):
        hpvade.tl.deconvolve(bulk, ref, labels_key="no_such")


def test_deconvolve_passes_measured_mrna_content(synthetic_data):
    ref, bulk = synthetic_data
    model = hpvade.tl.deconvolve(
        bulk, ref, labels_key="cell_type", max_epochs=2, return_model=True, **TRAIN_KW
    )
    content = model.get_mrna_content()
    content.iloc[-1] *= 4.0
    hpvade.tl.deconvolve(
        bulk,
        ref,
        labels_key="cell_type",
        max_epochs=2,
        key_added="m",
        mrna_content=content,
        **TRAIN_KW,
    )
    expected = model.get_proportions(bulk.copy(), key_added=None, mrna_content=content)
    # same seed, same training: the written fractions are those of the measured content
    np.testing.assert_allclose(bulk.obsm["m"].to_numpy(), expected.to_numpy(), atol=1e-6)
    assert bulk.uns["hpvade"]["params"]["mrna_content"] == pytest.approx(content.to_dict())


def test_a_backed_reference_gives_the_in_memory_proportions_and_stays_unchanged(
    synthetic_data, tmp_path
):
    ref, bulk = synthetic_data
    ref.write_h5ad(tmp_path / "ref.h5ad")
    digest = (tmp_path / "ref.h5ad").read_bytes()
    backed = ad.read_h5ad(tmp_path / "ref.h5ad", backed="r")
    obs_before = backed.obs.copy()
    kw = {"labels_key": "cell_type", "max_epochs": 2, "copy": True, **TRAIN_KW}
    from_file = hpvade.tl.deconvolve(bulk, backed, **kw).obsm["hpvade_proportions"]
    in_memory = hpvade.tl.deconvolve(bulk, ref, **kw).obsm["hpvade_proportions"]
    # scvi-tools reads a backed minibatch's cells in sorted order: equal up to float noise
    np.testing.assert_allclose(from_file.to_numpy(), in_memory.to_numpy(), atol=1e-4)
    pd.testing.assert_frame_equal(backed.obs, obs_before)
    assert not backed.uns
    assert (tmp_path / "ref.h5ad").read_bytes() == digest
