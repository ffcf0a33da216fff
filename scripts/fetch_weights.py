"""Save one architecture's pretrained timm weights as safetensors (rule fetch_weights).

Needs the Hugging Face hub: run on a machine with internet (the rule is a localrule).
Standalone:
    python scripts/fetch_weights.py --model resnet18.a1_in1k \
        --out resources/weights/resnet18.safetensors
"""

import argparse
from pathlib import Path

from retention.io import run_main, setup_logging
from retention.weights import check_weights, save_pretrained_weights


def main() -> None:
    if "snakemake" in globals():
        smk = globals()["snakemake"]
        setup_logging(smk.log[0])
        model, out = smk.params.model, smk.output.weights
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--model", required=True, help="timm model name with its tag")
        parser.add_argument("--out", required=True, help="safetensors file to write")
        parser.add_argument("--log", help="also log to this file")
        args = parser.parse_args()
        setup_logging(args.log)
        model, out = args.model, args.out
    save_pretrained_weights(model, out)
    try:
        check_weights(model, out)
    except BaseException:
        Path(out).unlink(missing_ok=True)
        raise


if __name__ == "__main__":
    run_main(main)
