"""The ``stats`` section of the config as a dataclass (defaults: the schema's)."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from retention.config import fill_section, schema_choices, schema_default, section_defaults

#: the rank scores of "most forgotten" (docs/method.md section 6), as the schema lists them;
#: every one is oriented so that a higher value means more forgotten
RANK_SCORES = schema_choices("stats", "rank_score")
#: the rank scores read from a definition's soft counterpart (soft_lambda, soft_mean_retention)
SOFT_SCORES = ("soft_lambda", "mean_p_true_since_learned")
_DEFAULTS = section_defaults("stats")


@dataclass(frozen=True)
class StatsConfig:
    """Statistics settings: the config's ``stats`` section (each field's default is the
    schema's, workflow/schemas/config.schema.yaml, where its range and meaning are written)
    and ``lambda_max`` from ``retention``.

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

    top_q: float = _DEFAULTS["top_q"]
    sensitivity_q: tuple[float, ...] = tuple(_DEFAULTS["sensitivity_q"])
    r2_min: float = _DEFAULTS["r2_min"]
    min_samples: int = _DEFAULTS["min_samples"]
    rank_score: str = _DEFAULTS["rank_score"]
    tie_draws: int = _DEFAULTS["tie_draws"]
    bootstrap: int = _DEFAULTS["bootstrap"]
    permutations: int = _DEFAULTS["permutations"]
    spearman_permutation_below: int = _DEFAULTS["spearman_permutation_below"]
    equivalence_bound: float = _DEFAULTS["equivalence_bound"]
    null_draws: int = _DEFAULTS["null_draws"]
    alpha: float = _DEFAULTS["alpha"]
    meta_interval: str = _DEFAULTS["meta_interval"]
    seed: int = _DEFAULTS["seed"]
    lambda_max: float = schema_default("retention", "lambda_max")

    @classmethod
    def from_mapping(cls, values: Mapping, lambda_max: float | None = None) -> StatsConfig:
        """Build from a ``config["stats"]`` mapping: absent keys take the schema's defaults,
        an unknown key or a value out of its range is a ConfigError naming the key."""
        section = fill_section(values, "stats")
        section["sensitivity_q"] = tuple(float(q) for q in section["sensitivity_q"])
        if lambda_max is not None:
            section["lambda_max"] = float(lambda_max)
        return cls(**section)

    def for_nulls(self) -> StatsConfig:
        """The settings the null runs are computed with: a tenth of the tie draws (their
        spread over null draws is what matters, and it dwarfs the tie-break noise)."""
        return replace(self, tie_draws=max(1, self.tie_draws // 10))


def rng_for(cfg: StatsConfig, *key) -> np.random.Generator:
    """A Generator seeded by ``cfg.seed`` and a stable key, so that every quantity gets the
    same draws however many others were computed before it."""
    tag = zlib.crc32("|".join(str(k) for k in key).encode())
    return np.random.default_rng([int(cfg.seed), tag])
