#!/usr/bin/env bash
# CI time against a baseline commit, measured in one run: each test file of the suite under
# the baseline (its own git worktree, the same virtual environment, PYTHONPATH pointing at it)
# and under this checkout, one after the other, the order alternating from file to file so that
# a drift in the machine's speed falls on both sides alike. Prints a line per file (seconds,
# tests passed) and the totals with their ratio. The SLURM tests need the one-node cluster
# (.ci/slurm-up.sh) and the report tests Chromium, as in .ci/run; without them they skip on
# both sides.
#   bash benchmarks/ab_tests.sh BASE_COMMIT [TEST_FILE ...]     # e.g. b817fed (25 to 50 min)
# The baseline's own Makefile is never run: it would reinstall the shared environment.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
    echo "usage: ab_tests.sh BASE_COMMIT [TEST_FILE ...]" >&2
    exit 2
fi
HERE=$PWD
PY=$HERE/.venv/bin/python
BASE=$(mktemp -d)/base
git worktree add --quiet --detach "$BASE" "$1"
trap 'git -C "$HERE" worktree remove --force "$BASE"' EXIT
ln -s "$HERE/.venv" "$BASE/.venv"
shift
if [ $# -gt 0 ]; then
    files="$*"
else
    files=$( (cd tests && ls test_*.py; cd "$BASE/tests" && ls test_*.py) | sort -u)
fi
run() {  # side file -> "seconds passed"
    local root=$1 file=$2 start out
    [ -f "$root/tests/$file" ] || { echo "0 0"; return; }
    start=$(date +%s.%N)
    out=$(cd "$root" && PYTHONPATH=$root "$PY" -m pytest -q -p no:cacheprovider "tests/$file" 2>&1 | tail -n 1)
    case "$out" in *failed* | *error*) echo "$file ($root): $out" >&2 ;; esac
    echo "$(echo "$(date +%s.%N) - $start" | bc) $(echo "$out" | grep -o '[0-9]* passed' | cut -d' ' -f1)"
}
printf "%-28s %9s %9s %8s %11s\n" file "base s" "this s" "diff" "tests b/t"
total_b=0 total_t=0 i=0
for f in $files; do
    if [ $((i % 2)) = 0 ]; then
        b=$(run "$BASE" "$f"); t=$(run "$HERE" "$f")
    else
        t=$(run "$HERE" "$f"); b=$(run "$BASE" "$f")
    fi
    read -r bs bn <<< "$b"; read -r ts tn <<< "$t"
    printf "%-28s %9.1f %9.1f %+8.1f %5s/%-5s\n" "$f" "$bs" "$ts" "$(echo "$ts - $bs" | bc)" "${bn:-0}" "${tn:-0}"
    total_b=$(echo "$total_b + $bs" | bc); total_t=$(echo "$total_t + $ts" | bc)
    i=$((i + 1))
done
printf "%-28s %9.1f %9.1f %+8.1f   ratio this/base %.3f\n" total "$total_b" "$total_t" \
    "$(echo "$total_t - $total_b" | bc)" "$(echo "$total_t / $total_b" | bc -l)"
