import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml

from retention import data, io, models, train
from retention.augment import AugmentConfig
from retention.errors import TrainingError

from .conftest import REPO

TRACE_KEYS = {
    "sample_id", "label", "class_names", "t", "correct", "p_true", "loss", "el2n", "pred",
    "heldout_sample_id", "heldout_label", "heldout_correct", "heldout_p_true", "heldout_loss",
    "heldout_el2n", "heldout_pred", "class_centroid_cosine",
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


def tiny_cfg(**over):
    cfg = dict(lr=2e-3, warmup_epochs=1, epochs=3, batch_size=32, eval_batch_size=64, head_lr=2e-3,
               augment=AugmentConfig(scale=(0.5, 1.0), flip=0.0), channels_last=False)
    cfg.update(over)
    return train.TrainConfig(**cfg)


def run_tiny(root, seed=0, cfg=None, checkpoint=None):
    prepared = data.load_prepared(root / "manifest.csv", root / "images.npy")
    names = data.class_names(prepared.manifest)
    tr = train.split_data(prepared.manifest, prepared.images, "train")
    ho = train.split_data(prepared.manifest, prepared.images, "heldout")
    train.seed_everything(seed)
    model = models.create_model("test_resnet", len(names))
    trainer = train.Trainer(model, models.input_config(model, 12), tr, ho, names, cfg or tiny_cfg(), seed,
                            checkpoint=checkpoint, progress=False)
    return trainer, trainer.run()


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
    model = trainer.model.eval()
    x = trainer.transform.eval(trainer.train_images[:20])
    with torch.no_grad():
        prob = model(x).softmax(1)
    expect = prob[torch.arange(20), trainer.train_labels[:20]].numpy()
    np.testing.assert_allclose(tr["p_true"][:20, -1], expect, rtol=1e-5, atol=1e-6)
    m = result.metrics
    assert m["phase"].tolist() == ["warmup", "finetune", "finetune", "finetune"]
    np.testing.assert_allclose(m["train_acc"], tr["correct"].mean(0), rtol=1e-6)


def test_warmup_freezes_backbone_and_batchnorm(digits_small):
    prepared = data.load_prepared(digits_small / "manifest.csv", digits_small / "images.npy")
    names = data.class_names(prepared.manifest)
    tr = train.split_data(prepared.manifest, prepared.images, "train")
    train.seed_everything(0)
    model = models.create_model("test_resnet", len(names))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = train.Trainer(model, models.input_config(model, 12), tr, tr, names,
                            tiny_cfg(warmup_epochs=1, epochs=0 + 1), 0, progress=False)
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
    return [sys.executable, str(REPO / "scripts/finetune.py"), "--data", str(root), "--config", str(config),
            "--arch", "cnn", "--seed", str(seed), "--out", str(out), "--checkpoint", str(out / "ckpt.pt")]


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
    log = subprocess.run(_script(digits_small, resumed, script_config), check=True, capture_output=True, text=True)
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


def test_compiled_model_gives_the_eager_traces(digits_small):
    """train.compile (torch.compile with inductor, here on the CPU) changes speed, not results."""
    torch._dynamo.reset()
    cfg = tiny_cfg(epochs=1, augment=AugmentConfig(enabled=False))
    _, eager = run_tiny(digits_small, cfg=cfg)
    _, compiled = run_tiny(digits_small, cfg=tiny_cfg(epochs=1, augment=AugmentConfig(enabled=False), compile=True))
    for key in ("pred", "heldout_pred", "correct", "heldout_correct"):
        np.testing.assert_array_equal(compiled.traces[key], eager.traces[key])
    for key in ("p_true", "loss", "heldout_p_true", "heldout_loss"):
        np.testing.assert_allclose(compiled.traces[key], eager.traces[key], rtol=1e-3, atol=2e-4)


def test_unknown_compile_mode_names_the_key(digits_small):
    with pytest.raises(Exception, match="train.compile_mode.*fastest"):
        run_tiny(digits_small, cfg=tiny_cfg(compile=True, compile_mode="fastest"))


@pytest.mark.parametrize("interval, saved", [(0, [1, 2, 3]), (3600, [])])
def test_checkpoint_interval(digits_small, tmp_path, monkeypatch, interval, saved):
    """Checkpoints after every epoch but the last (interval 0), none within the interval."""
    calls = []
    monkeypatch.setattr(train.Trainer, "_save_checkpoint", lambda self, done: calls.append(done))
    run_tiny(digits_small, cfg=tiny_cfg(checkpoint_interval_s=interval), checkpoint=tmp_path / "c.pt")
    assert calls == saved


def test_compiled_forward_runs_only_full_batches_compiled():
    """train.compile: full train and eval batches run compiled, smaller last batches eagerly."""
    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen.append((x.shape[0], torch.compiler.is_compiling()))
            return x * 2

    cfg = train.TrainConfig(lr=1.0, batch_size=4, eval_batch_size=8, compile=True, compile_mode="default")
    forward = train.Trainer._compiled(Probe(), cfg)
    for n in (4, 3, 8, 5, 4):
        torch.testing.assert_close(forward(torch.ones(n, 2)), torch.full((n, 2), 2.0))
    assert seen == [(4, True), (3, False), (8, True), (5, False), (4, True)]
