"""Benchmarking: accuracy metrics, held-out pseudo-bulks and baselines without training.

The comparison harness with the peer methods lives outside the package, in
``benchmarks/run.py`` of the repository.
"""

from ._baselines import nnls_typemeans, typemean
from ._bootstrap import bootstrap
from ._metrics import ccc, evaluate, map_labels, pearson, truth_from_obs
from ._pseudobulk import pseudobulk, split_reference

__all__ = [
    "bootstrap",
    "ccc",
    "evaluate",
    "map_labels",
    "nnls_typemeans",
    "pearson",
    "pseudobulk",
    "split_reference",
    "truth_from_obs",
    "typemean",
]
