from __future__ import annotations

from importlib.resources import as_file, files

import anndata as ad
from anndata import AnnData

#: Seurat pbmc3k labels -> the flow-cytometry vocabulary of the PBMC bulks
PBMC_LABEL_MAPPING: dict[str, str] = {
    "Naive CD4 T": "CD4_T",
    "Memory CD4 T": "CD4_T",
    "CD8 T": "CD8_T",
    "B": "B",
    "NK": "NK",
    "CD14+ Mono": "Monocytes",
    "FCGR3A+ Mono": "Monocytes",
    "DC": "DC",
}


def _read(name: str) -> AnnData:
    with as_file(files("hpvade.data") / "_files" / name) as path:
        return ad.read_h5ad(path)


def pbmc3k_reference() -> AnnData:
    """10x PBMC 3k: 2,638 labelled cells x 2,000 variable genes, raw UMI counts.

    10x Genomics' public PBMC 3k data set (v1 chemistry), with the cell types of the standard
    Seurat tutorial in ``obs["cell_type"]`` (Naive CD4 T, Memory CD4 T, CD8 T, B, NK, CD14+
    Mono, FCGR3A+ Mono, DC, Platelet) and ``obs["cell_type_coarse"]``; ``obs``
    ``"nCount_RNA_allgenes"`` is the library size over all genes. Counts of the 2,000 Seurat
    variable genes were recovered exactly from the log-normalised matrix as
    ``expm1(x) * nCount_RNA / 1e4``. Source: rnabioco/clustifyr ``data/pbmc_matrix_small.rda``
    and ``data/pbmc_meta.rda`` (MIT licence). Shipped with hpvade (1.3 MB).

    Returns
    -------
    anndata.AnnData
        Counts (CSR) in ``X``.

    Examples
    --------
    >>> import hpvade
    >>> ref = hpvade.data.pbmc3k_reference()
    >>> ref.shape
    (2638, 2000)
    """
    return _read("pbmc3k_hvg2000_counts.h5ad")


def finotello2019_bulk() -> AnnData:
    """Nine PBMC bulk RNA-seq samples with flow-cytometry cell fractions (Finotello 2019).

    GEO GSE107572 (quanTIseq validation data): raw read counts of 19,423 genes (symbols) for
    nine PBMC samples of healthy donors, sequenced at 51-203 M reads. Flow-cytometry fractions
    of CD4 T, CD8 T, NK, B cells and monocytes (and the unmeasured rest) are in
    ``obs["true_*"]``; they are fractions of cells. Source: SergejRuff/QuasarDeconData
    ``data/GSE107572.rda`` (GPL-3 or later). Shipped with hpvade (1.1 MB). Map the pbmc3k labels
    onto these columns with :data:`hpvade.data.PBMC_LABEL_MAPPING`.

    Returns
    -------
    anndata.AnnData
        Counts (CSR) in ``X``.

    Examples
    --------
    >>> import hpvade
    >>> bulk = hpvade.data.finotello2019_bulk()
    >>> bulk.n_obs
    9
    """
    return _read("finotello2019_pbmc_counts.h5ad")
