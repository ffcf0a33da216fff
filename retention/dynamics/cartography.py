"""Dataset cartography's training dynamics (Swayamdipta et al. 2020): one folder per run of
``dynamics_epoch_<k>.jsonl`` files, k = 0, 1, ..., one JSON object per line and train
sample: ``guid`` (the sample's id), ``logits_epoch_<k>`` (or ``logits``: the model's
logits, one per class) and ``gold`` (the true class). docs/contracts.md "Cartography".

:func:`read_run` reads a folder as cartography writes it: ``p_true`` is the softmax of the
logits at ``gold``, ``correct`` whether their arg max is ``gold``, ``loss`` the
cross-entropy, ``el2n`` the L2 norm of softmax minus the one-hot label, ``pred`` the arg
max; epoch k is t = k - t0_epoch. :func:`write_run` writes one run's traces in this
format (epochs t >= 0 only, as dynamics_epoch_<t>.jsonl), for cartography's own tools.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from retention.dynamics.longtable import MIN_EPOCHS
from retention.dynamics.sources import dynamics_files
from retention.errors import DataError

LOGITS = "logits"


def _record(line: str, path: Path, lineno: int, epoch: int) -> tuple:
    """(guid, gold, logits) of one line; DataError naming the file and line."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}, line {lineno}: not JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(rec, dict):
        raise DataError(f"{path}, line {lineno}: expected a JSON object with guid, logits and gold")
    for key in ("guid", "gold"):
        if key not in rec:
            raise DataError(f"{path}, line {lineno}: no {key!r}")
    logits = rec.get(f"logits_epoch_{epoch}", rec.get(LOGITS))
    if logits is None:
        raise DataError(f"{path}, line {lineno}: no 'logits_epoch_{epoch}' (or 'logits')")
    if not isinstance(logits, list) or not all(isinstance(v, (int, float)) for v in logits):
        raise DataError(f"{path}, line {lineno}: the logits are not a list of numbers")
    gold = rec["gold"]
    if isinstance(gold, bool) or not isinstance(gold, int) or gold < 0:
        raise DataError(f"{path}, line {lineno}: gold is {gold!r}, not a class index (an integer >= 0)")
    guid = rec["guid"]
    if not isinstance(guid, (int, str)) or isinstance(guid, bool):
        raise DataError(f"{path}, line {lineno}: guid is {guid!r}, not an integer or a string")
    return guid, gold, logits


def _read_epoch(path: Path, epoch: int, n_classes: int | None) -> tuple[list, np.ndarray, np.ndarray]:
    guids, golds, logits = [], [], []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            guid, gold, values = _record(line, path, lineno, epoch)
            if n_classes is None:
                n_classes = len(values)
                if n_classes < 2:
                    raise DataError(
                        f"{path}, line {lineno}: {n_classes} logit(s); a classifier has at least 2"
                    )
            if len(values) != n_classes:
                raise DataError(
                    f"{path}, line {lineno}: guid {guid!r} has {len(values)} logits, expected {n_classes} "
                    "(one per class, as on the first line of the run's first epoch)"
                )
            if gold >= n_classes:
                raise DataError(f"{path}, line {lineno}: gold {gold} is not a class of {n_classes} logits")
            guids.append(guid)
            golds.append(gold)
            logits.append(values)
    if not guids:
        raise DataError(f"{path}: no records")
    return guids, np.asarray(golds, np.int64), np.asarray(logits, np.float64)


