"""Fine-tune one (dataset, arch, seed) run and record per-sample traces.

Run by the rules finetune and finetune_budget (the sampler runs), or standalone:
    python scripts/finetune.py --data results/data/digits --config config.yaml \
        --arch resnet18 --seed 0 --out results/runs/digits/resnet18/seed0
Writes traces.npz and metrics.csv (docs/contracts.md). Resumes from --checkpoint.
"""

import argparse
import logging
from pathlib import Path

import pandas as pd
import torch

import _retention_path  # noqa: F401  (the package beside scripts/)
from retention import data, gpu, io, models, train
from retention.config import RUN_ONLY_TRAIN_KEYS

log = logging.getLogger("retention.finetune")


def make_sampler(spec: dict | None, n: int, seed: int, sample_ids):
    """The epoch sampler of a budgeted run (spec from the rule), or None for a full run."""
    if not spec:
        return None
    from retention import sampler

    lam = None
    if spec["kind"] == "spaced":
        lam = sampler.align_lambda(pd.read_parquet(spec["scout_fits"]), sample_ids)
    return sampler.BudgetSampler(n=n, fraction=spec["fraction"], kind=spec["kind"], lam=lam, seed=seed)


def finetune(manifest, images, arch_cfg: dict, train_cfg: dict, seed: int, weights, out_traces, out_metrics,
             checkpoint, threads: int, sampler_spec: dict | None = None):
    torch.set_num_threads(threads)
    prepared = data.load_prepared(manifest, images)
    names = data.class_names(prepared.manifest)
    tr = train.split_data(prepared.manifest, prepared.images, "train")
    ho = train.split_data(prepared.manifest, prepared.images, "heldout")
    cfg = train.train_config(train_cfg, arch_cfg)
    with gpu.lease_for(train_cfg.get("device", "auto"), train_cfg.get("gpu_slots_per_device", 1)) as lease:
        log.info("device: %s", lease.description)
        train.seed_everything(seed)
        model = models.create_model(arch_cfg["model"], len(names), weights, arch_cfg.get("model_kwargs"))
        input_cfg = models.input_config(model, arch_cfg.get("input_size"))
        log.info(
            "model %s, %d train / %d held-out images, %d classes, input %d px, seed %d",
            arch_cfg["model"], len(tr.labels), len(ho.labels), len(names), input_cfg.size, seed,
        )
        trainer = train.Trainer(
            model, input_cfg, tr, ho, names, cfg, seed, device=lease.device,
            sampler=make_sampler(sampler_spec, len(tr.labels), seed, tr.sample_ids),
            checkpoint=checkpoint if train_cfg.get("checkpoint", True) else None,
            device_label=lease.description,
        )
        result = trainer.run()
    io.save_table(out_metrics, result.metrics)
    io.save_npz(out_traces, result.traces)
    trainer.remove_checkpoint()


def main():
    if "snakemake" in globals():
        sm = snakemake  # noqa: F821
        io.setup_logging(sm.log[0])
        # the rule's params hold the train keys that shape results; the rest come from the config
        train_cfg = {**sm.params.train, **{k: sm.config["train"][k] for k in RUN_ONLY_TRAIN_KEYS}}
        finetune(
            sm.input.manifest, sm.input.images, sm.params.arch, train_cfg, int(sm.wildcards.seed),
            sm.input.get("weights"), sm.output.traces, sm.output.metrics, sm.params.checkpoint,
            sm.threads, sm.params.get("sampler"),
        )
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="folder with manifest.csv and images.npy")
    parser.add_argument("--config", type=Path, required=True, help="config.yaml (train and archs sections)")
    parser.add_argument("--arch", required=True, help="a key of the config's archs")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--weights", help="a local weights file (default: random init)")
    parser.add_argument("--out", type=Path, required=True, help="writes OUT/traces.npz and OUT/metrics.csv")
    parser.add_argument("--checkpoint", type=Path, help="resume file (default OUT/checkpoint.pt)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    io.setup_logging()
    from retention.config import load_config

    config = load_config(args.config)
    finetune(
        args.data / "manifest.csv", args.data / "images.npy", config["archs"][args.arch], config["train"],
        args.seed, args.weights, args.out / "traces.npz", args.out / "metrics.csv",
        args.checkpoint or args.out / "checkpoint.pt", args.threads,
    )


if __name__ == "__main__":
    io.run_main(main)
