from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scvi

import hpvade

from ..conftest import TRAIN_KW

LOSS_TERMS = ["loss_proto", "loss_kl", "loss_bulk", "loss_bulk_recon"]


def test_proportions_are_a_simplex_and_written_to_obsm(trained):
    model, _, bulk = trained
    bulk = bulk.copy()
    props = model.get_proportions(bulk)
    assert (props.to_numpy() >= 0).all()
    np.testing.assert_allclose(props.sum(axis=1), 1.0, atol=1e-5)
    stored = bulk.obsm["hpvade_proportions"]
    assert isinstance(stored, pd.DataFrame)
    assert stored.index.equals(bulk.obs_names)
    assert list(stored.columns) == ["type_0", "type_1", "type_2", "type_3"]
    pd.testing.assert_frame_equal(stored, props)


def test_key_added_and_no_write(trained):
    model, _, bulk = trained
    bulk = bulk.copy()
    model.get_proportions(bulk, key_added="mine")
    assert "mine" in bulk.obsm
    assert "hpvade_proportions" not in bulk.obsm
    model.get_proportions(bulk, key_added=None)
    assert set(bulk.obsm) == {"true_proportions", "mine"}


def test_synthetic_accuracy(trained):
    model, _, bulk = trained
    props = model.get_proportions(bulk.copy())
    truth = bulk.obsm["true_proportions"][props.columns]
    r = np.corrcoef(props.to_numpy().ravel(), truth.to_numpy().ravel())[0, 1]
    mae = np.abs(props.to_numpy() - truth.to_numpy()).mean()
    assert r >= 0.95, r
    assert mae < 0.05, mae


def test_refine_improves_on_the_head_and_head_is_available(trained):
    model, _, bulk = trained
    truth = bulk.obsm["true_proportions"]
    err = {}
    for method in ("head", "refine"):
        props = model.get_proportions(bulk.copy(), key_added=None, method=method)
        np.testing.assert_allclose(props.sum(axis=1), 1.0, atol=1e-5)
        assert (props.to_numpy() >= 0).all()
        err[method] = np.abs(props.to_numpy() - truth[props.columns].to_numpy()).mean()
    # the synthetic bulks are sums of reference-like cells: the signature fit is exact there
    assert err["refine"] < err["head"], err
    with pytest.raises(ValueError, match="method must be"):
        model.get_proportions(bulk.copy(), method="nnls")


def test_a_sample_gets_the_same_fractions_alone_or_in_a_batch(trained):
    model, _, bulk = trained
    together = model.get_proportions(bulk.copy(), key_added=None)
    for i in (0, 7, bulk.n_obs - 1):
        alone = model.get_proportions(bulk[i : i + 1].copy(), key_added=None)
        np.testing.assert_allclose(alone.sum(axis=1), 1.0, atol=1e-9)
        assert np.abs(alone.to_numpy() - together.to_numpy()[i : i + 1]).max() <= 0.01
    # and with other samples in another order
    half = bulk[::-2].copy()
    part = model.get_proportions(half, key_added=None)
    np.testing.assert_allclose(
        part.to_numpy(), together.loc[part.index].to_numpy(), rtol=0, atol=1e-6
    )


def test_refine_does_not_depend_on_the_heads_start(trained, monkeypatch):
    model, _, bulk = trained
    before = model.get_proportions(bulk.copy(), key_added=None)
    # a head that says "uniform" for every sample: the robust first step sets the levels
    flat = np.full((bulk.n_obs, len(model.cell_types_)), 1 / len(model.cell_types_))
    monkeypatch.setattr(model, "_predict", lambda cpm, batch_size: flat.copy())
    after = model.get_proportions(bulk.copy(), key_added=None)
    assert np.abs(after.to_numpy() - before.to_numpy()).max() < 0.02


def test_refine_uses_the_platform_fit_of_train(trained):
    from hpvade.model._bulk import fit_samples

    model, _, bulk = trained
    cpm = model._bulk_cpm(bulk, layer=None)
    scale = model.get_platform_scale()
    weights = model.get_gene_weights()
    assert scale.index.tolist() == model.genes_ == weights.index.tolist()
    assert abs(np.log(scale).mean()) < 1e-5  # geometric mean 1
    assert abs(weights.mean() - 1) < 1e-5
    assert np.log(scale).std() > 0.01  # a scale was fitted, not left at ones
    assert weights.max() > 2 * weights.min()  # and robust weights, not equal ones
    assert model.diagnostics_["platform"]["n_bulks"] == bulk.n_obs
    # what the getters return is what get_proportions uses
    default = model.get_proportions(bulk.copy(), key_added=None)
    head = model.get_proportions(bulk.copy(), key_added=None, method="head").to_numpy()
    by_hand, _ = fit_samples(
        cpm,
        model.get_signature().to_numpy(),
        model.module.mrna_content.detach().cpu().double().numpy(),
        head,
        scale=scale.to_numpy(),
        weights=weights.to_numpy(),
    )
    np.testing.assert_allclose(default.to_numpy(), by_hand, rtol=0, atol=1e-6)
    flat, _ = fit_samples(
        cpm,
        model.get_signature().to_numpy(),
        model.module.mrna_content.detach().cpu().double().numpy(),
        head,
        scale=np.ones(len(scale)),
        weights=weights.to_numpy(),
    )
    assert np.abs(flat - by_hand).max() > 1e-3


