from __future__ import annotations

import logging

import pytest
import scvi
import torch

import hpvade

# Small models on a 2-core machine: one intra-op thread avoids oversubscription
torch.set_num_threads(1)
logging.getLogger("lightning").setLevel(logging.WARNING)
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)

TRAIN_KW = {"enable_progress_bar": False, "enable_model_summary": False, "accelerator": "cpu"}


@pytest.fixture
def synthetic_data():
    """A fresh seeded synthetic reference (4 types) and 24 bulks with known fractions."""
    return hpvade.data.synthetic(seed=0)


@pytest.fixture(scope="session")
def trained():
    """One small model trained on the synthetic reference and bulks (shared, read-only)."""
    scvi.settings.seed = 0
    ref, bulk = hpvade.data.synthetic(seed=0)
    hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
    model = hpvade.HPVADE(ref)
    model.train(bulk=bulk, max_epochs=15, **TRAIN_KW)
    return model, ref, bulk
