"""Command line: ``hpvade demo`` and ``hpvade deconvolve``."""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd
    from anndata import AnnData

from ._constants import PROPORTIONS_KEY

logger = logging.getLogger("hpvade")


def _configure(threads: int | None, verbose: bool) -> None:
    import torch

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    for name in ("lightning", "lightning.pytorch", "scvi"):
        logging.getLogger(name).setLevel(logging.WARNING if not verbose else logging.INFO)
    if threads:
        torch.set_num_threads(threads)
    warnings.filterwarnings("ignore", module="lightning")


def _run(
    ref: AnnData,
    bulk: AnnData,
    *,
    labels_key: str,
    layer: str | None,
    bulk_layer: str | None,
    max_epochs: int,
    seed: int,
    progress: bool,
) -> tuple[pd.DataFrame, float]:
    import hpvade

    start = time.perf_counter()
    hpvade.tl.deconvolve(
        bulk,
        ref,
        labels_key=labels_key,
        layer=layer,
        bulk_layer=bulk_layer,
        max_epochs=max_epochs,
        seed=seed,
        enable_progress_bar=progress,
        enable_model_summary=False,
    )
    return bulk.obsm[PROPORTIONS_KEY], time.perf_counter() - start


def _report(props: pd.DataFrame, bulk: AnnData, mapping: dict[str, str] | None) -> None:
    import pandas as pd

    import hpvade

    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print("\nPredicted cell fractions (rows: samples):")
        print(props.round(3).to_string())
    truth = hpvade.benchmark.truth_from_obs(bulk)
    if truth.shape[1] == 0:
        return
    res = hpvade.benchmark.evaluate(props, truth, mapping=mapping)
    print(f"\nAgainst the measured truth (obs['true_*']), {res['n_samples']} samples:")
    print(res["per_type"].round(3).to_string())
    print(
        f"mean per-type Pearson r = {res['pearson_mean']:.3f}; overall CCC = "
        f"{res['ccc_overall']:.3f}; overall Pearson r = {res['pearson_overall']:.3f}; "
        f"RMSE = {res['rmse']:.3f}; MAE = {res['mae']:.3f}"
    )


def _demo(args: argparse.Namespace) -> int:
    import hpvade

    ref = hpvade.data.pbmc3k_reference()
    bulk = hpvade.data.finotello2019_bulk()
    print(
        f"hpvade demo: reference pbmc3k ({ref.n_obs} cells x {ref.n_vars} genes, "
        f"{ref.obs['cell_type'].nunique()} cell types) -> Finotello 2019 ({bulk.n_obs} PBMC "
        "bulks, flow-cytometry truth)"
    )
    props, seconds = _run(
        ref,
        bulk,
        labels_key="cell_type",
        layer=None,
        bulk_layer=None,
        max_epochs=args.max_epochs,
        seed=args.seed,
        progress=args.progress,
    )
    _report(props, bulk, hpvade.data.PBMC_LABEL_MAPPING)
    print(f"\nWall time (set-up, training, prediction): {seconds:.1f} s")
    return 0


def _deconvolve(args: argparse.Namespace) -> int:
    import anndata as ad

    ref = ad.read_h5ad(args.reference)
    bulk = ad.read_h5ad(args.bulk)
    props, seconds = _run(
        ref,
        bulk,
        labels_key=args.labels_key,
        layer=args.reference_layer,
        bulk_layer=args.bulk_layer,
        max_epochs=args.max_epochs,
        seed=args.seed,
        progress=args.progress,
    )
    props.to_csv(args.out)
    print(f"Wrote {props.shape[0]} samples x {props.shape[1]} cell types to {args.out}")
    _report(props, bulk, None)
    print(f"\nWall time (set-up, training, prediction): {seconds:.1f} s")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpvade",
        description="Cell-type proportions of bulk RNA-seq from a labelled single-cell reference.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--max-epochs", type=int, default=50, help="training epochs (50)")
        p.add_argument("--seed", type=int, default=0, help="random seed (0)")
        p.add_argument(
            "--threads",
            type=int,
            default=1,
            help="torch CPU threads (1: HP-VaDE's small layers gain little from more, and "
            "several threads on a busy machine slow training several-fold; 0: torch's choice)",
        )
        p.add_argument("--progress", action="store_true", help="show the progress bar")
        p.add_argument("-v", "--verbose", action="store_true", help="log diagnostics")

    demo = sub.add_parser(
        "demo", help="bundled example: pbmc3k reference -> 9 PBMC bulks with flow truth"
    )
    common(demo)
    demo.set_defaults(func=_demo)

    dec = sub.add_parser("deconvolve", help="train on a reference and deconvolve a bulk")
    dec.add_argument("--reference", required=True, help="reference .h5ad with raw counts")
    dec.add_argument("--bulk", required=True, help="bulk .h5ad (counts or TPM), samples x genes")
    dec.add_argument("--labels-key", required=True, help="obs column of the cell types")
    dec.add_argument("--reference-layer", default=None, help="layer of the reference's counts")
    dec.add_argument("--bulk-layer", default=None, help="layer of the bulk's values")
    dec.add_argument("--out", required=True, help="CSV file for the proportions")
    common(dec)
    dec.set_defaults(func=_deconvolve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hpvade`` command."""
    args = _parser().parse_args(argv)
    _configure(args.threads, args.verbose)
    try:
        return args.func(args)
    except (ValueError, KeyError) as err:
        print(f"hpvade: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
