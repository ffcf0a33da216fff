"""One fine-tuning job: one (dataset, arch) and one or several seeds, files to files.

``finetune_job`` reads the prepared dataset, takes a device (``retention.training.gpu``),
creates each seed's model under its seed, trains them (``trainer.make_trainer``: one
trainer whose model object is one model, or the seeds' models stacked), writes each seed's
``traces.npz`` and ``metrics.csv`` atomically and removes the checkpoint. The job's
time is split into parts (``retention.training.timing``), logged and added to metrics.csv. A run
whose held-out accuracy is near chance, or still rising at its end (``retention.chance``),
gets a warning in the log; each seed's ``run.json`` (``retention.provenance``) is written
last.

A checkpoint belongs to its config: :func:`run_fingerprint` says what a run's results
depend on besides the train settings and seeds (the arch entry, the prepared data's
checksum, the weights file's, the sampler, the training code), and the Trainer
discards a checkpoint written under anything else.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from retention import io, provenance
from retention.acquire import data
from retention.chance import chance_warning, rising_warning, run_accuracy
from retention.config import display_only_arch_keys
from retention.training import gpu, models
from retention.training.settings import TrainConfig
from retention.training.splits import split_data
from retention.training.timing import JobClock
from retention.training.trainer import RunResult, Trainer, make_trainer, seed_everything

log = logging.getLogger("retention.training.finetune")

# the modules whose code decides a run's results
TRAINING_MODULES = (
    "trainer.py",
    "settings.py",
    "splits.py",
    "seedrun.py",
    "modelstate.py",
    "single.py",
    "stacked.py",
    "checkpoint.py",
    "augment.py",
    "models.py",
    "sampler.py",
)


def code_digest() -> str:
    """sha256 of the training modules' source (:data:`TRAINING_MODULES`)."""
    here = Path(__file__).resolve().parent
    return provenance.file_digest(*(here / name for name in TRAINING_MODULES))


def run_fingerprint(
    arch: Mapping,
    manifest,
    images,
    weights=None,
    sampler_spec: Mapping | None = None,
    lam: np.ndarray | None = None,
) -> Callable[[], dict]:
    """What a run depends on besides its train settings and seed, for its checkpoint.

    Returns a function (the Trainer calls it when it first writes or reads a checkpoint,
    so runs that never checkpoint never hash their data) giving {key: plain value}: the
    prepared data's checksum (images.npy and manifest.csv), the weights file's, the code,
    the arch entry (``arch.<key>``), and a budgeted run's sampler (kind, fraction, the
    scout lambda's checksum).
    """

    def fingerprint() -> dict:
        out = {"code.sha256": code_digest(), "data.sha256": provenance.data_digest(manifest, images)}
        if weights:
            out["weights.sha256"] = provenance.file_digest(weights)
        display_only = display_only_arch_keys()  # figure labels: they change no result
        out.update({f"arch.{k}": v for k, v in arch.items() if k not in display_only})
        if sampler_spec:
            out["sampler.kind"] = sampler_spec["kind"]
            out["sampler.fraction"] = float(sampler_spec["fraction"])
            out["sampler.min_lambda"] = sampler_spec.get("min_lambda")
            lam_bytes = np.ascontiguousarray(lam, dtype=np.float64).tobytes() if lam is not None else b""
            out["sampler.lambda_sha256"] = hashlib.sha256(lam_bytes).hexdigest()
        return out

    return fingerprint


def scout_lambda(spec: Mapping | None, sample_ids) -> np.ndarray | None:
    """The scout run's lambda per train sample for a spaced budgeted run, else None."""
    if not spec or spec["kind"] != "spaced":
        return None
    from retention.training import sampler

    columns = ("trace", "primary", "sample_id", "lambda")
    fits = io.read_table(spec["scout_fits"], "scout run's fits table", columns=columns)
    return sampler.align_lambda(fits, sample_ids)


def make_sampler(spec: Mapping | None, n: int, seed: int, lam: np.ndarray | None):
    """The epoch sampler of a budgeted run (spec from the rule), or None for a full run."""
    if not spec:
        return None
    from retention.training import sampler

    return sampler.BudgetSampler(
        n=n,
        fraction=spec["fraction"],
        kind=spec["kind"],
        lam=lam,
        seed=seed,
        min_lambda=spec.get("min_lambda"),
    )


