"""Fits tables and traces for the statistics tests: realistic binary-trace statistics with
heavy ties (many samples at lambda = 0, a group at lambda_max), planted effects, and
memoryless runs (the null model's own process)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from retention.fitting import fit, nulls
from retention.fitting import traces as tr
from retention.fitting.fit import FIT_COLUMNS

LAMBDA_MAX = 5.0


def fits_table(sample_id, label, lam, status, rng, trace="since_learned", **cols) -> pd.DataFrame:
    """A fits table in the contract format; columns not given are drawn at random."""
    n = len(sample_id)
    fitted = status == "fitted"
    base = {
        "trace": trace,
        "primary": True,
        "sample_id": np.asarray(sample_id, np.int64),
        "label": np.asarray(label, np.int64),
        "status": status,
        "lambda": lam,
        "b": np.where(status == "unforgettable", 1.0, rng.uniform(0, 0.9, n)),
        "rate": lam,
        "amplitude": rng.uniform(0, 1, n),
        "r2": np.where(fitted, rng.uniform(0.2, 1.0, n), np.nan),
        "sse": rng.uniform(0, 1, n),
        "n_points": 20,
        "t_learn": rng.integers(0, 3, n).astype(float),
        "forget_events": rng.integers(0, 5, n),
        "loss_t0": rng.normal(0, 1, n),
        "el2n_t0": rng.uniform(0, 1, n),
        "confidence": rng.uniform(0, 1, n),
        "variability": rng.uniform(0, 0.5, n),
        "mean_retention": np.where(status == "unforgettable", 1.0, rng.uniform(0.3, 1, n)),
        "aic_exp": rng.normal(0, 1, n),
        "aic_power": rng.normal(0, 1, n),
        "soft_lambda": np.where(np.isfinite(lam), rng.uniform(0, 2, n), np.nan),
        "soft_mean_retention": rng.uniform(0.3, 1, n),
        "soft_r2": rng.uniform(0.1, 0.9, n),
    }
    base.update(cols)
    return pd.DataFrame(base)[list(FIT_COLUMNS)]


def tied_lambda(n: int, rng, top: np.ndarray | None = None, k_top: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Lambda and status of a realistic run: 40% unforgettable (lambda 0), 12% at
    lambda_max (``top`` if given, topped up at random), the rest log-uniform; 4%
    never learned and 1% too short (NaN)."""
    lam = np.exp(rng.uniform(np.log(0.01), np.log(3.0), n))
    order = rng.permutation(n)
    lam[order[: int(0.40 * n)]] = 0.0
    at_max = order[int(0.40 * n) : int(0.52 * n)]
    if top is not None:
        lam[lam == LAMBDA_MAX] = 0.5
        extra = rng.choice(np.setdiff1d(np.arange(n), top), int(0.02 * n), replace=False)
        at_max = np.concatenate([top, extra])
    lam[at_max] = LAMBDA_MAX
    status = np.where(lam == 0, "unforgettable", "fitted").astype(object)
    excluded = np.setdiff1d(order[int(0.95 * n) :], at_max)
    status[excluded[: len(excluded) * 4 // 5]] = "never_learned"
    status[excluded[len(excluded) * 4 // 5 :]] = "too_short"
    lam[excluded] = np.nan
    return lam, status.astype(str)


def planted(n=2000, seeds=(0, 1, 2, 3, 4), archs=("resnet18", "deit_small"), seed=0):
    """Runs with every primary effect planted: each architecture has its own stable 10%
    at lambda_max (overlap 1/3 across architectures: F1), mean R^2 0.52 vs 0.74 (F2), and
    loss at t = 0 rising with lambda (F5)."""
    rng = np.random.default_rng(seed)
    ids = np.arange(n) * 3 + 7
    label = np.arange(n) % 7
    k = n // 10
    tops = {archs[0]: np.arange(0, k), archs[1]: np.arange(2 * k // 3, 2 * k // 3 + k)}
    fits, runs = [], []
    for a in archs:
        for s in seeds:
            lam, status = tied_lambda(n, rng, top=tops[a])
            r2 = np.where(
                status == "fitted", np.clip(rng.normal(0.52 if a == archs[0] else 0.74, 0.1, n), 0, 1), np.nan
            )
            loss = np.nan_to_num(lam) + rng.normal(0, 1.5, n)
            fits.append(fits_table(ids, label, lam, status, rng, r2=r2, loss_t0=loss))
            runs.append((a, s))
    return fits, runs


def unstable(n=4000, seeds=(0, 1, 2, 3, 4), archs=("resnet18", "deit_small"), seed=1):
    """Runs whose scores are independent across seeds (F3's claim: rho about 0)."""
    rng = np.random.default_rng(seed)
    ids, label = np.arange(n), np.arange(n) % 5
    fits, runs = [], []
    for a in archs:
        for s in seeds:
            lam, status = tied_lambda(n, rng)
            fits.append(fits_table(ids, label, lam, status, rng))
            runs.append((a, s))
    return fits, runs


def memoryless_arrays(difficulty: np.ndarray, label: np.ndarray, epochs: int, rng, n_classes: int) -> dict:
    """A run in the traces.npz format made by a memoryless process: a sample is learned at
    a geometric epoch set by its difficulty and is then correct each epoch independently
    with a probability set by its difficulty; loss at t = 0 rises with difficulty."""
    n = difficulty.size
    t = np.arange(-1, epochs + 1)
    rate = 1 / (1 + np.exp(-(2.0 - 1.5 * difficulty)))
    t_learn = np.minimum(rng.geometric(np.clip(rate, 0.05, 1)) - 1, epochs + 1)
    after = t[None, :] > t_learn[:, None]
    correct = np.where(after, rng.random((n, t.size)) < rate[:, None], False)
    correct[np.arange(n), np.minimum(t_learn + 1, t.size - 1)] |= t_learn <= epochs
    correct[:, 0] = rng.random(n) < 0.3
    p = np.where(correct, rng.uniform(0.55, 1, (n, t.size)), rng.uniform(0, 0.45, (n, t.size))).astype(
        np.float32
    )
    loss = -np.log(p)
    loss[:, t == 0] = (difficulty + rng.normal(0, 0.3, n))[:, None].clip(0.01)
    wrong = (label[:, None] + 1) % n_classes
    return {
        "sample_id": np.arange(n, dtype=np.int64),
        "label": label,
        "class_names": np.array([f"c{k}" for k in range(n_classes)]),
        "t": t,
        "correct": correct,
        "p_true": p,
        "loss": loss.astype(np.float32),
        "el2n": (1 - p).astype(np.float32),
        "pred": np.where(correct, label[:, None], wrong).astype(np.int32),
        "heldout_sample_id": np.arange(n, n + 40, dtype=np.int64),
        "heldout_label": np.arange(40) % n_classes,
        "heldout_correct": np.ones((40, t.size), bool),
        "heldout_p_true": np.full((40, t.size), 0.9, np.float32),
        "heldout_loss": np.full((40, t.size), 0.1, np.float32),
        "heldout_el2n": np.full((40, t.size), 0.1, np.float32),
        "heldout_pred": np.repeat((np.arange(40) % n_classes)[:, None], t.size, 1).astype(np.int32),
        "class_centroid_cosine": np.eye(n_classes, dtype=np.float32),
    }


def memoryless_study(n=400, epochs=20, seeds=(0, 1, 2, 3, 4), archs=("cnn", "vit"), draws=20, seed=3):
    """Fits and null fits of runs made by the memoryless process, one difficulty per
    sample shared by every run (the planted null of the findings)."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0, 1, n)
    label = np.arange(n) % 4
    fits, null_fits, runs = [], [], []
    for a in archs:
        for s in seeds:
            arrays = memoryless_arrays(difficulty, label, epochs, rng, 4)
            traces = tr.Traces(path="", run_name=f"null/{a}/seed{s}", **arrays)
            fits.append(fit.fit_table(traces, ["since_learned"], "since_learned"))
            null_fits.append(nulls.null_fit_table(traces, "since_learned", draws, 0, f"null/{a}/seed{s}"))
            runs.append((a, s))
    return fits, null_fits, runs


def decay_arrays(
    lam: np.ndarray, floor: np.ndarray, label: np.ndarray, epochs: int, rng, n_classes: int
) -> dict:
    """A run whose samples forget as the paper's model says: learned at a geometric epoch,
    then correct with probability floor + (1 - floor) exp(-lam tau); the same samples
    forget alike in every run when ``lam`` and ``floor`` are shared."""
    arrays = memoryless_arrays(np.zeros(lam.size), label, epochs, rng, n_classes)
    t = arrays["t"]
    t_learn = np.minimum(rng.geometric(0.5, lam.size) - 1, epochs)
    tau = t[None, :] - t_learn[:, None]
    r = floor[:, None] + (1 - floor[:, None]) * np.exp(-lam[:, None] * np.maximum(tau, 0))
    correct = (tau > 0) & (rng.random(r.shape) < r)
    correct[np.arange(lam.size), t_learn + 1] = True
    correct[:, 0] = arrays["correct"][:, 0]
    arrays["correct"] = correct
    arrays["pred"] = np.where(correct, label[:, None], (label[:, None] + 1) % n_classes).astype(np.int32)
    arrays["p_true"] = np.where(correct, 0.8, 0.2).astype(np.float32)
    arrays["loss"][:, t == 0] = (lam + rng.normal(0, 0.3, lam.size))[:, None].clip(0.01)
    return arrays


def decay_study(n=400, epochs=20, seeds=(0, 1, 2, 3, 4), archs=("cnn", "vit"), draws=20, seed=3):
    """Fits and null fits of runs with real forgetting dynamics shared by every run."""
    rng = np.random.default_rng(seed)
    lam = np.exp(rng.uniform(np.log(0.02), np.log(2.0), n))
    floor = rng.uniform(0.0, 0.6, n)
    label = np.arange(n) % 4
    fits, null_fits, runs = [], [], []
    for a in archs:
        for s in seeds:
            traces = tr.Traces(
                path="", run_name=f"decay/{a}/seed{s}", **decay_arrays(lam, floor, label, epochs, rng, 4)
            )
            fits.append(fit.fit_table(traces, ["since_learned"], "since_learned"))
            null_fits.append(nulls.null_fit_table(traces, "since_learned", draws, 0, f"decay/{a}/seed{s}"))
            runs.append((a, s))
    return fits, null_fits, runs
