"""The API page of the docs is generated from the ``__all__`` lists (docs/_ext/hpvade_docs.py)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")

DOCS = Path(__file__).parents[2] / "docs"


@pytest.fixture(scope="module")
def ext():
    spec = importlib.util.spec_from_file_location("hpvade_docs", DOCS / "_ext" / "hpvade_docs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["hpvade_docs"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["hpvade_docs"]


def _documented(page: str) -> set[str]:
    """Full names on the page: autosummary entries and py:data directives, under `hpvade`."""
    names = set(re.findall(r"^   ((?:\w+\.)*\w+)$", page, flags=re.MULTILINE))
    names |= set(re.findall(r"^\.\. py:data:: ([\w.]+)$", page, flags=re.MULTILINE))
    return {f"hpvade.{n}" for n in names}


def test_every_public_name_is_on_the_api_page(ext):
    import hpvade

    page = ext.render_api_page("hpvade")
    documented = _documented(page)
    expected = set()
    for name in hpvade.__all__:
        obj = getattr(hpvade, name)
        if name.startswith("_"):
            continue
        if hasattr(obj, "__all__") and hasattr(obj, "__path__"):  # a namespace
            expected |= {f"hpvade.{name}.{n}" for n in obj.__all__}
        else:
            expected.add(f"hpvade.{name}")
    assert expected, "hpvade.__all__ is empty"
    assert expected <= documented, sorted(expected - documented)
    # the plotting namespace is there with its three functions
    assert {"hpvade.pl.proportions", "hpvade.pl.predicted_vs_true", "hpvade.pl.history"} <= (
        documented
    )
    assert "__version__" not in page


def test_notebooks_are_copied_with_python_metadata(ext, tmp_path):
    src, dst = tmp_path / "notebooks", tmp_path / "docs" / "tutorials"
    src.mkdir()
    nb = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (src / "01_quickstart.ipynb").write_text(json.dumps(nb))
    (dst).mkdir(parents=True)
    (dst / "stale.ipynb").write_text("{}")
    assert ext.copy_notebooks(src, dst) == ["01_quickstart.ipynb"]
    assert sorted(p.name for p in dst.iterdir()) == ["01_quickstart.ipynb"]
    meta = json.loads((dst / "01_quickstart.ipynb").read_text())["metadata"]
    assert meta["language_info"]["name"] == "python"
    assert meta["kernelspec"]["name"] == "python3"
    # no notebooks folder at all: nothing copied, no error
    assert ext.copy_notebooks(tmp_path / "absent", dst) == []
    assert list(dst.iterdir()) == []
