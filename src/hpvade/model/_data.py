from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from scvi.dataloaders import DataSplitter

from .._constants import HPVADE_REGISTRY_KEYS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scvi.data import AnnDataManager

    from ._simulate import PseudobulkSimulator

K = HPVADE_REGISTRY_KEYS


class PairedLoader:
    """Yields one step of HP-VaDE training: reference cells, pseudo-bulks and real bulks.

    The cell minibatches come from an :class:`~scvi.dataloaders.AnnDataLoader` (cycled when an
    epoch needs more steps than it has batches); pseudo-bulks are simulated on the fly;
    real bulks, if any, are drawn at random (all of them when there are few).

    Parameters
    ----------
    cell_loader
        Loader of reference cell minibatches.
    simulator
        Pseudo-bulk simulator.
    bulk_cpm
        Real bulk profiles in CPM over the model's genes (samples x genes), or ``None``.
    n_pseudobulk
        Pseudo-bulks per step.
    bulk_batch_size
        Real bulks per step (at most).
    n_steps
        Steps per epoch.
    fixed
        Draw the same pseudo-bulks and bulks at every epoch (validation).
    """

    def __init__(
        self,
        cell_loader,
        simulator: PseudobulkSimulator,
        bulk_cpm: np.ndarray | None,
        *,
        n_pseudobulk: int,
        bulk_batch_size: int,
        n_steps: int,
        fixed: bool = False,
    ):
        self.cell_loader = cell_loader
        self.simulator = simulator
        self.bulk = None if bulk_cpm is None else torch.as_tensor(bulk_cpm, dtype=torch.float32)
        self.n_pseudobulk = n_pseudobulk
        self.bulk_batch_size = bulk_batch_size
        self.n_steps = n_steps
        self.fixed = fixed
        self._cache: list[dict] | None = None
        self._rng = np.random.default_rng(int(simulator.rng.integers(2**31)))

    def __len__(self) -> int:
        return self.n_steps

    def _extras(self) -> dict:
        cpm, frac = self.simulator.sample(self.n_pseudobulk)
        out = {K.PSEUDO: {K.BULK_X: torch.from_numpy(cpm), K.P_TRUE: torch.from_numpy(frac)}}
        if self.bulk is not None:
            n = self.bulk.shape[0]
            if n > self.bulk_batch_size:
                idx = np.sort(self._rng.choice(n, self.bulk_batch_size, replace=False))
                out[K.BULK] = {K.BULK_X: self.bulk[torch.from_numpy(idx)]}
            else:
                out[K.BULK] = {K.BULK_X: self.bulk}
        return out

    def __iter__(self) -> Iterator[dict]:
        if self.fixed and self._cache is None:
            self._cache = [self._extras() for _ in range(self.n_steps)]
        cells = iter(self.cell_loader)
        for step in range(self.n_steps):
            try:
                batch = next(cells)
            except StopIteration:
                cells = iter(self.cell_loader)
                batch = next(cells)
            extras = self._cache[step] if self.fixed else self._extras()
            yield {K.CELLS: batch, **extras}


class HPVADEDataSplitter(DataSplitter):
    """Data splitter pairing each minibatch of reference cells with bulk profiles.

    Cells are split like :class:`~scvi.dataloaders.DataSplitter`; each minibatch comes with
    simulated pseudo-bulks and, when given, the user's real bulks.

    Parameters
    ----------
    adata_manager
        Manager of the registered reference.
    simulator
        Pseudo-bulk simulator over the model's genes.
    bulk_cpm
        Real bulks in CPM over the model's genes, or ``None``.
    n_pseudobulk
        Pseudo-bulks per training step.
    bulk_batch_size
        Real bulks per training step (at most).
    steps_per_epoch
        Steps in a training epoch, whatever the size of the reference: each step draws its
        cells at random (a small reference cycles its cells, a large one sees a new random
        part of them in each epoch), so that training costs the same for 2,000 or 1,000,000
        cells. Validation epochs cover the validation cells once, in at most this many steps.
    **kwargs
        Passed to :class:`~scvi.dataloaders.DataSplitter`.
    """

    def __init__(
        self,
        adata_manager: AnnDataManager,
        *,
        simulator: PseudobulkSimulator,
        bulk_cpm: np.ndarray | None = None,
        n_pseudobulk: int = 64,
        bulk_batch_size: int = 128,
        steps_per_epoch: int = 20,
        **kwargs,
    ):
        super().__init__(adata_manager, **kwargs)
        self.simulator = simulator
        self.bulk_cpm = bulk_cpm
        self.n_pseudobulk = n_pseudobulk
        self.bulk_batch_size = bulk_batch_size
        self.steps_per_epoch = steps_per_epoch

    def _paired(self, loader, *, fixed: bool) -> PairedLoader:
        n_steps = min(len(loader), self.steps_per_epoch) if fixed else self.steps_per_epoch
        return PairedLoader(
            loader,
            self.simulator,
            self.bulk_cpm,
            n_pseudobulk=self.n_pseudobulk,
            bulk_batch_size=self.bulk_batch_size,
            n_steps=n_steps,
            fixed=fixed,
        )

    def train_dataloader(self) -> PairedLoader:
        """Cells of the training split, each step with pseudo-bulks and real bulks."""
        return self._paired(super().train_dataloader(), fixed=False)

    def val_dataloader(self) -> PairedLoader | None:
        """Validation cells with a fixed set of pseudo-bulks (``None`` without a split)."""
        loader = super().val_dataloader()
        if loader is None:
            return None
        return self._paired(loader, fixed=True)
