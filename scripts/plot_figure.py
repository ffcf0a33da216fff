"""Draw one paper figure: results/figures/{name}.pdf and .png.

Run by every figure rule (``rule figure_<name>``; ``params.figure`` names the figure,
else the output's file stem does) or standalone, reading the standard result paths
(docs/contracts.md):

    python scripts/plot_figure.py jaccard --datasets digits digits_lt --archs cnn vit \
        --seeds 0 1 2 --label cnn="small CNN" --label vit="small ViT"

Each figure reads only what it needs (``NEEDS``): per-run inputs (``fits``,
``traces``, ``metrics``) come in the order of ``runs`` ([dataset, arch, seed]);
per-dataset inputs (statistics or sampler tables) in the order of ``datasets``.
"""

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

import _retention_path  # noqa: F401  (the package beside scripts/)
from retention import figures
from retention.errors import DataError
from retention.findings import load_paper_values
from retention.io import run_main, setup_logging

log = logging.getLogger("retention")
logging.getLogger("fontTools").setLevel(logging.WARNING)  # font subsetting chatter

#: per figure: the per-run inputs, how many seeds of each arch they cover (None: all),
#: the per-dataset tables, and whether it marks the paper's values
NEEDS = {
    "retention_examples": {"runs": ("fits", "traces"), "seeds": 1, "tables": ()},
    "jaccard": {"runs": (), "tables": ("f1_jaccard",), "paper": True},
    "r2": {"runs": ("fits",), "tables": ("f2_r2",), "paper": True},
    "seed_stability": {
        "runs": ("fits",),
        "seeds": 2,
        "tables": ("f3_seed_stability",),
        "paper": True,
    },
    "class_forgetting": {"runs": (), "tables": ("f4_class", "f4_class_similarity")},
    "warmup_loss": {"runs": ("fits",), "tables": (), "paper": True},
    "training_curves": {"runs": ("metrics",), "tables": ()},
    "robustness": {"runs": (), "tables": ("robustness",), "paper": True},
    "alternative_scores": {"runs": ("fits",), "tables": ("scores",)},
    "sampler": {"runs": (), "tables": ("comparison", "curves"), "paper": True},
}
#: contract paths (docs/contracts.md) of the standalone mode
RUN_PATHS = {
    "fits": "{results}/fits/{dataset}/{arch}/seed{seed}.parquet",
    "traces": "{results}/runs/{dataset}/{arch}/seed{seed}/traces.npz",
    "metrics": "{results}/runs/{dataset}/{arch}/seed{seed}/metrics.csv",
}
SAMPLER_TABLES = ("comparison", "curves")
TRACE_KEYS = ("sample_id", "correct", "p_true", "t")
#: columns read as text wherever a table has them
# fmt: off
TEXT_COLUMNS = (
    "kind", "arch", "arch_b", "subset", "score", "class_name", "position", "measure",
    "confused_with", "nearest_class", "finding", "dataset", "trace", "test", "note",
    "interval", "detail", "outcome", "differences", "phase", "device",
)
# fmt: on


def _exists(path: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise DataError(f"input {p} does not exist; run the upstream rules first")
    return p


def read_fits(path: str) -> pd.DataFrame:
    p = _exists(path)
    return pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)


def read_traces(path: str) -> dict:
    with np.load(_exists(path), allow_pickle=False) as npz:
        missing = [k for k in TRACE_KEYS if k not in npz.files]
        if missing:
            raise DataError(f"traces file {path} lacks key(s) {missing}; see docs/contracts.md")
        return {k: npz[k] for k in TRACE_KEYS}


def read_csv(path: str) -> pd.DataFrame:
    """A table with its text columns as text (class names such as "3" stay "3")."""
    return pd.read_csv(_exists(path), dtype={c: str for c in TEXT_COLUMNS})


READERS = {"fits": read_fits, "traces": read_traces, "metrics": read_csv}


def by_run(kind: str, paths, runs) -> dict:
    """dataset -> {(arch, seed): table} from the per-run input list ``paths``."""
    paths = list(paths)
    if len(paths) != len(runs):
        raise DataError(f"{len(paths)} {kind} files for {len(runs)} runs")
    out: dict = {}
    for path, (dataset, arch, seed) in zip(paths, runs):
        out.setdefault(str(dataset), {})[(str(arch), int(seed))] = READERS[kind](path)
    return out


def by_dataset(table: str, paths, datasets) -> dict:
    """dataset -> table from the per-dataset input list ``paths``."""
    paths = list(paths)
    if len(paths) != len(datasets):
        raise DataError(f"{len(paths)} {table} tables for {len(datasets)} datasets")
    return {str(d): read_csv(p) for p, d in zip(paths, datasets)}


