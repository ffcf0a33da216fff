#!/usr/bin/env bash
# Wheels of snakemake (and jsonschema) for the GPU machine, which has torch, timm, numpy
# and pandas but no snakemake and no internet. Run here (registry access), then pass
# `.whl` in the device run's carry list; benchmarks/gpu_check.sh installs them.
#   bash benchmarks/wheelhouse.sh [python-version, default 3.12]
set -euo pipefail
cd "$(dirname "$0")/.."
PYV=${1:-3.12}
PIP=${PIP:-.venv/bin/pip}
SNAKEMAKE=$(.venv/bin/python -c "import snakemake; print(snakemake.__version__)")
mkdir -p .whl
# connection-pool is published as a source distribution only: build its (pure) wheel
$PIP wheel -q --no-deps --wheel-dir .whl connection-pool==0.0.3
$PIP download -q --dest .whl --find-links .whl --only-binary=:all: --python-version "$PYV" \
  --implementation cp --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
  --platform manylinux_2_17_x86_64 --platform any \
  "snakemake==$SNAKEMAKE" jsonschema
ls .whl | wc -l
