"""Plots (scanpy-style): proportions, predicted vs true proportions, training history."""

from ._history import history
from ._predicted_vs_true import predicted_vs_true
from ._proportions import proportions

__all__ = ["history", "predicted_vs_true", "proportions"]
