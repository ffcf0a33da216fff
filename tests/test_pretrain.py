"""Pretraining (retention.training.pretrain, rule pretrain) and fine-tuning from its weights."""

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from retention.acquire import data, glyphs
from retention.acquire.weights import check_weights, save_state_dict
from retention.config import load_config, pretrain_train_params, run_only_train_keys, validate_config
from retention.errors import ConfigError
from retention.training import models, pretrain
from retention.training.seedrun import Recorder, class_centroid_cosine
from retention.training.settings import train_config
from retention.training.splits import split_data
from retention.training.trainer import make_trainer

from .conftest import REPO
from .test_workflow import job_counts, snakemake


@pytest.fixture(scope="module")
def demo_config():
    return load_config(REPO / "config.yaml", REPO / "config/demo.yaml")


@pytest.fixture(scope="module")
def tiny_glyphs():
    """Two glyphs of each class, half of them held out, at 16 px."""
    listing = glyphs.list_glyphs(seed=0, per_class=2)
    listing["split"] = np.where(listing["sample_id"] < len(glyphs.CHARACTERS), "train", "heldout")
    return data.decode_images(listing, storage_size=16)


def test_pretrain_config_keeps_train_settings_without_warmup(demo_config):
    augment = demo_config["pretrain"]["augment"]
    cfg = pretrain.pretrain_config(demo_config["train"], epochs=7, lr=0.02, augment=augment)
    assert (cfg.warmup_epochs, cfg.epochs, cfg.lr) == (0, 7, 0.02)
    assert cfg.batch_size == demo_config["train"]["batch_size"]
    assert cfg.augment.scale == tuple(augment["scale"]) != tuple(demo_config["train"]["augment"]["scale"])
    # the rule passes the train section without the keys that do not apply
    params = pretrain_train_params(demo_config)
    assert "epochs" not in params and "augment" not in params
    run_only = {k: demo_config["train"][k] for k in run_only_train_keys()}  # the script adds these
    assert pretrain.pretrain_config({**params, **run_only}, epochs=7, lr=0.02, augment=augment) == cfg


@pytest.mark.parametrize("arch", ["cnn", "vit"])
def test_pretrained_weights_load_into_the_backbone(demo_config, tiny_glyphs, tmp_path, arch):
    spec = demo_config["archs"][arch]
    cfg = pretrain.pretrain_config(demo_config["train"], 1, 2e-3, demo_config["pretrain"]["augment"])
    result = pretrain.pretrain(
        tiny_glyphs, spec["model"], cfg, 0, spec.get("model_kwargs"), spec["input_size"]
    )
    assert result.metrics["phase"].tolist() == ["pretrain"]
    fresh = models.create_model(spec["model"], len(glyphs.CHARACTERS), None, spec.get("model_kwargs"))
    head = {
        name
        for name, p in fresh.named_parameters()
        if any(p is q for q in fresh.get_classifier().parameters())
    }
    assert head and all(
        result.state_dict[k].shape[0] == len(glyphs.CHARACTERS) for k in head
    )  # the source's head
    # trained: not what a random initialisation gives
    changed = [
        k
        for k, v in fresh.state_dict().items()
        if v.is_floating_point() and not torch.equal(v, result.state_dict[k])
    ]
    assert len(changed) > 10
    # the same seed gives the same weights (CPU)
    again = pretrain.pretrain(
        tiny_glyphs, spec["model"], cfg, 0, spec.get("model_kwargs"), spec["input_size"]
    )
    assert all(torch.equal(v, again.state_dict[k]) for k, v in result.state_dict.items())
    # they load into the arch with a new 10-class head, every backbone tensor equal
    path = save_state_dict(result.state_dict, tmp_path / "w.safetensors")
    assert check_weights(spec["model"], path, num_classes=10, model_kwargs=spec.get("model_kwargs")) > 10


def test_pretraining_checkpoint_of_another_model_is_discarded(demo_config, tiny_glyphs, tmp_path, caplog):
    """A pretraining run resumes its own checkpoint and discards one of another model
    (the arch's model changed under the same settings) with one line."""
    cfg = pretrain.pretrain_config(
        {**demo_config["train"], "checkpoint_interval_s": 0}, 2, 2e-3, demo_config["pretrain"]["augment"]
    )
    cnn, vit = demo_config["archs"]["cnn"], demo_config["archs"]["vit"]
    ckpt = tmp_path / "checkpoint.pt"

    def run(spec):
        return pretrain.pretrain(
            tiny_glyphs, spec["model"], cfg, 0, spec.get("model_kwargs"), spec["input_size"], checkpoint=ckpt
        )

    first = run(cnn)  # leaves its checkpoint after epoch 1 of 2 in place
    with caplog.at_level("INFO", logger="retention.training"):
        again = run(cnn)
        assert any(r.getMessage() == f"resumed from {ckpt} after epoch 1" for r in caplog.records)
        assert all(torch.equal(v, again.state_dict[k]) for k, v in first.state_dict.items())
        caplog.clear()
        run(vit)
    discards = [r.getMessage() for r in caplog.records if "discarding checkpoint" in r.getMessage()]
    assert (
        len(discards) == 1
        and "pretrain.model was 'test_resnet.r160_in1k', now 'test_vit.r160_in1k'" in discards[0]
    )


