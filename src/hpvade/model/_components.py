from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from scvi.nn import FCLayers
from torch import nn

from .._constants import PROP_EPS


def safe_proportion_loss(p_pred: torch.Tensor, p_true: torch.Tensor) -> torch.Tensor:
    """Proportion loss of the seed: ``MSE + 0.1 * KL(p_true || p_pred)``, finite for any input.

    Both proportion vectors are clamped at 1e-10 and renormalised before the log, so that the
    exact zeros that a float32 softmax produces never reach ``log`` (seed note, fix 1).

    Parameters
    ----------
    p_pred
        Predicted proportions, observations x types (rows sum to 1, may hold exact zeros).
    p_true
        True proportions, same shape.

    Returns
    -------
    torch.Tensor
        0-d tensor.
    """
    p_true_safe = p_true.clamp(min=PROP_EPS)
    p_true_safe = p_true_safe / p_true_safe.sum(dim=1, keepdim=True)
    p_pred_safe = p_pred.clamp(min=PROP_EPS)
    p_pred_safe = p_pred_safe / p_pred_safe.sum(dim=1, keepdim=True)
    mse = F.mse_loss(p_pred_safe, p_true_safe)
    kl = F.kl_div(p_pred_safe.log(), p_true_safe, reduction="batchmean")
    return mse + 0.1 * kl


class DeconvolutionHead(nn.Module):
    """MLP from a bulk profile (log1p CPM, centred per gene) to cell-type logits.

    Parameters
    ----------
    n_genes
        Number of input genes.
    n_types
        Number of cell types.
    n_hidden
        Width of the hidden layers.
    n_layers
        Number of hidden layers.
    dropout_rate
        Dropout between hidden layers.
    """

    def __init__(
        self,
        n_genes: int,
        n_types: int,
        *,
        n_hidden: int = 256,
        n_layers: int = 2,
        dropout_rate: float = 0.1,
    ):
        super().__init__()
        self.body = FCLayers(
            n_in=n_genes,
            n_out=n_hidden,
            n_layers=n_layers,
            n_hidden=n_hidden,
            dropout_rate=dropout_rate,
            use_batch_norm=False,
            use_layer_norm=True,
        )
        self.out = nn.Linear(n_hidden, n_types)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the cell-type proportions."""
        return self.out(self.body(x))


def gaussian_kl(
    q_m: torch.Tensor, q_v: torch.Tensor, p_m: torch.Tensor, p_logv: torch.Tensor
) -> torch.Tensor:
    """KL(N(q_m, q_v) || N(p_m, exp(p_logv))) summed over the last dimension."""
    p_v = p_logv.exp()
    return 0.5 * (p_logv - q_v.log() + (q_v + (q_m - p_m) ** 2) / p_v - 1.0).sum(-1)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logv: torch.Tensor) -> torch.Tensor:
    """Log-density N(z; mu_c, exp(logv_c)) for every cell and component: (cells x components)."""
    diff = z[:, None, :] - mu[None, :, :]
    return -0.5 * (
        (diff**2 / logv.exp()[None]).sum(-1)
        + logv.sum(-1)[None]
        + z.shape[-1] * math.log(2 * math.pi)
    )
