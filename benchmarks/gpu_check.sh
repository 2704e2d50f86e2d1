#!/usr/bin/env bash
# One-command GPU check: everything the study owes a GPU, in <= 8 minutes on an H100/H200.
#
#   benchmarks/gpu_check.sh OUTDIR            # on the GPU machine, from the repository root
#   GPU_CHECK_REDUCED=1 benchmarks/gpu_check.sh OUTDIR   # tiny sizes on CPU: checks the script itself
#
# Needs only python3 with torch, torchvision, timm, numpy, pillow, pyyaml, pandas and matplotlib:
# no venv, no network, no install (PYTHONPATH=. makes the package importable; Ray, papermill and
# ONNX are imported lazily by the package and not needed here). PYTHON=... picks the interpreter.
#
# Steps (each bounded so the whole stays within the budget; a step that runs out is recorded):
#   1. data      2048x1024 demo frames (train 24, val 8) in OUTDIR/data (cityseg_lib.data.demo)
#   2. fit       2 epochs of each model at the full-profile settings (768x768, batch 8, bf16,
#                channels_last), evaluated at full resolution: OUTDIR/fit.txt, fit.json
#   3. train     benchmarks/bench_train.py, bf16 + channels_last + compile against fp32 eager
#                (target >= 2x): OUTDIR/bench_train.txt, train.json
#   4. gpu       benchmarks/gpu.py on the generated frames (images/s, MFU, data wait, projected
#                study time on 1, 8 and 32 GPUs): OUTDIR/gpu.txt, gpu.json
#   5. fullres   benchmarks/bench_fullres.py: the official protocol's resize + argmax of 768x768
#                logits to 1024x2048 labels, NCHW against channels_last (what the package now does
#                on every device): OUTDIR/fullres.txt, fullres.json
# and OUTDIR/summary.txt: each step's exit status and seconds.
set -u -o pipefail

