import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from retention import io
from retention.acquire import data
from retention.errors import ConfigError, TrainingError
from retention.training import checkpoint, finetune, models
from retention.training import trainer as train
from retention.training.settings import train_config
from retention.training.single import compiled_forward
from retention.training.splits import split_data

from .conftest import REPO

TRACE_KEYS = {
    "sample_id",
    "label",
    "class_names",
    "t",
    "correct",
    "p_true",
    "loss",
    "el2n",
    "pred",
    "heldout_sample_id",
    "heldout_label",
    "heldout_correct",
    "heldout_p_true",
    "heldout_loss",
    "heldout_el2n",
    "heldout_pred",
    "class_centroid_cosine",
}


@pytest.fixture(scope="module")
def digits_small(tmp_path_factory):
    """250 digits at 12 px, written as a prepared dataset."""
    out = tmp_path_factory.mktemp("digits")
    prepared = data.prepare_dataset("digits", None, storage_size=12, heldout_fraction=0.2)
    keep = np.r_[0:250]
    manifest = prepared.manifest.iloc[keep].reset_index(drop=True)
    io.save_table(out / "manifest.csv", manifest)
    io.save_npy(out / "images.npy", prepared.images[keep])
    return out


def tiny_cfg(lr=2e-3, **over):
    """A TrainConfig of a few short epochs: the schema's defaults but for these and ``over``."""
    settings = {
        "warmup_epochs": 1,
        "epochs": 3,
        "batch_size": 32,
        "eval_batch_size": 64,
        "head_lr": 2e-3,
        "augment": {"scale": [0.5, 1.0], "flip": 0.0},
        "channels_last": False,
    }
    settings.update(over)
    return train_config(settings, {"lr": lr})


def tiny_trainer(root, seed=0, cfg=None, checkpoint=None, samplers=None, heldout="heldout"):
    """A one-seed Trainer of test_resnet on the prepared data at ``root``."""
    prepared = data.load_prepared(root / "manifest.csv", root / "images.npy")
    names = data.class_names(prepared.manifest)
    tr = split_data(prepared.manifest, prepared.images, "train")
    ho = split_data(prepared.manifest, prepared.images, heldout)
    train.seed_everything(seed)
    model = models.create_model("test_resnet", len(names))
    return train.make_trainer(
        [model],
        [seed],
        models.input_config(model, 12),
        tr,
        ho,
        names,
        cfg or tiny_cfg(),
        checkpoint=checkpoint,
        samplers=samplers,
        progress=False,
    )


def run_tiny(root, seed=0, cfg=None, checkpoint=None):
    trainer = tiny_trainer(root, seed, cfg, checkpoint)
    (result,) = trainer.run_all()
    return trainer, result


def test_trace_recording_shapes_and_consistency(digits_small):
    trainer, result = run_tiny(digits_small)
    tr = result.traces
    assert set(tr) == TRACE_KEYS
    n, t = tr["correct"].shape
    assert tr["t"].tolist() == [0, 1, 2, 3]
    assert tr["correct"].dtype == bool and tr["pred"].dtype == np.int32
    for key in ("p_true", "loss", "el2n"):
        assert tr[key].dtype == np.float32 and tr[key].shape == (n, t)
        assert tr[f"heldout_{key}"].shape == (len(tr["heldout_label"]), t)
    assert tr["sample_id"].dtype == np.int64 and tr["label"].dtype == np.int64
    assert (tr["correct"] == (tr["pred"] == tr["label"][:, None])).all()
    assert (tr["heldout_correct"] == (tr["heldout_pred"] == tr["heldout_label"][:, None])).all()
    np.testing.assert_allclose(tr["loss"], -np.log(tr["p_true"]), rtol=1e-4, atol=1e-5)
    assert tr["class_centroid_cosine"].shape == (10, 10)
    np.testing.assert_allclose(np.diag(tr["class_centroid_cosine"]), 1.0, atol=1e-5)
    # p_true is the softmax of the final model on the eval transform
    model = trainer.model.seed_model(0).eval()
    x = trainer.transform.eval(trainer.data.train_images[:20])
    with torch.no_grad():
        prob = model(x).softmax(1)
    expect = prob[torch.arange(20), trainer.data.train_labels[:20]].numpy()
    np.testing.assert_allclose(tr["p_true"][:20, -1], expect, rtol=1e-5, atol=1e-6)
    m = result.metrics
    assert m["phase"].tolist() == ["warmup", "finetune", "finetune", "finetune"]
    np.testing.assert_allclose(m["train_acc"], tr["correct"].mean(0), rtol=1e-6)


