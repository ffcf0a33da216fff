"""Tests of retention.inference: known values (scipy, metafor, hand computations),
edge cases, and coverage simulations of the seed-level intervals (issue 20)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from retention.stats.inference import (
    Jackknife,
    Meta,
    attainable,
    distinct_splits,
    fisher_z,
    holm,
    jackknife,
    label_assignments,
    mc_permutations,
    non_superiority_p,
    paired_t,
    percentile_interval,
    permutation_p,
    random_effects_meta,
    spearman_z_var,
    t_ci,
    t_interval,
    t_p,
    tost_p,
)

N_SIM = 2000


# ------------------------------------------------------------------ t inference


def test_t_interval_matches_scipy_and_ignores_nan():
    x = np.array([0.31, 0.45, np.nan, 0.22, 0.38, 0.40])
    r = t_interval(x, level=0.9)
    ref = sps.ttest_1samp(x[np.isfinite(x)], 0.0)
    ci = ref.confidence_interval(0.9)
    assert (r.n, r.df) == (5, 4.0)
    assert r.estimate == pytest.approx(np.nanmean(x))
    assert r.se == pytest.approx(np.nanstd(x, ddof=1) / math.sqrt(5))
    assert (r.low, r.high) == pytest.approx((ci.low, ci.high))
    assert t_p(r.estimate, r.se, r.df) == pytest.approx(ref.pvalue)


def test_t_interval_too_few_values():
    one = t_interval([0.4, np.nan])
    assert one.estimate == 0.4 and one.n == 1
    assert all(math.isnan(v) for v in (one.se, one.low, one.high))
    none = t_interval([np.nan])
    assert none.n == 0 and math.isnan(none.estimate) and math.isnan(none.df)
    # identical values: se = 0, no interval and no p (scipy gives NaN too)
    same = t_interval([0.5, 0.5, 0.5])
    assert same.se == 0 and math.isnan(same.low) and math.isnan(t_p(same.estimate, same.se, same.df))


def test_t_ci_and_t_p_by_hand():
    low, high = t_ci(1.0, 0.5, 3, level=0.95)
    half = 3.182446305284263 * 0.5  # t_{0.975, 3}
    assert (low, high) == pytest.approx((1.0 - half, 1.0 + half))
    t = (1.0 - 0.2) / 0.5
    assert t_p(1.0, 0.5, 3, null=0.2, alternative="greater") == pytest.approx(sps.t.sf(t, 3))
    assert t_p(1.0, 0.5, 3, null=0.2, alternative="less") == pytest.approx(sps.t.cdf(t, 3))
    assert t_p(1.0, 0.5, 3, null=0.2) == pytest.approx(2 * sps.t.sf(t, 3))
    # df = inf is the z test
    assert t_ci(0.0, 1.0, math.inf) == pytest.approx((-1.959963984540054, 1.959963984540054))
    assert math.isnan(t_p(1.0, 0.5, 0))
    assert math.isnan(t_ci(1.0, np.nan, 3)[0])
    with pytest.raises(ValueError, match="alternative"):
        t_p(1.0, 0.5, 3, alternative="bigger")


@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_t_p_alternatives_match_scipy(alternative):
    x = np.array([0.12, -0.05, 0.2, 0.08, 0.15])
    r = t_interval(x)
    ref = sps.ttest_1samp(x, 0.03, alternative=alternative).pvalue
    assert t_p(r.estimate, r.se, r.df, null=0.03, alternative=alternative) == pytest.approx(ref)


def test_paired_t_matches_ttest_rel():
    a = np.array([0.81, 0.78, 0.85, np.nan, 0.80])
    b = np.array([0.79, 0.74, 0.80, 0.70, np.nan])
    r = paired_t(a, b)
    ref = sps.ttest_rel(a[:3], b[:3])
    ci = ref.confidence_interval()
    assert r.n == 3 and r.df == 2.0
    assert r.estimate == pytest.approx(np.mean(a[:3] - b[:3]))
    assert r.p == pytest.approx(ref.pvalue)
    assert (r.low, r.high) == pytest.approx((ci.low, ci.high))
    with pytest.raises(ValueError, match="equal lengths"):
        paired_t([1.0, 2.0], [1.0])


# ------------------------------------------------------- equivalence, non-superiority


def test_tost_by_hand():
    # lower test: t = (0.02 + 0.1) / 0.03 = 4; upper test: t = (0.02 - 0.1) / 0.03 = -2.667
    p = tost_p(0.02, 0.03, 4, bound=0.1)
    assert p == pytest.approx(max(sps.t.sf(4.0, 4), sps.t.cdf(-0.08 / 0.03, 4)))
    assert p == pytest.approx(sps.t.cdf(-0.08 / 0.03, 4))
    with pytest.raises(ValueError, match="bound"):
        tost_p(0.02, 0.03, 4, bound=0.0)
    assert math.isnan(tost_p(0.02, np.nan, 4, bound=0.1))


def test_tost_symmetric_monotone_and_matches_interval_inclusion():
    ests = np.linspace(0, 0.2, 21)
    ps = np.array([tost_p(e, 0.03, 4, 0.1) for e in ests])
    assert np.allclose(ps, [tost_p(-e, 0.03, 4, 0.1) for e in ests])
    assert (np.diff(ps) > 0).all()  # further from 0: less equivalent
    by_bound = [tost_p(0.03, 0.03, 4, b) for b in (0.05, 0.1, 0.2, 0.4)]
    assert (np.diff(by_bound) < 0).all()  # wider margin: easier to show equivalence
    by_se = [tost_p(0.03, s, 4, 0.1) for s in (0.01, 0.02, 0.04)]
    assert (np.diff(by_se) > 0).all()
    # p < alpha exactly when the (1 - 2 alpha) interval lies inside (-bound, bound)
    for est in (0.0, 0.03, 0.05, 0.08):
        low, high = t_ci(est, 0.02, 4, level=0.90)
        assert (tost_p(est, 0.02, 4, 0.1) < 0.05) == (-0.1 < low and high < 0.1)


def test_non_superiority_matches_one_sided_t():
    x = np.array([0.02, 0.05, -0.01, 0.04, 0.03])
    r = t_interval(x)
    ref = sps.ttest_1samp(x, 0.1, alternative="less").pvalue
    assert non_superiority_p(r.estimate, r.se, r.df, margin=0.1) == pytest.approx(ref)
    assert non_superiority_p(0.5, 0.1, 4, margin=0.1) > 0.9


# -------------------------------------------------------------------- jackknife


def test_jackknife_of_a_mean_is_the_t_standard_error():
    x = np.array([0.3, 0.5, 0.1, 0.7, 0.4])
    jk = jackknife(5, lambda keep: x[keep].mean())
    assert isinstance(jk, Jackknife)
    assert jk.estimate == pytest.approx(x.mean())
    assert jk.se == pytest.approx(x.std(ddof=1) / math.sqrt(5))
    assert jk.df == 4.0 and jk.n_units == 5
    assert jk.replicates == pytest.approx([(x.sum() - xi) / 4 for xi in x])


def test_jackknife_pair_mean_by_hand_and_undefined_cases():
    h = np.array([[0, 0.5, 0.3], [0.5, 0, 0.1], [0.3, 0.1, 0]])
    i, j = np.triu_indices(3, 1)
    jk = jackknife(3, lambda keep: h[i, j][keep[i] & keep[j]].mean())
    # leaving seed s out leaves one pair: replicates are the pair values (0,1)->0.5 ...
    assert jk.replicates == pytest.approx([0.1, 0.3, 0.5])
    assert jk.se == pytest.approx(math.sqrt(2 / 3 * ((0.1 - 0.3) ** 2 + (0.5 - 0.3) ** 2)))
    assert math.isnan(jackknife(2, lambda keep: float(keep.sum())).se)
    nan_rep = jackknife(4, lambda keep: math.nan if not keep[0] else 1.0 + keep.sum())
    assert nan_rep.estimate == 5.0 and math.isnan(nan_rep.se)


# ------------------------------------------------------------ correlations, meta


def test_fisher_z_and_spearman_variance():
    assert fisher_z(0.5) == pytest.approx(0.5493061443340549)
    z = fisher_z([0.0, -0.5, 1.0])
    assert z[0] == 0 and z[1] == pytest.approx(-0.5493061443340549) and z[2] == math.inf
    assert math.isnan(fisher_z(1.5))
    assert spearman_z_var(1003) == pytest.approx(1.06 / 1000)
    assert spearman_z_var(1003, n_controlled=1) == pytest.approx(1.06 / 999)
    v = spearman_z_var(np.array([3, 4, 100]))
    assert math.isnan(v[0]) and v[1] == pytest.approx(1.06) and v[2] == pytest.approx(1.06 / 97)


def _bcg():
    """dat.bcg (metafor): log risk ratios and their variances (escalc measure RR)."""
    t = np.array([
        [4, 119, 11, 128], [6, 300, 29, 274], [3, 228, 11, 209], [62, 13536, 248, 12619],
        [33, 5036, 47, 5761], [180, 1361, 372, 1079], [8, 2537, 10, 619],
        [505, 87886, 499, 87892], [29, 7470, 45, 7232], [17, 1699, 65, 1600],
        [186, 50448, 141, 27197], [5, 2493, 3, 2338], [27, 16886, 29, 17825],
    ], dtype=float)  # fmt: skip
    a, b, c, d = t.T
    return np.log(a / (a + b)) - np.log(c / (c + d)), 1 / a - 1 / (a + b) + 1 / c - 1 / (c + d)


def test_dersimonian_laird_matches_metafor_bcg():
    # metafor rma(yi, vi, data=dat, method="DL") on dat.bcg, checked there against
    # Stata metan: estimate -0.7141, CI -1.0644..-0.3638, QE 152.2330, tau^2 0.3088,
    # I^2 92.12%.
    y, v = _bcg()
    m = random_effects_meta(y, v, interval="normal")
    assert isinstance(m, Meta) and m.k == 13 and m.interval == "normal" and m.df == math.inf
    assert m.estimate == pytest.approx(-0.7141, abs=5e-5)
    assert (m.low, m.high) == pytest.approx((-1.0644, -0.3638), abs=5e-5)
    assert m.Q == pytest.approx(152.2330, abs=5e-5)
    assert m.tau2 == pytest.approx(0.3088, abs=5e-5)
    assert m.I2 == pytest.approx(0.9212, abs=5e-5)
    assert m.p_less == pytest.approx(m.p_two_sided / 2)


def test_hartung_knapp_by_hand():
    y, v = [0.0, 0.3, 0.9], [0.01, 0.02, 0.04]
    # w = 100, 50, 25; fixed mean 37.5/175 = 3/14; Q = (900 + 72 + 2304)/196 = 117/7;
    # C = 175 - 13125/175 = 100; tau2 = (117/7 - 2)/100 = 103/700
    ws = [700 / 110, 700 / 117, 700 / 131]  # 1 / (v_i + tau2)
    mu = sum(w * yi for w, yi in zip(ws, y)) / sum(ws)
    q = sum(w * (yi - mu) ** 2 for w, yi in zip(ws, y)) / 2
    assert q > 1  # the modification max(1, q) does not bind here
    se = math.sqrt(q / sum(ws))
    half = 4.302652729911275 * se  # t_{0.975, 2}
    m = random_effects_meta(y, v)
    assert m.tau2 == pytest.approx(103 / 700) and m.Q == pytest.approx(117 / 7)
    assert m.I2 == pytest.approx((117 / 7 - 2) / (117 / 7))
    assert m.estimate == pytest.approx(mu) and m.se == pytest.approx(se)
    assert (m.low, m.high) == pytest.approx((mu - half, mu + half))
    assert m.df == 2.0 and m.interval == "hartung_knapp"
    assert m.p_two_sided == pytest.approx(2 * sps.t.sf(mu / se, 2))


def test_hartung_knapp_never_narrower_than_dersimonian_laird():
    y, v = [0.30, 0.31, 0.29], [0.01, 0.01, 0.01]  # q = 0.01 < 1: the modification binds
    hk, dl = random_effects_meta(y, v), random_effects_meta(y, v, interval="normal")
    assert hk.tau2 == 0 and hk.se == pytest.approx(dl.se) == pytest.approx(math.sqrt(1 / 300))
    assert hk.high - hk.low > dl.high - dl.low


def test_meta_degenerate_and_malformed_inputs():
    one = random_effects_meta([0.4, np.nan], [0.01, 0.02])
    assert one.k == 1 and one.estimate == 0.4 and one.se == pytest.approx(0.1)
    assert one.interval == "normal" and one.df == math.inf and math.isnan(one.tau2)
    assert (one.low, one.high) == pytest.approx((0.4 - 0.196, 0.4 + 0.196), abs=1e-4)
    empty = random_effects_meta([], [])
    assert empty.k == 0 and math.isnan(empty.estimate) and math.isnan(empty.p_two_sided)
    with pytest.raises(ValueError, match="variances must be > 0"):
        random_effects_meta([0.1, 0.2], [0.01, -0.01])
    with pytest.raises(ValueError, match="2 effects but 3 variances"):
        random_effects_meta([0.1, 0.2], [0.01, 0.01, 0.01])
    with pytest.raises(ValueError, match="interval"):
        random_effects_meta([0.1, 0.2], [0.01, 0.01], interval="dl")


def test_meta_p_is_not_small_when_runs_disagree_in_sign():
    v = spearman_z_var(np.full(5, 1000))
    z = fisher_z([-0.7, 0.7, -0.6, 0.65, 0.0])
    hk, dl = random_effects_meta(z, v), random_effects_meta(z, v, interval="normal")
    assert hk.p_two_sided > 0.3 and dl.p_two_sided > 0.3, (hk, dl)
    assert hk.I2 > 0.99
    # one more positive run: the fixed-effect (inverse-variance, tau^2 = 0) z test
    # calls it certain, the random-effects test does not
    z = fisher_z([-0.7, 0.7, -0.6, 0.65, 0.3])
    w = 1 / v
    fixed = (w * z).sum() / w.sum()
    p_fixed = 2 * sps.norm.sf(abs(fixed) * math.sqrt(w.sum()))
    assert p_fixed < 1e-6
    assert random_effects_meta(z, v).p_two_sided > 0.3


# ------------------------------------------------------------------ multiplicity


def test_holm_by_hand_and_nan():
    p = [0.01, 0.04, np.nan, 0.03, 0.005]
    # ascending 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> max 0.06
    out = holm(p)
    assert out[[0, 1, 3, 4]] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert math.isnan(out[2])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert holm([]).size == 0


def test_holm_equals_closed_testing_with_bonferroni():
    # Holm = closed testing with Bonferroni local tests: adjusted p_i = max over
    # subsets S containing i of min(1, |S| min_{j in S} p_j)
    rng = np.random.default_rng(5)
    p = rng.uniform(0, 0.2, 6)
    ref = [
        max(min(1.0, len(s) * p[list(s)].min()) for r in range(1, 7)
            for s in itertools.combinations(range(6), r) if i in s)
        for i in range(6)
    ]  # fmt: skip
    assert holm(p) == pytest.approx(ref)


def test_attainable_and_mc_permutations():
    assert attainable(1 / 126, 0.05, family_size=6)  # 0.0079 <= 0.0083
    assert not attainable(1 / 126, 0.05, family_size=7)
    assert not attainable(1 / 10, 0.05)
    assert attainable(1 / 20, 0.05)
    assert not attainable(math.nan, 0.05)
    assert mc_permutations(6, 0.05) == 1000
    b = mc_permutations(70, 0.05)
    assert b == 2800 and 1 / (b + 1) < 0.05 / 70
    assert mc_permutations(70, 0.05, base=5000) == 5000


# ------------------------------------------------------------- permutation tests


def _within_minus_cross(sim: np.ndarray):
    """Statistic on a run x run similarity matrix: mean same-label minus mean cross."""
    off = ~np.eye(sim.shape[0], dtype=bool)

    def stat(groups):
        same = (groups[:, :, None] == groups[:, None, :]) & off
        cross = groups[:, :, None] != groups[:, None, :]
        return (sim * same).sum((1, 2)) / same.sum((1, 2)) - (sim * cross).sum((1, 2)) / cross.sum((1, 2))

    return stat


def test_distinct_splits():
    assert distinct_splits(5, 5, symmetric=True) == 126
    assert distinct_splits(5, 5) == 252
    assert distinct_splits(3, 3, symmetric=True) == 10
    assert distinct_splits(3, 5, symmetric=True) == 56


@pytest.mark.parametrize(
    "n_a,n_b,symmetric,count", [(5, 5, True, 126), (3, 3, True, 10), (3, 3, False, 20), (2, 4, True, 15)]
)
def test_label_assignments_enumerate_distinct_splits(n_a, n_b, symmetric, count):
    g = label_assignments(n_a, n_b, symmetric=symmetric)
    assert g.shape == (count, n_a + n_b)
    assert g[0].tolist() == [True] * n_a + [False] * n_b
    assert (g.sum(1) == n_a).all()
    keys = {tuple(r) for r in g.tolist()}
    assert len(keys) == count
    if symmetric and n_a == n_b:  # no split appears with its labels swapped
        assert g[:, 0].all() and not keys & {tuple(~r) for r in g}


def test_planted_separation_reaches_p_min():
    sim = np.full((10, 10), 0.1)
    sim[:5, :5] = sim[5:, 5:] = 0.6
    stat = _within_minus_cross(sim)
    sym = permutation_p(stat, 5, 5, "greater", symmetric=True)
    assert sym == (pytest.approx(1 / 126), 126, pytest.approx(1 / 126))
    assert permutation_p(stat, 5, 5, "greater").p == pytest.approx(1 / 126)  # 2 of 252
    assert attainable(sym.p_min, 0.05, family_size=6)
    small = np.full((6, 6), 0.1)
    small[:3, :3] = small[3:, 3:] = 0.6
    res = permutation_p(_within_minus_cross(small), 3, 3, symmetric=True)
    assert res == (pytest.approx(0.1), 10, pytest.approx(0.1))
    assert not attainable(res.p_min, 0.05)  # 3 + 3 seeds can never reach 0.05


def test_permutation_p_equals_brute_force_count():
    x = np.random.default_rng(7).normal(size=7)

    def stat(groups):
        return (groups * x).sum(1) / 3 - (~groups * x).sum(1) / 4

    obs = x[:3].mean() - x[3:].mean()
    null = np.array([x[list(c)].mean() - np.delete(x, c).mean() for c in itertools.combinations(range(7), 3)])
    g, le = np.mean(null >= obs - 1e-12), np.mean(null <= obs + 1e-12)
    assert permutation_p(stat, 3, 4, "greater").p == pytest.approx(g)
    assert permutation_p(stat, 3, 4, "less").p == pytest.approx(le)
    two = permutation_p(stat, 3, 4, "two-sided")
    assert two.p == pytest.approx(min(1, 2 * min(g, le))) and two.p_min == pytest.approx(2 / 35)


def test_permutation_p_monte_carlo_and_guards():
    n = 20  # C(20, 10) / 2 = 92378 > MAX_EXACT: Monte-Carlo
    sim = np.full((n, n), 0.1)
    sim[:10, :10] = sim[10:, 10:] = 0.6
    b = mc_permutations(70, 0.05)
    stat, rng = _within_minus_cross(sim), np.random.default_rng(1)
    res = permutation_p(stat, 10, 10, symmetric=True, n_random=b, rng=rng)
    assert res.n_distinct == 92378 and res.p_min == pytest.approx(1 / (b + 1))
    assert res.p <= 3 / (b + 1) and attainable(res.p_min, 0.05, 70)
    g = label_assignments(10, 10, n_random=50, rng=np.random.default_rng(2))
    assert g.shape == (51, 20) and g[0, :10].all() and (g.sum(1) == 10).all()

    def lopsided(groups):  # not symmetric under swapping labels
        return (groups * np.arange(6)).sum(1).astype(float)

    with pytest.raises(ValueError, match="labels swap"):
        permutation_p(lopsided, 3, 3, symmetric=True)
    nan_obs = permutation_p(lambda g: np.where(g[:, 0] & g[:, 1], np.nan, 1.0), 2, 2)
    assert math.isnan(nan_obs.p)


def test_percentile_interval():
    x = np.r_[np.arange(101.0), np.nan]
    assert percentile_interval(x, level=0.9) == pytest.approx((5.0, 95.0))
    assert all(math.isnan(v) for v in percentile_interval([np.nan]))


# ------------------------------------------------------------ coverage simulations


def _coverage(lows, highs, truth) -> float:
    lows, highs = np.asarray(lows), np.asarray(highs)
    assert np.isfinite(lows).all() and np.isfinite(highs).all()
    return float(np.mean((lows <= truth) & (truth <= highs)))


@pytest.mark.parametrize("n_seeds", [3, 5])
@pytest.mark.parametrize("sigma_u", [1.0, 0.3])
def test_coverage_jackknife_pair_mean(n_seeds, sigma_u):
    """h(i, j) = mu + u_i + u_j + e_ij; statistic = mean over seed pairs i < j."""
    rng = np.random.default_rng(100 + n_seeds)
    mu = 0.3
    i, j = np.triu_indices(n_seeds, 1)
    u = rng.normal(0, sigma_u, (N_SIM, n_seeds))
    h = mu + u[:, i] + u[:, j] + rng.normal(0, 1.0, (N_SIM, i.size))
    lows, highs = [], []
    for row in h:
        jk = jackknife(n_seeds, lambda keep, row=row: row[keep[i] & keep[j]].mean())
        lo, hi = t_ci(jk.estimate, jk.se, jk.df)
        lows.append(lo)
        highs.append(hi)
    cov = _coverage(lows, highs, mu)
    assert 0.93 <= cov <= 0.995, f"coverage {cov:.4f} (S={n_seeds}, sigma_u={sigma_u}, sigma_e=1)"


@pytest.mark.parametrize("n_seeds", [3, 5])
def test_coverage_jackknife_within_minus_cross(n_seeds):
    """Runs a_s, b_s per seed s; within pairs (a_i, a_j), (b_i, b_j); cross pairs
    (a_i, b_j) for all i, j. Run effects differ between the within and cross roles and
    the two runs of a seed share a seed effect, so nothing cancels."""
    rng = np.random.default_rng(200 + n_seeds)
    s, mu_w, mu_c = n_seeds, 0.40, 0.25
    iw, jw = np.triu_indices(s, 1)
    ic, jc = np.indices((s, s)).reshape(2, -1)
    shared = rng.normal(0, 1, (N_SIM, 1, s))
    v = math.sqrt(0.5) * shared + math.sqrt(0.5) * rng.normal(0, 1, (N_SIM, 2, s))  # (sim, arch, seed)
    c = 0.5 * v + rng.normal(0, 0.5, v.shape)
    within = mu_w + v[:, :, iw] + v[:, :, jw] + rng.normal(0, 0.5, (N_SIM, 2, iw.size))
    cross = mu_c + c[:, 0, ic] + c[:, 1, jc] + rng.normal(0, 0.5, (N_SIM, ic.size))
    lows, highs = [], []
    for w, x in zip(within, cross):

        def stat(keep, w=w, x=x):
            return w[:, keep[iw] & keep[jw]].mean() - x[keep[ic] & keep[jc]].mean()

        jk = jackknife(s, stat)
        lo, hi = t_ci(jk.estimate, jk.se, jk.df)
        lows.append(lo)
        highs.append(hi)
    cov = _coverage(lows, highs, mu_w - mu_c)
    assert 0.93 <= cov <= 0.995, f"coverage {cov:.4f} (S={n_seeds})"


@pytest.mark.parametrize("n_seeds", [3, 5])
def test_coverage_t_interval_per_run(n_seeds):
    rng = np.random.default_rng(300 + n_seeds)
    x = 0.7 + rng.normal(0, 0.05, (N_SIM, n_seeds))
    rs = [t_interval(row) for row in x]
    cov = _coverage([r.low for r in rs], [r.high for r in rs], 0.7)
    assert 0.93 <= cov <= 0.97, f"coverage {cov:.4f} (S={n_seeds})"


@pytest.mark.parametrize("n_samples", [(800, 1000, 1200, 1400, 1500), (100, 200, 400, 800, 1600)])
@pytest.mark.parametrize("tau", [0.05, 0.2])
def test_coverage_meta_hartung_knapp(n_samples, tau):
    """k = 5 runs, true Fisher z varies between runs (tau), each observed with
    sampling variance 1.06 / (n - 3)."""
    rng = np.random.default_rng(400 + int(100 * tau) + n_samples[0])
    z0 = fisher_z(0.4)
    v = spearman_z_var(np.array(n_samples))
    y = z0 + rng.normal(0, tau, (N_SIM, 5)) + rng.normal(0, np.sqrt(v), (N_SIM, 5))
    ms = [random_effects_meta(row, v) for row in y]
    cov = _coverage([m.low for m in ms], [m.high for m in ms], z0)
    assert cov >= 0.90, f"HK coverage {cov:.4f} (tau={tau}, n={n_samples})"
