"""Command line: ``hpvade demo`` and ``hpvade deconvolve``."""

from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd
    from anndata import AnnData

    from .model import HPVADE

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
    kind: str = "cell",
) -> tuple[pd.DataFrame, float, HPVADE]:
    import hpvade

    start = time.perf_counter()
    model = hpvade.tl.deconvolve(
        bulk,
        ref,
        labels_key=labels_key,
        layer=layer,
        bulk_layer=bulk_layer,
        kind=kind,
        seed=seed,
        return_model=True,
        max_epochs=max_epochs,
        enable_progress_bar=progress,
        enable_model_summary=False,
    )
    return bulk.obsm[PROPORTIONS_KEY], time.perf_counter() - start, model


def _print_results(
    props: pd.DataFrame, bulk: AnnData, mapping: dict[str, str] | None
) -> tuple[pd.DataFrame | None, str | None]:
    """Print the proportions, and their agreement with ``obs['true_*']`` if the bulk has it.

    Returns the per-type agreement and its one-line summary (``None`` without a truth).
    """
    import pandas as pd

    import hpvade

    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print("\nPredicted cell fractions (rows: samples):")
        print(props.round(3).to_string())
    if not any(str(c).startswith("true_") for c in bulk.obs.columns):
        return None, None
    truth = hpvade.benchmark.truth_from_obs(bulk)
    res = hpvade.benchmark.evaluate(props, truth, mapping=mapping)
    print(f"\nAgainst the measured truth (obs['true_*']), {res['n_samples']} samples:")
    print(res["per_type"].round(3).to_string())
    summary = (
        f"Against obs['true_*'] ({res['n_samples']} samples): mean per-type Pearson r = "
        f"{res['pearson_mean']:.3f}; overall CCC = "
        f"{res['ccc_overall']:.3f}; overall Pearson r = {res['pearson_overall']:.3f}; "
        f"RMSE = {res['rmse']:.3f}; MAE = {res['mae']:.3f}"
    )
    print(summary.split(": ", 1)[1])
    return res["per_type"], summary


def _demo(args: argparse.Namespace) -> int:
    import hpvade

    ref = hpvade.data.pbmc3k_reference()
    bulk = hpvade.data.finotello2019_bulk()
    print(
        f"hpvade demo: reference pbmc3k ({ref.n_obs} cells x {ref.n_vars} genes, "
        f"{ref.obs['cell_type'].nunique()} cell types) -> Finotello 2019 ({bulk.n_obs} PBMC "
        "bulks, flow-cytometry truth)"
    )
    props, seconds, _ = _run(
        ref,
        bulk,
        labels_key="cell_type",
        layer=None,
        bulk_layer=None,
        max_epochs=args.max_epochs,
        seed=args.seed,
        progress=args.progress,
    )
    _print_results(props, bulk, hpvade.data.PBMC_LABEL_MAPPING)
    print(f"\nWall time (set-up, training, prediction): {seconds:.1f} s")
    return 0


def _check_paths(args: argparse.Namespace) -> None:
    """Fail on output paths before reading and training, not after."""
    from ._io import InputFileError

    for option, value in (("--out", args.out), ("--report", args.report)):
        if value is not None and not Path(value).resolve().parent.is_dir():
            raise InputFileError(
                f"The folder of {option} '{value}' does not exist: create it first "
                f"(mkdir -p {Path(value).parent})."
            )
    if args.save_model is not None:
        target = Path(args.save_model)
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise InputFileError(
                f"--save-model '{target}' already exists and is not an empty folder; "
                "pass a new folder (hpvade does not overwrite a saved model)."
            )
    if args.model is not None and not (Path(args.model) / "model.pt").is_file():
        raise InputFileError(
            f"--model '{args.model}' is not a saved hpvade model (no model.pt in it); pass "
            "the folder written by --save-model or model.save(...)."
        )
    if args.model is None and args.labels_key is None:
        raise InputFileError(
            "--labels-key is required to train a model (the obs column of the reference's "
            "cell types); it can be left out only with --model."
        )


