from ._genes import match_genes, normalize_cpm, select_genes
from ._validate import InputKeyError, check_bulk, check_reference, check_shared_genes

__all__ = [
    "InputKeyError",
    "check_bulk",
    "check_reference",
    "check_shared_genes",
    "match_genes",
    "normalize_cpm",
    "select_genes",
]
