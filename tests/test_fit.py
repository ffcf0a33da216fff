"""Tests of retention.fitting.fit: the vectorised fits against scipy's curve_fit, one trace at a time."""

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import OptimizeWarning, curve_fit

from retention.fitting import fit as F
from retention.fitting import fitmodels, fitsolve
from retention.fitting.simulate import simulate_traces
from retention.fitting.traces import build_traces, load_traces
from retention.io import save_npz

ROOT = Path(__file__).resolve().parents[1]
LAM_MAX = 5.0


def decay(t, lam, b):
    return b + (1.0 - b) * np.exp(-lam * t)


def power(t, beta, b):
    return b + (1.0 - b) * (1.0 + t) ** (-beta)


def raw(t, lam, a, c):
    return c + a * np.exp(-lam * t)


def curve_fit_each(model, y, mask, p0, bounds):
    """Reference: bounded curve_fit (trf) per trace; returns params (n, k) and SSE (n,)."""
    n = y.shape[0]
    params = np.full((n, len(p0)), np.nan)
    sse = np.full(n, np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        for i in range(n):
            yi = y[i, mask[i]]
            ti = np.flatnonzero(mask[i]).astype(float)
            try:
                p, _ = curve_fit(
                    model, ti, yi, p0=p0, bounds=bounds, ftol=1e-12, xtol=1e-12, gtol=1e-12, max_nfev=5000
                )
            except RuntimeError:
                continue
            params[i] = p
            sse[i] = np.sum((yi - model(ti, *p)) ** 2)
    return params, sse


def _simulated_half(n, seed, label):
    """Up to n // 2 fitted traces of definition ``label`` from a simulated run: their y and
    mask, a Generator for the rest, how many rows the rest needs, and the trace length."""
    rng = np.random.default_rng(seed)
    arrays = simulate_traces(n_samples=n, n_heldout=5, seed=seed)
    ts = build_traces(arrays["correct"], arrays["p_true"], arrays["t"], label)
    keep = np.flatnonzero(ts.status == "fitted")[: n // 2]
    return ts.y[keep], ts.mask[keep], rng, n - keep.size, ts.y.shape[1]


def binary_traces(n, seed):
    """Half since_learned traces of a simulated run, half uniform random 0/1 rows (y(0) = 1)."""
    y1, m1, rng, k, length = _simulated_half(n, seed, "since_learned")
    y2 = (rng.random((k, length)) < rng.random((k, 1))).astype(float)
    y2[:, 0] = 1.0
    m2 = np.arange(length)[None, :] < rng.integers(3, length + 1, k)[:, None]
    return np.vstack([y1, y2]), np.vstack([m1, m2])


def soft_traces(n, seed):
    """Half since_learned_soft traces of a simulated run, half noisy planted decays in [0, 1]."""
    y1, m1, rng, k, length = _simulated_half(n, seed, "since_learned_soft")
    tau = np.arange(length)
    lam = np.exp(rng.uniform(np.log(0.02), np.log(4.0), (k, 1)))
    b = rng.uniform(0, 1, (k, 1))
    y2 = np.clip(
        b + (1 - b) * np.exp(-lam * tau) + rng.uniform(0.01, 0.2, (k, 1)) * rng.standard_normal((k, length)),
        0,
        1,
    )
    m2 = np.arange(length)[None, :] < rng.integers(3, length + 1, k)[:, None]
    return np.vstack([y1, y2]), np.vstack([m1, m2])


@pytest.mark.parametrize("kind", ["binary", "soft"])
def test_decay_fit_matches_or_beats_curve_fit(kind):
    y, mask = (binary_traces if kind == "binary" else soft_traces)(1500, seed=7)
    ours = F.fit_decay(y, mask, LAM_MAX)
    ref, ref_sse = curve_fit_each(decay, y, mask, (0.5, 0.5), ([0.0, 0.0], [LAM_MAX, 1.0]))
    # our SSE is never worse than curve_fit's (up to 1e-9) on at least 99.9 % of traces
    assert np.mean(ours.sse <= ref_sse + 1e-9) >= 0.999
    # and is strictly better on a good share: curve_fit stops in local minima, we do not
    assert np.sum(ours.sse < ref_sse - 1e-6) > 0
    # wherever curve_fit found an interior optimum (the same one: same SSE), lam agrees
    cf_lam, cf_b = ref[:, 0], ref[:, 1]
    interior = (
        (cf_lam > 1e-2)
        & (cf_lam < 0.95 * LAM_MAX)
        & (cf_b > 1e-3)
        & (cf_b < 1 - 1e-3)
        & (np.abs(ours.sse - ref_sse) <= 1e-9 * np.maximum(1.0, ref_sse))
    )
    assert interior.sum() > 200
    rel = np.abs(ours.lam[interior] - cf_lam[interior]) / cf_lam[interior]
    assert rel.max() <= 1e-3
    assert np.abs(ours.b[interior] - cf_b[interior]).max() <= 1e-3
    # bounds respected
    assert np.all((ours.lam >= 0) & (ours.lam <= LAM_MAX) & (ours.b >= 0) & (ours.b <= 1))


def test_power_fit_matches_or_beats_curve_fit():
    y, mask = soft_traces(400, seed=3)
    beta_max = F.default_beta_max(LAM_MAX)
    assert beta_max == pytest.approx(LAM_MAX / np.log(2))
    ours = F.fit_power(y, mask, lambda_max=LAM_MAX)
    _, ref_sse = curve_fit_each(power, y, mask, (0.5, 0.5), ([0.0, 0.0], [beta_max, 1.0]))
    assert np.mean(ours.sse <= ref_sse + 1e-9) >= 0.999
    assert np.all((ours.lam >= 0) & (ours.lam <= beta_max + 1e-12))


@pytest.mark.parametrize("kind", ["binary", "soft"])
def test_raw_fit_matches_or_beats_curve_fit_within_bounds(kind):
    y, mask = (binary_traces if kind == "binary" else soft_traces)(500, seed=11)
    ours = F.fit_raw(y, mask, LAM_MAX)
    _, ref_sse = curve_fit_each(raw, y, mask, (0.5, 0.5, 0.5), ([0.0, -1.0, -np.inf], [LAM_MAX, 1.0, np.inf]))
    assert np.mean(ours.sse <= ref_sse + 1e-9) >= 0.999
    assert np.all(np.abs(ours.a) <= 1.0) and np.all((ours.lam >= 0) & (ours.lam <= LAM_MAX))
    # the forgetting score is lam where a > 0, else 0
    np.testing.assert_array_equal(ours.score, np.where(ours.a > 0, ours.lam, 0.0))
    # residuals recomputed from the parameters give the reported SSE
    t = np.arange(y.shape[1])
    model = ours.c[:, None] + ours.a[:, None] * np.exp(-ours.lam[:, None] * t)
    np.testing.assert_allclose(np.sum(np.where(mask, y - model, 0) ** 2, axis=1), ours.sse, atol=1e-10)


def test_raw_bound_on_a_is_active_and_optimal():
    """A step of size 3 needs a = 3 unconstrained; bounded, a = 1 and the SSE is the best with a = 1."""
    t = np.arange(20.0)
    y = np.vstack([0.2 + 3.0 * np.exp(-0.7 * t), 0.9 - 2.5 * np.exp(-0.3 * t)])
    mask = np.ones_like(y, dtype=bool)
    ours = F.fit_raw(y, mask, LAM_MAX)
    np.testing.assert_array_equal(ours.a, [1.0, -1.0])
    assert ours.score[0] == ours.lam[0] > 0 and ours.score[1] == 0.0
    # brute force over a fine lam grid with a at its bound and c optimal
    lams = np.linspace(0, LAM_MAX, 200001)
    for i, a in enumerate([1.0, -1.0]):
        e = np.exp(-np.outer(lams, t))
        c = (y[i] - a * e).mean(axis=1)
        sse = np.sum((y[i] - c[:, None] - a * e) ** 2, axis=1)
        assert ours.sse[i] <= sse.min() + 1e-12
    _, ref_sse = curve_fit_each(raw, y, mask, (0.5, 0.5, 0.5), ([0.0, -1.0, -np.inf], [LAM_MAX, 1.0, np.inf]))
    assert np.all(ours.sse <= ref_sse + 1e-9)


def test_planted_noise_free_recovered_exactly():
    lam = np.array([0.01, 0.05, 0.2, 0.7, 1.5, 3.0, 4.5])
    b = np.array([0.0, 0.3, 0.6, 0.9, 0.5, 0.2, 0.05])
    t = np.arange(33.0)
    y = b[:, None] + (1 - b[:, None]) * np.exp(-lam[:, None] * t)
    fit = F.fit_decay(y, np.ones_like(y, dtype=bool), LAM_MAX)
    np.testing.assert_allclose(fit.lam, lam, rtol=1e-6)
    np.testing.assert_allclose(fit.b, b, atol=1e-8)
    assert np.all(fit.sse < 1e-20)
    assert np.all(fit.r2 > 1 - 1e-12)
    beta = np.array([0.1, 0.8, 2.0])
    yp = b[:3, None] + (1 - b[:3, None]) * (1 + t) ** (-beta[:, None])
    pw = F.fit_power(yp, np.ones_like(yp, dtype=bool), lambda_max=LAM_MAX)
    np.testing.assert_allclose(pw.lam, beta, rtol=1e-6)


@pytest.mark.parametrize("lam,b", [(0.1, 0.5), (0.5, 0.8), (1.5, 0.3)])
def test_planted_noisy_recovered_within_sampling_error(lam, b):
    """Gaussian noise: the mean estimate is within 4 standard errors of the planted value."""
    rng = np.random.default_rng(int(lam * 100))
    n, t = 400, np.arange(33.0)
    y = b + (1 - b) * np.exp(-lam * t) + 0.01 * rng.standard_normal((n, t.size))
    fit = F.fit_decay(y, np.ones_like(y, dtype=bool), LAM_MAX)
    for est, true in ((fit.lam, lam), (fit.b, b)):
        se = est.std(ddof=1) / np.sqrt(n)
        assert abs(est.mean() - true) <= 4 * se + 1e-9
        assert est.std() < 0.1 * true  # and each estimate is close, too


def test_planted_binary_recovered_within_bootstrap_error():
    """Bernoulli traces with P(correct) = R(tau): the fit of the mean trace recovers lam and b."""
    lam, b, n = 0.3, 0.6, 4000
    rng = np.random.default_rng(5)
    t = np.arange(33.0)
    y = (rng.random((n, t.size)) < b + (1 - b) * np.exp(-lam * t)).astype(float)
    full = np.ones((1, t.size), dtype=bool)
    est = F.fit_decay(y.mean(axis=0)[None, :], full, LAM_MAX)
    boot = rng.integers(0, n, (200, n))
    means = np.stack([y[i].mean(axis=0) for i in boot])
    bs = F.fit_decay(means, np.ones_like(means, dtype=bool), LAM_MAX)
    assert abs(est.lam[0] - lam) <= 4 * bs.lam.std()
    assert abs(est.b[0] - b) <= 4 * bs.b.std()


def _fd(fn, lam, h=1e-6):
    fp, fm = fn(lam + h), fn(lam - h)
    return (fp[0] - fm[0]) / (2 * h), (fp[1] - fm[1]) / (2 * h)


def test_profile_derivatives_match_finite_differences():
    y, mask = soft_traces(60, seed=2)
    ym, m, x = fitsolve.prepare(y, mask, None)
    lam = np.linspace(0.05, 3.0, y.shape[0])
    n = m.sum(axis=1)
    yc = (ym - (ym.sum(axis=1) / n)[:, None]) * m
    for fn in (lambda u: fitmodels.decay_deriv(ym, m, x, u), lambda u: fitmodels.raw_deriv(yc, m, n, x, u)):
        f, d1, d2 = fn(lam)
        num1, num2 = _fd(fn, lam)
        ok = np.isfinite(num2)
        np.testing.assert_allclose(d1, num1, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(d2[ok], num2[ok], rtol=1e-3, atol=1e-4)


def test_edge_rows_constant_empty_short():
    L = 10
    y = np.zeros((7, L))
    mask = np.ones((7, L), dtype=bool)
    y[0] = 1.0  # all ones
    y[1] = 0.0  # all zeros (incl. tau = 0)
    y[2] = 0.4  # constant soft
    mask[3] = False  # no points
    mask[4, 1:] = False  # one point
    y[4, 0] = 1.0
    mask[5, 2:] = False  # two points
    y[5, :2] = [1.0, 0.0]
    y[6] = np.r_[1.0, np.zeros(L - 1)]  # an instant drop to 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no floating-point warning escapes
        fit = F.fit_decay(y, mask, LAM_MAX)
        raw_fit = F.fit_raw(y, mask, LAM_MAX)
        pw = F.fit_power(y, mask, lambda_max=LAM_MAX)
    assert fit.lam[0] == 0 and fit.b[0] == 1 and fit.sse[0] == 0 and np.isnan(fit.r2[0])
    assert np.isnan(fit.r2[1]) and np.isnan(fit.r2[2])  # constant rows: R^2 undefined
    # all zeros: R(0) = 1 is fixed (the tau = 0 point costs 1), the rest decays as fast as allowed
    assert fit.lam[1] == LAM_MAX and fit.b[1] == 0
    assert fit.sse[1] == pytest.approx(1.0 + np.sum(np.exp(-2 * LAM_MAX * np.arange(1, L))), rel=1e-12)
    # constant 0.4: also the fastest decay; b has its closed form there
    e = np.exp(-LAM_MAX * np.arange(L))
    b_star = np.sum((0.4 - e) * (1 - e)) / np.sum((1 - e) ** 2)
    assert fit.lam[2] == LAM_MAX and fit.b[2] == pytest.approx(b_star, rel=1e-12)
    assert fit.sse[2] == pytest.approx(np.sum((0.4 - e - b_star * (1 - e)) ** 2), rel=1e-12)
    assert np.isnan(fit.lam[3]) and np.isnan(fit.sse[3]) and fit.n_points[3] == 0
    assert fit.n_points[4] == 1 and fit.sse[4] == 0
    assert fit.n_points[5] == 2 and fit.sse[5] == pytest.approx(0.0, abs=1e-4)
    assert fit.lam[6] == LAM_MAX and fit.b[6] == 0.0  # the fastest decay allowed, to 0
    for f in (raw_fit, pw):
        assert np.isnan(f.sse[3]) and np.all(np.isfinite(f.sse[[0, 1, 2, 4, 5, 6]]))
    assert raw_fit.sse[1] == 0 and raw_fit.c[1] == 0 and raw_fit.score[1] == 0


def test_identical_rows_fitted_once_give_same_result():
    y, mask = binary_traces(200, seed=4)
    rep = np.repeat(np.arange(200), 3)
    big = F.fit_decay(y[rep], mask[rep], LAM_MAX)  # 600 rows, 200 distinct: deduplicated
    small = F.fit_decay(y, mask, LAM_MAX)
    np.testing.assert_array_equal(big.lam, small.lam[rep])
    np.testing.assert_array_equal(big.sse, small.sse[rep])


def test_aic_floor_and_formula():
    a = F.aic(np.array([0.0, 2.0, np.nan]), np.array([10, 10, 10]), 2)
    assert a[0] == pytest.approx(10 * np.log(1e-12) + 4)
    assert a[1] == pytest.approx(10 * np.log(0.2) + 4)
    assert np.isnan(a[2])
    assert np.isnan(F.aic(np.array([0.0]), np.array([0]), 2)[0])


# --------------------------------------------------------------------------- fits table


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "digits" / "resnet18" / "seed0" / "traces.npz"
    arrays = simulate_traces(n_samples=300, n_heldout=40, epochs=12, seed=3)
    # a few hand-made samples: always correct, never correct, learned at the last epochs
    c = arrays["correct"]
    t = arrays["t"]
    c[0, t >= 0] = True
    c[1, t >= 0] = False
    c[2, t >= 0] = False
    c[2, -1] = True
    c[3, t >= 0] = False
    c[3, -2:] = True
    save_npz(path, arrays)
    return path


def test_fit_table_columns_and_rows(run_file):
    traces = load_traces(run_file)
    defs = ["since_learned", "since_warmup", "raw", "conditional", "since_learned_soft"]
    table = F.fit_table(traces, defs, "since_learned", min_points=3, lambda_max=LAM_MAX)
    assert list(table.columns) == list(F.FIT_COLUMNS)
    assert len(table) == len(defs) * traces.n_samples
    assert table.loc[table.primary, "trace"].unique().tolist() == ["since_learned"]
    sl = table[table.trace == "since_learned"].set_index("sample_id")
    assert sl.loc[0, "status"] == "unforgettable" and sl.loc[0, "lambda"] == 0 and np.isnan(sl.loc[0, "r2"])
    assert (
        sl.loc[1, "status"] == "never_learned"
        and np.isnan(sl.loc[1, "lambda"])
        and np.isnan(sl.loc[1, "t_learn"])
    )
    assert sl.loc[2, "status"] == "too_short" and sl.loc[2, "n_points"] == 1 and sl.loc[2, "t_learn"] == 12
    assert sl.loc[3, "status"] == "too_short" and sl.loc[3, "n_points"] == 2
    fitted = table[table.status == "fitted"]
    assert fitted[["lambda", "b", "sse", "aic_exp", "aic_power"]].notna().all().all()
    assert (fitted["lambda"] >= 0).all() and (fitted["lambda"] <= LAM_MAX).all()
    excluded = table[table.status.isin(["never_learned", "too_short"])]
    assert excluded["lambda"].isna().all() and excluded["sse"].isna().all()
    # the decay rates in the table are those of fit_decay on the same traces
    ts = build_traces(traces.correct, traces.p_true, traces.t, "since_learned")
    rows = ts.status == "fitted"
    direct = F.fit_decay(ts.y[rows], ts.mask[rows], LAM_MAX)
    np.testing.assert_array_equal(sl["lambda"].to_numpy()[rows], direct.lam)
    # raw: the score is lambda where a > 0 else 0; never NaN for fitted samples
    rw = table[(table.trace == "raw") & (table.status == "fitted")]
    assert (rw["lambda"] >= 0).all()
    # soft: a continuous score for (nearly) every learned sample, from the free-amplitude
    # model c + a exp(-lam tau) (p_true at learning is not 1): the fit of fit_raw, few at
    # lambda_max, R^2 mostly positive; the primary rows carry it as soft_lambda / soft_r2
    soft = table[table.trace == "since_learned_soft"]
    assert (soft.status == "unforgettable").sum() == 0
    sts = build_traces(traces.correct, traces.p_true, traces.t, "since_learned_soft")
    assert sts.model == "raw"
    ok = sts.status == "fitted"
    raw = F.fit_raw(sts.y[ok], sts.mask[ok], LAM_MAX, tau=sts.tau)
    np.testing.assert_allclose(soft["lambda"].to_numpy()[ok], raw.score)
    np.testing.assert_allclose(sl["soft_r2"].to_numpy()[ok], raw.r2)
    fitted_soft = soft[soft.status == "fitted"]
    assert (fitted_soft["lambda"] == LAM_MAX).mean() < 0.3
    assert (fitted_soft["r2"] > 0).mean() > 0.8


def test_fit_table_rejects_unknown_definition(run_file):
    with pytest.raises(ValueError, match="unknown trace definition 'sideways'"):
        F.fit_table(load_traces(run_file), ["sideways"], "since_learned")


def _script(*args):
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fit_traces.py"), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_script_help():
    res = _script("--help")
    assert res.returncode == 0
    for word in ("--trace", "--soft", "--robustness", "--min-points", "--lambda-max", "traces", "output"):
        assert word in res.stdout


def test_script_runs_standalone(run_file, tmp_path):
    out = tmp_path / "fits.parquet"
    res = _script(
        run_file,
        out,
        "--robustness",
        "raw",
        "conditional",
        "since_learned_soft",
        "--min-points",
        "2",
        "--learned-after",
        "1",
    )
    assert res.returncode == 0, res.stderr
    table = pd.read_parquet(out)
    assert list(table.columns) == list(F.FIT_COLUMNS)
    assert table.trace.unique().tolist() == ["since_learned", "raw", "conditional", "since_learned_soft"]
    # without --learned-after, the schema's default (3 consecutive correct epochs)
    res = _script(run_file, tmp_path / "default.parquet")
    assert pd.read_parquet(tmp_path / "default.parquet").trace.unique().tolist() == ["since_learned_la3"]
    sl = table[table.trace == "since_learned"].set_index("sample_id")
    assert sl.loc[3, "status"] != "too_short"  # two points are enough with --min-points 2
    assert "digits/resnet18/seed0" in res.stderr  # the run is named in the log
    csv = tmp_path / "fits.csv"
    res = _script(run_file, csv, "--trace", "raw", "--soft")
    assert res.returncode == 0, res.stderr
    table = pd.read_csv(csv)
    assert table.trace.unique().tolist() == ["raw_soft"] and table.primary.all()


def test_script_bad_input_one_line_error(tmp_path):
    arrays = simulate_traces(n_samples=20, n_heldout=5, epochs=5, seed=0)
    del arrays["el2n"]
    bad = tmp_path / "traces.npz"
    save_npz(bad, arrays)
    res = _script(bad, tmp_path / "fits.parquet")
    assert res.returncode == 1
    assert "el2n" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "fits.parquet").exists()
    res = _script(
        ROOT / "tests" / "no_such_traces.npz", tmp_path / "fits.parquet", "--robustness", "sideways"
    )
    assert res.returncode == 1 and "sideways" in res.stderr
