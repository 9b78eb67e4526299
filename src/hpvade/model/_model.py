from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import torch
from mudata import MuData
from scvi import REGISTRY_KEYS, settings
from scvi.data import AnnDataManager
from scvi.data.fields import CategoricalObsField, LayerField
from scvi.model.base import BaseModelClass, UnsupervisedTrainingMixin
from scvi.utils import setup_anndata_dsp

from .._constants import (
    CPM_SCALE,
    LAMBDA_BULK,
    LAMBDA_BULK_RECON,
    LAMBDA_KL,
    LAMBDA_PROTO,
)
from ..pp._genes import (
    _columns_and_row_sums,
    match_genes,
    select_genes,
    type_profiles,
)
from ..pp._validate import check_bulk, check_reference, check_shared_genes
from ._bulkmixin import BulkMixin, _mudata_modalities
from ._cellmixin import CellMixin
from ._data import HPVADEDataSplitter
from ._generative import GenerativeMixin
from ._module import HPVADEModule
from ._params import ParamsMixin
from ._simulate import PseudobulkSimulator
from ._trainingplan import HPVADETrainingPlan

if TYPE_CHECKING:
    from collections.abc import Sequence

    from anndata import AnnData

logger = logging.getLogger(__name__)


class HPVADE(
    BulkMixin, ParamsMixin, GenerativeMixin, CellMixin, UnsupervisedTrainingMixin, BaseModelClass
):
    """HP-VaDE: cell-type proportions of bulk RNA-seq from a labelled single-cell reference.

    A Variational Deep Embedding of the reference cells (a VAE whose prior has one Gaussian
    component per cell type) is trained jointly with a deconvolution head on pseudo-bulks
    simulated from the reference and, optionally, with the reconstruction of the user's real
    bulks through a learnable CPM signature matrix, per-type mRNA contents and a gene-wise
    platform scale :cite:p:`Jiang2017,Lopez2018`.

    Parameters
    ----------
    adata
        Reference registered with :meth:`setup_anndata`: raw counts, cell types in ``obs``;
        or a MuData registered with :meth:`setup_mudata` (reference and bulk modalities).
    bulk
        Bulk samples to be deconvolved (optional): when given, genes are restricted to those
        shared with it. A bulk passed to :meth:`train` does the same if the model is untrained.
    genes
        Explicit gene list (overrides gene selection); matched by name.
    n_genes
        Largest number of genes selected (markers and between-type variable genes).
    n_latent
        Dimension of the latent space.
    n_hidden
        Width of the encoder and decoder.
    n_layers
        Hidden layers of the encoder and decoder.
    dropout_rate
        Dropout rate.
    deconv_hidden
        Width of the deconvolution head.
    deconv_layers
        Hidden layers of the deconvolution head.
    lambda_proto
        Weight of the VaDE reconstruction (seed default 0.1).
    lambda_kl
        Weight of the latent KL (seed default 0.01).
    lambda_bulk
        Weight of the pseudo-bulk proportion loss (seed default 5.0).
    lambda_bulk_recon
        Weight of the bulk reconstruction (seed default 10.0).
    lambda_signature
        Weight of the tie between the signature and the VaDE prototypes.
    lambda_scale
        Weight of the penalty keeping the gene-wise platform scale near 1.
    real_bulk_weight
        Weight of the real bulks' reconstruction relative to the pseudo-bulks' within the
        bulk-reconstruction loss. The default 0 turns the adaptation to the real bulks off:
        with the seed's full weight (1) it lowered the mean per-type Pearson r on two of the
        three real benchmark sets and the overall CCC on all three (see
        ``docs/benchmarks.md``). A bulk passed to :meth:`train` still chooses the genes.
    learn_signature
        Learn the signature matrix (otherwise fixed at the reference's type means).
    learn_mrna
        Learn the per-type mRNA contents (otherwise fixed at the reference's library sizes).

    Examples
    --------
    >>> import hpvade
    >>> ref, bulk = hpvade.data.synthetic(seed=0)
    >>> hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
    >>> model = hpvade.HPVADE(ref)
    >>> model.train(bulk=bulk, max_epochs=5, enable_progress_bar=False)
    >>> props = model.get_proportions(bulk)
    >>> bulk.obsm["hpvade_proportions"].shape == (bulk.n_obs, 4)
    True
    """

    _module_cls = HPVADEModule
    _data_splitter_cls = HPVADEDataSplitter
    _training_plan_cls = HPVADETrainingPlan

    def __init__(
        self,
        adata: AnnData | MuData,
        *,
        bulk: AnnData | None = None,
        genes: Sequence[str] | None = None,
        n_genes: int = 1000,
        n_latent: int = 10,
        n_hidden: int = 128,
        n_layers: int = 1,
        dropout_rate: float = 0.1,
        deconv_hidden: int = 256,
        deconv_layers: int = 2,
        lambda_proto: float = LAMBDA_PROTO,
        lambda_kl: float = LAMBDA_KL,
        lambda_bulk: float = LAMBDA_BULK,
        lambda_bulk_recon: float = LAMBDA_BULK_RECON,
        lambda_signature: float = 1.0,
        lambda_scale: float = 1.0,
        real_bulk_weight: float = 0.0,
        learn_signature: bool = True,
        learn_mrna: bool = True,
    ):
        self._mudata_bulk = None
        if isinstance(adata, MuData):
            adata, self._mudata_bulk = _mudata_modalities(adata)
            bulk = self._mudata_bulk if bulk is None else bulk
        super().__init__(adata)
        self._module_kwargs = {
            "n_latent": n_latent,
            "n_hidden": n_hidden,
            "n_layers": n_layers,
            "dropout_rate": dropout_rate,
            "deconv_hidden": deconv_hidden,
            "deconv_layers": deconv_layers,
            "lambda_proto": lambda_proto,
            "lambda_kl": lambda_kl,
            "lambda_bulk": lambda_bulk,
            "lambda_bulk_recon": lambda_bulk_recon,
            "lambda_signature": lambda_signature,
            "lambda_scale": lambda_scale,
            "real_bulk_weight": real_bulk_weight,
            "learn_signature": learn_signature,
            "learn_mrna": learn_mrna,
        }
        self.n_genes = n_genes
        # labels of any hashable type (cluster numbers, bools, ...) are named by their string
        self.cell_types_ = [
            str(c)
            for c in self.adata_manager.get_state_registry(
                REGISTRY_KEYS.LABELS_KEY
            ).categorical_mapping
        ]
        if genes is None:
            genes = self._select_genes(None if bulk is None else bulk.var_names)
        self.init_params_ = self._get_init_params(locals())
        self._build(genes)

    # ------------------------------------------------------------------ construction
    def _select_genes(self, bulk_genes) -> list[str]:
        args = self.adata_manager.registry["setup_args"]
        return select_genes(
            self.adata,
            labels_key=args["labels_key"],
            layer=args["layer"],
            n_genes=self.n_genes,
            bulk_genes=bulk_genes,
        )

    def _reference_counts(self, genes: Sequence[str]):
        """Reference counts over ``genes`` (CSR float32), type codes and all-gene libraries.

        The reference (in memory or backed) is read in blocks: the only copy made is the
        CSR over ``genes``. It is kept for :meth:`train` (which hands it to the pseudo-bulk
        simulator), so that a backed reference is not read twice.
        """
        key = tuple(genes)
        cached = getattr(self, "_counts_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        self._counts_cache = None  # a CSR over other genes is released first
        X = self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
        positions, missing = match_genes(self.adata.var_names, genes)
        if missing:
            raise ValueError(
                f"{len(missing)} of the model's {len(genes)} genes are missing from the "
                f"reference (e.g. {missing[:5]}). Pass a reference with the genes the model "
                "was trained on."
            )
        codes = np.asarray(self.adata_manager.get_from_registry(REGISTRY_KEYS.LABELS_KEY)).ravel()
        columns, libsize = _columns_and_row_sums(X, positions)
        out = (columns, codes.astype(np.int64), libsize, positions)
        self._counts_cache = (key, out)
        return out

    def _build(self, genes: Sequence[str]) -> None:
        """(Re)build the module on ``genes``: signature and mRNA content from the reference."""
        genes = list(genes)
        Xg, codes, libsize, positions = self._reference_counts(genes)
        n_types = len(self.cell_types_)
        signature, mrna = type_profiles(Xg, libsize, codes, n_types)

        n_batch = self.summary_stats.n_batch
        self.module = self._module_cls(
            n_input=len(genes),
            n_labels=n_types,
            signature_init=signature,
            mrna_init=mrna,
            n_batch=n_batch,
            gene_index=positions,
            **self._module_kwargs,
        )
        self.genes_ = genes
        self.init_params_["non_kwargs"]["genes"] = genes
        self.init_params_["non_kwargs"]["bulk"] = None

        ranges = {
            ct: (float(signature[:, i].min()), float(signature[:, i].max()))
            for i, ct in enumerate(self.cell_types_)
        }
        self.diagnostics_ = {
            "signature_init": {
                "mean": float(signature.mean()),
                "expected_mean": CPM_SCALE / len(genes),
                "column_sums": signature.sum(axis=0).tolist(),
                "range_per_type": ranges,
            },
            "mrna_init": dict(zip(self.cell_types_, mrna.tolist(), strict=True)),
        }
        logger.info(
            "Signature at init: %d genes x %d types, mean %.2f CPM (1e6/G = %.2f); per-type "
            "range %s",
            len(genes),
            n_types,
            signature.mean(),
            CPM_SCALE / len(genes),
            "; ".join(f"{k}: [{lo:.3g}, {hi:.3g}]" for k, (lo, hi) in ranges.items()),
        )
        self._model_summary_string = (
            f"HPVADE model: {len(genes)} genes, {n_types} cell types "
            f"({', '.join(self.cell_types_)}), n_latent={self._module_kwargs['n_latent']}, "
            f"{n_batch} batch(es)."
        )

    @classmethod
    def load(cls, dir_path: str, adata: AnnData | None = None, **kwargs):
        """Load a saved model (see :meth:`scvi.model.base.BaseModelClass.load`).

        Parameters
        ----------
        dir_path
            Directory the model was saved to.
        adata
            The reference set up like the saved one; ``None`` uses the AnnData saved with it.
        **kwargs
            Passed to :meth:`scvi.model.base.BaseModelClass.load` (e.g. ``accelerator``).
        """
        model = super().load(dir_path, adata=adata, **kwargs)
        model._counts_cache = None  # a trained model needs no copy of the reference
        return model

    # ------------------------------------------------------------------ AnnData set-up
    @classmethod
    @setup_anndata_dsp.dedent
    def setup_anndata(
        cls,
        adata: AnnData,
        *,
        labels_key: str,
        layer: str | None = None,
        batch_key: str | None = None,
        min_cells_per_type: int = 5,
        **kwargs,
    ) -> None:
        """%(summary)s.

        The reference must hold raw counts (``X`` or ``layer``) and the cell type of every
        cell in ``obs[labels_key]``. It may be backed (``anndata.read_h5ad(path,
        backed="r")``) when it does not fit in memory: its counts are then read from the file
        in blocks (checks, gene selection, type profiles) and by minibatch (training); only
        the counts over the model's genes are held in memory, for the pseudo-bulks.

        Parameters
        ----------
        %(param_adata)s
        labels_key
            Column of ``adata.obs`` with the cell types.
        %(param_layer)s
        %(param_batch_key)s
        min_cells_per_type
            Fewest reference cells a cell type needs.
        **kwargs
            Passed to :meth:`~scvi.data.AnnDataManager.register_fields`.

        Raises
        ------
        KeyError
            ``labels_key``, ``batch_key`` or ``layer`` does not exist.
        ValueError
            The reference is unusable (not raw counts, NaN, empty cells, too few cells of a
            type, ...; see ``docs/input-checks.md``) or is a view.
        """
        if adata.is_view:
            raise ValueError(
                "The reference is a view of another AnnData (e.g. ref[mask]); setup_anndata "
                "stores scvi-tools' registry in it, which a view cannot hold. Make it an "
                "AnnData of its own first: `ref = ref[mask].copy()`."
            )
        check_reference(
            adata,
            layer=layer,
            labels_key=labels_key,
            batch_key=batch_key,
            min_cells_per_type=min_cells_per_type,
        )
        setup_method_args = cls._get_setup_method_args(**locals())
        fields = [
            LayerField(REGISTRY_KEYS.X_KEY, layer, is_count_data=True),
            CategoricalObsField(REGISTRY_KEYS.LABELS_KEY, labels_key),
            CategoricalObsField(REGISTRY_KEYS.BATCH_KEY, batch_key),
        ]
        manager = AnnDataManager(fields=fields, setup_method_args=setup_method_args)
        manager.register_fields(adata, **kwargs)
        cls.register_manager(manager)

    @classmethod
    def setup_mudata(
        cls,
        mdata: MuData,
        *,
        labels_key: str,
        reference_mod: str = "rna",
        bulk_mod: str = "bulk",
        layer: str | None = None,
        batch_key: str | None = None,
        min_cells_per_type: int = 5,
    ) -> None:
        """Set up a MuData holding the single-cell reference and the bulks as two modalities.

        The modalities need not share observations (cells and bulk samples are different
        things). The reference modality is set up as by :meth:`setup_anndata`; the names of
        both modalities are recorded in ``mdata.uns["hpvade"]``. ``HPVADE(mdata)`` then
        trains on the reference with the bulk modality as its real bulks, and
        ``model.get_proportions(mdata)`` writes into the bulk modality's ``obsm``.

        Parameters
        ----------
        mdata
            MuData with a reference modality (raw counts, cell types in ``obs``) and a bulk
            modality (counts or TPM).
        labels_key
            Column of the reference modality's ``obs`` with the cell types.
        reference_mod
            Name of the reference modality.
        bulk_mod
            Name of the bulk modality.
        layer
            Layer of the reference modality with the counts; ``None`` uses its ``X``.
        batch_key
            Column of the reference modality's ``obs`` with batches.
        min_cells_per_type
            Fewest reference cells a cell type needs.

        Examples
        --------
        >>> import mudata, hpvade
        >>> ref, bulk = hpvade.data.synthetic(seed=0)
        >>> mdata = mudata.MuData({"rna": ref, "bulk": bulk})
        >>> hpvade.HPVADE.setup_mudata(mdata, labels_key="cell_type")
        >>> model = hpvade.HPVADE(mdata)
        >>> model.train(max_epochs=5, enable_progress_bar=False)
        >>> props = model.get_proportions(mdata)  # also in mdata["bulk"].obsm
        """
        for role, name in (("reference_mod", reference_mod), ("bulk_mod", bulk_mod)):
            if name not in mdata.mod:
                raise KeyError(
                    f"{role}={name!r} is not a modality of the MuData (modalities: "
                    f"{list(mdata.mod)})."
                )
        cls.setup_anndata(
            mdata.mod[reference_mod],
            labels_key=labels_key,
            layer=layer,
            batch_key=batch_key,
            min_cells_per_type=min_cells_per_type,
        )
        mdata.uns["hpvade"] = {"reference_mod": reference_mod, "bulk_mod": bulk_mod}

    # ------------------------------------------------------------------ training
    def train(
        self,
        *,
        bulk: AnnData | MuData | None = None,
        bulk_layer: str | None = None,
        max_epochs: int = 6,
        lr: float = 1e-3,
        batch_size: int = 128,
        n_pseudobulk: int = 64,
        cells_per_pseudobulk: int = 500,
        gene_noise: float = 0.0,
        steps_per_epoch: int = 20,
        adapt: bool | None = None,
        train_size: float = 1.0,
        validation_size: float | None = None,
        accelerator: str = "auto",
        devices: int | list[int] | str = "auto",
        plan_kwargs: dict | None = None,
        datasplitter_kwargs: dict | None = None,
        **trainer_kwargs,
    ):
        """Train on reference cells, simulated pseudo-bulks and (optionally) real bulks.

        Parameters
        ----------
        bulk
            Real bulk samples (counts or TPM, samples x genes), or a MuData set up with
            :meth:`setup_mudata` (its bulk modality); for a model built from a MuData, the
            bulk modality is the default. With ``real_bulk_weight > 0`` (see
            :class:`HPVADE`), without labels, their
            reconstruction adapts the model to the target data (signature, mRNA contents,
            gene-wise platform scale). If the model is untrained and the bulk lacks some of
            the selected genes, genes are re-selected among those shared with it.
        bulk_layer
            Layer of ``bulk`` with the values; ``None`` uses ``bulk.X``.
        max_epochs
            Number of epochs of ``steps_per_epoch`` steps each. The default (6 x 20 = 120
            steps) costs the same for any size of reference. To stop on the validation
            pseudo-bulk loss instead, hold out cells and use scvi-tools' early stopping with
            a larger ``max_epochs``: ``train_size=0.9, early_stopping=True,
            early_stopping_monitor="loss_bulk_validation"`` (``early_stopping_patience``,
            ``early_stopping_min_delta`` as in :class:`~scvi.train.Trainer`).
        lr
            Learning rate of Adam.
        batch_size
            Reference cells per step.
        n_pseudobulk
            Pseudo-bulks simulated per step.
        cells_per_pseudobulk
            Reference cells summed into each pseudo-bulk.
        gene_noise
            Standard deviation of the log-normal gene-wise noise of the pseudo-bulks: each
            gene of each pseudo-bulk is scaled by ``exp(gene_noise * N(0, 1))``, to stand for
            a change of protocol between the reference and real bulks, which summing
            reference cells does not produce. ``0`` (the default) trains on plain sums of
            cells; ``1``, about the log-scale spread of the platform scale between a 10x
            reference and bulk RNA-seq, helped on one real benchmark set and cost on two
            (docs/benchmarks.md).
        steps_per_epoch
            Steps per epoch; each step draws ``batch_size`` reference cells at random.
        adapt
            Update the signature towards the bulks when fitting their platform (a ridge
            regression of each gene on the bulks' fractions, like a reference update).
            ``None`` (default): when ``bulk`` has at least five samples per cell type (each
            gene's update estimates one value per type; on fewer it lost accuracy).
            Of more than 1,000 bulks, a seeded random 1,000 make the platform fit (the
            scale and weights are gene-wise means over samples); all are deconvolved.
        train_size
            Share of cells used for training (the rest is for validation losses).
        validation_size
            Share of cells used for validation; ``None`` is ``1 - train_size``.
        accelerator
            Lightning accelerator (``"auto"``, ``"cpu"``, ``"gpu"``).
        devices
            Lightning devices.
        plan_kwargs
            Passed to :class:`~scvi.train.TrainingPlan` (e.g. ``weight_decay``).
        datasplitter_kwargs
            Passed to the data splitter.
        **trainer_kwargs
            Passed to :class:`~scvi.train.Trainer` (e.g. ``enable_progress_bar=False``).
        """
        bulk_cpm = None
        if bulk is None:
            bulk = self._mudata_bulk
        elif isinstance(bulk, MuData):
            bulk = _mudata_modalities(bulk)[1]
        if bulk is not None:
            check_bulk(bulk, layer=bulk_layer)
            _, missing = match_genes(bulk.var_names, self.genes_)
            if missing and not self.is_trained_:
                # genes are re-selected among the shared ones: check those are enough
                check_shared_genes(
                    bulk.var_names,
                    self.adata.var_names,
                    min_fraction=0.0,
                    bulk_obs_names=bulk.obs_names,
                    warn_missing=False,
                )
                logger.info(
                    "%d selected genes are missing from the bulk: selecting genes among the "
                    "%d shared ones.",
                    len(missing),
                    len(self.adata.var_names.intersection(bulk.var_names)),
                )
                self._build(self._select_genes(bulk.var_names))
            bulk_cpm = self._bulk_cpm(bulk, layer=bulk_layer)

        Xg, codes, _, _ = self._reference_counts(self.genes_)
        self._counts_cache = None  # from here on the simulator holds the only copy
        simulator = PseudobulkSimulator(
            Xg,
            codes,
            len(self.cell_types_),
            cells_per_mixture=cells_per_pseudobulk,
            gene_noise=gene_noise,
            seed=settings.seed if settings.seed is not None else 0,
        )
        del Xg  # the simulator's reference, released after training (simulator.release)
        splitter_kwargs = {
            "simulator": simulator,
            # real bulks only travel to the loss when they carry weight there
            "bulk_cpm": bulk_cpm if self.module.real_bulk_weight > 0 else None,
            "n_pseudobulk": n_pseudobulk,
            "steps_per_epoch": steps_per_epoch,
            **(datasplitter_kwargs or {}),
        }
        plan_kwargs = {"lr": lr, **(plan_kwargs or {})}
        super().train(
            max_epochs=max_epochs,
            accelerator=accelerator,
            devices=devices,
            train_size=train_size,
            validation_size=validation_size,
            batch_size=batch_size,
            datasplitter_kwargs=splitter_kwargs,
            plan_kwargs=plan_kwargs,
            **trainer_kwargs,
        )
        # Lightning's trainer (and the splitter it holds) lives until the garbage collector
        # breaks its reference cycles: the counts over the genes are released now
        simulator.release()
        self._sync_buffers()
        first_batch = getattr(self.module, "first_batch", None)
        if first_batch is not None:
            self.diagnostics_["first_batch"] = first_batch
        self._set_states()
        if bulk_cpm is not None:
            p = self._predict(bulk_cpm)
            self.diagnostics_["bulk_proportion_range"] = (float(p.min()), float(p.max()))
            logger.info("Predicted proportions of the bulks in [%.4f, %.4f]", p.min(), p.max())
            self._fit_platform(bulk_cpm, adapt=adapt)

    def _sync_buffers(self) -> None:
        """Under DDP, give every rank the buffers of rank 0 (a no-op in one process).

        DDP keeps the parameters in step, but each rank's last steps update its own buffers
        (BatchNorm's running statistics, from its own cells): without this, the ranks would
        encode cells, fit the platform and save slightly different models.
        """
        strategy = getattr(getattr(self, "trainer", None), "strategy", None)
        if strategy is None or getattr(strategy, "world_size", 1) <= 1:
            return
        buffers = {k: v.detach().cpu() for k, v in self.module.named_buffers()}
        buffers = strategy.broadcast(buffers, src=0)
        with torch.no_grad():
            for key, value in self.module.named_buffers():
                value.copy_(buffers[key])


__all__ = ["HPVADE"]