def test_warmup_freezes_backbone_and_batchnorm(digits_small):
    trainer = tiny_trainer(digits_small, heldout="train")
    model = trainer.model.seed_model(0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer.start_phase("warmup")
    trainer._train_epoch(1, 1)
    head = {f"{n}" for n, _ in model.named_parameters() if n.startswith("fc.")}
    for key, value in model.state_dict().items():
        if key in head:
            assert not torch.equal(value, before[key]), key
        else:
            assert torch.equal(value, before[key]), f"{key} changed during warmup"


def test_same_seed_gives_identical_traces_file(digits_small, tmp_path):
    for name in ("a", "b"):
        _, result = run_tiny(digits_small, seed=1)
        io.save_npz(tmp_path / f"{name}.npz", result.traces)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    _, other = run_tiny(digits_small, seed=2)
    assert not np.array_equal(other.traces["p_true"], np.load(tmp_path / "a.npz")["p_true"])


def test_nan_loss_names_the_epoch(digits_small):
    with pytest.raises(TrainingError, match="epoch 2"):
        run_tiny(digits_small, cfg=tiny_cfg(lr=1e30))


def _script(root, out, config, seed=0):
    return [
        sys.executable,
        str(REPO / "scripts/finetune.py"),
        "--data",
        str(root),
        "--config",
        str(config),
        "--arch",
        "cnn",
        "--seed",
        str(seed),
        "--out",
        str(out),
        "--checkpoint",
        str(out / "ckpt.pt"),
    ]


@pytest.fixture(scope="module")
def script_config(tmp_path_factory):
    from retention.config import load_config

    config = load_config(REPO / "config.yaml", REPO / "config/demo.yaml")
    config["archs"]["cnn"]["input_size"] = 12
    config["train"].update(warmup_epochs=1, epochs=5, device="cpu", checkpoint_interval_s=0)
    path = tmp_path_factory.mktemp("cfg") / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_resume_after_kill_gives_identical_traces(digits_small, script_config, tmp_path):
    ref, resumed = tmp_path / "ref", tmp_path / "resumed"
    subprocess.run(_script(digits_small, ref, script_config), check=True, capture_output=True)
    assert not (ref / "ckpt.pt").exists(), "checkpoint left behind after success"
    proc = subprocess.Popen(_script(digits_small, resumed, script_config), stderr=subprocess.DEVNULL)
    ckpt = resumed / "ckpt.pt"
    deadline = time.time() + 120
    while time.time() < deadline:
        if ckpt.exists() and torch.load(ckpt, weights_only=False)["done"] >= 2:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ckpt.exists() and not (resumed / "traces.npz").exists()
    done = torch.load(ckpt, weights_only=False)["done"]
    assert 2 <= done < 6
    log = subprocess.run(
        _script(digits_small, resumed, script_config), check=True, capture_output=True, text=True
    )
    assert f"after epoch {done}" in log.stderr
    assert (ref / "traces.npz").read_bytes() == (resumed / "traces.npz").read_bytes()


def test_nan_run_leaves_no_traces(digits_small, script_config, tmp_path):
    config = yaml.safe_load(script_config.read_text())
    config["archs"]["cnn"]["lr"] = 1e30
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    proc = subprocess.run(_script(digits_small, tmp_path / "out", bad), capture_output=True, text=True)
    assert proc.returncode == 1
    assert "epoch" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "traces.npz").exists()


def test_time_index():
    assert train.time_index(3, 2).tolist() == [-2, -1, 0, 1, 2]
    assert train.time_index(0, 2).tolist() == [0, 1, 2]


