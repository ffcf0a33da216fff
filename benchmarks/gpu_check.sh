#!/usr/bin/env bash
# GPU check, one command, < 8 minutes on a single-GPU machine without internet:
#  1. the throughput benchmark (bench_train.py) for both paper architectures at 224 px on
#     CUB-sized data (11,788 images), eager and under torch.compile (MODES, default
#     reduce-overhead): rates (a)-(d), ratios, host syncs, compile times;
#  2. the real fine-tuning rule through Snakemake on synthetic CUB-sized data, both
#     architectures in one invocation, 1 warmup + 2 fine-tuning epochs, train.compile
#     RULE_COMPILE (default false): each job's overhead (its benchmark time less its epochs);
#  3. k = 2 concurrent runs on one GPU (our train step, eager), per arch, timed in the
#     same window;
#  4. the paper grid estimate from the rule's last epoch (and, beside it, the rates of
#     step 1) plus each run's overhead from step 2,
#     one run at a time and with 2 runs per GPU (the gain of step 3);
#  5. several seeds per job (train.seeds_per_job): DeiT-S with 1 and SEEDS_N (default 5)
#     seeds trained together (bench_seeds.py: images/s per seed and in all, whole jobs
#     with their start-up), and the grid estimate (DeiT-S's share) with each.
# The measurements that decide most come first, so they survive a timeout. Prints a
# short table per step; writes every number under $OUT_DIR (default results/gpu_check):
# bench.json, bench.txt, rule.txt, rule_metrics.csv, concurrent.csv, estimate.txt,
# seeds.json, seeds.txt.
# Snakemake missing (the GPU machine has torch and timm only)? Wheels in .whl/ are
# installed to a temporary site (benchmarks/wheelhouse.sh builds them).
# SMALL=1 shrinks everything for a CPU dry run of the script itself.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=$(mkdir -p "${OUT_DIR:-results/gpu_check}" && cd "${OUT_DIR:-results/gpu_check}" && pwd)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
if [ "${SMALL:-0}" = 1 ]; then
  SIZE=32; N=512; STEPS=3; LB=3; ARCHS="test_resnet test_vit"; STORE=37; DEV=cpu; W=2; SETUP_S=10
  MODES=${MODES:-default}; RULE_COMPILE=${RULE_COMPILE:-false}; THREADS=${THREADS:-2}; SEEDS_N=${SEEDS_N:-5}
else
  SIZE=224; N=11788; STEPS=${STEPS:-20}; LB=${LB:-42}; ARCHS="resnet18 deit_small_patch16_224"; SETUP_S=25
  STORE=256; DEV=cuda; W=14; MODES=${MODES:-reduce-overhead}; RULE_COMPILE=${RULE_COMPILE:-false}; THREADS=${THREADS:-8}
  SEEDS_N=${SEEDS_N:-5}
