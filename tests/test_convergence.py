"""Runs that did not converge are named: a fine-tuning or pretraining run whose held-out
accuracy still rises over its last epochs by more than convergence.tolerance, and a
pretraining near chance, in the job's log, in the statistics (Runs.accuracy) and in
findings.md's "Read with care" (which the report shows)."""

from __future__ import annotations

import importlib.util
import logging
import math
import sys

import numpy as np
import pandas as pd
import pytest

from retention import chance, findings, io, stats
from retention.config import fill_defaults, load_schema
from retention.fitting.simulate import simulate_traces
from retention.training import finetune

from .conftest import REPO
from .stats_fixtures import planted

FAST = stats.StatsConfig(bootstrap=50, tie_draws=20, null_draws=0)
DEFAULTS = fill_defaults({}, load_schema())["convergence"]


def test_the_defaults_are_the_schemas():
    assert DEFAULTS == {"epochs": 3, "tolerance": 0.01}


def test_accuracy_rise_compares_the_last_epochs_with_the_ones_before():
    flat = [0.5, 0.8, 0.9, 0.91, 0.9, 0.91, 0.9, 0.91]
    assert chance.accuracy_rise(flat, 3) == pytest.approx((0.91 + 0.9 + 0.91) / 3 - (0.9 + 0.91 + 0.9) / 3)
    assert not chance.still_rising(chance.accuracy_rise(flat, 3), 0.01)
    rising = [0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.87]
    rise = chance.accuracy_rise(rising, 3)
    assert rise == pytest.approx((0.8 + 0.85 + 0.87) / 3 - (0.65 + 0.7 + 0.75) / 3)
    assert chance.still_rising(rise, 0.01) and not chance.still_rising(rise, 0.2)
    # a short run compares its halves; a single epoch says nothing
    assert chance.accuracy_rise([0.2, 0.4, 0.5], 3) == pytest.approx(0.1)
    assert math.isnan(chance.accuracy_rise([0.3], 3)) and not chance.still_rising(math.nan, 0.0)


def heldout_curve(arrays: dict, accuracy_by_epoch) -> dict:
    """``arrays`` with its held-out correctness set to the given accuracy at each t >= 0."""
    t = arrays["t"]
    correct = np.zeros_like(arrays["heldout_correct"])
    n = correct.shape[0]
    for j, acc in zip(np.flatnonzero(t >= 0), accuracy_by_epoch):
        correct[: round(acc * n), j] = True
    return {**arrays, "heldout_correct": correct}


@pytest.fixture
def rising_run():
    arrays = simulate_traces(n_samples=30, n_heldout=100, epochs=7, n_classes=4, seed=0)
    return heldout_curve(arrays, [0.3, 0.4, 0.5, 0.55, 0.6, 0.7, 0.8, 0.87])


def test_a_fine_tuning_run_still_rising_is_warned_about_in_its_log(rising_run, caplog):
    with caplog.at_level(logging.WARNING, logger="retention.training.finetune"):
        assert finetune.warn_near_chance(rising_run, "results/runs/d/vit/seed0", DEFAULTS)
    line = [r.getMessage() for r in caplog.records if "still rising" in r.getMessage()]
    assert len(line) == 1, caplog.text
    assert line[0].startswith(
        "run results/runs/d/vit/seed0: held-out accuracy still rising at the end (87.0%;"
    )
    assert "the mean of its last 3 epochs is 24.0 points above the 3 before" in line[0]
    assert "convergence.tolerance" in line[0] and "train.epochs" in line[0]
    # a run shorter than twice convergence.epochs compares its halves, and says so
    short = simulate_traces(n_samples=30, n_heldout=100, epochs=3, n_classes=4, seed=0)
    acc = chance.run_accuracy(heldout_curve(short, [0.5, 0.6, 0.7, 0.8]), (3, 0.01))
    assert acc.rise_epochs == 2 and acc.rise == pytest.approx(0.2) and acc.rising
    assert "last 2 epochs is 20.0 points above the 2 before" in chance.rising_warning(acc, "r")
    caplog.clear()
    flat = heldout_curve(rising_run, [0.5, 0.8, 0.85, 0.86, 0.87, 0.86, 0.87, 0.86])
    with caplog.at_level(logging.WARNING, logger="retention.training.finetune"):
        assert not finetune.warn_near_chance(flat, "results/runs/d/vit/seed1", DEFAULTS)
    assert "still rising" not in caplog.text


