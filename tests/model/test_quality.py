"""Each bulk sample's quality figures (effective informative genes, share explained)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hpvade
from hpvade.model._quality import (
    MIN_EFFECTIVE_GENES,
    MIN_EXPLAINED,
    sample_quality,
    warn_degenerate,
)


def _signature(n_genes: int = 200, n_types: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sig = rng.lognormal(0.0, 1.0, size=(n_genes, 1)) * rng.lognormal(0, 0.7, (n_genes, n_types))
    return sig / sig.sum(axis=0) * 1e6


def test_a_mixture_of_the_signature_is_explained_over_many_genes() -> None:
    sig = _signature()
    cpm = np.array([[0.2, 0.3, 0.5], [0.9, 0.05, 0.05]]) @ sig.T
    qc = sample_quality(cpm, sig, index=["a", "b"])
    assert list(qc.index) == ["a", "b"]
    assert list(qc.columns) == ["effective_genes", "explained", "degenerate"]
    assert (qc["explained"] > 0.999).all()
    assert (qc["effective_genes"] > 50).all()
    assert not qc["degenerate"].any()


def test_effective_genes_counts_the_genes_carrying_the_signal() -> None:
    sig = _signature()
    cpm = np.zeros((3, sig.shape[0]))
    cpm[0, 7] = 1e6  # one gene
    cpm[1, [3, 4, 5]] = 1.0 / np.std(sig[[3, 4, 5]], axis=1) * np.mean(sig[[3, 4, 5]], axis=1)
    cpm[1] = cpm[1] ** 2  # sqrt(cpm) x cv is the same for the three genes
    cpm[2] = sig.mean(axis=1)
    qc = sample_quality(cpm, sig)
    assert qc["effective_genes"].iloc[0] == pytest.approx(1.0)
    assert qc["effective_genes"].iloc[1] == pytest.approx(3.0)
    assert qc["effective_genes"].iloc[2] > 50
    assert qc["degenerate"].tolist() == [True, True, False]


def test_genes_alike_in_every_type_carry_no_information() -> None:
    sig = _signature()
    sig[:100] = sig[:100].mean(axis=1, keepdims=True)  # the first 100 genes: no contrast
    cpm = np.zeros((1, sig.shape[0]))
    cpm[0, :100] = 1e4  # the sample expresses only those
    cpm[0, 150] = 1e4  # and one gene that differs between types
    assert sample_quality(cpm, sig)["effective_genes"].iloc[0] == pytest.approx(1.0)


def test_noise_and_flat_profiles_are_not_explained() -> None:
    sig = _signature(n_genes=1000)
    rng = np.random.default_rng(1)
    noise = rng.lognormal(0.0, 2.0, size=(3, 1000))
    shuffled = (np.array([0.3, 0.3, 0.4]) @ sig.T)[rng.permutation(1000)]
    flat = np.full(1000, 1e3)
    qc = sample_quality(np.vstack([noise, shuffled, flat]), sig)
    assert (qc["explained"] < 0.02).all(), qc
    assert (qc["effective_genes"] > 100).all()  # spread over many genes: only explained names them
    assert qc["explained"].iloc[-1] == 0.0
    assert qc["degenerate"].all()


def test_all_zero_genes_do_not_lower_explained() -> None:
    sig = _signature()
    cpm = np.array([0.2, 0.3, 0.5]) @ sig.T
    zeroed = cpm.copy()
    zeroed[::10] = 0.0  # a tenth of the genes not measured
    qc = sample_quality(np.vstack([cpm, zeroed]), sig)
    assert qc["explained"].iloc[1] == pytest.approx(qc["explained"].iloc[0], abs=1e-3)


def test_shapes_must_match() -> None:
    with pytest.raises(ValueError, match="must share their genes"):
        sample_quality(np.ones((2, 5)), np.ones((6, 3)))


def test_warning_names_samples_and_figures() -> None:
    qc = pd.DataFrame(
        {
            "effective_genes": [1.0, 300.0, 250.0],
            "explained": [0.5, 0.02, 0.9],
            "degenerate": [True, True, False],
        },
        index=["s1", "s2", "s3"],
    )
    with pytest.warns(UserWarning, match="Degenerate bulk samples") as record:
        warn_degenerate(qc)
    assert len(record) == 1
    message = str(record[0].message)
    assert (
        "1 sample rests on fewer than 10 informative genes (effective_genes): 's1' (1)" in message
    )
    assert "1 sample is explained below 10% by the signature (explained): 's2' (0.02)" in message
    assert "'s3'" not in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_degenerate(qc.iloc[[2]])  # nothing to name: silent


def test_thresholds_keep_synthetic_bulks() -> None:
    """Every synthetic configuration the tests use stays clear of both thresholds."""
    for kwargs in ({}, {"n_types": 3, "n_cells_per_type": 30, "n_genes": 60, "n_markers": 5}):
        ref, bulk = hpvade.data.synthetic(seed=0, **kwargs)
        hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
        model = hpvade.HPVADE(ref)
        cpm = model._bulk_cpm(bulk, layer=None)
        qc = sample_quality(cpm, model.get_signature().to_numpy())
        assert qc["effective_genes"].min() > 1.4 * MIN_EFFECTIVE_GENES, qc
        assert qc["explained"].min() > 9 * MIN_EXPLAINED, qc
