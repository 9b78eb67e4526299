"""The documented paths from hpvade's outputs to scanpy's own plots (docs/scanpy.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scanpy as sc


def test_obs_df_reads_proportion_columns_by_name(bulk):
    props = bulk.obsm["hpvade_proportions"]
    df = sc.get.obs_df(
        bulk,
        keys=["condition"],
        obsm_keys=[("hpvade_proportions", "B cells"), ("hpvade_proportions", "NK cells")],
    )
    assert list(df.columns) == [
        "condition",
        "hpvade_proportions-B cells",
        "hpvade_proportions-NK cells",
    ]
    np.testing.assert_allclose(df["hpvade_proportions-NK cells"], props["NK cells"])


def test_proportions_as_anndata_for_matrixplot(bulk):
    props = bulk.obsm["hpvade_proportions"]
    pa = sc.AnnData(props, obs=bulk.obs[["condition"]])
    assert list(pa.var_names) == list(props.columns)
    dp = sc.pl.matrixplot(pa, var_names=pa.var_names, groupby="condition", return_fig=True)
    # matrixplot's values are the group means of the proportions
    means = dp.values_df.loc[["treated", "ctrl"], list(props.columns)]
    expected = props.groupby(bulk.obs["condition"].to_numpy()).mean().loc[["treated", "ctrl"]]
    np.testing.assert_allclose(means.to_numpy(), expected.to_numpy())


def test_per_type_obs_columns_for_violin(bulk):
    props = bulk.obsm["hpvade_proportions"]
    obs = bulk.obs.join(props.add_prefix("hpvade_"))
    view = sc.AnnData(bulk.X, obs=obs, var=bulk.var)
    ax = sc.pl.violin(view, keys="hpvade_B cells", groupby="condition", show=False)
    axes = ax if isinstance(ax, list) else [ax]
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["treated", "ctrl"]
    # the user's AnnData is untouched by this path
    assert "hpvade_B cells" not in bulk.obs


@pytest.mark.slow
def test_latent_space_to_umap():
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=5.0, size=(3, 10))
    labels = np.repeat(["a", "b", "c"], 40)
    ref = sc.AnnData(
        np.zeros((120, 5), dtype=np.float32),
        obs=pd.DataFrame(
            {"cell_type": pd.Categorical(labels)}, index=[f"c{i}" for i in range(120)]
        ),
    )
    ref.obsm["X_hpvade"] = centers[np.repeat([0, 1, 2], 40)] + rng.normal(size=(120, 10))
    sc.pp.neighbors(ref, use_rep="X_hpvade", n_neighbors=10)
    sc.tl.umap(ref, random_state=0)
    assert ref.obsm["X_umap"].shape == (120, 2)
    # each cell's neighbours are of its own type: the latent space carries the labels
    conn = ref.obsp["connectivities"].tocsr()
    same = [np.mean(labels[conn[i].indices] == labels[i]) for i in range(120)]
    assert np.mean(same) > 0.95
    ax = sc.pl.umap(ref, color="cell_type", show=False)
    assert len(ax.collections[0].get_offsets()) == 120
