"""The planted truths of the calibration benchmark (issue 24; docs/method.md, section 7b): the
study shapes (SIZES) and the scenarios (SCENARIOS), each a choice of process per
architecture, of the parts of the forgetting propensity, and of which claims it makes true
or false. :mod:`planted` generates a study from one scenario and one size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OCTDL_COUNTS = {"AMD": 1231, "DME": 147, "ERM": 155, "NO": 332, "RAO": 22, "RVO": 101, "VID": 76}
CLAIMS = ("MEMORY", "F1", "F2", "F3", "F5", "F6")


@dataclass(frozen=True)
class Size:
    """A study's shape: train samples, classes, architectures, seeds, epochs."""

    n_train: int
    n_classes: int
    archs: tuple[str, str]
    seeds: tuple[int, ...]
    warmup: int
    epochs: int  # E: t = 0..E
    imbalance: str = "balanced"  # or "octdl": OCTDL's class shares (56:1)
    # per architecture: (share learned at t = -W, at t = 0, plateau), held-out (t = -W, 0, E)
    learned: tuple[tuple[float, float, float], ...] = ((0.30, 0.74, 0.99), (0.33, 0.80, 0.99))
    heldout_acc: tuple[tuple[float, float, float], ...] = ((0.45, 0.72, 0.90), (0.50, 0.78, 0.93))

    @property
    def n_heldout(self) -> int:
        return self.n_train // 4


SIZES = {
    "demo": Size(1400, 10, ("cnn", "vit"), (0, 1, 2), 3, 20),
    "paper": Size(1400, 7, ("resnet18", "deit_small"), (0, 1, 2, 3, 4), 3, 32, imbalance="octdl"),
    "large": Size(6000, 200, ("resnet18", "deit_small"), (0, 1, 2, 3, 4), 3, 32),
}


@dataclass(frozen=True)
class Scenario:
    """A planted truth. ``process``: per architecture (first = CNN, second = ViT) one of
    chain / iid / curve / flat (module docstring). ``weights``: the forgetting propensity's
    parts (difficulty, shared per sample, per architecture, per run; normalised to unit
    variance). ``order_noise``: share of run noise in the order inside the fast and slow
    groups. ``set_jaccard``: fix each architecture's fast set over its seeds with exactly
    this Jaccard between the two (None: each run's top 10%). ``claims``: what is declared
    true / false / n/a; the planted values beside them are computed on each study."""

    summary: str
    process: tuple[str, str]
    weights: tuple[float, float, float, float]
    claims: dict[str, str]
    order_noise: float = 0.0
    set_jaccard: float | None = None
    chance_hit: float = 0.04
    learn_corr: float = 0.8
    f6_gain: float = 0.0  # planted mean spaced - random held-out accuracy
    notes: dict[str, str] = field(default_factory=dict)


def _claims(memory, f1, f2, f3, f5, f6="true"):
    return dict(zip(CLAIMS, (memory, f1, f2, f3, f5, f6)))


_SHARED = (0.6, 0.3, 0.0, 0.74)  # difficulty, shared, arch, run: within-arch rho ~0.45, F5 ~0.4
SCENARIOS = {
    "memoryless_flat": Scenario(
        "no memory, stationary: P(correct) constant over t >= 0; architecture-specific error "
        "sets (Jaccard 0.34) fixed over seeds; error rate tied to difficulty",
        ("flat", "flat"),
        (0.3, 0.3, 0.9, 0.0),
        _claims("false", "true", "false", "false", "true"),
        order_noise=0.7,
        set_jaccard=0.34,
        notes={
            "F1": "of the post-learning error rate (no decay)",
            "F5": "of the error rate, which acts at t = 0 too",
        },
    ),
    "memoryless_curve": Scenario(
        "no memory, rising learning curve with chance hits before learning; stable error "
        "rates shared by the architectures, independent of difficulty",
        ("curve", "curve"),
        (0.0, 0.67, 0.0, 0.74),
        _claims("false", "false", "false", "false", "false"),
        notes={"F5": "difficulty drives the loss at t = 0, learning time and chance hits only"},
    ),
    "shared_decay": Scenario(
        "memory; one stable propensity shared by both architectures, driven partly by difficulty",
        ("chain", "chain"),
        _SHARED,
        _claims("true", "false", "false", "false", "true"),
    ),
    "shared_sets": Scenario(
        "memory; one fast-forgetting set for both architectures and every seed (Jaccard 1), "
        "unrelated to difficulty; only the order inside the groups varies with the seed",
        ("chain", "chain"),
        (0.0, 1.0, 0.0, 0.0),
        _claims("true", "false", "false", "false", "false"),
        order_noise=0.7,
        set_jaccard=1.0,
    ),
    "arch_specific": Scenario(
        "memory; each architecture its own fast-forgetting set (Jaccard 0.34), the same for every seed",
        ("chain", "chain"),
        (0.0, 0.45, 0.89, 0.0),
        _claims("true", "true", "false", "false", "false"),
        order_noise=0.7,
        set_jaccard=0.34,
    ),
    "unstable": Scenario(
        "memory; every run draws its own fast-forgetting set (cross-seed rho 0.01); no chance "
        "hits, so difficulty does not leak into forgetting",
        ("chain", "chain"),
        (0.0, 0.1025, 0.0, 0.9947),
        _claims("true", "false", "false", "true", "false"),
        chance_hit=0.0,
    ),
    "f5_false": Scenario(
        "memory; stable propensity shared by the architectures, unrelated to difficulty and loss at t = 0",
        ("chain", "chain"),
        (0.0, 0.67, 0.0, 0.74),
        _claims("true", "false", "false", "false", "false"),
    ),
    "f2_true": Scenario(
        "the ViT forgets with memory (decay); the CNN's post-learning errors are scattered in "
        "time at the same per-sample error rate",
        ("iid", "chain"),
        _SHARED,
        _claims("true", "false", "true", "false", "true"),
        notes={"MEMORY": "second architecture only"},
    ),
    "f2_false": Scenario(
        "both architectures forget with memory, the same process (f2_true's matched control)",
        ("chain", "chain"),
        _SHARED,
        _claims("true", "false", "false", "false", "true"),
    ),
    "f6_no_gain": Scenario(
        "shared_decay's study; spaced minus random held-out accuracy has mean 0",
        ("chain", "chain"),
        _SHARED,
        _claims("true", "false", "false", "false", "true", "true"),
    ),
    "f6_gain": Scenario(
        "shared_decay's study; spaced minus random held-out accuracy has mean +0.03",
        ("chain", "chain"),
        _SHARED,
        _claims("true", "false", "false", "false", "true", "false"),
        f6_gain=0.03,
    ),
    "f6_worse": Scenario(
        "shared_decay's study; spaced is worse: mean difference -0.03 (no gain holds; a loss to report)",
        ("chain", "chain"),
        _SHARED,
        _claims("true", "false", "false", "false", "true", "true"),
        f6_gain=-0.03,
        notes={"F6": "no gain holds, but spaced is worse by 0.03: a verdict should say so"},
    ),
}
