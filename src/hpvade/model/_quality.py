"""How much each bulk sample's fractions can be trusted: two figures per sample, and a warning.

A deconvolution always returns fractions that sum to 1, even for a sample that carries no
information about the cell types: a bulk whose signal sits in one gene, or a profile that
has nothing to do with the reference. Two figures name such samples:

- ``effective_genes``: over how many genes the sample's signal is spread, counting only the
  part of each gene that tells cell types apart. Gene ``g`` weighs
  ``u_g = sqrt(b_g) * cv_g``, where ``b_g`` is the sample's CPM and ``cv_g`` the coefficient
  of variation of the signature's row ``g`` across cell types (0 for a gene expressed alike
  in every type); the figure is the participation ratio ``(sum u)^2 / sum u^2``. It is 1
  when one gene carries the signal, ``k`` when ``k`` genes carry it evenly.
- ``explained``: the squared correlation, over the genes the sample expresses, between
  ``log1p`` of its CPM and ``log1p`` of the best non-negative mixture of the signature's
  columns, fitted here by least squares weighted as on the square-root scale. Genes the
  sample does not express are left out, so that genes a bulk did not measure do not count
  against it. The mixture is fitted here, so the figure is a property of the sample and
  the signature, the same whatever ``method`` or ``kind`` the proportions were asked in,
  and it does not depend on how long the model was trained. A profile unrelated to the
  reference scores about 0; real bulks score lower than the synthetic ones (about 0.4
  rather than 1) because the bulk protocol shifts genes against the single-cell
  reference.

A sample is flagged when ``effective_genes < MIN_EFFECTIVE_GENES`` or
``explained < MIN_EXPLAINED``. Both thresholds were set with a margin below every real PBMC
bulk of the benchmarks (Finotello counts, Hoek TPM, Monaco TPM, against both pbmc3k
references; the lowest values found are in the comments of the thresholds) and every bulk
of :func:`hpvade.data.synthetic` the tests use.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
from scipy.optimize import nnls

logger = logging.getLogger(__name__)

__all__ = [
    "MIN_EFFECTIVE_GENES",
    "MIN_EXPLAINED",
    "QUALITY_SUFFIX",
    "sample_quality",
    "warn_degenerate",
]

#: :meth:`hpvade.HPVADE.get_proportions` keeps the table in
#: ``bulk.uns[key_added + QUALITY_SUFFIX]``
QUALITY_SUFFIX = "_qc"

#: fewest effective informative genes a sample's fit may rest on. The lowest found: 326 on
#: the real PBMC bulks (Hoek; Finotello 375, Monaco 349; the model's 1,000 genes from the
#: 2,000-gene pbmc3k reference), 28 on ``hpvade.data.synthetic(n_genes=120)`` and 15 with
#: ``n_genes=60`` (20 seeds); a bulk whose signal sits in one gene scores 1, in three 3.
MIN_EFFECTIVE_GENES = 10.0
#: smallest squared correlation between the sample and the signature's best mixture. The
#: lowest found: 0.40 on the real PBMC bulks (Hoek; Finotello and Monaco 0.42), 0.24 for
#: Monaco against the 983-cell all-genes reference, 0.96 on the synthetic bulks; noise or a
#: gene-shuffled PBMC bulk over 1,000 genes scores below 0.01 (up to 0.14 over 40 genes,
#: where chance correlations grow).
MIN_EXPLAINED = 0.1
#: how many sample names a warning shows
_N_SHOW = 5


def _effective_genes(root: np.ndarray, cv: np.ndarray) -> np.ndarray:
    u = root * cv[None, :]
    total = u.sum(axis=1)
    square = np.square(u).sum(axis=1)
    out = np.zeros(root.shape[0])
    ok = square > 0
    out[ok] = total[ok] ** 2 / square[ok]
    return out


def _explained(cpm: np.ndarray, signature: np.ndarray) -> np.ndarray:
    out = np.zeros(cpm.shape[0])
    for i, b in enumerate(cpm):
        seen = b > 0  # a gene the sample does not express says nothing of the fit's shape
        if seen.sum() < 3:
            continue
        b, sig = b[seen], signature[seen]
        # least squares weighted by 1 / (4 (b + 1)): a gene's residual divided by
        # 2 sqrt(b + 1) is about its residual on the square-root scale
        w = 1.0 / (2.0 * np.sqrt(b + 1.0))
        coef, _ = nnls(sig * w[:, None], b * w)
        x, y = np.log1p(b), np.log1p(sig @ coef)
        if np.ptp(x) > 0 and np.ptp(y) > 0:  # a flat profile (every gene alike) explains nothing
            out[i] = np.corrcoef(x, y)[0, 1] ** 2
    return out


def sample_quality(
    cpm: np.ndarray, signature: np.ndarray, *, index: pd.Index | None = None
) -> pd.DataFrame:
    """Per-sample figures of how much information a bulk holds about the cell types.

    Parameters
    ----------
    cpm
        Bulk profiles over the model's genes, samples x genes, CPM (non-negative, finite).
    signature
        Signature matrix, genes x cell types, CPM.
    index
        Sample names for the result; ``None`` numbers the samples.

    Returns
    -------
    pandas.DataFrame
        One row per sample: ``effective_genes`` (the effective number of genes that tell
        the cell types apart carrying the sample's signal), ``explained`` (the share of the
        sample's square-root CPM variance across genes that the best non-negative mixture
        of the signature reproduces) and ``degenerate`` (``True`` when either is below its
        threshold, :data:`MIN_EFFECTIVE_GENES` or :data:`MIN_EXPLAINED`).

    Examples
    --------
    >>> import numpy as np
    >>> from hpvade.model._quality import sample_quality
    >>> signature = np.array([[9e5, 1e5], [1e5, 9e5]] * 20) / 20
    >>> bulk = np.vstack([signature @ [0.3, 0.7], np.eye(40)[0] * 1e6])
    >>> qc = sample_quality(bulk, signature)
    >>> qc["degenerate"].tolist()
    [False, True]
    """
    cpm = np.asarray(cpm, dtype=np.float64)
    signature = np.asarray(signature, dtype=np.float64)
    if cpm.ndim != 2 or signature.ndim != 2 or cpm.shape[1] != signature.shape[0]:
        raise ValueError(
            f"cpm (samples x genes) and signature (genes x types) must share their genes; "
            f"got shapes {cpm.shape} and {signature.shape}."
        )
    mean = signature.mean(axis=1)
    cv = np.divide(signature.std(axis=1), mean, out=np.zeros_like(mean), where=mean > 0)
    root = np.sqrt(np.clip(cpm, 0.0, None))
    effective = _effective_genes(root, cv)
    explained = _explained(np.clip(cpm, 0.0, None), signature)
    return pd.DataFrame(
        {
            "effective_genes": effective,
            "explained": explained,
            "degenerate": (effective < MIN_EFFECTIVE_GENES) | (explained < MIN_EXPLAINED),
        },
        index=pd.RangeIndex(cpm.shape[0]) if index is None else pd.Index(index),
    )


def warn_degenerate(quality: pd.DataFrame, *, stacklevel: int = 3) -> None:
    """Warn about the samples that :func:`sample_quality` flags, naming them and the figure.

    Parameters
    ----------
    quality
        The result of :func:`sample_quality`.
    stacklevel
        Passed to :func:`warnings.warn` (the default points at the caller's caller).
    """
    parts = []
    for column, threshold, what in (
        ("effective_genes", MIN_EFFECTIVE_GENES, "{rest} on fewer than {t:g} informative genes"),
        ("explained", MIN_EXPLAINED, "{are} explained below {t:.0%} by the signature"),
    ):
        bad = quality.index[quality[column].to_numpy() < threshold]
        if len(bad):
            shown = ", ".join(
                f"{str(name)!r} ({quality.at[name, column]:.3g})"
                if quality.index.is_unique
                else repr(str(name))
                for name in bad[:_N_SHOW]
            )
            more = ", ..." if len(bad) > _N_SHOW else ""
            n = len(bad)
            verbs = {"rest": "rests", "are": "is"} if n == 1 else {"rest": "rest", "are": "are"}
            parts.append(
                f"{n} sample{'s' if n > 1 else ''} {what.format(t=threshold, **verbs)} "
                f"({column}): {shown}{more}"
            )
    if not parts:
        return
    message = (
        "Degenerate bulk samples: " + "; ".join(parts) + ". Their fractions carry little "
        "information about the cell types: check that these samples are expression profiles "
        "over many genes from the reference's tissue (not one or a few genes, nor an "
        "unrelated profile). Every sample's figures are in the quality table "
        "(bulk.uns[key_added + '_qc']) to filter on."
    )
    logger.debug("%d degenerate bulk sample(s)", int(quality["degenerate"].sum()))
    warnings.warn(message, UserWarning, stacklevel=stacklevel)