def test_compiled_model_gives_the_eager_traces(digits_small, tmp_path):
    """train.compile (torch.compile with inductor, here on the CPU) changes speed, not results."""
    torch._dynamo.reset()
    cfg = tiny_cfg(epochs=1, augment={"enabled": False})
    _, eager = run_tiny(digits_small, cfg=cfg)
    compiled_cfg = tiny_cfg(epochs=1, augment={"enabled": False}, compile=True, cache_dir=str(tmp_path))
    _, compiled = run_tiny(digits_small, cfg=compiled_cfg)
    for key in ("pred", "heldout_pred", "correct", "heldout_correct"):
        np.testing.assert_array_equal(compiled.traces[key], eager.traces[key])
    for key in ("p_true", "loss", "heldout_p_true", "heldout_loss"):
        np.testing.assert_allclose(compiled.traces[key], eager.traces[key], rtol=1e-3, atol=2e-4)


def test_unknown_compile_mode_names_the_key(tmp_path):
    with pytest.raises(
        ConfigError, match="'train.compile_mode': 'fastest' is not one of default, reduce-overhead"
    ):
        tiny_cfg(compile=True, compile_mode="fastest", cache_dir=str(tmp_path))


@pytest.mark.parametrize("interval, saved", [(0, [1, 2, 3]), (3600, [])])
def test_checkpoint_interval(digits_small, tmp_path, monkeypatch, interval, saved):
    """Checkpoints after every epoch but the last (interval 0), none within the interval."""
    calls = []
    monkeypatch.setattr(checkpoint, "save", lambda path, state: calls.append(state["done"]))
    run_tiny(digits_small, cfg=tiny_cfg(checkpoint_interval_s=interval), checkpoint=tmp_path / "c.pt")
    assert calls == saved


def test_compiled_forward_runs_only_full_batches_compiled():
    """train.compile: full train and eval batches run compiled, smaller last batches eagerly."""
    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen.append((x.shape[0], torch.compiler.is_compiling()))
            return x * 2

    cfg = tiny_cfg(batch_size=4, eval_batch_size=8, compile=True, compile_mode="default")
    forward = compiled_forward(Probe(), cfg)
    for n in (4, 3, 8, 5, 4):
        torch.testing.assert_close(forward(torch.ones(n, 2)), torch.full((n, 2), 2.0))
    assert seen == [(4, True), (3, False), (8, True), (5, False), (4, True)]


# ------------------------------------------------------------------ a checkpoint belongs to its config

JOB_ARCH = {"model": "test_resnet", "weights": "none", "lr": 2e-3, "input_size": 12, "label": "a CNN"}
JOB_TRAIN = {
    "warmup_epochs": 1,
    "epochs": 3,
    "batch_size": 32,
    "eval_batch_size": 64,
    "head_lr": 2e-3,
    "augment": {"scale": [0.5, 1.0], "flip": 0.0},
    "channels_last": False,
    "checkpoint_interval_s": 0,
}


def _job(root, arch, train_over, checkpoint=None, seeds=(0,)):
    cfg = train_config({**JOB_TRAIN, **train_over}, arch)
    trainer = finetune.job_trainer(
        root / "manifest.csv", root / "images.npy", arch, cfg, list(seeds), checkpoint=checkpoint
    )
    trainer.progress = False
    return trainer


def _change_images(root):
    images = np.load(root / "images.npy")
    images[0, 0, 0, 0] ^= 1
    io.save_npy(root / "images.npy", images)


@pytest.mark.parametrize(
    "arch_over, train_over, change_data, key",
    [
        ({"lr": 4e-3}, {}, False, "arch.lr was 0.002, now 0.004"),
        ({}, {"epochs": 4}, False, "train.epochs was 3, now 4"),
        ({}, {"batch_size": 16}, False, "train.batch_size was 32, now 16"),
        (
            {},
            {"augment": {"scale": [0.3, 1.0], "flip": 0.0}},
            False,
            "train.augment.scale was [0.5, 1.0], now [0.3, 1.0]",
        ),
        ({}, {}, True, "data.sha256 was"),
    ],
    ids=["lr", "epochs", "batch_size", "augment", "images"],
)
def test_checkpoint_of_another_config_is_discarded(
    digits_small, tmp_path, caplog, arch_over, train_over, change_data, key
):
    """A run killed after its checkpoint, rerun under a changed config, starts fresh and says why."""
    root = tmp_path / "data"
    root.mkdir()
    for name in ("manifest.csv", "images.npy"):
        (root / name).write_bytes((digits_small / name).read_bytes())
    ckpt = tmp_path / "ckpt.pt"
    _job(root, JOB_ARCH, {}, ckpt).run_all()  # leaves the checkpoint of epoch 3 of 4, as a kill would
    assert torch.load(ckpt, weights_only=False)["done"] == 3
    if change_data:
        _change_images(root)
    arch = {**JOB_ARCH, **arch_over}
    with caplog.at_level("INFO", logger="retention.training"):
        resumed = _job(root, arch, train_over, ckpt).run_all()[0]
    discards = [r.getMessage() for r in caplog.records if "discarding checkpoint" in r.getMessage()]
    assert len(discards) == 1 and key in discards[0], discards
    assert not any("resumed from" in r.getMessage() for r in caplog.records)
    fresh = _job(root, arch, train_over).run_all()[0]
    for name, value in fresh.traces.items():
        np.testing.assert_array_equal(resumed.traces[name], value, err_msg=name)


