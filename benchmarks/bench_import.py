"""Importing a CUB-sized grid's long table (source: traces) against reading the same table
with pandas alone, measured in one run.

    python benchmarks/bench_import.py               # 6,000 samples x 33 epochs x 20 runs (4 million rows)
    python benchmarks/bench_import.py --format csv  # the same table as CSV

The table has the export's columns (docs/contracts.md "Long table": arch, seed, split,
sample_id, label, class_name, source, epoch, t, correct, p_true, loss, el2n, pred), 200
classes, 3 warmup epochs. "ours" is the whole import of retention.dynamics.importing.import_dataset:
read, check every row, build each run's arrays, write 20 traces.npz and the manifest, and
read each traces.npz back through the contract. The baseline is pd.read_parquet (or
pd.read_csv) of the same file and nothing else. Each is timed --repeats times, the
fastest kept. Prints both, the ratio ours / pandas, and whether ours is within --limit
seconds (issue 26: 10 s on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from retention import io  # noqa: E402
from retention.dynamics import importing as importer  # noqa: E402
from retention.dynamics.export import EXPORT_COLUMNS  # noqa: E402


def grid_table(n: int, epochs: int, runs: int, classes: int, warmup: int = 3, seed: int = 0) -> pd.DataFrame:
    """A long table of ``runs`` runs (2 archs), ``n`` train samples, ``epochs`` epochs each."""
    rng = np.random.default_rng(seed)
    label = np.arange(n) % classes
    width, rows = epochs, n * epochs
    frames = []
    for r in range(runs):
        arch, s = ("resnet18", "deit_small")[r % 2], r // 2
        correct = rng.random(rows) < 0.7
        labels = np.repeat(label, width)
        pred = np.where(correct, labels, (labels + 1 + rng.integers(0, classes - 1, rows)) % classes)
        p = np.where(correct, rng.uniform(0.5, 1.0, rows), rng.uniform(0.0, 0.49, rows)).astype(np.float32)
        frames.append(
            pd.DataFrame(
                {
                    "arch": arch,
                    "seed": np.int64(s),
                    "split": "train",
                    "sample_id": np.repeat(np.arange(n, dtype=np.int64), width),
                    "label": labels,
                    "class_name": pd.Categorical.from_codes(
                        labels, categories=[f"class {k:03d}" for k in range(classes)]
                    ),
                    "source": pd.Categorical.from_codes(
                        np.repeat(np.arange(n), width), categories=[f"images/{i:05d}.jpg" for i in range(n)]
                    ),
                    "epoch": np.tile(np.arange(1, width + 1, dtype=np.int64), n),
                    "t": np.tile(np.arange(width, dtype=np.int64) - (warmup - 1), n),
                    "correct": correct,
                    "p_true": p,
                    "loss": -np.log(np.maximum(p, 1e-7)),
                    "el2n": (1 - p) * np.float32(1.4),
                    "pred": pred.astype(np.int32),
                }
            )
        )
    table = pd.concat(frames, ignore_index=True)
    for col in ("arch", "split", "source", "class_name"):
        table[col] = table[col].astype("category")
    return table[list(EXPORT_COLUMNS)]


def fastest(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=6000, help="train samples per run (CUB-200: 5,994)")
    ap.add_argument("--epochs", type=int, default=33, help="epochs per run, warmup included")
    ap.add_argument("--runs", type=int, default=20, help="runs (two architectures)")
    ap.add_argument("--classes", type=int, default=200)
    ap.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--limit", type=float, default=10.0, help="seconds the import may take")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_import.") as tmp:
        tmp = Path(tmp)
        table = grid_table(args.n, args.epochs, args.runs, args.classes)
        path = tmp / f"grid.{args.format}"
        io.save_table(path, table)
        keys = list(dict.fromkeys(zip(table["arch"].astype(str), table["seed"])))
        del table
        outputs = {f"{a}/seed{s}": str(tmp / "runs" / a / f"seed{s}" / "traces.npz") for a, s in keys}
        read = pd.read_parquet if args.format == "parquet" else pd.read_csv
        pandas_s = fastest(lambda: read(path), args.repeats)
        ours_s = fastest(
            lambda: importer.import_dataset(
                {"format": "table", "path": str(path)}, outputs, tmp / "manifest.csv"
            ),
            args.repeats,
        )
        rows = args.n * args.epochs * args.runs
        print(
            f"{rows:,} rows ({args.n:,} samples x {args.epochs} epochs x {len(keys)} runs), "
            f"{path.stat().st_size / 2**20:.0f} MiB {args.format}, {os.cpu_count()} cores"
        )
        print(f"pandas alone (read_{args.format}): {pandas_s:.2f} s")
        print(f"ours (read, check, {len(keys)} traces.npz written and read back): {ours_s:.2f} s")
        print(f"ratio ours / pandas: {ours_s / pandas_s:.2f}")
        verdict = "within" if ours_s <= args.limit else "OVER"
        print(f"limit {args.limit:g} s: {verdict} ({ours_s:.2f} s)")


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.ERROR)
    main()
