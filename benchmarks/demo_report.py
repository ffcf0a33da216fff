"""What a finished demo (or any run of the workflow) looks like: accuracy, bounds, job time.

Reads a workflow directory after `make demo` and prints two tables:

* per run: held-out accuracy at t = 0 (end of head warmup) and at the last epoch
  (metrics.csv), and from the fits of the configured trace definition the share of
  fitted lambda at lambda_max (``at_max``), the share of eligible samples (fitted or
  unforgettable) with lambda = 0 (``at_zero_elig``) and at lambda_max
  (``fitted_at_max_of_elig``);
* per rule: jobs, job seconds (Snakemake's benchmark files, benchmarks/<rule>/...tsv),
  their share, and seconds per job; plus the wall time from the first job's start to the
  last job's end, taken from the benchmark files' modification times and seconds.

    python benchmarks/demo_report.py                 # the current directory
    python benchmarks/demo_report.py --workdir /tmp/demo --lambda-max 5
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def run_table(workdir: Path, lambda_max: float = 5.0) -> pd.DataFrame:
    """One row per fine-tuning run of results/runs/{dataset}/{arch}/seed{seed}."""
    rows = []
    for metrics_path in sorted(workdir.glob("results/runs/*/*/seed*/metrics.csv")):
        dataset, arch, seed = metrics_path.parts[-4:-1]
        metrics = pd.read_csv(metrics_path)
        row = {
            "run": f"{dataset}/{arch}/{seed}",
            "heldout_t0": float(metrics.loc[metrics["t"] == 0, "heldout_acc"].iloc[0]),
            "heldout_end": float(metrics["heldout_acc"].iloc[-1]),
        }
        fits_path = workdir / "results" / "fits" / dataset / arch / f"{seed}.parquet"
        if fits_path.exists():
            fits = pd.read_parquet(fits_path)
            fits = fits[fits["primary"]]
            fitted = fits[fits["status"] == "fitted"]
            eligible = fits[fits["status"].isin(["fitted", "unforgettable"])]
            at_max = np.isclose(eligible["lambda"], lambda_max)
            row.update(
                at_max=float(np.isclose(fitted["lambda"], lambda_max).mean()),
                at_zero_elig=float((eligible["lambda"] == 0).mean()),
                fitted_at_max_of_elig=float(at_max.mean()),
                n_fitted=len(fitted),
            )
        rows.append(row)
    return pd.DataFrame(rows)


def job_table(workdir: Path) -> tuple[pd.DataFrame, float]:
    """Job seconds per rule from benchmarks/<rule>/**.tsv, and the wall seconds they span."""
    rows, spans = [], []
    for path in sorted((workdir / "benchmarks").glob("*/**/*.tsv")):
        rule = path.relative_to(workdir / "benchmarks").parts[0]
        seconds = float(pd.read_csv(path, sep="\t")["s"].iloc[0])
        rows.append({"rule": rule, "s": seconds})
        end = path.stat().st_mtime
        spans.append((end - seconds, end))
    jobs = pd.DataFrame(rows)
    if jobs.empty:
        return jobs, float("nan")
    table = jobs.groupby("rule")["s"].agg(jobs="count", job_s="sum").sort_values("job_s", ascending=False)
    table["share"] = table["job_s"] / table["job_s"].sum()
    table["s_per_job"] = table["job_s"] / table["jobs"]
    table.loc["total"] = [
        table["jobs"].sum(),
        table["job_s"].sum(),
        1.0,
        table["job_s"].sum() / table["jobs"].sum(),
    ]
    wall = max(e for _, e in spans) - min(s for s, _ in spans)
    return table, wall


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=Path("."), help="the workflow directory")
    parser.add_argument("--lambda-max", type=float, default=5.0, help="config retention.lambda_max")
    args = parser.parse_args()
    pd.set_option("display.width", 200)
    runs = run_table(args.workdir, args.lambda_max)
    print(runs.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if not runs.empty:
        arch = runs["run"].str.rsplit("/", n=1).str[0]
        print("\nper dataset and arch, min-max over seeds:")
        summary = runs.drop(columns="run").groupby(arch).agg(["min", "max"])
        print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    jobs, wall = job_table(args.workdir)
    print(f"\njob time per rule (wall from first job start to last job end: {wall:.0f} s):")
    print(jobs.to_string(float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
