#!/usr/bin/env bash
# One-command GPU check: everything the study owes a GPU, in <= 8 minutes on an H100/H200.
#
#   benchmarks/gpu_check.sh OUTDIR            # on the GPU machine, from the repository root
#   GPU_CHECK_REDUCED=1 benchmarks/gpu_check.sh OUTDIR   # tiny sizes on CPU: checks the script itself
#   benchmarks/gpu_check.sh --limits          # the steps and their time limits, and exit
#
# Needs only python3 with torch, torchvision, timm, numpy, pillow, pyyaml, pandas and matplotlib:
# no venv, no network, no install (PYTHONPATH=. makes the package importable; Ray, papermill and
# ONNX are imported lazily by the package and not needed here). PYTHON=... picks the interpreter.
#
# Steps, most valuable first, with time limits that add up to the 480 s budget (STEPS below). A step
# gets its own limit plus whatever the steps before it left unused, never what the steps after it
# are owed; one that runs out is killed by `timeout` and recorded as TIMEOUT, and every script
# writes its JSON after each model or variant, so a killed step keeps what it finished:
#   1. data         2048x1024 demo frames (train 24, val 8) in OUTDIR/data (cityseg_lib.data.demo)
#   2. fit          2 epochs of each model at the full-profile settings (768x768, batch 8, bf16,
#                   channels_last), evaluated at full resolution: OUTDIR/fit.txt, fit.json
#   3. ddp          1 epoch of simple_fcn at full size through fit's DDP path in a one-rank process
#                   group started here (NCCL on CUDA, gloo when reduced): the NCCL collectives of
#                   training and evaluation on a one-GPU machine: OUTDIR/ddp.txt, ddp.json
#   4. bench_train  benchmarks/bench_train.py, bf16 + channels_last + compile against fp32 eager
#                   (target >= 2x), model by model, cheapest first (Swin V2's cold compile last):
#                   OUTDIR/bench_train.txt, train.json
#   5. gpu          benchmarks/gpu.py on the generated frames (images/s, MFU, data wait, peak memory,
#                   projected study time on 1, 8 and 32 GPUs): OUTDIR/gpu.txt, gpu.json
#   6. fullres      benchmarks/bench_fullres.py: the official protocol's resize + argmax of 768x768
#                   logits to 1024x2048 labels, NCHW against channels_last (what the package now does
#                   on every device): OUTDIR/fullres.txt, fullres.json
# and OUTDIR/summary.txt: each step's exit status, seconds, limit and headline result.
set -u -o pipefail

# name:seconds, in the order they run; the seconds add up to the budget (480)
STEPS=(data:20 fit:130 ddp:35 bench_train:175 gpu:100 fullres:20)

