"""BayesPrism (bayesprism 0.1.0, the PyTorch port of Chu et al. 2022).

Reference: raw counts of the single cells with their types (cell states = types);
mixture: raw counts (TPM for Hoek), as the authors recommend. Its Gibbs sampler loops
over genes in Python, so, for the 2-core machine: restricted to the union of the top 20
marker genes per type (ranked as for the nu-SVR baseline) and shortened chains (200
iterations, 100 burn-in, instead of 1,000 / 500); torch.distributions argument
validation switched off (same draws, less overhead). Final theta after the reference
update.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from _common import args, cpm, markers, type_means, write
from returns.maybe import Some
from returns.result import Failure

N_MARKERS = 20
CHAIN, BURN = 200, 100


def main() -> None:
    d, out, _ = args()
    import bayesprism as bp

    nt = int(os.environ.get("OMP_NUM_THREADS", "1"))
    torch.set_num_threads(nt)
    torch.distributions.Distribution.set_default_validate_args(False)
    types = d["types"]
    genes = d["genes"].astype(str)
    samples = d["samples"].astype(str)
    g = markers(type_means(cpm(d["ref_X"]), d["ref_labels"], types), N_MARKERS)
    ref = d["ref_X"][:, g].astype(np.float64)
    mix = d["bulk_X"][:, g].astype(np.float64)
    prism = bp.new_prism(
        ref,
        tuple(d["ref_labels"].tolist()),
        Some(tuple(d["ref_labels"].tolist())),
        mix,
        gene_names=Some(tuple(genes[g].tolist())),
        bulk_names=Some(tuple(samples.tolist())),
    )
    if isinstance(prism, Failure):
        raise RuntimeError(str(prism.failure()))
    ctrl = bp.GibbsControl(chain_length=CHAIN, burn_in=BURN, thinning=2, num_threads=nt)
    res = bp.run_prism(prism.unwrap(), gibbs_control=Some(ctrl))
    if isinstance(res, Failure):
        raise RuntimeError(str(res.failure()))
    frac = bp.get_fraction(res.unwrap(), "final", "type")
    if isinstance(frac, Failure):
        raise RuntimeError(str(frac.failure()))
    df = frac.unwrap()
    order = {str(b): i for i, b in enumerate(df["bulk_id"].to_list())}
    mat = np.column_stack([np.asarray(df[t].to_list(), dtype=float) for t in types])
    write(out, mat[[order[s] for s in samples]], samples, types)


if __name__ == "__main__":
    main()