def _read_reference(path: str) -> AnnData:
    import anndata as ad

    from ._io import InputFileError

    if not Path(path).is_file():
        raise InputFileError(f"The reference file '{path}' does not exist (or is not a file).")
    if not path.lower().endswith(".h5ad"):
        raise InputFileError(
            f"The reference '{path}' must be an .h5ad file (cells x genes, raw counts, cell "
            "types in obs): save it with adata.write_h5ad(...), or sc.read_10x_h5 / "
            "sc.read_10x_mtx followed by write_h5ad."
        )
    try:
        return ad.read_h5ad(path)
    except Exception as err:
        raise InputFileError(
            f"Could not read the reference '{path}' as .h5ad ({type(err).__name__}: {err})."
        ) from err


def _load_model(path: str, ref: AnnData) -> HPVADE:
    import hpvade

    from ._io import InputFileError

    try:
        return hpvade.HPVADE.load(path, adata=ref)
    except (ValueError, KeyError) as err:
        raise InputFileError(
            f"The saved model '{path}' does not fit the reference ({err}). Pass the reference "
            "the model was trained on, or train a new model (leave out --model)."
        ) from err


def _deconvolve(args: argparse.Namespace) -> int:
    from ._io import read_bulk
    from ._report import write_report

    _check_paths(args)
    ref = _read_reference(args.reference)
    bulk, read = read_bulk(args.bulk, reference_genes=ref.var_names, layer=args.bulk_layer)
    for line in read.notes:
        print(line)
    if args.model is not None:
        start = time.perf_counter()
        model = _load_model(args.model, ref)
        message = (
            f"Loaded the trained model from '{args.model}': not training "
            "(--max-epochs and --seed do not apply)."
        )
        logger.info(message)
        print(message)
        props = model.get_proportions(bulk, kind=args.kind)
        seconds = time.perf_counter() - start
    else:
        props, seconds, model = _run(
            ref,
            bulk,
            labels_key=args.labels_key,
            layer=args.reference_layer,
            bulk_layer=None,  # read_bulk put the layer's values in X
            max_epochs=args.max_epochs,
            seed=args.seed,
            progress=args.progress,
            kind=args.kind,
        )
    if args.save_model is not None:
        model.save(args.save_model, overwrite=True)
        print(f"Saved the trained model to '{args.save_model}' (reuse it with --model).")
    props.to_csv(args.out)
    print(f"Wrote {props.shape[0]} samples x {props.shape[1]} cell types to {args.out}")
    intervals = None
    if args.quantiles is not None:
        intervals = _write_quantiles(model, bulk, args)
    evaluation, summary = _print_results(props, bulk, None)
    print(f"\nWall time (set-up, training, prediction): {seconds:.1f} s")
    if args.report is not None:
        inputs = {
            "reference": f"{args.reference} ({ref.n_obs} cells x {ref.n_vars} genes)",
            "bulk": f"{args.bulk} ({read.file_format}, {read.orientation}; "
            f"{bulk.n_obs} samples x {bulk.n_vars} genes, {read.n_matched} in the reference)",
            "model genes": str(len(model.genes_)),
            "cell types": ", ".join(map(str, props.columns)),
            "kind": f"{args.kind} fractions",
            "model": (
                f"loaded from {args.model}"
                if args.model is not None
                else f"trained here: {args.max_epochs} epochs, seed {args.seed}"
            ),
            "labels key": args.labels_key if args.model is None else "(from the saved model)",
            "reference layer": args.reference_layer or "X",
            "bulk layer": args.bulk_layer or "X",
            "saved model": args.save_model or "-",
            "proportions CSV": args.out,
            "wall time": f"{seconds:.1f} s",
        }
        write_report(
            args.report,
            props=props,
            model=model,
            inputs=inputs,
            notes=read.notes,
            evaluation=evaluation,
            summary=summary,
            intervals=intervals,
        )
        print(f"Wrote the report to {args.report}")
    return 0


