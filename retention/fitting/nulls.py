"""Null runs: memoryless versions of a run, fitted by the same code (docs/method.md section 7a).

A null run keeps everything of the observed run up to each sample's learning point (the
first ``learned_after`` consecutive correct epochs at t >= 0; :func:`retention.fitting.traces.
learning_epoch`) and redraws what comes after it, epoch by epoch, from that sample's own
post-learning record:

* ``shuffle``: the sample's post-learning epochs in a random order (correct and p_true
  together): the exact permutation null of "the order after learning does not matter";
* ``iid``: correctness drawn independently, epoch by epoch, with a probability set by the
  sample and by the epoch (the learning curve of the run), conditioned on the observed
  counts: every sample keeps its number of correct post-learning epochs and every epoch
  its number of correct post-learning samples (:func:`trade_rows`); each epoch's p_true is
  drawn, with replacement, from the sample's post-learning epochs of the same
  correctness. Unconditional Bernoulli draws at each sample's rate would add binomial
  noise to every sample's error rate and bias correlations across runs toward 0 (the
  count bias); and a run whose accuracy still rises after a sample is learned puts that
  sample's errors early without any memory, which only a null that keeps the epochs'
  counts reproduces.

Both keep each sample's difficulty (its learning epoch, its post-learning accuracy, its
loss at t = 0) and destroy any dependence on time since learning (beyond, for ``iid``,
what the run's epoch-by-epoch accuracy explains). A finding that the null
reproduces is a property of per-sample accuracy, not of forgetting dynamics. Warmup
epochs (t < 0), never-learned samples and the held-out set are left as they are.
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
import pandas as pd

from retention.fitting import fit
from retention.fitting import traces as tr

KINDS = ("iid", "shuffle")


#: sweeps of row-pair trades per iid null draw (each sweep trades every row once); the share
#: of entries changed levels off after about 20 (tests/test_nulls.py)
CURVEBALL_SWEEPS = 30


def trade_rows(x: np.ndarray, region: np.ndarray, sweeps: int, rng: np.random.Generator) -> np.ndarray:
    """A random binary matrix with the row and column sums of ``x`` inside ``region`` (and
    ``x`` outside it), by the Curveball algorithm (Strona et al. 2014): each sweep pairs the
    rows at random and, for each pair, redistributes the columns that the two rows share in
    ``region`` and differ in, at random, keeping how many each row has. The chain's
    stationary distribution is uniform over the matrices it reaches: the exact conditional
    null of independent Bernoulli draws with a sample and an epoch effect (logit p = a_i +
    b_t, the Rasch model, whose margins are sufficient)."""
    x = np.array(x, dtype=bool)
    rows = np.flatnonzero(region.any(axis=1))
    for _ in range(int(sweeps)):
        order = rng.permutation(rows)
        first, second = order[0 : order.size - 1 : 2], order[1::2]
        xi, xj = x[first], x[second]
        tradable = (xi != xj) & region[first] & region[second]
        keep = (xi & tradable).sum(axis=1)
        keys = np.where(tradable, rng.random(tradable.shape), 2.0)
        # the first row keeps its count: the tradable columns with its ``keep`` smallest keys
        cut = np.take_along_axis(np.sort(keys, axis=1), np.maximum(keep - 1, 0)[:, None], axis=1)
        to_first = tradable & (keys <= cut) & (keep[:, None] > 0)
        x[first] = np.where(tradable, to_first, xi)
        x[second] = np.where(tradable, ~to_first, xj)
    return x


def null_columns(
    correct: np.ndarray, t: np.ndarray, learned_after: int, kind: str, rng: np.random.Generator
) -> np.ndarray:
    """Column indices (N, T) that turn a run into one null draw of ``kind``.

    Row i maps every epoch to itself up to the end of sample i's learning run
    (t_learn + learned_after - 1) and each later epoch t >= 0 to a post-learning epoch
    of the same row (drawn as ``kind`` says). Apply it to every (N, T) array with
    ``np.take_along_axis`` so that correct and p_true stay paired.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown null kind {kind!r}; expected one of {KINDS}")
    correct = np.asarray(correct, dtype=bool)
    n, n_cols = correct.shape
    first_fine = int(np.flatnonzero(np.asarray(t) >= 0)[0])
    t_learn = tr.learning_epoch(correct, t, learned_after)
    # the first column that is redrawn; rows without a learning point keep every column
    start = np.where(np.isfinite(t_learn), first_fine + np.nan_to_num(t_learn) + learned_after, n_cols)
    start = np.minimum(start.astype(np.int64), n_cols)
    cols = np.broadcast_to(np.arange(n_cols), (n, n_cols))
    after = cols >= start[:, None]
    keys = np.where(after, rng.random((n, n_cols)), cols - n_cols)  # the prefix sorts first, in order
    shuffled = np.argsort(keys, axis=1, kind="stable")
    if kind == "shuffle":
        return shuffled
    # iid: correctness redrawn with every sample's and every epoch's count of correct
    # post-learning epochs kept; the epoch behind each position (its p_true) drawn with
    # replacement among the sample's post-learning epochs of that correctness
    right = trade_rows(correct, after, CURVEBALL_SWEEPS, rng)
    by_class = np.argsort(np.where(after, correct.astype(np.int64), -1), axis=1, kind="stable")
    n_wrong = (after & ~correct).sum(axis=1)
    n_right = (after & correct).sum(axis=1)
    u = rng.random((n, n_cols))
    offset = np.where(
        right,
        start[:, None] + n_wrong[:, None] + np.floor(u * n_right[:, None]),
        start[:, None] + np.floor(u * n_wrong[:, None]),
    ).astype(np.int64)
    drawn = np.take_along_axis(by_class, np.minimum(offset, n_cols - 1), axis=1)
    return np.where(after, drawn, cols)


