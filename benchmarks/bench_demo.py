"""The demo end to end: its wall time and where its jobs' time goes.

Runs the workflow from scratch in an empty work directory (by default the embedded demo
on 2 cores), then reads every job's Snakemake benchmark file (benchmarks/<rule>/...tsv,
column ``s``) and every fine-tuning job's time breakdown (metrics.csv's ``job_*_s``
columns, retention.training.timing), and prints: the wall time; per rule the jobs, their summed
and mean time; for the fine-tuning rules the mean breakdown per job (start-up, imports,
data, model, first step, epochs, write) and per run (a job of several seeds counts once).
Overlay configs (``--configfile``) compare settings, e.g. ``train: {seeds_per_job: 3}``.

    python benchmarks/bench_demo.py --workdir /tmp/demo            # the demo, 2 cores (minutes)
    python benchmarks/bench_demo.py --workdir /tmp/demo3 \
        --configfile config.yaml config/demo.yaml seeds3.yaml [--cores 2] [--targets FILE ...] \
        [--snakefile ../main/Snakefile] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
FINETUNE_RULES = ("finetune", "finetune_budget")  # one job per seed group
PARTS = ("start", "imports", "data", "model", "first_step", "epochs", "write", "other")


def job_times(workdir: Path) -> pd.DataFrame:
    """One row per job: rule, its benchmark file, seconds."""
    rows = []
    for path in sorted((workdir / "benchmarks").rglob("*.tsv")):
        rule = path.relative_to(workdir / "benchmarks").parts[0]
        if rule in FINETUNE_RULES and "_" in path.stem:  # a group of several seeds (seeds0_1_2.tsv)
            rule += " (seed groups)"
        rows.append(
            {
                "rule": rule,
                "file": str(path.relative_to(workdir)),
                "s": float(pd.read_csv(path, sep="\t")["s"].iloc[0]),
            }
        )
    return pd.DataFrame(rows)


def breakdowns(workdir: Path) -> pd.DataFrame:
    """One row per fine-tuning job: its time parts (from any of its runs' metrics.csv)."""
    rows = {}
    for path in sorted((workdir / "results").rglob("metrics.csv")):
        m = pd.read_csv(path)
        if "job_total_s" not in m.columns:
            continue
        row = m.iloc[0]
        key = (str(path.parent.parent), row["job_total_s"], row["job_imports_s"])  # one per job
        rows[key] = {
            "runs_dir": str(path.parent.relative_to(workdir)),
            "seeds": int(row["job_seeds"]),
            "sampler": "/sampler/" in str(path),
            **{p: row[f"job_{p}_s"] for p in PARTS},
            "total": row["job_total_s"],
        }
    return pd.DataFrame(list(rows.values()))


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, required=True, help="an empty or new directory")
    parser.add_argument(
        "--configfile", type=Path, nargs="+", default=[REPO / "config.yaml", REPO / "config" / "demo.yaml"]
    )
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument(
        "--snakefile",
        type=Path,
        default=REPO / "Snakefile",
        help="another checkout's Snakefile, to measure it the same way (a baseline)",
    )
    parser.add_argument("--targets", nargs="*", default=[], help="build these only (default: all)")
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if any(workdir.iterdir()):
        sys.exit(f"{workdir} is not empty: the demo is measured from scratch")
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(args.snakefile.resolve()),
        "-d",
        str(workdir),
        "--cores",
        str(args.cores),
        *args.targets,
        "--configfile",
        *map(str, (p.resolve() for p in args.configfile)),
    ]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"the workflow failed:\n{proc.stderr[-4000:]}")
    jobs = job_times(workdir)
    by_rule = jobs.groupby("rule")["s"].agg(jobs="count", total_s="sum", mean_s="mean")
    print(
        f"wall {wall:.1f} s for {len(jobs)} jobs on {args.cores} cores (load average {load:.1f} at the "
        "start, "
        f"{os.getloadavg()[0]:.1f} at the end); job time {jobs['s'].sum():.1f} s"
    )
    print(by_rule.round(1).to_string())
    parts = breakdowns(workdir)
    if not parts.empty:
        print("fine-tuning jobs, mean seconds per job (metrics.csv job_*_s) and per run:")
        table = parts.groupby(["sampler", "seeds"])[[*PARTS, "total"]].mean()
        table.insert(0, "jobs", parts.groupby(["sampler", "seeds"]).size())
        print(table.round(2).to_string())
        per_run = parts[[*PARTS, "total"]].sum() / parts["seeds"].sum()
        print("per run, over all fine-tuning jobs: " + ", ".join(f"{k} {v:.2f}" for k, v in per_run.items()))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "wall_s": wall,
                    "cores": args.cores,
                    "load_start": load,
                    "by_rule": by_rule.reset_index().to_dict("records"),
                    "finetune_jobs": parts.to_dict("records"),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
