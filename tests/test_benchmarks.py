"""The benchmark scripts: their arithmetic, their documented commands at tiny sizes, and
the compile cache measured on the CPU (the GPU measurements: benchmarks/gpu_check.sh)."""

import argparse
import ast
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_train


def test_grid_estimate_counts_every_run_and_epoch():
    rate = {"arch": "m", "b_ours_img_s": 100.0, "d_eval_ours_img_s": 1000.0}
    est = bench_train.grid_hours([rate], warmup=1, epochs=2, overhead_s={"m": 10.0})
    main = sampler = 0.0
    for n_train, n_held in ((1651, 413), (5994, 5794)):  # OCTDL, CUB-200-2011
        evaluate = (n_train + n_held) / 1000.0
        full = 3 * (n_train / 100.0 + evaluate) + 10.0
        # sampler runs: the warmup epoch trains on everything, the 2 fine-tuning epochs on half
        budget = (n_train / 100.0 + evaluate) + 2 * (0.5 * n_train / 100.0 + evaluate) + 10.0
        main += 5 * full
        sampler += full + 10 * budget
    assert est["main_grid_minutes"] == pytest.approx(main / 60.0)
    assert est["grid_minutes"] == pytest.approx((main + sampler) / 60.0)


def test_grid_estimate_adds_each_arch_and_its_own_overhead():
    a = {"arch": "a", "b_ours_img_s": 100.0, "d_eval_ours_img_s": 1000.0}
    b = {"arch": "b", "b_ours_img_s": 50.0, "d_eval_ours_img_s": 500.0}
    both = bench_train.grid_hours([a, b], overhead_s={"a": 5.0})
    one = [bench_train.grid_hours([r], overhead_s={"a": 5.0}) for r in (a, b)]
    assert both["grid_minutes"] == pytest.approx(sum(e["grid_minutes"] for e in one))
    # 32 runs per arch: (5 seeds + 1 scout + 2 samplers x 5 seeds) x 2 datasets
    assert one[0]["grid_minutes"] - bench_train.grid_hours([a])["grid_minutes"] == pytest.approx(
        32 * 5.0 / 60.0
    )


def test_grid_estimate_with_seed_stacked_main_runs():
    rate = {"arch": "m", "b_ours_img_s": 100.0, "d_eval_ours_img_s": 1000.0}
    stacked = {"arch": "m", "b_ours_img_s": 300.0, "d_eval_ours_img_s": 3000.0}  # all seeds of a job together
    one = bench_train.grid_hours([rate], overhead_s={"m": 6.0})
    three = bench_train.grid_hours(
        [rate], overhead_s={"m": 6.0}, main_rates=[stacked], main_overhead_s={"m": 2.0}
    )
    assert three["main_grid_minutes"] == pytest.approx(
        (one["main_grid_minutes"] - 10 * 6.0 / 60) / 3 + 10 * 2.0 / 60
    )
    # the sampler runs stay one seed per job
    assert three["grid_minutes"] - three["main_grid_minutes"] == pytest.approx(
        one["grid_minutes"] - one["main_grid_minutes"]
    )


# ------------------------------------------------------------------ every documented command runs

