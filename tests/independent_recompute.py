"""An independent recomputation of the primary findings from the traces.npz files alone.

It shares no code with the package: its own traces, its own fit (a grid over lambda with
the closed-form floor, refined by scipy's bounded scalar minimiser, one trace at a time),
its own rank sets (exactly k, ties broken by many random draws) and its own statistics
(scipy's Spearman, a DerSimonian-Laird pooling written out). It checks the values of
``results/stats/{dataset}/summary.csv`` (the workflow's) against its own:

    python tests/independent_recompute.py RESULTS_DIR DATASET [--seeds 0 1 2] [--archs cnn vit]

and prints one line per finding; exit status 1 if any differs by more than its tolerance.
Settings it assumes: the default trace (since_learned, learned at the first of 3
consecutive correct epochs, at least 3 points), lambda_max 5, rank score lambda, top_q
0.10; a seed whose pairs are undefined is left out, the one in the most undefined pairs
first.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, stats

LAMBDA_MAX, MIN_POINTS, Q, LEARNED_AFTER = 5.0, 3, 0.10, 3
TOLERANCE = {
    "F1.pooled": 0.02,
    "F1.difference": 0.03,
    "F2.arch_difference": 1e-3,
    "F3.within": 2e-3,
    "F5.meta": 2e-3,
}


def fit_one(y: np.ndarray) -> tuple[float, float, float]:
    """lambda, b, R^2 of R(tau) = b + (1 - b) exp(-lambda tau) by least squares."""
    tau = np.arange(y.size, dtype=float)

    def sse(lam: float) -> tuple[float, float]:
        e = np.exp(-lam * tau)
        g = 1 - e
        b = float(np.clip((g @ (y - e)) / (g @ g), 0, 1)) if g @ g > 0 else 1.0
        r = y - (b + (1 - b) * e)
        return float(r @ r), b

    grid = np.r_[0.0, np.geomspace(1e-5 * LAMBDA_MAX, LAMBDA_MAX, 400)]
    best = int(np.argmin([sse(g)[0] for g in grid]))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    res = optimize.minimize_scalar(
        lambda lam: sse(lam)[0], bounds=(lo, hi), method="bounded", options={"xatol": 1e-10}
    )
    lam = float(res.x) if res.fun < sse(grid[best])[0] else float(grid[best])
    err, b = sse(lam)
    if b >= 1 - 1e-12 or lam <= 0:
        lam, b, err = 0.0, 1.0, sse(0.0)[0]
    sst = float(((y - y.mean()) ** 2).sum())
    return lam, b, (1 - err / sst) if sst > 1e-20 * y.size else math.nan


def run_table(path: Path) -> pd.DataFrame:
    """Per train sample: status, lambda, R^2 and loss at t = 0 of the since_learned trace."""
    with np.load(path) as npz:
        t, correct, loss, sid = npz["t"], npz["correct"], npz["loss"], npz["sample_id"]
    c = correct[:, t >= 0]
    rows = []
    for i in range(c.shape[0]):
        runs = np.convolve(c[i].astype(int), np.ones(LEARNED_AFTER, int), mode="valid")
        hits = np.flatnonzero(runs == LEARNED_AFTER)  # epochs that start LEARNED_AFTER correct ones
        row = {
            "sample_id": int(sid[i]),
            "loss_t0": float(loss[i, list(t).index(0)]),
            "lambda": math.nan,
            "r2": math.nan,
        }
        if hits.size == 0:
            row["status"] = "never_learned"
        else:
            y = c[i, hits[0] :].astype(float)
            if y.size < MIN_POINTS:
                row["status"] = "too_short"
            elif y.all():
                row.update(status="unforgettable", **{"lambda": 0.0})
            else:
                lam, _, r2 = fit_one(y)
                row.update(status="fitted", r2=r2, **{"lambda": lam})
        rows.append(row)
    return pd.DataFrame(rows).set_index("sample_id")


def expected_jaccard(a: np.ndarray, b: np.ndarray, rng, draws: int = 4000) -> float:
    """Mean Jaccard of the exactly-k top sets of two rankings, ties broken at random."""
    k = min(a.size, max(1, math.ceil(round(Q * a.size, 9))))
    if (a > a.min()).sum() < k or (b > b.min()).sum() < k:
        return math.nan
    out = []
    for _ in range(draws):
        ta = set(np.lexsort((rng.random(a.size), -a))[:k])
        tb = set(np.lexsort((rng.random(b.size), -b))[:k])
        out.append(len(ta & tb) / len(ta | tb))
    return float(np.mean(out))


def recompute(results: Path, dataset: str, archs, seeds) -> dict:
    """(finding id, arch, arch_b) -> value, for the primary findings and F1.pooled."""
    runs = {
        (a, s): run_table(results / "runs" / dataset / a / f"seed{s}" / "traces.npz")
        for a in archs
        for s in seeds
    }
    eligible = {k: v[v["status"].isin(["fitted", "unforgettable"])] for k, v in runs.items()}
    rng = np.random.default_rng(0)
    out = {}
    for a in archs:
        rhos = []
        for s1, s2 in itertools.combinations(seeds, 2):
            common = eligible[(a, s1)].index.intersection(eligible[(a, s2)].index)
            rhos.append(
                stats.spearmanr(
                    eligible[(a, s1)].loc[common, "lambda"], eligible[(a, s2)].loc[common, "lambda"]
                ).statistic
            )
        out[("F3.within", a, "")] = float(np.nanmean(rhos))
    a, b = archs[0], archs[1]
    diffs = []
    for s in seeds:
        ra, rb = runs[(a, s)]["r2"], runs[(b, s)]["r2"]
        both = ra.notna() & rb.notna()
        diffs.append(ra[both].mean() - rb[both].mean())
    out[("F2.arch_difference", a, b)] = float(np.mean(diffs))
    z, v = [], []
    for key in runs:
        e = eligible[key]
        rho = stats.spearmanr(e["loss_t0"], e["lambda"]).statistic
        z.append(np.arctanh(rho))
        v.append(1.06 / (len(e) - 3))
    z, v = np.array(z), np.array(v)
    w = 1 / v
    q = float(w @ (z - (w @ z) / w.sum()) ** 2)
    tau2 = max(0.0, (q - (z.size - 1)) / (w.sum() - (w**2).sum() / w.sum()))
    ws = 1 / (v + tau2)
    out[("F5.meta", "", "")] = float(np.tanh(ws @ z / ws.sum()))
    pooled = {}
    for arch in archs:
        frame = pd.concat([eligible[(arch, s)]["lambda"] for s in seeds], axis=1)
        pooled[arch] = frame.mean(axis=1, skipna=True)
    common = pooled[a].index.intersection(pooled[b].index)
    out[("F1.pooled", a, b)] = expected_jaccard(
        pooled[a][common].to_numpy(), pooled[b][common].to_numpy(), rng
    )
    pair = {}
    for (x, s1), (y, s2) in itertools.combinations(list(runs), 2):
        common = eligible[(x, s1)].index.intersection(eligible[(y, s2)].index)
        pair[((x, s1), (y, s2))] = expected_jaccard(
            eligible[(x, s1)].loc[common, "lambda"].to_numpy(),
            eligible[(y, s2)].loc[common, "lambda"].to_numpy(),
            rng,
            500,
        )
    kept = list(seeds)
    while True:
        bad = [(p1, p2) for (p1, p2), j in pair.items() if p1[1] in kept and p2[1] in kept and np.isnan(j)]
        if not bad:
            break
        counts = {s: sum((p1[1] == s) + (p2[1] == s) for p1, p2 in bad) for s in kept}
        kept.remove(max(kept, key=lambda s: (counts[s], -s)))
    usable = {k: j for k, j in pair.items() if k[0][1] in kept and k[1][1] in kept}
    within = [j for (p1, p2), j in usable.items() if p1[0] == p2[0]]
    cross = [j for (p1, p2), j in usable.items() if p1[0] != p2[0]]
    out[("F1.difference", a, b)] = float(np.mean(within) - np.mean(cross)) if within and cross else math.nan
    return out


def compare(results: Path, dataset: str, archs, seeds) -> pd.DataFrame:
    """The workflow's values beside the independent ones, with the tolerance of each."""
    summary = pd.read_csv(results / "stats" / dataset / "summary.csv")
    text = ["id", "arch", "arch_b", "case"]
    summary[text] = summary[text].fillna("").astype(str)
    ours = {(r.id, r.arch, r.arch_b): r.value for r in summary.itertuples(index=False) if r.case == ""}
    rows = []
    for (fid, a, b), value in recompute(results, dataset, archs, seeds).items():
        mine = ours.get((fid, a, b), math.nan)
        rows.append(
            {
                "id": fid,
                "arch": a,
                "arch_b": b,
                "workflow": mine,
                "independent": value,
                "difference": abs(mine - value),
                "tolerance": TOLERANCE[fid],
            }
        )
    table = pd.DataFrame(rows)
    table["agrees"] = (table["difference"] <= table["tolerance"]) | (
        table["workflow"].isna() & table["independent"].isna()
    )
    return table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", type=Path)
    ap.add_argument("dataset")
    ap.add_argument("--archs", nargs=2, default=["cnn", "vit"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = ap.parse_args()
    table = compare(args.results, args.dataset, args.archs, args.seeds)
    print(table.to_string(index=False))
    return 0 if table["agrees"].all() else 1


if __name__ == "__main__":
    sys.exit(main())
