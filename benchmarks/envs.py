"""Virtual environments of the peer methods, one per peer, created on demand.

Each peer gets its own venv under ``.bench_envs/<name>`` (gitignored) so that its
dependencies never touch hpvade's environment. A venv is (re)built when its marker file
does not match the spec below. Usage: ``python benchmarks/envs.py [name ...]``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
ENV_DIR = ROOT / ".bench_envs"
TORCH = "torch==2.13.0"

# name -> (packages installed first, packages, constraints)
# torch goes first (and as a constraint) wherever a peer depends on it, or pip would
# resolve a CUDA build.
SPECS: dict[str, dict[str, list[str]]] = {
    "tape": {"first": [TORCH], "pkgs": ["scTAPE==1.1.2"], "constraints": [TORCH]},
    "scaden": {
        "first": [],
        "pkgs": ["scaden==1.1.2", "setuptools<81", "tf-keras==2.21.0"],
        "constraints": [TORCH],
    },
    "bayesprism": {"first": [TORCH], "pkgs": ["bayesprism==0.1.0"], "constraints": [TORCH]},
    # autogenes 1.0.4 declares `matplotlib (>=3.0.*)`, which pip >= 24.1 rejects
    "autogenes": {
        "pip": ["pip<24.1"],
        "first": [],
        "pkgs": ["autogenes==1.0.4"],
        "constraints": [TORCH],
    },
    "dtangle": {"first": [], "pkgs": ["dtangle==0.1.1"], "constraints": [TORCH]},
    "rectangle": {"first": [], "pkgs": ["rectanglepy==1.7.0"], "constraints": [TORCH]},
    "tumordecon": {
        "first": [],
        "pkgs": ["tumordecon==1.1.1", "setuptools<81"],
        "constraints": [TORCH],
    },
}


def env_python(name: str) -> Path:
    """Path of the Python interpreter of a peer's venv."""
    return ENV_DIR / name / "bin" / "python"


def _spec_hash(name: str) -> str:
    return hashlib.sha1(json.dumps(SPECS[name], sort_keys=True).encode()).hexdigest()[:12]


def ensure_env(name: str, *, log: Path | None = None) -> Path:
    """Create the venv of peer ``name`` unless an up-to-date one exists.

    Returns the venv's Python. Raises ``RuntimeError`` with pip's last lines on failure.
    """
    spec = SPECS[name]
    env = ENV_DIR / name
    marker = env / ".hpvade_spec"
    if marker.exists() and marker.read_text().strip() == _spec_hash(name):
        return env_python(name)
    ENV_DIR.mkdir(exist_ok=True)
    t0 = time.time()
    logger.info("creating venv %s", env)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(env)], check=True)
    py = str(env_python(name))
    cons = env / "constraints.txt"
    cons.write_text("\n".join(spec["constraints"]) + "\n")
    pip = [py, "-m", "pip", "install", "--no-input", "--progress-bar", "off"]
    steps = [pip + ["--upgrade", *spec.get("pip", ["pip"])]]
    if spec["first"]:
        steps.append(pip + spec["first"])
    steps.append(pip + ["-c", str(cons)] + spec["pkgs"])
    out = open(log, "a") if log else subprocess.DEVNULL
    try:
        for cmd in steps:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if out is not subprocess.DEVNULL:
                out.write(r.stdout)
            if r.returncode != 0:
                tail = "\n".join(r.stdout.strip().splitlines()[-5:])
                raise RuntimeError(f"pip failed for {name}: {tail}")
    finally:
        if out is not subprocess.DEVNULL:
            out.close()
    marker.write_text(_spec_hash(name) + "\n")
    logger.info("venv %s ready in %.0f s", name, time.time() - t0)
    return env_python(name)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    names = sys.argv[1:] or list(SPECS)
    os.environ.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    for n in names:
        try:
            ensure_env(n, log=ENV_DIR / f"{n}.pip.log")
        except Exception as err:  # noqa: BLE001
            logger.error("%s: %s", n, err)
