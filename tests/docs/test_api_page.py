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
    """Full names on the page: autosummary entries and py:data directives, each under the
    module of the ``module``/``currentmodule`` directive above it."""
    names: set[str] = set()
    module = "hpvade"
    for line in page.splitlines():
        if m := re.match(r"^\.\. (?:current)?module:: ([\w.]+)$", line):
            module = m.group(1)
        elif m := re.match(r"^   ((?:\w+\.)*\w+)$", line):
            names.add(f"{module}.{m.group(1)}")
        elif m := re.match(r"^\.\. py:data:: ([\w.]+)$", line):
            names.add(f"{module}.{m.group(1)}")
    return names


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
        elif getattr(hpvade.model, name, None) is obj and name != "HPVADE":
            # the model's building blocks are documented under hpvade.model
            expected.add(f"hpvade.model.{name}")
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


def _section(page: str, title: str) -> str:
    start = page.index(title)
    end = page.find("\n## ", start + 1)
    return page[start : end if end != -1 else None]


def test_the_model_stands_apart_from_its_internals(ext):
    page = ext.render_api_page("hpvade")
    model = _section(page, "## Model")
    head, _, internals = model.partition("### Model internals")
    assert re.findall(r"^   (\w+)$", head, flags=re.MULTILINE) == ["HPVADE"]
    assert ":template: model_class" in head
    assert {"HPVADEModule", "HPVADETrainingPlan", "PseudobulkSimulator"} <= set(
        re.findall(r"^   (\w+)$", internals, flags=re.MULTILINE)
    )


def test_the_model_page_lists_inherited_and_mixin_members(ext):
    import hpvade
    from hpvade.model._bulkmixin import BulkMixin

    members = ext.model_members("hpvade.HPVADE")
    methods, attributes = set(members["methods"]), set(members["attributes"])
    # scvi-tools' save/load/view_anndata_setup, as scvi-tools lists them on its model pages
    assert {"save", "load", "view_anndata_setup", "train", "setup_anndata"} <= methods
    assert {"history", "is_trained"} <= attributes
    # every public method of the bulk-side mixin, which HPVADE inherits
    mixin = {
        n for n in vars(BulkMixin) if not n.startswith("_") and callable(getattr(BulkMixin, n))
    }
    assert mixin, "BulkMixin has no public method"
    assert mixin <= methods
    assert {"get_proportions", "get_signature", "get_platform_scale"} <= methods
    # scvi-tools' plumbing and methods that do not apply to HP-VaDE stay off
    assert not {"differential_abundance", "get_normalized_expression", "transfer_fields"} & methods
    assert all(hasattr(hpvade.HPVADE, n) for n in methods | attributes)
    template = (DOCS / "_templates" / "autosummary" / "model_class.rst").read_text()
    assert ":inherited-members:" in template


def _getters():
    import hpvade

    for name in dir(hpvade.HPVADE):
        if name.startswith("get_") and callable(getattr(hpvade.HPVADE, name)):
            obj = getattr(hpvade.HPVADE, name)
            if getattr(obj, "__module__", "").startswith("hpvade"):
                yield name, obj


@pytest.mark.parametrize("section", ["Returns", "Examples"])
def test_every_public_getter_has_returns_and_an_example(section):
    import inspect

    lacking = [
        name
        for name, obj in _getters()
        if not re.search(rf"^{section}\n-+$", inspect.getdoc(obj) or "", flags=re.MULTILINE)
    ]
    if lacking:
        pytest.xfail(
            f"getters without a {section} section: {lacking} (docstrings in src/hpvade/model/)"
        )


def test_examples_import_from_public_modules_only():
    """No ``>>>`` line of a public docstring imports from a private module."""
    import inspect

    import hpvade

    objects = [hpvade.HPVADE, *(obj for _, obj in _getters())]
    for ns_name in ("pp", "tl", "pl", "data", "benchmark", "model"):
        ns = getattr(hpvade, ns_name, None) or __import__(f"hpvade.{ns_name}", fromlist=["_"])
        objects += [getattr(ns, n) for n in getattr(ns, "__all__", [])]
    private = []
    for obj in objects:
        for line in (inspect.getdoc(obj) or "").splitlines():
            code = line.strip()
            if code.startswith((">>>", "...")) and re.search(
                r"(from|import)\s+hpvade(\.\w+)*\._", code
            ):
                private.append((getattr(obj, "__qualname__", obj), code))
    if private:
        pytest.xfail(f"examples import from private modules: {private} (their owners' files)")


def test_landing_page_links_installation_user_guide_and_its_figure():
    index = (DOCS / "index.md").read_text()
    toctree = index[index.index("```{toctree}") :]
    for page in ("installation", "user-guide"):
        assert (DOCS / f"{page}.md").exists()
        assert f"\n{page}\n" in toctree
    figures = re.findall(r"```\{image\} (\S+)", index)
    assert figures, "the landing page has no figure"
    assert all((DOCS / f).exists() for f in figures)
    # the performance table states its settings and keeps the honest message
    assert "Performance at a glance" in index
    assert "typemean" in index
    assert "does not yet beat" in index
    install = (DOCS / "installation.md").read_text()
    assert install.index("pip install torch==2.13.0") < install.index("pip install .")


def test_build_script_is_nitpicky():
    script = (DOCS / "build.sh").read_text()
    assert " -W " in script
    assert " -n " in script