def finetune_job(
    manifest: str | os.PathLike,
    images: str | os.PathLike,
    arch: Mapping,
    cfg: TrainConfig,
    seeds: Sequence[int],
    weights: str | os.PathLike | None,
    outputs: Sequence[tuple[str | os.PathLike, str | os.PathLike]],
    checkpoint: str | os.PathLike | None,
    sampler_spec: Mapping | None = None,
    clock: JobClock | None = None,
    records: Sequence[str | os.PathLike] | None = None,
    names: Mapping[str, str] | None = None,
    convergence: Mapping | None = None,
) -> list[RunResult]:
    """Train ``seeds`` of one (dataset, arch) and write each seed's (traces, metrics) to
    ``outputs`` (one pair per seed, in order); see the module docstring.

    The arguments are :func:`job_trainer`'s; clock: the job's clock, started by the caller.
    records: one run.json per seed, in order (None: none), whose start is the process's
    (as ``job_total_s``); names: the runs' ``dataset`` and ``arch`` keys for run.json
    (default: the data folder's name and the arch's model); convergence: the config's
    section (``epochs``, ``tolerance``) for the warning about runs still rising at the end.
    """
    clock = clock or JobClock()
    started = provenance.utc_now(-clock.total())
    git = provenance.git_state() if records else None
    if len(outputs) != len(seeds) or (records is not None and len(records) != len(seeds)):
        raise ValueError(f"{len(seeds)} seeds, {len(outputs)} output pairs, {len(records or [])} records")
    torch.set_num_threads(cfg.threads)
    job = (manifest, images, arch, cfg, seeds, weights, checkpoint if cfg.checkpoint else None, sampler_spec)
    with gpu.lease_for(cfg.device, cfg.gpu_slots_per_device) as lease:
        log.info("device: %s", lease.description)
        trainer = job_trainer(*job, lease.device, lease.description, clock)
        results = trainer.run_all()
    write_results(outputs, results, trainer, clock)
    for (traces, _), result in zip(outputs, results):
        warn_near_chance(result.traces, str(Path(traces).parent), convergence)
    if records:
        names = names or {"dataset": Path(manifest).parent.name, "arch": arch["model"]}
        config = run_config(arch, cfg, seeds, manifest, images, weights, sampler_spec)
        write_run_records(
            records,
            names,
            seeds,
            config,
            lease.device,
            sampler_spec,
            started=started,
            commit=git,
            data_sha256=provenance.data_digest(manifest, images),
        )
    return results


def warn_near_chance(traces: Mapping[str, np.ndarray], run: str, convergence: Mapping | None = None) -> bool:
    """Log a warning naming ``run`` when its held-out accuracy at t = 0 or at the end is
    near chance, and (given the config's ``convergence`` section) one when it is still
    rising at the end (``retention.chance``); returns whether it warned."""
    setting = (int(convergence["epochs"]), float(convergence["tolerance"])) if convergence else None
    acc = run_accuracy(traces, setting)
    messages = [chance_warning(acc, run)]
    if setting:
        messages.append(rising_warning(acc, run))
    for message in filter(None, messages):
        log.warning(message)
    return any(messages)


def run_config(
    arch: Mapping,
    cfg: TrainConfig,
    seeds: Sequence[int],
    manifest,
    images,
    weights,
    sampler_spec: Mapping | None,
) -> dict:
    """The resolved config of a job's runs, for run.json: the arch entry, the train
    settings used, the seeds trained together, the input files and the sampler."""
    return {
        "arch": dict(arch),
        "train": dataclasses.asdict(cfg),
        "job_seeds": [int(s) for s in seeds],
        "inputs": {
            "manifest": str(manifest),
            "images": str(images),
            "weights": str(weights) if weights else None,
        },
        "sampler": dict(sampler_spec) if sampler_spec else None,
    }


