"""Fine-tune one (dataset, arch) for one or several seeds and record per-sample traces.

Run by the rules finetune (a group of seeds, train.seeds_per_job, in one job) and
finetune_budget (the sampler runs), or standalone:
    python scripts/finetune.py --data results/data/digits --config config.yaml \
        --arch resnet18 --seed 0 --out results/runs/digits/resnet18/seed0
(several seeds, trained together: --seed 0 1 2 writes OUT/seed0/, OUT/seed1/, ...).
Writes traces.npz, metrics.csv and run.json (docs/contracts.md). Resumes from --checkpoint.
"""

from retention.training.timing import JobClock

CLOCK = JobClock()  # first, so that the job's time is measured from here on

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from retention import io  # noqa: E402


def main():
    if "snakemake" in globals():
        from retention.training.finetune import finetune_job
        from retention.training.settings import train_config

        CLOCK.lap("imports")
        sm = snakemake  # noqa: F821
        io.setup_logging(sm.log[0])
        # the rule's params hold the train keys that shape results; the config the rest
        cfg = train_config({**sm.config["train"], **sm.params.train}, sm.params.arch)
        seeds = list(sm.params.seeds)  # the job's group; its files are the params traces, metrics, record
        outputs = list(zip(sm.params.traces, sm.params.metrics))
        finetune_job(
            sm.input.manifest,
            sm.input.images,
            sm.params.arch,
            cfg,
            seeds,
            sm.input.get("weights"),
            outputs,
            sm.params.checkpoint,
            sm.params.get("sampler"),
            clock=CLOCK,
            records=list(sm.params.record),
            names={"dataset": sm.wildcards.dataset, "arch": sm.wildcards.arch},
            convergence=sm.config["convergence"],  # the log's warning only: not a param, reruns nothing
        )
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="folder with manifest.csv and images.npy")
    parser.add_argument("--config", type=Path, required=True, help="config.yaml (train and archs sections)")
    parser.add_argument("--arch", required=True, help="a key of the config's archs")
    parser.add_argument(
        "--seed", type=int, nargs="+", required=True, help="one seed, or several trained together"
    )
    parser.add_argument("--weights", help="a local weights file (default: random init)")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="writes OUT/traces.npz, metrics.csv, run.json (several seeds: OUT/seed<s>/...)",
    )
    parser.add_argument("--checkpoint", type=Path, help="resume file (default OUT/checkpoint.pt)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: the config's train.threads)")
    args = parser.parse_args()
    io.setup_logging()
    from retention.config import load_config, suggest
    from retention.errors import ConfigError

    # the arguments first, before torch is imported
    for path in (args.data / "manifest.csv", args.data / "images.npy"):
        io.require_file(path, "prepared dataset file")
    if args.weights:
        io.require_file(args.weights, "weights file")
    io.check_output_folder(args.out)
    if args.checkpoint:
        io.check_output(args.checkpoint, (".pt",), "checkpoint")
    config = load_config(args.config)  # absent keys take the schema's defaults
    if args.arch not in config["archs"]:
        raise ConfigError(
            f"--arch {args.arch!r} is not a key of the config's archs{suggest(args.arch, config['archs'])}"
        )
    from retention.training.finetune import finetune_job
    from retention.training.settings import train_config

    CLOCK.lap("imports")
    train_cfg = {**config["train"], **({"threads": args.threads} if args.threads else {})}
    cfg = train_config(train_cfg, config["archs"][args.arch])
    dirs = [args.out] if len(args.seed) == 1 else [args.out / f"seed{s}" for s in args.seed]
    finetune_job(
        args.data / "manifest.csv",
        args.data / "images.npy",
        config["archs"][args.arch],
        cfg,
        args.seed,
        args.weights,
        [(d / "traces.npz", d / "metrics.csv") for d in dirs],
        args.checkpoint or args.out / "checkpoint.pt",
        clock=CLOCK,
        records=[d / "run.json" for d in dirs],
        names={"dataset": args.data.name, "arch": args.arch},
        convergence=config["convergence"],
    )


def leave() -> None:
    """End the process now that every output is written and closed: flush the logs and
    skip the interpreter's teardown of torch's thousands of modules (about 1.4 s of a
    job, docs/performance.md). On an error run_main has exited already, the usual way."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    io.run_main(main)
    leave()
