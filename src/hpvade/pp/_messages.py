"""Pieces of the input checks' messages: names shown, plurals, warnings."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

#: how many names an error message shows
_N_SHOW = 5


def _show(names: Iterable[object], n: int = _N_SHOW) -> str:
    """Format the first ``n`` names for a message, with an ellipsis when there are more."""
    names = list(names)
    shown = ", ".join(repr(str(x)) for x in names[:n])
    return shown + (", ..." if len(names) > n else "")


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _have(n: int) -> str:
    return "has" if n == 1 else "have"


def _warn(message: str) -> None:
    # stacklevel 3: the warning points at whoever called check_reference / check_bulk
    warnings.warn(message, UserWarning, stacklevel=3)
