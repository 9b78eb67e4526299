"""Benchmark hpvade against installable deconvolution peers on real bulks with truth.

Usage (from the repository root)::

    python benchmarks/run.py --data ../shared/data --out results/
    python benchmarks/run.py --data ../shared/data --out results/ --methods nnls,tape --sets hoek

Every method runs in its own subprocess (the peers with the Python of their own venv
under ``.bench_envs/``, created on first use by ``benchmarks/envs.py``; hpvade and the
two baselines with this interpreter), reading the same inputs from files and writing a
CSV of proportions. Wall time and peak RSS are those of that subprocess (and its
children). Writes ``results.csv``, ``per_type.csv`` and ``results.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from envs import ensure_env  # noqa: E402

logger = logging.getLogger("benchmarks")


def _import_benchmark():
    """``hpvade.benchmark``, or its files loaded standalone if the package does not import."""
    try:
        import hpvade.benchmark as bm

        return bm
    except Exception as err:  # noqa: BLE001
        import importlib.util
        import types

        logger.warning("`import hpvade` failed (%s); loading hpvade.benchmark standalone", err)
        pkg = types.ModuleType("hpvade_benchmark_standalone")
        src = ROOT / "src" / "hpvade" / "benchmark"
        # a package of its own, so that _bootstrap's relative import of _metrics resolves
        pkg.__path__ = [str(src)]
        sys.modules[pkg.__name__] = pkg
        for name in ("_metrics", "_bootstrap", "_pseudobulk"):
            spec = importlib.util.spec_from_file_location(
                f"{pkg.__name__}.{name}", src / f"{name}.py"
            )
            mod = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = mod
            spec.loader.exec_module(mod)
            for attr in mod.__all__:
                setattr(pkg, attr, getattr(mod, attr))
        return pkg


bm = _import_benchmark()

# --------------------------------------------------------------------------- methods


@dataclasses.dataclass(frozen=True)
class Method:
    """A method: which venv (None = this interpreter), which runner, which variant."""

    env: str | None
    script: str
    variant: str | None = None
    extra_env: tuple[tuple[str, str], ...] = ()
    note: str = ""


METHODS: dict[str, Method] = {
    "hpvade": Method(None, "hpvade_runner.py", note="hpvade public API, defaults"),
    "typemean": Method(
        None, "hpvade_runner.py", "typemean", note="no training: type means, same inference"
    ),
    # ablation rows: one component changed against the default (see hpvade_runner.py)
    "hpvade_states": Method(
        None, "hpvade_runner.py", "states", note="ablation: + per-sample cell states"
    ),
    "hpvade_noscale": Method(
        None, "hpvade_runner.py", "noscale", note="ablation: no platform scale"
    ),
    "hpvade_noadapt": Method(
        None, "hpvade_runner.py", "noadapt", note="ablation: no signature update"
    ),
    "hpvade_head": Method(
        None, "hpvade_runner.py", "head", note="ablation: no per-sample fit (the head)"
    ),
    "nnls": Method(None, "baselines.py", "nnls", note="baseline: NNLS on type-mean CPM"),
    "nusvr": Method(
        None, "baselines.py", "nusvr", note="baseline: CIBERSORT-style nu-SVR, 50 markers/type"
    ),
    "tape": Method("tape", "tape_runner.py", "adaptive", note="scTAPE 1.1.2, adaptive stage"),
    "tape_noadapt": Method("tape", "tape_runner.py", "plain", note="scTAPE 1.1.2, no adaptive"),
    "scaden": Method(
        "scaden",
        "scaden_runner.py",
        extra_env=(("TF_USE_LEGACY_KERAS", "1"), ("TF_CPP_MIN_LOG_LEVEL", "2")),
        note="scaden 1.1.2",
    ),
    "bayesprism": Method("bayesprism", "bayesprism_runner.py", note="bayesprism 0.1.0"),
    "autogenes": Method("autogenes", "autogenes_runner.py", note="autogenes 1.0.4"),
    "dtangle": Method("dtangle", "dtangle_runner.py", note="dtangle 0.1.1"),
    "rectangle": Method(
        "rectangle", "rectangle_runner.py", note="rectanglepy 1.7.0, Unknown dropped"
    ),
    "deconrnaseq": Method(
        "tumordecon", "tumordecon_runner.py", "deconrnaseq", note="TumorDecon 1.1.1"
    ),
    "cibersort_td": Method(
        "tumordecon", "tumordecon_runner.py", "cibersort", note="TumorDecon 1.1.1"
    ),
}

# ------------------------------------------------------------------------------ sets


def quiet_in_process() -> None:
    """Set up a benchmark that runs hpvade in this process: one torch thread, no warnings,
    no Lightning or scvi-tools chatter (generative.py, speed.py, unknown.py)."""
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "scvi", "hpvade"):
        logging.getLogger(name).setLevel(logging.ERROR)
    torch.set_num_threads(1)


PBMC_MAP = {
    "Naive CD4 T": "CD4_T",
    "Memory CD4 T": "CD4_T",
    "CD8 T": "CD8_T",
    "NK": "NK",
    "B": "B",
    "CD14+ Mono": "Monocytes",
    "FCGR3A+ Mono": "Monocytes",
    "DC": "DC",
}
HOEK_MAP = {**PBMC_MAP, "Naive CD4 T": "T", "Memory CD4 T": "T", "CD8 T": "T"}
# the coarse flow columns of Monaco 2019 that the pbmc3k types cover
MONACO_TYPES = ("B", "CD4_T", "CD8_T", "NK", "Monocytes", "DC")


@dataclasses.dataclass
class BenchSet:
    """One benchmark set: reference, bulk, truth and the label mapping."""

    name: str
    ref: ad.AnnData
    bulk: ad.AnnData
    truth: pd.DataFrame
    mapping: dict[str, str] | None
    units: str
    note: str
    truth_kind: str = "cell"


def _read(path: Path) -> ad.AnnData:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; pass --data pointing at shared/data")
    return ad.read_h5ad(path)


def load_set(name: str, data: Path, *, seed: int = 0) -> BenchSet:
    """Build benchmark set ``name`` from the files under ``data``."""
    pbmc_ref = data / "pbmc" / "ref_pbmc3k_hvg2000_counts.h5ad"
    if name.endswith("_1k"):  # the same bulks with the all-genes reference of 983 cells
        s = load_set(name.removesuffix("_1k"), data, seed=seed)
        ref = _read(data / "pbmc" / "ref_pbmc3k_first1k_counts.h5ad")
        note = f"{s.note}; reference: first 1,000 pbmc3k barcodes, all genes"
        return dataclasses.replace(s, name=name, ref=ref, note=note)
    if name == "finotello":
        bulk = _read(data / "pbmc" / "bulk_finotello2019_pbmc_counts.h5ad")
        truth = bm.truth_from_obs(bulk).drop(columns=["unmeasured"], errors="ignore")
        return BenchSet(
            name, _read(pbmc_ref), bulk, truth, PBMC_MAP, "counts", "9 PBMC bulks, flow truth"
        )
    if name == "hoek":
        bulk = _read(data / "pbmc" / "bulk_hoek2015_pbmc_tpm.h5ad")
        truth = bm.truth_from_obs(bulk)
        return BenchSet(
            name, _read(pbmc_ref), bulk, truth, HOEK_MAP, "tpm", "8 PBMC bulks (TPM), FACS truth"
        )
    if name == "monaco":
        bulk = _read(data / "pbmc" / "bulk_monaco2019_pbmc_tpm.h5ad")
        # score the six coarse types only: true_other_T / true_other (about 10% of the cells)
        # have no reference type, and the true_fine_* columns are the coarse ones split up
        truth = bm.truth_from_obs(bulk)[list(MONACO_TYPES)]
        note = "12 PBMC bulks (TPM), flow truth; 6 coarse types scored"
        return BenchSet(name, _read(pbmc_ref), bulk, truth, PBMC_MAP, "tpm", note)
    if name == "cellbench":
        ref = _read(data / "cellbench" / "ref_celseq2_3cl_counts.h5ad")
        bulk = _read(data / "cellbench" / "bulk_rnamix_celseq2_counts.h5ad")
        truth = bm.truth_from_obs(bulk)
        return BenchSet(
            name,
            ref,
            bulk,
            truth,
            None,
            "counts",
            "340 RNA mixtures, 3 cell lines (RNA fractions)",
            truth_kind="mrna",
        )
    if name == "pseudobulk":
        full = _read(pbmc_ref)
        train, held = bm.split_reference(full, labels_key="cell_type", seed=seed)
        bulk, truth = bm.pseudobulk(
            held, labels_key="cell_type", n_samples=50, n_cells=500, alpha=1.0, seed=seed
        )
        note = (
            f"pbmc3k, half of each type held out ({held.n_obs} cells); 50 pseudo-bulks of 500 "
            f"held-out cells (cell fractions); reference = the other {train.n_obs} cells"
        )
        return BenchSet(name, train, bulk, truth, None, "counts", note)
    raise ValueError(f"unknown set {name!r}; choose from {KNOWN_SETS}")


SETS = ["finotello", "hoek", "monaco", "cellbench", "pseudobulk"]
# not run by default: the PBMC bulks against a second reference (983 cells, all 13,714 genes),
# a check that the defaults are not tuned to the 2,000-HVG reference of the main sets
EXTRA_SETS = ["finotello_1k", "hoek_1k"]
KNOWN_SETS = SETS + EXTRA_SETS


def write_inputs(s: BenchSet, d: Path) -> None:
    """Write a set as ``inputs.npz`` + ``params.json`` (genes shared by ref and bulk)."""
    genes = s.ref.var_names[s.ref.var_names.isin(s.bulk.var_names)]
    if len(genes) == 0:
        raise ValueError(f"set {s.name}: reference and bulk share no gene")
    ref_x = s.ref[:, genes].X
    bulk_x = s.bulk[:, genes].X
    ref_x = ref_x.toarray() if sp.issparse(ref_x) else np.asarray(ref_x)
    bulk_x = bulk_x.toarray() if sp.issparse(bulk_x) else np.asarray(bulk_x)
    d.mkdir(parents=True, exist_ok=True)
    np.savez(
        d / "inputs.npz",
        ref_X=ref_x.astype(np.float32),
        ref_labels=s.ref.obs["cell_type"].astype(str).to_numpy().astype(str),
        genes=np.asarray(genes, dtype=str),
        bulk_X=bulk_x.astype(np.float32),
        samples=np.asarray(s.bulk.obs_names, dtype=str),
    )
    params = {
        "set": s.name,
        "bulk_units": s.units,
        "truth_kind": s.truth_kind,
        "n_genes": len(genes),
    }
    (d / "params.json").write_text(json.dumps(params))
    logger.info(
        "set %s: %d ref cells, %d bulks, %d shared genes",
        s.name,
        ref_x.shape[0],
        len(bulk_x),
        len(genes),
    )


# --------------------------------------------------------------------------- running


def _run_child(cmd: list[str], *, env: dict, cwd: Path, log: Path, timeout: float):
    """Run ``cmd`` through ``_launch.py``; return (rc, wall s, peak RSS MiB, timed_out)."""
    usage = cwd / "_usage.json"
    full = [sys.executable, "-S", str(HERE / "_launch.py"), str(usage), *cmd]
    with open(log, "w") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            full, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:  # timeout, or the harness itself interrupted: end the method's group
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        wall = time.perf_counter() - t0
    if usage.exists():
        u = json.loads(usage.read_text())
        return u["rc"], u["wall_s"], u["peak_rss_mb"], timed_out
    return proc.returncode, wall, float("nan"), timed_out


def _reason(log: Path) -> str:
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    errs = [ln for ln in lines if "Error" in ln or "Exception" in ln]
    return (errs[-1] if errs else (lines[-1] if lines else "no output"))[:300]


def run_one(
    method: str, s: BenchSet, inputs: Path, out: Path, *, threads: int, timeout: float
) -> dict:
    """Run one method on one set; never raises, failures are returned as rows."""
    m = METHODS[method]
    row = {"method": method, "set": s.name, "status": "ok", "error": "", "note": m.note}
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{s.name}__{method}.log"
    try:
        envlog = logs / f"{m.env}.pip.log"
        py = sys.executable if m.env is None else str(ensure_env(m.env, log=envlog))
    except Exception as err:  # noqa: BLE001
        return {**row, "status": "failed", "error": f"install: {err}"[:300]}
    preds = out / "predictions"
    preds.mkdir(parents=True, exist_ok=True)
    pred_csv = preds / f"{s.name}__{method}.csv"
    pred_csv.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        {
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "OPENBLAS_NUM_THREADS": str(threads),
            "TF_NUM_INTRAOP_THREADS": str(threads),
            "TF_NUM_INTEROP_THREADS": "1",
            "MPLBACKEND": "Agg",
            "PYTHONUNBUFFERED": "1",
            "PYTHONWARNINGS": "ignore",
            **dict(m.extra_env),
        }
    )
    if m.env is None:
        env["PYTHONPATH"] = str(ROOT / "src")
    cmd = [py, str(HERE / "peers" / m.script), str(inputs), str(pred_csv)]
    if m.variant:
        cmd.append(m.variant)
    with tempfile.TemporaryDirectory(prefix=f"bench_{method}_") as cwd:
        logger.info("running %s on %s", method, s.name)
        rc, wall, rss, timed_out = _run_child(
            cmd, env=env, cwd=Path(cwd), log=log, timeout=timeout
        )
    # a killed method leaves no usage record: its peak RSS is unknown (NaN)
    row.update({"wall_s": round(wall, 1), "peak_rss_mb": round(rss) if np.isfinite(rss) else rss})
    if timed_out:
        return {**row, "status": "failed", "error": f"timed out after {timeout:.0f} s"}
    if rc == -signal.SIGKILL:
        msg = f"killed by SIGKILL (out of memory?) at a peak RSS of {rss:.0f} MiB"
        return {**row, "status": "failed", "error": msg}
    if rc != 0 or not pred_csv.exists():
        return {**row, "status": "failed", "error": f"exit {rc}: {_reason(log)}"}
    try:
        pred = pd.read_csv(pred_csv, index_col=0)
        pred.index = pred.index.astype(str)
        mapping = s.mapping or {c: c for c in pred.columns}
        res = bm.evaluate(pred, s.truth, mapping=mapping)
    except Exception as err:  # noqa: BLE001
        return {**row, "status": "failed", "error": f"evaluate: {err}"[:300]}
    row.update({k: res[k] for k in METRICS})
    row.update({"n_samples": res["n_samples"], "types": " ".join(res["types"])})
    row["per_type"] = res["per_type"].reset_index().assign(method=method, set=s.name)
    logger.info(
        "%s on %s: r=%.3f ccc=%.3f (%.0f s, %.0f MiB)",
        method,
        s.name,
        row["pearson_mean"],
        row["ccc_overall"],
        wall,
        rss,
    )
    return row


METRICS = ["pearson_mean", "ccc_overall", "pearson_overall", "ccc_mean", "rmse", "mae"]

# --------------------------------------------------------------------------- reports


def _fmt(x: float, nd: int = 2) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x:.{nd}f}"


def to_markdown(df: pd.DataFrame, meta: dict) -> str:
    """Markdown report: headline tables (method x set) and the failures."""
    sets = [s for s in KNOWN_SETS if s in set(df["set"])]
    methods = list(dict.fromkeys(df["method"]))
    lines = [
        f"# Benchmark results ({meta['date']})",
        "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}",
        "",
    ]

    def table(title: str, cell) -> None:
        lines.extend([f"## {title}", "", "| method | " + " | ".join(sets) + " |"])
        lines.append("|---|" + "---|" * len(sets))
        for m in methods:
            cells = []
            for s in sets:
                r = df[(df["method"] == m) & (df["set"] == s)]
                if r.empty:
                    cells.append("")
                elif r.iloc[0]["status"] != "ok":
                    cells.append(str(r.iloc[0]["status"]))
                else:
                    cells.append(cell(r.iloc[0]))
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")

    table(
        "Mean per-type Pearson r / overall CCC",
        lambda r: f"{_fmt(r['pearson_mean'])} / {_fmt(r['ccc_overall'])}",
    )
    table("RMSE / MAE", lambda r: f"{_fmt(r['rmse'], 3)} / {_fmt(r['mae'], 3)}")
    table(
        "Wall time (s) / peak RSS (MiB)", lambda r: f"{r['wall_s']:.0f} / {r['peak_rss_mb']:.0f}"
    )
    fails = df[df["status"] != "ok"]
    if len(fails):
        lines.extend(["## Failed or not run", ""])
        for _, r in fails.iterrows():
            lines.append(f"- {r['method']} on {r['set']}: {r['error']}")
        lines.append("")
    return "\n".join(lines)


def machine() -> str:
    """One line describing this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    py = platform.python_version()
    return f"{os.cpu_count()} CPU cores ({cpu}), {mem:.0f} GiB RAM, no GPU, Python {py}"


