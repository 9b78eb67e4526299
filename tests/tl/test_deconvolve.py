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


def test_deconvolve_passes_measured_mrna_content(synthetic_data):
    ref, bulk = synthetic_data
    model = hpvade.tl.deconvolve(bulk, ref, labels_key="cell_type", max_epochs=2, **TRAIN_KW)
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
