"""Benchmark 1: training-loader throughput, preprocessed cache vs decoding PNGs every epoch.

    python benchmarks/bench_data.py [--frames 48] [--size 768 768] [--batch-size 8] [--workers 2] [--epochs 3]

Generates (or reuses) full-size 2048x1024 demo frames under ``data/bench/``, then iterates the
same ``DataLoader`` (batch size, workers, shuffling, persistent workers) over two
:class:`~cityseg_lib.data.dataset.CityscapesSegmentation` datasets at the training size:

* ``decode``: ``cache_dir=None`` -- every item decodes both PNGs and resizes them;
* ``cache``: a fresh cache folder -- a first, untimed pass builds one ``(H, W, 4)`` uint8
  ``.npy`` per frame (its cost is reported separately), later epochs only read it.

Both return what the trainer asks for (``normalize=False``: uint8 image and mask, 4 bytes a
pixel; ``engine.to_device`` converts and normalises on the device after the copy). Both get one
untimed warm-up epoch (workers started, files in the page cache), then ``epochs`` timed ones
(more while under ``min-seconds`` in total). Target: the cache at least 10x the samples/s of
decoding. A third row, for reference, reads the same cache with items normalised in the workers
(float32 image + int64 mask, 20 bytes a pixel: the dataset's default for interactive use).
Writes ``reports/benchmarks/data.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from common import bench_data_root, ensure_demo_data, format_table, provenance, write_report

from cityseg_lib.data.dataset import CityscapesSegmentation

TARGET_SPEEDUP = 10.0


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*.npy")) / 2**20


def _loader(ds, args, seed: int) -> DataLoader:
    # The same settings for both datasets; persistent workers so the timed epochs measure the
    # steady state rather than forking workers (negligible over 2,975 frames, not over 48).
    return DataLoader(ds, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                      persistent_workers=args.workers > 0, drop_last=False,
                      generator=torch.Generator().manual_seed(seed))


def _epoch(loader: DataLoader) -> tuple[float, int]:
    """Seconds to draw every batch of one epoch, and the samples drawn."""
    n = 0
    start = time.perf_counter()
    for images, masks, _ in loader:
        n += images.shape[0]  # the consumer does nothing: pure loader throughput
    return time.perf_counter() - start, n


def _measure(name: str, ds, args) -> dict:
    loader = _loader(ds, args, seed=0)
    warm_s, n = _epoch(loader)  # untimed: starts workers; builds the cache for the cache dataset
    print(f"  {name}: warm-up epoch {warm_s:.2f} s ({n / warm_s:.1f} samples/s)", flush=True)
    times = []
    while len(times) < args.epochs or sum(times) < args.min_seconds:
        s, n = _epoch(loader)
        times.append(s)
        print(f"  {name}: epoch {len(times)} {s:.2f} s ({n / s:.1f} samples/s)", flush=True)
    del loader
    total = sum(times)
    return {
        "warmup_s": warm_s,
        "warmup_samples_per_s": n / warm_s,
        "epoch_s": times,
        "samples_per_epoch": n,
        "samples_per_s": n * len(times) / total,
        "median_epoch_samples_per_s": n / statistics.median(times),
        "ms_per_sample_per_worker": 1000 * total * max(args.workers, 1) / (n * len(times)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--frames", type=int, default=48, help="2048x1024 training frames to generate/reuse")
    parser.add_argument("--size", type=int, nargs=2, default=(768, 768), metavar=("H", "W"), help="training size")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (both datasets)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per dataset, after one warm-up epoch")
    parser.add_argument("--min-seconds", type=float, default=3.0,
                        help="keep timing further epochs until this much time is measured (fast loaders)")
    parser.add_argument("--augment", default="none", choices=("none", "replace", "augment"),
                        help="augmentation (runs after the cache, so it costs both the same)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default reports/benchmarks/data.json)")
    args = parser.parse_args(argv)

    root = ensure_demo_data(args.frames)
    size = tuple(args.size)
    cache_dir = bench_data_root() / f"cache_{size[0]}x{size[1]}"
    shutil.rmtree(cache_dir, ignore_errors=True)  # measure the build from scratch every time
    common = dict(root=root, split="train", size=size, augment=args.augment, normalize=False)  # as fit
    print(f"{args.frames} frames at {size[0]}x{size[1]}, batch {args.batch_size}, {args.workers} workers, "
          f"{os.cpu_count()} CPUs", flush=True)
    decode = _measure("decode", CityscapesSegmentation(**common, cache_dir=None), args)
    cached = _measure("cache", CityscapesSegmentation(**common, cache_dir=cache_dir), args)
    floats = _measure("cache, float items", CityscapesSegmentation(**{**common, "normalize": True}, cache_dir=cache_dir), args)
    floats["speedup_vs_decode"] = floats["samples_per_s"] / decode["samples_per_s"]
    cached["build_s"] = cached.pop("warmup_s")
    cached["build_samples_per_s"] = cached.pop("warmup_samples_per_s")
    cached["cache_mb"] = _dir_mb(cache_dir)
    speedup = cached["samples_per_s"] / decode["samples_per_s"]
    met = speedup >= TARGET_SPEEDUP

    rows = [
        ["decode + resize every epoch", decode["samples_per_s"], decode["ms_per_sample_per_worker"], "-"],
        ["preprocessed cache", cached["samples_per_s"], cached["ms_per_sample_per_worker"],
         f"{cached['build_s']:.1f} s ({cached['build_samples_per_s']:.1f}/s), {cached['cache_mb']:.0f} MiB"],
    ]
    rows.append(["reference: same cache, float items normalised in the workers", floats["samples_per_s"],
                 floats["ms_per_sample_per_worker"], "same cache"])
    print()
    print(format_table(["loader (same DataLoader settings)", "samples/s", "ms/sample/worker", "cache build (untimed pass)"], rows,
                       floatfmt=".1f"))
    print(f"\nspeedup {speedup:.1f}x (target >= {TARGET_SPEEDUP:.0f}x: {'met' if met else 'MISSED'})"
          + f"; float items normalised in the workers: {floats['speedup_vs_decode']:.1f}x")
    load = os.getloadavg()
    print(f"load average at the end {load[0]:.1f} on {os.cpu_count()} CPUs"
          + (" (other processes were competing: expect noise)" if load[0] > os.cpu_count() + 0.5 else ""))

    settings = {"frames": args.frames, "source_size_wh": [2048, 1024], "size_hw": list(size),
                "batch_size": args.batch_size, "num_workers": args.workers, "shuffle": True,
                "persistent_workers": args.workers > 0, "min_timed_epochs": args.epochs, "min_timed_seconds": args.min_seconds, "augment": args.augment,
                "data_root": str(root), "cache_dir": str(cache_dir)}
    path = write_report("data", benchmark="training-loader throughput: preprocessed cache vs decode every epoch",
                        settings=settings, results={"decode": decode, "cache": cached, "speedup": speedup,
                                 "float_items_reference": floats, "load_average_end": list(os.getloadavg())},
                        target={"text": f"cache >= {TARGET_SPEEDUP:.0f}x the samples/s of decoding", "value": TARGET_SPEEDUP,
                                "measured": speedup, "met": met}, out=args.out, env=provenance())
    print(f"wrote {path}")
    return 0 if met else 2


if __name__ == "__main__":
    sys.exit(main())
