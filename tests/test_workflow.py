"""Snakemake itself: lint, format, the paper grid's DAG, and the demo's fine-tuning jobs."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from retention import provenance

from .conftest import REPO, warning_lines

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
SNAKEFMT = Path(sys.executable).with_name("snakefmt")


def snakemake(workdir, *args, configs=(), check=True):
    cmd = [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args]
    if configs:
        cmd += ["--configfile", *map(str, configs)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run."""
    table = output.split("Job stats:")[1].split("\n\n")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_lint_is_clean():
    proc = subprocess.run([*SNAKEMAKE, "--lint"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr


def test_snakefmt_is_clean():
    files = [REPO / "Snakefile", *sorted((REPO / "workflow/rules").glob("*.smk"))]
    proc = subprocess.run([str(SNAKEFMT), "--check", *map(str, files)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def list_rules() -> dict[str, str]:
    """`snakemake --list-rules` of the demo config: each rule's description ('' if none)."""
    proc = subprocess.run(
        [*SNAKEMAKE, "--list-rules", "-s", "Snakefile", "--configfile", "config.yaml", "config/demo.yaml"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rules = {}
    for line in proc.stdout.splitlines():
        match = re.fullmatch(r"(\w+)(?: \((.*)\))?", line.strip())
        assert match, f"unexpected line in --list-rules: {line!r}"
        rules[match[1]] = match[2] or ""
    return rules


def test_every_rule_of_the_rule_files_has_a_description():
    """A docstring in every rule of workflow/rules/*.smk, those generated in loops too
    (one per figure), so that `snakemake --list-rules` describes each."""
    rules = list_rules()
    assert {"finetune", "finetune_budget", "publish_run", "figure_jaccard", "prepare_dataset"} <= set(rules)
    assert not [name for name in rules if name.startswith("finetune_seeds")]  # one rule for every seed group
    undescribed = sorted(name for name, doc in rules.items() if not doc and name != "all")
    assert not undescribed, f"rules without a docstring: {undescribed}"


def test_rule_all_has_a_description():
    assert list_rules()["all"]


def test_paper_grid_dry_run_lists_every_job_without_network(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [
            *SNAKEMAKE,
            "-s",
            str(REPO / "Snakefile"),
            "-d",
            str(tmp_path),
            "-n",
            "--configfile",
            str(REPO / "config.yaml"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = job_counts(proc.stdout)
    assert counts["download_dataset"] == 2 and counts["fetch_weights"] == 2
    runs = set(re.findall(r"results/runs/(\w+)/(\w+)/seed(\d+)/traces.npz", proc.stdout))
    grid = {(d, a, str(s)) for d in ("octdl", "cub200") for a in ("resnet18", "deit_small") for s in range(5)}
    assert grid <= runs
    assert counts["finetune"] == 20 + 4  # the grid plus one scout run per (dataset, arch)
    assert counts["finetune_budget"] == 2 * 2 * 2 * 5
    # every run's run.json goes into the provenance table
    assert counts["provenance"] == 1
    records = re.findall(r"results/(?:runs|sampler)/\S+/seed\d+/run\.json", proc.stdout)
    assert len(set(records)) == 20 + 4 + 40


def test_bad_config_stops_before_any_job(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"train": {"epochs": "many"}}))
    proc = snakemake(tmp_path, "-n", configs=[REPO / "config.yaml", bad], check=False)
    assert proc.returncode != 0
    assert "config key 'train.epochs': 'many' is not of type 'integer'" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.integration
def test_demo_finetuning_jobs_through_snakemake(tmp_path):
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(
        yaml.safe_dump(
            {
                "grid": {"datasets": ["digits_lt"], "archs": ["cnn", "vit"], "seeds": [0, 1]},
                # a checkpoint after every epoch, so that the check for leftovers below can fail;
                # one seed per job (the demo's seed groups of 3: test_seed_group_job_...)
                "train": {"warmup_epochs": 1, "epochs": 2, "checkpoint_interval_s": 0, "seeds_per_job": 1},
                "pretrain": {"epochs": 1},
            }
        )
    )
    configs = [REPO / "config.yaml", REPO / "config/demo.yaml", tiny]
    targets = [f"results/runs/digits_lt/{a}/seed{s}/traces.npz" for a in ("cnn", "vit") for s in (0, 1)]
    snakemake(tmp_path, "--cores", "2", *targets, configs=configs)
    for target in targets:
        with np.load(tmp_path / target) as traces:
            assert traces["correct"].shape[1] == 3  # t = 0, 1, 2
            assert traces["class_names"].tolist() == [str(k) for k in range(10)]
        run = Path(target).parent
        assert (tmp_path / run / "metrics.csv").exists()
        record = json.loads((tmp_path / run / "run.json").read_text())
        assert (record["stage"], record["arch"], f"seed{record['seed']}") == (
            "finetune",
            run.parts[-2],
            run.name,
        )
        log = (
            tmp_path / "logs/finetune" / run.relative_to("results/runs").parent / f"seeds{record['seed']}.log"
        )
        assert "epoch 3/3" in log.read_text()
    assert not list((tmp_path / "results").rglob("*.pt")), "checkpoints left behind"
    assert not (tmp_path / "results/checkpoints").exists(), "empty checkpoint folders left behind"
    assert (tmp_path / "benchmarks/finetune/digits_lt/cnn/seeds0.tsv").exists()
    assert not warning_lines(tmp_path)  # no Python warning in any rule's log
    again = snakemake(tmp_path, "--cores", "2", "-n", *targets, configs=configs)
    assert "Nothing to be done" in again.stdout + again.stderr
    # keys that change how a run executes, not its results, rerun nothing
    run_only = tmp_path / "run_only.yaml"
    run_only.write_text(
        yaml.safe_dump(
            {
                "train": {
                    "threads": 3,
                    "checkpoint_interval_s": 30,
                    "checkpoint": False,
                    "gpu_slots_per_device": 2,
                    "data_on_device": False,
                }
            }
        )
    )
    again = snakemake(tmp_path, "--cores", "2", "-n", *targets, configs=[*configs, run_only])
    assert "Nothing to be done" in again.stdout + again.stderr
    # a display-only key (an arch's label) redraws figures, findings and the report: it retrains
    # and refits nothing (the runs built here stay done; the rest of the DAG is planned as before)
    relabel = tmp_path / "relabel.yaml"
    relabel.write_text(yaml.safe_dump({"archs": {"cnn": {"label": "a renamed CNN"}}}))
    again = snakemake(tmp_path, "--cores", "2", "-n", *targets, configs=[*configs, relabel])
    assert "Nothing to be done" in again.stdout + again.stderr
    trained = (
        "finetune",
        "finetune_budget",
        "publish_run",
        "publish_budget_run",
        "pretrain",
        "fit_traces",
        "fit_nulls",
    )
    plans = [job_counts(snakemake(tmp_path, "-n", configs=c).stdout) for c in (configs, [*configs, relabel])]
    assert [{k: n for k, n in plan.items() if k in trained} for plan in plans] == [
        {k: n for k, n in plans[0].items() if k in trained}
    ] * 2
    # one that shapes them reruns the runs
    shaping = tmp_path / "shaping.yaml"
    shaping.write_text(yaml.safe_dump({"train": {"weight_decay": 0.01}}))
    again = snakemake(tmp_path, "--cores", "2", "-n", *targets, configs=[*configs, shaping])
    assert "Nothing to be done" not in again.stdout + again.stderr


def test_seeds_per_job_groups_the_grid_seeds_into_jobs(tmp_path):
    """train.seeds_per_job: 5 makes one job of the paper grid's 5 seeds per (dataset, arch)
    (and one per scout run, alone); each run is linked to its own folder; one run's traces
    can still be asked for, and its group's job trains them."""
    group = tmp_path / "group.yaml"
    group.write_text(yaml.safe_dump({"train": {"seeds_per_job": 5}}))
    proc = snakemake(tmp_path, "-n", configs=[REPO / "config.yaml", group])
    counts = job_counts(proc.stdout)
    assert counts["finetune"] == 4 + 4 and counts["publish_run"] == 20 + 4  # groups, scouts; runs
    assert counts["finetune_budget"] == 2 * 2 * 2  # dataset, arch, sampler: a group of 5 each
    assert proc.stdout.count("group=0_1_2_3_4") == 4 + 8 and proc.stdout.count("group=100") == 4
    one = snakemake(
        tmp_path, "-n", "results/runs/octdl/resnet18/seed3/traces.npz", configs=[REPO / "config.yaml", group]
    )
    assert job_counts(one.stdout).get("finetune") == 1 and "group=0_1_2_3_4" in one.stdout


@pytest.mark.integration
def test_seed_group_job_through_snakemake(tmp_path):
    """A seed group's job and a single seed's; their run.json and pretraining's, in rule
    provenance's table."""
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(
        yaml.safe_dump(
            {
                "grid": {"datasets": ["digits_lt"], "archs": ["vit"], "seeds": [0, 1, 2]},
                "train": {"warmup_epochs": 1, "epochs": 2, "seeds_per_job": 2},
                "pretrain": {"epochs": 1},
                "sampler": {"enabled": False},
            }
        )
    )
    configs = [REPO / "config.yaml", REPO / "config/demo.yaml", tiny]
    targets = [f"results/runs/digits_lt/vit/seed{s}/traces.npz" for s in (0, 1, 2)] + [
        "results/provenance.csv"
    ]
    proc = snakemake(tmp_path, "--cores", "2", *targets, configs=configs)
    assert "group=0_1" in proc.stdout + proc.stderr and "group=2" in proc.stdout + proc.stderr
    for seed in (0, 1, 2):
        run = tmp_path / f"results/runs/digits_lt/vit/seed{seed}"
        with np.load(run / "traces.npz") as traces:
            assert traces["correct"].shape[1] == 3
        metrics = pd.read_csv(run / "metrics.csv")
        assert metrics["job_seeds"].iloc[0] == (2 if seed < 2 else 1)
        record = json.loads((run / "run.json").read_text())
        assert record["seed"] == seed and record["config"]["job_seeds"] == ([0, 1] if seed < 2 else [2])
        assert record["config"]["train"]["epochs"] == 2 and record["config"]["train"]["seeds_per_job"] == 2
        assert record["config"]["inputs"]["weights"] == "results/pretrain/glyphs/vit/weights.safetensors"
    table = pd.read_csv(tmp_path / "results/provenance.csv", keep_default_na=False)
    assert table[["stage", "dataset", "seed"]].values.tolist() == [
        ["finetune", "digits_lt", 0],
        ["finetune", "digits_lt", 1],
        ["finetune", "digits_lt", 2],
        ["pretrain", "glyphs", 0],
    ]
    assert (table["arch"] == "vit").all() and (table["torch"] != "").all() and (table["duration_s"] > 0).all()
    assert table["git_commit"].tolist() == [provenance.git_commit() or ""] * 4
    # whether the checkout had uncommitted changes, and what data each run trained on
    assert table["git_dirty"].tolist() == [provenance.git_state().dirty] * 4
    digests = dict(zip(table["dataset"], table["data_sha256"]))
    assert digests["digits_lt"] == provenance.data_digest(
        tmp_path / "results/data/digits_lt/manifest.csv", tmp_path / "results/data/digits_lt/images.npy"
    )
    assert table["data_sha256"].nunique() == 2 and digests["glyphs"] != digests["digits_lt"]
    assert (tmp_path / "benchmarks/provenance/provenance.tsv").exists()
    log = (tmp_path / "logs/finetune/digits_lt/vit/seeds0_1.log").read_text()
    assert "seed 1 epoch 3/3" in log and "job time" in log and "(2 seeds)" in log
    assert (tmp_path / "benchmarks/finetune/digits_lt/vit/seeds0_1.tsv").exists()
    again = snakemake(tmp_path, "--cores", "2", "-n", *targets, configs=configs)
    assert "Nothing to be done" in again.stdout + again.stderr
    # one seed per job again: the regrouped runs rerun (stacked floats differ in the last bits)
    single = tmp_path / "single.yaml"
    single.write_text(yaml.safe_dump({"train": {"seeds_per_job": 1}}))
    again = snakemake(tmp_path, "--cores", "2", "-n", *targets, configs=[*configs, single])
    assert job_counts(again.stdout).get("finetune") == 2
