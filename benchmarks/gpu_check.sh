#!/usr/bin/env bash
# GPU check, one command, < 8 minutes on a single-GPU machine without internet:
#  1. the throughput benchmark (bench_train.py), eager, for both paper architectures at
#     224 px on CUB-sized data (11,788 images): rates (a)-(d), ratios, host syncs;
#  2. two epochs (1 warmup + 1 fine-tuning) of the real fine-tuning rule through Snakemake
#     on synthetic CUB-sized data, both architectures, random init;
#  3. k = 1, 2, 4 concurrent runs on one GPU (our train step, ResNet-18), per run and total;
#  4. the benchmark again under torch.compile (MODES, default reduce-overhead).
# Steps run in this order so that the slowest (compilation) comes last. Prints a short
# table per step; writes every number under $OUT_DIR (default results/gpu_check).
# Snakemake missing (the GPU machine has torch and timm only)? Wheels in .whl/ are
# installed to a temporary site (benchmarks/wheelhouse.sh builds them).
# SMALL=1 shrinks everything for a CPU dry run of the script itself.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=$(mkdir -p "${OUT_DIR:-results/gpu_check}" && cd "${OUT_DIR:-results/gpu_check}" && pwd)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
if [ "${SMALL:-0}" = 1 ]; then
  SIZE=32; N=512; STEPS=3; LB=3; ARCHS="test_resnet test_vit"; CARCH=test_resnet; STORE=37; DEV=cpu; W=2
  MODES=${MODES:-default}
else
  SIZE=224; N=11788; STEPS=${STEPS:-20}; LB=${LB:-42}; ARCHS="resnet18 deit_small_patch16_224"; CARCH=resnet18
  STORE=256; DEV=cuda; W=14; MODES=${MODES:-reduce-overhead}
