"""Export one run's train samples as dataset cartography's dynamics_epoch_<t>.jsonl files.

Run by the rule export_cartography (target ``export``), or standalone:

    python scripts/export_cartography.py results/runs/digits/cnn/seed0/traces.npz \
        results/export/digits/cartography/cnn/seed0

One file per fine-tuning epoch t = 0..E in the run folder's training_dynamics/, one JSON
object per line and train sample: guid (the sample_id), logits_epoch_<t> and gold
(docs/contracts.md "Cartography"); the folder appears complete or not at all.
Cartography's tools read it as they read their own runs (--model_dir .../cnn/seed0).
"""

import argparse
import logging

from retention.io import check_output_folder, require_file, run_main, setup_logging

log = logging.getLogger("retention")


def main() -> None:
    from retention.dynamics.export import export_cartography

    if "snakemake" in globals():
        sm = globals()["snakemake"]
        setup_logging(sm.log[0])
        w = sm.wildcards
        export_cartography(sm.input.traces, sm.output.folder, f"{w.dataset}/{w.arch}/seed{w.seed}")
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("traces", help="a run's traces.npz")
    ap.add_argument("folder", help="the run's folder to write (it must not hold files yet)")
    ap.add_argument("--log", help="log file")
    args = ap.parse_args()
    folder = check_output_folder(args.folder, "the run's folder")
    require_file(args.traces, "traces file")
    setup_logging(args.log)
    export_cartography(args.traces, folder)


if __name__ == "__main__":
    run_main(main)
