from __future__ import annotations

import numpy as np
from scipy import sparse

from .._constants import CPM_SCALE


class PseudobulkSimulator:
    """Mixtures of reference cells with known cell-type fractions.

    Each mixture draws proportions from a Dirichlet distribution (a random concentration per
    mixture, and for a share of mixtures a random subset of absent types), samples
    ``cells_per_mixture`` cells per mixture from the reference according to them, sums their
    counts and scales the sum to counts per million. All draws of a batch are vectorised: the
    sampled cells form a sparse (mixtures x cells) matrix that multiplies the sparse reference.

    Parameters
    ----------
    X
        Reference counts over the model's genes, cells x genes (sparse or dense).
    codes
        Integer cell-type code of each cell, in ``[0, n_types)``.
    n_types
        Number of cell types.
    cells_per_mixture
        Cells drawn (with replacement) for each mixture.
    sparse_fraction
        Share of mixtures in which each type is absent with probability 1/2.
    gene_noise
        Standard deviation of a log-normal factor applied to each gene of each mixture
        (sample-to-sample and protocol variation that summing cells does not produce).
    seed
        Seed of the simulator's random generator.
    """

    def __init__(
        self,
        X,
        codes: np.ndarray,
        n_types: int,
        *,
        cells_per_mixture: int = 500,
        sparse_fraction: float = 0.5,
        gene_noise: float = 0.0,
        seed: int = 0,
    ):
        self.X = sparse.csr_matrix(X, dtype=np.float32)
        codes = np.asarray(codes, dtype=np.int64)
        self.n_types = int(n_types)
        self.cells_per_mixture = int(cells_per_mixture)
        self.sparse_fraction = float(sparse_fraction)
        self.gene_noise = float(gene_noise)
        self._order = np.argsort(codes, kind="stable")
        self._size = np.bincount(codes, minlength=self.n_types)
        self._start = np.concatenate([[0], np.cumsum(self._size)[:-1]])
        self._available = self._size > 0
        self.rng = np.random.default_rng(seed)

    def release(self) -> None:
        """Drop the reference counts (after training); ``sample`` then raises."""
        self.X = None

    def proportions(self, n: int) -> np.ndarray:
        """Draw ``n`` proportion vectors over the types present in the reference."""
        rng = self.rng
        alpha = rng.choice(np.array([0.1, 0.3, 1.0, 3.0, 10.0]), size=(n, 1))
        g = rng.gamma(np.broadcast_to(alpha, (n, self.n_types)))
        mask = np.ones((n, self.n_types), dtype=bool)
        sparse_rows = rng.random(n) < self.sparse_fraction
        mask[sparse_rows] = rng.random((int(sparse_rows.sum()), self.n_types)) < 0.5
        mask &= self._available[None, :]
        # keep at least one type per mixture
        empty = ~mask.any(axis=1)
        if empty.any():
            avail = np.flatnonzero(self._available)
            mask[np.flatnonzero(empty), rng.choice(avail, size=int(empty.sum()))] = True
        g = np.where(mask, g + 1e-12, 0.0)
        return g / g.sum(axis=1, keepdims=True)

    def sample(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Simulate ``n`` pseudo-bulks.

        Returns
        -------
        cpm : numpy.ndarray
            ``n`` x genes float32 array, each row summing to 1e6.
        fractions : numpy.ndarray
            ``n`` x types float32 array of the realised cell fractions (rows sum to 1).
        """
        if self.X is None:
            raise RuntimeError("The simulator's counts were released after training.")
        rng = self.rng
        p = self.proportions(n)
        k = rng.multinomial(self.cells_per_mixture, p)  # n x types cell counts
        pair = np.repeat(np.arange(n * self.n_types), k.ravel())
        mix, typ = np.divmod(pair, self.n_types)
        offset = np.floor(rng.random(pair.size) * self._size[typ]).astype(np.int64)
        cells = self._order[self._start[typ] + offset]
        W = sparse.csr_matrix(
            (np.ones(pair.size, dtype=np.float32), (mix, cells)), shape=(n, self.X.shape[0])
        )
        counts = np.asarray((W @ self.X).todense(), dtype=np.float64)
        if self.gene_noise > 0:
            counts *= np.exp(self.gene_noise * rng.standard_normal(counts.shape))
        totals = counts.sum(axis=1, keepdims=True)
        cpm = counts * (CPM_SCALE / np.maximum(totals, 1e-12))
        fractions = k / self.cells_per_mixture
        return cpm.astype(np.float32), fractions.astype(np.float32)
