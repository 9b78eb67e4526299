from __future__ import annotations

import numpy as np
import pytest
import torch
from scvi import REGISTRY_KEYS

from hpvade._constants import HPVADE_REGISTRY_KEYS as K
from hpvade.model import HPVADEModule
from hpvade.model._components import safe_proportion_loss

G, C = 50, 3


def _module(**kwargs) -> HPVADEModule:
    rng = np.random.default_rng(0)
    sig = rng.gamma(1.0, 1.0, size=(G, C))
    sig = 1e6 * sig / sig.sum(axis=0)
    return HPVADEModule(G, C, sig, np.array([1.0, 2.0, 3.0]), **kwargs)


def _batch(n_cells=8, n_pseudo=5, n_bulk=4, zero_cells=False):
    g = torch.Generator().manual_seed(0)
    x = torch.poisson(torch.full((n_cells, G), 3.0), generator=g)
    if zero_cells:
        x[:2] = 0.0
    p = torch.distributions.Dirichlet(torch.ones(C)).sample((n_pseudo,))
    cpm = torch.rand(n_pseudo, G, generator=g)
    cpm = 1e6 * cpm / cpm.sum(1, keepdim=True)
    bulk = torch.rand(n_bulk, G, generator=g)
    bulk = 1e6 * bulk / bulk.sum(1, keepdim=True)
    return {
        K.CELLS: {
            REGISTRY_KEYS.X_KEY: x,
            REGISTRY_KEYS.LABELS_KEY: torch.randint(0, C, (n_cells, 1), generator=g),
            REGISTRY_KEYS.BATCH_KEY: torch.zeros(n_cells, 1),
        },
        K.PSEUDO: {K.BULK_X: cpm, K.P_TRUE: p},
        K.BULK: {K.BULK_X: bulk},
    }


@pytest.mark.parametrize(
    "logits",
    [
        pytest.param(torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, -1e4]]), id="logits_pm_1e4"),
        pytest.param(torch.tensor([[0.0, 0.0, 0.0], [200.0, -200.0, 0.0]]), id="underflow"),
    ],
)
def test_proportion_loss_finite_for_extreme_logits(logits):
    logits = logits.clone().requires_grad_(True)
    p_pred = torch.softmax(logits, dim=-1)
    assert (p_pred == 0).any()  # the float32 softmax really produces exact zeros
    p_true = torch.tensor([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
    loss = safe_proportion_loss(p_pred, p_true)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(logits.grad).all()


def test_proportion_loss_exact_zeros_and_value():
    p_pred = torch.tensor([[0.0, 1.0], [0.5, 0.5]], requires_grad=True)
    p_true = torch.tensor([[0.0, 1.0], [0.5, 0.5]])
    loss = safe_proportion_loss(p_pred, p_true)
    loss.backward()
    assert torch.isfinite(p_pred.grad).all()
    assert loss.item() == pytest.approx(0.0, abs=1e-6)  # identical inputs: zero loss
    worse = safe_proportion_loss(torch.tensor([[1.0, 0.0], [0.5, 0.5]]), p_true)
    assert worse.item() > 0.5  # MSE 0.5 plus a large KL term


def test_signature_columns_and_mean_at_init():
    module = _module()
    S = module.signature.detach().double()
    np.testing.assert_allclose(S.sum(0).numpy(), 1e6, rtol=1e-5)
    assert S.mean().item() == pytest.approx(1e6 / G, rel=1e-5)
    assert (S >= 0).all()


def test_forward_reports_every_term_finite():
    module = _module()
    _, _, out = module(_batch(zero_cells=True))
    expected = {
        "loss_proto",
        "loss_kl",
        "loss_bulk",
        "loss_bulk_recon",
        "loss_bulk_recon_real",
        "loss_signature",
        "loss_scale",
        "scale_ratio",
    }
    assert expected <= set(out.extra_metrics)
    for name, value in out.extra_metrics.items():
        assert value.dim() == 0, name
        assert torch.isfinite(value), name
    assert torch.isfinite(out.loss)
    out.loss.backward()
    for name, param in module.named_parameters():
        if param.grad is not None:
            assert torch.isfinite(param.grad).all(), name


def test_reconstruction_scale_ratio_is_one():
    module = _module()
    p = torch.distributions.Dirichlet(torch.ones(C)).sample((7,))
    b = module.reconstruct_bulk(p, platform=True)
    np.testing.assert_allclose(b.sum(1).detach().numpy(), 1e6, rtol=1e-5)


def test_loss_weights_default_to_the_seed():
    module = _module()
    assert (module.lambda_proto, module.lambda_kl, module.lambda_bulk) == (0.1, 0.01, 5.0)
    assert module.lambda_bulk_recon == 10.0


def test_fixed_signature_is_not_learnt():
    module = _module(learn_signature=False)
    _, _, out = module(_batch())
    out.loss.backward()
    assert module.signature_logits.grad is None
    assert out.extra_metrics["loss_signature"].item() == 0.0


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_real_bulk_weight_scales_the_real_reconstruction(weight):
    module = _module(real_bulk_weight=weight)
    module.eval()  # no dropout: the two passes see the same network
    full = _batch()
    batch = {k: v for k, v in full.items() if k != K.BULK}
    torch.manual_seed(0)  # the same latent sample z in both passes
    _, _, with_bulk = module(full)
    torch.manual_seed(0)
    _, _, without = module(batch)
    real = with_bulk.extra_metrics["loss_bulk_recon_real"].item()
    assert real > 0  # always reported
    gap = with_bulk.loss.item() - without.loss.item()
    # the platform-scale penalty is 0 at init, so the gap is the weighted real-bulk term
    assert gap == pytest.approx(module.lambda_bulk_recon * weight * real, rel=1e-4, abs=1e-6)