# ------------------------------------------------------------------------------ main


def _sigterm(signum, frame):  # turn SIGTERM into an exception so children are ended
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run every method on every set, write the reports."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--out", type=Path, default=ROOT / "results")
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    p.add_argument(
        "--sets",
        default=",".join(SETS),
        help=f"comma-separated; also available, not run by default: {', '.join(EXTRA_SETS)}",
    )
    p.add_argument("--threads", type=int, default=2, help="threads per method")
    p.add_argument("--timeout", type=float, default=600, help="seconds per method and set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--resume", action="store_true", help="reuse rows of an earlier run in --out/runs"
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="only rebuild the tables from --out/runs; missing runs are listed as not run",
    )
    a = p.parse_args(argv)
    a.resume = a.resume or a.report_only
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    signal.signal(signal.SIGTERM, _sigterm)
    methods = [m.strip() for m in a.methods.split(",") if m.strip()]
    sets = [s.strip() for s in a.sets.split(",") if s.strip()]
    for m in methods:
        if m not in METHODS:
            p.error(f"unknown method {m!r}; choose from {', '.join(METHODS)}")
    for s in sets:
        if s not in KNOWN_SETS:
            p.error(f"unknown set {s!r}; choose from {', '.join(KNOWN_SETS)}")
    out = a.out.resolve()
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    rows, per_type = [], []
    with tempfile.TemporaryDirectory(prefix="hpvade_bench_") as tmp:
        for sname in sets:
            if not a.report_only:
                s = load_set(sname, a.data, seed=a.seed)
                inputs = Path(tmp) / sname
                write_inputs(s, inputs)
            for m in methods:
                cache = runs / f"{sname}__{m}.json"
                if a.resume and cache.exists():
                    row = json.loads(cache.read_text())
                    pt = row.pop("per_type", None)
                    if pt is not None:
                        per_type.append(pd.DataFrame(pt))
                    rows.append(row)
                    logger.info("reusing %s on %s", m, sname)
                    continue
                if a.report_only:
                    rows.append(
                        {"method": m, "set": sname, "status": "not run", "error": "not run"}
                    )
                    continue
                row = run_one(m, s, inputs, out, threads=a.threads, timeout=a.timeout)
                pt = row.pop("per_type", None)
                cached = dict(row)
                if pt is not None:
                    per_type.append(pt)
                    cached["per_type"] = pt.to_dict(orient="list")
                cache.write_text(json.dumps(cached, default=float))
                rows.append(row)
    df = pd.DataFrame(rows)
    cols = ["method", "set", "status", *METRICS, "n_samples", "wall_s", "peak_rss_mb"]
    cols += [c for c in df.columns if c not in cols]
    df = df.reindex(columns=cols)
    df.to_csv(out / "results.csv", index=False)
    if per_type:
        pd.concat(per_type).to_csv(out / "per_type.csv", index=False)
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python " + " ".join([str(Path(sys.argv[0]))] + sys.argv[1:]),
        "machine": machine() + f"; {a.threads} threads per method",
    }
    md = to_markdown(df, meta)
    (out / "results.md").write_text(md)
    print(md)
    shutil.rmtree(out / "tmp", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
