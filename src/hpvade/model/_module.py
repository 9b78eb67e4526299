from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scvi import REGISTRY_KEYS
from scvi.distributions import NegativeBinomial
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from scvi.nn import DecoderSCVI, Encoder
from torch import nn

from .._constants import (
    CPM_SCALE,
    HPVADE_REGISTRY_KEYS,
    LAMBDA_BULK,
    LAMBDA_BULK_RECON,
    LAMBDA_KL,
    LAMBDA_PROTO,
)
from ._components import (
    DeconvolutionHead,
    gaussian_kl,
    gaussian_log_density,
    safe_proportion_loss,
)

K = HPVADE_REGISTRY_KEYS
#: pseudo-count (CPM) under the log of the signature's parameterisation
_SIG_EPS = 1e-2


class HPVADEModule(BaseModuleClass):
    """HP-VaDE: a Gaussian-mixture VAE of reference cells tied to a deconvolution head.

    Pure torch, no AnnData. The VaDE branch encodes log-normalised counts of a cell into
    ``z`` with a prior made of one Gaussian component per cell type and decodes ``z`` with a
    negative binomial of observed library size. The deconvolution head maps a bulk profile
    (log1p CPM) to cell-type proportions ``p``; the signature matrix ``S`` (genes x types, CPM,
    columns summing to 1e6 through a softmax over genes), the per-type mRNA content ``m`` and,
    for real bulks, a gene-wise platform scale ``g`` reconstruct the bulk as
    ``g * S (m * p) / sum(m * p)``.

    Parameters
    ----------
    n_input
        Number of genes G.
    n_labels
        Number of cell types C.
    signature_init
        G x C initial signature (CPM columns).
    mrna_init
        C initial mRNA contents (e.g. mean library size per type); only ratios matter.
    n_batch
        Number of batches of the reference (0 or 1 for none).
    n_latent
        Dimension of the latent space.
    n_hidden
        Width of the encoder and decoder layers.
    n_layers
        Hidden layers of the encoder and decoder.
    dropout_rate
        Dropout of the encoder and the deconvolution head.
    deconv_hidden
        Width of the deconvolution head.
    deconv_layers
        Hidden layers of the deconvolution head.
    lambda_proto
        Weight of the VaDE reconstruction of the reference cells (seed: 0.1).
    lambda_kl
        Weight of the latent KL to the cell-type components (seed: 0.01).
    lambda_bulk
        Weight of the proportion loss on pseudo-bulks (seed: 5.0).
    lambda_bulk_recon
        Weight of the bulk reconstruction (seed: 10.0).
    lambda_signature
        Weight of the tie between the signature and the decoded prototypes.
    lambda_scale
        Weight of the penalty that keeps the platform scale near 1 (on log scale).
    real_bulk_weight
        Weight of the real bulks' reconstruction relative to the pseudo-bulks' inside
        ``loss_bulk_recon``.
    learn_signature
        Whether ``S`` is learnt; otherwise it stays at ``signature_init``.
    learn_mrna
        Whether the mRNA contents are learnt.
    gene_index
        Columns of the cell minibatches that hold the G genes, in order (``None``: all of
        them, already in order). Not saved with the parameters: the model derives it from
        gene names.
    """

    def __init__(
        self,
        n_input: int,
        n_labels: int,
        signature_init: np.ndarray,
        mrna_init: np.ndarray,
        *,
        n_batch: int = 0,
        n_latent: int = 10,
        n_hidden: int = 128,
        n_layers: int = 1,
        dropout_rate: float = 0.1,
        deconv_hidden: int = 256,
        deconv_layers: int = 2,
        lambda_proto: float = LAMBDA_PROTO,
        lambda_kl: float = LAMBDA_KL,
        lambda_bulk: float = LAMBDA_BULK,
        lambda_bulk_recon: float = LAMBDA_BULK_RECON,
        lambda_signature: float = 1.0,
        lambda_scale: float = 1.0,
        real_bulk_weight: float = 0.0,
        learn_signature: bool = True,
        learn_mrna: bool = True,
        gene_index: np.ndarray | None = None,
    ):
        super().__init__()
        signature_init = np.asarray(signature_init, dtype=np.float64)
        if signature_init.shape != (n_input, n_labels):
            raise ValueError(
                f"signature_init has shape {signature_init.shape}, expected ({n_input}, "
                f"{n_labels})."
            )
        self.n_input = n_input
        self.n_labels = n_labels
        self.n_batch = n_batch
        self.n_latent = n_latent
        self.lambda_proto = lambda_proto
        self.lambda_kl = lambda_kl
        self.lambda_bulk = lambda_bulk
        self.lambda_bulk_recon = lambda_bulk_recon
        self.lambda_signature = lambda_signature
        self.lambda_scale = lambda_scale
        self.real_bulk_weight = real_bulk_weight

        cat_list = [n_batch] if n_batch > 1 else None
        self.z_encoder = Encoder(
            n_input,
            n_latent,
            n_cat_list=cat_list,
            n_layers=n_layers,
            n_hidden=n_hidden,
            dropout_rate=dropout_rate,
        )
        self.decoder = DecoderSCVI(
            n_latent, n_input, n_cat_list=cat_list, n_layers=n_layers, n_hidden=n_hidden
        )
        self.px_r = nn.Parameter(torch.randn(n_input) * 0.1)

        # Gaussian-mixture prior: one component per cell type
        generator = torch.Generator().manual_seed(0)
        self.prior_mu = nn.Parameter(torch.randn(n_labels, n_latent, generator=generator))
        self.prior_logv = nn.Parameter(torch.zeros(n_labels, n_latent))
        self.prior_logits = nn.Parameter(torch.zeros(n_labels))

        # signature: S = 1e6 * softmax(S_logits, dim=0) keeps it non-negative, columns 1e6
        sig_logits = torch.as_tensor(np.log(signature_init + _SIG_EPS), dtype=torch.float32)
        self.signature_logits = nn.Parameter(sig_logits, requires_grad=learn_signature)
        m = np.asarray(mrna_init, dtype=np.float64)
        log_m = torch.as_tensor(np.log(m / m.mean()), dtype=torch.float32)
        self.log_mrna = nn.Parameter(log_m, requires_grad=learn_mrna)
        self.log_gene_scale = nn.Parameter(torch.zeros(n_input))

        self.deconv_net = DeconvolutionHead(
            n_input,
            n_labels,
            n_hidden=deconv_hidden,
            n_layers=deconv_layers,
            dropout_rate=dropout_rate,
        )
        center = np.log1p(signature_init).mean(axis=1)
        self.register_buffer("head_center", torch.as_tensor(center, dtype=torch.float32))
        index = np.arange(n_input) if gene_index is None else np.asarray(gene_index)
        if index.shape != (n_input,):
            raise ValueError(f"gene_index must have {n_input} entries, got {index.shape}.")
        self.register_buffer(
            "gene_index", torch.as_tensor(index, dtype=torch.long), persistent=False
        )
        # the bulk model's platform fit (set by the model's fit_platform, saved with it)
        self.register_buffer("gene_weights", torch.ones(n_input))
        self.register_buffer("residual_var", torch.ones(()))
        self.register_buffer("platform_fitted", torch.zeros((), dtype=torch.bool))
        # each type's mean state and spread in the latent space (set after training)
        self.register_buffer("state_mean", torch.zeros(n_labels, n_latent))
        self.register_buffer("state_sd", torch.ones(n_labels, n_latent))

    # ------------------------------------------------------------------ parameters
    @property
    def signature(self) -> torch.Tensor:
        """Signature matrix S, genes x types, CPM (columns sum to 1e6)."""
        return CPM_SCALE * torch.softmax(self.signature_logits, dim=0)

    @property
    def mrna_content(self) -> torch.Tensor:
        """Relative mRNA content per cell type (geometric mean 1 at init)."""
        return self.log_mrna.exp()

    # ------------------------------------------------------------------ pieces
    def select_genes(self, x: torch.Tensor) -> torch.Tensor:
        """Columns of a cell minibatch that hold the model's genes, in the model's order."""
        if x.shape[1] == self.n_input and bool(
            (self.gene_index == torch.arange(self.n_input, device=x.device)).all()
        ):
            return x
        return x[:, self.gene_index.to(x.device)]

    def _batch_covariate(self, batch_index: torch.Tensor | None) -> list[torch.Tensor]:
        """The batch covariate as scvi's layers want it (integer codes), or nothing."""
        if self.n_batch <= 1 or batch_index is None:
            return []
        return [batch_index.long()]

    def predict_logits(self, bulk_cpm: torch.Tensor) -> torch.Tensor:
        """Logits of the cell fractions of bulk profiles given in CPM over the model's genes."""
        return self.deconv_net(torch.log1p(bulk_cpm) - self.head_center)

    def cell_to_mrna(self, p: torch.Tensor) -> torch.Tensor:
        """Convert cell fractions to mRNA fractions with the per-type mRNA content."""
        w = p * self.mrna_content
        return w / w.sum(dim=-1, keepdim=True).clamp(min=1e-30)

    def reconstruct_bulk(self, p: torch.Tensor, *, platform: bool) -> torch.Tensor:
        """Bulk CPM reconstructed from cell fractions ``p`` (unclamped, as the seed says)."""
        b = self.cell_to_mrna(p) @ self.signature.T
        if platform:
            b = b * self.log_gene_scale.exp()
            b = CPM_SCALE * b / b.sum(dim=-1, keepdim=True).clamp(min=1e-30)
        return b

    def decode_states(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised expression (rows sum to 1) decoded from latent states ``z`` (... x L)."""
        flat = z.reshape(-1, z.shape[-1]).to(self.prior_mu.dtype)
        cat = self._batch_covariate(torch.zeros(flat.shape[0], 1, device=flat.device))
        library = torch.zeros(flat.shape[0], 1, device=flat.device)
        px_scale, _, _, _ = self.decoder("gene", flat, library, *cat)
        return px_scale.reshape(*z.shape[:-1], px_scale.shape[-1])

    def prototypes(self) -> torch.Tensor:
        """Decoded mean expression at each component's mean, types x genes, CPM."""
        device = self.prior_mu.device
        cat = self._batch_covariate(torch.zeros(self.n_labels, 1, device=device))
        library = torch.zeros(self.n_labels, 1, device=device)
        px_scale, _, _, _ = self.decoder("gene", self.prior_mu, library, *cat)
        return CPM_SCALE * px_scale

    def cell_type_posterior(self, z: torch.Tensor) -> torch.Tensor:
        """VaDE responsibilities q(c | z), cells x types."""
        log_pi = torch.log_softmax(self.prior_logits, dim=0)
        logp = gaussian_log_density(z, self.prior_mu, self.prior_logv) + log_pi
        return torch.softmax(logp, dim=-1)

    # ------------------------------------------------------------------ BaseModuleClass API
    def _get_inference_input(self, tensors: dict) -> dict:
        cells = tensors.get(K.CELLS, tensors)
        pseudo = tensors.get(K.PSEUDO)
        bulk = tensors.get(K.BULK)
        return {
            "x": self.select_genes(cells[REGISTRY_KEYS.X_KEY]),
            "batch_index": cells.get(REGISTRY_KEYS.BATCH_KEY),
            "pseudo_cpm": None if pseudo is None else pseudo[K.BULK_X],
            "bulk_cpm": None if bulk is None else bulk[K.BULK_X],
        }

    @auto_move_data
    def inference(
        self,
        x: torch.Tensor,
        batch_index: torch.Tensor | None = None,
        pseudo_cpm: torch.Tensor | None = None,
        bulk_cpm: torch.Tensor | None = None,
    ) -> dict:
        """Encode cells; predict proportions of pseudo-bulks and real bulks."""
        library = x.sum(dim=1, keepdim=True)
        x_norm = torch.log1p(1e4 * x / library.clamp(min=1.0))
        cat = self._batch_covariate(batch_index)
        q_m, q_v, z = self.z_encoder(x_norm, *cat)
        out = {
            "q_m": q_m,
            "q_v": q_v,
            "z": z,
            "library": torch.log(library.clamp(min=1.0)),
            "batch_index": batch_index,
        }
        if pseudo_cpm is not None:
            out["p_pseudo"] = torch.softmax(self.predict_logits(pseudo_cpm), dim=-1)
        if bulk_cpm is not None and bulk_cpm.shape[0] > 0:
            out["p_bulk"] = torch.softmax(self.predict_logits(bulk_cpm), dim=-1)
        return out

    def _get_generative_input(self, tensors: dict, inference_outputs: dict) -> dict:
        return {
            "z": inference_outputs["z"],
            "library": inference_outputs["library"],
            "batch_index": inference_outputs["batch_index"],
            "p_pseudo": inference_outputs.get("p_pseudo"),
            "p_bulk": inference_outputs.get("p_bulk"),
        }

    @auto_move_data
    def generative(
        self,
        z: torch.Tensor,
        library: torch.Tensor,
        batch_index: torch.Tensor | None = None,
        p_pseudo: torch.Tensor | None = None,
        p_bulk: torch.Tensor | None = None,
    ) -> dict:
        """Decode cells (negative binomial) and reconstruct bulks from proportions."""
        cat = self._batch_covariate(batch_index)
        _, _, px_rate, _ = self.decoder("gene", z, library, *cat)
        out = {"px": NegativeBinomial(mu=px_rate, theta=self.px_r.exp())}
        if p_pseudo is not None:
            out["b_rec_pseudo"] = self.reconstruct_bulk(p_pseudo, platform=False)
        if p_bulk is not None:
            out["b_rec_bulk"] = self.reconstruct_bulk(p_bulk, platform=True)
        return out

    def loss(self, tensors: dict, inference_outputs: dict, generative_outputs: dict) -> LossOutput:
        """The four HP-VaDE loss terms with the seed's weights, plus the regularisers.

        Every term is reported as a 0-d tensor in ``extra_metrics``. ``loss_proto`` is the
        negative-binomial NLL of the reference cells averaged over genes, ``loss_kl`` the
        latent KL to each cell's own component plus ``-log pi_c``, ``loss_bulk`` the safe
        proportion loss on pseudo-bulks, ``loss_bulk_recon`` the MSE of log1p CPM between
        reconstructed and observed bulks (pseudo-bulks plus, when given, real bulks).
        """
        cells = tensors.get(K.CELLS, tensors)
        x = self.select_genes(cells[REGISTRY_KEYS.X_KEY])
        labels = cells[REGISTRY_KEYS.LABELS_KEY].long().view(-1)
        iq, gq = inference_outputs, generative_outputs

        nll = -gq["px"].log_prob(x).sum(-1)  # per cell
        recon_per_cell = nll / self.n_input
        kl_z = gaussian_kl(iq["q_m"], iq["q_v"], self.prior_mu[labels], self.prior_logv[labels])
        log_pi = torch.log_softmax(self.prior_logits, dim=0)
        kl_per_cell = kl_z - log_pi[labels]
        loss_proto = recon_per_cell.mean()
        loss_kl = kl_per_cell.mean()

        zero = x.new_zeros(())
        loss_bulk = zero
        loss_recon_pseudo = zero
        loss_recon_bulk = zero
        loss_signature = zero
        loss_scale = zero
        metrics: dict[str, torch.Tensor] = {}
        pseudo = tensors.get(K.PSEUDO)
        if pseudo is not None and "p_pseudo" in iq:
            p_pred = iq["p_pseudo"]
            b = pseudo[K.BULK_X]
            b_rec = gq["b_rec_pseudo"]
            loss_bulk = safe_proportion_loss(p_pred, pseudo[K.P_TRUE])
            loss_recon_pseudo = F.mse_loss(torch.log1p(b_rec), torch.log1p(b))
            metrics["scale_ratio"] = (b_rec.sum() / b.sum().clamp(min=1e-30)).detach()
            metrics["p_pred_min"] = p_pred.min().detach()
            metrics["p_pred_max"] = p_pred.max().detach()
            if self.signature_logits.requires_grad:
                proto = self.prototypes().detach()
                loss_signature = F.mse_loss(torch.log1p(self.signature.T), torch.log1p(proto))
        bulk = tensors.get(K.BULK)
        if bulk is not None and "b_rec_bulk" in gq:
            loss_recon_bulk = F.mse_loss(
                torch.log1p(gq["b_rec_bulk"]), torch.log1p(bulk[K.BULK_X])
            )
            loss_scale = (self.log_gene_scale**2).mean()
        loss_bulk_recon = loss_recon_pseudo + self.real_bulk_weight * loss_recon_bulk

        total = (
            self.lambda_proto * (loss_proto + self.lambda_signature * loss_signature)
            + self.lambda_kl * loss_kl
            + self.lambda_bulk * loss_bulk
            + self.lambda_bulk_recon * loss_bulk_recon
            + self.lambda_scale * loss_scale
        )
        metrics.update(
            {
                "loss_proto": loss_proto,
                "loss_kl": loss_kl,
                "loss_bulk": loss_bulk,
                "loss_bulk_recon": loss_bulk_recon,
                "loss_bulk_recon_pseudo": loss_recon_pseudo,
                "loss_bulk_recon_real": loss_recon_bulk,
                "loss_signature": loss_signature,
                "loss_scale": loss_scale,
            }
        )
        return LossOutput(
            loss=total,
            reconstruction_loss=recon_per_cell,
            kl_local=kl_per_cell,
            extra_metrics={k: v.detach() for k, v in metrics.items()},
        )

    @torch.inference_mode()
    def sample(self, *args, **kwargs):
        """Not implemented: HP-VaDE is used for deconvolution, not for sampling cells."""
        raise NotImplementedError("HPVADEModule does not sample counts.")
