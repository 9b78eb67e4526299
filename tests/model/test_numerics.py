"""Numerical safety and reproducibility of HP-VaDE.

- Property tests (hypothesis): the proportion loss and the module's full loss, and their
  gradients, stay finite for any logits (including +-1e4, which make a float32 softmax
  return exact zeros and ones), exact-zero proportions, zero-count cells and all-zero bulks.
- A training-level guard: a non-finite loss term stops training with an error naming the
  term and the epoch, before any parameter is updated.
- Determinism: with ``scvi.settings.seed`` set, two trainings give identical proportions;
  save/load gives identical proportions, also with another reference holding the same genes.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
import scvi
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scvi import REGISTRY_KEYS

import hpvade
from hpvade._constants import HPVADE_REGISTRY_KEYS as K
from hpvade.model import _module
from hpvade.model._components import safe_proportion_loss
from hpvade.model._trainingplan import HPVADETrainingPlan

N_GENES, N_TYPES = 12, 3

# logits anywhere in [-1e4, 1e4], with the extremes and exact zeros drawn often
LOGIT = st.one_of(
    st.sampled_from([-1e4, 1e4, 0.0, -1e3, 88.0, -104.0]),
    st.floats(-1e4, 1e4, allow_nan=False, width=32),
)
# proportions before normalisation: non-negative, exact zeros drawn often
WEIGHT = st.one_of(st.just(0.0), st.floats(0.0, 1e3, allow_nan=False, width=32))


def _normalise(w: np.ndarray) -> np.ndarray:
    total = w.sum(axis=1, keepdims=True)
    # a row of zeros becomes one-hot: proportions always sum to 1
    w = np.where(total > 0, w, np.eye(1, w.shape[1]))
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


def _assert_finite_with_grads(loss: torch.Tensor, params) -> None:
    assert torch.isfinite(loss), f"loss is {loss.item()}"
    loss.backward()
    for name, p in params:
        if p.grad is not None:
            assert torch.isfinite(p.grad).all(), f"non-finite gradient of {name}"


@settings(max_examples=150, deadline=None)
@given(
    logits=arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(2, 6)), elements=LOGIT),
    data=st.data(),
)
def test_proportion_loss_and_gradient_finite_for_any_logits(logits, data) -> None:
    w = data.draw(arrays(np.float32, logits.shape, elements=WEIGHT))
    x = torch.tensor(logits, requires_grad=True)
    p_pred = torch.softmax(x, dim=-1)  # exact zeros for the extreme logits
    loss = safe_proportion_loss(p_pred, torch.from_numpy(_normalise(w)))
    _assert_finite_with_grads(loss, [("logits", x)])


@functools.cache
def _module_and_state() -> tuple[_module.HPVADEModule, dict]:
    rng = np.random.default_rng(0)
    signature = rng.gamma(0.5, 1.0, size=(N_GENES, N_TYPES))
    signature[0, 0] = 0.0  # an exact zero in the signature
    signature = 1e6 * signature / signature.sum(axis=0)
    module = _module.HPVADEModule(
        N_GENES,
        N_TYPES,
        signature,
        np.array([1.0, 2.0, 0.5]),
        n_latent=3,
        n_hidden=8,
        deconv_hidden=8,
        deconv_layers=1,
        dropout_rate=0.0,
    )
    return module, {k: v.clone() for k, v in module.state_dict().items()}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    head_bias=arrays(np.float32, (N_TYPES,), elements=LOGIT),
    cells=arrays(np.float32, (5, N_GENES), elements=st.sampled_from([0.0, 0.0, 1.0, 7.0, 1e4])),
    labels=arrays(np.int64, (5,), elements=st.integers(0, N_TYPES - 1)),
    pseudo=arrays(np.float32, (4, N_GENES), elements=st.sampled_from([0.0, 0.0, 3.0, 1e6])),
    weights=arrays(np.float32, (4, N_TYPES), elements=WEIGHT),
    bulk=arrays(np.float32, (2, N_GENES), elements=st.sampled_from([0.0, 0.0, 50.0, 1e6])),
    zero_cell=st.booleans(),
)
def test_module_loss_and_gradients_finite(
    head_bias, cells, labels, pseudo, weights, bulk, zero_cell
) -> None:
    """Full module loss with extreme logits, zero-count cells, all-zero (pseudo-)bulks."""
    module, state = _module_and_state()
    module.load_state_dict(state)
    module.zero_grad()
    with torch.no_grad():  # the head outputs exactly head_bias: any logits we like
        module.deconv_net.out.weight.zero_()
        module.deconv_net.out.bias.copy_(torch.from_numpy(head_bias))
    if zero_cell:
        cells[0] = 0.0
        pseudo[0] = 0.0
        bulk[0] = 0.0
    tensors = {
        K.CELLS: {
            REGISTRY_KEYS.X_KEY: torch.from_numpy(cells),
            REGISTRY_KEYS.LABELS_KEY: torch.from_numpy(labels)[:, None],
        },
        K.PSEUDO: {
            K.BULK_X: torch.from_numpy(pseudo),
            K.P_TRUE: torch.from_numpy(_normalise(weights)),
        },
        K.BULK: {K.BULK_X: torch.from_numpy(bulk)},
    }
    _, _, out = module(tensors)
    for name, value in out.extra_metrics.items():
        assert torch.isfinite(value), f"{name} is {value.item()}"
    _assert_finite_with_grads(out.loss, module.named_parameters())


# ----------------------------------------------------------------------- training level


def _tiny(seed: int = 0, **kwargs):
    ref, bulk = hpvade.data.synthetic(
        n_types=3, n_cells_per_type=30, n_genes=60, n_markers=5, n_bulk=4, seed=seed
    )
    return ref, bulk


TINY_MODEL = {"n_hidden": 16, "n_latent": 4, "deconv_hidden": 16, "deconv_layers": 1}
TINY_TRAIN = {
    "n_pseudobulk": 8,
    "cells_per_pseudobulk": 20,
    "steps_per_epoch": 2,
    "batch_size": 32,
    "accelerator": "cpu",
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "logger": False,
}


def _train(ref, bulk, *, max_epochs: int = 2) -> hpvade.HPVADE:
    scvi.settings.seed = 0  # what a user does at the top of a notebook (seeds torch/numpy)
    hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
    model = hpvade.HPVADE(ref, **TINY_MODEL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.train(bulk=bulk, max_epochs=max_epochs, **TINY_TRAIN)
    return model


@pytest.fixture
def seed():
    old = scvi.settings.seed
    scvi.settings.seed = 0
    yield 0
    scvi.settings.seed = old


def test_nonfinite_term_stops_training_naming_term_and_epoch(monkeypatch, seed) -> None:
    """Inject NaN into one loss term at epoch 1: training stops, names it, params stay finite."""
    ref, bulk = _tiny()
    hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
    model = hpvade.HPVADE(ref, **TINY_MODEL)
    original = _module.safe_proportion_loss
    original_step = HPVADETrainingPlan.training_step
    state = {"epoch": -1}

    def training_step(self, batch, batch_idx):
        state["epoch"] = self.current_epoch
        return original_step(self, batch, batch_idx)

    def poisoned(p_pred, p_true):
        loss = original(p_pred, p_true)
        if state["epoch"] >= 1 and model.module.training:
            return loss * torch.tensor(float("nan"))
        return loss

    monkeypatch.setattr(HPVADETrainingPlan, "training_step", training_step)
    monkeypatch.setattr(_module, "safe_proportion_loss", poisoned)
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(FloatingPointError, match=r"'loss_bulk'.*epoch 1") as info:
            model.train(bulk=bulk, max_epochs=3, **TINY_TRAIN)
    assert "nan" in str(info.value).lower()
    for name, p in model.module.named_parameters():
        assert torch.isfinite(p).all(), f"{name} was corrupted by the non-finite loss"
    changed = [k for k in before if not torch.equal(before[k], model.module.state_dict()[k])]
    assert changed, "epoch 0 trained normally before the injected failure"


def test_same_seed_same_proportions(seed) -> None:
    ref, bulk = _tiny()
    p1 = _train(ref.copy(), bulk.copy()).get_proportions(bulk.copy(), key_added=None)
    p2 = _train(ref.copy(), bulk.copy()).get_proportions(bulk.copy(), key_added=None)
    assert np.array_equal(p1.to_numpy(), p2.to_numpy())


def test_save_load_same_proportions(seed, tmp_path) -> None:
    ref, bulk = _tiny()
    model = _train(ref, bulk)
    p = model.get_proportions(bulk, key_added=None)
    model.save(tmp_path / "model")
    same = hpvade.HPVADE.load(tmp_path / "model", adata=ref)
    assert np.array_equal(same.get_proportions(bulk, key_added=None).to_numpy(), p.to_numpy())
    # a machine without the original reference: other cells, the same genes and types
    other, _ = _tiny(seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = hpvade.HPVADE.load(tmp_path / "model", adata=other)
    assert np.array_equal(loaded.get_proportions(bulk, key_added=None).to_numpy(), p.to_numpy())