def test_reordering_bulk_genes_changes_nothing(trained):
    model, _, bulk = trained
    perm = np.random.default_rng(1).permutation(bulk.n_vars)
    a = model.get_proportions(bulk.copy(), key_added=None)
    b = model.get_proportions(bulk[:, perm].copy(), key_added=None)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=0, atol=1e-6)


def test_missing_bulk_genes_warn_with_count_and_still_work(trained):
    model, _, bulk = trained
    drop = model.genes_[:7]
    sub = bulk[:, ~bulk.var_names.isin(drop)].copy()
    with pytest.warns(UserWarning, match="7 of the model's"):
        props = model.get_proportions(sub, key_added=None)
    np.testing.assert_allclose(props.sum(axis=1), 1.0, atol=1e-5)
    full = model.get_proportions(bulk.copy(), key_added=None)
    assert np.abs(props.to_numpy() - full.to_numpy()).max() < 0.1


def test_mrna_fractions_follow_mrna_content(trained):
    model, _, bulk = trained
    cells = model.get_proportions(bulk.copy(), key_added=None)
    mrna = model.get_proportions(bulk.copy(), key_added=None, kind="mrna")
    m = model.get_mrna_content().to_numpy()
    expected = cells.to_numpy() * m
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(mrna.to_numpy(), expected, atol=1e-5)
    # the synthetic types carry 1, 1.5, 2, 2.5 units of mRNA: the learnt order matches
    assert np.all(np.diff(m) > 0), m
    with pytest.raises(ValueError, match="kind must be"):
        model.get_proportions(bulk.copy(), kind="rna")


def test_signature_update_at_train_with_five_samples_per_type(trained, synthetic_data):
    model, _, bulk = trained
    n_types = len(model.cell_types_)
    assert bulk.n_obs >= 5 * n_types  # 24 bulks, 4 types: train updated the signature
    assert model.diagnostics_["platform"]["signature_adapted"]
    ref, _ = synthetic_data
    scvi.settings.seed = 0
    hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
    off = hpvade.HPVADE(ref)
    off.train(bulk=bulk, adapt=False, max_epochs=15, **TRAIN_KW)
    assert not off.diagnostics_["platform"]["signature_adapted"]
    truth = bulk.obsm["true_proportions"][model.cell_types_].to_numpy()
    p_on = model.get_proportions(bulk.copy(), key_added=None).to_numpy()
    p_off = off.get_proportions(bulk.copy(), key_added=None).to_numpy()
    assert np.abs(p_on - p_off).max() > 1e-4
    assert np.abs(p_on - truth).mean() < np.abs(p_off - truth).mean() + 0.005


def test_measured_mrna_content_replaces_the_learnt_one(trained):
    model, _, bulk = trained
    learnt = model.get_mrna_content()
    truth = bulk.obsm["true_proportions"][learnt.index].to_numpy()
    default = model.get_proportions(bulk.copy(), key_added=None)
    same = model.get_proportions(bulk.copy(), key_added=None, mrna_content=learnt * 3.0)
    np.testing.assert_allclose(same.to_numpy(), default.to_numpy(), atol=1e-12)  # ratios only
    # a content twice as large for one type halves its cells against every other type
    doubled = learnt.copy()
    doubled.iloc[0] *= 2.0
    half = model.get_proportions(bulk.copy(), key_added=None, mrna_content=doubled.to_dict())
    ratio = (half.iloc[:, 0] / half.iloc[:, 1]) / (default.iloc[:, 0] / default.iloc[:, 1])
    np.testing.assert_allclose(ratio, 0.5, rtol=1e-9)
    np.testing.assert_allclose(half.sum(axis=1), 1.0, atol=1e-12)
    # mRNA fractions do not depend on it
    mrna = model.get_proportions(bulk.copy(), key_added=None, kind="mrna")
    mrna_doubled = model.get_proportions(
        bulk.copy(), key_added=None, kind="mrna", mrna_content=doubled
    )
    np.testing.assert_allclose(mrna.to_numpy(), mrna_doubled.to_numpy(), atol=1e-12)
    # wrong contents (every type alike; the synthetic ones are 1 : 1.5 : 2 : 2.5) cost accuracy
    flat = model.get_proportions(bulk.copy(), key_added=None, mrna_content=learnt * 0 + 1)
    mae = {
        "learnt": np.abs(default.to_numpy() - truth).mean(),
        "flat": np.abs(flat.to_numpy() - truth).mean(),
    }
    assert mae["flat"] > mae["learnt"] + 0.02, mae


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda c: c.drop(c.index[0]), "missing"),
        (lambda c: pd.concat([c, pd.Series({"Tcell": 1.0})]), "unknown"),
        (lambda c: c.where(c.index != c.index[0], 0.0), "positive, finite"),
        (lambda c: c.where(c.index != c.index[0], np.nan), "positive, finite"),
        (lambda c: c.astype(object).where(c.index != c.index[0], "high"), "positive, finite"),
    ],
)
def test_invalid_mrna_content_is_refused_before_any_work(trained, change, match):
    model, _, shared = trained
    bulk = shared.copy()
    keys = set(bulk.obsm)
    with pytest.raises(ValueError, match=match):
        model.get_proportions(bulk, mrna_content=change(model.get_mrna_content()))
    assert set(bulk.obsm) == keys  # nothing written
    np.testing.assert_array_equal(bulk.X, shared.X)