def test_checkpoint_of_the_same_config_resumes(digits_small, tmp_path, caplog):
    ckpt = tmp_path / "ckpt.pt"
    _job(digits_small, JOB_ARCH, {}, ckpt).run_all()
    # a display-only key (the figure label) and a run-only one do not discard it
    with caplog.at_level("INFO", logger="retention.training"):
        resumed = _job(digits_small, {**JOB_ARCH, "label": "renamed"}, {"threads": 1}, ckpt).run_all()[0]
    assert any("resumed from" in r.getMessage() and "after epoch 3" in r.getMessage() for r in caplog.records)
    fresh = _job(digits_small, JOB_ARCH, {}).run_all()[0]
    for name, value in fresh.traces.items():
        np.testing.assert_array_equal(resumed.traces[name], value, err_msg=name)


def test_unreadable_checkpoint_is_discarded(digits_small, tmp_path, caplog):
    ckpt = tmp_path / "ckpt.pt"
    ckpt.write_bytes(b"not a checkpoint")
    with caplog.at_level("INFO", logger="retention.training"):
        _job(digits_small, JOB_ARCH, {"epochs": 1}, ckpt).run_all()
    assert any(
        "discarding checkpoint" in r.getMessage() and "cannot be read" in r.getMessage()
        for r in caplog.records
    )


# ------------------------------------------------------------------ metrics: distinct samples, job time


def test_n_distinct_trained_counts_fine_tuning_samples(digits_small):
    _, full = run_tiny(digits_small)
    n = len(full.traces["label"])
    assert full.metrics["n_distinct_trained"].tolist() == [0, n, n, n]  # warmup, then every sample
    from retention.training.sampler import BudgetSampler

    budget = BudgetSampler(n=n, fraction=0.25, kind="random", seed=0)
    (result,) = tiny_trainer(digits_small, cfg=tiny_cfg(epochs=3), samplers=[budget]).run_all()
    replay, seen, expected = BudgetSampler(n=n, fraction=0.25, kind="random", seed=0), set(), []
    for k in range(1, 4):  # the sampler's picks, replayed
        seen |= set(replay.epoch_indices(k)[: -1 if replay.budget % 32 == 1 else None].tolist())
        expected.append(len(seen))
    assert result.metrics["n_distinct_trained"].tolist() == [0, *expected]
    assert expected[0] < expected[-1] < n


