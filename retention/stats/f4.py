"""F4, class level: is class forgetting consistent, and does it track visual similarity?

A class's forgetting in a run is the mean rank score of its eligible samples. Its
consistency is the Spearman of the class vectors of two runs, averaged over seed pairs
(jackknife over seeds). Visual similarity (docs/method.md section 7): each class's largest
off-diagonal held-out confusion rate at the last epoch, and the cosine of its nearest
class centroid in the penultimate features at t = 0; class forgetting (mean over an
architecture's seeds) is correlated with each over classes (p by permutation below
``stats.spearman_permutation_below`` classes; unit: class).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from retention.chance import run_accuracy
from retention.errors import DataError
from retention.stats import inference as inf
from retention.stats.correlation import spearman
from retention.stats.estimate import Estimate
from retention.stats.f3 import rho_of
from retention.stats.pairs import pair_matrix, pair_means
from retention.stats.settings import StatsConfig, rng_for
from retention.stats.stack import RunStack, StatsInput, frame, masked_mean

MEASURES = {"max_confusion": "held-out confusion", "nearest_cosine": "centroid cosine"}
#: the note of a measure the runs' traces do not record (imported runs: docs/contracts.md)
NOT_RECORDED = {
    "max_confusion": "no held-out predictions in the runs' traces (not recorded)",
    "nearest_cosine": "no class-centroid cosine in the runs' traces (not recorded)",
}


@dataclass(frozen=True)
class RunClassInfo:
    """Class-level similarity of one run (from its traces.npz).

    confusion: (C, C) held-out confusion rates at the last epoch, row = true class, rows
    normalised (NaN for a class without held-out samples). centroid_cosine: (C, C)
    cosine similarity of the class centroids of penultimate features at t = 0.
    heldout_acc_t0 / heldout_acc_end: held-out accuracy at t = 0 and at the last epoch;
    chance: the larger of 1 / C and the held-out share of the largest class
    (``retention.chance``); heldout_rise / still_rising: the held-out accuracy's rise over
    the last epochs and whether it is above ``convergence.tolerance``; pretrain: the
    ``retention.chance.RunAccuracy`` of the arch's pretraining (``weights: pretrain``), or None.
    """

    class_names: tuple
    confusion: np.ndarray
    centroid_cosine: np.ndarray
    heldout_acc_t0: float = math.nan
    heldout_acc_end: float = math.nan
    chance: float = math.nan
    heldout_rise: float = math.nan
    still_rising: bool = False
    pretrain: object = None


def class_similarity(
    heldout_label, heldout_pred, centroid_cosine, class_names: Sequence[str]
) -> RunClassInfo:
    """Held-out confusion rates from labels and predictions (one epoch) and the centroid
    cosine matrix, as a :class:`RunClassInfo`."""
    names = tuple(str(c) for c in class_names)
    c = len(names)
    label = np.asarray(heldout_label, np.int64).ravel()
    pred = np.asarray(heldout_pred, np.int64).ravel()
    cos = np.asarray(centroid_cosine, float)
    if label.shape != pred.shape:
        raise DataError(f"heldout_label {label.shape} and heldout_pred {pred.shape} differ in length")
    for name, v in (("heldout_label", label), ("heldout_pred", pred)):
        if v.size and (v.min() < 0 or v.max() >= c):
            raise DataError(f"{name} has values outside 0..{c - 1} (there are {c} class_names)")
    if cos.shape != (c, c):
        raise DataError(f"class_centroid_cosine has shape {cos.shape}, expected ({c}, {c})")
    counts = np.bincount(label * c + pred, minlength=c * c).reshape(c, c).astype(float)
    totals = counts.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(totals > 0, counts / np.maximum(totals, 1), np.nan)
    return RunClassInfo(names, rates, cos)


def class_info_from_traces(arrays: Mapping[str, np.ndarray], run: str = "") -> RunClassInfo:
    """:func:`class_similarity` from the arrays of one ``traces.npz``: held-out
    predictions at the last epoch (largest ``t``)."""
    where = f" of run {run}" if run else ""
    keys = ("t", "class_names", "heldout_label", "heldout_pred", "heldout_correct", "class_centroid_cosine")
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise DataError(f"traces.npz{where} lacks key(s) {missing}; see docs/contracts.md 'traces.npz'")
    t = np.asarray(arrays["t"])
    pred = np.asarray(arrays["heldout_pred"])
    if pred.ndim != 2 or pred.shape[1] != t.size:
        raise DataError(f"traces.npz{where}: heldout_pred has shape {pred.shape}, expected (N, {t.size})")
    names = [str(c) for c in np.asarray(arrays["class_names"])]
    info = class_similarity(
        arrays["heldout_label"], pred[:, int(np.argmax(t))], arrays["class_centroid_cosine"], names
    )
    acc = run_accuracy(arrays)
    return dataclasses.replace(info, heldout_acc_t0=acc.t0, heldout_acc_end=acc.end, chance=acc.chance)


def off_diagonal_max(mat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Largest off-diagonal entry of each row and its column (-1 where none)."""
    m = np.array(mat, dtype=float)
    c = m.shape[0]
    if c < 2:
        return np.full(c, np.nan), np.full(c, -1)
    np.fill_diagonal(m, -np.inf)
    m[np.isnan(m)] = -np.inf
    arg = m.argmax(1)
    best = m[np.arange(c), arg]
    ok = np.isfinite(best)
    return np.where(ok, best, np.nan), np.where(ok, arg, -1)


