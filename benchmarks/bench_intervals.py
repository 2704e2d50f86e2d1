"""Benchmark: do the report's 95% bootstrap intervals cover the truth 95% of the time?

    python benchmarks/bench_intervals.py --runs runs/demo/unet-* runs/demo/swin2_jnet-* ...
        [--population data/interval_pop] [--n 16] [--draws 1000] [--boot 2000]

The report scores each run on the demo's 16 validation frames and puts a bootstrap interval
around it. Whether such an interval covers the score the model would get on *all* scenes of the
generator can only be checked against a population whose score is known. This script makes one:

1. ``--population``: a larger validation split from the same generator with another seed
   (``cityseg make-demo-data data/interval_pop --train 0 --val 320 --test 0 --size 1024x512
   --seed 7 --no-coarse``); every given run is scored on all of it under the official
   full-resolution protocol, one confusion matrix per frame (cached in
   ``reports/benchmarks/interval_population/``, keyed by run and population, so a rerun is fast;
   the run folders are only read).
   The truth is the score of the sum over the population (mIoU of a run; the difference of
   two runs for a paired comparison).
2. ``--draws`` times, draw ``--n`` frames of the population with replacement (a validation set
   of the report's size), compute the interval both ways (BCa, the project's default; plain
   percentile), and count how often it covers the truth, how wide it is, and how often the point
   estimate falls outside its own interval. Every pair of runs is also compared paired.

Prints a table and writes ``reports/benchmarks/intervals.json``. CPU only; the demo runs of
``make report`` take about a minute to score on 320 frames, the simulation seconds.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from cityseg_lib.data.dataset import CityscapesSegmentation
from cityseg_lib.evaluate.uncertainty import METHODS, bootstrap_ci, miou_from_matrix, paired_difference
from cityseg_lib.paths import reports_dir
from cityseg_lib.train.engine import evaluate_full_res, load_run


def score_total(per_image: np.ndarray, metric: str = "miou") -> float:
    """mIoU of the ``(N, C, C+1)`` stack summed over its frames (the population's truth)."""
    return miou_from_matrix(per_image.sum(axis=0))


def population_matrices(run: Path, root: Path) -> np.ndarray:
    """``(P, C, C+1)`` per-frame confusion matrices of ``run`` on ``root``'s val split (cached)."""
    cache = reports_dir() / "benchmarks" / "interval_population" / f"{run.resolve().name}.npz"
    frames = sorted((root / "gtFine" / "val").rglob("*_gtFine_labelIds.png"))
    if cache.exists():
        z = np.load(cache)
        if str(z["root"]) == str(root.resolve()) and str(z["run"]) == str(run.resolve()) \
                and len(z["per_image"]) == len(frames):
            return z["per_image"]
    cfg, model = load_run(run)
    ds = CityscapesSegmentation(root, "val", tuple(cfg.image_size), "fine", normalize=False)
    _, _, _, per_image = evaluate_full_res(model, ds, torch.device("cpu"), batch_size=4)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, per_image=per_image, root=str(root.resolve()), run=str(run.resolve()))
    return per_image


def simulate(mats: list[np.ndarray], n: int, draws: int, boot: int, seed: int) -> dict:
    """Coverage of each method, for one run (``len(mats) == 1``) or a paired difference (2)."""
    rng = np.random.default_rng(seed)
    truth = score_total(mats[0], "miou") - (score_total(mats[1], "miou") if len(mats) == 2 else 0.0)
    out = {m: {"covered": 0, "width": [], "point_outside": 0, "below": 0, "above": 0} for m in METHODS}
    for d in range(draws):
        pick = rng.integers(0, len(mats[0]), size=n)
        for method in METHODS:
            if len(mats) == 1:
                iv = bootstrap_ci(mats[0][pick], n_boot=boot, seed=d, method=method)
                point, low, high = iv.value, iv.low, iv.high
            else:
                df = paired_difference(mats[0][pick], mats[1][pick], n_boot=boot, seed=d, method=method)
                point, low, high = df.difference, df.low, df.high
            r = out[method]
            r["covered"] += low <= truth <= high
            r["below"] += truth < low   # the interval sits above the truth
            r["above"] += truth > high  # the interval sits below the truth
            r["width"].append(high - low)
            r["point_outside"] += not (low <= point <= high)
    return {"truth": truth, **{m: {"coverage": r["covered"] / draws, "truth_below_interval": r["below"] / draws,
                                   "truth_above_interval": r["above"] / draws,
                                   "mean_width": float(np.mean(r["width"])),
                                   "point_outside": r["point_outside"] / draws} for m, r in out.items()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", required=True, help="run folders (e.g. runs/demo/unet-*)")
    p.add_argument("--population", default="data/interval_pop", help="dataset root with a large val split")
    p.add_argument("--n", type=int, default=16, help="validation frames per draw (the demo's 16)")
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--boot", type=int, default=2000, help="resamples per interval (the report's 2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="JSON output (default reports/benchmarks/intervals.json)")
    args = p.parse_args(argv)
    root = Path(args.population)
    if not (root / "gtFine" / "val").is_dir():
        print(f"{root}: no gtFine/val split (make it with cityseg make-demo-data, see --help)", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    runs = {Path(r).name.rsplit("-", 1)[0]: Path(r) for r in args.runs}
    mats = {}
    for name, run in runs.items():
        t = time.perf_counter()
        mats[name] = population_matrices(run, root)
        print(f"{name}: {len(mats[name])} frames scored, population mIoU {100 * score_total(mats[name], 'miou'):.1f}% "
              f"({time.perf_counter() - t:.0f} s)", flush=True)
    results = {}
    cases = [(k,) for k in mats] + list(itertools.combinations(mats, 2))
    print(f"\n{args.draws} draws of {args.n} frames, {args.boot} resamples; 95% intervals\n")
    print("| target | truth (pts) | method | coverage | truth above / below | mean width (pts) | point outside |")
    print("|---|--:|---|--:|--:|--:|--:|")
    for case in cases:
        t = time.perf_counter()
        r = simulate([mats[k] for k in case], args.n, args.draws, args.boot, args.seed)
        label = case[0] if len(case) == 1 else f"{case[0]} - {case[1]}"
        results[label] = r
        for m in METHODS:
            x = r[m]
            print(f"| {label} | {100 * r['truth']:+.1f} | {m} | {100 * x['coverage']:.1f}% | "
                  f"{100 * x['truth_above_interval']:.1f}% / {100 * x['truth_below_interval']:.1f}% | "
                  f"{100 * x['mean_width']:.1f} | {100 * x['point_outside']:.1f}% |", flush=True)
        print(f"<!-- {label}: {time.perf_counter() - t:.0f} s -->", file=sys.stderr)
    out = Path(args.out) if args.out else reports_dir() / "benchmarks" / "intervals.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"n": args.n, "draws": args.draws, "boot": args.boot, "population": str(root),
                               "population_frames": {k: len(v) for k, v in mats.items()},
                               "results": results}, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
