#!/usr/bin/env python3
"""Baselines for `npm run bench:kernels`: screening candidates the way the reference method does.

  pandas:  per candidate, DataFrame column mean over the subset for clean and attacked images,
           then scipy.stats.ttest_ind (Welch) and Cohen's d, one candidate at a time, as the
           authors' code scores fingerprints;
  numpy:   a vectorized version of the same (fancy indexing in chunks, ttest_ind along an axis),
           the strongest simple Python baseline.
Reads float32 matrices written by bench/kernels.ts and prints one JSON object.
usage: reference_screen.py DIR n0 n1 N k C_pandas C_numpy
"""
import json
import os
import sys
import time

import numpy as np
import pandas as pd
from scipy import stats


def main():
    d, n0, n1, N, k, c_pandas, c_numpy = sys.argv[1], *map(int, sys.argv[2:8])
    clean = np.fromfile(os.path.join(d, "clean.f32"), dtype=np.float32).reshape(n0, N)
    attacked = np.fromfile(os.path.join(d, "attacked.f32"), dtype=np.float32).reshape(n1, N)
    cands = np.fromfile(os.path.join(d, "candidates.u32"), dtype=np.uint32).reshape(-1, k).astype(np.int64)

    df0, df1 = pd.DataFrame(clean), pd.DataFrame(attacked)
    t0 = time.perf_counter()
    for c in cands[:c_pandas]:
        x0 = df0[c].mean(axis=1)
        x1 = df1[c].mean(axis=1)
        r = stats.ttest_ind(x1, x0, equal_var=False)
        pooled = np.sqrt(((n0 - 1) * x0.var() + (n1 - 1) * x1.var()) / (n0 + n1 - 2))
        _ = (r.pvalue, (x1.mean() - x0.mean()) / pooled)
    t_pandas = time.perf_counter() - t0

    t0 = time.perf_counter()
    chunk = 2000
    for s in range(0, c_numpy, chunk):
        c = cands[s:min(c_numpy, s + chunk)]
        x0 = clean[:, c].mean(axis=2, dtype=np.float64)  # [n0 x chunk]
        x1 = attacked[:, c].mean(axis=2, dtype=np.float64)
        r = stats.ttest_ind(x1, x0, axis=0, equal_var=False)
        pooled = np.sqrt(((n0 - 1) * x0.var(axis=0, ddof=1) + (n1 - 1) * x1.var(axis=0, ddof=1)) / (n0 + n1 - 2))
        _ = (r.pvalue, (x1.mean(axis=0) - x0.mean(axis=0)) / pooled)
    t_numpy = time.perf_counter() - t0

    print(json.dumps({
        "pandas_candidates_per_s": c_pandas / t_pandas,
        "numpy_candidates_per_s": c_numpy / t_numpy,
        "pandas_candidates": c_pandas,
        "numpy_candidates": c_numpy,
        "versions": {"numpy": np.__version__, "pandas": pd.__version__, "scipy": __import__("scipy").__version__},
    }))


if __name__ == "__main__":
    main()
