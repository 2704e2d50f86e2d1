"""Benchmark 3: training-step images/s and peak memory of each model, and what the speed options change.

    python benchmarks/bench_train.py [--device auto] [--models simple_fcn unet swin2_jnet] [--compile]

One training step is exactly the engine's (:func:`cityseg_lib.train.engine.train_one_epoch`: forward
under optional bf16 autocast, float32 cross-entropy, backward, fused AdamW step) on a fixed synthetic
batch already on the device, so the number is the model's cost alone (the loader is benchmark 1,
and ``gpu.py`` measures both together). Each (model, variant) runs in a fresh subprocess, so
peak memory is its own and a crashing variant (e.g. ``torch.compile`` without a compiler) is
recorded rather than fatal. Warm-up steps (where ``torch.compile`` compiles) are excluded.

* CUDA (defaults 768x768, batch 8, the full-profile models of ``params/full``): fp32 eager (TF32 off), fp32 + TF32,
  bf16 autocast, bf16 + channels_last, and the optimised path bf16 + channels_last +
  ``torch.compile``. Target: optimised >= 2x the images/s of fp32 eager, for every model.
* CPU (defaults 256x256, batch 2, smaller models, stated in the table): fp32 eager,
  channels_last, bf16 + channels_last (each option switched on in turn), with
  ``--all-variants`` also bf16 alone, and with ``--compile`` the compiled fp32 and bf16 +
  channels_last paths. No target: it reports what each option changes (``fit`` trains in bf16 +
  channels_last on CPU only with ``cpu_bf16`` on, or auto on a CPU with AMX).

CPU threads: 1 by default, as the demo profile trains (``cpu_threads: 1``): on a small machine
shared with other processes two OpenMP threads stall each other (one descheduled thread holds
up every operation), which made 2-thread timings vary up to 10x between runs here, while
1-thread timings stay within ~10%. ``--threads 2`` measures the other setting.

images/s: CUDA, over all timed steps (one sync at the end); CPU, from the median step time
(other processes on a shared machine only ever add time), with a time budget per variant.

Peak memory: ``torch.cuda.max_memory_allocated`` over the timed steps on CUDA; on CPU the
peak resident memory over the whole step loop, as growth over the process before the model was
built (weights, gradients, optimiser state, activations, workspace). Writes
``reports/benchmarks/train.json`` (``--out``) after every variant, atomically, with ``status``
saying what is done and what is pending: a run killed by an outer time limit keeps every finished
measurement. Models run in the order given (cheapest first by default, so the cold
``torch.compile`` of Swin V2, the longest, comes last and cannot starve the others) and each
model's variants one after the other, so each ratio is measured side by side in one run;
``--total-timeout`` caps the whole run (a variant gets what is left, and is recorded as timed out
rather than killed with the run), ``--variants`` picks variants (the GPU check runs two).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

from common import (RssSampler, format_table, peak_cuda_mb, provenance, run_isolated, sync, train_step,
                    training_flops, write_report)

TARGET_SPEEDUP = 2.0

# The models at the sizes each device can afford. CPU: small enough that the whole benchmark
# stays within a few minutes on 2 cores, but the real architectures (full depth, BatchNorm,
# the demo Swin V2 encoder). CUDA: the full profile's (params/full), with random encoder
# weights (speed does not depend on them and the GPU machines are offline).
MODEL_CONFIGS = {
    "cpu": {
        "simple_fcn": {"base_width": 32},
        "unet": {"base_width": 16, "depth": 4},
        "swin2_jnet": {"encoder": "swinv2_tiny_window8_256", "pretrained": False},
    },
    # "cuda": the full profile's options, read from params/full by gpu.full_profile_settings
}

# name -> (bf16 autocast, channels_last, torch.compile, TF32, fused optimiser). Every variant steps
# the engine's optimiser (AdamW with torch's fused kernel: optimizers.make_optimizer) except the
# "per-parameter AdamW" one, torch's default loop over the parameters, which measures what the
# fused kernel saves side by side.
VARIANTS = {
    "cpu": {
        "fp32 eager": (False, False, False, False, True),
        "fp32 eager, per-parameter AdamW": (False, False, False, False, False),
        "channels_last": (False, True, False, False, True),
        "bf16 + channels_last": (True, True, False, False, True),
    },
    "cpu_all": {  # --all-variants: bf16 without channels_last (the slowest on CPU, so not by default)
        "bf16 autocast": (True, False, False, False, True),
    },
    "cpu_compile": {
        "fp32 compile": (False, False, True, False, True),
        "bf16 + channels_last + compile": (True, True, True, False, True),
    },
    "cuda": {
        "fp32 eager": (False, False, False, False, True),
        "fp32 eager, per-parameter AdamW": (False, False, False, False, False),
        "fp32 eager + TF32": (False, False, False, True, True),
        "bf16 autocast": (True, False, False, True, True),
        "bf16 + channels_last": (True, True, False, True, True),
        "bf16 + channels_last + compile": (True, True, True, True, True),
    },
}
BASELINE, OPTIMISED = "fp32 eager", "bf16 + channels_last + compile"


# ----------------------------------------------------------------------------- one measurement (subprocess)


def _median_run(runs: list[dict]) -> dict:
    """The round with the median images/s of one variant's rounds (a failed round counts only when all
    fail), with every round's images/s in ``rounds_images_per_s``."""
    ok = sorted((r for r in runs if "error" not in r), key=lambda r: r["images_per_s"])
    if not ok:
        return runs[0]
    return dict(ok[(len(ok) - 1) // 2], rounds_images_per_s=[r["images_per_s"] for r in ok])


def measure(spec: dict) -> dict:
    """Time ``spec['steps']`` training steps after ``spec['warmup']``; runs in its own process."""
    from cityseg_lib.train.losses import build_loss
    from cityseg_lib.train.optimizers import make_optimizer
    from cityseg_lib.models import build_model

    device = torch.device(spec["device"])
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = spec["tf32"]
        torch.backends.cudnn.allow_tf32 = spec["tf32"]
    size, batch = tuple(spec["size"]), spec["batch"]
    options = dict(spec["options"])
    if spec["model"] == "swin2_jnet":
        options.setdefault("img_size", size)  # as build_model_for does: Swin V2 is built for the training size
    # CPU memory: RSS sampled by a thread from before the model exists (on CUDA the allocator
    # counts, and a polling thread would compete for the GIL with kernel launches)
    rss = RssSampler().__enter__() if device.type != "cuda" else None
    model = build_model(spec["model"], **options).to(device)
    if spec["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    params = sum(p.numel() for p in model.parameters())
    criterion = build_loss("cross_entropy")
    flops = training_flops(model, size, device) if spec.get("count_flops") else None
    if spec["fused"]:
        optimizer = make_optimizer("adamw", model.parameters(), lr=1e-4, weight_decay=1e-4)
    else:  # torch's per-parameter loop, the reference point of the fused kernel
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4, foreach=False)
    step_model = torch.compile(model) if spec["compile"] else model

    images = torch.randn(batch, 3, *size, device=device)
    if spec["channels_last"]:
        images = images.contiguous(memory_format=torch.channels_last)
    masks = torch.randint(0, 19, (batch, *size), device=device)
    masks[:, : size[0] // 8] = 255  # some ignored pixels, as in real labels

    # warm-up (cudnn autotuning, torch.compile), excluded from the timing
    warm = []
    for _ in range(spec["warmup"]):
        t = time.perf_counter()
        train_step(step_model, criterion, optimizer, images, masks, spec["bf16"])
        sync(device)
        warm.append(time.perf_counter() - t)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    # timed steps: one sync at the end on CUDA (no host stall between steps), per-step times on CPU
    # (on CPU a time budget may end the loop early: bf16 without native support is ~10-30x slower)
    step_s = []
    sync(device)
    start = time.perf_counter()
    done = 0
    while done < spec["steps"]:
        t = time.perf_counter()
        loss = train_step(step_model, criterion, optimizer, images, masks, spec["bf16"])
        done += 1
        if device.type != "cuda":
            step_s.append(time.perf_counter() - t)
            if spec.get("budget") and time.perf_counter() - start > spec["budget"]:
                break
    sync(device)
    total = time.perf_counter() - start
    if rss:
        rss.__exit__(None, None, None)
    peak = peak_cuda_mb(device) if device.type == "cuda" else rss.delta_mb
    # CUDA: over the whole timed loop (one sync). CPU: the median step, robust to other processes
    # stealing the 2 cores now and then (they only ever add time).
    step = sorted(step_s)[len(step_s) // 2] if step_s else total / done
    return {
        "images_per_s": batch / step,
        "step_ms": 1000 * step,
        "mean_step_ms": 1000 * total / done,
        "timed_steps": done,
        "step_ms_min": 1000 * min(step_s) if step_s else None,
        "step_ms_max": 1000 * max(step_s) if step_s else None,
        "first_step_s": warm[0] if warm else None,
        "peak_memory_mb": peak,
        "peak_rss_mb": rss.peak_mb if rss else None,
        "params": params,
        "flops": flops,
        "final_loss": float(loss.item()),
    }


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--models", nargs="+", default=["simple_fcn", "unet", "swin2_jnet"])
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="default 256 256 on CPU, 768 768 on CUDA")
    parser.add_argument("--batch", type=int, help="default 2 on CPU, 8 on CUDA")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default 1 on CPU, 10 on CUDA)")
    parser.add_argument("--steps", type=int, help="timed steps (default 5 on CPU, 30 on CUDA)")
    parser.add_argument("--budget", type=float, default=None,
                        help="CPU: stop timing a variant after this many seconds (at least 1 step; default 10)")
    parser.add_argument("--all-variants", action="store_true",
                        help="CPU: also bf16 autocast without channels_last (adds minutes: the slowest variant)")
    parser.add_argument("--compile", action="store_true", help="CPU: also time torch.compile (always on CUDA)")
    parser.add_argument("--options", type=json.loads, default={},
                        help='JSON {model: {option: value}} replacing the built-in model options')
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default 1 on CPU, as the demo profile's cpu_threads: one thread is "
                             "steadier than two on a small shared machine; 0 = torch's default)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds over all variants, interleaved; each variant reports its median round "
                             "(CPU: 3 or more, where other processes make single runs vary)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per (model, variant) subprocess")
    parser.add_argument("--total-timeout", type=float, default=None,
                        help="seconds for the whole run: a variant gets at most what is left (recorded as timed out, "
                             "and later ones as not started), so an outer time limit (gpu_check.sh) never kills the "
                             "run mid-variant")
    parser.add_argument("--variants", nargs="+", default=None, metavar="NAME",
                        help=f"only these variants; 'target': the target's two, '{BASELINE}' and '{OPTIMISED}' "
                             "(what the GPU check runs; on CPU it needs --compile)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default reports/benchmarks/train.json)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(measure(json.loads(args.worker))), flush=True)
        return 0

    from cityseg_lib.train.engine import resolve_device

    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    kind = "cuda" if cuda else "cpu"
    size = tuple(args.size or ((768, 768) if cuda else (256, 256)))
    batch = args.batch or (8 if cuda else 2)
    warmup = args.warmup if args.warmup is not None else (10 if cuda else 1)
    budget = 0.0 if cuda else (args.budget if args.budget is not None else 10.0)
    steps = args.steps or (30 if cuda else 5)
    threads = 0 if cuda else (1 if args.threads is None else args.threads)
    if threads:
        torch.set_num_threads(threads)
    variants = dict(VARIANTS[kind])
    if not cuda and args.all_variants:
        variants.update(VARIANTS["cpu_all"])
    if not cuda and args.compile:
        variants.update(VARIANTS["cpu_compile"])
    if args.variants == ["target"]:
        args.variants = [BASELINE, OPTIMISED]
    if args.variants:  # only these, in the table's order
        unknown = [v for v in args.variants if v not in variants]
        if unknown:
            parser.error(f"--variants {unknown}: not among this device's variants {list(variants)} "
                         "(on CPU, --compile and --all-variants add some)")
        variants = {k: v for k, v in variants.items() if k in args.variants}
    env = provenance()
    print(f"{env['device']}, {size[0]}x{size[1]}, batch {batch}, {warmup} warm-up + {steps} timed steps, "
          f"{torch.get_num_threads()} threads", flush=True)

    # model by model; a model's variants interleaved over the rounds, so drifting load hits them all alike
    plan = [(name, variant) for name in args.models for _ in range(args.repeats) for variant in variants]
    deadline = time.monotonic() + args.total_timeout if args.total_timeout else None
    settings = {"device": str(device), "size_hw": list(size), "batch_size": batch, "warmup_steps": warmup,
                "timed_steps": steps, "repeats": args.repeats, "time_budget_s": budget or None,
                "variants": {k: dict(zip(("bf16", "channels_last", "compile", "tf32", "fused_optimizer"), v))
                             for k, v in variants.items()},
                "per_variant_timeout_s": args.timeout, "total_timeout_s": args.total_timeout,
                "optimizer": "AdamW(lr=1e-4, weight_decay=1e-4)", "loss": "cross_entropy",
                "data": "one synthetic batch on the device (loader excluded)", "torch_threads": torch.get_num_threads()}

    results: dict[str, dict] = {}
    runs: dict[str, dict[str, list[dict]]] = {}
    done: list[str] = []

    def report(final: bool):
        """Write the JSON of what is measured so far (after every variant: a run killed by a time limit
        keeps every finished measurement); the table and the target verdict too when ``final``."""
        for name, by_variant in runs.items():
            results[name]["variants"] = {v: _median_run(rs) for v, rs in by_variant.items()}
        speedups = {}
        for name, res in results.items():
            base = res["variants"].get(BASELINE, {}).get("images_per_s")
            opt = res["variants"].get(OPTIMISED, {}).get("images_per_s")
            if base and opt:
                speedups[name] = opt / base
        complete = len(done) == len(plan)
        if cuda:
            met = (bool(speedups) and len(speedups) == len(args.models)
                   and all(v >= TARGET_SPEEDUP for v in speedups.values())) if complete else None
            target = {"text": f"on CUDA, '{OPTIMISED}' >= {TARGET_SPEEDUP:.0f}x the images/s of '{BASELINE}' for every "
                              "model", "value": TARGET_SPEEDUP, "measured": speedups, "met": met}
        else:
            met = None
            target = {"text": f"CUDA only ('{OPTIMISED}' >= {TARGET_SPEEDUP:.0f}x '{BASELINE}'); on CPU the benchmark "
                              "reports what the options change, without a target", "value": TARGET_SPEEDUP,
                      "measured": speedups or None, "met": None}
        status = {"finished": final, "done": list(done), "pending": [f"{n}: {v}" for n, v in plan[len(done):]]}
        path = write_report("train", benchmark="training step: images/s and peak memory per model and speed option",
                            settings={**settings, "load_average_end": list(os.getloadavg())}, results=results,
                            target=target, out=args.out, env=env, status=status)
        return path, speedups, met

    for i, (name, variant) in enumerate(plan):
        bf16, cl, comp, tf32, fused = variants[variant]
        if name not in results:
            if name in args.options:
                options = args.options[name]
            elif cuda:  # the full profile's models (params/full), random weights
                from gpu import full_profile_settings

                options = full_profile_settings(name)["model_options"]
            else:
                options = MODEL_CONFIGS["cpu"][name]
            results[name] = {"options": options, "variants": {}}
            runs[name] = {}
        options = results[name]["options"]
        first = not any(runs[name].values())  # the model's first variant also counts the FLOPs
        # compiled variants get at least 2 warm-up steps: the first compiles, the second shows any recompile
        spec = dict(model=name, options=options, device=str(device), size=size, batch=batch,
                    warmup=max(warmup, 2) if comp else warmup,
                    steps=steps, budget=budget, threads=threads, bf16=bf16, channels_last=cl, compile=comp,
                    tf32=tf32, fused=fused, count_flops=first)
        timeout, why = args.timeout, f"--timeout {args.timeout:.0f} s"
        if deadline is not None:
            left = deadline - time.monotonic()
            if left < min(timeout, 5.0):
                spent = f"the run's --total-timeout of {args.total_timeout:.0f} s was spent"
                r = {"error": f"not started: {spent}"}
                runs[name].setdefault(variant, []).append(r)
                done.append(f"{name}: {variant}")
                print(f"  {name:<11} {variant:<31} SKIPPED: {spent}", flush=True)
                report(False)
                continue
            if left < timeout:
                timeout, why = left, f"what was left of --total-timeout {args.total_timeout:.0f} s"
        t = time.perf_counter()
        r = run_isolated(__file__, spec, timeout)
        if "error" in r and r["error"].startswith("timed out"):
            r["error"] = f"timed out after {timeout:.0f} s ({why})"
        runs[name].setdefault(variant, []).append(r)
        done.append(f"{name}: {variant}")
        if "error" in r:
            print(f"  {name:<11} {variant:<31} FAILED: {r['error']}", flush=True)
        else:
            if r.get("flops"):
                results[name]["flops_per_image"] = r["flops"]
                results[name]["params"] = r["params"]
            base = _median_run(runs[name][BASELINE]).get("images_per_s") if BASELINE in runs[name] else None
            rel = f"  {r['images_per_s'] / base:5.2f}x {BASELINE}" if base and variant != BASELINE else ""
            print(f"  {name:<11} {variant:<31} {r['images_per_s']:8.2f} img/s  {r['peak_memory_mb']:8.0f} MiB  "
                  f"({time.perf_counter() - t:.0f} s incl. start-up"
                  + (f", first step {r['first_step_s']:.1f} s" if r.get("first_step_s") and comp else "") + ")" + rel,
                  flush=True)
        report(False)

    # table and target
    path, speedups, met = report(True)
    rows = []
    for name, res in results.items():
        base = res["variants"].get(BASELINE, {}).get("images_per_s")
        gflop = res.get("flops_per_image", {}).get("train", math.nan) / 1e9
        for variant, r in res["variants"].items():
            if "error" in r:
                rows.append([name, variant, None, None, None, None, "failed: " + r["error"][:60]])
                continue
            rel = r["images_per_s"] / base if base else None
            rows.append([name, variant, r["images_per_s"], r["step_ms"], r["peak_memory_mb"], rel,
                         f"{gflop * r['images_per_s']:.1f}" if gflop == gflop else "-"])
    mem = "peak MiB (cuda alloc)" if cuda else "peak MiB (RSS growth)"
    print()
    print(format_table(["model", "variant", "images/s", "ms/step", mem, "x fp32 eager", "GFLOP/s"], rows))
    print()
    for name, res in results.items():
        f = res.get("flops_per_image")
        if not f:  # no variant of it ran
            continue
        print(f"{name}: options {json.dumps(res['options'])}, {res.get('params', 0) / 1e6:.2f} M params, "
              f"{f.get('forward', math.nan) / 1e9:.2f} GFLOP forward / {f.get('train', math.nan) / 1e9:.2f} GFLOP "
              f"training step per image at {size[0]}x{size[1]}")

    load = os.getloadavg()
    if load[0] > (os.cpu_count() or 1) + 0.5:
        print(f"load average {load[0]:.1f} on {os.cpu_count()} CPUs: other processes were competing, expect noise")
    if cuda:
        print("speedup optimised / fp32 eager: " + ", ".join(f"{k} {v:.2f}x" for k, v in speedups.items())
              + f" (target >= {TARGET_SPEEDUP:.0f}x for every model: {'met' if met else 'MISSED'})")
    print(f"wrote {path}")
    return 0 if met in (None, True) else 2


if __name__ == "__main__":
    sys.exit(main())