def write_run_records(
    records: Sequence[str | os.PathLike],
    names: Mapping[str, str],
    seeds: Sequence[int],
    config: Mapping,
    device: str,
    sampler_spec: Mapping | None,
    *,
    started: datetime,
    commit: provenance.GitState | str | None,
    data_sha256: str | None = None,
) -> None:
    """Write each seed's run.json (``retention.provenance``), ending now; started, commit:
    the time and the checkout's state (``provenance.git_state``) when the job started;
    data_sha256: the prepared data's hash (``provenance.data_digest``)."""
    ended = provenance.utc_now()
    stage, kind = ("sampler", sampler_spec["kind"]) if sampler_spec else ("finetune", None)
    for seed, path in zip(seeds, records):
        record = provenance.run_record(
            stage,
            names["dataset"],
            names["arch"],
            seed,
            config,
            device,
            started,
            ended,
            sampler=kind,
            commit=commit,
            data_sha256=data_sha256,
        )
        provenance.write_record(path, record)


def write_results(
    outputs: Sequence[tuple[str | os.PathLike, str | os.PathLike]],
    results: Sequence[RunResult],
    trainer: Trainer,
    clock: JobClock,
) -> None:
    """Each seed's traces.npz and metrics.csv (with the job's timing columns), atomically;
    then the checkpoint is removed."""
    first_step, epochs = trainer.times["first_step_s"], trainer.times["epochs_s"]
    clock.lap("other", split={"first_step": first_step, "epochs": epochs - first_step})
    for (traces, _), result in zip(outputs, results):
        io.save_npz(traces, result.traces)
    io.remove_checkpoint(trainer.checkpoint)
    clock.lap("write")
    columns = {**clock.columns(), "job_seeds": len(results)}
    for (_, metrics), result in zip(outputs, results):
        result.metrics = result.metrics.assign(**columns)
        io.save_table(metrics, result.metrics)
    log.info("%s (%d seed%s)", clock.summary(), len(results), "s" if len(results) > 1 else "")


def seed_models(arch: Mapping, seeds: Sequence[int], n_classes: int, weights=None) -> list:
    """One model per seed, each created right after seeding everything with its seed."""
    out = []
    for seed in seeds:
        seed_everything(seed)
        out.append(models.create_model(arch["model"], n_classes, weights, arch.get("model_kwargs")))
    return out


def job_trainer(
    manifest: str | os.PathLike,
    images: str | os.PathLike,
    arch: Mapping,
    cfg: TrainConfig,
    seeds: Sequence[int],
    weights: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    sampler_spec: Mapping | None = None,
    device: str = "cpu",
    device_label: str | None = None,
    clock: JobClock | None = None,
) -> Trainer:
    """A job's Trainer (its seeds' models stacked when there are several), ready to ``run_all()``.

    Reads the prepared dataset (manifest.csv, images.npy) and a spaced run's scout fits,
    and creates each seed's model under its seed. arch: the config's ``archs`` entry;
    cfg: the run's settings (``settings.train_config``); weights: a local weights file, or
    None for random initialisation; checkpoint: the resume file (None: no checkpoints);
    sampler_spec: a budgeted run's sampler ({kind, fraction, scout_fits}); clock: charged
    with the data and model parts.
    """
    clock = clock or JobClock()
    prepared = data.load_prepared(manifest, images)
    names = data.class_names(prepared.manifest)
    tr = split_data(prepared.manifest, prepared.images, "train")
    ho = split_data(prepared.manifest, prepared.images, "heldout")
    lam = scout_lambda(sampler_spec, tr.sample_ids)
    samplers = [make_sampler(sampler_spec, len(tr.labels), seed, lam) for seed in seeds]
    clock.lap("data")
    model_list = seed_models(arch, seeds, len(names), weights)
    input_cfg = models.input_config(model_list[0], arch.get("input_size"))
    log.info(
        "model %s, %d train / %d held-out images, %d classes, input %d px, seed%s %s",
        arch["model"],
        len(tr.labels),
        len(ho.labels),
        len(names),
        input_cfg.size,
        "s" if len(seeds) > 1 else "",
        ", ".join(map(str, seeds)),
    )
    trainer = make_trainer(
        model_list,
        seeds,
        input_cfg,
        tr,
        ho,
        names,
        cfg,
        device=device,
        samplers=samplers,
        checkpoint=checkpoint,
        device_label=device_label,
        fingerprint=run_fingerprint(arch, manifest, images, weights, sampler_spec, lam),
    )
    clock.lap("model")
    return trainer
