"""Planted-truth studies for the calibration benchmark (issue 24; docs/method.md, calibration).

A *study* is one run per (architecture, seed), each a dict of numpy arrays in the
``traces.npz`` contract (docs/contracts.md), all on one split (the same sample ids and
labels in every run), plus ``truth``: for each claim of CLAIMS whether the scenario makes
it true or false, and the planted values it rests on (the scenarios and sizes:
:mod:`planted_scenarios`). Written apart from the estimators:
it shares no code with retention.fitting.fit, retention.fitting.nulls, retention.stats or
retention.fitting.simulate. Scenarios, mechanisms and parameters: docs/method.md, section 7b.

    from planted import generate_study, sampler_outcomes
    study = generate_study("arch_specific", "paper", replicate=0)
    for arch, seed, arrays in study.runs:
        np.savez(f"{arch}_seed{seed}.npz", **arrays)
    study.truth["F1"]   # {'truth': 'true', 'jaccard_cross': 0.339, 'jaccard_within': 1.0, ...}

Per run and train sample: a learning epoch T (stable difficulty plus run noise, read off
the architecture's learning curve); a forgetting hazard (the top 10% of a Gaussian score
mixing difficulty, a shared, a per-architecture and a per-run part: 0.10-0.50 per epoch,
the rest 0.0003-0.01); and a process per architecture: ``chain`` (memory: a hidden
retained / forgotten chain from t = 1 on, relearning 0.25 per epoch, so P(correct) decays
with the time since learning toward a floor), ``iid`` (after T, correct independently with
the chain's mean error rate over the sample's window), ``curve`` (no memory: P(correct)
rises from near chance around T to a plateau, drawn independently every epoch) or
``flat`` (no memory: P(correct) constant over t >= 0). p_true, loss, EL2N and pred follow
from correctness and a confidence that grows with ease and with P(correct).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from planted_scenarios import OCTDL_COUNTS, SCENARIOS, SIZES, Scenario, Size
from scipy.special import expit, logit
from scipy.stats import norm, spearmanr

FAST_SHARE = 0.10  # q of the top-q fast-forgetting set
HAZARD_FAST = (0.10, 0.50)  # per epoch, log-uniform along the within-group rank
HAZARD_SLOW = (0.0003, 0.01)
RELEARN = 0.25  # forgotten -> retained per epoch
FLOOR_CORRECT = 0.10  # P(correct) while forgotten
SLIP = 0.002  # P(wrong) while retained
CHANCE_PRE = 0.08  # the curve process's P(correct) long before learning
CURVE_WIDTH = 0.5  # epochs: width of the curve process's rise around T
CLASS_SHARE = 0.15  # share of the difficulty's variance from the class
HELDOUT_SPREAD = 1.5  # sd of held-out ease on the probit scale
F6_MARGIN = 0.01  # the claim: spaced does not beat random by more than this
F6_SEED_SD, F6_DIFF_SD = 0.01, 0.007  # a seed's accuracy level; spaced - random within a seed


@dataclass
class PlantedStudy:
    """``runs``: (arch, seed, arrays in the traces.npz contract); ``truth``: per claim of
    CLAIMS a dict with ``truth`` (true / false / n/a) and the planted values; ``planted``:
    per (arch, seed) the hidden per-sample quantities (propensity, fast set, t_learn)."""

    scenario: str
    size: str
    runs: list[tuple[str, int, dict[str, np.ndarray]]]
    truth: dict[str, dict]
    planted: dict[tuple[str, int], dict[str, np.ndarray]]


def _rng(*parts) -> np.random.Generator:
    words = [int(p) if isinstance(p, (int, np.integer)) else zlib.crc32(str(p).encode()) for p in parts]
    return np.random.default_rng(np.random.SeedSequence(words))


def _check(scenario: str, size: str, replicate: int, seed: int) -> tuple[Scenario, Size]:
    for what, value in (("replicate", replicate), ("seed", seed)):
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{what} must be a non-negative integer, got {value!r}")
    if scenario not in SCENARIOS:
        raise KeyError(f"unknown scenario {scenario!r}; one of {', '.join(SCENARIOS)}")
    if size not in SIZES:
        raise KeyError(f"unknown size {size!r}; one of {', '.join(SIZES)}")
    return SCENARIOS[scenario], SIZES[size]


# --------------------------------------------------------------------------- the split


def _class_counts(total: int, sz: Size) -> np.ndarray:
    if sz.imbalance == "octdl":
        share = np.array(list(OCTDL_COUNTS.values()), float)
    else:
        share = np.ones(sz.n_classes)
    raw = share / share.sum() * total
    counts = np.maximum(1, np.floor(raw)).astype(int)
    extra = total - counts.sum()  # largest remainders first; an excess comes off the largest class
    counts[np.argsort(counts - raw, kind="stable")[: max(extra, 0)]] += 1
    counts[np.argmax(counts)] += min(extra, 0)
    return counts


def _split(sz: Size, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Ids, labels, class names, class difficulty and centroid cosines of one split."""
    n, m, c = sz.n_train, sz.n_heldout, sz.n_classes
    label = np.repeat(np.arange(c), _class_counts(n, sz))
    h_label = np.repeat(np.arange(c), _class_counts(m, sz))
    ids = rng.permutation(n + m)
    order, h_order = rng.permutation(n), rng.permutation(m)
    if sz.imbalance == "octdl":
        names = np.array(list(OCTDL_COUNTS))
        counts = np.array(list(OCTDL_COUNTS.values()), float)
        class_d = -np.log(counts / counts.max())  # rarer classes are harder
        class_d = (class_d - class_d.mean()) / class_d.std() + rng.normal(0, 0.3, c)
    else:
        names = np.array([str(k) for k in range(c)] if c <= 10 else [f"class_{k:03d}" for k in range(c)])
        class_d = rng.normal(0, 1, c)
    centroids = rng.normal(0, 1, (c, 32)) + 1.5 * rng.normal(0, 1, 32)  # a shared direction: cosines > 0
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    cos = np.clip(centroids @ centroids.T, -1, 1)
    np.fill_diagonal(cos, 1.0)
    return {
        "sample_id": np.sort(ids[:n]).astype(np.int64),
        "label": label[order].astype(np.int64),
        "heldout_sample_id": np.sort(ids[n:]).astype(np.int64),
        "heldout_label": h_label[h_order].astype(np.int64),
        "class_names": names.astype(str),
        "class_d": class_d,
        "cosine": cos.astype(np.float32),
    }


