"""The verdicts as instruments, in CI: a seeded, fast calibration on planted truth
(benchmarks/calibrate.py with the generator benchmarks/planted.py).

The full calibration (docs/method.md section 7b) runs 30 replicates of every scenario at the
paper grid's size; here 10 replicates of the scenarios that decide each verdict, with loose
bounds: at the demo's size (3 seeds) a false claim holds at most twice in 10, a true one
found by F1 and F5 at least 4 and 8 times, a study without memory is beyond the null at most
twice; at the paper grid's size (5 seeds: F2's and F3's tests need them) the same for F2 and
F3. The claim axis needs no null runs, so those scenarios run without them (fast); the
memoryless study runs with the default null draws.
"""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import calibrate

REPLICATES = 10


def verdicts(scenarios: list[str], size: str, overrides: list[str]) -> pd.DataFrame:
    cfg, retention = calibrate.settings(overrides)
    tasks = [(s, size, r, 0, cfg, retention) for s in scenarios for r in range(REPLICATES)]
    with ProcessPoolExecutor(max_workers=2) as pool:
        rows = [row for result in pool.map(calibrate.replicate, tasks) for row in result]
    return pd.DataFrame(rows)


def count(
    rows: pd.DataFrame, scenario: str, fid: str, column: str, verdict: str, arch: str | None = None
) -> int:
    part = rows[(rows["scenario"] == scenario) & (rows["id"] == fid)]
    if arch is not None:
        part = part[part["arch"] == arch]
    assert len(part) == REPLICATES * (1 if arch or fid not in ("F3.within", "F6.heldout") else 2)
    return int((part[column] == verdict).sum())


@pytest.fixture(scope="module")
def demo_claims():
    scenarios = ["arch_specific", "shared_decay", "f5_false", "f6_gain", "f6_worse"]
    return verdicts(scenarios, "demo", ["stats.null_draws=0"])


def test_false_claims_rarely_hold_and_true_ones_are_found_at_the_demos_size(demo_claims):
    rows = demo_claims
    # false claims: F1 and F3 in shared_decay (one propensity, stable), F5 in f5_false
    assert count(rows, "shared_decay", "F1.difference", "claim_verdict", "holds") <= 2
    for arch in ("cnn", "vit"):
        assert count(rows, "shared_decay", "F3.within", "claim_verdict", "holds", arch) <= 2
        assert count(rows, "f6_gain", "F6.heldout", "claim_verdict", "holds", arch) <= 2
    assert count(rows, "f5_false", "F5.meta", "claim_verdict", "holds") <= 2
    # true claims
    assert count(rows, "arch_specific", "F1.difference", "claim_verdict", "holds") >= 4
    assert count(rows, "shared_decay", "F5.meta", "claim_verdict", "holds") >= 8
    # "no improvement" holds when spaced is worse, and the verdict says it is worse
    worse = rows[(rows["scenario"] == "f6_worse") & (rows["id"] == "F6.heldout")]
    assert (worse["claim_verdict"] == "holds").sum() >= 12


def test_a_study_without_memory_is_rarely_beyond_the_null():
    rows = verdicts(["memoryless_curve"], "demo", [])
    beyond = rows[rows["null_verdict"] == "beyond null"].groupby("id").size()
    assert (beyond <= 2).all(), beyond
    # its F5 is not read as forgetting: a chance hit is not learning
    assert count(rows, "memoryless_curve", "F5.meta", "claim_verdict", "holds") <= 2


def test_f2_and_f3_find_true_claims_and_keep_false_ones_out_at_the_paper_grids_size():
    rows = verdicts(["unstable", "shared_sets", "f2_true", "f2_false"], "paper", ["stats.null_draws=0"])
    for arch in ("resnet18", "deit_small"):
        assert count(rows, "unstable", "F3.within", "claim_verdict", "holds", arch) >= 6
        assert count(rows, "shared_sets", "F3.within", "claim_verdict", "holds", arch) <= 2
    assert count(rows, "f2_true", "F2.arch_difference", "claim_verdict", "holds") >= 6
    assert count(rows, "f2_false", "F2.arch_difference", "claim_verdict", "holds") <= 2


def test_rates_come_with_exact_binomial_intervals():
    lo, hi = calibrate.clopper_pearson(0, 30)
    assert lo == 0 and hi == pytest.approx(0.1157, abs=1e-4)
    lo, hi = calibrate.clopper_pearson(24, 30)
    assert lo == pytest.approx(0.6143, abs=1e-3) and hi == pytest.approx(0.9229, abs=1e-3)
