"""Several seeds in one process: images/s per seed, 1 against S seeds per job, in one run.

For each number of seeds per job asked for (default 1 and 3), on the same data and arch:
  (a) in the process: the fine-tuning job's trainer (``retention.training.finetune.job_trainer``:
      one model for 1 seed, S models stacked and trained together for S) runs 1 warmup and
      ``--epochs`` fine-tuning epochs; from each seed's metrics of the fine-tuning epochs
      after the first (median): train images/s per seed and for all seeds together, and
      eval images/s (every train and held-out image, per seed);
  (b) whole jobs (unless --no-jobs): ``scripts/finetune.py`` as the rule runs it, one
      process per job, ``--seed 0`` against ``--seed 0 1 2``: wall seconds per seed,
      start-up included, and the job's start-up (its time besides its epochs).
  (c) agreement: seed 0's traces in the S-seed job and with one more CPU thread, each
      against seed 0 alone (max |p_true difference| per epoch, predictions differing).
Then the paper grid estimate (``bench_train.grid_hours``) for the arch's share of the
grid (2 datasets x 5 seeds, plus its sampler runs, which stay 1 seed per job), with the
main runs at each number of seeds per job.

    python benchmarks/bench_seeds.py          # CPU: the demo's small ViT on the demo's digits, 1 vs 3
    python benchmarks/bench_seeds.py --arch vit --seeds 1 3 --epochs 3 --threads 1 \
        [--no-jobs] [--json out.json]
    python benchmarks/bench_seeds.py --device cuda --model deit_small_patch16_224 --size 224 \
        --synthetic 11788 --storage 256 --seeds 1 5 --epochs 2 --threads 8
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from retention import io  # noqa: E402
from retention.acquire import data  # noqa: E402
from retention.config import load_config  # noqa: E402
from retention.training.finetune import job_trainer  # noqa: E402
from retention.training.settings import TrainConfig, train_config  # noqa: E402


def write_data(args, root: Path) -> int:
    """The benchmark's prepared dataset under ``root``; returns its number of images."""
    if args.synthetic:
        from bench_train import synthetic_images

        images, labels = synthetic_images(args.synthetic, args.storage)
        n = len(labels)
        manifest = pd.DataFrame(
            {
                "sample_id": np.arange(n),
                "label": labels,
                "class_name": [f"c{y}" for y in labels],
                "split": np.where(np.arange(n) % 2 == 0, "train", "heldout"),
                "source": "synthetic",
                "group": "",
            }
        )
    else:
        prepared = data.prepare_dataset("digits", None, storage_size=args.storage, heldout_fraction=0.2)
        manifest, images = prepared.manifest, prepared.images
    io.save_table(root / "manifest.csv", manifest)
    io.save_npy(root / "images.npy", images)
    return len(manifest)


def arch_entry(args, config: dict) -> dict:
    """The arch: the config's ``--arch`` entry, or timm model ``--model`` at ``--size`` px."""
    if not args.model:
        return dict(config["archs"][args.arch])
    from bench_train import size_kwargs

    entry = {"model": args.model, "weights": "none", "lr": 5e-5, "input_size": args.size}
    kwargs = size_kwargs(args.model, args.size)
    return {**entry, "model_kwargs": kwargs} if kwargs else entry


def in_process(args, root: Path, arch: dict, cfg: TrainConfig, n_seeds: int) -> dict:
    """(a): per-seed train and eval rates of a job of ``n_seeds`` seeds."""
    seeds = list(range(n_seeds))
    trainer = job_trainer(root / "manifest.csv", root / "images.npy", arch, cfg, seeds, device=args.device)
    trainer.progress = False
    start = time.perf_counter()
    results = trainer.run_all()
    wall = time.perf_counter() - start
    m = results[0].metrics
    steady = m[(m["phase"] == "finetune") & (m["epoch"] > m["epoch"].min() + 1)]
    train_rate = statistics.median(steady["images_per_s"])
    n_eval = len(trainer.data.train_labels) + len(trainer.data.heldout_labels)
    eval_s = steady["seconds"] - steady["n_trained"] / steady["images_per_s"]
    eval_rate = statistics.median(n_eval / eval_s)
    return {
        "seeds": n_seeds,
        "train_img_s_per_seed": train_rate,
        "train_img_s_all": n_seeds * train_rate,
        "eval_img_s_per_seed": eval_rate,
        "eval_img_s_all": n_seeds * eval_rate,
        "first_step_s": trainer.times["first_step_s"],
        "run_s": wall,
        "traces": results[0].traces,
    }


def agreement(a: dict, b: dict) -> str:
    """How far seed 0's traces of two runs are apart: max |p_true difference| per recorded
    epoch, and the share of (sample, epoch) predictions that differ."""
    diff = np.abs(a["p_true"].astype(np.float64) - b["p_true"]).max(axis=0)
    flips = float((a["pred"] != b["pred"]).mean())
    per_epoch = ", ".join(f"{d:.1e}" for d in diff)
    return f"max |p_true diff| per epoch {per_epoch}; predictions differing {flips:.2%}"


