"""Every finding, declared once (the registry).

Each entry names its estimator, its unit of replication, its test, whether it is a
primary hypothesis (in the Holm family of its dataset) and the paper's claim it is judged
against, whether it is recomputed on null runs, its own columns and the figure that draws
it. ``summary.csv``, ``findings.csv``/``.md``, the robustness table, the paper values
(``retention/paper_values.csv``, keyed by id) and the figures are derived from this list.
To add a finding: write an estimator ``(StatsInput, StatsConfig) -> list[Estimate]`` and
add one entry here (docs/architecture.md).
"""

from __future__ import annotations

import math

from . import f1, f2, f3, f4, f5, samples, scores
from .estimate import Claim, Finding

FINDINGS: tuple[Finding, ...] = (
    # ---------------------------------------------------------------- primary
    Finding(
        id="F1.difference",
        group="F1",
        label="F1 top-{q:.0%} Jaccard, within minus cross architecture ({arch} vs {arch_b})",
        estimate=f1.difference,
        unit="seed",
        test="one-sided t over seeds (jackknife): within > cross",
        primary=True,
        null=True,
        claim=Claim(
            "greater",
            "the most-forgotten samples depend on the architecture: runs of one architecture agree more than runs of two",
        ),
        columns=("q", "within", "cross", "chance"),
        figure="jaccard",
        limits=(-1.0, 1.0),
    ),
    Finding(
        id="F2.arch_difference",
        group="F2",
        label="F2 mean R2 {arch} minus {arch_b}, samples fitted in both",
        estimate=f2.arch_difference,
        unit="seed",
        test="paired t over seeds, two-sided",
        primary=True,
        null=True,
        claim=Claim(
            "differs",
            "the decay model fits the architectures differently well (DeiT-S better than ResNet-18)",
        ),
        columns=("mean_a", "mean_b"),
        figure="r2",
        uses_score=False,
    ),
    Finding(
        id="F3.within",
        group="F3",
        label="F3 Spearman of {score} across seeds ({arch})",
        estimate=f3.within,
        unit="seed",
        test="TOST over seeds (jackknife t) against the equivalence bound",
        primary=True,
        null=True,
        claim=Claim("equivalent", "per-sample forgetting is not stable across seeds (rho about 0)"),
        columns=("bound", "p_zero"),
        figure="seed_stability",
        limits=(-1.0, 1.0),
    ),
    Finding(
        id="F5.meta",
        group="F5",
        label="F5 Spearman of loss at t = 0 and {score}, all runs",
        estimate=f5.meta,
        unit="seed",
        test="random-effects meta-analysis of per-run Fisher z, one-sided",
        primary=True,
        null=True,
        claim=Claim("greater", "the loss after head warmup predicts later forgetting (positive rho)"),
        columns=("tau2", "i2", "rho_min", "rho_max"),
        figure="warmup_loss",
        limits=(-1.0, 1.0),
    ),
    Finding(
        id="F6.heldout",
        group="F6",
        label="F6 spaced minus random, final held-out accuracy ({arch})",
        estimate=None,  # the sampler stage (retention.sampler.sampler_estimates)
        unit="seed",
        test="one-sided paired t over seeds: improvement below the margin",
        primary=True,
        claim=Claim("not_greater", "a spaced-repetition sampler does not beat random sampling"),
        columns=("bound", "p_zero", "mean_random", "mean_spaced"),
        figure="sampler",
        uses_score=False,
        limits=(-1.0, 1.0),
    ),
    # ---------------------------------------------------------------- exploratory
    Finding(
        id="F1.pooled",
        group="F1",
        label="F1 top-{q:.0%} Jaccard, seed-pooled ranking ({arch} vs {arch_b})",
        estimate=f1.pooled,
        unit="sample",
        test="hypergeometric, one-sided: overlap above chance",
        null=True,
        columns=("q", "k", "chance", "draw_min", "draw_max"),
        figure="jaccard",
        limits=(0.0, 1.0),
    ),
    Finding(
        id="F1.cross",
        group="F1",
        label="F1 top-{q:.0%} Jaccard across architectures, seed pairs ({arch} vs {arch_b})",
        estimate=f1.cross,
        unit="seed",
        test="two-sided t over seeds (jackknife) against chance",
        columns=("q", "chance"),
        figure="jaccard",
        limits=(0.0, 1.0),
    ),
    Finding(
        id="F1.within",
        group="F1",
        label="F1 top-{q:.0%} Jaccard within {arch}, seed pairs",
        estimate=f1.within,
        unit="seed",
        test="one-sided t over seeds (jackknife): above chance; TOST of the excess over chance (p_tost)",
        columns=("q", "chance", "bound", "p_tost"),
        figure="jaccard",
        limits=(0.0, 1.0),
    ),
    Finding(
        id="F1.label_permutation",
        group="F1",
        label="F1 within minus cross Jaccard, run-label permutation ({arch} vs {arch_b})",
        estimate=f1.label_permutation,
        unit="seed",
        test="permutation of the architecture labels over the distinct splits of the runs",
        columns=("splits", "p_min"),
    ),
    Finding(
        id="F1.sensitivity",
        group="F1",
        label="F1 {case} ({arch} vs {arch_b})",
        estimate=f1.sensitivity,
        unit="seed",
        test="none (a map of the estimate over q and subsets)",
        columns=("q", "subset", "statistic"),
        figure="jaccard",
    ),
    Finding(
        id="F2.arch_mean",
        group="F2",
        label="F2 mean R2 ({arch})",
        estimate=f2.arch_mean,
        unit="seed",
        test="t interval over seeds",
        figure="r2",
        uses_score=False,
        limits=(-math.inf, 1.0),
    ),
    Finding(
        id="F2.fraction_defined",
        group="F2",
        label="F2 share of eligible samples with a defined R2 ({arch})",
        estimate=f2.fraction_defined,
        unit="seed",
        test="t interval over seeds",
        figure="r2",
        uses_score=False,
        limits=(0.0, 1.0),
    ),
    Finding(
        id="F2.paired_by_sample",
        group="F2",
        label="F2 R2 {arch} minus {arch_b}, per sample (mean over seeds)",
        estimate=f2.paired_by_sample,
        unit="sample",
        test="Wilcoxon signed-rank over samples",
        uses_score=False,
    ),
    Finding(
        id="F3.cross",
        group="F3",
        label="F3 Spearman of {score} across architectures ({arch} vs {arch_b})",
        estimate=f3.cross,
        unit="seed",
        test="two-sided t over seeds (jackknife)",
        figure="seed_stability",
        limits=(-1.0, 1.0),
    ),
    Finding(
        id="F4.consistency",
        group="F4",
        label="F4 class forgetting across seeds ({arch})",
        estimate=f4.consistency,
        unit="seed",
        test="two-sided t over seeds (jackknife)",
        columns=("n_classes", "most_forgotten", "least_forgotten"),
        figure="class_forgetting",
        limits=(-1.0, 1.0),
    ),
    Finding(
        id="F4.cross",
        group="F4",
        label="F4 class forgetting across architectures ({arch} vs {arch_b})",
        estimate=f4.cross,
        unit="seed",
        test="two-sided t over seeds (jackknife)",
        columns=("n_classes",),
        figure="class_forgetting",
        limits=(-1.0, 1.0),
    ),
    Finding(
        id="F4.similarity",
        group="F4",
        label="F4 class forgetting vs {case} ({arch})",
        estimate=f4.similarity,
        unit="class",
        test="Spearman over classes",
        columns=("n_classes",),
        figure="class_forgetting",
        limits=(-1.0, 1.0),
    ),
    Finding(
        id="F5.meta_by_arch",
        group="F5",
        label="F5 Spearman of loss at t = 0 and {score} ({arch})",
        estimate=f5.meta_by_arch,
        unit="seed",
        test="random-effects meta-analysis of per-run Fisher z, two-sided",
        columns=("tau2", "i2", "rho_min", "rho_max"),
        figure="warmup_loss",
        limits=(-1.0, 1.0),
    ),
    Finding(
        id="F5.subsets",
        group="F5",
        label="F5 Spearman of loss at t = 0 and {score}, {case}",
        estimate=f5.subsets,
        unit="seed",
        test="random-effects meta-analysis of per-run Fisher z, two-sided",
        columns=("tau2", "i2", "rho_min", "rho_max"),
        limits=(-1.0, 1.0),
    ),
    Finding(
        id="F6.retention",
        group="F6",
        label="F6 spaced minus random, final train retention ({arch})",
        estimate=None,
        unit="seed",
        test="paired t over seeds, two-sided",
        columns=("mean_random", "mean_spaced"),
        figure="sampler",
        uses_score=False,
        limits=(-1.0, 1.0),
    ),
    Finding(
        id="Scores.vs_rank_score",
        group="Scores",
        label="Scores: {case} vs {score} ({arch})",
        estimate=scores.vs_rank_score,
        unit="seed",
        test="random-effects meta-analysis of per-run Fisher z, two-sided",
        columns=("tau2", "i2", "rho_min", "rho_max"),
        figure="alternative_scores",
        limits=(-1.0, 1.0),
    ),
    Finding(
        id="Scores.stability",
        group="Scores",
        label="Scores: {case} across seeds ({arch})",
        estimate=scores.stability,
        unit="seed",
        test="two-sided t over seeds (jackknife)",
        figure="alternative_scores",
        limits=(-1.0, 1.0),
    ),
    Finding(
        id="Fit.aic",
        group="Fit",
        label="Fit: {case}, share of fitted samples ({arch})",
        estimate=scores.aic_share,
        unit="seed",
        test="t interval over seeds",
        uses_score=False,
        limits=(0.0, 1.0),
    ),
    Finding(
        id="Runs.accuracy",
        group="Runs",
        label="Held-out accuracy at {case} ({arch})",
        estimate=samples.accuracy,
        unit="seed",
        test="t interval over seeds",
        columns=("chance", "near_chance", "stage", "rise", "still_rising"),
        uses_score=False,
        limits=(0.0, 1.0),
    ),
    Finding(
        id="Fit.bounds",
        group="Fit",
        label="Fit: share of samples at {case} ({arch})",
        estimate=scores.lambda_at_bound,
        unit="seed",
        test="t interval over seeds",
        uses_score=False,
        limits=(0.0, 1.0),
    ),
)


def by_id(findings: tuple[Finding, ...] = FINDINGS) -> dict[str, Finding]:
    """The registry keyed by id (duplicate ids are an error)."""
    out: dict[str, Finding] = {}
    for f in findings:
        if f.id in out:
            raise ValueError(f"finding id {f.id!r} is declared twice")
        out[f.id] = f
    return out


def extra_columns(findings: tuple[Finding, ...] = FINDINGS) -> list[str]:
    """Every finding's own columns, in registry order (the tail of summary.csv)."""
    return list(dict.fromkeys(c for f in findings for c in f.columns))
