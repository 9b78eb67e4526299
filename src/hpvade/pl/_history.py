from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib import ticker

from ._utils import _finish, _setup_axes

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# scvi-tools names the total loss "train_loss_epoch" / "validation_loss" and every other
# term "<term>_train" / "<term>_validation"
_SPLITS = ("train", "validation")


def history(
    model: Any,
    *,
    keys: Sequence[str] | None = None,
    log: bool = True,
    ncols: int = 3,
    panel_size: tuple[float, float] = (2.8, 2.3),
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    save: str | None = None,
    return_fig: bool = False,
) -> Figure | None:
    """Every loss term per epoch, one panel per term, train and validation together.

    scvi-tools keeps the training history as a dict of one-column DataFrames indexed by
    epoch (``model.history``). The total loss is ``"train_loss_epoch"`` (or
    ``"train_loss"``) / ``"validation_loss"``; the other terms are ``"<term>_train"`` /
    ``"<term>_validation"`` (e.g. ``"loss_bulk_train"``). Each term gets one panel titled
    with its name, the train curve solid and the validation curve dashed.

    Parameters
    ----------
    model
        A trained model (anything with a ``history`` attribute, e.g.
        :class:`hpvade.HPVADE`), or its history dict itself.
    keys
        History keys to plot. Default: every key with ``"loss"`` in its name or starting
        with ``"kl_"``, except per-step keys (ending in ``"_step"``).
    log
        Logarithmic y axis on every panel whose values are all positive (a log axis cannot
        show values <= 0, so the other panels stay linear). ``False``: linear everywhere.
    ncols
        Number of panel columns.
    panel_size
        Size of one panel (inches).
    ax
        Axes to draw into, at least one per term. Default: a new figure.
    show
        Show the figure with :func:`matplotlib.pyplot.show`. Default: unless
        ``return_fig`` is set or ``ax`` is given.
    save
        Path to save the figure to (format from the extension).
    return_fig
        Return the figure instead of showing it.

    Returns
    -------
    matplotlib.figure.Figure | None
        The figure if ``return_fig``, else ``None``.

    Examples
    --------
    >>> import hpvade
    >>> model.train(bulk=bulk, max_epochs=50)  # doctest: +SKIP
    >>> hpvade.pl.history(model)  # doctest: +SKIP
    >>> hpvade.pl.history(  # doctest: +SKIP
    ...     model, keys=["loss_bulk_train", "loss_bulk_validation"]
    ... )
    """
    hist = model if isinstance(model, Mapping) else getattr(model, "history", None)
    if hist is None:
        raise TypeError("expected a model with a `history` attribute or a history dict")
    if not isinstance(hist, Mapping) or len(hist) == 0:
        raise ValueError("the training history is empty; train the model first")
    if keys is None:
        keys = [
            k for k in hist if ("loss" in k or k.startswith("kl_")) and not k.endswith("_step")
        ]
        if not keys:
            raise ValueError(f"no loss in the history (keys: {list(hist)})")
    else:
        missing = [k for k in keys if k not in hist]
        if missing:
            raise KeyError(f"keys {missing} are not in the history (keys: {list(hist)})")

    terms: dict[str, dict[str, pd.Series]] = {}
    for k in keys:
        term, split = _split_key(k)
        terms.setdefault(term, {})[split] = _as_series(hist[k], k)

    fig, axes = _setup_axes(ax, len(terms), ncols=ncols, panel_size=panel_size)
    for axis, (term, curves) in zip(axes, terms.items(), strict=True):
        values = []
        for split, series in curves.items():
            style = {"train": "-", "validation": "--"}.get(split, ":")
            axis.plot(
                series.index.to_numpy(),
                series.to_numpy(),
                linestyle=style,
                marker="o" if len(series) == 1 else None,
                markersize=3,
                label=split,
            )
            values.append(series.to_numpy())
        finite = np.concatenate(values)
        finite = finite[np.isfinite(finite)]
        if log and finite.size and np.all(finite > 0):
            _log_axis(axis, float(finite.min()), float(finite.max()))
        axis.set_title(term)
        axis.set_xlabel("epoch")
        axis.set_ylabel("loss")
        if len(curves) > 1 or next(iter(curves)) != "train":
            axis.legend(fontsize="small", frameon=False)
    return _finish(fig, show=show, save=save, return_fig=return_fig, ax_given=ax is not None)


# tick mantissas on a log axis, sparse to dense
_LOG_SUBS = (
    (1.0,),
    (1.0, 2.0, 5.0),
    (1.0, 2.0, 3.0, 5.0),
    (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0),
    (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0),
)


def _log_axis(axis: Axes, lo: float, hi: float) -> None:
    """Log y axis with plain-number labels (``0.02``, ``300``), at least 3 if possible."""
    axis.set_yscale("log")
    subs = _LOG_SUBS[-1]
    for candidate in _LOG_SUBS:
        if len(_log_ticks(lo, hi, candidate)) >= 3:
            subs = candidate
            break
    axis.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=subs, numticks=12))
    axis.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.yaxis.set_minor_formatter(ticker.NullFormatter())


def _log_ticks(lo: float, hi: float, subs: tuple[float, ...]) -> list[float]:
    """Return the ticks ``s * 10**e`` (``s`` in ``subs``) that lie in ``[lo, hi]``."""
    first, last = int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi)))
    ticks = [s * 10.0**e for e in range(first, last + 1) for s in subs]
    return [t for t in ticks if lo <= t <= hi]


def _split_key(key: str) -> tuple[str, str]:
    """Return ``(term, split)`` of a history key.

    ``"loss_bulk_train"`` -> ``("loss_bulk", "train")``; ``"train_loss_epoch"`` and
    ``"train_loss"`` -> ``("loss", "train")``; ``"validation_loss"`` -> ``("loss",
    "validation")``; a key with no split -> ``(key, key)``.
    """
    base = key.removesuffix("_epoch")
    for split in _SPLITS:
        if base.startswith(f"{split}_"):
            return base[len(split) + 1 :], split
        if base.endswith(f"_{split}"):
            return base[: -len(split) - 1], split
    return key, key


def _as_series(value: Any, key: str) -> pd.Series:
    """One history entry (scvi: a one-column DataFrame indexed by epoch) as a float Series."""
    if isinstance(value, pd.DataFrame):
        if value.shape[1] != 1:
            raise ValueError(f"history[{key!r}] has {value.shape[1]} columns, expected 1")
        value = value.iloc[:, 0]
    series = pd.Series(value)
    try:
        return series.astype(float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"history[{key!r}] is not numeric") from err
