"""hpvade: cell-type proportions of bulk RNA-seq from a labelled single-cell reference."""

from importlib.metadata import PackageNotFoundError, version

from . import benchmark, data, pl, pp, tl
from .model import HPVADE, HPVADEModule

try:
    __version__ = version("hpvade")
except PackageNotFoundError:  # pragma: no cover - source tree without install
    __version__ = "0.0.0"

__all__ = ["HPVADE", "HPVADEModule", "benchmark", "data", "pl", "pp", "tl", "__version__"]
