"""Time of the analysis stages on a study of the paper's size, and the saving of computing
the null runs' statistics with a tenth of the tie draws (StatsConfig.for_nulls), measured
in one run against computing them with every tie draw (the baseline).

    python benchmarks/bench_stats.py                 # 10 runs x 2,000 samples (a few minutes)
    python benchmarks/bench_stats.py --n 5994 --epochs 30   # CUB-200's train set

Runs with real forgetting dynamics (tests/stats_fixtures.decay_arrays): 2 architectures x
5 seeds, the paper's trace definitions for the robustness table, stats.null_draws null runs
per kind. Prints seconds per stage and the ratio baseline / ours for the statistics.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from stats_fixtures import decay_arrays  # noqa: E402

from retention import stats  # noqa: E402
from retention.fitting import fit, nulls  # noqa: E402
from retention.fitting import traces as tr  # noqa: E402

ROBUSTNESS = [
    "since_learned",
    "since_warmup",
    "raw",
    "conditional",
    "since_learned_soft",
    "since_learned_la2",
]


def study(n: int, epochs: int, draws: int, classes: int):
    rng = np.random.default_rng(0)
    lam, floor = np.exp(rng.uniform(-4, 0.7, n)), rng.uniform(0, 0.6, n)
    label = np.arange(n) % classes
    fits, null_fits, runs, seconds = [], [], [], {"fit": 0.0, "nulls": 0.0}
    for arch in ("resnet18", "deit_small"):
        for seed in range(5):
            traces = tr.Traces(
                path="", run_name=f"b/{arch}/{seed}", **decay_arrays(lam, floor, label, epochs, rng, classes)
            )
            start = time.perf_counter()
            fits.append(fit.fit_table(traces, ROBUSTNESS, "since_learned"))
            seconds["fit"] += time.perf_counter() - start
            start = time.perf_counter()
            null_fits.append(nulls.null_fit_table(traces, "since_learned", draws, 0, f"b/{arch}/{seed}"))
            seconds["nulls"] += time.perf_counter() - start
            runs.append((arch, seed))
    return fits, null_fits, runs, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="train samples per run")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--draws", type=int, default=20, help="null runs per run and kind (stats.null_draws)")
    ap.add_argument("--classes", type=int, default=50)
    args = ap.parse_args()
    logging.disable(logging.INFO)
    fits, null_fits, runs, seconds = study(args.n, args.epochs, args.draws, args.classes)
    cfg = stats.StatsConfig(null_draws=args.draws)
    start = time.perf_counter()
    stats.dataset_tables(fits, runs, cfg, "bench", "since_learned", null_fits=null_fits)
    ours = time.perf_counter() - start
    original = stats.StatsConfig.for_nulls
    stats.StatsConfig.for_nulls = lambda self: self  # the baseline: every tie draw on null runs
    try:
        start = time.perf_counter()
        stats.dataset_tables(fits, runs, cfg, "bench", "since_learned", null_fits=null_fits)
        baseline = time.perf_counter() - start
    finally:
        stats.StatsConfig.for_nulls = original
    print(f"10 runs x {args.n} samples x {args.epochs + 1} epochs, {args.draws} null draws per kind")
    print(f"fit_table (6 definitions), all runs: {seconds['fit']:.1f} s")
    print(f"null_fit_table, all runs:            {seconds['nulls']:.1f} s")
    print(
        f"dataset_tables:                      {ours:.1f} s (every tie draw on the null runs: "
        f"{baseline:.1f} s)"
    )
    print(f"ratio baseline / ours: {baseline / ours:.2f}x")


if __name__ == "__main__":
    main()