def measures(logits: np.ndarray, gold: np.ndarray) -> dict[str, np.ndarray]:
    """p_true, loss (cross-entropy, nats), el2n, pred and correct of (N, C) logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    log_p = z[np.arange(len(gold)), gold] - log_norm
    probs = np.exp(z - log_norm[:, None])
    onehot = np.zeros_like(probs)
    onehot[np.arange(len(gold)), gold] = 1.0
    pred = logits.argmax(axis=1)
    return {
        "p_true": np.exp(log_p),
        "loss": -log_p,
        "el2n": np.linalg.norm(probs - onehot, axis=1),
        "pred": pred,
        "correct": pred == gold,
    }


def read_run(folder, name: str, t0_epoch: int | None = None) -> dict:
    """One run's folder as per-sample arrays: ``guid`` (N, in the first epoch's order),
    ``gold`` (N), ``t`` (T), and ``correct``, ``p_true``, ``loss``, ``el2n``, ``pred``
    (N, T). DataError naming the file and line for a line that is not JSON, logits of
    another length, a sample missing from an epoch, a repeated guid or a gap in the epochs."""
    folder = Path(folder)
    files = dynamics_files(folder)
    epochs = [int(f.name.split("_")[-1].split(".")[0]) for f in files]
    if epochs != list(range(len(epochs))):
        gap = min(set(range(max(epochs) + 1)) - set(epochs))
        raise DataError(
            f"{folder}: dynamics_epoch_{gap}.jsonl is missing (run {name} has epochs {epochs}; "
            "cartography writes 0, 1, 2, ...)"
        )
    t0 = 0 if t0_epoch is None else int(t0_epoch)
    if len(epochs) - t0 < MIN_EPOCHS:
        raise DataError(
            f"{folder}: run {name} has {len(epochs)} epoch file(s), {max(len(epochs) - t0, 0)} at "
            f"t >= 0 (t0_epoch {t0}); the decay fits need at least {MIN_EPOCHS}"
        )
    first, gold, n_classes = None, None, None
    cols: dict[str, list] = {k: [] for k in ("p_true", "loss", "el2n", "pred", "correct")}
    for epoch, path in zip(epochs, files):
        guids, golds, logits = _read_epoch(path, epoch, n_classes)
        n_classes = logits.shape[1]
        if first is None:
            first, gold = guids, golds
            index = _index(guids, path)
        order = _align(guids, index, path, files[0])
        if not np.array_equal(golds[order], gold):
            i = int(np.flatnonzero(golds[order] != gold)[0])
            raise DataError(
                f"{path}: guid {first[i]!r} has gold {golds[order][i]}, but {gold[i]} in {files[0].name}"
            )
        for key, values in measures(logits[order], gold).items():
            cols[key].append(values)
    arrays = {key: np.stack(v, axis=1) for key, v in cols.items()}
    return {
        "guid": first,
        "gold": gold,
        "n_classes": n_classes,
        "t": np.arange(len(epochs), dtype=np.int64) - t0,
        "correct": arrays["correct"].astype(bool),
        "p_true": arrays["p_true"].astype(np.float32),
        "loss": arrays["loss"].astype(np.float32),
        "el2n": arrays["el2n"].astype(np.float32),
        "pred": arrays["pred"].astype(np.int32),
    }


def _index(guids: list, path: Path) -> dict:
    index: dict = {}
    for i, g in enumerate(guids):
        if index.setdefault(g, i) != i:
            raise DataError(f"{path}: guid {g!r} appears twice (one line per sample and epoch)")
    return index


def _align(guids: list, index: dict, path: Path, first: Path) -> np.ndarray:
    """Positions of the first epoch's samples among ``guids``."""
    here = _index(guids, path)
    missing = [g for g in index if g not in here]
    if missing:
        raise DataError(
            f"{path}: no line for guid {missing[0]!r}, which {first.name} has "
            f"({len(missing)} sample(s) missing; every sample needs a line in every epoch)"
        )
    extra = [g for g in here if g not in index]
    if extra:
        raise DataError(
            f"{path}: guid {extra[0]!r} is not in {first.name} (every epoch needs the same samples)"
        )
    return np.fromiter((here[g] for g in index), np.int64, len(index))


def sample_ids(guids_of_runs: list[list]) -> tuple[dict, bool]:
    """guid -> sample_id for every guid of the runs: integers (and strings of digits) stay
    themselves; other strings are numbered in sorted order. Also whether they were numbered."""
    every = {g for guids in guids_of_runs for g in guids}
    if all(isinstance(g, int) or (isinstance(g, str) and g.isdigit()) for g in every):
        return {g: int(g) for g in every}, False
    return {g: i for i, g in enumerate(sorted(every, key=str))}, True


# ------------------------------------------------------------------ the export direction


def logits_from(p_true: np.ndarray, pred: np.ndarray, label: np.ndarray, n_classes: int) -> np.ndarray:
    """Log-probabilities (N, C) whose softmax is ``p_true`` at ``label`` and whose arg max
    is ``pred``: traces.npz records no full logits, so the other classes' shares are
    rebuilt (evenly; the predicted class of a wrong prediction takes more than the label).
    """
    n = p_true.shape[0]
    p = np.clip(p_true.astype(np.float64), 1e-12, 1.0)
    rest = np.clip(1.0 - p, 0.0, 1.0)
    probs = np.empty((n, n_classes))
    wrong = pred != label
    if n_classes == 2:
        probs[:] = rest[:, None]
    else:
        even = rest / (n_classes - 1)
        # a wrong prediction's class gets m > p and the others r < m: r = (rest - p) / (C - 1)
        r = np.where(wrong, np.maximum(rest - p, 0.0) / (n_classes - 1), even)
        probs[:] = r[:, None]
        m = rest - (n_classes - 2) * r
        probs[np.arange(n)[wrong], pred[wrong]] = m[wrong]
    probs[np.arange(n), label] = p
    return np.log(np.maximum(probs, 1e-12))