def test_a_pretraining_near_chance_and_rising_is_warned_about(tmp_path, caplog):
    sys.path.insert(0, str(REPO / "scripts"))
    spec = importlib.util.spec_from_file_location("pretrain_script", REPO / "scripts" / "pretrain.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    # 131 classes, as the glyphs; a pretraining that ended at 3.4%, and still rising
    labels = np.arange(131 * 4) % 131
    manifest = pd.DataFrame(
        {
            "label": labels,
            "class_name": [f"g{k}" for k in labels],
            "split": np.where(np.arange(labels.size) % 4 == 0, "heldout", "train"),
        }
    )
    metrics = pd.DataFrame({"heldout_acc": [0.01, 0.015, 0.02, 0.025, 0.03, 0.034]})
    with caplog.at_level(logging.WARNING, logger="retention.training.pretrain"):
        script.warn_convergence(metrics, manifest, DEFAULTS, "glyphs/vit")
    text = caplog.text
    assert (
        "pretraining glyphs/vit: held-out accuracy 3.4% at the end, within 5 points of chance (0.8%)" in text
    )
    assert (
        "pretraining glyphs/vit: held-out accuracy still rising at the end" in text
        and "pretrain.epochs" in text
    )


def infos_for(runs, rising: bool, pretrain=None):
    return [
        stats.RunClassInfo(
            tuple("abcdefg"),
            np.eye(7),
            np.eye(7),
            heldout_acc_t0=0.8,
            heldout_acc_end=0.9,
            chance=0.2,
            heldout_rise=0.04 if rising else 0.0,
            still_rising=rising,
            pretrain=pretrain,
        )
        for _ in runs
    ]


def test_runs_still_rising_and_the_pretraining_reach_findings_read_with_care():
    fits, runs = planted(n=300, seeds=(0, 1))
    pre = chance.RunAccuracy(t0=math.nan, end=0.034, chance=1 / 131, rise=0.03, rising=True)
    out = stats.dataset_tables(
        fits, runs, FAST, "toy", "since_learned", class_infos=infos_for(runs, True, pre)
    )
    acc = out["summary"][out["summary"]["id"] == "Runs.accuracy"].set_index(["arch", "case"])
    end = acc.loc[("resnet18", "end")]
    assert end["still_rising"] == 2 and end["rise"] == pytest.approx(0.04) and end["stage"] == "finetune"
    pretraining = acc.loc[("resnet18", "the end of pretraining")]
    assert (pretraining["value"], pretraining["stage"], pretraining["near_chance"]) == (0.034, "pretrain", 1)
    assert pretraining["still_rising"] == 1 and pretraining["n_runs"] == 1
    # two datasets carry the same pretraining: findings.md names it once per arch
    other = stats.dataset_tables(
        fits, runs, FAST, "toy2", "since_learned", class_infos=infos_for(runs, False, pre)
    )
    md = findings.findings_markdown(
        findings.assemble_findings([out["summary"], other["summary"]], findings.Study())
    )
    care = md.split("Read with care:")[1].split("##")[0]
    assert (
        "toy, Held-out accuracy at end (resnet18): 2 run(s) still improving at the end (held-out accuracy "
        "up to "
        "+4.0 points" in care
    )
    assert "toy2, Held-out accuracy at end" not in care  # its runs converged
    assert (
        care.count("Held-out accuracy at the end of pretraining (resnet18): 3% on its source's held-out") == 1
    )
    assert (
        care.count("Held-out accuracy at the end of pretraining (resnet18): still improving when pretraining")
        == 1
    )


def test_the_statistics_stage_reads_the_rise_and_the_pretraining_from_files(tmp_path, rising_run):
    sys.path.insert(0, str(REPO / "scripts"))
    spec = importlib.util.spec_from_file_location(
        "compute_stats_script", REPO / "scripts" / "compute_stats.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    io.save_npz(tmp_path / "traces.npz", rising_run)
    info = script.read_class_info(tmp_path / "traces.npz", "vit/seed0", DEFAULTS)
    assert info.still_rising
    assert info.heldout_rise == pytest.approx(
        chance.accuracy_rise([0.3, 0.4, 0.5, 0.55, 0.6, 0.7, 0.8, 0.87], 3)
    )
    io.save_table(
        tmp_path / "metrics.csv", pd.DataFrame({"epoch": [1, 2, 3, 4], "heldout_acc": [0.2, 0.5, 0.6, 0.6]})
    )
    io.save_table(
        tmp_path / "manifest.csv", pd.DataFrame({"label": [0, 1, 0, 1], "split": ["train", "heldout"] * 2})
    )
    pre = script.read_pretraining({"vit": tmp_path / "metrics.csv"}, tmp_path / "manifest.csv", DEFAULTS)
    assert pre["vit"].end == 0.6 and pre["vit"].chance == 1.0 and pre["vit"].rise == pytest.approx(0.25)