def test_job_writes_outputs_and_its_time_breakdown(digits_small, tmp_path, caplog):
    cfg = train_config({**JOB_TRAIN, "epochs": 1}, JOB_ARCH)
    outputs = [(tmp_path / f"s{s}" / "traces.npz", tmp_path / f"s{s}" / "metrics.csv") for s in (0, 1)]
    records = [tmp_path / f"s{s}" / "run.json" for s in (0, 1)]
    with caplog.at_level("INFO", logger="retention.training.finetune"):
        finetune.finetune_job(
            digits_small / "manifest.csv",
            digits_small / "images.npy",
            JOB_ARCH,
            cfg,
            [0, 1],
            None,
            outputs,
            tmp_path / "ckpt.pt",
            records=records,
            names={"dataset": "digits", "arch": "cnn"},
        )
    parts = [
        f"job_{p}_s" for p in ("start", "imports", "data", "model", "first_step", "epochs", "write", "other")
    ]
    for traces, metrics in outputs:
        table = pd.read_csv(metrics)
        assert set(parts) | {"job_total_s", "job_seeds"} <= set(table.columns)
        row = table.iloc[0]
        assert row["job_seeds"] == 2 and (row[parts] >= 0).all()
        assert row[parts].sum() == pytest.approx(row["job_total_s"], abs=0.05)
        assert row["job_epochs_s"] + row["job_first_step_s"] == pytest.approx(
            table["seconds"].sum(), rel=0.01
        )
        assert np.load(traces)["correct"].shape[1] == 2
    assert not (tmp_path / "ckpt.pt").exists()
    assert any(r.getMessage().startswith("job time") for r in caplog.records)
    # each seed's run.json: the run, the settings it trained with, the seeds trained with it
    for seed, path in zip((0, 1), records):
        record = json.loads(path.read_text())
        run = (record["stage"], record["dataset"], record["arch"], record["seed"])
        assert run == ("finetune", "digits", "cnn", seed)
        assert record["sampler"] is None and record["config"]["sampler"] is None
        assert record["config"]["train"] == json.loads(json.dumps(dataclasses.asdict(cfg)))
        assert record["config"]["train"]["epochs"] == 1 and record["config"]["job_seeds"] == [0, 1]
        assert record["config"]["arch"] == JOB_ARCH and record["config"]["inputs"]["weights"] is None
        assert record["device"]["type"] == "cpu" and record["versions"]["torch"] == torch.__version__
        total = pd.read_csv(outputs[seed][1])["job_total_s"].iloc[0]
        assert total <= record["duration_s"] < total + 5  # from the process start to after the last write
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_near_chance_run_is_warned_about(caplog):
    n = 100
    correct = np.zeros((n, 3), dtype=bool)
    correct[:12, 1] = True  # 12% at t = 0 with 10 balanced classes: within 5 points of chance
    correct[:90, 2] = True
    traces = {
        "t": np.array([-1, 0, 1]),
        "class_names": np.array([str(k) for k in range(10)]),
        "heldout_label": np.arange(n) % 10,
        "heldout_correct": correct,
    }
    with caplog.at_level("WARNING", logger="retention.training.finetune"):
        assert finetune.warn_near_chance(traces, "results/runs/digits/cnn/seed0")
        correct[:20, 1] = True
        assert not finetune.warn_near_chance(traces, "results/runs/digits/cnn/seed1")
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert message.startswith("run results/runs/digits/cnn/seed0: held-out accuracy 12.0% at t = 0")
    assert "chance (10.0%)" in message


# ------------------------------------------------------------------ several seeds in one process


def test_seed_stack_equals_separate_runs(digits_small):
    """3 seeds of the demo's small ViT trained together equal 3 runs of their own."""
    arch = {
        "model": "test_vit.r160_in1k",
        "weights": "none",
        "lr": 3e-3,
        "input_size": 12,
        "model_kwargs": {"img_size": 12, "patch_size": 6},
    }
    over = {"augment": {"scale": [0.5, 1.0], "flip": 0.5}}
    stacked = _job(digits_small, arch, over, seeds=(0, 1, 2)).run_all()
    for seed, together in zip((0, 1, 2), stacked):
        alone = _job(digits_small, arch, over, seeds=(seed,)).run_all()[0]
        for key in ("correct", "pred", "heldout_correct", "heldout_pred", "sample_id", "t"):
            np.testing.assert_array_equal(together.traces[key], alone.traces[key], err_msg=key)
        for key in ("p_true", "el2n", "heldout_p_true", "heldout_el2n", "class_centroid_cosine"):
            np.testing.assert_allclose(
                together.traces[key], alone.traces[key], rtol=0, atol=1e-4, err_msg=key
            )
        for key in ("loss", "heldout_loss"):  # -log p: within 1e-4 of each other relative to their size
            np.testing.assert_allclose(
                together.traces[key], alone.traces[key], rtol=1e-4, atol=1e-4, err_msg=key
            )
        np.testing.assert_allclose(together.metrics["train_loss"], alone.metrics["train_loss"], rtol=1e-4)
    # the seeds differ from each other (each its own init, data order and augmentation)
    assert not np.array_equal(stacked[0].traces["p_true"], stacked[1].traces["p_true"])


