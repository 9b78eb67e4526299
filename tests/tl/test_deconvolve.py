from __future__ import annotations

import numpy as np

import hpvade

from ..conftest import TRAIN_KW


def test_deconvolve_writes_obsm_in_place_or_on_a_copy(synthetic_data):
    ref, bulk = synthetic_data
    copy = hpvade.tl.deconvolve(
        bulk, ref, labels_key="cell_type", max_epochs=8, copy=True, **TRAIN_KW
    )
    assert "hpvade_proportions" not in bulk.obsm
    props = copy.obsm["hpvade_proportions"]
    np.testing.assert_allclose(props.sum(axis=1), 1.0, atol=1e-5)
    truth = bulk.obsm["true_proportions"][props.columns]
    assert np.corrcoef(props.to_numpy().ravel(), truth.to_numpy().ravel())[0, 1] > 0.9

    model = hpvade.tl.deconvolve(
        bulk, ref, labels_key="cell_type", max_epochs=2, key_added="p", kind="mrna", **TRAIN_KW
    )
    assert isinstance(model, hpvade.HPVADE)
    assert bulk.obsm["p"].index.equals(bulk.obs_names)
