from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from hpvade import pl
from hpvade.pl import _utils


@pytest.fixture
def shows(monkeypatch):
    calls = []
    monkeypatch.setattr(_utils.plt, "show", lambda: calls.append(1))
    return calls


def test_show_return_fig_and_ax_rules(bulk, shows):
    # default: shown, nothing returned
    assert pl.proportions(bulk) is None
    assert len(shows) == 1
    # return_fig: returned, not shown
    fig = pl.proportions(bulk, return_fig=True)
    assert fig is not None
    assert len(shows) == 1
    # into given axes: not shown unless asked
    _, ax = plt.subplots()
    assert pl.proportions(bulk, ax=ax) is None
    assert len(shows) == 1
    assert pl.proportions(bulk, ax=ax, show=True) is None
    assert len(shows) == 2
    # both: shown and returned
    assert pl.proportions(bulk, show=True, return_fig=True) is not None
    assert len(shows) == 3


def test_single_panel_rejects_several_axes(bulk):
    _, axes = plt.subplots(1, 2)
    with pytest.raises(TypeError, match="one matplotlib Axes"):
        pl.proportions(bulk, ax=axes)


def test_grid_hides_unused_cells():
    fig, axes = _utils._setup_axes(None, 5, ncols=3, panel_size=(2, 2))
    assert len(axes) == 5
    assert len(fig.axes) == 6
    assert [a.get_visible() for a in fig.axes] == [True] * 5 + [False]
    assert tuple(fig.get_size_inches()) == (6.0, 4.0)


def test_type_colors():
    assert len(set(_utils._type_colors([str(i) for i in range(10)], None))) == 10
    assert len(set(_utils._type_colors([str(i) for i in range(20)], None))) == 20
    assert len(set(_utils._type_colors([str(i) for i in range(40)], None))) == 40
    assert _utils._type_colors(["a", "b"], ["red", "blue"]) == ["#ff0000", "#0000ff"]
    assert _utils._type_colors(["a", "b"], "tab10") == ["#1f77b4", "#ff7f0e"]
    with pytest.raises(ValueError, match="2 colors for 3"):
        _utils._type_colors(["a", "b", "c"], ["red", "blue"])


def test_non_numeric_proportions_are_refused():
    with pytest.raises(ValueError, match="numeric"):
        pl.proportions(pd.DataFrame({"a": ["x", "y"]}), return_fig=True)
    with pytest.raises(TypeError, match="AnnData or a pandas DataFrame"):
        pl.proportions([[0.5, 0.5]], return_fig=True)
