"""The recorder for any PyTorch loop (retention.dynamics.recorder.TraceRecorder): the README's
example runs as it is on a plain PyTorch loop, its table imports as a valid run, and a
bad recording is refused before anything is written."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from retention.dynamics import importing as importer
from retention.dynamics.recorder import TraceRecorder
from retention.errors import DataError
from retention.fitting.traces import load_traces

from .conftest import REPO

torch = pytest.importorskip("torch")


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    block = re.search(
        r"<!-- recorder-example -->\n```python\n(.*?)```\n<!-- /recorder-example -->", text, re.S
    )
    assert block, "README.md lacks the recorder example between its markers"
    return block[1]


def test_the_readme_example_is_at_most_25_lines_runs_as_it_is_and_its_table_imports(tmp_path):
    code = readme_example()
    assert len(code.strip().splitlines()) <= 25
    script = tmp_path / "example.py"
    script.write_text(code)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = pd.read_parquet(tmp_path / "dynamics.parquet")
    assert len(table) == 600 * 8 and set(table["epoch"]) == set(range(8))
    assert table.groupby("epoch")["correct"].mean().iloc[-1] > 0.6  # the loop learned
    out = {"mlp/seed0": str(tmp_path / "runs/mlp/seed0/traces.npz")}
    importer.import_dataset(
        {"format": "table", "path": str(tmp_path / "dynamics.parquet")}, out, tmp_path / "manifest.csv"
    )
    traces = load_traces(out["mlp/seed0"])
    assert traces.correct.shape == (600, 8) and traces.t.tolist() == list(range(8))
    np.testing.assert_allclose(traces.loss, -np.log(traces.p_true), rtol=1e-4)


def test_probabilities_held_out_samples_and_warmup_on_a_plain_loop(tmp_path):
    torch.manual_seed(1)
    x, y = torch.randn(90, 5), torch.randint(0, 3, (90,))
    model = torch.nn.Linear(5, 3)
    path = tmp_path / "run.csv"
    with TraceRecorder(path, arch="lin", seed=4, t0_epoch=1, class_names=["a", "b", "c"]) as rec:
        for epoch in range(5):
            with torch.no_grad():
                probs = model(x).softmax(-1).to(torch.bfloat16)  # any precision, any device
                for part in torch.arange(60).split(25):  # batches
                    rec.record(epoch, part, y[part], probs=probs[part])
                rec.record(epoch, torch.arange(60, 90), y[60:], probs=probs[60:], split="heldout")
    imported = importer.read_source({"format": "table", "path": str(path)})
    arrays = imported.runs[("lin", 4)]
    assert arrays["t"].tolist() == [-1, 0, 1, 2, 3] and arrays["heldout_sample_id"].tolist() == list(
        range(60, 90)
    )
    assert arrays["class_names"].tolist() == ["a", "b", "c"]
    want = probs.float()[torch.arange(60), y[:60]].numpy()
    np.testing.assert_allclose(arrays["p_true"][:, 0], want, rtol=1e-6)


def test_a_bad_recording_is_refused_with_the_imports_message_and_nothing_is_written(tmp_path):
    path = tmp_path / "run.parquet"
    logits = torch.randn(4, 3)
    with pytest.raises(DataError, match=r"run cnn/seed0, train sample_id 2 at t = 1 appears twice"):
        with TraceRecorder(path, arch="cnn") as rec:
            for epoch in range(4):
                rec.record(epoch, [0, 1, 2, 3], [0, 1, 2, 0], logits=logits)
            rec.record(1, [2], [2], logits=logits[:1])  # the same epoch of a sample twice
    assert not path.exists()
    with pytest.raises(DataError, match=r"has 2 epoch\(s\) at t >= 0"):
        with TraceRecorder(path, arch="cnn") as rec:
            for epoch in range(2):
                rec.record(epoch, [0, 1], [0, 1], logits=logits[:2])
    with pytest.raises(RuntimeError):  # the loop's own error: no table
        with TraceRecorder(path, arch="cnn") as rec:
            rec.record(0, [0, 1], [0, 1], logits=logits[:2])
            raise RuntimeError("the loop failed")
    assert not path.exists()
    with pytest.raises(DataError, match="labels outside 0..2"):
        TraceRecorder(path).record(0, [0], [3], logits=logits[:1])
    with pytest.raises(DataError, match="give either logits or probs"):
        TraceRecorder(path).record(0, [0], [0])
