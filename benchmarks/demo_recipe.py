"""The demo profile's training recipe: full-resolution val mIoU against CPU time (issue "The study concludes").

Each recipe is a TrainConfig (explicit keys over the TrainConfig defaults, so a recipe means the same
whatever ``params/demo/train.yaml`` says today) trained with :func:`cityseg_lib.train.engine.fit` on
the demo data, exactly as a notebook would, and scored by the official protocol (logits up-sampled to
the 1024x512 labels of the demo validation split, all of its frames). Runs are cached in
``--runs-dir`` (a finished run is reused), so the table can be printed again for free.

    .venv/bin/python benchmarks/demo_recipe.py --list
    .venv/bin/python benchmarks/demo_recipe.py --jobs 2 unet_96_e10 unet_c128_e12      # train, then the table
    .venv/bin/python benchmarks/demo_recipe.py --table-only                            # every finished recipe
    .venv/bin/python benchmarks/demo_recipe.py --table-only --plot benchmarks/demo_recipe.png   # and the curve

Every run uses one torch thread (``OMP_NUM_THREADS=1``); ``--jobs 2`` runs two recipes at once, which
uses a 2-core machine better than one two-threaded run. Columns: full-res mIoU, classes above 10% IoU
(of 19), the IoU of the four classes that test a recipe (pole, traffic sign, person, bicycle),
training images seen, the wall seconds of the whole ``fit`` (data, training, per-epoch validation,
final evaluations), and ``last%``: how much the last epoch lowered the validation loss below the best
of the earlier epochs (<= 1%: the curve has flattened).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: The demo profile before this search (params/demo/train.yaml of commit 6f80ea1 + the notebooks' widths).
OLD = dict(image_size=[96, 192], epochs=10, batch_size=4, lr=3e-3, step_size=4, gamma=0.5)
UNET = dict(model="unet", model_options={"base_width": 8, "depth": 3})
FCN = dict(model="simple_fcn", model_options={"base_width": 32})
SWIN = dict(model="swin2_jnet", model_options={
    "encoder": "swinv2_tiny_window8_256", "pretrained": False, "dropout": 0.1,
    "encoder_kwargs": {"embed_dim": 32, "depths": [1, 1, 2, 1], "num_heads": [1, 2, 4, 8], "window_size": 8}})
#: Recipes with ``_frames: N`` train on N frames of a larger generated pool (the demo generator with
#: params/demo/data.yaml's settings and 512 training frames; its 16 validation frames are the demo's,
#: byte for byte: frame i of a split depends only on (seed, split, i)); the others on the demo data.
POOL_FRAMES = 512
#: Whole images at 64x128 (a U-Net could score 78% there: resolution is not what limits the demo),
#: 4 per batch at lr 1e-2 (more steps beat bigger batches; lr 1e-2 beats 3e-3 at batch 4).
LOW = dict(image_size=[64, 128], batch_size=4, lr=1e-2)
#: Crops of a 256x512 cache (half the demo's 1024x512 frames), validated on 4 frames per epoch.
CROP = dict(image_size=[256, 512], crop_size=[128, 256], batch_size=4, lr=3e-3, max_val_images=4)


#: CPU seconds a recipe process spends importing torch and the package before ``fit`` (measured:
#: 8.4 s); subtracted from the runs that predate the ``fit_cpu_s`` field of recipe_wall.json.
IMPORT_CPU_S = 8.4


def _r(*parts: dict, **kw) -> dict:
    out: dict = {}
    for p in parts:
        out.update(p)
    out.update(kw)
    return out


RECIPES: dict[str, dict] = {
    # --- today's demo (baseline of the curve)
    "unet_96_e10": _r(OLD, UNET),
    "fcn_96_e10": _r(OLD, FCN),
    "swin_96_e10": _r(OLD, SWIN),
    "unet_96_e10_again": _r(OLD, UNET),  # = unet_96_e10 in another folder: its CPU seconds (added later)
    # --- class-weighted cross-entropy (``_class_weights``: ENet's 1/ln(1.02 + p), or sqrt(p_max / p))
    "unet_96_e10_cw_enet": _r(OLD, UNET, _class_weights="enet"),
    "unet_96_e10_cw_sqrt": _r(OLD, UNET, _class_weights="sqrt"),
    # --- whole images at a higher resolution
    "unet_128_e10": _r(OLD, UNET, image_size=[128, 256]),
    # --- crops of a higher-resolution cache
    "unet_c128_e8": _r(CROP, UNET, epochs=8, step_size=3, gamma=0.5),
    "unet_c128_e12": _r(CROP, UNET, epochs=12, step_size=4, gamma=0.5),
    "unet_c128_e12_cb": _r(CROP, UNET, epochs=12, step_size=4, gamma=0.5, crop_class_balance=0.5),
    "unet_c128_e12_lr1e2": _r(CROP, UNET, epochs=12, step_size=4, gamma=0.5, lr=1e-2),
    "unet_c96_e12": _r(CROP, UNET, crop_size=[96, 192], epochs=12, step_size=4, gamma=0.5),
    # --- more optimiser steps for the same images: smaller batches
    "unet_96_e10_bs1": _r(OLD, UNET, batch_size=1),
    "unet_96_e10_bs2": _r(OLD, UNET, batch_size=2),
    "unet_c128_e12_bs1": _r(CROP, UNET, epochs=12, step_size=4, gamma=0.5, batch_size=1),
    "unet_96_e10_bs1_w4d4": _r(OLD, UNET, batch_size=1, model_options={"base_width": 4, "depth": 4}),
    "unet_96_e10_bs1_w8d4": _r(OLD, UNET, batch_size=1, model_options={"base_width": 8, "depth": 4}),
    "unet_128_e10_bs1": _r(OLD, UNET, batch_size=1, image_size=[128, 256], max_val_images=4),
    "unet_c96_192_e12_bs1_cb": _r(CROP, UNET, image_size=[192, 384], crop_size=[96, 192], batch_size=1, epochs=12,
                                  step_size=4, gamma=0.5, crop_class_balance=0.5),
    # --- lower resolution, more epochs (a U-Net at 64x128 could score 78% mIoU: resolution is not the limit)
    "unet_64_e20_bs1": _r(OLD, UNET, image_size=[64, 128], batch_size=1, epochs=20, step_size=8, gamma=0.4),
    "unet_96_e20_bs1": _r(OLD, UNET, batch_size=1, epochs=20, step_size=8, gamma=0.4),
    # --- the budget curve: 64x128 whole images, batch 4, lr 1e-2 (epochs x frames = images seen)
    "unet_64_f64_e16": _r(LOW, UNET, epochs=16, step_size=6, gamma=0.3),
    "unet_64_f128_e8": _r(LOW, UNET, _frames=128, epochs=8, step_size=3, gamma=0.3),
    "unet_48_f128_e14": _r(LOW, UNET, _frames=128, image_size=[48, 96], epochs=14, step_size=5, gamma=0.3),
    "unet_48_f512_e4": _r(LOW, UNET, _frames=512, image_size=[48, 96], epochs=4, step_size=2, gamma=0.3),
    "unet_48_f512_e8": _r(LOW, UNET, _frames=512, image_size=[48, 96], epochs=8, step_size=3, gamma=0.3),
    "unet_48_f512_e16": _r(LOW, UNET, _frames=512, image_size=[48, 96], epochs=16, step_size=6, gamma=0.3),
    "unet_48_f512_e32": _r(LOW, UNET, _frames=512, image_size=[48, 96], epochs=32, step_size=12, gamma=0.3),
    "unet_64_f64_e30": _r(LOW, UNET, epochs=30, step_size=12, gamma=0.3),
    "unet_64_f256_e8": _r(LOW, UNET, _frames=256, epochs=8, step_size=3, gamma=0.3),
    "unet_64_f512_e4": _r(LOW, UNET, _frames=512, epochs=4, step_size=2, gamma=0.3),
    "unet_64_f512_e8": _r(LOW, UNET, _frames=512, epochs=8, step_size=3, gamma=0.3),
    "unet_64_f512_e16": _r(LOW, UNET, _frames=512, epochs=16, step_size=6, gamma=0.3),
    "unet_64_f512_e32": _r(LOW, UNET, _frames=512, epochs=32, step_size=12, gamma=0.3),
    "swin_64_f512_e16": _r(LOW, SWIN, _frames=512, epochs=16, step_size=6, gamma=0.3),
    "swin_64_f512_e16_lr3e-3": _r(LOW, SWIN, _frames=512, epochs=16, step_size=6, gamma=0.3, lr=3e-3),
    "fcn_64_f512_e16": _r(LOW, FCN, _frames=512, epochs=16, step_size=6, gamma=0.3),
    # --- session 5: what else buys mIoU at ~100 CPU s (8 epochs of 512 frames at 64x128)?
    "unet_64_f512_e8_flip": _r(LOW, UNET, _frames=512, epochs=8, step_size=3, gamma=0.3, augment="replace",
                               crop_scale=[1.0, 1.0]),
    "unet_64_f512_e8_d4": _r(LOW, UNET, _frames=512, epochs=8, step_size=3, gamma=0.3,
                             model_options={"base_width": 8, "depth": 4}),
    "unet_64_f512_e8_lr2e2": _r(LOW, UNET, _frames=512, epochs=8, step_size=3, gamma=0.3, lr=2e-2),
    "unet_128_w4d4_f512_e4": _r(LOW, UNET, _frames=512, image_size=[128, 256], epochs=4, step_size=2, gamma=0.3,
                                model_options={"base_width": 4, "depth": 4}),
    "swin_64_f512_e8": _r(LOW, SWIN, _frames=512, epochs=8, step_size=3, gamma=0.3),
    "fcn_64_f512_e8": _r(LOW, FCN, _frames=512, epochs=8, step_size=3, gamma=0.3),
    # --- session 5: 48x96 on 128 frames for every architecture (48x96: the cheapest size all three take)
    "unet_48_f128_e14_d4": _r(LOW, UNET, _frames=128, image_size=[48, 96], epochs=14, step_size=5, gamma=0.3,
                              model_options={"base_width": 8, "depth": 4}),
    "unet_48_f256_e8_d4": _r(LOW, UNET, _frames=256, image_size=[48, 96], epochs=8, step_size=3, gamma=0.3,
                             model_options={"base_width": 8, "depth": 4}),
    "swin_48_f128_e14": _r(LOW, SWIN, _frames=128, image_size=[48, 96], epochs=14, step_size=5, gamma=0.3),
    "swin_48_f128_e14_lr3e-3": _r(LOW, SWIN, _frames=128, image_size=[48, 96], epochs=14, step_size=5, gamma=0.3,
                                  lr=3e-3),
    "fcn_48_f128_e14": _r(LOW, FCN, _frames=128, image_size=[48, 96], epochs=14, step_size=5, gamma=0.3),
    # --- session 6: a schedule whose curves flatten by the last epoch, at the same cost (decays at 4, 8 and 12,
    #     or to gamma 0.2 at 5 and 10)
    "unet_48_f128_e14_d4_s4": _r(LOW, UNET, _frames=128, image_size=[48, 96], epochs=14, step_size=4, gamma=0.3,
                                 model_options={"base_width": 8, "depth": 4}),
    "swin_48_f128_e14_s4": _r(LOW, SWIN, _frames=128, image_size=[48, 96], epochs=14, step_size=4, gamma=0.3),
    "fcn_48_f128_e14_s4": _r(LOW, FCN, _frames=128, image_size=[48, 96], epochs=14, step_size=4, gamma=0.3),
    "unet_48_f128_e14_d4_g2": _r(LOW, UNET, _frames=128, image_size=[48, 96], epochs=14, step_size=5, gamma=0.2,
                                 model_options={"base_width": 8, "depth": 4}),
    "fcn_48_f128_e14_g2": _r(LOW, FCN, _frames=128, image_size=[48, 96], epochs=14, step_size=5, gamma=0.2),
    # --- session 5: what 4x the demo's per-run budget buys (does anything reach 30% / 35%?)
    "unet_64_f512_e32_d4": _r(LOW, UNET, _frames=512, epochs=32, step_size=12, gamma=0.3,
                              model_options={"base_width": 8, "depth": 4}),
    "swin_64_f512_e32": _r(LOW, SWIN, _frames=512, epochs=32, step_size=12, gamma=0.3),
    # --- session 6: is 30.6% that recipe's level or one lucky seed?
    "unet_64_f512_e32_d4_seed1": _r(LOW, UNET, _frames=512, epochs=32, step_size=12, gamma=0.3, seed=1,
                                    model_options={"base_width": 8, "depth": 4}),
    "unet_64_f512_e32_d4_seed2": _r(LOW, UNET, _frames=512, epochs=32, step_size=12, gamma=0.3, seed=2,
                                    model_options={"base_width": 8, "depth": 4}),
    # --- session 9: at the top of the curve, is it capacity or resolution that stops the U-Net short of 35%?
    "unet_64_f512_e32_w16d4": _r(LOW, UNET, _frames=512, epochs=32, step_size=12, gamma=0.3,
                                 model_options={"base_width": 16, "depth": 4}),
    "unet_96_f512_e32_d4": _r(LOW, UNET, _frames=512, image_size=[96, 192], epochs=32, step_size=12, gamma=0.3,
                              model_options={"base_width": 8, "depth": 4}),
    # --- session 14: half the 30% recipe (16 epochs), depth 4: does a U-Net reach 30% at ~100 CPU s (AVX-512)?
    "unet_64_f512_e16_d4": _r(LOW, UNET, _frames=512, epochs=16, step_size=6, gamma=0.3,
                              model_options={"base_width": 8, "depth": 4}),
    "unet_64_f512_e16_d4_seed1": _r(LOW, UNET, _frames=512, epochs=16, step_size=6, gamma=0.3, seed=1,
                                    model_options={"base_width": 8, "depth": 4}),
    # --- session 20: masks resized at pixel centres (nearest-exact) against the top-left corners every run used before
    #     (nearest: each label half a training pixel right of and below its image); the demo's recipe of 2026-12-05
    "demo_unet_e17_nearest": _r(LOW, UNET, image_size=[48, 96], epochs=17, step_size=5, gamma=0.3,
                                model_options={"base_width": 8, "depth": 4}, mask_resize="nearest"),
    "demo_unet_e17": _r(LOW, UNET, image_size=[48, 96], epochs=17, step_size=5, gamma=0.3,
                        model_options={"base_width": 8, "depth": 4}, mask_resize="nearest-exact"),
    "demo_fcn_e17_nearest": _r(LOW, FCN, image_size=[48, 96], epochs=17, step_size=5, gamma=0.3,
                               mask_resize="nearest"),
    "demo_fcn_e17": _r(LOW, FCN, image_size=[48, 96], epochs=17, step_size=5, gamma=0.3,
                       mask_resize="nearest-exact"),
    "unet_64_f512_e32_d4_exact": _r(LOW, UNET, _frames=512, epochs=32, step_size=12, gamma=0.3,
                                    model_options={"base_width": 8, "depth": 4}, mask_resize="nearest-exact"),
    "unet_64_f512_e32_w16d4_exact": _r(LOW, UNET, _frames=512, epochs=32, step_size=12, gamma=0.3,
                                       model_options={"base_width": 16, "depth": 4}, mask_resize="nearest-exact"),
    # --- session 21: main runs longer than the ablations? the width-16 U-Net at 20 and 24 epochs
    "unet_64_f512_e20_w16d4_exact": _r(LOW, UNET, _frames=512, epochs=20, step_size=7, gamma=0.3,
                                       model_options={"base_width": 16, "depth": 4}, mask_resize="nearest-exact"),
    "unet_64_f512_e24_w16d4_exact": _r(LOW, UNET, _frames=512, epochs=24, step_size=9, gamma=0.3,
                                       model_options={"base_width": 16, "depth": 4}, mask_resize="nearest-exact"),
    # --- session 21: the other two architectures at the recipe a 35% U-Net needs (26 epochs, 64x128, 512 frames)
    "swin_64_f512_e26_exact": _r(LOW, SWIN, _frames=512, epochs=26, step_size=9, gamma=0.3, mask_resize="nearest-exact"),
    "fcn_64_f512_e26_exact": _r(LOW, FCN, _frames=512, epochs=26, step_size=9, gamma=0.3, mask_resize="nearest-exact"),
    # --- session 22 (Intel Xeon with AMX): the same in bf16 autocast (cpu_bf16: on), and fewer frames for as many steps
    "unet_64_f512_e26_w16d4_bf16": _r(LOW, UNET, _frames=512, epochs=26, step_size=9, gamma=0.3, cpu_bf16="on",
                                      model_options={"base_width": 16, "depth": 4}, mask_resize="nearest-exact"),
    "unet_64_f512_e24_w16d4_bf16": _r(LOW, UNET, _frames=512, epochs=24, step_size=9, gamma=0.3, cpu_bf16="on",
                                      model_options={"base_width": 16, "depth": 4}, mask_resize="nearest-exact"),
    "swin_64_f512_e26_bf16": _r(LOW, SWIN, _frames=512, epochs=26, step_size=9, gamma=0.3, cpu_bf16="on",
                                mask_resize="nearest-exact"),
    "fcn_64_f512_e26_bf16": _r(LOW, FCN, _frames=512, epochs=26, step_size=9, gamma=0.3, cpu_bf16="on",
                               mask_resize="nearest-exact"),
    "unet_64_f128_e104_w16d4_bf16": _r(LOW, UNET, _frames=128, epochs=104, step_size=36, gamma=0.3, cpu_bf16="on",
                                       model_options={"base_width": 16, "depth": 4}, mask_resize="nearest-exact"),
    "unet_64_f256_e52_w16d4_bf16": _r(LOW, UNET, _frames=256, epochs=52, step_size=18, gamma=0.3, cpu_bf16="on",
                                      model_options={"base_width": 16, "depth": 4}, mask_resize="nearest-exact"),
    # --- longer: where does each approach get to?
    "unet_c128_e36": _r(CROP, UNET, epochs=36, step_size=12, gamma=0.3),
    "unet_128_e36": _r(OLD, UNET, image_size=[128, 256], max_val_images=4, epochs=36, step_size=12, gamma=0.3),
}


def pool_root() -> Path:
    """The larger frame pool (generated on first use, one worker: about 3 min)."""
    from cityseg_lib.data.demo import make_demo_dataset
    from cityseg_lib.data.source import data_settings

    root = ROOT / "data" / f"recipe_pool_{POOL_FRAMES}"
    if not (root / "README.txt").is_file():
        st = data_settings("demo")
        make_demo_dataset(root, train=POOL_FRAMES, val=int(st["val"]), test=0, size=tuple(st["size"]),
                          seed=int(st["seed"]), coarse=False, workers=1)
    return root


def _config(name: str, runs_dir: str, data_root: str):
    from cityseg_lib.config import TrainConfig
    from cityseg_lib.strict import from_dict

    # every recipe before session 20 trained with the masks resized as TrainConfig did then (plain nearest)
    values = {"mask_resize": "nearest", **{k: v for k, v in RECIPES[name].items() if not k.startswith("_")}}
    frames = RECIPES[name].get("_frames")
    if frames:
        data_root, values["train_subset"] = str(pool_root()), int(frames)
    values.update(name=name, profile="recipe", runs_dir=runs_dir, data_root=data_root, progress=False, device="cpu")
    return from_dict(TrainConfig, values, source=f"recipe {name}")


def class_weights(cfg, kind: str) -> list[float]:
    """Per-class cross-entropy weights from the training labels' pixel shares ``p`` (capped at 50,
    scaled to a mean of 1 per labelled pixel): ``enet`` 1/ln(1.02 + p) (ENet), ``sqrt`` sqrt(p_max / p)."""
    import numpy as np

    from cityseg_lib.data.labels import CLASS_NAMES
    from cityseg_lib.data.statistics import class_statistics

    pixels = class_statistics(cfg.data_root, cfg.train_split, cfg.annotation, stride=4)["pixels"]
    p = np.array([pixels[n] for n in CLASS_NAMES], dtype=float)
    p /= p.sum()
    w = 1.0 / np.log(1.02 + p) if kind == "enet" else np.where(p > 0, np.sqrt(p.max() / np.maximum(p, 1e-9)), 1.0)
    w = np.minimum(w, 50.0)
    return (w / (w * p).sum()).tolist()


def _train_one(name: str, runs_dir: str, data_root: str) -> None:
    """Child process: one recipe, one thread."""
    import torch

    torch.set_num_threads(1)
    from cityseg_lib.train import engine
    from cityseg_lib.train.engine import fit

    cfg = _config(name, runs_dir, data_root)
    kind = RECIPES[name].get("_class_weights")
    if kind:  # not a config key: the engine's loss is replaced for this process only
        from cityseg_lib.train.losses import CrossEntropyLoss

        weights = class_weights(cfg, kind)
        engine.build_loss = lambda loss_name: CrossEntropyLoss(weight=weights)
    t0, c0 = time.perf_counter(), time.process_time()
    out = fit(cfg, resume=True, log=lambda line: print(f"[{name}] {line}", flush=True))
    marker = out / "recipe_wall.json"
    if not marker.exists():  # cpu_s: the whole process; fit_cpu_s: fit alone (what a notebook pays per run)
        marker.write_text(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time(),
                                      "fit_cpu_s": time.process_time() - c0, "load": os.getloadavg()}))


def _row(name: str, runs_dir: str, data_root: str) -> dict | None:
    from cityseg_lib import runstore
    from cityseg_lib.data.labels import CLASS_NAMES

    cfg = _config(name, runs_dir, data_root)
    run = runstore.run_dir(cfg)
    if not (run / "summary.json").is_file():
        return None
    s = runstore.load_summary(run)
    full = s["val_full_res"] or {}
    iou = [full["class_iou"].get(c) for c in CLASS_NAMES]
    gain = runstore.last_epoch_gain(runstore.load_metrics(run))
    wall = json.loads((run / "recipe_wall.json").read_text()) if (run / "recipe_wall.json").is_file() else {}
    size = "x".join(map(str, cfg.image_size)) + (f"/c{'x'.join(map(str, cfg.crop_size))}" if cfg.crop_size else "")
    return {"recipe": name, "model": cfg.model, "size": size, "epochs": s["epochs_run"], "frames": s["train_images"],
            "images": s["train_images"] * s["epochs_run"], "miou": 100 * full.get("miou", float("nan")),
            "above10": sum(1 for v in iou if v is not None and v > 0.10),
            "pole": 100 * full["class_iou"]["pole"], "sign": 100 * full["class_iou"]["traffic sign"],
            "person": 100 * full["class_iou"]["person"], "bicycle": 100 * full["class_iou"]["bicycle"],
            "best": s["best_epoch"], "last_gain": 100 * gain, "wall_s": wall.get("wall_s", s["wall_time_s"]),
            "cpu_s": wall.get("fit_cpu_s", wall.get("cpu_s", float("nan")) - IMPORT_CPU_S),
            "train_s": s["train_time_s"]}


def table(names: list[str], runs_dir: str, data_root: str) -> str:
    head = ("| recipe | model | size (/crop) | frames | ep | imgs | full-res mIoU | >10% | pole | sign | person | bicycle "
            "| best ep | last% | train s | wall s | CPU s |")
    lines = [head, "|" + "---|" * 17]
    for name in names:
        r = _row(name, runs_dir, data_root)
        if r is None:
            continue
        lines.append(f"| {r['recipe']} | {r['model']} | {r['size']} | {r['frames']} | {r['epochs']} | {r['images']} | {r['miou']:.1f} "
                     f"| {r['above10']} | {r['pole']:.0f} | {r['sign']:.0f} | {r['person']:.0f} | {r['bicycle']:.0f} "
                     f"| {r['best']} | {r['last_gain']:.1f} | {r['train_s']:.0f} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} |")
    return "\n".join(lines)


def plot(names: list[str], runs_dir: str, data_root: str, path: str) -> None:
    """Full-resolution mIoU against CPU seconds per run (log x), one colour per model, one marker per
    input size, with the issue's targets and the demo's per-run cost; the curve of README §7."""
    import math

    from matplotlib.figure import Figure

    rows = [r for r in (_row(n, runs_dir, data_root) for n in names) if r and math.isfinite(r["cpu_s"])]
    colours = {"unet": "tab:blue", "swin2_jnet": "tab:orange", "simple_fcn": "tab:green"}
    markers = {"48x96": "v", "64x128": "o", "96x192": "s", "128x256": "D"}
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    for r in rows:
        ax.scatter(r["cpu_s"], r["miou"], c=colours.get(r["model"], "grey"), marker=markers.get(r["size"], "x"),
                   s=20 + r["above10"] * 8, alpha=0.85, edgecolors="black", linewidths=0.4)
    labels = {"unet_48_f128_e14_d4": ("the demo's U-Net", (-40, -34))}
    if rows:
        labels[max(rows, key=lambda r: r["miou"])["recipe"]] = ("the search's best run", (-215, -22))
    for r in rows:
        if r["recipe"] in labels:
            text, offset = labels[r["recipe"]]
            ax.annotate(f"{text} ({r['recipe']}):\n{r['miou']:.1f}%, {r['above10']} classes > 10%",
                        (r["cpu_s"], r["miou"]), xytext=offset, textcoords="offset points", fontsize=8,
                        arrowprops={"arrowstyle": "-", "lw": 0.6})
    ax.axhline(30, color="tab:blue", ls="--", lw=1, label="target: U-Net 30%")
    ax.axhline(35, color="black", ls="--", lw=1, label="target: best model 35%")
    ax.axvspan(30, 100, color="grey", alpha=0.12, label="what a demo run may cost (25 min, ~30 runs, 2 cores)")
    for model, colour in colours.items():
        ax.scatter([], [], c=colour, marker="o", label=model)
    for size, marker in ((k, v) for k, v in markers.items() if any(r["size"] == k for r in rows)):
        ax.scatter([], [], c="white", edgecolors="black", marker=marker, label=size)
    ax.set_xscale("log")
    ax.set_xlabel("CPU seconds of one run (fit: training, per-epoch validation, final evaluations)")
    ax.set_ylabel("full-resolution val mIoU (%), one seed")
    ax.set_title("Demo recipe search: mIoU against cost (marker area: classes above 10% IoU)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right", ncol=2)
    fig.savefig(path, dpi=110)
    print(f"wrote {path} ({len(rows)} runs)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("recipes", nargs="*")
    p.add_argument("--jobs", type=int, default=2, help="recipes trained at once (one torch thread each)")
    p.add_argument("--runs-dir", default="/tmp/cityseg_recipe_runs")
    p.add_argument("--data-root", default="", help="default: the demo profile's generated data (made if missing)")
    p.add_argument("--list", action="store_true")
    p.add_argument("--table-only", action="store_true")
    p.add_argument("--plot", metavar="PNG", help="also draw mIoU against CPU seconds of the finished recipes")
    p.add_argument("--one", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.list:
        for k, v in RECIPES.items():
            print(k, json.dumps(v))
        return 0
    if not a.data_root:
        from cityseg_lib.data.source import ensure_data

        a.data_root = str(ensure_data("", "demo"))
    if a.one:
        _train_one(a.one, a.runs_dir, a.data_root)
        return 0
    unknown = [n for n in a.recipes if n not in RECIPES]
    if unknown:
        p.error(f"unknown recipe {unknown[0]!r} (--list)")
    if not a.table_only:
        if any(RECIPES[n].get("_frames") for n in a.recipes):
            pool_root()  # here, once: two children generating it at the same time wrote into each other's folders
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        pending, running = list(a.recipes), []
        while pending or running:
            while pending and len(running) < a.jobs:
                name = pending.pop(0)
                cmd = [sys.executable, __file__, "--one", name, "--runs-dir", a.runs_dir, "--data-root", a.data_root]
                running.append((name, subprocess.Popen(cmd, env=env)))
            time.sleep(2)
            for item in list(running):
                if item[1].poll() is not None:
                    running.remove(item)
                    if item[1].returncode:
                        print(f"recipe {item[0]} failed (exit {item[1].returncode})", flush=True)
    print(table(a.recipes or list(RECIPES), a.runs_dir, a.data_root))
    if a.plot:
        plot(a.recipes or list(RECIPES), a.runs_dir, a.data_root, a.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
