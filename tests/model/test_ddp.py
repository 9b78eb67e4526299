"""Training on several devices through Lightning's DDP strategy: two CPU processes (gloo).

The training runs as a script in a subprocess, as scvi-tools advises for DDP: Lightning's
``"ddp"`` strategies start the other ranks by running ``sys.argv`` again, which would be
pytest here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch

import hpvade

pytestmark = pytest.mark.slow

MAX_EPOCHS = 10

SCRIPT = textwrap.dedent(
    f"""
    import sys
    from pathlib import Path

    import scvi
    import torch

    import hpvade

    def main(out):
        torch.set_num_threads(1)
        scvi.settings.seed = 0
        ref, bulk = hpvade.data.synthetic(seed=0)
        hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
        model = hpvade.HPVADE(ref)
        model.train(
            bulk=bulk,
            max_epochs={MAX_EPOCHS},
            accelerator="cpu",
            devices=2,
            strategy="ddp_find_unused_parameters_true",
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        rank = model.trainer.global_rank
        # every rank ends with the same weights: each one saves its own to be compared
        torch.save(model.module.state_dict(), out / f"state_rank{{rank}}.pt")
        if rank == 0:
            for method in ("refine", "head"):
                props = model.get_proportions(bulk, method=method, key_added=None)
                props.to_csv(out / f"props_{{method}}.csv")
            model.history["train_loss"].to_csv(out / "train_loss.csv")
            model.save(out / "model", overwrite=True)

    if __name__ == "__main__":
        main(Path(sys.argv[1]))
    """
)


def test_ddp_on_two_cpu_processes_trains_one_model(tmp_path):
    script = tmp_path / "train_ddp.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        cwd=tmp_path,  # Lightning's logs go to the working directory
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    assert "distributed_backend=gloo" in done.stdout + done.stderr
    assert "Starting with 2 processes" in done.stdout + done.stderr

    # DDP kept the ranks in step: they saw different cells, yet hold the same weights
    states = [torch.load(tmp_path / f"state_rank{r}.pt") for r in (0, 1)]
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        torch.testing.assert_close(states[0][key], states[1][key], rtol=0, atol=0, msg=key)

    ref, bulk = hpvade.data.synthetic(seed=0)
    truth = bulk.obsm["true_proportions"]
    loss = pd.read_csv(tmp_path / "train_loss.csv", index_col=0).iloc[:, 0]
    assert len(loss) == MAX_EPOCHS
    assert loss.iloc[-1] < loss.iloc[0]
    for method, check in (("refine", "r"), ("head", "mae")):
        props = pd.read_csv(tmp_path / f"props_{method}.csv", index_col=0)
        values = props.to_numpy()
        assert np.isfinite(values).all()
        np.testing.assert_allclose(values.sum(axis=1), 1.0, atol=1e-5)
        expected = truth.loc[props.index, props.columns].to_numpy()
        if check == "r":
            assert np.corrcoef(values.ravel(), expected.ravel())[0, 1] >= 0.99
        else:
            # the head alone shows the training: ~0.05 after one epoch, ~0.015 trained
            assert np.abs(values - expected).mean() <= 0.03

    # the model saved by rank 0 loads in a single process and gives the same fractions
    hpvade.HPVADE.setup_anndata(ref, labels_key="cell_type")
    model = hpvade.HPVADE.load(str(tmp_path / "model"), adata=ref, accelerator="cpu")
    again = model.get_proportions(bulk, key_added=None)
    saved = pd.read_csv(tmp_path / "props_refine.csv", index_col=0)
    np.testing.assert_allclose(again.to_numpy(), saved.loc[again.index, again.columns], atol=1e-5)
