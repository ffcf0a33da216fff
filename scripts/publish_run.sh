#!/usr/bin/env bash
# Link a finished run's files from its training job's folder to the run's own folder
# (rules publish_run and publish_budget_run; docs/contracts.md): each a hard link (the same
# bytes under a second name; a copy across file systems), written under a temporary name and
# renamed, then touched, so that it is newer than the job folder's timestamp.
#   scripts/publish_run.sh JOB_RUN_FOLDER TRACES METRICS RECORD
set -euo pipefail
if [ $# -ne 4 ]; then
    echo "usage: publish_run.sh JOB_RUN_FOLDER TRACES METRICS RECORD" >&2
    exit 2
fi
source=$1
shift
for name in traces.npz metrics.csv run.json; do
    target=$1
    shift
    [ -f "$source/$name" ] || { echo "DataError: finished run file $source/$name does not exist; rerun its training job" >&2; exit 1; }
    mkdir -p "$(dirname "$target")"
    tmp="$(dirname "$target")/.$(basename "$target").$$.tmp"
    ln -f "$source/$name" "$tmp" 2>/dev/null || cp -p "$source/$name" "$tmp"
    touch "$tmp"
    mv -f "$tmp" "$target"
    echo "$source/$name -> $target"
done
