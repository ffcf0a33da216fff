"""Calibration of the verdicts on studies with a planted truth (docs/method.md, section 7b).

    python benchmarks/calibrate.py --size paper --replicates 30 --jobs 2

Each replicate of each scenario of ``benchmarks/planted.py`` (a generator written apart from
the estimators) is pushed through the project's own fit -> null runs -> statistics ->
findings code (``retention.analyse.analyse_runs``, ``retention.stats.f6``,
``retention.findings.assemble_findings``) with the default statistics settings. Per primary
finding and scenario it prints how often the claim ``holds`` and is ``contradicted``, and
how often the value is ``beyond null``, with exact (Clopper-Pearson) 95% intervals, beside
what the scenario planted: the claim true or false, memory present or not. Then the
targets: a false claim holds in at most 5%; a true claim holds in at least 80%; a study
without memory is beyond the null in at most 5%.

``--out`` writes the table as csv (``--markdown`` as a markdown table too, for
docs/method.md). ``--settings key=value`` overrides a statistics or retention setting
(e.g. ``retention.learned_after=2``, ``stats.rank_score=area``) to compare choices.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

sys.path.insert(0, str(Path(__file__).resolve().parent))
import planted
import planted_scenarios

from retention import findings
from retention.analyse import analyse_runs
from retention.config import fill_defaults, load_schema
from retention.findings.verdicts import TARGETS
from retention.fitting import traces as tr
from retention.stats import f6
from retention.stats.registry import FINDINGS
from retention.stats.settings import StatsConfig

#: the claim each primary finding tests, by the key of the planted truth
CLAIM_OF = {f.id: f.group for f in FINDINGS if f.primary}


def settings(overrides: list[str]) -> tuple[StatsConfig, dict]:
    """The default statistics and retention settings (the schema's), with ``key=value``
    overrides (``stats.<key>`` or ``retention.<key>``)."""
    defaults = fill_defaults({}, load_schema())
    stats, retention = dict(defaults["stats"]), dict(defaults["retention"])
    for item in overrides:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        target = {"stats": stats, "retention": retention}.get(section)
        if target is None or name not in target:
            raise SystemExit(f"--settings {item!r}: expected stats.<key>=<value> or retention.<key>=<value>")
        target[name] = type(target[name])(value) if target[name] is not None else value
    return StatsConfig.from_mapping(stats, retention["lambda_max"]), retention


def replicate(task: tuple) -> list[dict]:
    """The primary rows' verdicts of one replicate of one scenario."""
    scenario, size, rep, seed, cfg, retention = task
    study = planted.generate_study(scenario, size, rep, seed)
    primary = tr.trace_label(retention["trace"], retention["soft"], retention["learned_after"])
    runs = [
        (arch, s, tr.Traces(path="", run_name=f"{scenario}/{arch}/seed{s}", **arrays))
        for arch, s, arrays in study.runs
    ]
    summary = analyse_runs(runs, cfg, scenario, primary, retention["min_points"])
    outcomes = planted.sampler_outcomes(scenario, size, rep, seed)
    sampler = f6.sampler_summary(f6.compare_samplers(outcomes, margin=0.01), scenario, primary)
    table = findings.assemble_findings([summary, sampler], findings.Study(alpha=cfg.alpha))
    rows = []
    for r in table[table["primary"]].itertuples(index=False):
        rows.append(
            {
                "scenario": scenario,
                "replicate": rep,
                "id": r.id,
                "arch": r.arch,
                "claim_true": planted_truth(study, CLAIM_OF[r.id], r.arch),
                "memory": any_memory(
                    study, [a for a in (r.arch, r.arch_b) if a] or [a for a, _, _ in study.runs]
                ),
                "value": r.value,
                "claim_verdict": r.claim_verdict,
                "null_verdict": r.null_verdict,
            }
        )
    return rows


def planted_truth(study, claim: str, arch: str) -> bool | None:
    """Whether the study planted ``claim`` true (for one architecture where the truth
    differs between them, e.g. memory in one architecture only)."""
    entry = study.truth.get(claim)
    if entry is None:
        return None
    by_arch = entry.get("by_arch") if isinstance(entry, dict) else None
    value = (
        by_arch.get(arch, entry["truth"]) if isinstance(by_arch, dict) and arch in by_arch else entry["truth"]
    )
    return {"true": True, "false": False}.get(str(value).lower())


def any_memory(study, archs: list[str]) -> bool | None:
    """Whether the study planted memory in any of ``archs`` (a row's architectures, or all)."""
    truths = [planted_truth(study, "MEMORY", a) for a in dict.fromkeys(archs)]
    return None if any(t is None for t in truths) else any(truths)


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval of a rate k / n (Clopper & Pearson 1934)."""
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(sps.beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(sps.beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def rates(rows: pd.DataFrame) -> pd.DataFrame:
    """Per scenario and finding: the planted truth and the rates of each verdict."""
    out = []
    for (scenario, fid), part in rows.groupby(["scenario", "id"], sort=False):
        n = len(part)
        rec = {
            "scenario": scenario,
            "id": fid,
            "claim_true": part["claim_true"].iloc[0],
            "memory": part["memory"].iloc[0],
            "n": n,
        }
        for name, hit in (
            ("holds", part["claim_verdict"] == "holds"),
            ("contradicted", part["claim_verdict"] == "contradicted"),
            ("beyond_null", part["null_verdict"] == "beyond null"),
        ):
            k = int(hit.sum())
            lo, hi = clopper_pearson(k, n)
            rec |= {name: k / n, f"{name}_low": lo, f"{name}_high": hi}
        rec["not_comparable"] = float((part["claim_verdict"] == "not comparable").mean())
        rec["median_value"] = float(np.nanmedian(part["value"])) if part["value"].notna().any() else math.nan
        out.append(rec)
    return pd.DataFrame(out)


def check_targets(table: pd.DataFrame) -> pd.DataFrame:
    """Each rate that a target applies to, the target and whether it is met."""
    out = []
    for r in table.itertuples(index=False):
        checks = []
        if r.claim_true is False:
            checks.append(("size: a false claim holds", r.holds, "<=", TARGETS["size"]))
        if r.claim_true is True:
            checks.append(("power: a true claim holds", r.holds, ">=", TARGETS["power"]))
        if r.memory is False and not pd.isna(r.beyond_null) and r.id != "F6.heldout":
            checks.append(("no memory: beyond null", r.beyond_null, "<=", TARGETS["null_size"]))
        for what, rate, op, target in checks:
            ok = rate <= target if op == "<=" else rate >= target
            out.append(
                {
                    "scenario": r.scenario,
                    "id": r.id,
                    "target": what,
                    "rate": rate,
                    "bound": f"{op} {target:g}",
                    "met": ok,
                }
            )
    return pd.DataFrame(out)


def package_table(table: pd.DataFrame, size: str, replicates: int) -> pd.DataFrame:
    """Per primary finding: the worst size (the largest rate at which a false claim holds),
    the least power (the smallest rate at which a true claim holds) and the largest rate at
    which a study without memory is beyond the null, over the scenarios: what
    ``retention/findings/calibration.csv`` holds for the findings table."""
    rows = []
    for fid, part in table.groupby("id", sort=False):
        false, true = part[part["claim_true"] == False], part[part["claim_true"] == True]  # noqa: E712
        memoryless = part[part["memory"] == False]  # noqa: E712
        rows.append(
            {
                "id": fid,
                "size": float(false["holds"].max()) if len(false) else math.nan,
                "power": float(true["holds"].min()) if len(true) else math.nan,
                "null_size": float(memoryless["beyond_null"].max())
                if len(memoryless) and fid != "F6.heldout"
                else math.nan,
                "grid": size,
                "replicates": replicates,
            }
        )
    return pd.DataFrame(rows)


def _pct(rate: float, lo: float, hi: float) -> str:
    return f"{rate:.0%} ({lo:.0%}-{hi:.0%})"


def markdown(table: pd.DataFrame) -> str:
    """The rates as a markdown table (docs/method.md)."""
    truth = {True: "true", False: "false", None: "n/a"}
    lines = [
        "| scenario | finding | claim planted | memory planted | n | holds | contradicted | beyond null |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples(index=False):
        lines.append(
            f"| {r.scenario} | {r.id} | {truth.get(r.claim_true, 'n/a')} | {truth.get(r.memory, 'n/a')} | "
            f"{r.n} | "
            f"{_pct(r.holds, r.holds_low, r.holds_high)} | "
            f"{_pct(r.contradicted, r.contradicted_low, r.contradicted_high)} | "
            f"{_pct(r.beyond_null, r.beyond_null_low, r.beyond_null_high)} |"
        )
    return "\n".join(lines) + "\n"


def _one_thread() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=list(planted_scenarios.SIZES), default="demo")
    ap.add_argument("--replicates", type=int, default=20)
    ap.add_argument("--scenarios", nargs="*", default=None, help="default: every scenario")
    ap.add_argument("--seed", type=int, default=0, help="seeds every replicate's study")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument(
        "--settings", nargs="*", default=[], help="overrides: stats.<key>=<v>, retention.<key>=<v>"
    )
    ap.add_argument("--out", help="csv of the rates (and <out>.rows.csv: every replicate's verdicts)")
    ap.add_argument("--markdown", help="markdown table of the rates")
    ap.add_argument(
        "--package",
        action="store_true",
        help="write retention/findings/calibration.csv (the findings' columns)",
    )
    args = ap.parse_args()
    cfg, retention = settings(args.settings)
    scenarios = args.scenarios or list(planted_scenarios.SCENARIOS)
    unknown = sorted(set(scenarios) - set(planted_scenarios.SCENARIOS))
    if unknown:
        raise SystemExit(f"unknown scenario {unknown[0]!r}; known: {', '.join(planted_scenarios.SCENARIOS)}")
    tasks = [(s, args.size, r, args.seed, cfg, retention) for s in scenarios for r in range(args.replicates)]
    start = time.perf_counter()
    _one_thread()
    rows = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for done, result in enumerate(pool.map(replicate, tasks, chunksize=1), 1):
            rows += result
            print(
                f"\r{done}/{len(tasks)} replicates, {time.perf_counter() - start:.0f} s",
                end="",
                file=sys.stderr,
            )
    print(file=sys.stderr)
    rows = pd.DataFrame(rows)
    table = rates(rows)
    targets = check_targets(table)
    with pd.option_context("display.width", 200, "display.max_rows", 500, "display.max_columns", 30):
        print(
            f"size {args.size}, {args.replicates} replicates per scenario, settings "
            f"{args.settings or 'default'}"
        )
        print(markdown(table))
        print(targets.to_string(index=False))
        missed = targets[~targets["met"]]
        print(
            f"\ntargets met: {int(targets['met'].sum())} of {len(targets)}"
            + (
                "; missed: "
                + "; ".join(f"{r.id} {r.scenario} ({r.target} {r.rate:.0%})" for r in missed.itertuples())
                if len(missed)
                else ""
            )
        )
    if args.out:
        table.to_csv(args.out, index=False)
        rows.to_csv(f"{args.out}.rows.csv", index=False)
    if args.markdown:
        Path(args.markdown).write_text(markdown(table))
    if args.package:
        path = Path(findings.__file__).with_name("calibration.csv")
        package_table(table, args.size, args.replicates).to_csv(path, index=False, float_format="%.4g")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