BENCH = REPO / "benchmarks"
# each benchmark's documented CPU command (its docstring's first `python benchmarks/...` line) at tiny sizes
TINY = {
    "bench_fit.py": ["--n", "300", "--curve-fit-subsample", "30", "--repeats", "1"],
    "bench_train.py": [
        "--size",
        "32",
        "--images",
        "48",
        "--batch",
        "8",
        "--eval-batch",
        "16",
        "--steps",
        "1",
        "--loader-batches",
        "1",
        "--workers",
        "1",
        "--jpeg-size",
        "48",
        "36",
        "--archs",
        "test_resnet",
        "test_vit",
    ],
    "bench_seeds.py": ["--epochs", "2", "--seeds", "1", "2"],
    "bench_dry_run.py": ["--targets", "results/data/digits/manifest.csv", "--repeat", "1"],
    "bench_compile_cache.py": ["--archs", "vit", "--batch", "8", "--eval-batch", "16"],
    "bench_demo.py": ["--targets", "results/runs/digits_lt/vit/seed0/traces.npz"],
    "bench_stats.py": ["--n", "120", "--epochs", "8", "--draws", "2", "--classes", "4"],
    "bench_import.py": ["--n", "200", "--epochs", "6", "--runs", "2", "--classes", "4", "--repeats", "1"],
}
EXPECT = {
    "bench_fit.py": "speed-up",
    "bench_train.py": "test_vit",
    "bench_seeds.py": "train_img_s_per_seed",
    "bench_dry_run.py": "(b) - (a)",
    "bench_compile_cache.py": "2nd run's cache",
    "bench_demo.py": "per run, over all fine-tuning jobs",
    "bench_stats.py": "ratio baseline / ours",
    "bench_import.py": "ratio ours / pandas",
}
SLOW = {"bench_seeds.py", "bench_dry_run.py", "bench_compile_cache.py", "bench_demo.py"}


def documented_command(script: str) -> list[str]:
    """The first `python benchmarks/<script> ...` line of the script's docstring, as argv."""
    doc = ast.get_docstring(ast.parse((BENCH / script).read_text()))
    line = next(ln for ln in doc.splitlines() if ln.strip().startswith(f"python benchmarks/{script}"))
    return shlex.split(line.split("#")[0])[1:]


def test_every_benchmark_has_a_smoke_test():
    assert {p.name for p in BENCH.glob("bench_*.py")} == set(TINY)


@pytest.mark.parametrize(
    "script", [pytest.param(s, marks=pytest.mark.integration) if s in SLOW else s for s in TINY]
)
def test_documented_cpu_command_runs_at_tiny_sizes(script, tmp_path):
    argv = documented_command(script) + TINY[script]
    if script in ("bench_dry_run.py", "bench_demo.py"):
        argv += ["--workdir", str(tmp_path / "work")]
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=1200
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert EXPECT[script] in proc.stdout


@pytest.mark.integration
def test_gpu_check_small_cpu_dry_run(tmp_path):
    """benchmarks/gpu_check.sh with SMALL=1 (its CPU mode) runs through all five steps."""
    env = dict(os.environ, SMALL="1", PYTHON=sys.executable, OUT_DIR=str(tmp_path), HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        ["bash", str(BENCH / "gpu_check.sh")], cwd=REPO, env=env, capture_output=True, text=True, timeout=1800
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ("bench.json", "rule.txt", "concurrent.csv", "estimate.txt", "seeds.json", "seeds.txt"):
        assert (tmp_path / name).exists(), name
    seeds = json.loads((tmp_path / "seeds.json").read_text())
    assert [r["seeds"] for r in seeds["rows"]] == [1, 5] and set(seeds["grid"]) == {"1", "5"}


# ------------------------------------------------------------------ compile once per architecture


@pytest.mark.integration
def test_second_run_compiles_from_the_cache(tmp_path):
    """The demo's ViT compiled on the CPU (Inductor) in two fresh processes sharing
    train.cache_dir: the second finds every graph in the cache and compiles in at most
    25% of the first's time."""
    import bench_compile_cache

    from retention.config import load_config

    arch = load_config(REPO / "config.yaml", REPO / "config/demo.yaml")["archs"]["vit"]
    args = argparse.Namespace(device="cpu", batch=8, eval_batch=16, threads=2, mode="default")
    first, second = bench_compile_cache.measure(arch, tmp_path, args)
    assert first["fxgraph_cache_miss"] > 0 and first["fxgraph_cache_hit"] == 0
    assert second["fxgraph_cache_miss"] == 0 and second["fxgraph_cache_hit"] == first["fxgraph_cache_miss"]
    assert second["autograd_cache_miss"] == 0 and second["autograd_cache_hit"] > 0
    assert second["compile_s"] <= 0.25 * first["compile_s"], (first["compile_s"], second["compile_s"])
    assert [p.name for p in (tmp_path / "compile").iterdir()] == ["test_vit-16px-cpu"]
