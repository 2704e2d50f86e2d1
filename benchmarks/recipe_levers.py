"""Levers the demo recipe search had not tried: the loss at a finer label resolution, soft labels, the
learning-rate schedule and the batch size (issue "The study concludes", benchmarks/README.md §7).

The demo U-Net (width 8, depth 4) trains on the demo data's 128 frames at 48x96 for 16 epochs, AdamW,
lr 1e-2, batch 4, StepLR every 5 epochs by 0.3 (``params/demo/train.yaml``), with one of these changes:

* ``base``: none (the demo's recipe; cross-entropy against the labels resized nearest to 48x96);
* ``up2`` / ``up4``: the logits bilinearly up-sampled 2x / 4x and the loss taken against the labels at
  that size (HRNet's Cityscapes recipe scores its loss at the label's resolution; a pole one pixel wide
  at 96x192 is gone from a nearest 48x96 mask);
* ``soft``: the target of each 48x96 pixel is the class shares of the full-resolution pixels it covers;
* ``cos`` / ``onecycle``: cosine annealing per step from lr 1e-2 / OneCycle to lr 2e-2, instead of StepLR;
* ``bs2`` / ``bs1``: batch 2 (lr 1e-2) / batch 1 (lr 3e-3): more optimiser steps for the same images.

The loop is the engine's step written out (the engine takes one label size and StepLR only); each run
is scored by the official protocol (logits up-sampled to the 1024x512 labels of all 64 validation
frames). One torch thread per run; ``--jobs 2`` runs two at once.

    .venv/bin/python benchmarks/recipe_levers.py --jobs 2 --seeds 0 1 base cos up2 up4 soft
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: lever -> (label up-sampling factor or "soft", schedule, batch size, lr)
LEVERS = {
    "base": (1, "step", 4, 1e-2), "up2": (2, "step", 4, 1e-2), "up4": (4, "step", 4, 1e-2),
    "soft": ("soft", "step", 4, 1e-2), "cos": (1, "cos", 4, 1e-2), "onecycle": (1, "onecycle", 4, 2e-2),
    "bs2": (1, "step", 2, 1e-2), "bs1": (1, "step", 1, 3e-3),
}
SIZE, EPOCHS = (48, 96), 16


def demo_root() -> Path:
    """The demo data as ``make report`` generates it (``params/demo/data.yaml``), generated if missing."""
    from cityseg_lib.data.demo import make_demo_dataset
    from cityseg_lib.data.source import data_settings

    st = data_settings("demo")
    root = ROOT / "data" / str(st["folder"])
    if not (root / "README.txt").is_file():
        make_demo_dataset(root, train=int(st["train"]), val=int(st["val"]), test=int(st["test"]),
                          size=tuple(st["size"]), seed=int(st["seed"]), coarse=False, workers=1)
    return root


def run_one(lever: str, seed: int, root: str) -> dict:
    """Train and score one (lever, seed) in this process (1 torch thread)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from cityseg_lib.data.images import read_image, read_train_ids
    from cityseg_lib.data.labels import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES
    from cityseg_lib.data.layout import find_samples
    from cityseg_lib.data.transforms import normalize, resize_pair
    from cityseg_lib.models import build_model
    from cityseg_lib.train.metrics import ConfusionMatrix, predict_full_res
    from cityseg_lib.train.optimizers import make_optimizer

    torch.set_num_threads(1)
    factor, schedule, batch, lr = LEVERS[lever]

    def frames(split):
        for s in find_samples(root, split, "fine"):
            yield torch.from_numpy(read_image(s.image)).permute(2, 0, 1), torch.from_numpy(read_train_ids(s.label))

    xs, ys = [], []
    for rgb, lab in frames("train"):
        xs.append(resize_pair(rgb, lab, SIZE)[0])
        if factor == "soft":  # class shares of the covered full-resolution pixels; channel 19 = ignore
            onehot = F.one_hot(torch.where(lab == IGNORE_INDEX, NUM_CLASSES, lab.long()), NUM_CLASSES + 1)
            ys.append(F.adaptive_avg_pool2d(onehot.permute(2, 0, 1).float()[None], SIZE)[0])
        else:
            ys.append(resize_pair(rgb, lab, (SIZE[0] * factor, SIZE[1] * factor))[1].long())
    x_train, y_train = torch.stack(xs), torch.stack(ys)
    val = [(resize_pair(rgb, lab, SIZE)[0], lab.long()) for rgb, lab in frames("val")]

    def loss_of(logits, y):
        if factor == "soft":
            valid = 1 - y[:, NUM_CLASSES]
            target = y[:, :NUM_CLASSES] / valid.clamp(min=1e-6)[:, None]
            return -((target * F.log_softmax(logits, 1)).sum(1) * valid).sum() / valid.sum().clamp(min=1)
        if factor != 1:
            logits = F.interpolate(logits, size=y.shape[-2:], mode="bilinear", align_corners=False)
        return F.cross_entropy(logits, y, ignore_index=IGNORE_INDEX)

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build_model("unet", num_classes=NUM_CLASSES, base_width=8, depth=4)
    opt = make_optimizer("adamw", model.parameters(), lr, 1e-4)
    steps = len(x_train) // batch
    sched = {"step": lambda: torch.optim.lr_scheduler.StepLR(opt, 5, 0.3),
             "cos": lambda: torch.optim.lr_scheduler.CosineAnnealingLR(opt, EPOCHS * steps),
             "onecycle": lambda: torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=EPOCHS * steps)}[schedule]()
    cpu0, loss_sum = time.process_time(), 0.0
    for _ in range(EPOCHS):
        model.train()
        order, loss_sum = torch.randperm(len(x_train), generator=gen), 0.0
        for i in range(steps):
            idx = order[i * batch : (i + 1) * batch]
            loss = loss_of(model(normalize(x_train[idx])), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item()
            if schedule != "step":
                sched.step()
        if schedule == "step":
            sched.step()
    train_cpu = time.process_time() - cpu0
    model.eval()
    confmat = ConfusionMatrix(NUM_CLASSES)
    with torch.no_grad():
        for image, label in val:
            logits = model(normalize(image[None]))
            confmat.update(predict_full_res(logits, tuple(label.shape))[0], label)
    iou = confmat.compute().class_iou
    return {"lever": lever, "seed": seed, "miou": float(np.nanmean(iou)), "classes_over_10": int((iou > 0.1).sum()),
            "thin_iou": {n: float(iou[CLASS_NAMES.index(n)]) for n in ("pole", "traffic sign", "person", "bicycle")},
            "final_train_loss": loss_sum / steps, "train_cpu_s": train_cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("levers", nargs="*", metavar="LEVER",
                    help=f"any of {', '.join(LEVERS)} (default: all)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--jobs", type=int, default=1, help="runs at once (one process and torch thread each)")
    ap.add_argument("--one", nargs=2, metavar=("LEVER", "SEED"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    unknown = [name for name in args.levers if name not in LEVERS]
    if unknown:
        ap.error(f"unknown lever {unknown[0]!r}: choose from {', '.join(LEVERS)}")
    args.levers = args.levers or list(LEVERS)
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]), str(demo_root()))))
        return
    from common import format_table, write_report

    demo_root()  # generate once, before the workers start
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}

    def child(job):
        out = subprocess.run([sys.executable, __file__, "--one", job[0], str(job[1])], env=env, check=True,
                             capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        results = list(pool.map(child, [(lever, seed) for lever in args.levers for seed in args.seeds]))
    rows = [[r["lever"], r["seed"], 100 * r["miou"], r["classes_over_10"],
             " / ".join(f"{100 * v:.0f}" for v in r["thin_iou"].values()), r["final_train_loss"], r["train_cpu_s"]]
            for r in results]
    print(format_table(["lever", "seed", "full-res mIoU %", "classes > 10%", "pole/sign/person/bicycle %",
                        "last train loss", "train CPU s"], rows))
    write_report("recipe_levers", benchmark="demo recipe levers", settings={"size": SIZE, "epochs": EPOCHS,
                 "levers": {k: LEVERS[k] for k in args.levers}, "seeds": args.seeds}, results=results,
                 target={"text": "a lever that takes the demo U-Net to the issue's 30% full-res mIoU",
                         "met": any(r["miou"] >= 0.30 for r in results)})


if __name__ == "__main__":
    main()
