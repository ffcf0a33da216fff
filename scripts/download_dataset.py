"""Download, verify and extract one dataset into its directory (rule download_dataset).

Standalone:
    python scripts/download_dataset.py --dest resources/datasets/octdl --spec octdl.yaml
where the spec file (YAML or JSON) is a list of download entries, or a mapping with a
``download`` list (a dataset's config section). Downloads in progress are kept in
resources/datasets/.partial/octdl/ and resumed by the next run after a failure or kill.
A spec, e.g.
    - file: OCTDL_labels.csv
      url: [https://...]
      checksum: sha256:...
"""

import argparse
import sys
from pathlib import Path

import yaml

from retention.acquire.download import fetch_dataset, parse_specs
from retention.acquire.transfer import BACKOFF_S, RETRIES, TIMEOUT_S
from retention.errors import ConfigError
from retention.io import check_output_folder, require_file, run_main, setup_logging


def load_spec_file(path: str) -> list:
    """The download entries of a YAML/JSON file (a list, or a mapping with 'download')."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read the download spec {path}: {err}") from err
    if isinstance(data, dict):
        data = data.get("download")
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a list of download entries (or a 'download' list)")
    return data


def main() -> None:
    if "snakemake" in globals():
        smk = globals()["snakemake"]
        setup_logging(smk.log[0])
        entries = smk.params.files
        dest = smk.output.dataset
        options = dict(progress=sys.stderr.isatty())
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--dest", required=True, help="dataset directory to create")
        parser.add_argument("--spec", required=True, help="YAML/JSON list of download entries")
        parser.add_argument("--retries", type=int, default=RETRIES)
        parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds per read")
        parser.add_argument(
            "--backoff", type=float, default=BACKOFF_S, help="seconds x attempt between rounds"
        )
        parser.add_argument("--overwrite", action="store_true", help="replace an existing --dest")
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument("--log", help="also log to this file")
        args = parser.parse_args()
        setup_logging(args.log)
        require_file(args.spec, "download spec")
        check_output_folder(args.dest, "--dest")
        entries = load_spec_file(args.spec)
        dest = args.dest
        options = dict(
            retries=args.retries,
            timeout=args.timeout,
            backoff=args.backoff,
            overwrite=args.overwrite,
            progress=not args.no_progress,
        )
    digests = fetch_dataset(parse_specs(entries), dest, **options)
    for name, digest in digests.items():
        print(f"{name}\t{digest}")


if __name__ == "__main__":
    run_main(main)