def class_means(stack: RunStack, n_classes: int) -> np.ndarray:
    """Mean rank score per class per run (runs, classes) over eligible samples; NaN where
    a class has none."""
    lab = stack.label
    if lab.size and (lab.min() < 0 or lab.max() >= n_classes):
        raise DataError(f"fits labels range {lab.min()}..{lab.max()} but there are {n_classes} classes")

    def compute():
        out = np.full((len(stack.runs), n_classes), np.nan)
        for i in range(len(stack.runs)):
            el = stack.eligible[i]
            total = np.bincount(lab[el], weights=stack.score[i][el], minlength=n_classes)
            count = np.bincount(lab[el], minlength=n_classes)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[i] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        return out

    return stack.cached(("class_means", n_classes), compute)


def _class_pairs(data: StatsInput):
    means = class_means(data.stack, len(data.class_names))
    return data.stack.cached(
        ("class_pairs",), lambda: pair_matrix(data.stack, lambda i, j: rho_of(means[i], means[j]))
    )


def extreme_classes(pooled: np.ndarray, names: Sequence[str]) -> tuple[list[str], list[str]]:
    """Names of the most and least forgotten classes (up to 5 each, at most half)."""
    order = [
        k for k in np.argsort(-np.nan_to_num(pooled, nan=-np.inf), kind="stable") if np.isfinite(pooled[k])
    ]
    n = max(1, min(5, len(names) // 2))
    top = order[:n]
    bottom = [k for k in order[::-1][:n] if k not in top]
    return [names[k] for k in top], [names[k] for k in bottom]


def consistency(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """Mean Spearman of the class vectors of two seeds of each architecture (jackknife
    over seeds, t test against 0); the most and least forgotten classes by name."""
    stack, names = data.stack, list(data.class_names)
    pm = _class_pairs(data)
    means = class_means(stack, len(names))
    out = _samples_behind(stack, pair_means(stack, pm, "within"), len(names))
    for est in out:
        idx = stack.run_index(est.arch)
        top, bottom = extreme_classes(masked_mean(means[idx], np.ones_like(means[idx], bool)), names)
        est.extra |= {
            "most_forgotten": ", ".join(top),
            "least_forgotten": ", ".join(bottom),
        }
    return out


def cross(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """Mean Spearman of the class vectors of two architectures' seeds."""
    return _samples_behind(
        data.stack, pair_means(data.stack, _class_pairs(data), "cross"), len(data.class_names)
    )


def _samples_behind(stack, estimates: list[Estimate], n_classes: int) -> list[Estimate]:
    """A class-vector correlation's pairs count classes; its rows report the eligible
    samples behind the classes (n_samples) and the classes (n_classes)."""
    for est in estimates:
        runs = stack.run_index(est.arch) + (stack.run_index(est.arch_b) if est.arch_b else [])
        if runs:
            est.n_samples = int(stack.eligible[runs].any(0).sum())
        est.extra["n_classes"] = n_classes
    return estimates


def arch_similarity(data: StatsInput, arch: str) -> dict[str, np.ndarray]:
    """Per class, over an architecture's runs: mean forgetting, mean largest confusion
    (and with which class), mean cosine to the nearest centroid (and which)."""
    stack, names = data.stack, list(data.class_names)
    idx = stack.run_index(arch)
    means = class_means(stack, len(names))
    conf = np.stack([data.class_infos[i].confusion for i in idx])
    with np.errstate(invalid="ignore"):  # a class no run held out: NaN, without nanmean's warning
        conf = np.nansum(conf, axis=0) / np.isfinite(conf).sum(axis=0)
    cos = np.mean(np.stack([data.class_infos[i].centroid_cosine for i in idx]), axis=0)
    mc, cw = off_diagonal_max(conf)
    nc, nn = off_diagonal_max(cos)
    return {
        "forgetting": masked_mean(means[idx], np.ones_like(means[idx], bool)),
        "max_confusion": mc,
        "confused_with": cw,
        "nearest_cosine": nc,
        "nearest_class": nn,
    }


def similarity(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """Spearman over classes of class forgetting against each similarity measure, per
    architecture (bootstrap over classes; p by permutation below the threshold)."""
    stack = data.stack
    if data.class_infos is None or any(ci is None for ci in data.class_infos):
        return [Estimate(arch=a, note="class similarity needs every run's traces.npz") for a in stack.archs]
    out = []
    for arch in stack.archs:
        sim = arch_similarity(data, arch)
        for measure in MEASURES:
            rho, p, n = spearman(sim["forgetting"], sim[measure], cfg)
            est = Estimate(
                arch=arch,
                case=MEASURES[measure],
                value=rho,
                p_value=p,
                n_runs=len(stack.run_index(arch)),
                n_samples=int(stack.eligible[stack.run_index(arch)].any(0).sum()),
                test=f"Spearman over {n} classes"
                + (" (permutation p)" if n < cfg.spearman_permutation_below else ""),
                extra={"n_classes": n},
            )
            if not np.isfinite(sim[measure]).any():
                est.note = NOT_RECORDED[measure]
            ok = np.isfinite(sim["forgetting"]) & np.isfinite(sim[measure])
            if n >= 3 and np.isfinite(rho):
                rng = rng_for(cfg, "f4_sim", stack.trace, stack.score_name, arch, measure)
                idx = rng.integers(0, n, size=(cfg.bootstrap, n))
                x, y = sim["forgetting"][ok], sim[measure][ok]
                boot = [rho_of(x[k], y[k])["value"] for k in idx]
                est.ci_low, est.ci_high = inf.percentile_interval(boot)
                est.interval = f"bootstrap over classes (B = {cfg.bootstrap})"
            out.append(est)
    return out


CLASS_COLUMNS = [
    "kind",
    "arch",
    "seed",
    "arch_b",
    "seed_b",
    "class_index",
    "class_name",
    "value",
    "rank",
    "n_samples",
]
SIMILARITY_COLUMNS = [
    "arch",
    "class_index",
    "class_name",
    "forgetting",
    "max_confusion",
    "confused_with",
    "nearest_cosine",
    "nearest_class",
]


def _class_rows(stack: RunStack, names: list[str], means: np.ndarray) -> list[dict]:
    """Mean score per class of every run (run_class) and pooled per architecture, ranked (arch_class)."""
    rows = []
    for i, (arch, seed) in enumerate(stack.runs):
        for k, name in enumerate(names):
            n = int(((stack.label == k) & stack.eligible[i]).sum())
            rows.append(
                {
                    "kind": "run_class",
                    "arch": arch,
                    "seed": seed,
                    "class_index": k,
                    "class_name": name,
                    "value": means[i, k],
                    "n_samples": n,
                }
            )
    for arch in stack.archs:
        idx = stack.run_index(arch)
        pooled = masked_mean(means[idx], np.ones_like(means[idx], bool))
        order = [
            k
            for k in np.argsort(-np.nan_to_num(pooled, nan=-np.inf), kind="stable")
            if np.isfinite(pooled[k])
        ]
        for k, name in enumerate(names):
            n = int(((stack.label == k) & stack.eligible[idx]).sum())
            rows.append(
                {
                    "kind": "arch_class",
                    "arch": arch,
                    "class_index": k,
                    "class_name": name,
                    "value": pooled[k],
                    "rank": order.index(k) + 1 if k in order else None,
                    "n_samples": n,
                }
            )
    return rows


def _pair_rows(data: StatsInput) -> list[dict]:
    """Class-vector Spearman of every pair of runs (within_pair, cross_pair)."""
    return _class_pairs(data).rows(data.stack)


def _similarity_rows(data: StatsInput, names: list[str]) -> list[dict]:
    """Per class and arch: forgetting, the most confused class and the nearest class centroid."""
    if data.class_infos is None or any(ci is None for ci in data.class_infos):
        return []

    def name_of(k: int) -> str:
        return names[k] if k >= 0 else ""

    rows = []
    for arch in data.stack.archs:
        sim = arch_similarity(data, arch)
        for k, name in enumerate(names):
            rows.append(
                {
                    "arch": arch,
                    "class_index": k,
                    "class_name": name,
                    "forgetting": sim["forgetting"][k],
                    "max_confusion": sim["max_confusion"][k],
                    "confused_with": name_of(sim["confused_with"][k]),
                    "nearest_cosine": sim["nearest_cosine"][k],
                    "nearest_class": name_of(sim["nearest_class"][k]),
                }
            )
    return rows


def detail_tables(data: StatsInput) -> dict[str, pd.DataFrame]:
    """f4_class.csv (mean score per class per run and per architecture, class-vector
    Spearman of every pair of runs) and f4_class_similarity.csv (per class and arch)."""
    names = list(data.class_names)
    means = class_means(data.stack, len(names))
    rows = _class_rows(data.stack, names, means) + _pair_rows(data)
    return {
        "f4_class": frame(rows, CLASS_COLUMNS, "f4_class"),
        "f4_class_similarity": frame(
            _similarity_rows(data, names), SIMILARITY_COLUMNS, "f4_class_similarity"
        ),
    }
