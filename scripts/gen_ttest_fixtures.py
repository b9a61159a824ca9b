#!/usr/bin/env python3
"""Writes the scipy reference values that the native and TypeScript tests compare against.

Run with Debian's Python (it sees python3-scipy): /usr/bin/python3 scripts/gen_ttest_fixtures.py
Outputs, all whitespace-separated text with full float64 precision (repr):
  native/tests/data/t_dist.tsv            t  df  p           (two-sided, scipy.stats.t.sf * 2)
  native/tests/data/ttest_from_stats.tsv  mean0 sd0 n0 mean1 sd1 n1 welch_t welch_p student_t student_p
  native/tests/data/screen_small.txt      a small screening problem and scipy's per-candidate stats
"""
import os
import sys

import numpy as np
from scipy import stats

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "native", "tests", "data")


def t_dist(rng):
    rows = []
    dfs = [0.5, 1, 1.5, 2, 3, 4.7, 7, 10, 29.3, 50, 100, 398, 798, 1500.25, 1e4, 1e5]
    ts = [0.0, 1e-8, 1e-3, 0.1, 0.5, 1, 1.96, 2.5, 3.3, 5, 8, 12, 20, 40, 100, 1e3, 1e5]
    for df in dfs:
        for t in ts:
            for sign in (1, -1):
                rows.append((sign * t, df, 2 * stats.t.sf(abs(t), df)))
    for _ in range(200):
        df = float(np.exp(rng.uniform(np.log(0.5), np.log(5000))))
        t = float(np.exp(rng.uniform(np.log(1e-4), np.log(60))))
        rows.append((t, df, 2 * stats.t.sf(t, df)))
    return rows


def from_stats(rng):
    rows = []
    for _ in range(300):
        n0 = int(rng.integers(2, 900))
        n1 = int(rng.integers(2, 900))
        m0 = float(rng.normal(0, 2))
        m1 = m0 + float(rng.normal(0, 1)) * float(rng.choice([0.01, 0.1, 1, 3]))
        s0 = float(np.exp(rng.uniform(-4, 1)))
        s1 = float(np.exp(rng.uniform(-4, 1)))
        w = stats.ttest_ind_from_stats(m1, s1, n1, m0, s0, n0, equal_var=False)
        s = stats.ttest_ind_from_stats(m1, s1, n1, m0, s0, n0, equal_var=True)
        rows.append((m0, s0, n0, m1, s1, n1, w.statistic, w.pvalue, s.statistic, s.pvalue))
    return rows


def screen_small(rng):
    """Clean and attacked activations with planted differences, the authors' way of scoring:
    the mean over the subset's columns per image, then scipy's t-test and Cohen's d."""
    n0, n1, N, k, C = 37, 29, 23, 4, 40
    clean = rng.normal(0.3, 1.0, size=(n0, N)).astype(np.float32)
    attacked = rng.normal(0.3, 1.0, size=(n1, N)).astype(np.float32)
    attacked[:, :6] += np.float32(1.5)  # neurons 0..5 separate the groups
    cands = np.stack([rng.choice(N, size=k, replace=False) for _ in range(C)]).astype(np.uint32)
    lines = [f"{n0} {n1} {N} {k} {C}"]
    for m in (clean, attacked):
        for row in m:
            lines.append(" ".join(repr(float(v)) for v in row))
    for c in cands:
        lines.append(" ".join(str(int(v)) for v in c))
    for c in cands:
        x0 = clean[:, c].astype(np.float64).mean(axis=1)
        x1 = attacked[:, c].astype(np.float64).mean(axis=1)
        w = stats.ttest_ind(x1, x0, equal_var=False)
        s = stats.ttest_ind(x1, x0, equal_var=True)
        sd0, sd1 = x0.std(ddof=1), x1.std(ddof=1)
        pooled = np.sqrt(((n0 - 1) * sd0**2 + (n1 - 1) * sd1**2) / (n0 + n1 - 2))
        d = (x1.mean() - x0.mean()) / pooled
        vals = (x0.mean(), sd0, x1.mean(), sd1, w.statistic, w.pvalue, s.statistic, s.pvalue, d)
        lines.append(" ".join(repr(float(v)) for v in vals))
    return lines


def main():
    rng = np.random.default_rng(20261125)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "t_dist.tsv"), "w") as f:
        f.write("# t df p  (scipy %s: 2 * stats.t.sf(|t|, df))\n" % __import__("scipy").__version__)
        for r in t_dist(rng):
            f.write(" ".join(repr(float(v)) for v in r) + "\n")
    with open(os.path.join(OUT, "ttest_from_stats.tsv"), "w") as f:
        f.write("# mean0 sd0 n0 mean1 sd1 n1 welch_t welch_p student_t student_p  (attacked=1 vs clean=0)\n")
        for r in from_stats(rng):
            f.write(" ".join(repr(float(v)) for v in r) + "\n")
    with open(os.path.join(OUT, "screen_small.txt"), "w") as f:
        f.write("\n".join(screen_small(rng)) + "\n")
    print("wrote fixtures to", os.path.normpath(OUT), file=sys.stderr)


if __name__ == "__main__":
    main()
