from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

CELL_TYPES = ["B cells", "T cells", "NK cells", "Monocytes"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def bulk() -> AnnData:
    """8 bulk samples x 30 genes with Dirichlet proportions in obsm and a condition in obs."""
    rng = np.random.default_rng(0)
    n = 8
    props = rng.dirichlet(np.ones(len(CELL_TYPES)), size=n)
    names = [f"s{i}" for i in range(n)]
    adata = AnnData(
        X=rng.poisson(5.0, size=(n, 30)).astype(np.float32),
        obs=pd.DataFrame(
            {
                "condition": pd.Categorical(
                    ["ctrl", "treated"] * (n // 2), categories=["treated", "ctrl"]
                ),
                "age": np.arange(n, 0, -1, dtype=float),
            },
            index=names,
        ),
    )
    adata.obsm["hpvade_proportions"] = pd.DataFrame(props, index=names, columns=CELL_TYPES)
    return adata
