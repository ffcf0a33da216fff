"""Compare the spaced-repetition sampler with random sampling (finding F6).

Run by the rule compare_samplers: reads every budgeted run of one dataset and writes
the paired comparison, the learning curves and the findings rows.
"""

import logging

import numpy as np
import pandas as pd

import _retention_path  # noqa: F401  (the package beside scripts/)
from retention import io, sampler

log = logging.getLogger("retention.compare_samplers")


def main():
    sm = snakemake  # noqa: F821
    io.setup_logging(sm.log[0])
    rows, curves = [], []
    for (arch, kind, seed), traces_path, metrics_path in zip(sm.params.runs, sm.input.traces, sm.input.metrics):
        with np.load(traces_path) as traces:
            rows.append({"arch": arch, "kind": kind, "seed": seed, **sampler.final_outcomes(traces)})
        curve = pd.read_csv(metrics_path)[["epoch", "t", "phase", "train_acc", "heldout_acc", "n_trained"]]
        curves.append(curve.assign(arch=arch, kind=kind, seed=seed))
    outcomes = pd.DataFrame(rows)
    log.info("final outcomes per run:\n%s", outcomes.to_string(index=False))
    stats = sm.params.stats
    comparison = sampler.compare_samplers(outcomes, n_boot=stats["bootstrap"], seed=stats["seed"])
    log.info("spaced minus random:\n%s", comparison.to_string(index=False))
    summary = sampler.sampler_summary(
        comparison, sm.wildcards.dataset, sm.config["sampler"]["fraction"], sm.params.trace, stats["bootstrap"]
    )
    io.save_table(sm.output.curves, pd.concat(curves, ignore_index=True))
    io.save_table(sm.output.comparison, comparison)
    io.save_table(sm.output.summary, summary)


if __name__ == "__main__":
    io.run_main(main)
