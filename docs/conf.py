"""Sphinx configuration of the hpvade docs (build: ``docs/build.sh``)."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent
# the source tree wins over an installed copy, so the docs describe this checkout
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(HERE / "_ext"))

import warnings  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
# sphinx-autodoc-typehints 3.6 on Sphinx 9 warns at every docstring; not ours to fix
warnings.filterwarnings("ignore", message=".*set_application.*is deprecated")

from hpvade_docs import (  # noqa: E402
    MODELS,
    copy_notebooks,
    model_members,
    render_api_page,
    write_if_changed,
)

# -- project -------------------------------------------------------------------------------

project = "hpvade"
author = "hpvade developers"
copyright = f"{datetime.now():%Y}, {author}"
try:
    release = version("hpvade")
except PackageNotFoundError:
    import hpvade

    release = hpvade.__version__
version = ".".join(release.split(".")[:2])

# -- generated sources: API page from __all__, tutorials from ../notebooks ----------------

# autosummary stubs are rewritten from scratch, so none survives a name leaving __all__
shutil.rmtree(HERE / "generated", ignore_errors=True)
write_if_changed(HERE / "api.md", render_api_page("hpvade"))
NOTEBOOKS = copy_notebooks(ROOT / "notebooks", HERE / "tutorials")

# -- extensions ----------------------------------------------------------------------------

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "matplotlib.sphinxext.plot_directive",
    "sphinx_autodoc_typehints",  # after napoleon
    "sphinxcontrib.bibtex",
    "hpvade_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
master_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints", "_ext"]

# autodoc / autosummary / napoleon / typehints
autosummary_generate = True
autosummary_imported_members = True
# the model's page (template autosummary/model_class.rst) lists its inherited members too
autosummary_context = {
    "model_members": {f"hpvade.{m}": model_members(f"hpvade.{m}") for m in MODELS}
}
autodoc_member_order = "groupwise"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "description"  # sphinx_autodoc_typehints puts the types there
typehints_defaults = "braces"
always_document_param_types = True
# ":rtype: None" is noise, and appended after a closing doctest it breaks the markup
typehints_document_rtype_none = False
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_include_init_with_doc = False
napoleon_use_rtype = True
napoleon_use_param = True
default_role = "literal"

# myst / myst-nb: notebooks are rendered with their stored outputs, never executed here
myst_enable_extensions = ["colon_fence", "dollarmath", "amsmath", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"
nb_merge_streams = True

# plot directive (docs/plotting.md): figures drawn at build time
plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
plot_rcparams = {"figure.max_open_warning": 0}

# bibliography
bibtex_bibfiles = ["references.bib"]
bibtex_reference_style = "author_year"
bibtex_default_style = "plain"

# intersphinx: needs the network. `HPVADE_DOCS_INTERSPHINX=0/1` forces it off/on; by default
# it is on when docs.python.org answers, so that an offline `sphinx-build -W` still passes.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable/", None),
    "pandas": ("https://pandas.pydata.org/pandas-docs/stable/", None),
    "anndata": ("https://anndata.readthedocs.io/en/stable/", None),
    "scanpy": ("https://scanpy.readthedocs.io/en/stable/", None),
    "scvi": ("https://docs.scvi-tools.org/en/stable/", None),
    "torch": ("https://docs.pytorch.org/docs/stable/", None),
    "matplotlib": ("https://matplotlib.org/stable/", None),
}


def _online(host: str = "docs.python.org", timeout: float = 3.0) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


_intersphinx = os.environ.get("HPVADE_DOCS_INTERSPHINX")
if _intersphinx == "0" or (_intersphinx is None and not _online()):
    intersphinx_mapping = {}
    print("hpvade docs: offline, intersphinx links disabled")
intersphinx_timeout = 10

# nitpicky: every cross-reference of the project must resolve (docs/build.sh passes -n).
# Left out: third-party targets, which resolve through intersphinx when online and cannot
# offline, and the few that do not resolve even online (types that scvi-tools' and
# sphinx-autodoc-typehints' docstrings name but no inventory lists).
nitpicky = True
nitpick_ignore = [
    ("py:class", "lightning.pytorch.core.LightningDataModule"),
    ("py:class", "lightning.pytorch.core.datamodule.LightningDataModule"),
    ("py:class", "AnnOrMuData"),  # a type alias of scvi-tools' save/load signatures
    ("py:data", "Ellipsis"),
]
if not intersphinx_mapping:
    nitpick_ignore_regex = [
        (r"py:.*", r"(numpy|pandas|anndata|mudata|scanpy|scvi|torch|matplotlib|scipy)(\..*)?"),
        (r"py:.*", r"(collections\.abc|typing|random|pathlib|os)(\..*)?"),
        (r"py:class", r"AnnData"),  # a bare name in a type hint: anndata.AnnData online
    ]
# Project references the docs cannot fix: they are in docstrings of src/hpvade/model/ and
# src/hpvade/pp/, which their owners are changing; remove each once its docstring is fixed.
nitpick_ignore += [
]

# -- html ----------------------------------------------------------------------------------

html_theme = "sphinx_book_theme"
html_title = "hpvade"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_js_files = ["nowrap.js"]
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_show_sourcelink = False
