"""GPU training: runs only where CUDA is available (CI has none, so it is skipped there)."""

from __future__ import annotations

import numpy as np
import pytest
import scvi
import torch

import hpvade

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_gpu_training_matches_the_cpu_quality(synthetic_data):
    ref, bulk = synthetic_data
    scvi.settings.seed = 0
    hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
    model = hpvade.HPVADE(ref)
    model.train(bulk=bulk, max_epochs=15, accelerator="gpu", devices=1, enable_progress_bar=False)
    assert model.device.type == "cuda"
    props = model.get_proportions(bulk)
    np.testing.assert_allclose(props.sum(axis=1), 1.0, atol=1e-5)
    truth = bulk.obsm["true_proportions"][props.columns].to_numpy()
    assert np.corrcoef(props.to_numpy().ravel(), truth.ravel())[0, 1] >= 0.95
    assert model.get_latent_representation().shape == (ref.n_obs, 10)
