"""Benchmark: the official protocol's resize + argmax, NCHW (as before) against channels_last (now).

    python benchmarks/bench_fullres.py [--classes 19] [--logits 48x96] [--label 512x1024] [--frames 16]
        [--repeats 3] [--threads 1] [--device cpu|cuda] [--out JSON]

Every run's final evaluation up-samples each frame's logits to its label's size (bilinear,
align_corners=False) and takes the argmax over classes (``metrics.predict_full_res``). In NCHW the
argmax reads one value from each of C planes per pixel, far apart in memory; channels_last keeps a
pixel's C scores side by side. Both paths run on the same random logits, alternating, best of
``--repeats``; the predictions are compared pixel by pixel. Writes ``reports/benchmarks/fullres.json``.
Target: channels_last >= 2x NCHW with identical argmax (on the CPU of the demo; a GPU is reported, no
target: ``benchmarks/gpu_check.sh`` runs it at the full profile's 768x768 logits and 1024x2048 labels).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F

from common import format_table, sync, write_report

from cityseg_lib.train.metrics import predict_full_res


def _hw(text: str) -> tuple[int, int]:
    h, w = (int(v) for v in text.lower().split("x"))
    return h, w


def nchw(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The resize + argmax as it was before channels_last (the reference for the ratio)."""
    return F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False).argmax(dim=1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--classes", type=int, default=19)
    p.add_argument("--logits", type=_hw, default=(48, 96), help="HxW of the logits (the demo's training size)")
    p.add_argument("--label", type=_hw, default=(512, 1024), help="HxW of the labels (the demo's frames)")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="JSON output (default reports/benchmarks/fullres.json)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    logits = [torch.randn(1, args.classes, *args.logits, generator=gen).to(device) for _ in range(args.frames)]
    paths = {"NCHW (before)": nchw, "channels_last (now)": predict_full_res}
    times = {name: [] for name in paths}
    for _ in range(args.repeats):
        for name, fn in paths.items():
            sync(device)
            t = time.perf_counter()
            for lg in logits:
                fn(lg, args.label)
            sync(device)
            times[name].append((time.perf_counter() - t) / args.frames)
    differ = sum(int((nchw(lg, args.label) != predict_full_res(lg, args.label)).sum()) for lg in logits)
    pixels = args.frames * args.label[0] * args.label[1]
    best = {name: min(v) for name, v in times.items()}
    ratio = best["NCHW (before)"] / best["channels_last (now)"]
    rows = [[name, 1000 * best[name], [round(1000 * x, 1) for x in times[name]]] for name in paths]
    print(format_table(["path", "best ms / frame", "all repeats (ms)"], rows, floatfmt=".1f"))
    print(f"\nratio {ratio:.2f}x; argmax pixels that differ: {differ} of {pixels}")
    met = ratio >= 2 and differ == 0 if device.type == "cpu" else None
    path = write_report("fullres", benchmark="official-protocol resize + argmax, NCHW vs channels_last",
                        settings=vars(args) | {"logits": list(args.logits), "label": list(args.label)},
                        results={"ms_per_frame": {k: 1000 * v for k, v in best.items()}, "ratio": ratio,
                                 "differing_pixels": differ, "pixels": pixels},
                        target={"text": "channels_last >= 2x NCHW on CPU, identical argmax", "met": met},
                        out=args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
