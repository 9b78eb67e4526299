from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hpvade import pl


def _entry(key: str, values) -> pd.DataFrame:
    """One history entry as scvi-tools stores it: one column named after the key."""
    return pd.DataFrame({key: values}, index=pd.Index(np.arange(len(values)), name="epoch"))


@pytest.fixture
def hist() -> dict[str, pd.DataFrame]:
    epochs = np.arange(10)
    decay = np.exp(-epochs / 3)
    keys = {
        "train_loss_step": 5 + decay,
        "train_loss_epoch": 5 + 10 * decay,
        "validation_loss": 6 + 10 * decay,
        "loss_bulk_train": 0.5 * decay + 0.01,
        "loss_bulk_validation": 0.6 * decay + 0.02,
        "loss_proto_train": 300 + 100 * decay,
        "loss_kl_train": 2 * decay,
        "loss_bulk_recon_train": decay - 0.5,  # negative values: stays linear
        "elbo_train": 100 + decay,
        "lr-Adam": np.full(10, 1e-3),
    }
    return {k: _entry(k, v) for k, v in keys.items()}


class _FakeModel:
    def __init__(self, history):
        self.history = history


def test_one_panel_per_term(hist):
    fig = pl.history(_FakeModel(hist), return_fig=True)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    titles = [ax.get_title() for ax in axes]
    assert titles == ["loss", "loss_bulk", "loss_proto", "loss_kl", "loss_bulk_recon"]
    lines = {ax.get_title(): ax.get_lines() for ax in axes}
    # train + validation where both exist
    assert [len(lines[t]) for t in titles] == [2, 2, 1, 1, 1]
    assert [ln.get_linestyle() for ln in lines["loss_bulk"]] == ["-", "--"]
    np.testing.assert_allclose(
        lines["loss_bulk"][1].get_ydata(), hist["loss_bulk_validation"].iloc[:, 0]
    )
    np.testing.assert_allclose(lines["loss"][0].get_xdata(), np.arange(10))
    scales = {ax.get_title(): ax.get_yscale() for ax in axes}
    assert scales == {
        "loss": "log",
        "loss_bulk": "log",
        "loss_proto": "log",
        "loss_kl": "log",
        "loss_bulk_recon": "linear",
    }
    assert all(ax.get_xlabel() == "epoch" for ax in axes)
    # 5 panels on a 3-column grid: one hidden cell
    assert len(fig.axes) == 6


def test_keys_log_false_and_dict_input(hist):
    fig = pl.history(hist, keys=["loss_kl_train", "elbo_train"], log=False, return_fig=True)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["loss_kl", "elbo"]
    assert [ax.get_yscale() for ax in axes] == ["linear", "linear"]


def test_single_epoch_is_visible():
    fig = pl.history({"loss_bulk_train": _entry("loss_bulk_train", [0.3])}, return_fig=True)
    (line,) = fig.axes[0].get_lines()
    assert line.get_marker() == "o"


def test_log_ticks_three_to_seven():
    from hpvade.pl._history import _log_ticks

    assert _log_ticks(0.035, 0.51, (1.0, 2.0, 5.0)) == pytest.approx([0.05, 0.1, 0.2, 0.5])
    # a range under one decade: (1, 2, 5) gives 2 ticks, so the axis uses (1, 2, 3, 5)
    hist = {"loss_bulk_train": _entry("loss_bulk_train", [0.012, 0.006, 0.0023])}
    fig = pl.history(hist, return_fig=True)
    fig.canvas.draw()
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert [float(s) for s in labels if lo <= float(s) <= hi] == [0.003, 0.005, 0.01]


def test_key_names_of_scvi_and_hpvade():
    from hpvade.pl._history import _split_key

    assert _split_key("train_loss_epoch") == ("loss", "train")
    assert _split_key("train_loss") == ("loss", "train")
    assert _split_key("validation_loss") == ("loss", "validation")
    assert _split_key("loss_bulk_recon_real_train") == ("loss_bulk_recon_real", "train")
    assert _split_key("kl_local_validation") == ("kl_local", "validation")
    assert _split_key("elbo") == ("elbo", "elbo")


def test_default_keys_skip_diagnostics_and_steps():
    hist = {
        k: _entry(k, [1.0, 0.5])
        for k in [
            "train_loss",
            "train_loss_step",
            "scale_ratio_train",
            "p_pred_min_train",
            "loss_bulk_train",
            "kl_local_train",
            "lr-Adam",
        ]
    }
    fig = pl.history(hist, return_fig=True)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["loss", "loss_bulk", "kl_local"]


def test_errors(hist):
    with pytest.raises(ValueError, match="empty"):
        pl.history({})
    with pytest.raises(KeyError, match="nope"):
        pl.history(hist, keys=["nope"])
    with pytest.raises(TypeError, match="history"):
        pl.history(object())


def test_log_axis_labels_are_plain_numbers(hist):
    fig = pl.history(hist, keys=["loss_bulk_train"], return_fig=True)
    ax = fig.axes[0]
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    lo, hi = ax.get_ylim()
    shown = [float(s) for s in labels if lo <= float(s) <= hi]
    assert shown == [0.05, 0.1, 0.2, 0.5]  # values from 0.035 to 0.51
