"""Fine-tuning throughput: our device-resident pipeline against the usual one.

For each architecture, measured in one run on the same device:
  (a) bare forward + backward + optimizer step on ready, normalised tensors
      (the model object's step, ``SingleModel.step``);
  (b) our full train step: uint8 images on the device, random resized crop + flip with
      roi_align, normalisation, forward, backward, step (Trainer.train_batch, the step
      the fine-tuning rule runs);
  (c) the usual pipeline: JPEG files decoded by PIL in a DataLoader with workers and
      timm's train transforms, copied to the device, then the same step as (a), timed
      in the steady state;
  (d) evaluation: our no-grad eval pass (Trainer.evaluate) and the usual one (PIL +
      timm eval transforms in a DataLoader).
Each arch is measured eager (mode ``none``) and in every torch.compile mode asked for.
On CUDA it also counts the host synchronisations of one train step and one eval pass.
Prints images/s, the ratios b/a and b/c, and an estimate of the paper grid's wall time
from the measured rates. Models are randomly initialised (weights do not change speed).

    python benchmarks/bench_train.py                       # CPU, small sizes
    python benchmarks/bench_train.py --device cuda --size 224 --images 11788 \
        --archs resnet18 deit_small_patch16_224 --modes none reduce-overhead --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import timm
import torch
import torch.nn.functional as F
from PIL import Image

from retention.config import schema_choices
from retention.training import models
from retention.training import trainer as train
from retention.training.modelstate import autocast
from retention.training.seedrun import Recorder
from retention.training.settings import train_config
from retention.training.splits import SplitData

# Paper grid (docs/method.md section 1): train / held-out sizes, and the run counts.
GRID = {"octdl": (1651, 413), "cub200": (5994, 5794)}
SEEDS, SAMPLER_FRACTION = 5, 0.5


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def first_call(fn, device) -> float:
    """Seconds of one call of ``fn``, to the GPU's end (the first: compilation, if any)."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def timed(fn, device, repeat: int, warmup: int = 3) -> float:
    """Seconds per call of ``fn`` after ``warmup`` calls (compilation, CUDA graph capture)."""
    for _ in range(warmup):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    sync(device)
    return (time.perf_counter() - start) / repeat


