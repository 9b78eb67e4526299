"""What the generative model adds: intervals of the fractions and each sample's expression."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

import hpvade
from hpvade.model._intervals import _local_state, expression_components, half_width, quantile_key


@pytest.fixture(scope="module")
def with_intervals(trained):
    model, ref, bulk = trained
    b = bulk.copy()
    p = model.get_proportions(b, quantiles=(0.05, 0.5, 0.95))
    return model, ref, b, p


def test_quantiles_bracket_the_fractions_and_lie_in_0_1(with_intervals):
    _, _, bulk, p = with_intervals
    lo = bulk.obsm["hpvade_proportions_q05"]
    hi = bulk.obsm["hpvade_proportions_q95"]
    mid = bulk.obsm["hpvade_proportions_q50"]
    assert lo.index.equals(p.index)
    assert list(lo.columns) == list(p.columns)
    assert (lo.to_numpy() >= 0).all()
    assert (hi.to_numpy() <= 1).all()
    assert (lo.to_numpy() <= p.to_numpy() + 1e-12).all()
    assert (hi.to_numpy() >= p.to_numpy() - 1e-12).all()
    np.testing.assert_allclose(mid.to_numpy(), p.to_numpy())
    # open intervals: every sample has some width, and they are narrower than [0, 1]
    width = (hi - lo).to_numpy()
    assert (width.sum(axis=1) > 0).all()
    assert width.mean() < 0.5


def test_intervals_cover_the_synthetic_truth(with_intervals):
    _, _, bulk, _ = with_intervals
    truth = hpvade.benchmark.truth_from_obs(bulk)
    lo = bulk.obsm["hpvade_proportions_q05"][truth.columns].to_numpy()
    hi = bulk.obsm["hpvade_proportions_q95"][truth.columns].to_numpy()
    t = truth.to_numpy()
    assert ((t >= lo - 1e-9) & (t <= hi + 1e-9)).mean() >= 0.8


def test_wider_level_gives_wider_intervals(trained):
    model, _, bulk = trained
    b = bulk.copy()
    model.get_proportions(b, quantiles=(0.25, 0.75, 0.025, 0.975))
    inner = b.obsm["hpvade_proportions_q75"] - b.obsm["hpvade_proportions_q25"]
    outer = b.obsm["hpvade_proportions_q97.5"] - b.obsm["hpvade_proportions_q2.5"]
    assert (outer.to_numpy() >= inner.to_numpy() - 1e-12).all()
    assert outer.to_numpy().mean() > inner.to_numpy().mean()


def test_a_sample_gets_the_same_interval_alone_or_in_a_batch(trained):
    model, _, bulk = trained
    b = bulk.copy()
    model.get_proportions(b, quantiles=(0.05, 0.95))
    one = bulk[[3]].copy()
    model.get_proportions(one, quantiles=(0.05, 0.95))
    for key in ("hpvade_proportions_q05", "hpvade_proportions_q95"):
        np.testing.assert_allclose(
            one.obsm[key].to_numpy(), b.obsm[key].iloc[[3]].to_numpy(), atol=1e-6
        )


def test_save_load_reproduces_intervals_and_expression(with_intervals, tmp_path):
    model, ref, bulk, _ = with_intervals
    model.save(tmp_path / "m", overwrite=True)
    loaded = hpvade.HPVADE.load(tmp_path / "m", adata=ref)
    b = bulk.copy()
    loaded.get_proportions(b, quantiles=(0.05, 0.5, 0.95))
    for key in ("hpvade_proportions_q05", "hpvade_proportions_q95"):
        np.testing.assert_allclose(b.obsm[key].to_numpy(), bulk.obsm[key].to_numpy(), atol=1e-6)
    t = model.cell_types_[0]
    before = model.get_cell_type_expression(bulk, t)
    after = loaded.get_cell_type_expression(bulk, t)
    np.testing.assert_allclose(after.to_numpy(), before.to_numpy(), rtol=1e-4, atol=1e-3)


def test_bad_quantiles_are_explained(trained):
    model, _, bulk = trained
    b = bulk.copy()
    with pytest.raises(ValueError, match="between 0 and 1"):
        model.get_proportions(b, quantiles=(0.0, 0.95))
    with pytest.raises(ValueError, match="method='refine'"):
        model.get_proportions(b, quantiles=(0.05, 0.95), method="head")
    with pytest.raises(ValueError, match="key_added"):
        model.get_proportions(b, quantiles=(0.05, 0.95), key_added=None)
    assert "hpvade_proportions_q05" not in b.obsm


def test_quantile_keys():
    assert quantile_key(0.05) == "q05"
    assert quantile_key(0.95) == "q95"
    assert quantile_key(0.5) == "q50"
    assert quantile_key(0.025) == "q2.5"


def _two_states(seed: int = 0):
    """Counts of 200 cells of one type in two states: 40 genes differ 4-fold between them."""
    rng = np.random.default_rng(seed)
    base = rng.gamma(1.0, 2.0, 300)
    a, b = base.copy(), base.copy()
    a[:40] *= 4.0
    b[40:80] *= 4.0
    state = np.repeat([0, 1], 100)
    mean = np.where(state[:, None] == 0, a, b)
    lib = rng.uniform(0.5, 2.0, 200)[:, None]  # library sizes vary 4-fold, as in cells
    return sparse.csr_matrix(rng.poisson(mean * lib).astype(np.float64)), state


def test_expression_components_are_the_dense_pca():
    X, _ = _two_states()
    z = expression_components(X, 5, seed=0)
    total = np.asarray(X.sum(axis=1)).ravel()
    L = np.log1p(X.toarray() * (np.median(total) / total[:, None]))
    u, s, _ = np.linalg.svd(L - L.mean(axis=0), full_matrices=False)
    dense = u[:, :5] * s[:5]
    # the same up to the sign of each component: compare the distances between cells
    d = ((z[:, None] - z[None]) ** 2).sum(-1)
    d_dense = ((dense[:, None] - dense[None]) ** 2).sum(-1)
    np.testing.assert_allclose(d, d_dense, rtol=1e-6, atol=1e-8)


def test_local_states_on_the_components_keep_to_one_state():
    X, state = _two_states()
    z = expression_components(X, 5, seed=0)
    for anchor in (3, 150):
        cells = _local_state(z, anchor, 50)
        assert (state[cells] == state[anchor]).mean() > 0.95


def test_conformal_multiplier_is_the_score_quantile():
    scores = np.arange(1, 100, dtype=float)  # 99 sorted scores
    assert half_width(scores, 0.9) == 90.0
    assert half_width(scores, 0.0) == 1.0
    assert half_width(scores, 1.0) == 99.0


def test_cell_type_expression_is_cpm_per_sample(trained):
    model, _, bulk = trained
    expr = model.get_cell_type_expression(bulk)
    assert set(expr) == set(model.cell_types_)
    for df in expr.values():
        assert df.shape == (bulk.n_obs, len(model.genes_))
        assert list(df.columns) == list(model.genes_)
        assert (df.to_numpy() >= 0).all()
        np.testing.assert_allclose(df.sum(axis=1).to_numpy(), 1e6, rtol=1e-5)
    one = model.get_cell_type_expression(bulk, model.cell_types_[1])
    np.testing.assert_allclose(one.to_numpy(), expr[model.cell_types_[1]].to_numpy(), rtol=1e-5)


def test_cell_type_expression_stays_near_the_type_and_moves_with_the_sample(trained):
    model, _, bulk = trained
    expr = model.get_cell_type_expression(bulk)
    sig = model.get_signature()
    for t, df in expr.items():
        base = np.log1p(sig[t].to_numpy())
        r = [np.corrcoef(np.log1p(row), base)[0, 1] for row in df.to_numpy()]
        assert min(r) > 0.9  # the type's own profile, moved within its states
    # samples differ: the decoder moves each sample's state
    some = expr[model.cell_types_[0]].to_numpy()
    assert np.abs(some - some.mean(axis=0)).max() > 0


def test_unknown_cell_type_is_explained(trained):
    model, _, bulk = trained
    with pytest.raises(ValueError, match="cell types"):
        model.get_cell_type_expression(bulk, "not a type")


def test_a_gene_raised_in_one_sample_is_raised_in_the_type_that_expresses_it(trained):
    model, _, bulk = trained
    sig = model.get_signature()
    t = model.cell_types_[0]
    share = sig[t] / sig.sum(axis=1)
    gene = share.idxmax()  # a marker of type t
    assert share[gene] > 0.5
    raised = bulk.copy()
    col = raised.var_names.get_loc(gene)
    raised.X[0, col] *= 3.0
    before = model.get_cell_type_expression(bulk, t)
    after = model.get_cell_type_expression(raised, t)
    fold = after.loc[bulk.obs_names[0], gene] / before.loc[bulk.obs_names[0], gene]
    assert fold > 1.8
    # the other samples are fitted alone: unchanged
    np.testing.assert_allclose(after.iloc[1:].to_numpy(), before.iloc[1:].to_numpy(), rtol=1e-6)
