from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch
from scvi.train import TrainingPlan

if TYPE_CHECKING:
    from scvi.module.base import LossOutput

logger = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; training stopped before the parameters changed."""


class HPVADETrainingPlan(TrainingPlan):
    """:class:`~scvi.train.TrainingPlan` that guards every loss term and records diagnostics.

    Before each optimiser step, the total loss and every term in ``extra_metrics`` are checked:
    a non-finite value raises :class:`NonFiniteLossError` naming the term, the epoch and the
    step, so the parameters are never updated with NaN gradients. The first training batch's
    diagnostics of the seed (scale ratio ``sum(b_rec) / sum(b)``, range of the predicted
    proportions, every loss term) are logged at INFO and kept in ``first_batch`` (and on
    the module, from where the model copies them into ``model.diagnostics_``).
    """

    def __init__(self, module, **kwargs):
        super().__init__(module, **kwargs)
        self.first_batch: dict[str, float] | None = None
        self._sums: dict[str, dict] = {}
        module.first_batch = None

    def _check_finite(self, loss_output: LossOutput, mode: str) -> None:
        # the named terms first: a NaN term makes the total NaN too, and the term is the news
        terms = {**loss_output.extra_metrics, "loss": loss_output.loss}
        for name, value in terms.items():
            if isinstance(value, torch.Tensor) and not torch.isfinite(value).all():
                raise NonFiniteLossError(
                    f"The {mode} loss term {name!r} is {value.item()} at epoch "
                    f"{self.current_epoch}, step {self.global_step}. Training was stopped "
                    "before the parameters were updated. Check the inputs for NaN/Inf or "
                    "extreme values, or lower the learning rate (plan_kwargs={'lr': ...})."
                )

    def _accumulate(self, loss_output: LossOutput, mode: str) -> None:
        """Add this step's terms to the epoch sums.

        They are logged once per epoch: per-step ``self.log`` calls of a dozen metrics cost
        more than a small model's step.
        """
        sums = self._sums.setdefault(mode, {})
        n = loss_output.n_obs_minibatch
        for key, value in {"loss": loss_output.loss, **loss_output.extra_metrics}.items():
            sums[key] = sums.get(key, 0.0) + value.detach()
        sums["_steps"] = sums.get("_steps", 0) + 1
        self.log(
            f"{mode}_loss",
            loss_output.loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=n,
            sync_dist=self.use_sync_dist,
        )

    def _log_epoch(self, mode: str) -> None:
        sums = self._sums.pop(mode, None)
        if not sums:
            return
        steps = sums.pop("_steps")
        sums.pop("loss")
        self.log_dict(
            {f"{key}_{mode}": float(value / steps) for key, value in sums.items()},
            on_step=False,
            on_epoch=True,
            sync_dist=self.use_sync_dist,
        )

    def on_train_epoch_end(self) -> None:
        """Log the epoch means of every loss term (``model.history["loss_bulk_train"]``...)."""
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        """Log the epoch means of the validation terms."""
        self._log_epoch("validation")

    def training_step(self, batch, batch_idx):
        """One optimisation step on cells, pseudo-bulks and real bulks."""
        _, _, loss_output = self.forward(batch, loss_kwargs=self.loss_kwargs)
        self._check_finite(loss_output, "training")
        if self.first_batch is None:
            self.first_batch = {
                k: float(v) for k, v in loss_output.extra_metrics.items() if v.dim() == 0
            }
            self.first_batch["loss"] = float(loss_output.loss.detach())
            self.module.first_batch = self.first_batch
            fb = self.first_batch
            logger.info(
                "First batch: scale ratio sum(b_rec)/sum(b) = %.4f; predicted proportions in "
                "[%.4f, %.4f]; loss terms: %s",
                fb.get("scale_ratio", float("nan")),
                fb.get("p_pred_min", float("nan")),
                fb.get("p_pred_max", float("nan")),
                ", ".join(f"{k}={v:.4g}" for k, v in fb.items() if k.startswith("loss")),
            )
        self._accumulate(loss_output, "train")
        return loss_output.loss

    def validation_step(self, batch, batch_idx):
        """Validation losses on held-out cells and a fixed set of pseudo-bulks."""
        _, _, loss_output = self.forward(batch, loss_kwargs=self.loss_kwargs)
        self._check_finite(loss_output, "validation")
        self._accumulate(loss_output, "validation")