def test_seed_stack_resumes_from_its_checkpoint(digits_small, tmp_path):
    arch = {
        "model": "test_vit.r160_in1k",
        "weights": "none",
        "lr": 3e-3,
        "input_size": 12,
        "model_kwargs": {"img_size": 12, "patch_size": 6},
    }
    ckpt = tmp_path / "group.pt"
    reference = _job(digits_small, arch, {}, seeds=(0, 1)).run_all()
    _job(digits_small, arch, {}, ckpt, seeds=(0, 1)).run_all()  # leaves the checkpoint of epoch 3
    resumed = _job(digits_small, arch, {}, ckpt, seeds=(0, 1)).run_all()
    for a, b in zip(reference, resumed):
        for name, value in a.traces.items():
            np.testing.assert_array_equal(b.traces[name], value, err_msg=name)
    # another seed set does not resume it
    assert torch.load(ckpt, weights_only=False)["fingerprint"]["seeds"] == [0, 1]


@pytest.mark.parametrize("model", ["test_vit", "test_resnet"])
def test_seed_stack_step_computes_each_seeds_own_gradients(digits_small, model):
    """One fine-tuning step of a 2-seed stack gives each seed the gradients (and BatchNorm
    statistics) of that seed's own Trainer, to rounding error. (The weights after the step
    may differ more: AdamW's first step is about lr * sign(gradient), which rounding can
    flip where a gradient is about 0; that is how longer runs drift, docs/performance.md.)"""
    arch = {"model": model, "weights": "none", "lr": 3e-3, "input_size": 12}
    if model == "test_vit":
        arch["model_kwargs"] = {"img_size": 12, "patch_size": 6}
    over = {"augment": {"scale": [0.5, 1.0], "flip": 0.5}}
    stack = _job(digits_small, arch, over, seeds=(0, 1))
    stack.start_phase("finetune")
    idx = [torch.arange(0, 32), torch.arange(40, 72)]
    assert stack.train_batch(idx).shape == (2,)
    for i, seed in enumerate((0, 1)):
        alone = _job(digits_small, arch, over, seeds=(seed,))
        alone.start_phase("finetune")
        assert alone.train_batch([idx[i]]).shape == (1,)
        model = alone.model.seed_model(0)
        for name, p in model.named_parameters():
            grad = stack.model.params[name].grad[i]
            assert (grad - p.grad).abs().max() <= 1e-5 * p.grad.abs().max(), name
        for name, b in model.named_buffers():
            if b.is_floating_point():  # BatchNorm running statistics
                torch.testing.assert_close(stack.model.buffers[name][i], b, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------- the training core: one trainer, two model kinds


def _keep_checkpoints(monkeypatch) -> dict:
    """Every checkpoint the runs write, by its number of epochs done, as bytes."""
    saved, save = {}, checkpoint.save

    def keep(path, state):
        save(path, state)
        saved[state["done"]] = path.read_bytes()

    monkeypatch.setattr(checkpoint, "save", keep)
    return saved


@pytest.mark.parametrize(
    "model, seeds",
    [("test_resnet", (0,)), ("test_vit.r160_in1k", (0, 1))],
    ids=["one seed", "two stacked seeds"],
)
def test_resume_after_the_first_epoch_ends_as_the_uninterrupted_run(
    digits_small, tmp_path, monkeypatch, caplog, model, seeds
):
    """A run resumed from its checkpoint after the warmup epoch (as after a kill there: the
    fine-tuning phase, its optimizer and schedule start after the resume) ends with every
    array and metric of the uninterrupted run, bit for bit, for one model and for a stack."""
    arch = {"model": model, "weights": "none", "lr": 3e-3, "input_size": 12}
    if model.startswith("test_vit"):
        arch["model_kwargs"] = {"img_size": 12, "patch_size": 6}
    over = {"augment": {"scale": [0.5, 1.0], "flip": 0.5}}
    ckpt = tmp_path / "ckpt.pt"
    saved = _keep_checkpoints(monkeypatch)
    whole = _job(digits_small, arch, over, ckpt, seeds=seeds).run_all()
    assert sorted(saved) == [1, 2, 3]
    ckpt.write_bytes(saved[1])
    with caplog.at_level("INFO", logger="retention.training"):
        resumed = _job(digits_small, arch, over, ckpt, seeds=seeds).run_all()
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("resumed from")] == [
        f"resumed from {ckpt} after epoch 1"
    ]
    timing = ["seconds", "images_per_s"]
    for a, b in zip(whole, resumed):
        for name, value in a.traces.items():
            np.testing.assert_array_equal(b.traces[name], value, err_msg=name)
        pd.testing.assert_frame_equal(b.metrics.drop(columns=timing), a.metrics.drop(columns=timing))


