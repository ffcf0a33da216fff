"""Compile once per architecture: a first run's compile time against a second run's.

For each architecture, in one run: two fresh processes, one after the other, each
builds the fine-tuning Trainer with ``train.compile`` on and times its first train step
and its first eval batch (where torch.compile compiles) and then a second one of each
(compiled: the steady cost). Compile time = first call - steady call. The first process
starts with an empty cache folder (``train.cache_dir``), the second finds what the
first left there (``retention.training.compile_cache``). Prints both compile times, their ratio
(issue 21: the second at most 25% of the first) and Inductor's cache hits and misses.

    python benchmarks/bench_compile_cache.py     # CPU (Inductor's C++ backend), the demo's ViT and CNN
    python benchmarks/bench_compile_cache.py --archs vit --batch 16 --eval-batch 32 --threads 2 \
        [--device cuda] [--config config.yaml config/demo.yaml] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def child(args) -> dict:
    """One process's compile times (the --child mode); returns them and the cache counters."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import torch
    from torch._dynamo.utils import counters

    from retention.training import models
    from retention.training import trainer as train
    from retention.training.seedrun import Recorder
    from retention.training.settings import train_config
    from retention.training.splits import SplitData

    torch.set_num_threads(args.threads)
    arch = json.loads(args.child)
    device = torch.device(args.device)
    train.seed_everything(0)
    model = models.create_model(arch["model"], 10, None, arch.get("model_kwargs"))
    input_cfg = models.input_config(model, arch.get("input_size"))
    n = max(args.batch, args.eval_batch)
    rng = np.random.default_rng(0)
    size = input_cfg.size
    split = SplitData(
        rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8), rng.integers(0, 10, n), np.arange(n)
    )
    cfg = train_config(
        {
            "warmup_epochs": 0,
            "epochs": 1,
            "batch_size": args.batch,
            "eval_batch_size": args.eval_batch,
            "compile": True,
            "compile_mode": args.mode,
            "cache_dir": args.cache_dir,
            "channels_last": False,
        },
        {"lr": 1e-3},
    )
    trainer = train.make_trainer(
        [model], [0], input_cfg, split, split, [str(k) for k in range(10)], cfg, device=device, progress=False
    )
    trainer.start_phase("finetune")
    idx = [torch.arange(args.batch)]
    rec = [Recorder(args.eval_batch, 1)]
    images, labels = (
        trainer.data.train_images[: args.eval_batch],
        trainer.data.train_labels[: args.eval_batch],
    )

    def timed(fn) -> float:
        trainer._sync()
        start = time.perf_counter()
        fn()
        trainer._sync()
        return time.perf_counter() - start

    out = {}
    for name, fn in (
        ("train", lambda: trainer.train_batch(idx)),
        ("eval", lambda: trainer.evaluate(images, labels, rec, 0, False)),
    ):
        first, steady = timed(fn), timed(fn)
        out[f"{name}_first_s"], out[f"{name}_steady_s"] = first, steady
    out["compile_s"] = (
        out["train_first_s"] - out["train_steady_s"] + out["eval_first_s"] - out["eval_steady_s"]
    )
    out["fxgraph_cache_hit"] = counters["inductor"]["fxgraph_cache_hit"]
    out["fxgraph_cache_miss"] = counters["inductor"]["fxgraph_cache_miss"]
    out["autograd_cache_hit"] = counters["aot_autograd"]["autograd_cache_hit"]
    out["autograd_cache_miss"] = counters["aot_autograd"]["autograd_cache_miss"]
    return out


def measure(arch: dict, cache_dir: Path, args) -> list[dict]:
    """The two processes' results (an empty cache folder, then the same folder)."""
    results = []
    for _ in range(2):
        cmd = [
            sys.executable,
            __file__,
            "--child",
            json.dumps(arch),
            "--cache-dir",
            str(cache_dir),
            "--device",
            args.device,
            "--batch",
            str(args.batch),
            "--eval-batch",
            str(args.eval_batch),
            "--threads",
            str(args.threads),
            "--mode",
            args.mode,
        ]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
        env.pop("TORCHINDUCTOR_CACHE_DIR", None)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            sys.exit(f"the compile run failed:\n{proc.stderr[-4000:]}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return results


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config", type=Path, nargs="+", default=[REPO / "config.yaml", REPO / "config" / "demo.yaml"]
    )
    parser.add_argument("--archs", nargs="+", default=["vit", "cnn"], help="keys of the config's archs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mode", default="default", help="torch.compile mode (train.compile_mode)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--eval-batch", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    sys.path.insert(0, str(REPO))
    from retention.config import load_config

    config = load_config(*args.config)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.archs:
            first, second = measure(config["archs"][name], Path(tmp) / name, args)
            rows[name] = {"first": first, "second": second, "ratio": second["compile_s"] / first["compile_s"]}
    print(
        f"device {args.device}, torch.compile mode {args.mode}, batch {args.batch} / eval {args.eval_batch}, "
        f"{args.threads} threads; compile time = first call - steady call (train step + eval batch)"
    )
    print(
        f"{'arch':8s} {'1st run s':>10s} {'2nd run s':>10s} {'ratio':>6s}  "
        "2nd run's cache: FX graph hits/misses, "
        "AOTAutograd hits/misses"
    )
    for name, r in rows.items():
        s = r["second"]
        print(
            f"{name:8s} {r['first']['compile_s']:10.1f} {s['compile_s']:10.1f} {r['ratio']:6.2f}  "
            f"{s['fxgraph_cache_hit']}/{s['fxgraph_cache_miss']}, "
            f"{s['autograd_cache_hit']}/{s['autograd_cache_miss']}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