def test_weights_pretrain_needs_a_defined_source(demo_config):
    config = copy.deepcopy(demo_config)
    config["pretrain"]["dataset"] = None
    with pytest.raises(
        ConfigError, match="'pretrain.dataset': None is not defined under 'datasets'.*arch 'cnn'"
    ):
        validate_config(config, check_models=False)
    config["pretrain"]["dataset"] = "leaves"
    config["datasets"]["leaves"] = {"source": "imagefolder", "storage_size": 16}
    with pytest.raises(ConfigError, match="'datasets.leaves.path' is needed"):
        validate_config(config, check_models=False)
    # no arch pretrains: no source needed (the paper grid)
    paper = load_config(REPO / "config.yaml")
    assert paper["pretrain"]["dataset"] is None
    validate_config(paper, check_models=False)


def _centroid_cosine_at_t0(model, arch: dict, config: dict, prepared) -> np.ndarray:
    """The class-centroid cosine of the train set's penultimate features under ``model``,
    computed as a run computes it at t = 0 (traces.npz key class_centroid_cosine)."""
    names = data.class_names(prepared.manifest)
    tr = split_data(prepared.manifest, prepared.images, "train")
    ho = split_data(prepared.manifest, prepared.images, "heldout")
    cfg = train_config(config["train"], arch)
    trainer = make_trainer(
        [model], [0], models.input_config(model, arch.get("input_size")), tr, ho, names, cfg
    )
    (feats,) = trainer.evaluate(
        trainer.data.train_images, trainer.data.train_labels, [Recorder(len(tr.labels), 1)], 0, True
    )
    return class_centroid_cosine(feats, tr.labels, len(names))


@pytest.mark.integration
def test_pretrain_rule_and_runs_that_start_from_its_weights(tmp_path):
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(
        yaml.safe_dump(
            {
                "grid": {"datasets": ["digits_lt"], "archs": ["cnn", "vit"], "seeds": [0]},
                "train": {"warmup_epochs": 1, "epochs": 1},
                "pretrain": {"epochs": 1},
            }
        )
    )
    configs = [REPO / "config.yaml", REPO / "config/demo.yaml", tiny]
    config = load_config(*configs)
    targets = [f"results/runs/digits_lt/{a}/seed0/traces.npz" for a in ("cnn", "vit")]
    snakemake(tmp_path, "--cores", "2", *targets, configs=configs)
    prepared = data.load_prepared(
        tmp_path / "results/data/digits_lt/manifest.csv", tmp_path / "results/data/digits_lt/images.npy"
    )
    for arch in ("cnn", "vit"):
        spec = config["archs"][arch]
        out = tmp_path / "results/pretrain/glyphs" / arch
        metrics = pd.read_csv(out / "metrics.csv")
        assert metrics["phase"].tolist() == ["pretrain"] and metrics["heldout_acc"].notna().all()
        assert (tmp_path / f"benchmarks/pretrain/glyphs/{arch}.tsv").exists()
        assert "epoch 1/1" in (tmp_path / f"logs/pretrain/glyphs/{arch}.log").read_text()
        record = json.loads((out / "run.json").read_text())
        assert (record["stage"], record["dataset"], record["arch"], record["seed"]) == (
            "pretrain",
            "glyphs",
            arch,
            0,
        )
        assert record["config"]["pretrain"]["epochs"] == 1 and record["config"]["train"]["warmup_epochs"] == 0
        weights = out / "weights.safetensors"
        # every backbone tensor of a model built from the file equals the file's ...
        assert (
            check_weights(spec["model"], weights, num_classes=10, model_kwargs=spec.get("model_kwargs")) > 10
        )
        # ... and the run used that model: the warmup freezes the backbone (and its
        # BatchNorm statistics), so its features at t = 0 are those of the file's backbone
        with np.load(tmp_path / f"results/runs/digits_lt/{arch}/seed0/traces.npz") as traces:
            recorded = traces["class_centroid_cosine"]
        loaded = models.create_model(spec["model"], 10, weights, spec.get("model_kwargs"))
        np.testing.assert_allclose(
            _centroid_cosine_at_t0(loaded, spec, config, prepared), recorded, atol=1e-5
        )
        torch.manual_seed(1)
        fresh = models.create_model(spec["model"], 10, None, spec.get("model_kwargs"))
        assert not np.allclose(_centroid_cosine_at_t0(fresh, spec, config, prepared), recorded, atol=1e-3)
    # cached like any output; the fine-tuning lr does not touch the pretrained weights ...
    again = snakemake(tmp_path, "--cores", "2", "-n", *targets, configs=configs)
    assert "Nothing to be done" in again.stdout + again.stderr
    lr = tmp_path / "lr.yaml"
    lr.write_text(yaml.safe_dump({"archs": {"cnn": {"lr": 1e-3}}}))
    counts = job_counts(snakemake(tmp_path, "--cores", "2", "-n", *targets, configs=[*configs, lr]).stdout)
    assert counts.get("finetune") == 1 and "pretrain" not in counts
    # ... a pretraining setting reruns it and the runs that start from it
    epochs = tmp_path / "epochs.yaml"
    epochs.write_text(yaml.safe_dump({"pretrain": {"epochs": 2}}))
    counts = job_counts(
        snakemake(tmp_path, "--cores", "2", "-n", *targets, configs=[*configs, epochs]).stdout
    )
    assert counts.get("pretrain") == 2 and counts.get("finetune") == 2
