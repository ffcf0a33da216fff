"""Synthetic runs in the traces.npz format with a known decay per sample: the test suite's
and the benchmarks' data (a plausible, paper-like process; nothing in the workflow uses it)."""

import numpy as np


def simulate_traces(
    n_samples: int = 1000,
    n_heldout: int = 200,
    epochs: int = 32,
    warmup_epochs: int = 3,
    n_classes: int = 10,
    seed: int = 0,
    return_truth: bool = False,
):
    """A synthetic run in the ``traces.npz`` format (for tests, benchmarks and demos).

    A plausible, paper-like process: each sample has a difficulty z ~ N(0, 1); it is first
    correct at t_learn (at t = 0 with probability sigmoid(1.2 - z), then geometrically,
    about 4 % never); from then on it is correct with probability
    R(tau) = b + (1 - b) exp(-lam tau), lam ~ LogNormal(log 0.15, 1) (clipped to 5),
    b ~ Beta(6, 2), each epoch independently. p_true follows correctness with noise
    (p_true < 0.5 where incorrect), loss = -log p_true, EL2N as if the rest of the
    probability were spread evenly. Returns the dict of arrays (contracts.md keys), and with
    return_truth also {"lam", "b", "t_learn"} of the train samples (t_learn -1 if never).
    """
    rng = np.random.default_rng(seed)
    t = np.arange(-warmup_epochs, epochs + 1, dtype=np.int64)
    class_names = np.array([f"class{i}" for i in range(n_classes)])

    def one_split(n: int, first_id: int):
        z = rng.standard_normal(n)
        label = rng.integers(0, n_classes, n).astype(np.int64)
        lam = np.minimum(np.exp(np.log(0.15) + rng.standard_normal(n)), 5.0)
        b = rng.beta(6.0, 2.0, n)
        at0 = rng.random(n) < 1.0 / (1.0 + np.exp(-(1.2 - z)))
        later = rng.geometric(0.35, n)
        never = rng.random(n) < 0.04
        t_learn = np.where(at0, 0, later)
        t_learn = np.where(never | (t_learn > epochs), -1, t_learn)
        tau = t[None, :] - t_learn[:, None]
        r = b[:, None] + (1 - b[:, None]) * np.exp(-lam[:, None] * np.maximum(tau, 0))
        correct = (rng.random((n, t.size)) < r) & (tau >= 0) & (t_learn[:, None] >= 0)
        correct[np.arange(n), np.where(t_learn >= 0, t_learn + warmup_epochs, 0)] |= t_learn >= 0
        warm = t[None, :] < 0
        warm_p = 0.5 / (1.0 + np.exp(-(1.0 - z)))
        correct = np.where(warm, rng.random((n, t.size)) < warm_p[:, None], correct)
        logit = 2.0 * (2.0 * correct - 1.0) + 0.8 * rng.standard_normal((n, t.size)) - 0.3 * z[:, None]
        p = 1.0 / (1.0 + np.exp(-logit))
        p = np.where(correct, p, np.minimum(p, 0.49)).astype(np.float32)
        loss = (-np.log(np.maximum(p, 1e-12))).astype(np.float32)
        el2n = ((1 - p) * np.sqrt(1.0 + 1.0 / max(n_classes - 1, 1))).astype(np.float32)
        wrong = (label[:, None] + rng.integers(1, max(n_classes, 2), (n, t.size))) % n_classes
        pred = np.where(correct, label[:, None], wrong).astype(np.int32)
        sid = np.arange(first_id, first_id + n, dtype=np.int64)
        return sid, label, correct, p, loss, el2n, pred, (lam, b, t_learn)

    sid, label, correct, p, loss, el2n, pred, truth = one_split(n_samples, 0)
    hsid, hlabel, hcorrect, hp, hloss, hel2n, hpred, _ = one_split(n_heldout, n_samples)
    feats = rng.standard_normal((n_classes, 16))
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    arrays = {
        "sample_id": sid,
        "label": label,
        "class_names": class_names,
        "t": t,
        "correct": correct,
        "p_true": p,
        "loss": loss,
        "el2n": el2n,
        "pred": pred,
        "heldout_sample_id": hsid,
        "heldout_label": hlabel,
        "heldout_correct": hcorrect,
        "heldout_p_true": hp,
        "heldout_loss": hloss,
        "heldout_el2n": hel2n,
        "heldout_pred": hpred,
        "class_centroid_cosine": (feats @ feats.T).astype(np.float32),
    }
    if return_truth:
        return arrays, {"lam": truth[0], "b": truth[1], "t_learn": truth[2]}
    return arrays


def simulate_runs(
    runs,
    n_samples: int = 300,
    n_heldout: int = 60,
    epochs: int = 12,
    warmup_epochs: int = 2,
    n_classes: int = 5,
) -> dict:
    """Synthetic runs of one dataset, ``runs`` (arch, seed) -> traces.npz arrays
    (:func:`simulate_traces`, one seed per run), sharing sample ids and labels as runs of
    one dataset do; predictions agree with correctness (the label, or the next class)."""
    out = {}
    base = None
    for k, key in enumerate(runs):
        arrays = simulate_traces(n_samples, n_heldout, epochs, warmup_epochs, n_classes, seed=k)
        base = base or arrays
        for prefix in ("", "heldout_"):
            label = base[prefix + "label"]
            arrays[prefix + "label"] = label
            wrong = (label[:, None] + 1) % n_classes
            arrays[prefix + "pred"] = np.where(arrays[prefix + "correct"], label[:, None], wrong).astype(
                np.int32
            )
        out[tuple(key)] = arrays
    return out
