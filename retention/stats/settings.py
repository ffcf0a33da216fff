"""The ``stats`` section of the config as a dataclass (defaults: the schema's)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, fields, replace
from typing import Mapping

import numpy as np

from retention.errors import ConfigError

#: the rank scores of "most forgotten" (docs/method.md section 6); every one is oriented so that
#: a higher value means more forgotten. What each measures: docs/method.md.
RANK_SCORES = ("lambda", "forgetting_amount", "area", "soft_lambda", "mean_p_true_since_learned")
#: the rank scores read from a definition's soft counterpart (soft_lambda, soft_mean_retention)
SOFT_SCORES = ("soft_lambda", "mean_p_true_since_learned")
META_INTERVALS = ("hartung_knapp", "normal")


@dataclass(frozen=True)
class StatsConfig:
    """Statistics settings (config ``stats``; ``lambda_max`` comes from ``retention``).

    top_q / sensitivity_q: the share of most-forgotten samples in a rank set; r2_min:
    the R^2 cut of the sensitivity subset; min_samples: fewest samples a set statistic
    is computed from; rank_score: the score that ranks samples (``RANK_SCORES``);
    tie_draws: random tie-breaks at the cut-off of an exact-k set; bootstrap /
    permutations: resamples of per-sample intervals and Monte-Carlo permutation tests;
    spearman_permutation_below: fewer pairs get a permutation p for Spearman;
    equivalence_bound: the TOST bound of "not stable" claims; null_draws: null runs per
    run and kind; alpha: the family-wise level of the primary hypotheses (Holm);
    meta_interval: interval of the random-effects meta-analysis; seed: every draw.
    """

    top_q: float = 0.10
    sensitivity_q: tuple[float, ...] = (0.05, 0.10, 0.20)
    r2_min: float = 0.6
    min_samples: int = 30
    rank_score: str = "lambda"
    tie_draws: int = 200
    bootstrap: int = 1000
    permutations: int = 1000
    spearman_permutation_below: int = 30
    equivalence_bound: float = 0.1
    null_draws: int = 20
    alpha: float = 0.05
    meta_interval: str = "hartung_knapp"
    seed: int = 0
    lambda_max: float = 5.0

    @classmethod
    def from_mapping(cls, values: Mapping, lambda_max: float | None = None) -> "StatsConfig":
        """Build from a ``config["stats"]`` mapping (missing keys take the defaults);
        unknown keys or bad values raise ConfigError naming the key."""
        known = {f.name for f in fields(cls)} - {"lambda_max"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"config key 'stats.{unknown[0]}' is unknown; known: {sorted(known)}")
        kw = dict(values)
        if "sensitivity_q" in kw:
            kw["sensitivity_q"] = tuple(float(q) for q in kw["sensitivity_q"])
        if lambda_max is not None:
            kw["lambda_max"] = float(lambda_max)
        cfg = cls(**kw)
        cfg.check()
        return cfg

    def for_nulls(self) -> "StatsConfig":
        """The settings the null runs are computed with: a tenth of the tie draws (their
        spread over null draws is what matters, and it dwarfs the tie-break noise)."""
        return replace(self, tie_draws=max(1, self.tie_draws // 10))

    def check(self) -> None:
        """ConfigError naming the first key with a value outside its range."""
        for q in (self.top_q, *self.sensitivity_q):
            if not 0 < float(q) <= 1:
                raise ConfigError(
                    f"config key 'stats.top_q'/'stats.sensitivity_q': q = {q} is outside (0, 1]"
                )
        checks = {
            "r2_min": 0 <= self.r2_min <= 1,
            "rank_score": self.rank_score in RANK_SCORES,
            "meta_interval": self.meta_interval in META_INTERVALS,
            "alpha": 0 < self.alpha < 1,
            "equivalence_bound": self.equivalence_bound > 0,
            "tie_draws": self.tie_draws >= 1,
            "bootstrap": self.bootstrap >= 10,
            "permutations": self.permutations >= 10,
            "null_draws": self.null_draws >= 0,
            "min_samples": self.min_samples >= 2,
        }
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"config key 'stats.{key}': {getattr(self, key)!r} is out of range")


def rng_for(cfg: StatsConfig, *key) -> np.random.Generator:
    """A Generator seeded by ``cfg.seed`` and a stable key, so that every quantity gets the
    same draws however many others were computed before it."""
    tag = zlib.crc32("|".join(str(k) for k in key).encode())
    return np.random.default_rng([int(cfg.seed), tag])
