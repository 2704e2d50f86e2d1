"""Benchmark 5: inference images/s of each model at full Cityscapes resolution, per runtime.

    python benchmarks/bench_infer.py [--quick] [--profile demo|full] [--models ...] [--size 1024 2048] [--out DIR]

One forward pass of a batch of 1 image at 1024x2048 (the Cityscapes frame, as deployed: logits
at the input size), with random weights (speed does not depend on them), side by side:

* CPU: PyTorch eager fp32, PyTorch ``torch.compile`` fp32 (inductor), and onnxruntime
  (CPUExecutionProvider, all graph optimisations) on the file ``cityseg_lib.evaluate.export``
  writes. Target: onnxruntime >= 1.5x the images/s of eager for U-Net.
* CUDA: eager fp32 (TF32 off) against the optimised path, bf16 autocast + channels_last +
  ``torch.compile`` (and onnxruntime if its CUDA provider is installed; the ``onnxruntime`` wheel
  is CPU-only). No target: it reports the ratio.

Model widths (``--profile``): those of each model's main notebook (02_baseline_fcn, 03_unet,
04_swin2_jnet) in the ``demo`` profile (default: the notebooks' own defaults, e.g. U-Net
base_width 8, depth 3) or the ``full`` one (params/full: the reference's widths); ``--options``
JSON ``{model: {option: value}}`` replaces them. Swin2-JNet is built for the benchmark size
(``img_size``), so all three models process the same 1024x2048 pixels.

Each (model, runtime) runs in a fresh subprocess (a crashing compiler is recorded, not fatal;
memory is its own). Warm-up iterations (compilation, onnxruntime's first run) are excluded;
images/s comes from the median iteration time on CPU (other processes only ever add time) and
from the whole timed loop on CUDA (one sync). CPU threads: 1 by default for torch and
onnxruntime alike (see bench_train.py on why). The onnxruntime worker also checks its argmax
against eager PyTorch on the benchmark image. ``--quick``: 1 warm-up + 3 timed iterations.
Writes ``OUT/infer.json`` and ``OUT/infer.md`` (default OUT: reports/benchmarks).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from common import RssSampler, format_table, peak_cuda_mb, provenance, run_isolated, sync, write_report

TARGET_MODEL, TARGET_RATIO = "unet", 1.5
MODELS = ("simple_fcn", "unet", "swin2_jnet")
#: The notebook whose params file holds each model's main run.
MAIN_NOTEBOOK = {"simple_fcn": "02_baseline_fcn", "unet": "03_unet", "swin2_jnet": "04_swin2_jnet"}
# name -> (runtime, bf16 autocast + channels_last)
VARIANTS = {
    "cpu": {"eager fp32": ("eager", False), "compile fp32": ("compile", False),
            "onnxruntime fp32": ("onnxruntime", False)},
    "cuda": {"eager fp32": ("eager", False), "compile bf16": ("compile", True),
             "onnxruntime fp32": ("onnxruntime", False)},
}
BASELINE, ORT = "eager fp32", "onnxruntime fp32"


#: The notebooks' own parameters (notebooks/02-04), which are the demo profile; a params/<profile>
#: file overrides them key by key, as papermill does.
NOTEBOOK_DEFAULTS = {
    "simple_fcn": {"model_options": {"base_width": 32}},
    "unet": {"model_options": {"base_width": 8, "depth": 3}},
    "swin2_jnet": {"encoder": "swinv2_tiny_window8_256",
                   "encoder_kwargs": {"embed_dim": 32, "depths": [1, 1, 2, 1], "num_heads": [1, 2, 4, 8],
                                      "window_size": 8}},
}


def profile_options(profile: str, model: str) -> dict:
    """Model options of ``model``'s main run in ``profile``: the notebook's defaults <- params/<profile>."""
    path = Path(__file__).resolve().parents[1] / "params" / profile / f"{MAIN_NOTEBOOK[model]}.yaml"
    p = {**NOTEBOOK_DEFAULTS[model], **((yaml.safe_load(path.read_text()) if path.is_file() else None) or {})}
    if model != "swin2_jnet":
        return dict(p.get("model_options") or {})
    options = {"encoder": p["encoder"], "pretrained": False}  # random weights: speed does not depend on them
    if p.get("encoder_kwargs"):
        options["encoder_kwargs"] = dict(p["encoder_kwargs"])
    return options


# ----------------------------------------------------------------------------- one measurement (subprocess)


def measure(spec: dict) -> dict:
    """Time ``spec['iters']`` forward passes after ``spec['warmup']``; runs in its own process."""
    from cityseg_lib.models import build_model

    device = torch.device(spec["device"])
    cuda = device.type == "cuda"
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    size, runtime, bf16 = tuple(spec["size"]), spec["runtime"], spec["bf16"]
    options = dict(spec["options"])
    if spec["model"] == "swin2_jnet":
        options.setdefault("img_size", size)
    rss = None if cuda else RssSampler().__enter__()
    torch.manual_seed(0)
    model = build_model(spec["model"], **options).to(device).eval()
    params = sum(p.numel() for p in model.parameters())
    image = torch.randn(1, 3, *size, device=device)
    result: dict = {"params": params}

    if runtime == "onnxruntime":
        from cityseg_lib.evaluate.export import export_onnx, onnx_session

        folder = tempfile.mkdtemp(prefix="bench_infer_")
        t = time.perf_counter()
        info = export_onnx(model.cpu(), Path(folder) / "model.onnx", size)
        result["export_s"] = time.perf_counter() - t
        providers = ["CUDAExecutionProvider"] if cuda else ["CPUExecutionProvider"]
        session = onnx_session(info.path, threads=spec.get("threads") or None, providers=providers)
        if session.get_providers()[0] != providers[0]:
            return {"error": f"onnxruntime has no {providers[0]} (providers: {session.get_providers()})"}
        feed = {"images": image.cpu().numpy()}
        step = lambda: session.run(["logits"], feed)[0]  # noqa: E731
    else:
        if bf16:
            model = model.to(memory_format=torch.channels_last)
            image = image.contiguous(memory_format=torch.channels_last)
        run_model = torch.compile(model) if runtime == "compile" else model

        def step():
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                return run_model(image)

    warm, times = [], []
    for _ in range(spec["warmup"]):
        t = time.perf_counter()
        out = step()
        sync(device)
        warm.append(time.perf_counter() - t)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for i in range(spec["iters"]):
        t = time.perf_counter()
        out = step()
        if not cuda:
            times.append(time.perf_counter() - t)
            if spec.get("budget") and time.perf_counter() - start > spec["budget"] and i >= 1:
                break
    sync(device)
    total = time.perf_counter() - start
    if rss:
        rss.__exit__(None, None, None)
    done = len(times) if times else spec["iters"]
    per_image = sorted(times)[len(times) // 2] if times else total / done
    if runtime == "onnxruntime":  # the deployed file must predict what PyTorch predicts
        with torch.no_grad():
            ref = model(image.cpu()).argmax(1)
        result["argmax_agreement"] = float((torch.from_numpy(out).argmax(1) == ref).float().mean())
    result.update({
        "images_per_s": 1 / per_image, "ms_per_image": 1000 * per_image, "timed_iters": done,
        "ms_min": 1000 * min(times) if times else None, "ms_max": 1000 * max(times) if times else None,
        "first_iter_s": warm[0] if warm else None,
        "peak_memory_mb": peak_cuda_mb(device) if cuda else rss.delta_mb,
    })
    return result


def _run_isolated(spec: dict, timeout: float) -> dict:
    env = dict(os.environ)
    if spec.get("threads"):  # inductor's parallel compile workers would use every core
        env.setdefault("TORCHINDUCTOR_COMPILE_THREADS", str(spec["threads"]))
    return run_isolated(__file__, spec, timeout, env)


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--size", type=int, nargs=2, default=(1024, 2048), metavar=("H", "W"))
    parser.add_argument("--profile", choices=("demo", "full"), default="demo",
                        help="model widths: those of params/demo (default) or params/full")
    parser.add_argument("--options", type=json.loads, default={},
                        help='JSON {model: {option: value}} replacing the profile\'s model options')
    parser.add_argument("--quick", action="store_true",
                        help="1 warm-up + 3 timed iterations (CPU, demo widths: ~2-3 min a model)")
    parser.add_argument("--warmup", type=int, help="untimed iterations (default 2, compile 3; --quick 1, compile 2)")
    parser.add_argument("--iters", type=int, help="timed iterations (default 10 on CPU, 50 on CUDA; --quick 3)")
    parser.add_argument("--budget", type=float, default=60.0, help="CPU: stop timing a variant after this many s")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads of torch and onnxruntime (default 1 on CPU; 0 = their defaults)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per (model, runtime) subprocess")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default reports/benchmarks)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(measure(json.loads(args.worker))), flush=True)
        return 0

    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    kind = "cuda" if device.type == "cuda" else "cpu"
    size = tuple(args.size)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    iters = args.iters or (3 if args.quick else (50 if kind == "cuda" else 10))
    threads = 0 if kind == "cuda" else (1 if args.threads is None else args.threads)
    if threads:
        torch.set_num_threads(threads)
    env = provenance()
    print(f"{env['device']}, {size[0]}x{size[1]}, batch 1, {warmup} warm-up + {iters} timed iterations, "
          f"{threads or 'default'} threads, {args.profile} profile widths", flush=True)

    results: dict[str, dict] = {}
    for name in args.models:
        options = args.options.get(name, profile_options(args.profile, name))
        results[name] = {"options": options, "variants": {}}
        for variant, (runtime, bf16) in VARIANTS[kind].items():
            spec = dict(model=name, options=options, device=str(device), size=size, runtime=runtime, bf16=bf16,
                        warmup=warmup + (runtime == "compile"), iters=iters, budget=args.budget if kind == "cpu" else 0,
                        threads=threads)
            t = time.perf_counter()
            r = results[name]["variants"][variant] = _run_isolated(spec, args.timeout)
            if "error" in r:
                print(f"  {name:<11} {variant:<17} FAILED: {r['error']}", flush=True)
                continue
            print(f"  {name:<11} {variant:<17} {r['images_per_s']:8.3f} img/s  {r['ms_per_image']:9.1f} ms  "
                  f"({time.perf_counter() - t:.0f} s incl. start-up)", flush=True)

    rows, ratios = [], {}
    for name, res in results.items():
        base = res["variants"].get(BASELINE, {}).get("images_per_s")
        for variant, r in res["variants"].items():
            if "error" in r:
                rows.append([name, variant, None, None, None, None, "failed: " + r["error"][:60]])
                continue
            agree = r.get("argmax_agreement")
            rows.append([name, variant, f"{r['images_per_s']:.3f}", f"{r['ms_per_image']:.0f}",
                         f"{r['first_iter_s']:.1f}" if r.get("first_iter_s") is not None else None,
                         r["images_per_s"] / base if base else None, f"{agree:.5f}" if agree is not None else "-"])
        ort = res["variants"].get(ORT, {}).get("images_per_s")
        if base and ort:
            ratios[name] = ort / base
    table = format_table(["model", "runtime", "images/s", "ms/image", "first iter s", "x eager", "argmax agree"], rows)
    print()
    print(table)
    print()
    for name, res in results.items():
        params = next((r["params"] for r in res["variants"].values() if "params" in r), 0)
        print(f"{name}: options {json.dumps(res['options'])}, {params / 1e6:.2f} M params")
    print("onnxruntime / eager: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    if kind == "cpu":
        met = ratios.get(TARGET_MODEL, 0) >= TARGET_RATIO if TARGET_MODEL in results else None
        target = {"text": f"CPU: onnxruntime >= {TARGET_RATIO}x the images/s of PyTorch eager for {TARGET_MODEL}",
                  "value": TARGET_RATIO, "measured": ratios, "met": met}
        if met is not None:
            print(f"target {TARGET_MODEL} >= {TARGET_RATIO}x: {'met' if met else 'MISSED'}")
    else:
        met = None
        comp = {n: r["variants"]["compile bf16"]["images_per_s"] / r["variants"][BASELINE]["images_per_s"]
                for n, r in results.items() if "images_per_s" in r["variants"].get("compile bf16", {})
                and "images_per_s" in r["variants"].get(BASELINE, {})}
        print("compile bf16 / eager fp32: " + ", ".join(f"{k} {v:.2f}x" for k, v in comp.items()))
        target = {"text": "CUDA: no target (reports compile bf16 / eager fp32)", "value": None,
                  "measured": {"onnxruntime_over_eager": ratios, "compile_bf16_over_eager": comp}, "met": None}
    load = os.getloadavg()
    if load[0] > (os.cpu_count() or 1) + 0.5:
        print(f"load average {load[0]:.1f} on {os.cpu_count()} CPUs: other processes were competing, expect noise")
    settings = {"device": str(device), "size_hw": list(size), "batch_size": 1, "warmup_iters": warmup,
                "timed_iters": iters, "profile": args.profile, "threads": threads or None, "quick": args.quick,
                "variants": {k: {"runtime": v[0], "bf16_channels_last": v[1]} for k, v in VARIANTS[kind].items()},
                "load_average_end": list(load)}
    out = args.out or Path(__file__).resolve().parents[1] / "reports" / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    path = write_report("infer", benchmark="inference images/s per model and runtime at full resolution",
                        settings=settings, results=results, target=target, out=out / "infer.json", env=env)
    md = (f"{env['device']}, {size[0]}x{size[1]}, batch 1, {threads or 'default'} threads, {args.profile} widths, "
          f"{env['date']}, commit {env['commit']}\n\n{table}\n")
    (out / "infer.md").write_text(md)
    print(f"wrote {path} and {out / 'infer.md'}")
    return 0 if met in (None, True) else 2


if __name__ == "__main__":
    sys.exit(main())