def _difficulty(label: np.ndarray, class_d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    d = math.sqrt(1 - CLASS_SHARE) * rng.normal(0, 1, label.size) + math.sqrt(CLASS_SHARE) * class_d[label]
    return (d - d.mean()) / d.std()


# --------------------------------------------------------------------------- propensity


def _hazard(fast: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Per-epoch hazard: log-uniform along the within-group rank of ``order``."""
    h = np.empty(fast.size)
    for mask, (lo, hi) in ((fast, HAZARD_FAST), (~fast, HAZARD_SLOW)):
        idx = np.flatnonzero(mask)
        q = (np.argsort(np.argsort(order[idx])) + 0.5) / max(idx.size, 1)
        h[idx] = np.exp(np.log(lo) + q * (np.log(hi) - np.log(lo)))
    return h


def _top(score: np.ndarray, k: int, among: np.ndarray | None = None) -> np.ndarray:
    idx = np.arange(score.size) if among is None else np.flatnonzero(among)
    chosen = idx[np.argsort(-score[idx], kind="stable")[:k]]
    out = np.zeros(score.size, bool)
    out[chosen] = True
    return out


def _propensity(sc: Scenario, sz: Size, d: np.ndarray, rng: np.random.Generator):
    """Per run (index into archs x seeds): fast-set mask and hazard."""
    n = d.size
    k = math.ceil(FAST_SHARE * n)
    w = np.array(sc.weights, float)
    w = w / np.sqrt((w**2).sum())
    shared = rng.normal(0, 1, n)
    per_arch = rng.normal(0, 1, (2, n))
    base = [w[0] * d + w[1] * shared + w[2] * per_arch[a] for a in range(2)]
    fixed = None
    if sc.set_jaccard is not None:  # one set per architecture, exact overlap m
        m = round(sc.set_jaccard * 2 * k / (1 + sc.set_jaccard))
        first = _top(base[0], k)
        fixed = [first, _top(base[1], m, first) | _top(base[1], k - m, ~first)]
    out = []
    for a in range(2):
        for _ in sz.seeds:
            score = base[a] + w[3] * rng.normal(0, 1, n)
            fast = fixed[a] if fixed is not None else _top(score, k)
            order = math.sqrt(1 - sc.order_noise) * score + math.sqrt(sc.order_noise) * rng.normal(0, 1, n)
            out.append((fast, _hazard(fast, order)))
    return out


def _chain_error(h: np.ndarray, window: np.ndarray) -> np.ndarray:
    """The chain's mean P(wrong) over tau = 1..window epochs after learning (closed form)."""
    rate = h + RELEARN
    pi_r = RELEARN / rate
    geo = 1 - rate
    win = np.maximum(window, 1).astype(float)
    mean_excess = geo * (1 - geo**win) / (rate * win)  # mean over tau of geo**tau
    p_r = pi_r + (1 - pi_r) * mean_excess
    return 1 - (p_r * (1 - SLIP) + (1 - p_r) * FLOOR_CORRECT)


# --------------------------------------------------------------------------- correctness


def _learned_curve(t: np.ndarray, shares: tuple[float, float, float], warmup: int) -> np.ndarray:
    start, at0, plateau = shares
    warm = expit(logit(start) + (t + warmup) / warmup * (logit(at0) - logit(start)))
    fine = plateau - (plateau - at0) * np.exp(-t / 2.5)
    return np.where(t <= 0, warm, fine)


def _learn_epoch(d, t, shares, warmup, corr, rng) -> np.ndarray:
    """T per sample: first t whose learned share reaches the sample's quantile; E + 1 if none."""
    u = norm.cdf(corr * d + math.sqrt(1 - corr**2) * rng.normal(0, 1, d.size))
    curve = _learned_curve(t.astype(float), shares, warmup)
    pos = np.searchsorted(curve, u)  # curve is increasing
    return np.where(pos < t.size, t[np.minimum(pos, t.size - 1)], t[-1] + 1)


def _run_correct(kind, sc, t, learn, hazard, rng):
    """(correct, P(correct) now) of one run, samples x epochs."""
    n, nt = learn.size, t.size
    if kind == "flat":
        plateau = 1 - _chain_error(hazard, np.full(n, t[-1]))
        ramp = np.clip((t + 1 - t[0]) / (1 - t[0]), 0, 1)  # t < 0: rising to the plateau at t = 0
        prob = CHANCE_PRE + (plateau[:, None] - CHANCE_PRE) * ramp[None, :]
        return rng.random((n, nt)) < prob, prob
    if kind == "curve":  # the plateau does not depend on T: the chain's error over E epochs
        err = _chain_error(hazard, np.full(n, t[-1]))
        cap = np.where(t[None, :] >= 1, 1 - err[:, None], 1 - SLIP)
        rise = expit((t[None, :] - learn[:, None] + 0.5) / CURVE_WIDTH)
        prob = CHANCE_PRE + (cap - CHANCE_PRE) * rise
        return rng.random((n, nt)) < prob, prob
    pre = t[None, :] < learn[:, None]
    if kind == "iid":  # the chain's mean error over the sample's own window T..E
        err = _chain_error(hazard, t[-1] - np.maximum(learn, 0))
        prob = np.where(t[None, :] >= 1, 1 - err[:, None], 1 - SLIP)
        prob = np.where(pre, sc.chance_hit, prob)
        return rng.random((n, nt)) < prob, prob
    prob = np.empty((n, nt))
    retained = np.zeros(n, bool)
    for j, tj in enumerate(t):  # the hidden retained / forgotten chain
        was_learned = learn < tj
        if tj >= 1:
            u = rng.random(n)
            retained = np.where(retained, u >= hazard, u < RELEARN) & was_learned
        retained |= learn == tj
        prob[:, j] = np.where(learn > tj, sc.chance_hit, np.where(retained, 1 - SLIP, FLOOR_CORRECT))
    return rng.random((n, nt)) < prob, prob


def _softmax_parts(correct, prob, ease, label, confuser, n_classes, rng):
    """p_true, loss, el2n, pred consistent with correct (p_true the largest iff correct)."""
    kappa = 0.6 * ease[:, None] + 0.35 * logit(np.clip(prob, 1e-3, 1 - 1e-3)) + rng.normal(0, 0.8, prob.shape)
    p_true = np.where(correct, 0.5 + 0.5 * expit(kappa + 0.5), 0.5 * expit(kappa - 0.3))
    p_true = np.clip(p_true, 1e-6, 1 - 1e-6)
    share = rng.uniform(0.35, 0.95, prob.shape)  # of the rest, to the runner-up (correct) / of 1 - 2p (wrong)
    top_other = np.where(correct, share * (1 - p_true), p_true + share * (1 - 2 * p_true))
    rest = 1 - p_true - top_other
    n_rest = max(n_classes - 2, 1)
    el2n = np.sqrt((1 - p_true) ** 2 + top_other**2 + rest**2 / n_rest)
    # a wrong answer names the sample's usual confuser 80% of the time, else another class
    other = (label[:, None] + rng.integers(1, n_classes, prob.shape)) % n_classes
    wrong_pred = np.where(rng.random(prob.shape) < 0.8, confuser[:, None], other)
    pred = np.where(correct, label[:, None], wrong_pred)
    return (
        p_true.astype(np.float32),
        (-np.log(p_true)).astype(np.float32),
        el2n.astype(np.float32),
        pred.astype(np.int32),
    )


def _confuser(label, cosine, rng):
    """Each sample's usual wrong class: near classes (by centroid cosine) more often."""
    c = cosine.shape[0]
    logits = 4.0 * cosine.astype(float)
    np.fill_diagonal(logits, -np.inf)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    cum = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    pick = np.minimum((rng.random(label.size)[:, None] > cum[label]).sum(axis=1), c - 1)
    return np.where(pick == label, (label + 1) % c, pick)


def _heldout(sz, a, split, rng, t):
    lab = split["heldout_label"]
    ease = -_difficulty(lab, split["class_d"], rng)
    start, at0, end = sz.heldout_acc[a]
    acc = np.where(
        t <= 0, start + (at0 - start) * (t + sz.warmup) / sz.warmup, end - (end - at0) * np.exp(-t / 4.0)
    )
    mu = math.sqrt(1 + HELDOUT_SPREAD**2) * norm.ppf(acc)
    prob = norm.cdf(mu[None, :] + HELDOUT_SPREAD * ease[:, None])
    correct = rng.random(prob.shape) < prob
    conf = _confuser(lab, split["cosine"], rng)
    return correct, _softmax_parts(correct, prob, ease, lab, conf, sz.n_classes, rng)


# --------------------------------------------------------------------------- the study


def generate_study(scenario: str, size: str, replicate: int, seed: int = 0) -> PlantedStudy:
    """One planted study: every (arch, seed) run's traces.npz arrays and the truth.

    A pure function of its arguments: the split depends on (seed, replicate, size), the
    rest also on the scenario's name.
    """
    sc, sz = _check(scenario, size, replicate, seed)
    split = _split(sz, _rng(seed, replicate, size, "split"))
    rng = _rng(seed, replicate, size, scenario)
    t = np.arange(-sz.warmup, sz.epochs + 1, dtype=np.int64)
    d = _difficulty(split["label"], split["class_d"], rng)
    confuser = _confuser(split["label"], split["cosine"], rng)
    props = _propensity(sc, sz, d, rng)
    runs, planted = [], {}
    for r, (a, s) in enumerate((a, s) for a in range(2) for s in sz.seeds):
        fast, hazard = props[r]
        learn = _learn_epoch(d, t, sz.learned[a], sz.warmup, sc.learn_corr, rng)
        kind = sc.process[a]
        correct, prob = _run_correct(kind, sc, t, learn, hazard, rng)
        p_true, loss, el2n, pred = _softmax_parts(
            correct, prob, -d, split["label"], confuser, sz.n_classes, rng
        )
        h_correct, (hp, hl, he, hpred) = _heldout(sz, a, split, rng, t)
        arrays = {
            "sample_id": split["sample_id"],
            "label": split["label"],
            "class_names": split["class_names"],
            "t": t,
            "correct": correct,
            "p_true": p_true,
            "loss": loss,
            "el2n": el2n,
            "pred": pred,
            "heldout_sample_id": split["heldout_sample_id"],
            "heldout_label": split["heldout_label"],
            "heldout_correct": h_correct,
            "heldout_p_true": hp,
            "heldout_loss": hl,
            "heldout_el2n": he,
            "heldout_pred": hpred,
            "class_centroid_cosine": split["cosine"],
        }
        # propensity: the hazard; the no-memory processes' error rate is increasing in it
        flat = kind == "flat"
        own_window = kind in ("chain", "iid")  # flat and curve: the plateau's rate over E epochs
        window = sz.epochs - np.maximum(learn, 0) if own_window else np.full(learn.size, sz.epochs)
        planted[(sz.archs[a], s)] = {
            "propensity": hazard,
            "error_rate": _chain_error(hazard, window),
            "fast": fast,
            "difficulty": d,
            "t_learn": np.zeros_like(learn) if flat else learn,
        }
        runs.append((sz.archs[a], s, arrays))
    truth = _truth(sc, sz, runs, planted)
    return PlantedStudy(scenario=scenario, size=size, runs=runs, truth=truth, planted=planted)


def _mean_pairs(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _truth(sc: Scenario, sz: Size, runs, planted) -> dict[str, dict]:
    """The declared truth of each claim with its planted values on this study."""
    keys = list(planted)
    within, cross = {"j": [], "rho": []}, {"j": [], "rho": []}
    for i, ki in enumerate(keys):
        for kj in keys[i + 1 :]:
            fi, fj = planted[ki]["fast"], planted[kj]["fast"]
            jac = (fi & fj).sum() / (fi | fj).sum()
            rho = spearmanr(planted[ki]["propensity"], planted[kj]["propensity"])[0]
            group = within if ki[0] == kj[0] else cross
            group["j"].append(jac)
            group["rho"].append(rho)
    f5 = []
    for arch, seed, arrays in runs:
        p = planted[(arch, seed)]
        ok = p["t_learn"] <= sz.epochs - 2
        f5.append(spearmanr(arrays["loss"][ok, sz.warmup], p["propensity"][ok])[0])
    by_arch = dict(zip(sz.archs, (kind in ("chain",) for kind in sc.process)))
    c = sc.claims
    out = {
        "MEMORY": {"truth": c["MEMORY"], "by_arch": by_arch, "process": dict(zip(sz.archs, sc.process))},
        "F1": {
            "truth": c["F1"],
            "jaccard_cross": _mean_pairs(cross["j"]),
            "jaccard_within": _mean_pairs(within["j"]),
            "chance": FAST_SHARE / (2 - FAST_SHARE),
            "q": FAST_SHARE,
        },
        "F2": {"truth": c["F2"], "decay_by_arch": by_arch},
        "F3": {
            "truth": c["F3"],
            "rho_within": _mean_pairs(within["rho"]),
            "rho_cross": _mean_pairs(cross["rho"]),
        },
        "F5": {"truth": c["F5"], "rho": float(np.mean(f5))},
        "F6": {
            "truth": c["F6"],
            "mean_diff_heldout": sc.f6_gain,
            "mean_diff_retention": sc.f6_gain,
            "margin": F6_MARGIN,
        },
    }
    for claim, note in sc.notes.items():
        out[claim]["note"] = note
    return out


# --------------------------------------------------------------------------- F6


def sampler_outcomes(scenario: str, size: str, replicate: int, seed: int = 0) -> pd.DataFrame:
    """F6: one row per (arch, kind in random / spaced, seed) with heldout_acc,
    train_retention (share of train samples correct at the end) and coverage (share of
    train samples trained on at least once). Spaced minus random has mean
    ``f6_gain`` on both, paired within a seed (sd of the difference F6_DIFF_SD; the seed's
    level varies with sd F6_SEED_SD)."""
    sc, sz = _check(scenario, size, replicate, seed)
    rng = _rng(seed, replicate, size, scenario, "sampler")
    rows = []
    for a, arch in enumerate(sz.archs):
        base_acc, base_ret = 0.88 + 0.03 * a, 0.92 + 0.02 * a
        for s in sz.seeds:
            level = rng.normal(0, F6_SEED_SD)  # the seed's shared level
            acc = {"random": base_acc + level}
            acc["spaced"] = acc["random"] + sc.f6_gain + rng.normal(0, F6_DIFF_SD)
            ret = {"random": base_ret + level / 2}
            ret["spaced"] = ret["random"] + sc.f6_gain + rng.normal(0, F6_DIFF_SD)
            cov = {"random": 1 - 0.5**sz.epochs, "spaced": 1.0}
            for kind in ("random", "spaced"):
                rows.append(
                    {
                        "arch": arch,
                        "kind": kind,
                        "seed": s,
                        "heldout_acc": float(np.clip(acc[kind], 0, 1)),
                        "train_retention": float(np.clip(ret[kind], 0, 1)),
                        "coverage": float(cov[kind]),
                    }
                )
    return pd.DataFrame(rows)