def null_traces(traces: tr.Traces, learned_after: int, kind: str, rng: np.random.Generator) -> tr.Traces:
    """One null draw of a run (see the module docstring) as a :class:`retention.fitting.traces.Traces`."""
    idx = null_columns(traces.correct, traces.t, learned_after, kind, rng)
    return dataclasses.replace(
        traces,
        run_name=f"{traces.run_name} ({kind} null)",
        correct=np.take_along_axis(traces.correct, idx, axis=1),
        p_true=np.take_along_axis(traces.p_true, idx, axis=1),
    )


def null_generator(seed: int, run: str, kind: str, draw: int) -> np.random.Generator:
    """The generator of one null draw: fixed by the stats seed, the run's name, the kind and
    the draw, so that each draw is reproducible on its own."""
    tag = zlib.crc32(run.encode())
    return np.random.default_rng([int(seed), tag, KINDS.index(kind), int(draw)])


def null_fit_table(
    traces: tr.Traces,
    primary: str,
    draws: int,
    seed: int,
    run: str,
    min_points: int = 3,
    lambda_max: float = fit.LAMBDA_MAX,
    soft_columns: bool = False,
) -> pd.DataFrame:
    """The fits table (docs/contracts.md) of ``draws`` null runs of each kind, for the
    primary trace definition only, with the columns ``null`` (kind) and ``draw`` first
    (the soft columns only with ``soft_columns``: the soft rank scores need them; no power
    law, so the AIC columns are NaN: no finding on null runs reads them)."""
    learned_after = tr.parse_label(primary).learned_after
    frames = []
    for kind in KINDS:
        for draw in range(int(draws)):
            rng = null_generator(seed, run, kind, draw)
            null = null_traces(traces, learned_after, kind, rng)
            table = fit.fit_table(null, [], primary, min_points, lambda_max, soft_columns, power=False)
            table.insert(0, "draw", np.int64(draw))
            table.insert(0, "null", kind)
            frames.append(table)
    if not frames:
        columns = ["null", "draw", *fit.FIT_COLUMNS]
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)
