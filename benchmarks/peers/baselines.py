"""Baselines written in the harness: NNLS on type means, CIBERSORT-style nu-SVR.

Run with hpvade's interpreter (needs scipy and scikit-learn only).
``VARIANT`` is ``nnls`` or ``nusvr``. Both work on CPM over the shared genes (linear
scale) and so estimate mRNA fractions.
"""

from __future__ import annotations

import numpy as np
from _common import args, cpm, markers, type_means, write
from scipy.optimize import nnls
from sklearn.svm import NuSVR


def run_nnls(sig: np.ndarray, bulk: np.ndarray) -> np.ndarray:
    return np.vstack([nnls(sig.T, b)[0] for b in bulk])


def run_nusvr(sig: np.ndarray, bulk: np.ndarray) -> np.ndarray:
    """CIBERSORT's core (Newman et al. 2015): nu in {0.25, 0.5, 0.75}, keep the best RMSE."""
    x = sig.T  # genes x types
    x = (x - x.mean()) / x.std()
    out = []
    for b in bulk:
        y = (b - b.mean()) / b.std()
        best, best_rmse = None, np.inf
        for nu in (0.25, 0.5, 0.75):
            w = NuSVR(kernel="linear", nu=nu, C=1.0).fit(x, y).coef_.ravel()
            w = np.clip(w, 0, None)
            if w.sum() == 0:
                continue
            w = w / w.sum()
            rmse = np.sqrt(np.mean((x @ w - y) ** 2))
            if rmse < best_rmse:
                best, best_rmse = w, rmse
        out.append(best if best is not None else np.full(x.shape[1], 1.0 / x.shape[1]))
    return np.vstack(out)


def main() -> None:
    d, out, variant = args()
    types = d["types"]
    sig = type_means(cpm(d["ref_X"]), d["ref_labels"], types)
    bulk = cpm(d["bulk_X"])
    if variant == "nnls":
        props = run_nnls(sig, bulk)
    elif variant == "nusvr":
        g = markers(sig, 50)
        props = run_nusvr(sig[:, g], bulk[:, g])
    else:
        raise SystemExit(f"unknown variant {variant!r}")
    write(out, props, d["samples"], types)


if __name__ == "__main__":
    main()
