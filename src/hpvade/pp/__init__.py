from ._genes import match_genes, normalize_cpm, select_genes

__all__ = ["match_genes", "normalize_cpm", "select_genes"]
