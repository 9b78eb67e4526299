from __future__ import annotations

import mudata
import numpy as np
import pytest
import scvi

import hpvade

from ..conftest import TRAIN_KW


def test_mudata_reference_and_bulk_modalities(synthetic_data):
    ref, bulk = synthetic_data
    mdata = mudata.MuData({"rna": ref, "bulk": bulk})
    scvi.settings.seed = 0
    hpvade.HPVADE.setup_mudata(mdata, labels_key="cell_type")
    assert mdata.uns["hpvade"] == {"reference_mod": "rna", "bulk_mod": "bulk"}
    model = hpvade.HPVADE(mdata, real_bulk_weight=1.0)  # the bulk modality feeds the loss
    model.train(max_epochs=8, **TRAIN_KW)
    assert np.isfinite(model.history["loss_bulk_recon_real_train"].to_numpy(dtype=float)).all()
    assert model.history["loss_bulk_recon_real_train"].to_numpy(dtype=float)[0] > 0
    props = model.get_proportions(mdata)
    stored = mdata["bulk"].obsm["hpvade_proportions"]
    assert stored.index.equals(mdata["bulk"].obs_names)
    np.testing.assert_allclose(stored.to_numpy(), props.to_numpy())
    truth = bulk.obsm["true_proportions"][props.columns].to_numpy()
    assert np.corrcoef(props.to_numpy().ravel(), truth.ravel())[0, 1] > 0.9


def test_mudata_missing_modality_is_named(synthetic_data):
    ref, bulk = synthetic_data
    mdata = mudata.MuData({"rna": ref, "bulk": bulk})
    with pytest.raises(KeyError, match="'tpm' is not a modality"):
        hpvade.HPVADE.setup_mudata(mdata, labels_key="cell_type", bulk_mod="tpm")
