"""Using a trained run: evaluate it on a split, and predict on new images.

``predict`` writes official-format labelIds PNGs at each image's own resolution (ready for the
Cityscapes test server and for ``cityseg evaluate-folder``), colour masks, or overlays.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF
from tqdm.auto import tqdm

from .checkpoint import atomic_write_text
from .dataset import CityscapesSegmentation
from .engine import evaluate, evaluate_full_res, load_run, resolve_device
from .errors import CitysegError
from .images import read_image
from .labels import train_ids_to_color, train_ids_to_label_ids
from .metrics import predict_full_res
from .paths import default_cache_dir, resolve_data_root
from .transforms import normalize

__all__ = ["evaluate_run", "predict_images", "PREDICT_FORMATS"]

PREDICT_FORMATS = ("labelIds", "color", "overlay")
_IMAGE_EXTS = (".png", ".jpg", ".jpeg")


def evaluate_run(run_dir: str | os.PathLike, split: str = "val", full_res: bool = False, device: str = "auto",
                 batch_size: int | None = None) -> dict:
    """Scores of the run's best checkpoint on ``split``; also written to ``RUN/eval_SPLIT[_fullres].json``."""
    dev = resolve_device(device)
    cfg, model = load_run(run_dir, device=str(dev))
    root = resolve_data_root(cfg.data_root)
    cache = (Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()) if cfg.cache else None
    ds = CityscapesSegmentation(root, split, cfg.image_size, "fine", cache_dir=cache)
    bs = batch_size or cfg.batch_size
    if full_res:
        scores, _ = evaluate_full_res(model, ds, dev, batch_size=bs)
    else:
        loader = torch.utils.data.DataLoader(ds, bs)
        _, scores, _ = evaluate(model, None, loader, dev)
    result = {"run": str(run_dir), "split": split, "resolution": "full" if full_res else list(cfg.image_size),
              **scores.to_dict()}
    name = f"eval_{split}{'_fullres' if full_res else ''}.json"
    atomic_write_text(Path(run_dir) / name, json.dumps(result, indent=2))
    return result


def _list_images(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in _IMAGE_EXTS)
        if files:
            return files
        raise CitysegError(f"{path}: no .png/.jpg images found")
    raise CitysegError(f"{path}: no such file or folder")


@torch.no_grad()
def predict_images(run_dir: str | os.PathLike, inputs: str | os.PathLike, out_dir: str | os.PathLike,
                   fmt: str = "labelIds", device: str = "auto", alpha: float = 0.5, progress: bool = True) -> list[Path]:
    """Segment every image under ``inputs`` with the run's best checkpoint; returns the written files.

    The image is resized to the training size, and the logits are up-sampled back to the image's
    own size before the argmax (the official protocol), so outputs match the input resolution.
    ``labelIds`` keeps the input file name (the test server and ``evaluate-folder`` match on the
    ``CITY_SEQ_FRAME`` key); ``color`` and ``overlay`` add a suffix.
    """
    if fmt not in PREDICT_FORMATS:
        raise CitysegError(f"format {fmt!r} is not one of {', '.join(PREDICT_FORMATS)}")
    dev = resolve_device(device)
    cfg, model = load_run(run_dir, device=str(dev))
    files = _list_images(Path(inputs))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for f in tqdm(files, desc="predict", disable=not progress or bool(os.environ.get("CI"))):
        rgb = read_image(f)
        x = torch.from_numpy(rgb).permute(2, 0, 1)
        # the same resize as training (uint8, bilinear, antialias), then normalise
        x = normalize(TF.resize(x, list(cfg.image_size), antialias=True))[None]
        train_ids = predict_full_res(model(x.to(dev)).float(), rgb.shape[:2])[0].cpu().numpy().astype(np.uint8)
        if fmt == "labelIds":
            target, arr = out_dir / f"{f.stem}.png", train_ids_to_label_ids(train_ids)
        elif fmt == "color":
            target, arr = out_dir / f"{f.stem}_color.png", train_ids_to_color(train_ids)
        else:
            blend = (1 - alpha) * rgb.astype(np.float32) + alpha * train_ids_to_color(train_ids).astype(np.float32)
            target, arr = out_dir / f"{f.stem}_overlay.png", blend.round().astype(np.uint8)
        Image.fromarray(arr).save(target)
        written.append(target)
    return written
