"""Fine-tuning throughput: our device-resident pipeline against the usual one.

For each architecture, measured in one run on the same device:
  (a) bare forward + backward + optimizer step on ready, normalised tensors;
  (b) our full train step: uint8 images on the device, random resized crop + flip with
      roi_align, normalisation, forward, backward, step (retention.train.Trainer);
  (c) the usual pipeline: JPEG files decoded by PIL in a DataLoader with workers and
      timm's train transforms, copied to the device, then the same step;
  (d) evaluation: our no-grad eval pass (Trainer._evaluate) and the usual one (PIL +
      timm eval transforms in a DataLoader).
Prints images/s, the ratios b/a and b/c, and an estimate of the paper grid's wall time
from the measured rates. Models are randomly initialised (weights do not change speed).

    python benchmarks/bench_train.py                       # CPU, small sizes
    python benchmarks/bench_train.py --device cuda --size 224 --images 11788 \
        --archs resnet18 deit_small_patch16_224 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import timm  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

from retention import models, train  # noqa: E402
from retention.augment import AugmentConfig, to_device  # noqa: E402

# Paper grid (METHOD section 1): train / held-out sizes, and the run counts.
GRID = {"octdl": (1651, 413), "cub200": (5994, 5794)}
SEEDS, SAMPLER_FRACTION = 5, 0.5


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeat: int) -> float:
    """Seconds per call of ``fn`` after one warm-up call."""
    fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    sync(device)
    return (time.perf_counter() - start) / repeat


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


def loader_rate(model, items, transform, device, batch, workers, train_step, n_batches, autocast):
    """Images/s of the usual DataLoader pipeline over ``n_batches`` batches."""
    dl = torch.utils.data.DataLoader(
        FileDataset(items, transform), batch_size=batch, shuffle=True, num_workers=workers,
        pin_memory=device.type == "cuda", drop_last=True, persistent_workers=False,
        prefetch_factor=4 if workers else None,
    )
    it = iter(dl)
    x, y = next(it)  # warm-up (workers start)
    train_step(x.to(device), y.to(device))
    sync(device)
    start, seen = time.perf_counter(), 0
    for _ in range(n_batches):
        try:
            x, y = next(it)
        except StopIteration:
            it = iter(dl)
            x, y = next(it)
        x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        train_step(x, y.to(device, non_blocking=True))
        seen += len(y)
    sync(device)
    return seen / (time.perf_counter() - start)


def bench_arch(name: str, args, device, images, labels, items) -> dict:
    torch.manual_seed(0)
    model = models.create_model(name, 200)
    input_cfg = models.input_config(model, args.size)
    cfg = train.TrainConfig(
        lr=1e-4, warmup_epochs=0, epochs=1, batch_size=args.batch, eval_batch_size=args.eval_batch,
        augment=AugmentConfig(), channels_last=True, compile=args.compile,
    )
    n = len(labels)
    split = train.SplitData(images, labels, np.arange(n))
    trainer = train.Trainer(model, input_cfg, split, split, [str(k) for k in range(200)], cfg, 0,
                            device=device, progress=False)
    trainer._start_phase("finetune")
    opt = trainer.optimizer
    autocast = trainer._autocast
    fwd = trainer.forward

    def step(x, y):
        with autocast():
            logits = fwd(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    b = args.batch
    x_ready = torch.randn(b, 3, args.size, args.size, device=device).contiguous(memory_format=torch.channels_last)
    y_ready = torch.randint(0, 200, (b,), device=device)
    t_a = timed(lambda: step(x_ready, y_ready), device, args.steps)

    gen = torch.Generator().manual_seed(0)

    def our_step():
        idx = torch.randint(0, n, (b,), generator=gen)
        imgs = trainer.train_images[to_device(idx, trainer.train_images.device)].to(device, non_blocking=True)
        x = trainer.transform.train(imgs, gen)
        step(x, trainer.train_labels[to_device(idx, device)])

    t_b = timed(our_step, device, args.steps)
    if args.only_ours:
        return {"arch": name, "b_ours_img_s": b / t_b}

    data_cfg = timm.data.resolve_data_config({"input_size": (3, args.size, args.size)}, model=model)
    train_tf = timm.data.create_transform(**data_cfg, is_training=True)
    eval_tf = timm.data.create_transform(**data_cfg, is_training=False)
    rate_c = loader_rate(model, items, train_tf, device, b, args.workers, step, args.loader_batches, autocast)

    rec = train.Recorder(n, 1)
    sync(device)
    start = time.perf_counter()
    trainer._evaluate(trainer.train_images, trainer.train_labels, rec, 0, False)
    sync(device)
    rate_d_ours = n / (time.perf_counter() - start)

    model.eval()

    @torch.no_grad()
    def eval_step(x, y):
        with autocast():
            logits = fwd(x)
        logits.float().softmax(1)

    rate_d_usual = loader_rate(model, items, eval_tf, device, args.eval_batch, args.workers, eval_step,
                               max(1, args.loader_batches // 4), autocast)
    model.train()
    return {
        "arch": name,
        "a_bare_img_s": b / t_a,
        "b_ours_img_s": b / t_b,
        "c_usual_img_s": rate_c,
        "d_eval_ours_img_s": rate_d_ours,
        "d_eval_usual_img_s": rate_d_usual,
        "b_over_a": (b / t_b) / (b / t_a),
        "b_over_c": (b / t_b) / rate_c,
        "d_ours_over_usual": rate_d_ours / rate_d_usual,
    }


def grid_hours(rates: list[dict], warmup: int = 3, epochs: int = 30) -> dict:
    """Paper-grid wall time on one device from the measured rates (one run at a time).

    Per run: (warmup + epochs) x (train images at the train rate + train and held-out
    images at the eval rate); 5 seeds x 2 archs x 2 datasets, plus the sampler runs (a
    scout run and 2 samplers x 5 seeds at half the training per epoch). Warmup epochs are
    costed as full steps (an upper bound).
    """
    main = sampler = 0.0
    for r in rates:
        for n_train, n_held in GRID.values():
            evaluate = (n_train + n_held) / r["d_eval_ours_img_s"]
            full = n_train / r["b_ours_img_s"] + evaluate
            half = SAMPLER_FRACTION * n_train / r["b_ours_img_s"] + evaluate
            main += SEEDS * full * (warmup + epochs)
            sampler += (full + 2 * SEEDS * half) * (warmup + epochs)
    return {"main_grid_minutes": main / 60.0, "grid_minutes": (main + sampler) / 60.0}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--archs", nargs="+", default=["resnet18", "deit_small_patch16_224"])
    parser.add_argument("--size", type=int, default=64, help="model input size in pixels")
    parser.add_argument("--storage", type=int, help="stored image size (default size * 8/7)")
    parser.add_argument("--images", type=int, default=512, help="dataset size (CUB: 11788)")
    parser.add_argument("--jpeg-size", type=int, nargs=2, default=(500, 375), help="usual pipeline's JPEG w h")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--eval-batch", type=int, default=512)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--loader-batches", type=int, default=10)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--only-ours", action="store_true", help="measure (b) alone (concurrency checks)")
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args()
    device = torch.device(args.device)
    storage = args.storage or round(args.size * 8 / 7)
    images, labels = synthetic_images(args.images, storage)
    with tempfile.TemporaryDirectory() as tmp:
        n_files = 0 if args.only_ours else min(args.images, max(args.loader_batches * args.batch * 2, args.eval_batch * 2))
        items = write_jpegs(images[:n_files], labels[:n_files], Path(tmp), tuple(args.jpeg_size))
        results = [bench_arch(a, args, device, images, labels, items) for a in args.archs]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    if args.only_ours:
        for r in results:
            print(f"{r['arch']}: ours {r['b_ours_img_s']:.0f} img/s")
        if args.json:
            args.json.write_text(json.dumps({"device": name, "results": results}))
        return
    print(f"device: {name}; input {args.size} px, storage {storage} px, {args.images} images, "
          f"batch {args.batch}, {args.workers} loader workers, torch {torch.__version__}")
    head = f"{'arch':28s} {'a bare':>9s} {'b ours':>9s} {'c usual':>9s} {'b/a':>6s} {'b/c':>6s} {'eval ours':>10s} {'eval usual':>10s}"
    print(head)
    for r in results:
        print(f"{r['arch']:28s} {r['a_bare_img_s']:9.0f} {r['b_ours_img_s']:9.0f} {r['c_usual_img_s']:9.0f} "
              f"{r['b_over_a']:6.2f} {r['b_over_c']:6.2f} {r['d_eval_ours_img_s']:10.0f} {r['d_eval_usual_img_s']:10.0f}")
    est = grid_hours(results)
    print(f"paper grid estimate at these rates, one run at a time: {est['main_grid_minutes']:.1f} min for the "
          f"20 runs, {est['grid_minutes']:.1f} min with the 44 sampler runs (33 epochs each)")
    if args.json:
        args.json.write_text(json.dumps({"device": name, "args": {k: str(v) for k, v in vars(args).items()},
                                         "results": results, "estimate": est}, indent=2))


if __name__ == "__main__":
    main()