def host_syncs(fn, device) -> int | None:
    """How many times ``fn`` makes the host wait for the GPU (CUDA's sync debug mode)."""
    if device.type != "cuda":
        return None
    sync(device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchronizing" in str(w.message) for w in caught)


def synthetic_images(n: int, storage: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Smooth random uint8 images (N, S, S, 3) and labels over 200 classes."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, size=(n, 8, 8, 3), dtype=np.uint8)
    out = np.empty((n, storage, storage, 3), dtype=np.uint8)
    for i in range(0, n, 256):
        img = torch.from_numpy(small[i : i + 256]).permute(0, 3, 1, 2).float()
        img = F.interpolate(img, size=(storage, storage), mode="bilinear", align_corners=False)
        out[i : i + 256] = img.clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    return out, rng.integers(0, 200, n)


def write_jpegs(images: np.ndarray, labels: np.ndarray, root: Path, size: tuple[int, int]) -> list:
    """JPEG files at a CUB-like size (w, h), for the usual pipeline."""
    from concurrent.futures import ThreadPoolExecutor

    def write(i):
        path = root / f"{i:06d}.jpg"
        Image.fromarray(images[i]).resize(size, Image.BILINEAR).save(path, quality=90)
        return str(path), int(labels[i])

    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        return list(pool.map(write, range(len(images))))


class FileDataset(torch.utils.data.Dataset):
    def __init__(self, items, transform):
        self.items, self.transform = items, transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, y = self.items[i]
        with Image.open(path) as img:
            return self.transform(img.convert("RGB")), y


def loader_rate(items, transform, device, batch, workers, step, n_batches) -> float:
    """Images/s of the usual DataLoader pipeline feeding ``step``, in the steady state.

    The first ``workers`` batches (the burst of every worker's first batch) are not timed.
    """
    dl = torch.utils.data.DataLoader(
        FileDataset(items, transform),
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
        persistent_workers=False,
    )

    def batches():
        while True:
            yield from dl

    it = batches()

    def consume():
        x, y = next(it)
        x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        step(x, y.to(device, non_blocking=True))
        return len(y)

    for _ in range(max(workers, 1)):
        consume()
    sync(device)
    start = time.perf_counter()
    seen = sum(consume() for _ in range(n_batches))
    sync(device)
    return seen / (time.perf_counter() - start)


def size_kwargs(name: str, size: int) -> dict:
    """timm keyword arguments that make model ``name`` take ``size`` px input.

    Models built for one input size (ViT, DeiT: position embeddings) need ``img_size``;
    the others (ResNet) take any size and no such argument.
    """
    try:
        models.create_model(name, 2, model_kwargs={"img_size": size})
    except TypeError:
        return {}
    return {"img_size": size}


def model_at_size(name: str, size: int, num_classes: int = 200) -> torch.nn.Module:
    """timm model ``name`` for ``size`` px input, randomly initialised."""
    return models.create_model(name, num_classes, model_kwargs=size_kwargs(name, size))


def bench_arch(name: str, mode: str, args, device, images, labels, items) -> dict:
    """Rates (a)-(d) for one architecture, eager (``mode`` none) or torch.compile'd."""
    torch.manual_seed(0)
    model = model_at_size(name, args.size)
    input_cfg = models.input_config(model, args.size)
    settings = {
        "warmup_epochs": 0,
        "epochs": 1000,
        "batch_size": args.batch,
        "eval_batch_size": args.eval_batch,
        "channels_last": True,
        "compile": mode != "none",
        "cache_dir": args.cache_dir,
    }
    if mode != "none":
        settings["compile_mode"] = mode
    cfg = train_config(settings, {"lr": 1e-4})
    n = len(labels)
    split = SplitData(images, labels, np.arange(n))
    trainer = train.make_trainer(
        [model],
        [0],
        input_cfg,
        split,
        split,
        [str(k) for k in range(200)],
        cfg,
        device=device,
        progress=False,
    )
    trainer.start_phase("finetune")
    step = trainer.model.step
    label = name if mode == "none" else f"{name} [compile {mode}]"
    b = args.batch
    x_ready = torch.randn(b, 3, args.size, args.size, device=device).contiguous(
        memory_format=torch.channels_last
    )
    y_ready = torch.randint(0, 200, (b,), device=device)
    first_call_s = first_call(lambda: step(x_ready, y_ready), device)
    late_s = None
    if args.start_at:  # concurrent runs: every process times the same window
        time.sleep(max(0.0, args.start_at - time.time()))
        late_s = time.time() - args.start_at  # > 1 s: set-up took longer than the wait
    t_a = timed(lambda: step(x_ready, y_ready), device, args.steps)

    gen = torch.Generator().manual_seed(0)

    def our_step():  # the real training step of retention.training.trainer, augmentation included
        trainer.train_batch([torch.randint(0, n, (b,), generator=gen)])

    t_b = timed(our_step, device, args.steps)
    result = {
        "arch": name,
        "mode": mode,
        "label": label,
        "a_bare_img_s": b / t_a,
        "b_ours_img_s": b / t_b,
        "b_over_a": t_a / t_b,
        "first_call_s": first_call_s,
        "train_step_host_syncs": host_syncs(our_step, device),
        "start_late_s": late_s,
    }
    if args.only_ours:
        return result

    data_cfg = timm.data.resolve_data_config({"input_size": (3, args.size, args.size)}, model=model)
    train_tf = timm.data.create_transform(**data_cfg, is_training=True)
    n_batches = max(args.loader_batches, 3 * args.workers)
    result["c_usual_img_s"] = loader_rate(items, train_tf, device, b, args.workers, step, n_batches)
    result["b_over_c"] = result["b_ours_img_s"] / result["c_usual_img_s"]

    rec = Recorder(n, 1)

    def our_eval():
        trainer.evaluate(trainer.data.train_images, trainer.data.train_labels, [rec], 0, False)

    result["eval_first_call_s"] = first_call(our_eval, device)  # warm-up: eval-mode compilation
    result["d_eval_ours_img_s"] = n / timed(our_eval, device, 1, warmup=0)
    result["eval_pass_host_syncs"] = host_syncs(our_eval, device)

    if mode == "none":  # the usual eval pipeline is bound by its loader: measured once
        eval_tf = timm.data.create_transform(**data_cfg, is_training=False)
        fwd, dtype = trainer.model.forward, trainer.model.dtype

        @torch.no_grad()
        def eval_step(x, y):
            with autocast(device, dtype):
                logits = fwd(x)
            logits.float().softmax(1)

        model.eval()
        eval_batch = min(args.eval_batch, 4 * b)
        result["d_eval_usual_img_s"] = loader_rate(
            items, eval_tf, device, eval_batch, args.workers, eval_step, max(4, args.workers)
        )
        result["d_ours_over_usual"] = result["d_eval_ours_img_s"] / result["d_eval_usual_img_s"]
        model.train()
    return result


def grid_hours(
    rates: list[dict],
    warmup: int = 3,
    epochs: int = 30,
    overhead_s: dict | None = None,
    main_rates: list[dict] | None = None,
    main_overhead_s: dict | None = None,
) -> dict:
    """Paper-grid wall time on one device from the measured rates (one job at a time).

    Per run and epoch: the train images at the train rate (``b_ours_img_s``) plus the
    train and held-out images at the eval rate (``d_eval_ours_img_s``); per run,
    ``overhead_s[arch]`` seconds besides (start-up, compilation; none if not given).
    5 seeds x 2 archs x 2 datasets, plus the sampler runs: a scout run and 2 samplers x
    5 seeds that train on SAMPLER_FRACTION of the train set in the fine-tuning epochs
    (the warmup epochs train on all of it). Warmup epochs are costed as full train steps
    (an upper bound: only the head trains). ``main_rates`` / ``main_overhead_s``: the
    rates (of all seeds of a job together) and per-run overhead of the 20 main runs
    when they run several seeds per job (train.seeds_per_job); default as the others.
    """
    main = sampler = 0.0
    main_by_arch = {r["arch"]: r for r in (main_rates or rates)}
    for r in rates:
        extra = (overhead_s or {}).get(r["arch"], 0.0)
        m = main_by_arch.get(r["arch"], r)
        main_extra = (main_overhead_s or overhead_s or {}).get(r["arch"], 0.0)
        for n_train, n_held in GRID.values():
            evaluate = (n_train + n_held) / r["d_eval_ours_img_s"]
            epoch = n_train / r["b_ours_img_s"] + evaluate
            main_epoch = n_train / m["b_ours_img_s"] + (n_train + n_held) / m["d_eval_ours_img_s"]
            budget_epoch = SAMPLER_FRACTION * n_train / r["b_ours_img_s"] + evaluate
            full = epoch * (warmup + epochs) + extra
            budget = epoch * warmup + budget_epoch * epochs + extra
            main += SEEDS * (main_epoch * (warmup + epochs) + main_extra)
            sampler += full + 2 * SEEDS * budget
    return {"main_grid_minutes": main / 60.0, "grid_minutes": (main + sampler) / 60.0}


def _n(count: int | None) -> str:
    return "n/a" if count is None else str(count)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--archs", nargs="+", default=["resnet18", "deit_small_patch16_224"])
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["none"],
        choices=("none",) + schema_choices("train", "compile_mode"),
        help="none (eager) and/or torch.compile modes, each measured for every arch",
    )
    parser.add_argument("--size", type=int, default=64, help="model input size in pixels")
    parser.add_argument("--storage", type=int, help="stored image size (default size * 8/7)")
    parser.add_argument("--images", type=int, default=512, help="dataset size (CUB: 11788)")
    parser.add_argument(
        "--jpeg-size", type=int, nargs=2, default=(500, 375), help="usual pipeline's JPEG w h"
    )
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--eval-batch", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20, help="timed steps for (a) and (b)")
    parser.add_argument(
        "--loader-batches", type=int, default=10, help="timed batches for (c), at least 3 x workers"
    )
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument(
        "--only-ours", action="store_true", help="measure (a) and (b) alone (concurrency checks)"
    )
    parser.add_argument("--json", type=Path, help="write every number here (after each arch and mode)")
    parser.add_argument("--start-at", type=float, help="unix time at which to start timing (concurrent runs)")
    parser.add_argument(
        "--threads", type=int, help="torch CPU threads (as the rule's train.threads; default: torch's)"
    )
    parser.add_argument(
        "--cache-dir",
        default=tempfile.mkdtemp(prefix="bench_train_cache."),
        help="train.cache_dir: torch.compile's caches (default: a new, empty folder, so that the "
        "first calls show the whole compile time)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    storage = args.storage or round(args.size * 8 / 7)
    images, labels = synthetic_images(args.images, storage)
    with tempfile.TemporaryDirectory() as tmp:
        n_files = 0 if args.only_ours else min(args.images, 4096)
        items = write_jpegs(images[:n_files], labels[:n_files], Path(tmp), tuple(args.jpeg_size))
        results = []
        for mode in args.modes:
            for arch in args.archs:
                start = time.perf_counter()
                results.append(bench_arch(arch, mode, args, device, images, labels, items))
                results[-1]["bench_seconds"] = time.perf_counter() - start
                print(
                    f"  measured {results[-1]['label']} in {results[-1]['bench_seconds']:.0f} s", flush=True
                )
                write_json(args, device, results, {})  # what is measured survives a later failure
    for r in results:  # the usual eval pipeline is measured in eager mode only
        if "d_eval_ours_img_s" in r and "d_eval_usual_img_s" not in r:
            eager = [
                e["d_eval_usual_img_s"]
                for e in results
                if e["arch"] == r["arch"] and "d_eval_usual_img_s" in e
            ]
            r["d_eval_usual_img_s"] = eager[0] if eager else float("nan")
            r["d_ours_over_usual"] = r["d_eval_ours_img_s"] / r["d_eval_usual_img_s"]
    print(
        f"device: {device_name(device)}; input {args.size} px, storage {storage} px, {args.images} images, "
        f"batch {args.batch}, {args.workers} loader workers, torch {torch.__version__}"
    )
    syncs = "host syncs per train step / eval pass"
    if args.only_ours:
        print(f"{'arch':44s} {'a bare':>9s} {'b ours':>9s} {'b/a':>6s}  {syncs}")
        for r in results:
            print(
                f"{r['label']:44s} {r['a_bare_img_s']:9.0f} {r['b_ours_img_s']:9.0f} {r['b_over_a']:6.2f}  "
                f"{_n(r['train_step_host_syncs'])}"
            )
        estimates = {}
    else:
        print(
            f"{'arch':44s} {'a bare':>9s} {'b ours':>9s} {'c usual':>9s} {'b/a':>6s} {'b/c':>6s} "
            f"{'eval ours':>10s} {'eval usual':>10s} {'1st calls s':>12s}  {syncs}"
        )
        for r in results:
            print(
                f"{r['label']:44s} {r['a_bare_img_s']:9.0f} {r['b_ours_img_s']:9.0f} "
                f"{r['c_usual_img_s']:9.0f} "
                f"{r['b_over_a']:6.2f} {r['b_over_c']:6.2f} {r['d_eval_ours_img_s']:10.0f} "
                f"{r['d_eval_usual_img_s']:10.0f} {r['first_call_s']:5.1f} / {r['eval_first_call_s']:4.1f}  "
                f"{_n(r['train_step_host_syncs'])} / {_n(r['eval_pass_host_syncs'])}"
            )
        estimates = {mode: grid_hours([r for r in results if r["mode"] == mode]) for mode in args.modes}
        for mode, est in estimates.items():
            print(
                f"paper grid estimate ({'eager' if mode == 'none' else 'compile ' + mode}), "
                "one run at a time, start-up excluded: "
                f"{est['main_grid_minutes']:.1f} min for the 20 runs, {est['grid_minutes']:.1f} min with the "
                f"44 sampler runs (33 epochs each)"
            )
    write_json(args, device, results, estimates)


def device_name(device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def write_json(args, device, results: list[dict], estimates: dict) -> None:
    if args.json:
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "device": device_name(device),
                    "torch": torch.__version__,
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "results": results,
                    "estimates": estimates,
                },
                indent=2,
            )
        )
        tmp.replace(args.json)


if __name__ == "__main__":
    main()
