"""Pretrain one architecture from random weights on a prepared source dataset (rule pretrain).

Writes the weights (safetensors, the whole state dict) that fine-tuning loads for an arch
with `weights: pretrain`, the per-epoch metrics and the run's run.json. Standalone:
    python scripts/pretrain.py --data results/data/glyphs --config config.yaml \
        --configfile config/demo.yaml --arch cnn --out results/pretrain/glyphs/cnn
"""

import argparse
import dataclasses
import logging
from pathlib import Path

from retention import io, provenance
from retention.config import run_only_train_keys
from retention.training.timing import process_age_s

log = logging.getLogger("retention.training.pretrain")


def warn_convergence(metrics, manifest, convergence: dict, run: str) -> None:
    """Log a warning when the pretraining ended near chance on its source's held-out split,
    or with its held-out accuracy still rising (``retention.chance``)."""
    from retention import chance
    from retention.acquire import data

    heldout = manifest[manifest["split"] == "heldout"]
    acc = chance.pretrain_accuracy(
        metrics["heldout_acc"],
        heldout["label"],
        len(data.class_names(manifest)),
        (convergence["epochs"], convergence["tolerance"]),
    )
    log.info(
        "pretraining %s: held-out accuracy %.1f%% at the end (chance %.1f%%)",
        run,
        100 * acc.end,
        100 * acc.chance,
    )
    for line in (
        chance.chance_warning(acc, run, "pretraining"),
        chance.rising_warning(acc, run, "pretraining"),
    ):
        if line:
            log.warning(line)


def run(
    manifest,
    images,
    arch_cfg: dict,
    train_cfg: dict,
    spec: dict,
    out_weights,
    out_metrics,
    checkpoint,
    threads: int,
    out_record,
    names: dict,
    convergence: dict,
):
    """Pretrain, write the weights, the metrics and (last) run.json; names: the source
    dataset's and the arch's keys; convergence: the config's section (the log's warnings)."""
    import torch  # here, so that --help answers without loading torch

    from retention.acquire import data
    from retention.acquire.weights import check_weights, save_state_dict
    from retention.training import gpu, pretrain
    from retention.training.finetune import code_digest

    started, git = provenance.utc_now(-process_age_s()), provenance.git_state()
    torch.set_num_threads(threads)
    prepared = data.load_prepared(manifest, images)
    cfg = pretrain.pretrain_config(train_cfg, spec["epochs"], spec["lr"], spec["augment"])
    with gpu.lease_for(cfg.device, cfg.gpu_slots_per_device) as lease:
        log.info("device: %s", lease.description)
        result = pretrain.pretrain(
            prepared,
            arch_cfg["model"],
            cfg,
            int(spec["seed"]),
            arch_cfg.get("model_kwargs"),
            arch_cfg.get("input_size"),
            device=lease.device,
            checkpoint=checkpoint if cfg.checkpoint else None,
            device_label=lease.description,
            fingerprint=lambda: {
                "code.sha256": code_digest(),
                "data.sha256": provenance.data_digest(manifest, images),
            },
        )
    save_state_dict(result.state_dict, out_weights)
    try:
        check_weights(arch_cfg["model"], out_weights, model_kwargs=arch_cfg.get("model_kwargs"))
    except BaseException:
        Path(out_weights).unlink(missing_ok=True)
        raise
    io.save_table(out_metrics, result.metrics)
    warn_convergence(result.metrics, prepared.manifest, convergence, f"{names['dataset']}/{names['arch']}")
    io.remove_checkpoint(checkpoint)
    config = {
        "arch": arch_cfg,
        "train": dataclasses.asdict(cfg),
        "pretrain": spec,
        "inputs": {"manifest": str(manifest), "images": str(images)},
    }
    record = provenance.run_record(
        "pretrain",
        names["dataset"],
        names["arch"],
        spec["seed"],
        config,
        lease.device,
        started,
        provenance.utc_now(),
        commit=git,
        data_sha256=provenance.data_digest(manifest, images),
    )
    provenance.write_record(out_record, record)


def main():
    if "snakemake" in globals():
        sm = snakemake  # noqa: F821
        io.setup_logging(sm.log[0])
        # the rule's params hold the train keys that shape results; the rest come from the config
        train_cfg = {**sm.params.train, **{k: sm.config["train"][k] for k in run_only_train_keys()}}
        run(
            sm.input.manifest,
            sm.input.images,
            sm.params.arch,
            train_cfg,
            sm.params.pretrain,
            sm.output.weights,
            sm.output.metrics,
            sm.params.checkpoint,
            sm.threads,
            sm.output.record,
            {"dataset": sm.wildcards.dataset, "arch": sm.wildcards.arch},
            sm.config["convergence"],  # the log's warnings only: not a param, reruns nothing
        )
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="folder with manifest.csv and images.npy")
    parser.add_argument("--config", type=Path, required=True, help="config.yaml (train, archs, pretrain)")
    parser.add_argument("--configfile", type=Path, nargs="*", default=[], help="configs laid over --config")
    parser.add_argument("--arch", required=True, help="a key of the config's archs")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="writes OUT/weights.safetensors, OUT/metrics.csv and OUT/run.json",
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    io.setup_logging()
    from retention.config import load_config

    for path in (args.data / "manifest.csv", args.data / "images.npy"):
        io.require_file(path, "prepared dataset file")
    io.check_output_folder(args.out)
    config = load_config(args.config, *args.configfile)
    if args.arch not in config["archs"]:
        from retention.config import suggest
        from retention.errors import ConfigError

        raise ConfigError(
            f"--arch {args.arch!r} is not a key of the config's archs{suggest(args.arch, config['archs'])}"
        )
    run(
        args.data / "manifest.csv",
        args.data / "images.npy",
        config["archs"][args.arch],
        config["train"],
        config["pretrain"],
        args.out / "weights.safetensors",
        args.out / "metrics.csv",
        args.out / "checkpoint.pt",
        args.threads,
        args.out / "run.json",
        {"dataset": args.data.name, "arch": args.arch},
        config["convergence"],
    )


if __name__ == "__main__":
    io.run_main(main)
