"""Example data: a synthetic simulator and the bundled PBMC reference and bulks."""

from ._example import PBMC_LABEL_MAPPING, finotello2019_bulk, pbmc3k_reference
from ._synthetic import synthetic

__all__ = ["PBMC_LABEL_MAPPING", "finotello2019_bulk", "pbmc3k_reference", "synthetic"]
