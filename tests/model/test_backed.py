"""A backed reference (``anndata.read_h5ad(path, backed="r")``) trains like one in memory."""

from __future__ import annotations

import hashlib

import anndata as ad
import numpy as np
import pytest
import scvi

import hpvade
from hpvade.pp import check_bulk, check_reference

from ..conftest import TRAIN_KW


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fit(ref, bulk):
    scvi.settings.seed = 0
    hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
    model = hpvade.HPVADE(ref)
    init = {k: v.clone() for k, v in model.module.state_dict().items()}
    model.train(bulk=bulk, max_epochs=5, **TRAIN_KW)
    return model, init


def test_backed_reference_gives_the_in_memory_proportions(tmp_path):
    ref, bulk = hpvade.data.synthetic(seed=0)
    path = tmp_path / "ref.h5ad"
    ref.write_h5ad(path)
    before = _digest(path)
    backed = ad.read_h5ad(path, backed="r")
    try:
        mem_model, mem_init = _fit(ref, bulk)
        backed_model, backed_init = _fit(backed, bulk)
        # what is read in blocks is read exactly: the same genes, the same module at init
        # (signature and mRNA contents from the reference's type profiles)
        assert backed_model.genes_ == mem_model.genes_
        assert backed_init.keys() == mem_init.keys()
        for key, value in mem_init.items():
            assert bool((backed_init[key] == value).all()), key
        p_mem = mem_model.get_proportions(bulk, key_added=None)
        p_backed = backed_model.get_proportions(bulk, key_added=None)
        # scvi-tools sorts each minibatch's cells when it reads them from a file, so the
        # training losses are summed in another order (float32 rounding): measured 9.5e-7
        np.testing.assert_allclose(p_backed.to_numpy(), p_mem.to_numpy(), atol=1e-5)
        assert list(p_backed.columns) == list(p_mem.columns)
        latent = backed_model.get_latent_representation(indices=np.arange(10))
        assert latent.shape == (10, backed_model.module.n_latent)
    finally:
        backed.file.close()
    assert _digest(path) == before, "the reference's file was modified"


def test_backed_reference_is_checked_like_one_in_memory(tmp_path):
    ref, bulk = hpvade.data.synthetic(seed=0)
    ref.X = ref.X.astype(np.float32) * 0.5  # not counts
    ref.write_h5ad(tmp_path / "ref.h5ad")
    backed = ad.read_h5ad(tmp_path / "ref.h5ad", backed="r")
    try:
        with pytest.raises(ValueError, match="non-integer") as in_memory:
            check_reference(ref, layer=None, labels_key="cell_type")
        with pytest.raises(ValueError, match="non-integer") as from_file:
            check_reference(backed, layer=None, labels_key="cell_type")
        assert str(from_file.value) == str(in_memory.value)
        with pytest.raises(ValueError, match="non-integer"):
            hpvade.HPVADE.setup_anndata(backed, labels_key="cell_type")
    finally:
        backed.file.close()

    # bulks stay in memory (they are small): a backed one says how to load it
    bulk.write_h5ad(tmp_path / "bulk.h5ad")
    backed_bulk = ad.read_h5ad(tmp_path / "bulk.h5ad", backed="r")
    try:
        with pytest.raises(ValueError, match="to_memory"):
            check_bulk(backed_bulk)
    finally:
        backed_bulk.file.close()