def whole_job(args, root: Path, config_path: Path, n_seeds: int, out: Path) -> dict:
    """(b): scripts/finetune.py for ``n_seeds`` seeds in one process; wall and start-up."""
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "finetune.py"),
        "--data",
        str(root),
        "--config",
        str(config_path),
        "--arch",
        "bench",
        "--seed",
        *map(str, range(n_seeds)),
        "--out",
        str(out),
        "--threads",
        str(args.threads),
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"the job failed:\n{proc.stderr[-4000:]}")
    metrics = pd.read_csv((out if n_seeds == 1 else out / "seed0") / "metrics.csv")
    epochs = metrics["job_epochs_s"].iloc[0] + metrics["job_first_step_s"].iloc[0]
    return {
        "job_wall_s": wall,
        "job_wall_s_per_seed": wall / n_seeds,
        "job_overhead_s": wall - epochs,
        "job_imports_s": metrics["job_imports_s"].iloc[0],
    }


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config", type=Path, nargs="+", default=[REPO / "config.yaml", REPO / "config" / "demo.yaml"]
    )
    parser.add_argument(
        "--arch", default="vit", help="a key of the config's archs (default: the demo's small ViT)"
    )
    parser.add_argument("--model", help="a timm model name instead of --arch (random init)")
    parser.add_argument("--size", type=int, default=224, help="input size of --model")
    parser.add_argument("--synthetic", type=int, help="N synthetic images (half train) instead of the digits")
    parser.add_argument("--storage", type=int, default=16, help="stored image size in px")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 3], help="seeds per job to compare")
    parser.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs (the first is not timed)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (train.threads; the demo's: 1)"
    )
    parser.add_argument("--no-jobs", action="store_true", help="skip (b), the whole jobs")
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(*args.config)
    arch = arch_entry(args, config)
    train_section = {
        **config["train"],
        "warmup_epochs": 1,
        "epochs": max(args.epochs, 2),
        "threads": args.threads,
        "device": args.device,
        "checkpoint": False,
    }
    cfg = train_config(train_section, arch)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        n = write_data(args, root)
        config_path = Path(tmp) / "config.yaml"
        config_path.write_text(yaml.safe_dump({"archs": {"bench": arch}, "train": train_section}))
        for n_seeds in args.seeds:
            row = in_process(args, root, arch, cfg, n_seeds)
            if not args.no_jobs:
                row.update(whole_job(args, root, config_path, n_seeds, Path(tmp) / f"job{n_seeds}"))
            rows.append(row)
            print(f"  measured {n_seeds} seed(s) per job", flush=True)
        # (c) seed 0 trained alone with one more thread: how much a change of summation order moves a run
        torch.set_num_threads(args.threads + 1)
        other_threads = in_process(args, root, arch, cfg, 1)["traces"]
        torch.set_num_threads(args.threads)
    traces = {row["seeds"]: row.pop("traces") for row in rows}
    first = args.seeds[0]
    agree = {
        f"seed 0 in a job of {n} seeds against alone": agreement(traces[n], traces[first])
        for n in args.seeds[1:]
    }
    agree[f"seed 0 alone with {args.threads + 1} threads against {args.threads}"] = agreement(
        other_threads, traces[first]
    )
    for what, text in agree.items():
        print(f"{what}: {text}")
    table = pd.DataFrame(rows).set_index("seeds")
    base = table.iloc[0]
    table["train_per_seed_vs_first"] = table["train_img_s_per_seed"] / base["train_img_s_per_seed"]
    table["train_all_vs_first"] = table["train_img_s_all"] / base["train_img_s_all"]
    print(
        f"device {args.device}, {args.threads} threads, torch {torch.__version__}; {arch['model']} at "
        f"{arch.get('input_size')} px, {n} images, batch {cfg.batch_size}, 1 warmup + "
        f"{cfg.epochs} fine-tuning epochs (rates: median of fine-tuning epochs 2..)"
    )
    print(table.round(2).T.to_string())
    grid = {}
    from bench_train import grid_hours

    single = {
        "arch": arch["model"],
        "b_ours_img_s": base["train_img_s_per_seed"],
        "d_eval_ours_img_s": base["eval_img_s_per_seed"],
    }
    overhead = {arch["model"]: base.get("job_overhead_s", 0.0)}
    for n_seeds, row in table.iterrows():
        stacked = {
            "arch": arch["model"],
            "b_ours_img_s": row["train_img_s_all"],
            "d_eval_ours_img_s": row["eval_img_s_all"],
        }
        est = grid_hours(
            [single],
            overhead_s=overhead,
            main_rates=[stacked],
            main_overhead_s={arch["model"]: row.get("job_overhead_s", 0.0) / n_seeds},
        )
        grid[int(n_seeds)] = est
        print(
            f"paper grid, this arch's share (10 runs + 22 sampler runs, 33 epochs each, one job at a time), "
            f"{n_seeds} seed(s) per job for the 10 runs: {est['main_grid_minutes']:.1f} min for the 10 runs, "
            f"{est['grid_minutes']:.1f} min with the sampler runs"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "device": args.device,
                    "torch": torch.__version__,
                    "arch": arch,
                    "rows": table.reset_index().to_dict("records"),
                    "grid": grid,
                    "agreement": agree,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
