"""Draw one figure: results/figures/{name}.pdf and .png, or for a figure drawn per
dataset results/figures/{dataset}/{name}.pdf and .png.

Run by every figure rule (``rule figure_<name>``) or standalone in a study folder (the
Snakemake working directory), reading the contract paths of retention/paths.py for the
grid of the config files given (laid over each other as Snakemake's --configfile does);
a figure drawn per dataset is drawn for every dataset, or for those of ``--datasets``:

    python scripts/plot_figure.py jaccard --config config.yaml config/demo.yaml
    python scripts/plot_figure.py jaccard --datasets digits --config config.yaml config/demo.yaml
    python scripts/plot_figure.py finding --ids F1.cross F3.within --config config.yaml

``finding`` draws any findings of the registry (retention/stats/registry.py) by id as
forest plots (default: the primary ones). What each figure reads is declared in
retention/figures/specs.py.
"""

import argparse
import dataclasses
import logging
import os
from pathlib import Path

from retention import figures, paths
from retention.errors import ConfigError
from retention.figures import specs as figure_specs
from retention.findings import Study
from retention.fitting.fit import LAMBDA_MAX
from retention.io import run_main, setup_logging

log = logging.getLogger("retention")
logging.getLogger("fontTools").setLevel(logging.WARNING)  # font subsetting chatter
GENERIC = "finding"


def draw(files: dict, params: dict, ids=None):
    """Read a figure's inputs and draw it (``ids``: the findings of the generic figure)."""
    inputs = figures.read_inputs(
        files,
        params["runs"],
        params["datasets"],
        list(figure_specs.RUN_FILES),
        params.get("datasets_of"),
        params.get("study"),
        params.get("lambda_max", LAMBDA_MAX),
        params.get("min_samples", 30),
        params.get("runs_of"),
    )
    if params["figure"] == GENERIC:
        return figures.finding_figure(inputs, ids or None)
    return figures.draw(params["figure"], inputs)


def standalone(args) -> list[tuple]:
    """[(figure, pdf, png, dpi)] of a run from the command line (one per dataset drawn)."""
    from retention.config import load_config, validate_config
    from retention.io import check_output_folder

    if not Path(args.workdir).is_dir():
        from retention.errors import ArgumentError

        raise ArgumentError(f"--workdir {args.workdir} is not a folder")
    if args.out:
        check_output_folder(args.out, "--out")
    config = validate_config(load_config(*args.config), check_models=False)
    os.chdir(args.workdir)
    study = dataclasses.asdict(Study.from_config(config))
    spec = "primary_findings" if args.figure == GENERIC else args.figure
    out = Path(args.out) if args.out else Path(paths.FIGURE).parent
    sampler = figure_specs.sampler_datasets(config) if figure_specs.FIGURES[spec].sampler else None
    datasets = figure_specs.figure_datasets(spec, config["grid"]["datasets"], sampler or [])
    unknown = sorted(set(args.datasets or []) - set(datasets))
    if unknown:
        raise ConfigError(
            f"--datasets: {unknown[0]!r} is not a dataset of figure {spec} ({', '.join(datasets)})"
        )
    drawn = []
    for dataset in (args.datasets or datasets) if figure_specs.FIGURES[spec].per_dataset else [None]:
        files, params = figure_specs.figure_job(spec, config, study, dataset=dataset)
        params["figure"] = args.figure
        fig = draw(files, params, args.ids)
        name = args.figure if args.figure != GENERIC else "finding_" + "_".join(args.ids or ["primary"])
        where = out / dataset if dataset else out
        drawn.append((fig, where / f"{name}.pdf", where / f"{name}.png", int(params["dpi"])))
    return drawn


def main() -> None:
    if "snakemake" in globals():
        sm = globals()["snakemake"]
        setup_logging(sm.log[0])
        files = {k: [v] if isinstance(v, str) else list(v) for k, v in sm.input.items()}
        params = dict(sm.params.job)
        drawn = [(draw(files, params), sm.output.pdf, sm.output.png, int(params["dpi"]))]
    else:
        ap = argparse.ArgumentParser(
            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        ap.add_argument("figure", choices=[*figures.DRAW, GENERIC])
        ap.add_argument(
            "--config", nargs="+", required=True, help="config files (config.yaml first, overlays after)"
        )
        ap.add_argument("--workdir", default=".", help="the study folder holding results/ (default: here)")
        ap.add_argument("--out", help="output folder (default: results/figures)")
        ap.add_argument(
            "--datasets", nargs="+", help="of a figure drawn per dataset, these only (default: all)"
        )
        ap.add_argument(
            "--ids", nargs="+", help=f"finding ids for '{GENERIC}' (default: the primary findings)"
        )
        ap.add_argument("--log")
        args = ap.parse_args()
        setup_logging(args.log)
        drawn = standalone(args)
    for fig, pdf, png, dpi in drawn:
        figures.save_figure(fig, pdf, png, dpi)
        w, h = fig.get_size_inches()
        log.info(
            "wrote %s and %s (%.1f x %.1f in, %d dpi: %d x %d px)", pdf, png, w, h, dpi, w * dpi, h * dpi
        )


if __name__ == "__main__":
    run_main(main)