if [ "${1:-}" = --limits ]; then
  total=0
  for s in "${STEPS[@]}"; do echo "${s%%:*} ${s##*:}"; total=$(( total + ${s##*:} )); done
  echo "total $total"
  exit 0
fi
if [ $# -ne 1 ]; then
  echo "usage: benchmarks/gpu_check.sh OUTDIR   (GPU_CHECK_REDUCED=1 for a tiny CPU run; --limits)" >&2
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

nominal() {  # the seconds STEPS gives step $1
  local s; for s in "${STEPS[@]}"; do [ "${s%%:*}" = "$1" ] && { echo "${s##*:}"; return; }; done
  echo "gpu_check.sh: step $1 is not in STEPS" >&2; exit 2
}
reserve_after() {  # the seconds owed to the steps after step $1
  local s seen=0 sum=0
  for s in "${STEPS[@]}"; do
    (( seen )) && sum=$(( sum + ${s##*:} ))
    [ "${s%%:*}" = "$1" ] && seen=1
  done
  echo "$sum"
}

# one line of a step's results for summary.txt, from its JSON (never fails the script)
headline() {
  "$PYTHON" - "$OUT" "$1" 2>/dev/null <<'PY' || true
import json, sys
from pathlib import Path
out, name = Path(sys.argv[1]), sys.argv[2]
def load(f):
    return json.loads((out / f).read_text())
def pct(v):
    return "-" if v is None else f"{100 * v:.1f}%"
try:
    if name == "fit":
        r = load("fit.json")
        left = [m for m in ("simple_fcn", "unet", "swin2_jnet") if m not in r]
        print("; ".join(f"{m} " + (v["error"][:60] if "error" in v else
                                   f"mIoU {pct(v['val_miou'])}, full-res {pct(v['val_miou_full_res'])}")
                        for m, v in r.items()) + (f"; not reached: {', '.join(left)}" if left else ""))
    elif name == "ddp":
        r = load("ddp.json")
        print(f"{r['backend']}, {r.get('world_size')} rank: " + (r["error"][:80] if r.get("error") else
              f"DDP, {r['all_reduce_calls']} all_reduce on {'/'.join(sorted({t.split()[0] for t in r['all_reduce_tensors']}))}; "
              f"val loss {r['best_val_loss']:.4f}, mIoU {pct(r['val_miou'])}, full-res {pct(r['val_miou_full_res'])}"))
    elif name == "bench_train":  # each variant against fp32 eager, as measured side by side
        r = load("train.json")
        ratios = []
        for m, v in r["results"].items():
            base = v["variants"].get("fp32 eager", {}).get("images_per_s")
            for variant, x in v["variants"].items():
                if variant != "fp32 eager":
                    ratios.append(f"{m} {variant} " + (x["error"][:70] if "error" in x else
                                                       f"{x['images_per_s'] / base:.2f}x" if base else
                                                       "(fp32 eager: " + v["variants"].get("fp32 eager", {}).get(
                                                           "error", "not run")[:60] + ")"))
        left = r["status"]["pending"]
        print(("; ".join(ratios) or "no ratio measured") + " (x fp32 eager)"
              + (f"; not reached: {', '.join(left)}" if left else ""))
    elif name == "gpu":
        r = load("gpu.json")
        ms = r["results"]["models"]
        print(", ".join(f"{m} {v['images_per_s']:.1f} img/s" + (f" MFU {pct(v['mfu'])}" if v.get("mfu") else "")
                        for m, v in ms.items()) or "no model measured",
              end=f"; not reached: {', '.join(r['status']['pending'])}\n" if r["status"]["pending"] else "\n")
    elif name == "fullres":
        r = load("fullres.json")["results"]
        print(f"channels_last / NCHW {r['ratio']:.2f}x")
except Exception:
    pass
PY
}

# step NAME COMMAND...: run with its time limit, output to OUT/NAME.txt; an argument @LEFT@ becomes
# the limit less 15 s (a script's own deadline, so it ends in time to write its last results)
step() {
  local name=$1; shift
  local own left limit
  own=$(nominal "$name")
  left=$(( BUDGET_S - ($(date +%s) - START) ))
  limit=$(( left - $(reserve_after "$name") ))  # its own seconds plus what earlier steps left unused
  (( limit < own )) && limit=$own               # (a budget below the sum: the earlier steps come first)
  (( limit > left )) && limit=$left
  if (( limit < 10 )); then
    echo "$name: SKIPPED (budget of ${BUDGET_S} s spent)" | tee -a "$OUT/summary.txt"
    return
  fi
  local args=("${@//@LEFT@/$(( limit > 30 ? limit - 15 : limit / 2 ))}")
  echo "== $name (at most ${limit} s)"
  local t0=$(date +%s) rc=0
  timeout -k 15 "$limit" "${args[@]}" 2>&1 | tee "$OUT/$name.txt" || rc=$?
  local took=$(( $(date +%s) - t0 ))
  local verdict="exit $rc"; (( rc == 124 || rc == 137 )) && verdict="TIMEOUT (exit $rc)"
  local note; note=$(headline "$name")
  echo "$name: $verdict in ${took} s of ${limit} -> $OUT/$name.txt${note:+ | $note}" | tee -a "$OUT/summary.txt"
}

if [ "$REDUCED" = 1 ]; then
  FRAMES="train=4, val=2, size=(256, 128)"; FIT_ARGS="--reduced"
  TRAIN_ARGS=(--device cpu --models simple_fcn --variants "fp32 eager" "bf16 + channels_last" --warmup 0 --steps 1
              --budget 2)
  GPU_ARGS=(--reduced --models simple_fcn --warmup 0 --steps 1 --eval-steps 1 --workers 0)
  FULLRES_ARGS=(--device cpu --frames 2 --repeats 1 --logits 16x32 --label 64x128)
else
  FRAMES="train=24, val=8, size=(2048, 1024)"; FIT_ARGS=""
  # the target's two variants (the others are in bench_train's own full run), 3 warm-up + 15 timed steps
  TRAIN_ARGS=(--variants target --warmup 3 --steps 15)
  GPU_ARGS=(--warmup 3 --steps 15 --eval-steps 3)
  FULLRES_ARGS=(--device cuda --frames 8 --repeats 3 --logits 768x768 --label 1024x2048)
fi

rm -rf "$OUT/data" "$OUT/runs"
step data "$PYTHON" -c "
import os, time
from cityseg_lib.data.demo import make_demo_dataset
t = time.perf_counter()
root = make_demo_dataset('$OUT/data', $FRAMES, test=0, coarse=False, workers=min(os.cpu_count() or 1, 16))
print(f'wrote {root} in {time.perf_counter() - t:.1f} s')"

step fit "$PYTHON" - "$OUT" $FIT_ARGS <<'PY'
import json, os, sys, time, traceback
from pathlib import Path
sys.path.insert(0, "benchmarks")
from common import format_table
from gpu import REDUCED_OPTIONS, full_profile_settings
from cityseg_lib import runstore
from cityseg_lib.config import TrainConfig
from cityseg_lib.strict import from_dict
from cityseg_lib.train.engine import fit

out, reduced = Path(sys.argv[1]), "--reduced" in sys.argv
models = ("simple_fcn", "unet", "swin2_jnet")
headers = ["model".ljust(10), "epochs", "best val loss", "val mIoU %", "full-res mIoU %", "train img/s", "wall s", "note"]
rows, results = [], {}


def save():  # after every model, atomically: a fit killed by its time limit keeps the models it finished
    tmp = out / "fit.json.tmp"
    tmp.write_text(json.dumps(results, indent=2, default=str) + "\n")
    os.replace(tmp, out / "fit.json")


for model in models:
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
    else:
        sm = runstore.load_summary(run)
        full = sm.get("val_full_res") or {}
        results[model] = {"run": str(run), "image_size": list(cfg.image_size), "batch_size": cfg.batch_size,
                          "epochs_run": sm["epochs_run"], "best_val_loss": sm["best_val_loss"],
                          "val_miou": sm["val"]["miou"], "val_miou_full_res": full.get("miou"),
                          "train_images_per_s": sm["train_images_per_s"], "peak_memory_mb": sm["peak_memory_mb"],
                          "device": sm["device"], "wall_s": time.perf_counter() - t}
        r = results[model]
        rows.append([model, r["epochs_run"], r["best_val_loss"], 100 * r["val_miou"],
                     None if r["val_miou_full_res"] is None else 100 * r["val_miou_full_res"], r["train_images_per_s"],
                     r["wall_s"], f"{r['device']}, peak {r['peak_memory_mb']:.0f} MiB"])
    save()
    print(format_table(headers, rows[-1:]).splitlines()[-1], flush=True)  # this model's row, as it comes
print()
print(format_table(headers, rows))
sys.exit(1 if any("error" in r for r in results.values()) else 0)
PY

# fit's DDP path on one rank: the group is started here, so init_distributed finds it and fit wraps the
# model in DDP, shards with DistributedSampler and all-reduces the epoch's loss and the confusion
# matrices -- with NCCL on CUDA, the only way to run those collectives on a one-GPU machine
step ddp "$PYTHON" - "$OUT" $FIT_ARGS <<'PY'
import json, os, socket, sys, time, traceback
from pathlib import Path
import torch
import torch.distributed as dist
sys.path.insert(0, "benchmarks")
from gpu import REDUCED_OPTIONS, full_profile_settings
from cityseg_lib import runstore
from cityseg_lib.config import TrainConfig
from cityseg_lib.strict import from_dict
from cityseg_lib.train.engine import fit

out, reduced = Path(sys.argv[1]), "--reduced" in sys.argv
cuda = torch.cuda.is_available() and not reduced
backend = "nccl" if cuda else "gloo"
with socket.socket() as sock:  # a free port for the rendezvous
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
result = {"backend": backend, "world_size": 1, "init_method": f"tcp://127.0.0.1:{port}", "model": "simple_fcn",
          "epochs": 1, "error": None}

# what fit did in the group: the model wrapped in DDP, and the Python-level collectives with their tensors'
# devices (NCCL takes only CUDA tensors; DDP's gradient all-reduce runs inside its C++ reducer, not counted)
seen = {"ddp_wrapped": 0, "all_reduce": [], "all_gather_object": 0}
_ddp_init, _all_reduce, _gather = torch.nn.parallel.DistributedDataParallel.__init__, dist.all_reduce, dist.all_gather_object


def ddp_init(self, *a, **k):
    seen["ddp_wrapped"] += 1
    _ddp_init(self, *a, **k)


def all_reduce(tensor, *a, **k):
    seen["all_reduce"].append(f"{tensor.device} {tensor.dtype} {tuple(tensor.shape)}".replace("torch.", ""))
    return _all_reduce(tensor, *a, **k)


def all_gather_object(*a, **k):
    seen["all_gather_object"] += 1
    return _gather(*a, **k)


torch.nn.parallel.DistributedDataParallel.__init__ = ddp_init
dist.all_reduce, dist.all_gather_object = all_reduce, all_gather_object
t = time.perf_counter()
try:
    if cuda:
        torch.cuda.set_device(0)  # this rank's GPU before NCCL starts
    dist.init_process_group(backend, init_method=result["init_method"], rank=0, world_size=1,
                            **({"device_id": torch.device("cuda", 0)} if cuda else {}))
    s = full_profile_settings("simple_fcn")
    values = dict(name="check_ddp_simple_fcn", profile="full", runs_dir=str(out / "runs"), data_root=str(out / "data"),
                  model="simple_fcn", model_options=s["model_options"], image_size=s["image_size"],
                  batch_size=s["batch_size"], epochs=1, step_size=1, full_res_eval=True, progress=False)
    if reduced:
        values.update(model_options=REDUCED_OPTIONS["simple_fcn"], image_size=[64, 128], batch_size=2, device="cpu",
                      num_workers=0)
    cfg = from_dict(TrainConfig, values, source="gpu_check ddp")
    run = fit(cfg, log=print)
    sm = runstore.load_summary(run)
    result.update(run=str(run), world_size=sm.get("world_size"), device=sm["device"], epochs_run=sm["epochs_run"],
                  best_val_loss=sm["best_val_loss"], val_miou=sm["val"]["miou"],
                  val_miou_full_res=(sm.get("val_full_res") or {}).get("miou"),
                  train_images_per_s=sm["train_images_per_s"])
    result.update(ddp_wrapped=seen["ddp_wrapped"], all_reduce_calls=len(seen["all_reduce"]),
                  all_reduce_tensors=sorted(set(seen["all_reduce"])), all_gather_object_calls=seen["all_gather_object"])
    print(f"DDP wrappers {seen['ddp_wrapped']}, all_reduce calls {len(seen['all_reduce'])} on "
          f"{', '.join(result['all_reduce_tensors'])}; all_gather_object calls {seen['all_gather_object']}")
    if sm.get("world_size") != 1 or not seen["ddp_wrapped"] or not seen["all_reduce"]:
        raise RuntimeError(f"fit did not take its DDP path in the one-rank group (world_size {sm.get('world_size')}, "
                           f"DDP wrappers {seen['ddp_wrapped']}, all_reduce calls {len(seen['all_reduce'])})")
    if cuda and any(not t.startswith("cuda") for t in seen["all_reduce"]):
        raise RuntimeError(f"an all_reduce got a tensor off the GPU: {result['all_reduce_tensors']}")
except Exception as err:
    traceback.print_exc()
    result["error"] = f"{type(err).__name__}: {err}"[:500]
finally:
    if dist.is_initialized():
        dist.destroy_process_group()
result["wall_s"] = time.perf_counter() - t
tmp = out / "ddp.json.tmp"
tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
os.replace(tmp, out / "ddp.json")
print(f"ddp ({backend}, one rank): " + (f"FAILED: {result['error']}" if result["error"] else
      f"val loss {result['best_val_loss']:.4f}, val mIoU {100 * result['val_miou']:.1f}%, full-res "
      f"{100 * result['val_miou_full_res']:.1f}%, {result['wall_s']:.0f} s"))
sys.exit(1 if result["error"] else 0)
PY

# model by model, cheapest first: Swin V2's cold torch.compile (the longest) comes last, and each
# variant gets at most what is left of the step (@LEFT@), so it is recorded as timed out, not lost
step bench_train "$PYTHON" benchmarks/bench_train.py "${TRAIN_ARGS[@]}" --total-timeout @LEFT@ --out "$OUT/train.json"

step gpu "$PYTHON" benchmarks/gpu.py --data-root "$OUT/data" "${GPU_ARGS[@]}" --out "$OUT/gpu.json"

step fullres "$PYTHON" benchmarks/bench_fullres.py "${FULLRES_ARGS[@]}" --out "$OUT/fullres.json"

echo "== done in $(( $(date +%s) - START )) s (budget ${BUDGET_S} s); summary:"
cat "$OUT/summary.txt"
! grep -qv ": exit 0 in" "$OUT/summary.txt"