if [ $# -ne 1 ]; then
  echo "usage: benchmarks/gpu_check.sh OUTDIR   (GPU_CHECK_REDUCED=1 for a tiny CPU run)" >&2
  exit 2
fi
cd "$(dirname "$0")/.."
OUT="$(mkdir -p "$1" && cd "$1" && pwd)"
PYTHON="${PYTHON:-python3}"
REDUCED="${GPU_CHECK_REDUCED:-0}"
BUDGET_S="${GPU_CHECK_BUDGET_S:-480}"
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 CITYSEG_CACHE="$OUT/cache" CI=1
START=$(date +%s)
: > "$OUT/summary.txt"

# step NAME SECONDS COMMAND...: run with a time limit (never past the budget), output to OUT/NAME.txt
step() {
  local name=$1 limit=$2; shift 2
  local left=$(( BUDGET_S - ($(date +%s) - START) ))
  (( limit > left )) && limit=$left
  if (( limit < 10 )); then
    echo "$name: SKIPPED (budget of ${BUDGET_S} s spent)" | tee -a "$OUT/summary.txt"
    return
  fi
  echo "== $name (at most ${limit} s)"
  local t0=$(date +%s) rc=0
  timeout -k 15 "$limit" "$@" 2>&1 | tee "$OUT/$name.txt" || rc=$?
  local took=$(( $(date +%s) - t0 ))
  local verdict="exit $rc"; (( rc == 124 || rc == 137 )) && verdict="TIMEOUT (exit $rc)"
  echo "$name: $verdict in ${took} s -> $OUT/$name.txt" | tee -a "$OUT/summary.txt"
}

if [ "$REDUCED" = 1 ]; then
  FRAMES="train=4, val=2, size=(256, 128)"; FIT_ARGS="--reduced"
  TRAIN_ARGS=(--device cpu --models simple_fcn --warmup 0 --steps 1 --budget 2 --timeout 120)
  GPU_ARGS=(--reduced --models simple_fcn --warmup 0 --steps 1 --eval-steps 1 --workers 0)
  FULLRES_ARGS=(--device cpu --frames 2 --repeats 1 --logits 16x32 --label 64x128)
else
  FRAMES="train=24, val=8, size=(2048, 1024)"; FIT_ARGS=""
  TRAIN_ARGS=(--warmup 5 --steps 20 --timeout 150)
  GPU_ARGS=(--warmup 5 --steps 20 --eval-steps 5)
  FULLRES_ARGS=(--device cuda --frames 8 --repeats 3 --logits 768x768 --label 1024x2048)
fi

rm -rf "$OUT/data" "$OUT/runs"
step data 90 "$PYTHON" -c "
import os, time
from cityseg_lib.data.demo import make_demo_dataset
t = time.perf_counter()
root = make_demo_dataset('$OUT/data', $FRAMES, test=0, coarse=False, workers=min(os.cpu_count() or 1, 16))
print(f'wrote {root} in {time.perf_counter() - t:.1f} s')"

step fit 170 "$PYTHON" - "$OUT" $FIT_ARGS <<'PY'
import json, sys, time, traceback
from pathlib import Path
sys.path.insert(0, "benchmarks")
from common import format_table
from gpu import REDUCED_OPTIONS, full_profile_settings
from cityseg_lib import runstore
from cityseg_lib.config import TrainConfig
from cityseg_lib.strict import from_dict
from cityseg_lib.train.engine import fit

out, reduced = Path(sys.argv[1]), "--reduced" in sys.argv
rows, results = [], {}
for model in ("simple_fcn", "unet", "swin2_jnet"):
    s = full_profile_settings(model)  # params/full: 768x768, batch 8, the reference's widths; random weights
    values = dict(name=f"check_{model}", profile="full", runs_dir=str(out / "runs"), data_root=str(out / "data"),
                  model=model, model_options=s["model_options"], image_size=s["image_size"], batch_size=s["batch_size"],
                  epochs=2, step_size=1, full_res_eval=True, progress=False)
    if reduced:
        values.update(model_options=REDUCED_OPTIONS[model], image_size=[64, 128], batch_size=2, device="cpu",
                      num_workers=0)
    cfg = from_dict(TrainConfig, values, source=f"gpu_check fit {model}")
    t = time.perf_counter()
    try:
        run = fit(cfg, log=print)
    except Exception as err:  # recorded, and the other models still run
        traceback.print_exc()
        results[model] = {"error": f"{type(err).__name__}: {err}"[:300]}
        rows.append([model, None, None, None, None, None, time.perf_counter() - t, results[model]["error"][:60]])
        continue
    sm = runstore.load_summary(run)
    full = sm.get("val_full_res") or {}
    results[model] = {"run": str(run), "image_size": list(cfg.image_size), "batch_size": cfg.batch_size,
                      "epochs_run": sm["epochs_run"], "best_val_loss": sm["best_val_loss"], "val_miou": sm["val"]["miou"],
                      "val_miou_full_res": full.get("miou"), "train_images_per_s": sm["train_images_per_s"],
                      "peak_memory_mb": sm["peak_memory_mb"], "device": sm["device"], "wall_s": time.perf_counter() - t}
    r = results[model]
    rows.append([model, r["epochs_run"], r["best_val_loss"], 100 * r["val_miou"],
                 None if r["val_miou_full_res"] is None else 100 * r["val_miou_full_res"], r["train_images_per_s"],
                 r["wall_s"], f"{r['device']}, peak {r['peak_memory_mb']:.0f} MiB"])
table = format_table(["model", "epochs", "best val loss", "val mIoU %", "full-res mIoU %", "train img/s", "wall s",
                      "note"], rows)
print(table)
(out / "fit.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
sys.exit(1 if any("error" in r for r in results.values()) else 0)
PY

# bench_train.py with only the two variants of its target (the others are in its own full run)
step bench_train 170 "$PYTHON" -c "
import sys
sys.path.insert(0, 'benchmarks')
import bench_train as b
b.VARIANTS['cuda'] = {k: v for k, v in b.VARIANTS['cuda'].items() if k in (b.BASELINE, b.OPTIMISED)}
sys.exit(b.main(sys.argv[1:]))" "${TRAIN_ARGS[@]}" --out "$OUT/train.json"

step gpu 150 "$PYTHON" benchmarks/gpu.py --data-root "$OUT/data" "${GPU_ARGS[@]}" --out "$OUT/gpu.json"

step fullres 30 "$PYTHON" benchmarks/bench_fullres.py "${FULLRES_ARGS[@]}" --out "$OUT/fullres.json"

echo "== done in $(( $(date +%s) - START )) s (budget ${BUDGET_S} s); summary:"
cat "$OUT/summary.txt"
! grep -qv ": exit 0 in" "$OUT/summary.txt"