def write_run(arrays, folder) -> list[Path]:
    """Write one run's train samples as cartography's ``dynamics_epoch_<t>.jsonl`` files,
    t = 0..E (the fine-tuning epochs), into ``folder`` (which must exist); the files."""
    t = np.asarray(arrays["t"])
    names = np.asarray(arrays["class_names"])
    pred = np.asarray(arrays["pred"])
    p_true = np.asarray(arrays["p_true"], np.float64)
    if (pred < 0).any() or np.isnan(p_true).any():
        raise DataError("the run has no predictions or no p_true recorded; cartography's format needs logits")
    ids = np.asarray(arrays["sample_id"], np.int64)
    label = np.asarray(arrays["label"], np.int64)
    written = []
    for col in np.flatnonzero(t >= 0):
        epoch = int(t[col])
        logits = logits_from(p_true[:, col], pred[:, col], label, len(names))
        key = f"logits_epoch_{epoch}"
        path = Path(folder) / f"dynamics_epoch_{epoch}.jsonl"
        lines = [
            json.dumps({"guid": int(g), key: [float(v) for v in row], "gold": int(y)})
            for g, row, y in zip(ids, logits, label)
        ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(path)
    return written


def imported(folders: dict, t0_epoch=None, class_names=None):
    """The runs of cartography folders (``{(arch, seed): folder}``) as
    :class:`retention.dynamics.longtable.Imported`: train samples only, every run aligned on the
    same guids; class names from ``class_names`` (else the class index as text)."""
    from retention.dynamics.longtable import Imported

    read = {key: read_run(folder, f"{key[0]}/seed{key[1]}", t0_epoch) for key, folder in folders.items()}
    ids, numbered = sample_ids([r["guid"] for r in read.values()])
    n_classes = {r["n_classes"] for r in read.values()}
    if len(n_classes) > 1:
        raise DataError(
            f"the runs have logits of different lengths ({sorted(n_classes)}): "
            + ", ".join(f"{folders[k]}: {r['n_classes']}" for k, r in read.items())
        )
    c = n_classes.pop()
    if class_names is not None and len(class_names) != c:
        raise DataError(
            f"the setting class_names has {len(class_names)} names but the logits have {c} classes"
        )
    names = np.array([str(n) for n in class_names] if class_names is not None else [str(k) for k in range(c)])
    runs, first = {}, None
    for key, r in read.items():
        sid = np.array([ids[g] for g in r["guid"]], np.int64)
        if first is None:
            first = (key, dict(zip(sid.tolist(), r["gold"].tolist())))
        _check_same(first, key, sid, r["gold"], folders)
        t = r["t"]
        runs[key] = {
            "sample_id": sid,
            "label": r["gold"],
            "class_names": names,
            "t": t,
            **{k: r[k] for k in ("correct", "p_true", "loss", "el2n", "pred")},
            "heldout_sample_id": np.zeros(0, np.int64),
            "heldout_label": np.zeros(0, np.int64),
            "heldout_correct": np.zeros((0, t.size), bool),
            **{f"heldout_{k}": np.zeros((0, t.size), np.float32) for k in ("p_true", "loss", "el2n")},
            "heldout_pred": np.zeros((0, t.size), np.int32),
            "class_centroid_cosine": np.full((c, c), np.nan, np.float32),
        }
    guid_of = {v: k for k, v in ids.items()}
    every = np.array(sorted(first[1]), np.int64)
    samples = pd.DataFrame(
        {
            "sample_id": every,
            "label": np.array([first[1][i] for i in every], np.int64),
            "split": "train",
            "source": [str(guid_of[i]) if numbered else "" for i in every],
            "group": "",
        }
    )
    samples.insert(2, "class_name", names[samples["label"].to_numpy()])
    return Imported(runs, samples, ["held-out records", "class-centroid cosine"])


def _check_same(first, key, sid: np.ndarray, gold: np.ndarray, folders: dict) -> None:
    """Every run holds the first run's samples with the same labels."""
    (first_key, labels) = first
    here = dict(zip(sid.tolist(), gold.tolist()))
    if set(here) != set(labels):
        gone = sorted(set(labels) - set(here))
        new = sorted(set(here) - set(labels))
        other = f"run {first_key[0]}/seed{first_key[1]}"
        which = (
            f"lacks sample {gone[0]}, which {other} has"
            if gone
            else f"has sample {new[0]}, which {other} lacks"
        )
        raise DataError(
            f"{folders[key]}: run {key[0]}/seed{key[1]} {which} ({len(here)} and {len(labels)} samples); the "
            "statistics compare runs sample by sample, so every run needs the same samples"
        )
    bad = [i for i, y in here.items() if labels[i] != y]
    if bad:
        raise DataError(
            f"{folders[key]}: sample {bad[0]} has gold {here[bad[0]]} in run {key[0]}/seed{key[1]} "
            f"but {labels[bad[0]]} in run {first_key[0]}/seed{first_key[1]}"
        )