def test_checkpoint_of_an_older_format_is_discarded(digits_small, tmp_path, caplog):
    """A checkpoint laid out by another version of the trainer is not misread: its record
    lacks the format (or has another), so it is discarded with one line."""
    ckpt = tmp_path / "ckpt.pt"
    _job(digits_small, JOB_ARCH, {}, ckpt).run_all()
    state = torch.load(ckpt, weights_only=False)
    del state["fingerprint"]["checkpoint.format"]
    torch.save(state, ckpt)
    with caplog.at_level("INFO", logger="retention.training"):
        _job(digits_small, JOB_ARCH, {}, ckpt).run_all()
    discards = [r.getMessage() for r in caplog.records if "discarding checkpoint" in r.getMessage()]
    assert len(discards) == 1 and "checkpoint.format (not recorded in the checkpoint)" in discards[0]
    assert not any(r.getMessage().startswith("resumed from") for r in caplog.records)


@pytest.mark.parametrize("model", ["test_vit", "test_resnet"])
@pytest.mark.parametrize("phase", ["warmup", "finetune"])
def test_one_seed_and_a_stack_train_the_same_parameters_in_the_same_groups(digits_small, model, phase):
    """The AdamW groups of a phase (weight decay on weights, none on biases and norms)
    hold the same parameters, in the same order, for one model and for a stack."""
    arch = {"model": model, "weights": "none", "lr": 3e-3, "input_size": 12}
    if model == "test_vit":
        arch["model_kwargs"] = {"img_size": 12, "patch_size": 6}
    single, stack = (_job(digits_small, arch, {}, seeds=seeds).model for seeds in ((0,), (0, 1)))
    names = {id(p): name for name, p in single.module.named_parameters()}
    stacked_names = {id(p): name for name, p in stack.params.items()}
    single.start_phase(phase)
    stack.start_phase(phase)
    groups = [[names[id(p)] for p in g["params"]] for g in single.optimizer.param_groups]
    stacked = [[stacked_names[id(p)] for p in g["params"]] for g in stack.optimizer.param_groups]
    assert groups == stacked and all(groups)
    assert [g["weight_decay"] for g in single.optimizer.param_groups] == [JOB_DECAY, 0.0]
    trainable = {name for name, p in single.module.named_parameters() if p.requires_grad}
    assert trainable == (single.head if phase == "warmup" else set(names.values()))
    assert single.module.training == (phase == "finetune")


JOB_DECAY = train_config({}, {"lr": 1.0}).weight_decay


def test_a_trainer_needs_one_model_per_distinct_seed(digits_small):
    trainer = _job(digits_small, JOB_ARCH, {}, seeds=(0, 1))
    with pytest.raises(ConfigError, match=r"one model per seed and distinct seeds, got seeds \[0\] for 2"):
        train.Trainer(trainer.runs[:1], trainer.model, trainer.data, trainer.transform, trainer.cfg)
    with pytest.raises(ConfigError, match=r"distinct seeds, got seeds \[0, 0\]"):
        train.Trainer([trainer.runs[0]] * 2, trainer.model, trainer.data, trainer.transform, trainer.cfg)


def test_training_modules_list_every_module_a_run_executes():
    """The code digest of a checkpoint's record covers every module of retention.training
    that a fine-tuning or pretraining run imports (at the top or inside a function),
    besides the job's set-up."""
    import ast

    package = REPO / "retention" / "training"
    todo, seen = ["finetune", "pretrain"], set()
    while todo:
        name = todo.pop()
        seen.add(name)
        for node in ast.walk(ast.parse((package / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "retention.training":
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("retention.training."):
                found = [node.module.rsplit(".", 1)[1]]
            else:
                continue
            todo += [m for m in found if m not in seen and m not in todo]
    setup = {"finetune", "pretrain", "gpu", "timing", "compile_cache"}  # the device, the clock, cache folders
    assert {f"{m}.py" for m in seen - setup} == set(finetune.TRAINING_MODULES)
