"""TAPE (scTAPE 1.1.2, Chen et al. 2022), with or without its adaptive stage.

VARIANT ``adaptive`` or ``plain``. Follows ``TAPE.Deconvolution(mode="overall")``:
pseudo-bulks simulated from the raw reference counts (``generate_simulated_data``,
500 cells each, sparse fractions), bulk as given (counts; Hoek's TPM is passed as is,
since TAPE's TPM conversion needs gene lengths we do not have), TAPE's own
``ProcessInputData`` (variance filter, log, per-sample min-max). Reduced for the 2-core
machine: 1,000 simulated samples instead of 5,000 and 32 epochs instead of 128 (the
adaptive stage keeps its defaults: 3 x 300 steps). TAPE's
``predict`` reloads the model with ``torch.load``, which fails on torch >= 2.6, so the
training and adaptive-stage functions are called directly, in a temporary directory.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pandas as pd
import torch
from _common import args, write

N_SIM = 1000
EPOCHS = 32


def main() -> None:
    d, out, variant = args()
    os.chdir(tempfile.mkdtemp(prefix="tape_"))
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from TAPE.simulation import generate_simulated_data
    from TAPE.train import adaptive_stage, reproducibility, train_model
    from TAPE.utils import ProcessInputData

    genes = d["genes"].astype(str)
    samples = d["samples"].astype(str)
    sc = pd.DataFrame(d["ref_X"].astype(np.float32), index=d["ref_labels"], columns=genes)
    bulk = pd.DataFrame(d["bulk_X"].astype(float), index=samples, columns=genes)
    np.random.seed(0)  # noqa: NPY002 - TAPE draws from the global numpy state
    simu = generate_simulated_data(sc_data=sc, samplenum=N_SIM, sparse=True, random_state=0)
    train_x, train_y, test_x, genename, celltypes, samplename = ProcessInputData(
        simu, bulk, sep="\t", datatype="counts", variance_threshold=0.98, scaler="mms"
    )
    reproducibility(0)
    model = train_model(train_x, train_y, batch_size=128, epochs=EPOCHS)
    if variant == "adaptive":
        dec = [{"params": [p for n, p in model.named_parameters() if "decoder" in n]}]
        enc = [{"params": [p for n, p in model.named_parameters() if "encoder" in n]}]
        opt_d = torch.optim.Adam(dec, lr=1e-4)
        opt_e = torch.optim.Adam(enc, lr=1e-4)
        _, _, pred = adaptive_stage(model, test_x, opt_d, opt_e, step=300, max_iter=3)
    elif variant == "plain":
        model.eval()
        model.state = "test"
        with torch.no_grad():
            _, pred, _ = model(torch.from_numpy(test_x).float())
        pred = pred.numpy()
    else:
        raise SystemExit(f"unknown variant {variant!r}")
    pred = pd.DataFrame(pred, index=samplename, columns=list(celltypes))
    write(out, pred.loc[samples, d["types"]].to_numpy(), samples, d["types"])


if __name__ == "__main__":
    main()
