"""The one order of "most forgotten" that every figure of samples uses (``gallery``,
``retention_examples``, ``retention_heatmap``): the rank columns of samples.csv
(docs/contracts.md, section samples.csv; :func:`retention.stats.samples.pooled_order`).

Rank 1 is the most forgotten sample of an architecture by its seed-pooled rank score;
samples with the same score take consecutive ranks in a seeded random order, so the
first k are a uniform draw from the tie group at rank k. :func:`tie_note` says so
wherever the shown samples come from a tie group larger than what is shown.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retention.figures.style import score_name


def ranked(samples: pd.DataFrame, arch: str) -> pd.DataFrame:
    """The samples of samples.csv with a rank for ``arch``, most forgotten first, with
    columns sample_id, label, class_name, score, rank, tie (the tie group's size)."""
    cols = {f"{arch}_rank_score": "score", f"{arch}_rank": "rank", f"{arch}_tie_size": "tie"}
    if samples is None or samples.empty or not set(cols) <= set(samples.columns):
        return pd.DataFrame(columns=["sample_id", "label", "class_name", "score", "rank", "tie"])
    out = samples.rename(columns=cols)
    out = out.assign(
        rank=pd.to_numeric(out["rank"], errors="coerce"),
        tie=pd.to_numeric(out["tie"], errors="coerce"),
        score=pd.to_numeric(out["score"], errors="coerce"),
    )
    if "class_name" not in out:
        out["class_name"] = out["label"].astype(str)
    out = out.dropna(subset=["rank"]).sort_values("rank", kind="stable")
    return out[["sample_id", "label", "class_name", "score", "rank", "tie"]].reset_index(drop=True)


def ends(order: pd.DataFrame, n: int, keep=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``n`` most forgotten (ranks 1..n) and ``n`` least forgotten (the largest
    ranks, least forgotten first) of :func:`ranked`, among the samples ``keep`` (a set
    of sample ids; default all); the two never share a sample."""
    if keep is not None:
        order = order[order["sample_id"].isin(keep)]
    n = min(n, len(order) // 2) if len(order) > 1 else len(order)
    most = order.head(n)
    least = order.iloc[::-1].head(n) if len(order) > 1 else order.iloc[:0]
    return most, least


def score_symbol(samples: pd.DataFrame) -> str:
    """How a figure names the seed-pooled rank score of samples.csv ('mean λ', ...)."""
    name = (
        str(samples["rank_score"].iloc[0])
        if samples is not None and "rank_score" in samples and len(samples)
        else ""
    )
    return "mean " + score_name(name or "lambda")


def tie_note(shown: pd.DataFrame, symbol: str = "mean λ") -> str:
    """'' when the shown samples are the only ones with their scores; else how many
    samples (of samples.csv) tie with the shown ones, at which value of the score
    (``symbol``), and that the shown ones are a random draw of them."""
    if shown.empty:
        return ""
    groups = []
    for score, part in shown.groupby("score", sort=False):
        tie = int(part["tie"].max())
        if tie > len(part):
            groups.append((score, len(part), tie))
    if not groups:
        return ""
    score, k, tie = max(groups, key=lambda g: g[2])
    return f"{k} shown: a random draw of the {tie:,} samples tied at {symbol} = {_fmt(score)}"


def _fmt(v: float) -> str:
    return f"{v:.2g}" if np.isfinite(v) else "?"
