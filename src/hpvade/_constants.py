from __future__ import annotations

from typing import NamedTuple


class _HPVADE_REGISTRY_KEYS_NT(NamedTuple):
    X_KEY: str = "X"
    LABELS_KEY: str = "labels"
    BATCH_KEY: str = "batch"
    # keys of the extra tensors that travel with each training step
    CELLS: str = "cells"
    PSEUDO: str = "pseudo"
    BULK: str = "bulk"
    BULK_X: str = "bulk_cpm"
    P_TRUE: str = "p_true"


HPVADE_REGISTRY_KEYS = _HPVADE_REGISTRY_KEYS_NT()

#: default ``obsm`` key of the bulk proportions written by :meth:`hpvade.HPVADE.get_proportions`
PROPORTIONS_KEY = "hpvade_proportions"
#: default ``obsm`` key of the reference latent space
LATENT_KEY = "X_hpvade"

# the seed's loss weights (shared/seed: the NaN-loss engineering note)
LAMBDA_PROTO = 0.1
LAMBDA_KL = 0.01
LAMBDA_BULK = 5.0
LAMBDA_BULK_RECON = 10.0

#: clamp used before any log of a proportion
PROP_EPS = 1e-10
#: counts per million
CPM_SCALE = 1e6
