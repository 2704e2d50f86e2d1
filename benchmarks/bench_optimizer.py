"""Benchmark: the optimiser step, torch's per-parameter loop (before) against its fused kernel (now).

    python benchmarks/bench_optimizer.py [--profile demo] [--rounds 7] [--steps 20] [--threads 1] [--out JSON]

The engine steps AdamW and Adam with torch's fused kernel and Adamax multi-tensor
(``cityseg_lib.train.optimizers``). For the three main models of ``--profile`` (their options and training
size as the study's notebooks build them, ``preflight.study_configs``) this times, in one process,
alternating in rounds so that the machine's load hits every variant alike:

* ``optimizer.step()`` alone on fixed gradients, for each optimiser of the study and each
  implementation torch has for it (``loop``: ``foreach=False``; ``foreach``; ``fused``);
* one whole training step (forward, cross-entropy, backward, AdamW step) at the profile's image
  and batch size, with the loop and with the fused AdamW, the share the optimiser takes of it.

Medians over the rounds. Writes ``reports/benchmarks/optimizer.json``. Target: the whole training
step of the demo U-Net at least 5% faster with the fused AdamW than with the loop (on the CPU of the
demo; the step alone is reported without a target). Results are checked to agree: the fused and
loop updates of one step match to float32 round-off.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from common import format_table, sync, write_report

from cityseg_lib.report.preflight import study_configs
from cityseg_lib.train.engine import build_model_for, resolve_device
from cityseg_lib.train.optimizers import FUSED, OPTIMIZERS

TARGET_GAIN = 1.05
IMPLEMENTATIONS = {"loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}
MAIN_RUNS = ("simple_fcn", "unet", "swin2_jnet")


def _impls(name: str) -> dict[str, dict]:
    """The implementations torch has for optimiser ``name`` (Adamax has no fused kernel)."""
    return {k: v for k, v in IMPLEMENTATIONS.items() if k != "fused" or name in FUSED}


def _timed(fn, steps: int, device: torch.device) -> float:
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return (time.perf_counter() - t) / steps * 1000


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="demo", help="whose main models and training size (default demo)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=20, help="steps per timing")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (the demo trains with 1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    configs = study_configs(args.profile)
    mains = {cs[0].model: cs[0] for stem, cs in configs.items() if cs and stem[:2] in ("02", "03", "04")}

    results, rows, checks = {}, [], {}
    for model in MAIN_RUNS:
        cfg = mains[model]
        torch.manual_seed(0)
        net = build_model_for(cfg, init_weights=False).to(device)
        params = list(net.parameters())
        grads = [torch.randn_like(w) for w in params]
        batch = cfg.batch_size
        images = torch.randn(batch, 3, *cfg.image_size, device=device)
        masks = torch.randint(0, 19, (batch, *cfg.image_size), device=device)

        # the optimisers: one instance per (optimiser, implementation), state warmed by 3 steps
        opts = {}
        for name in ("adamw", "adam", "adamax"):
            for impl, kw in _impls(name).items():
                o = OPTIMIZERS[name](params, lr=cfg.lr, weight_decay=cfg.weight_decay, **kw)
                opts[(name, impl)] = o

        def step_only(o):
            for w, g in zip(params, grads):
                w.grad = g
            o.step()

        def train_step(o):
            loss = F.cross_entropy(net(images), masks, ignore_index=255)
            o.zero_grad(set_to_none=True)
            loss.backward()
            o.step()

        # the fused and loop AdamW give the same update (from the same weights and gradients)
        start = [w.detach().clone() for w in params]
        after = {}
        for impl in ("loop", "fused"):
            with torch.no_grad():
                for w, s in zip(params, start):
                    w.copy_(s)
            o = OPTIMIZERS["adamw"](params, lr=cfg.lr, weight_decay=cfg.weight_decay, **IMPLEMENTATIONS[impl])
            step_only(o)
            after[impl] = [w.detach().clone() for w in params]
        checks[model] = max(float((a - b).abs().max()) for a, b in zip(after["loop"], after["fused"]))

        for o in opts.values():
            for _ in range(3):
                step_only(o)
        train_variants = {impl: opts[("adamw", impl)] for impl in ("loop", "fused")}
        for o in train_variants.values():
            train_step(o)
        times: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for key, o in opts.items():
                times.setdefault(f"{key[0]} {key[1]} step", []).append(_timed(lambda: step_only(o), args.steps, device))
            for impl, o in train_variants.items():
                times.setdefault(f"train step, adamw {impl}", []).append(_timed(lambda: train_step(o), args.steps, device))
        med = {k: statistics.median(v) for k, v in times.items()}
        loop_train, fused_train = med["train step, adamw loop"], med["train step, adamw fused"]
        results[model] = {"options": dict(cfg.model_options), "image_size": list(cfg.image_size), "batch_size": batch,
                          "params": sum(w.numel() for w in params), "tensors": len(params),
                          "median_ms": med, "rounds_ms": times, "train_step_gain": loop_train / fused_train,
                          "optimizer_share_loop": med["adamw loop step"] / loop_train,
                          "max_abs_update_difference": checks[model]}
        for name in ("adamw", "adam", "adamax"):
            loop = med[f"{name} loop step"]
            for impl in _impls(name):
                rows.append([model, f"{name} {impl}", med[f"{name} {impl} step"], loop / med[f"{name} {impl} step"]])
        rows.append([model, "train step, AdamW loop", loop_train, 1.0])
        rows.append([model, "train step, AdamW fused", fused_train, loop_train / fused_train])
        print(f"{model}: {results[model]['params'] / 1e6:.2f} M params in {len(params)} tensors, "
              f"{cfg.image_size[0]}x{cfg.image_size[1]} batch {batch}; AdamW loop step = "
              f"{100 * results[model]['optimizer_share_loop']:.0f}% of a training step; "
              f"fused vs loop update differs by at most {checks[model]:.1e}", flush=True)

    print(format_table(["model", "what", "ms (median)", "x loop"], rows))
    gain = results["unet"]["train_step_gain"]
    met = gain >= TARGET_GAIN and all(d < 1e-5 for d in checks.values())
    print(f"U-Net training step, fused AdamW vs loop: {gain:.2f}x (target >= {TARGET_GAIN:.2f}x): "
          f"{'met' if met else 'NOT met'}")
    write_report("optimizer", benchmark=__file__, out=args.out,
                 settings={"profile": args.profile, "rounds": args.rounds, "steps": args.steps, "threads": args.threads,
                           "device": str(device)},
                 results=results,
                 target={"text": f"U-Net training step with fused AdamW >= {TARGET_GAIN}x the loop, same update",
                         "value": TARGET_GAIN, "measured": gain, "met": met})
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
