"""Benchmark: our vectorised decay fit against a scipy.optimize.curve_fit loop.

Fits the same paper-like binary retention traces (33 epochs, t = 0..32, since_learned
definition, the traces with status ``fitted``) with

* scipy.optimize.curve_fit, bounded (lam in [0, lambda_max], b in [0, 1], method trf),
  p0 = (0.5, 0.5), one trace at a time in a Python loop, default tolerances;
* retention.fitting.fit.fit_decay, all traces in one call;

in one run, and prints the time ratio and how often each has the lower SSE (ties:
|SSE difference| <= 1e-9). The traces come from retention.fitting.simulate.simulate_traces.

    python benchmarks/bench_fit.py              # 20,000 traces, full curve_fit loop
    python benchmarks/bench_fit.py --n 50000 --curve-fit-subsample 5000

With --curve-fit-subsample K, curve_fit runs on the first K traces only: its time for
all traces is extrapolated from the per-trace time (said so in the output) and the SSE
comparison covers those K traces.
"""

import argparse
import time
import warnings

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from retention.fitting import fitsolve
from retention.fitting.fit import fit_decay
from retention.fitting.simulate import simulate_traces
from retention.fitting.traces import build_traces


def paper_like_traces(n: int, epochs: int, seed: int):
    """At least n since_learned traces with status fitted; returns y, mask of the first n."""
    n_samples = int(n * 1.15) + 100
    while True:
        arrays = simulate_traces(n_samples=n_samples, n_heldout=10, epochs=epochs, seed=seed)
        ts = build_traces(arrays["correct"], arrays["p_true"], arrays["t"], "since_learned")
        rows = np.flatnonzero(ts.status == "fitted")
        if rows.size >= n:
            rows = rows[:n]
            return ts.y[rows], ts.mask[rows]
        n_samples = int(n_samples * 1.3)


def decay(tau, lam, b):
    return b + (1.0 - b) * np.exp(-lam * tau)


def curve_fit_loop(y: np.ndarray, mask: np.ndarray, lambda_max: float):
    n = y.shape[0]
    lam, b, sse = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.inf)
    failures = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        for i in range(n):
            yi = y[i, mask[i]]
            ti = np.arange(yi.size, dtype=np.float64)
            try:
                p, _ = curve_fit(decay, ti, yi, p0=(0.5, 0.5), bounds=([0.0, 0.0], [lambda_max, 1.0]))
            except (RuntimeError, ValueError):
                failures += 1
                continue
            lam[i], b[i] = p
            sse[i] = float(np.sum((yi - decay(ti, *p)) ** 2))
    return lam, b, sse, failures


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=20000, help="number of traces (default 20000)")
    parser.add_argument("--epochs", type=int, default=32, help="E: epochs t = 0..E (default 32: 33 points)")
    parser.add_argument("--lambda-max", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of our fit (median reported)")
    parser.add_argument(
        "--curve-fit-subsample",
        type=int,
        default=0,
        help="run curve_fit on the first K traces only and extrapolate its time (0: all)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    y, mask = paper_like_traces(args.n, args.epochs, args.seed)
    n = y.shape[0]
    lengths = mask.sum(axis=1)
    n_unique = np.unique(np.packbits(np.concatenate([y.astype(bool), mask], axis=1), axis=1), axis=0).shape[0]
    print(
        f"traces: {n} binary since_learned traces (status fitted), epochs t = 0..{args.epochs}, "
        f"points per trace {lengths.min()}..{lengths.max()} (median {int(np.median(lengths))}), {n_unique} "
        "distinct"
    )

    def time_ours(repeats):
        wall, cpu = [], []
        for _ in range(max(repeats, 1)):
            w0, c0 = time.perf_counter(), time.process_time()
            result = fit_decay(y, mask, args.lambda_max)
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
        return result, wall, cpu

    # our fit is timed before and after the curve_fit loop, so that both see the same
    # machine load; wall-clock and CPU time (the latter is less sensitive to other jobs)
    ours, wall, cpu = time_ours(args.repeats)

    k = n if args.curve_fit_subsample <= 0 else min(args.curve_fit_subsample, n)
    w0, c0 = time.perf_counter(), time.process_time()
    cf_lam, cf_b, cf_sse, failures = curve_fit_loop(y[:k], mask[:k], args.lambda_max)
    cf_wall, cf_cpu = time.perf_counter() - w0, time.process_time() - c0

    _, wall2, cpu2 = time_ours(args.repeats)
    wall, cpu = wall + wall2, cpu + cpu2
    t_ours, c_ours = float(np.median(wall)), float(np.median(cpu))
    print(
        f"ours (fit_decay, all traces in one call), {len(wall)} runs: median wall {t_ours:.4f} s "
        f"({1e6 * t_ours / n:.2f} us per trace), median CPU {c_ours:.4f} s; "
        f"wall runs: {', '.join(f'{t:.3f}' for t in wall)} s"
    )
    # the same without the duplicate-row shortcut (every row fitted), for reference
    unique_rows = fitsolve.unique_rows
    fitsolve.unique_rows = lambda *a: None
    try:
        _, wall3, _ = time_ours(args.repeats)
    finally:
        fitsolve.unique_rows = unique_rows
    print(
        "ours with every row fitted (no de-duplication of identical traces): median wall "
        f"{np.median(wall3):.4f} s"
    )
    scale = n / k
    if k == n:
        print(
            f"curve_fit loop: wall {cf_wall:.2f} s, CPU {cf_cpu:.2f} s for all {n} traces "
            f"({1e3 * cf_wall / n:.3f} ms per trace), {failures} failures"
        )
    else:
        print(
            f"curve_fit loop: wall {cf_wall:.2f} s, CPU {cf_cpu:.2f} s for a SUBSAMPLE of {k} traces "
            f"({1e3 * cf_wall / k:.3f} ms per trace); EXTRAPOLATED to {n} traces: wall "
            f"{cf_wall * scale:.2f} s, "
            f"CPU {cf_cpu * scale:.2f} s; {failures} failures"
        )
    print(
        f"speed-up (curve_fit / ours, medians): wall {cf_wall * scale / t_ours:.0f}x, CPU "
        f"{cf_cpu * scale / c_ours:.0f}x "
        f"(target >= 300x)"
    )

    diff = ours.sse[:k] - cf_sse
    tie = np.abs(diff) <= 1e-9
    ours_lower = (diff < 0) & ~tie
    cf_lower = (diff > 0) & ~tie
    print(
        f"SSE over {k} traces (tie: |difference| <= 1e-9): ours lower {ours_lower.sum()} "
        f"({100 * ours_lower.mean():.2f}%), curve_fit lower {cf_lower.sum()} ({100 * cf_lower.mean():.2f}%), "
        f"ties {tie.sum()} ({100 * tie.mean():.2f}%)"
    )
    finite = np.isfinite(cf_sse)
    print(
        f"largest SSE excess of ours over curve_fit: {max(float(diff[finite].max()), 0.0):.3e}; "
        f"total SSE ours {ours.sse[:k].sum():.4f}, curve_fit {cf_sse[finite].sum():.4f} (+{(~finite).sum()} "
        "failed)"
    )
    if cf_lower.any():
        print(f"  ours higher on {cf_lower.sum()} traces by up to {diff[cf_lower].max():.3e}")


if __name__ == "__main__":
    main()