def draw(name: str, inputs: dict, runs, datasets, arch_labels, paper_values_path=None, lam_max=5.0):
    """The Figure ``name`` from named input lists (paths), as the rule passes them.

    lam_max: the fits' bound on lambda (retention_examples refits the ``raw`` model)."""
    if name not in NEEDS:
        raise DataError(f"unknown figure {name!r}; known: {', '.join(NEEDS)}")
    need = NEEDS[name]
    r = {k: by_run(k, inputs[k], runs) for k in need["runs"]}
    t = {k: by_dataset(k, inputs[k], datasets) for k in need["tables"]}
    pv = load_paper_values(paper_values_path) if need.get("paper") else None
    labels = dict(arch_labels or {})
    if name == "retention_examples":
        return figures.retention_examples(
            r["fits"], r["traces"], arch_labels=labels, lam_max=float(lam_max)
        )
    if name == "jaccard":
        return figures.jaccard(t["f1_jaccard"], pv, labels)
    if name == "r2":
        return figures.r2(r["fits"], t["f2_r2"], pv, labels)
    if name == "seed_stability":
        return figures.seed_stability(r["fits"], t["f3_seed_stability"], pv, labels)
    if name == "class_forgetting":
        return figures.class_forgetting(t["f4_class"], t["f4_class_similarity"], labels)
    if name == "warmup_loss":
        return figures.warmup_loss(r["fits"], pv, labels)
    if name == "training_curves":
        return figures.training_curves(r["metrics"], labels)
    if name == "robustness":
        return figures.robustness(t["robustness"], pv)
    if name == "alternative_scores":
        return figures.alternative_scores(r["fits"], t["scores"], labels)
    return figures.sampler(t["curves"], t["comparison"], pv, labels)


def standalone_inputs(name: str, results: str, datasets, archs, seeds):
    """(inputs, runs) at the contract paths under ``results`` for the grid given."""
    need = NEEDS[name]
    n = need.get("seeds")
    runs = [[d, a, s] for d in datasets for a in archs for s in (seeds[:n] if n else seeds)]
    inputs = {
        k: [RUN_PATHS[k].format(results=results, dataset=d, arch=a, seed=s) for d, a, s in runs]
        for k in need["runs"]
    }
    for k in need["tables"]:
        where = "sampler" if k in SAMPLER_TABLES else "stats"
        inputs[k] = [f"{results}/{where}/{d}/{k}.csv" for d in datasets]
    return inputs, runs


def main() -> None:
    if "snakemake" in globals():
        sm = globals()["snakemake"]
        setup_logging(sm.log[0])
        params = dict(sm.params.items())
        name = params.get("figure") or Path(sm.output.pdf).stem
        inputs = {k: list(v) if not isinstance(v, str) else [v] for k, v in sm.input.items()}
        fig = draw(
            name,
            inputs,
            params.get("runs", []),
            params["datasets"],
            params.get("arch_labels"),
            sm.input.get("paper_values"),
            params.get("lam_max", 5.0),
        )
        pdf, png, dpi = sm.output.pdf, sm.output.png, int(params["dpi"])
    else:
        ap = argparse.ArgumentParser(
            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        ap.add_argument("figure", choices=list(NEEDS))
        ap.add_argument("--datasets", nargs="+", required=True)
        ap.add_argument("--archs", nargs="+", required=True)
        ap.add_argument("--seeds", nargs="+", type=int, required=True)
        ap.add_argument("--results", default="results", help="results directory")
        ap.add_argument("--out", default=None, help="output directory (default RESULTS/figures)")
        ap.add_argument("--dpi", type=int, default=150)
        ap.add_argument("--label", action="append", default=[], help="arch=name shown in figures")
        ap.add_argument("--paper-values", help="paper values csv (default: the packaged one)")
        ap.add_argument("--lambda-max", type=float, default=5.0, help="the fits' bound on lambda")
        ap.add_argument("--log")
        args = ap.parse_args()
        setup_logging(args.log)
        name = args.figure
        inputs, runs = standalone_inputs(name, args.results, args.datasets, args.archs, args.seeds)
        labels = dict(item.split("=", 1) for item in args.label)
        fig = draw(name, inputs, runs, args.datasets, labels, args.paper_values, args.lambda_max)
        out = Path(args.out or f"{args.results}/figures")
        pdf, png, dpi = out / f"{name}.pdf", out / f"{name}.png", args.dpi
    figures.save_figure(fig, pdf, png, dpi)
    w, h = fig.get_size_inches()
    log.info("wrote %s and %s (%.1f x %.1f in, %d dpi)", pdf, png, w, h, dpi)


if __name__ == "__main__":
    run_main(main)