def test_save_load_identical_proportions(trained, tmp_path):
    model, ref, bulk = trained
    before = model.get_proportions(bulk.copy(), key_added=None)
    model.save(tmp_path / "m", overwrite=True)
    loaded = hpvade.HPVADE.load(tmp_path / "m", adata=ref)
    after = loaded.get_proportions(bulk.copy(), key_added=None)
    pd.testing.assert_frame_equal(before, after, check_exact=True)
    assert loaded.genes_ == model.genes_
    assert loaded.diagnostics_["first_batch"] == model.diagnostics_["first_batch"]


def test_history_has_every_loss_term_per_epoch(trained):
    model, _, _ = trained
    for term in LOSS_TERMS:
        values = model.history[f"{term}_train"].to_numpy(dtype=float).ravel()
        assert len(values) == 15
        assert np.isfinite(values).all()
    bulk_loss = model.history["loss_bulk_train"].to_numpy(dtype=float).ravel()
    assert bulk_loss[-1] < bulk_loss[0] / 2


def test_early_stopping_on_the_validation_pseudobulk_loss(synthetic_data):
    """scvi-tools' early stopping works on hpvade's validation pseudo-bulk loss."""
    ref, bulk = synthetic_data
    ref = ref.copy()
    scvi.settings.seed = 0
    hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
    model = hpvade.HPVADE(ref)
    model.train(
        bulk=bulk,
        max_epochs=200,
        train_size=0.9,
        early_stopping=True,
        early_stopping_monitor="loss_bulk_validation",
        early_stopping_patience=2,
        early_stopping_min_delta=1e-4,
        **TRAIN_KW,
    )
    curve = model.history["loss_bulk_validation"].to_numpy().ravel()
    assert 3 <= curve.size < 200  # stopped by the criterion, not by max_epochs
    assert curve[-1] < curve[0]
    p = model.get_proportions(bulk, key_added=None)
    assert np.allclose(p.sum(axis=1), 1.0)


def test_first_batch_diagnostics(trained):
    model, _, _ = trained
    fb = model.diagnostics_["first_batch"]
    assert 0.99 <= fb["scale_ratio"] <= 1.01
    assert 0.0 <= fb["p_pred_min"] <= fb["p_pred_max"] <= 1.0
    for term in LOSS_TERMS:
        assert np.isfinite(fb[term])
    sig = model.diagnostics_["signature_init"]
    assert sig["mean"] == pytest.approx(1e6 / len(model.genes_), rel=1e-6)


def test_signature_and_latent(trained):
    model, ref, _ = trained
    S = model.get_signature()
    assert S.shape == (len(model.genes_), 4)
    np.testing.assert_allclose(S.sum(axis=0), 1e6, rtol=1e-4)
    z = model.get_latent_representation()
    assert z.shape == (ref.n_obs, 10)
    post = model.get_cell_type_posterior()
    np.testing.assert_allclose(post.sum(axis=1), 1.0, atol=1e-5)
    # the VaDE components recover the labels
    acc = (post.idxmax(axis=1) == ref.obs["cell_type"].astype(str)).mean()
    assert acc > 0.9, acc


def test_genes_shared_with_bulk_are_chosen_at_train(synthetic_data):
    ref, bulk = synthetic_data
    scvi.settings.seed = 0
    hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
    model = hpvade.HPVADE(ref)
    assert len(model.genes_) == ref.n_vars
    sub = bulk[:, 30:].copy()
    model.train(bulk=sub, max_epochs=1, **TRAIN_KW)
    assert model.genes_ == list(ref.var_names[30:])
    assert model.module.n_input == ref.n_vars - 30
    assert model.init_params_["non_kwargs"]["genes"] == model.genes_


def test_untrained_model_refuses_to_predict(synthetic_data):
    ref, bulk = synthetic_data
    hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
    model = hpvade.HPVADE(ref)
    with pytest.raises(RuntimeError, match="train"):
        model.get_proportions(bulk)
