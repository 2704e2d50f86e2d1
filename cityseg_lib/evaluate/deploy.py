"""Deploying a run: ``cityseg export`` (ONNX, checked against PyTorch on validation frames) and
``cityseg predict --engine onnxruntime``.

The check runs the exported file with onnxruntime on up to ``n_check`` validation frames at the
training size and requires the argmax to agree with PyTorch on at least 99.9% of the pixels;
a file that fails is kept (never deleted) but the command reports the failure and exits 2.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from cityseg_lib import runstore
from cityseg_lib.data.dataset import CityscapesSegmentation
from cityseg_lib.data.images import read_image
from cityseg_lib.data.labels import train_ids_to_color, train_ids_to_label_ids
from cityseg_lib.data.transforms import normalize
from cityseg_lib.errors import CitysegError
from cityseg_lib.evaluate.export import INPUT_NAME, OUTPUT_NAME, check_onnx, export_onnx, onnx_session
from cityseg_lib.evaluate.predict import check_origin, plan_outputs, predict_origin, write_origin
from cityseg_lib.evaluate.score import run_data_root
from cityseg_lib.files import write_new
from cityseg_lib.paths import default_cache_dir
from cityseg_lib.train.engine import load_run
from cityseg_lib.train.metrics import predict_full_res

__all__ = ["MIN_AGREEMENT", "export_run", "predict_images_onnx"]

MIN_AGREEMENT = 0.999


def export_run(run: str | os.PathLike, out: str | os.PathLike, data_root: str | os.PathLike | None = None,
               n_check: int = 4) -> dict:
    """Export the run's best checkpoint to the new file ``out`` and check it on validation frames.

    Returns the export info plus ``check`` (agreement, logit differences, frames). Raises
    :class:`CitysegError` when the agreement is below :data:`MIN_AGREEMENT`.
    """
    if isinstance(n_check, bool) or not isinstance(n_check, int) or n_check < 1:
        raise CitysegError(f"check frames={n_check!r}: expected an integer >= 1 (the export is always checked)")
    cfg, model = load_run(run, data_root=data_root)
    # the check frames first: a dataset that moved or broke fails before the .onnx file is written
    root = run_data_root(runstore.resolve(run), cfg, data_root)
    val = CityscapesSegmentation(root, cfg.val_split, cfg.image_size, "fine", cache_dir=default_cache_dir(),
                                 mask_resize=cfg.mask_resize)
    if len(val) == 0:
        raise CitysegError(f"{root}: no {cfg.val_split} frames to check the export on")
    picks = np.linspace(0, len(val) - 1, min(n_check, len(val))).round().astype(int)
    images = torch.stack([val[int(i)][0] for i in picks])
    info = export_onnx(model, out, tuple(cfg.image_size)).to_dict()
    info["check"] = {**check_onnx(out, model, images), "frames": len(picks)}
    if info["check"]["agreement"] < MIN_AGREEMENT:
        raise CitysegError(f"{out}: onnxruntime and PyTorch agree on {100 * info['check']['agreement']:.3f}% of "
                           f"the pixels, below {100 * MIN_AGREEMENT:.1f}% (the file is kept for inspection)")
    return info


def predict_images_onnx(run: str | os.PathLike, onnx_path: str | os.PathLike | None, inputs: str | os.PathLike,
                        out_dir: str | os.PathLike, fmt: str = "labelIds", alpha: float = 0.5,
                        resume: bool = False) -> list[Path]:
    """``predict`` with an exported model on onnxruntime (CPU): the same outputs, the same rules
    (never over an existing file, the input tree mirrored, ``resume``). ``onnx_path`` None = ``RUN/model.onnx``."""
    path = Path(onnx_path) if onnx_path else runstore.resolve(run) / "model.onnx"
    origin = predict_origin(run, fmt, "onnxruntime", onnx=path, alpha=alpha)
    check_origin(out_dir, origin, resume)
    pairs = plan_outputs(inputs, out_dir, fmt, resume)
    cfg = runstore.load_config(run)
    session = onnx_session(path)
    write_origin(out_dir, origin)
    written = []
    for f, target in pairs:
        rgb = read_image(f, orient=True)  # upright as shown (a camera JPEG's EXIF orientation)
        x = normalize(TF.resize(torch.from_numpy(rgb).permute(2, 0, 1), list(cfg.image_size), antialias=True))[None]
        logits = torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0])
        train_ids = predict_full_res(logits, rgb.shape[:2])[0].numpy().astype(np.uint8)
        if fmt == "labelIds":
            arr = train_ids_to_label_ids(train_ids)
        elif fmt == "color":
            arr = train_ids_to_color(train_ids)
        else:
            arr = ((1 - alpha) * rgb + alpha * train_ids_to_color(train_ids).astype(np.float32)).round().astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        write_new(target, lambda fh, data=buf.getvalue(): fh.write(data))
        written.append(target)
    return written