fi
T0=$(date +%s)
elapsed() { echo "   (step done; $(( $(date +%s) - T0 )) s since start)"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | tee "$OUT_DIR/gpu.txt" || true
if ! $PY -c "import snakemake" 2>/dev/null; then
  if ! ls .whl/snakemake-*.whl > /dev/null 2>&1; then
    echo "snakemake is not installed and .whl/ has no wheels: run benchmarks/wheelhouse.sh first" >&2
    exit 1
  fi
  SITE=$(mktemp -d)
  $PY -m pip install -q --no-index --no-deps --target "$SITE" .whl/*.whl
  export PYTHONPATH="$PYTHONPATH:$SITE" PATH="$SITE/bin:$PATH"
fi
bench() {  # bench <json> <extra args...>
  local json=$1; shift
  $PY benchmarks/bench_train.py --device $DEV --size $SIZE --storage $STORE --images $N --steps $STEPS \
    --loader-batches $LB --workers $W --archs $ARCHS --json "$json" "$@" 2>&1 | grep -v -i "warn" || true
  test -s "$json"
}

echo "== 1. throughput, eager: bare step (a), ours (b), usual DataLoader pipeline (c), eval (d)"
bench "$OUT_DIR/bench_eager.json" --modes none | tee "$OUT_DIR/bench_eager.txt"
elapsed

echo "== 2. the fine-tuning rule, 2 epochs, synthetic CUB-sized data"
WORK=$(mktemp -d)
$PY - "$WORK" "$N" "$STORE" <<'PYEOF'
import sys, pathlib, numpy as np, pandas as pd
sys.path.insert(0, "benchmarks")
from bench_train import synthetic_images
from retention import io
work, n, store = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
images, labels = synthetic_images(n, store)
split = np.where(np.arange(n) % 2 == 0, "train", "heldout")  # about CUB's 5,994 / 5,794
manifest = pd.DataFrame({"sample_id": np.arange(n), "label": labels, "class_name": [f"c{y}" for y in labels],
                         "split": split, "source": "synthetic", "group": ""})
io.save_table(work / "results/data/synth/manifest.csv", manifest)
io.save_npy(work / "results/data/synth/images.npy", images)
PYEOF
cat > "$WORK/check.yaml" <<YEOF
grid: {datasets: [synth], archs: [resnet18, deit_small], seeds: [0]}
datasets: {synth: {source: digits, storage_size: $STORE}}   # prepared above: CUB-sized synthetic data
archs:
  resnet18: {model: $(echo $ARCHS | cut -d' ' -f1), weights: none, lr: 5.0e-4, input_size: $SIZE}
  deit_small: {model: $(echo $ARCHS | cut -d' ' -f2), weights: none, lr: 5.0e-5, input_size: $SIZE}
train: {warmup_epochs: 1, epochs: 1, threads: 8, compile: ${RULE_COMPILE:-false}}
sampler: {enabled: false}
YEOF
start=$(date +%s)
snakemake -s "$PWD/Snakefile" -d "$WORK" --cores 16 --resources gpu=1 --rerun-triggers mtime \
  --configfile "$PWD/config.yaml" "$WORK/check.yaml" --show-failed-logs \
  results/runs/synth/resnet18/seed0/traces.npz results/runs/synth/deit_small/seed0/traces.npz 2>&1 | tail -n 5
echo "$(( $(date +%s) - start ))" > "$OUT_DIR/rule_wall_s.txt"
echo "snakemake wall time: $(cat "$OUT_DIR/rule_wall_s.txt") s" | tee "$OUT_DIR/rule.txt"
for a in resnet18 deit_small; do
  cp "$WORK/results/runs/synth/$a/seed0/metrics.csv" "$OUT_DIR/metrics_$a.csv"
  echo "-- $a" | tee -a "$OUT_DIR/rule.txt"
  cut -d, -f1-10 "$WORK/results/runs/synth/$a/seed0/metrics.csv" | tee -a "$OUT_DIR/rule.txt"
  grep -m1 "device" "$WORK/logs/finetune/synth/$a/seed0.log" | tee -a "$OUT_DIR/rule.txt"
done
rm -rf "$WORK"
elapsed

echo "== 3. k runs per GPU (our train step, $CARCH)"
: > "$OUT_DIR/concurrent.txt"
for k in 1 2 4; do
  pids=()
  for i in $(seq 1 "$k"); do
    $PY benchmarks/bench_train.py --device $DEV --size $SIZE --storage $STORE --images 2048 --steps $((STEPS * 2)) \
      --archs $CARCH --only-ours --json "$OUT_DIR/concurrent_k${k}_${i}.json" > /dev/null 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  $PY - "$OUT_DIR" "$k" <<'PYEOF' | tee -a "$OUT_DIR/concurrent.txt"
import json, sys, pathlib
out, k = pathlib.Path(sys.argv[1]), int(sys.argv[2])
rates = [json.loads((out / f"concurrent_k{k}_{i}.json").read_text())["results"][0]["b_ours_img_s"] for i in range(1, k + 1)]
print(f"k={k}: per run {sum(rates)/k:.0f} img/s, total {sum(rates):.0f} img/s")
PYEOF
done
elapsed

echo "== 4. throughput under torch.compile (modes: $MODES)"
bench "$OUT_DIR/bench_compiled.json" --modes $MODES | tee "$OUT_DIR/bench_compiled.txt"
elapsed

echo "== 5. paper grid estimate with each run's start-up (from step 2) added"
$PY - "$OUT_DIR" <<'PYEOF' | tee "$OUT_DIR/estimate.txt"
import json, pathlib, sys
import pandas as pd
out = pathlib.Path(sys.argv[1])
epochs = sum(pd.read_csv(out / f"metrics_{a}.csv")["seconds"].sum() for a in ("resnet18", "deit_small"))
startup = max(0.0, (float((out / "rule_wall_s.txt").read_text()) - epochs) / 2)
print(f"start-up per run (snakemake, imports, model, data to the GPU): {startup:.0f} s; 64 runs: {64 * startup / 60:.1f} min")
for name in ("bench_eager.json", "bench_compiled.json"):
    path = out / name
    if path.exists():
        for mode, est in json.loads(path.read_text())["estimates"].items():
            print(f"{mode:>16s}: 20 runs {est['main_grid_minutes'] + 20 * startup / 60:.1f} min, "
                  f"with the 44 sampler runs {est['grid_minutes'] + 64 * startup / 60:.1f} min (one run at a time)")
PYEOF