fi
# THREADS: torch CPU threads of the benchmark and of the rule (train.threads)
ARCH_A=$(echo $ARCHS | cut -d' ' -f1); ARCH_B=$(echo $ARCHS | cut -d' ' -f2)
T0=$(date +%s)
rm -f "$OUT_DIR"/{bench.json,bench.txt,rule.txt,rule_metrics.csv,concurrent.csv,concurrent.txt,estimate.txt,seeds.json,seeds.txt}
elapsed() { echo "   (step done; $(( $(date +%s) - T0 )) s since start)"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
if ! $PY -c "import snakemake" 2>/dev/null; then
  if ! ls .whl/snakemake-*.whl > /dev/null 2>&1; then
    echo "snakemake is not installed and .whl/ has no wheels: run benchmarks/wheelhouse.sh first" >&2
    exit 1
  fi
  SITE=$(mktemp -d)
  $PY -m pip install -q --no-index --no-deps --target "$SITE" .whl/*.whl
  export PYTHONPATH="$PYTHONPATH:$SITE" PATH="$SITE/bin:$PATH"
fi

echo "== 1. throughput, eager and compiled ($MODES): bare step (a), ours (b), usual DataLoader pipeline (c), eval (d)"
set +e
$PY benchmarks/bench_train.py --device $DEV --size $SIZE --storage $STORE --images $N --steps $STEPS \
  --loader-batches $LB --workers $W --archs $ARCHS --modes none $MODES --threads $THREADS --json "$OUT_DIR/bench.json" 2>&1 \
  | grep -v -i "warn" | tee "$OUT_DIR/bench.txt"
status=${PIPESTATUS[0]}
set -e
if [ "$status" != 0 ]; then echo "the benchmark failed (exit $status; its output is above)" >&2; exit 1; fi
elapsed

echo "== 2. the fine-tuning rule, 1 warmup + 2 fine-tuning epochs, synthetic CUB-sized data, train.compile: $RULE_COMPILE"
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
  resnet18: {model: $ARCH_A, weights: none, lr: 5.0e-4, input_size: $SIZE}
  deit_small: {model: $ARCH_B, weights: none, lr: 5.0e-5, input_size: $SIZE}
train: {warmup_epochs: 1, epochs: 2, threads: $THREADS, compile: $RULE_COMPILE, compile_mode: ${MODES%% *}}
sampler: {enabled: false}
YEOF
start=$(date +%s.%N)
$PY -m snakemake -s "$PWD/Snakefile" -d "$WORK" --cores 16 --resources gpu=1 --rerun-triggers mtime \
  --configfile "$PWD/config.yaml" "$WORK/check.yaml" --show-failed-logs \
  results/runs/synth/deit_small/seed0/traces.npz results/runs/synth/resnet18/seed0/traces.npz 2>&1 | tail -n 3
wall=$($PY -c "import time; print(round(time.time() - $start, 1))")
$PY - "$WORK" "$OUT_DIR/rule_metrics.csv" "$wall" "deit_small:$ARCH_B" "resnet18:$ARCH_A" <<'PYEOF' | tee "$OUT_DIR/rule.txt"
import sys, pathlib, re, pandas as pd
work, dst, wall = pathlib.Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
tables = []
for pair in sys.argv[4:]:
    a, model = pair.split(":")
    job_s = float(pd.read_csv(work / f"benchmarks/finetune/synth/{a}/seeds0.tsv", sep="\t")["s"].iloc[0])
    m = pd.read_csv(work / f"results/runs/synth/{a}/seed0/metrics.csv").assign(model=model, job_s=job_s, wall_s=wall)
    tables.append(m)
    print(f"-- {a} ({model}): job {job_s:.1f} s, epochs {m['seconds'].sum():.1f} s")
    for line in (work / f"logs/finetune/synth/{a}/seeds0.log").read_text().splitlines():
        if "device:" in line or "job time" in line or re.search(r"epoch \d+/", line):
            print("   " + line.split(": ", 1)[-1])
rule = pd.concat(tables)
print(f"snakemake wall {wall:.1f} s, of which outside the jobs (start-up, DAG, once per invocation) "
      f"{wall - rule.groupby('model')['job_s'].first().sum():.1f} s")
rule.to_csv(dst, index=False)
PYEOF
rm -rf "$WORK"
elapsed

echo "== 3. 2 runs per GPU (our train step, eager, timed in the same window)"
KDIR=$(mktemp -d)
for arch in $ARCH_B $ARCH_A; do
  at=$(( $(date +%s) + SETUP_S )); pids=()
  for i in 1 2; do
    $PY benchmarks/bench_train.py --device $DEV --size $SIZE --storage $STORE --images 2048 --steps $((STEPS * 5)) \
      --archs $arch --only-ours --threads $THREADS --start-at $at --json "$KDIR/${arch}_$i.json" > "$KDIR/${arch}_$i.log" 2>&1 &
    pids+=($!)
  done
  for i in 1 2; do
    if ! wait "${pids[$((i - 1))]}"; then
      echo "concurrent run $i of $arch failed:" >&2; tail -n 20 "$KDIR/${arch}_$i.log" >&2; exit 1
    fi
  done
done
$PY - "$KDIR" "$OUT_DIR" <<'PYEOF' | tee "$OUT_DIR/concurrent.txt"
import json, sys, pathlib
import pandas as pd
kdir, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
rows = [json.loads(p.read_text())["results"][0] for p in sorted(kdir.glob("*.json"))]
k = pd.DataFrame(rows).groupby("arch").agg(runs=("b_ours_img_s", "count"), total_img_s=("b_ours_img_s", "sum"),
                                          latest_start_s=("start_late_s", "max"))
one = pd.DataFrame([r for r in json.loads((out / "bench.json").read_text())["results"] if r["mode"] == "none"])
k["one_run_img_s"] = one.set_index("arch")["b_ours_img_s"].reindex(k.index)
k["gain"] = k["total_img_s"] / k["one_run_img_s"]
k.to_csv(out / "concurrent.csv")
print(k.round(2).to_string())
if (k["latest_start_s"] > 1.0).any():
    print("a run started its timing over 1 s late (set-up longer than SETUP_S): those gains are not comparable")
PYEOF
rm -rf "$KDIR"
elapsed

echo "== 4. paper grid estimate from the rule's last epoch (train and eval rates) and each run's overhead"
$PY - "$OUT_DIR" "$RULE_COMPILE" "$MODES" "$N" <<'PYEOF' | tee "$OUT_DIR/estimate.txt"
import json, pathlib, sys
import pandas as pd
sys.path.insert(0, "benchmarks")
from bench_train import grid_hours
out, rule_compiled, modes, n_images = pathlib.Path(sys.argv[1]), sys.argv[2] == "true", sys.argv[3].split(), int(sys.argv[4])
bench = json.loads((out / "bench.json").read_text())["results"]
rule = pd.read_csv(out / "rule_metrics.csv")
gain_path = out / "concurrent.csv"
gain = pd.read_csv(gain_path).set_index("arch")["gain"].to_dict() if gain_path.exists() else {}
overhead, rule_rates = {}, []
for model, m in rule.groupby("model", sort=False):
    job, epochs, last = m["job_s"].iloc[0], m["seconds"], m.iloc[-1]
    # compiled: the first epochs of each phase compile; count every epoch at the last one's cost
    overhead[model] = job - (len(m) * epochs.iloc[-1] if rule_compiled else epochs.sum())
    train_s = last["n_trained"] / last["images_per_s"]
    rule_rates.append({"arch": model, "b_ours_img_s": last["images_per_s"],
                       "d_eval_ours_img_s": n_images / (last["seconds"] - train_s)})
    print(f"{model}: job {job:.0f} s for {len(m)} epochs ({', '.join(f'{s:.1f}' for s in epochs)} s): "
          f"{overhead[model]:.0f} s per run besides its epochs (start-up{', compilation' if rule_compiled else ''}, outputs); "
          f"last epoch: train {rule_rates[-1]['b_ours_img_s']:.0f} img/s, eval {rule_rates[-1]['d_eval_ours_img_s']:.0f} img/s")
mode = modes[0] if rule_compiled else "none"
sources = {"the rule's epochs": rule_rates, "the benchmark's rates (b, d)": [r for r in bench if r["mode"] == mode]}
for source, rates in sources.items():
    per_arch = {r["arch"]: grid_hours([r], overhead_s=overhead) for r in rates}
    for name, key in (("20 runs", "main_grid_minutes"), ("20 runs + 44 sampler runs", "grid_minutes")):
        one = sum(e[key] for e in per_arch.values())
        line = f"{'compile ' + mode if rule_compiled else 'eager'}, {name}, from {source}: one run at a time {one:.1f} min"
        if gain:
            line += f"; 2 runs per GPU (gain measured eager) {sum(e[key] / gain.get(a, 1.0) for a, e in per_arch.items()):.1f} min"
        print(line)
PYEOF
elapsed

echo "== 5. seeds per job: $ARCH_B with 1 and $SEEDS_N seeds trained together, and the grid estimate with each"
set +e
$PY benchmarks/bench_seeds.py --device $DEV --model $ARCH_B --size $SIZE --synthetic $N --storage $STORE \
  --seeds 1 $SEEDS_N --epochs 2 --threads $THREADS --json "$OUT_DIR/seeds.json" 2>&1 | grep -v -i "warn" \
  | tee "$OUT_DIR/seeds.txt"
status=${PIPESTATUS[0]}
set -e
if [ "$status" != 0 ]; then echo "the seeds benchmark failed (exit $status; its output is above)" >&2; exit 1; fi
elapsed
