"""Benchmark 2: ``evaluate_folder`` vs the official cityscapesScripts evaluation.

    python benchmarks/bench_eval.py [--n 50] [--root DIR] [--repeats 5] [--workers N]

Makes ``n`` full-resolution (2048x1024) ground-truth labelIds PNGs (the project's demo
data generator, or a blobby fallback while that module is missing) and predictions that are
corrupted copies of them (shifted boundaries, swapped classes, void-label and random-class
patches), then times both evaluations on the same files (best of ``repeats``, alternating),
asserts identical class IoUs, prints a table and writes ``reports/benchmarks/eval.json``.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, ImageDraw

from cityseg_lib.evaluate.folder import evaluate_folder, find_pairs, write_json
from cityseg_lib.data.labels import CLASS_NAMES
from cityseg_lib.paths import project_root, reports_dir

SIZE = (2048, 1024)  # (W, H), the official resolution
VOID_IDS = (0, 1, 2, 3, 4, 5, 6, 9, 14, 15, 16, 29, 30)
EVAL_IDS = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)
SWAPS = {26: 27, 24: 25, 8: 7, 21: 22, 11: 12}  # plausible confusions: car->truck, person->rider, ...


def _fallback_gt(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A street-scene-like labelIds image: sky, buildings/vegetation, road, sidewalks, objects."""
    w, h = size
    img = Image.new("L", size, 23)  # sky
    draw = ImageDraw.Draw(img)
    horizon = int(h * rng.uniform(0.35, 0.5))
    x = 0
    while x < w:  # facades and trees above the horizon
        step = int(rng.integers(80, 400))
        top = int(rng.integers(h // 20, horizon - 20))
        draw.rectangle([x, top, x + step, horizon], fill=int(rng.choice([11, 11, 21, 12, 13])))
        x += step
    draw.rectangle([0, horizon, w, h], fill=7)  # road
    draw.polygon([(0, horizon), (w // 4, horizon), (0, int(h * 0.8))], fill=8)  # sidewalks
    draw.polygon([(w, horizon), (3 * w // 4, horizon), (w, int(h * 0.8))], fill=8)
    for _ in range(int(rng.integers(25, 45))):  # objects, some void
        label = int(rng.choice((24, 25, 26, 26, 26, 27, 28, 31, 32, 33, 17, 19, 20, 22, 4, 5, 6, 9, 14)))
        cx, cy = int(rng.integers(0, w)), int(rng.integers(horizon - 100, h))
        bw, bh = int(rng.integers(10, 300)), int(rng.integers(20, 250))
        if label in (17, 19, 20):  # thin and tall
            bw, cy = max(6, bw // 12), cy - bh
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([cx, cy, cx + bw, cy + bh], fill=label)
    draw.rectangle([0, int(h * 0.9), w, h], fill=1)  # ego vehicle
    draw.rectangle([0, 0, w, 3], fill=3)  # out of roi border
    return np.asarray(img)


def _corrupt(gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible prediction: shifted boundaries, swapped classes, patches of void/random labels."""
    pred = np.roll(gt, (int(rng.integers(-4, 5)), int(rng.integers(-6, 7))), axis=(0, 1)).copy()
    h, w = pred.shape
    for src, dst in SWAPS.items():
        if rng.random() < 0.5:
            y, x = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
            region = pred[y : y + h // 2, x : x + w // 2]
            region[region == src] = dst
    img = Image.fromarray(pred, mode="L")
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(5, 15))):
        label = int(rng.choice(VOID_IDS + EVAL_IDS))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        draw.ellipse([x, y, x + int(rng.integers(10, 200)), y + int(rng.integers(10, 150))], fill=label)
    return np.asarray(img)


def _gt_paths(gt_root: Path) -> list[Path]:
    return sorted((gt_root / "gtFine" / "val").glob("*/*_gtFine_labelIds.png"))


def prepare(root: Path, n: int) -> tuple[Path, Path, str]:
    """Ground truth under ``root/cityscapes`` and predictions under ``root/pred``; reused if complete."""
    gt_root, pred_dir, marker = root / "cityscapes", root / "pred", root / "source.txt"
    try:
        from cityseg_lib.data.demo import make_demo_dataset
    except ImportError:
        make_demo_dataset = None
    wanted = "demo_data" if make_demo_dataset is not None else "fallback"
    have = marker.read_text().strip() if marker.is_file() else ""
    if have == f"{wanted} {n}" and len(_gt_paths(gt_root)) == n and len(list(pred_dir.rglob("*.png"))) == n:
        return gt_root, pred_dir, wanted
    if not marker.is_file() and any(p.exists() for p in (gt_root, pred_dir)):
        raise SystemExit(f"{root} holds data this benchmark did not make; pass another --root")
    print(f"generating {n} ground-truth/prediction pairs ({wanted}) in {root} ...", flush=True)
    marker.unlink(missing_ok=True)
    for made in (gt_root, pred_dir):  # ours (the marker says so): start afresh
        shutil.rmtree(made, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    if make_demo_dataset is not None:
        make_demo_dataset(
            gt_root, train=0, val=n, test=0, size=SIZE, seed=0, coarse=False, workers=os.cpu_count() or 1
        )
    else:
        for i in range(n):
            folder = gt_root / "gtFine" / "val" / ("frankfurt", "lindau", "munster")[i % 3]
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{folder.name}_{i:06d}_{19 + i:06d}_gtFine_labelIds.png"
            Image.fromarray(_fallback_gt(rng, SIZE), mode="L").save(folder / name)
    for gt_path in _gt_paths(gt_root):
        out = pred_dir / gt_path.parent.name / gt_path.name.replace("_gtFine_labelIds", "_pred_labelIds")
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_corrupt(np.asarray(Image.open(gt_path)), rng), mode="L").save(out)
    marker.write_text(f"{wanted} {n}\n")
    return gt_root, pred_dir, wanted


def run_official(pred_dir: Path, gt_root: Path) -> dict:
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official

    args = copy.copy(official.args)
    args.evalInstLevelScore = False  # needs np.in1d (gone in numpy 2.x) and instanceIds files
    args.evalPixelAccuracy = False
    args.JSONOutput = False
    args.quiet = True
    pairs = find_pairs(pred_dir, gt_root, "val")  # same pairing, outside the timed region
    preds, gts = [str(p) for p, _ in pairs], [str(g) for _, g in pairs]
    start, cpu = time.perf_counter(), time.process_time()
    result = official.evaluateImgLists(preds, gts, args)
    result["seconds"], result["cpu_seconds"] = time.perf_counter() - start, time.process_time() - cpu
    return result


def run_ours(pred_dir: Path, gt_root: Path, workers: int | None) -> dict:
    start, cpu = time.perf_counter(), time.process_time()  # process_time: all threads
    result = evaluate_folder(pred_dir, gt_root, "val", workers=workers)
    result["seconds"], result["cpu_seconds"] = time.perf_counter() - start, time.process_time() - cpu
    return result


def _iou_diff(ours: dict, ref: dict) -> float:
    worst = 0.0
    for name in CLASS_NAMES:
        a, b = ours["class_iou"][name], ref["classScores"][name]
        if math.isnan(a) or math.isnan(b):
            if not (math.isnan(a) and math.isnan(b)):
                return math.inf
            continue
        worst = max(worst, abs(a - b))
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50, help="number of 2048x1024 image pairs")
    parser.add_argument("--root", type=Path, default=project_root() / "data" / "bench_eval")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each; the best counts")
    parser.add_argument("--workers", type=int, default=None, help="evaluate_folder workers (default: all cores)")
    parser.add_argument("--out", type=Path, default=reports_dir() / "benchmarks" / "eval.json")
    args = parser.parse_args(argv)

    gt_root, pred_dir, source = prepare(args.root, args.n)
    run_ours(pred_dir, gt_root, args.workers)  # warm the page cache for both
    official_s, ours_s, official_cpu, ours_cpu = [], [], [], []
    for _ in range(args.repeats):  # alternate, so background load hits both alike
        ref = run_official(pred_dir, gt_root)
        ours = run_ours(pred_dir, gt_root, args.workers)
        official_s.append(ref["seconds"])
        ours_s.append(ours["seconds"])
        official_cpu.append(ref["cpu_seconds"])
        ours_cpu.append(ours["cpu_seconds"])
    single = run_ours(pred_dir, gt_root, 1)["seconds"]

    diff = _iou_diff(ours, ref)
    if diff > 1e-12 or abs(ours["miou"] - ref["averageScoreClasses"]) > 1e-12:
        print(f"FAIL: class IoUs differ from the official script (max |diff| {diff})", file=sys.stderr)
        return 1
    speedup = min(official_s) / min(ours_s)
    workers = args.workers if args.workers is not None else os.cpu_count()
    report = {
        "benchmark": "evaluate_folder vs cityscapesScripts evalPixelLevelSemanticLabeling",
        "pairs": args.n,
        "size": list(SIZE),
        "data": source,
        "cpu_count": os.cpu_count(),
        "workers": workers,
        "official_s": official_s,
        "ours_s": ours_s,
        "ours_single_worker_s": single,
        # CPU seconds (all threads): the work itself, robust to other jobs sharing the cores
        "official_cpu_s": min(official_cpu),
        "ours_cpu_s": min(ours_cpu),
        "load_average_1min": os.getloadavg()[0],
        "official_ms_per_pair": 1000 * min(official_s) / args.n,
        "ours_ms_per_pair": 1000 * min(ours_s) / args.n,
        "speedup": speedup,
        "max_abs_class_iou_diff": diff,
        "miou": ours["miou"],
        "official_miou": ref["averageScoreClasses"],
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pillow": PIL.__version__,
        },
    }
    rows = [
        ("official (cityscapesScripts)", min(official_s), official_s),
        (f"evaluate_folder ({workers} workers)", min(ours_s), ours_s),
        ("evaluate_folder (1 worker)", single, [single]),
    ]
    print(f"\n{args.n} pairs at {SIZE[0]}x{SIZE[1]} ({source} data), {os.cpu_count()} CPUs")
    print(f"{'evaluation':<32} {'best s':>7} {'ms/pair':>8}   runs")
    for name, best, runs in rows:
        print(f"{name:<32} {best:7.3f} {1000 * best / args.n:8.1f}   {', '.join(f'{r:.3f}' for r in runs)}")
    print(f"CPU time: official {min(official_cpu):.3f} s, ours {min(ours_cpu):.3f} s (all threads); "
          f"1-min load average {os.getloadavg()[0]:.2f}")
    print(f"speedup {speedup:.2f}x; mIoU {ours['miou']:.6f} (official {ref['averageScoreClasses']:.6f}), "
          f"max |class IoU diff| {diff:.1e}")
    print(f"wrote {write_json(report, args.out)}")
    return 0 if speedup >= 2.0 else 2


if __name__ == "__main__":
    sys.exit(main())
