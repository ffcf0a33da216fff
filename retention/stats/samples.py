"""Per-sample results (samples.csv) and per-run accuracy against chance.

``samples_table``: one row per train sample, joined to its file: for each architecture the
mean and spread over seeds of lambda and of the forgetting-event count, its fit status in
every seed, and its place in the one order of "most forgotten" that every figure uses
(:func:`pooled_order`: the seed-pooled rank score, ties broken by a seeded random draw, with
the size of each sample's tie group) - the forgetting-events list of Toneva et al. and the
data map of dataset cartography, joined to the images. ``accuracy`` estimates: held-out
accuracy per architecture at t = 0 and at the end, with the chance level (the larger of 1 /
C and the majority class's share) and the runs near it (``retention.chance.NEAR_CHANCE``),
and at the end the largest rise of its runs over the last epochs and the runs still rising
(``retention.chance``); the arch's pretraining (``weights: pretrain``) as a row of its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retention.chance import near_chance
from retention.stats import inference as inf
from retention.stats.estimate import Estimate
from retention.stats.settings import StatsConfig, rng_for
from retention.stats.stack import RunStack, StatsInput, masked_mean


def _spread(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Standard deviation (ddof 1) over the runs where ``mask``; NaN below two."""
    ok = mask & np.isfinite(values)
    n = ok.sum(axis=0)
    mean = masked_mean(values, ok)
    sq = np.where(ok, (values - mean) ** 2, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 1, np.sqrt(sq / np.maximum(n - 1, 1)), np.nan)


#: significant digits at which two seed-pooled scores count as tied (a mean of the same
#: values summed in another order differs in the last bits)
TIE_DIGITS = 12


def pooled_order(score: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(rank, tie_size) of each sample of a seed-pooled rank score (higher = more forgotten;
    NaN: never eligible).

    rank: 1 = most forgotten .. n (the samples with a score), NaN without a score; samples
    with the same score (to ``TIE_DIGITS`` significant digits) take consecutive ranks in a
    random order drawn from ``rng``. tie_size: how many samples share the sample's score
    (1: no tie), NaN without a score. The first k of this order are a uniform random draw
    from the tie group at the k-th rank, as the exact-k top sets of docs/method.md draw them.
    """
    score = np.asarray(score, dtype=float)
    ok = np.isfinite(score)
    rank = np.full(score.size, np.nan)
    tie = np.full(score.size, np.nan)
    if not ok.any():
        return rank, tie
    top = float(np.abs(score[ok]).max())
    rounded = np.round(score[ok], TIE_DIGITS - (int(np.ceil(np.log10(top))) if top > 0 else 0))
    key = rng.random(rounded.size)
    order = np.lexsort((key, -rounded))
    r = np.empty(rounded.size)
    r[order] = np.arange(1, rounded.size + 1)
    _, inverse, counts = np.unique(rounded, return_inverse=True, return_counts=True)
    rank[ok], tie[ok] = r, counts[inverse]
    return rank, tie


def samples_table(stack: RunStack, manifest: pd.DataFrame | None = None, seed: int = 0) -> pd.DataFrame:
    """One row per train sample (see the module docstring); ``manifest`` (manifest.csv)
    adds each sample's source file and class name; ``seed`` (``stats.seed``) seeds the
    tie-breaking draw of :func:`pooled_order`.

    ``rank_score``: the name of the rank score (``stats.rank_score``). Per architecture:
    ``{arch}_rank_score`` (the rank score ``stack.score_name``, mean over
    the seeds in which the sample is eligible), ``{arch}_rank`` and ``{arch}_tie_size``
    (:func:`pooled_order`)."""
    out = pd.DataFrame({"sample_id": stack.sample_id, "label": stack.label, "rank_score": stack.score_name})
    if manifest is not None:
        info = manifest.set_index("sample_id").reindex(stack.sample_id)
        out["class_name"] = info["class_name"].to_numpy()
        out["source"] = info["source"].to_numpy()
    lam, events = stack.values["lambda"], stack.values["forget_events"]
    for arch in stack.archs:
        idx = stack.run_index(arch)
        el = stack.eligible[idx]
        score = masked_mean(stack.score[idx], el)
        statuses = stack.status[idx]
        out[f"{arch}_lambda_mean"] = masked_mean(lam[idx], el)
        out[f"{arch}_lambda_sd"] = _spread(lam[idx], el)
        every = np.ones_like(el)
        out[f"{arch}_forget_events_mean"] = masked_mean(events[idx], every)
        out[f"{arch}_forget_events_sd"] = _spread(events[idx], every)
        out[f"{arch}_status"] = [
            ", ".join(f"{s} {n}" for s, n in zip(*np.unique(col, return_counts=True))) for col in statuses.T
        ]
        rank, tie = pooled_order(score, rng_for(StatsConfig(seed=seed), "samples", stack.score_name, arch))
        out[f"{arch}_rank_score"] = score
        out[f"{arch}_rank"] = pd.array(rank, dtype="Int64")  # no ".0" in the csv
        out[f"{arch}_tie_size"] = pd.array(tie, dtype="Int64")
    return out


def accuracy(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """Held-out accuracy per architecture at t = 0 and at the end (t over seeds), with the
    chance level and the number of runs near it (``retention.chance.near_chance``); at the
    end also the largest rise of its runs over the last epochs and the number of runs still
    rising; and the arch's pretraining, where it has one (stage ``pretrain``, one run)."""
    infos = data.class_infos
    if infos is None or any(ci is None or not np.isfinite(ci.heldout_acc_end) for ci in infos):
        note = "held-out accuracy needs every run's traces.npz"
        if infos is not None and all(
            ci is not None for ci in infos
        ):  # imported runs without held-out records
            note = "no held-out samples in the runs' traces (not recorded)"
        return [Estimate(arch=a, note=note) for a in data.stack.archs]
    out = []
    for arch in data.stack.archs:
        idx = data.stack.run_index(arch)
        chance = float(np.mean([infos[i].chance for i in idx]))
        for case, field in (("t = 0", "heldout_acc_t0"), ("end", "heldout_acc_end")):
            values = np.array([getattr(infos[i], field) for i in idx])
            res = inf.t_interval(values)
            est = Estimate(arch=arch, case=case, value=res.estimate, n_runs=len(idx))
            if np.isfinite(res.se):
                est.ci_low, est.ci_high, est.interval = res.low, res.high, f"t over {res.n} seeds"
            est.extra = {
                "chance": chance,
                "near_chance": int(np.sum(near_chance(values, chance))),
                "stage": "finetune",
            }
            if case == "end":
                rises = np.array([infos[i].heldout_rise for i in idx], dtype=float)
                est.extra["rise"] = float(np.max(rises)) if np.isfinite(rises).all() else np.nan
                est.extra["still_rising"] = int(sum(bool(infos[i].still_rising) for i in idx))
            out.append(est)
        pre = infos[idx[0]].pretrain if idx else None
        if pre is not None:
            est = Estimate(
                arch=arch,
                case="the end of pretraining",
                value=pre.end,
                n_runs=1,
                note="one pretraining run, on its source's held-out split",
            )
            est.extra = {
                "chance": pre.chance,
                "near_chance": int(near_chance(pre.end, pre.chance)),
                "stage": "pretrain",
                "rise": pre.rise,
                "still_rising": int(pre.rising),
            }
            out.append(est)
    return out
