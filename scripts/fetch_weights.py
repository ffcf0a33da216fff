"""Save one architecture's pretrained timm weights as safetensors (rule fetch_weights).

Needs the Hugging Face hub: run on a machine with internet (the rule is a localrule).
This is the one job meant to reach the hub, so it switches HF_HUB_OFFLINE off even where
the workflow switched it on; --offline uses only the local hub cache (~/.cache/huggingface).
Standalone:
    python scripts/fetch_weights.py --model resnet18.a1_in1k \
        --out resources/weights/resnet18.safetensors
"""

import argparse
import os
from pathlib import Path

from retention.io import check_output, run_main, setup_logging


def main() -> None:
    if "snakemake" in globals():
        smk = globals()["snakemake"]
        setup_logging(smk.log[0])
        model, out, offline = smk.params.model, smk.output.weights, False
        arch = smk.wildcards.arch
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--model", required=True, help="timm model name with its tag")
        parser.add_argument("--out", required=True, help="safetensors file to write")
        parser.add_argument("--offline", action="store_true", help="use the local hub cache only")
        parser.add_argument("--log", help="also log to this file")
        args = parser.parse_args()
        setup_logging(args.log)
        model, out, offline, arch = args.model, args.out, args.offline, None
    check_output(out, (".safetensors",))
    os.environ["HF_HUB_OFFLINE"] = "1" if offline else "0"  # before huggingface_hub loads
    from retention.acquire.weights import HubProbe

    probe = None if offline else HubProbe()  # answers while torch and timm import
    from retention.acquire.weights import check_weights, save_pretrained_weights

    save_pretrained_weights(model, out, arch, probe)
    try:
        check_weights(model, out)
    except BaseException:
        Path(out).unlink(missing_ok=True)
        raise


if __name__ == "__main__":
    run_main(main)