def _write_quantiles(model, bulk, args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write the bounds of ``--quantiles LO HI`` next to ``--out``; return them."""
    from .model._intervals import quantile_key

    lo, hi = sorted(args.quantiles)
    model.get_proportions(bulk, kind=args.kind, quantiles=(lo, hi), key_added="hpvade")
    out = Path(args.out)
    bounds = []
    for q in (lo, hi):
        df = bulk.obsm[f"hpvade_{quantile_key(q)}"]
        path = out.with_name(f"{out.stem}_{quantile_key(q)}{out.suffix}")
        df.to_csv(path)
        print(f"Wrote the {q:g} quantile of every fraction to {path}")
        bounds.append(df)
    return bounds[0], bounds[1]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpvade",
        description="Cell-type proportions of bulk RNA-seq from a labelled single-cell reference.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--max-epochs", type=int, default=15, help="training epochs of 20 steps each (15)"
        )
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

    dec = sub.add_parser(
        "deconvolve",
        help="train on a reference and deconvolve a bulk",
        description="Train HP-VaDE on a labelled single-cell reference (or load a saved "
        "model) and write the cell-type proportions of the bulk samples.",
        epilog="Exit status: 0 done; 2 bad input (the message says what to change); 1 any "
        "other error (rerun with -v for the traceback).",
    )
    dec.add_argument("--reference", required=True, help="reference .h5ad with raw counts")
    dec.add_argument(
        "--bulk",
        required=True,
        help="bulk counts or TPM: .h5ad, .csv, .tsv/.txt (optionally .gz) or .parquet; genes "
        "x samples or samples x genes (chosen from the overlap with the reference's genes)",
    )
    dec.add_argument(
        "--labels-key", default=None, help="obs column of the cell types (not with --model)"
    )
    dec.add_argument("--reference-layer", default=None, help="layer of the reference's counts")
    dec.add_argument("--bulk-layer", default=None, help="layer of an .h5ad bulk's values")
    dec.add_argument("--out", required=True, help="CSV file for the proportions")
    dec.add_argument(
        "--kind",
        choices=("cell", "mrna"),
        default="cell",
        help="fractions of cells (cell, the default) or of mRNA (mrna)",
    )
    dec.add_argument(
        "--quantiles",
        nargs=2,
        type=float,
        metavar=("LO", "HI"),
        default=None,
        help="also write these quantiles of every fraction (e.g. 0.05 0.95: a 90%% interval) "
        "to OUT_q05.csv and OUT_q95.csv, and draw them in the report",
    )
    dec.add_argument(
        "--save-model", metavar="DIR", default=None, help="save the trained model to DIR"
    )
    dec.add_argument(
        "--model",
        metavar="DIR",
        default=None,
        help="use the model saved in DIR (by --save-model) instead of training one",
    )
    dec.add_argument(
        "--report",
        metavar="HTML",
        default=None,
        help="write a self-contained HTML report (figures, table, inputs, versions)",
    )
    common(dec)
    dec.set_defaults(func=_deconvolve)
    return parser


def _raised_in_hpvade(err: BaseException) -> bool:
    """Whether the innermost frame of ``err`` is hpvade's own code (an input check)."""
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    package = Path(__file__).resolve().parent
    return package in Path(tb.tb_frame.f_code.co_filename).resolve().parents


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hpvade`` command.

    Exit status: 0 done; 2 bad input (hpvade's input checks, a file that cannot be read, an
    unknown format, a bulk whose genes do not match the reference's; the message says what
    to change); 1 anything else (a bug or a failure of the machine: rerun with -v for the
    traceback).
    """
    from ._io import InputFileError

    args = _parser().parse_args(argv)
    _configure(args.threads, args.verbose)
    try:
        return args.func(args)
    except InputFileError as err:
        print(f"hpvade: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # unreadable or unwritable file
        print(f"hpvade: error: {err}", file=sys.stderr)
        return 2
    except (ValueError, KeyError) as err:
        if _raised_in_hpvade(err):
            print(f"hpvade: error: {err}", file=sys.stderr)
            return 2
        return _internal_error(err, args.verbose)
    except Exception as err:  # noqa: BLE001 - the command's last resort: a message and status 1
        return _internal_error(err, args.verbose)


def _internal_error(err: BaseException, verbose: bool) -> int:
    if verbose:
        traceback.print_exception(err)
    print(
        f"hpvade: internal error: {type(err).__name__}: {err}"
        + ("" if verbose else " (rerun with -v for the traceback)"),
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
