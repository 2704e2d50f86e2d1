"""Scoring a trained run on a split: at the training size, or under the official protocol.

The official protocol (``full_res``) scores at each label's own resolution (2048x1024 for
Cityscapes); an inference mode of :mod:`cityseg_lib.evaluate.modes` (``slide``, flip or
multi-scale TTA) replaces the whole-image forward there. Results go to ``RUN/eval_*.json``
through the run store, with the per-image matrices for bootstrap intervals.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from cityseg_lib import runstore
from cityseg_lib.data.dataset import CityscapesSegmentation
from cityseg_lib.data.images import read_image, read_train_ids
from cityseg_lib.data.labels import NUM_CLASSES
from cityseg_lib.data.transforms import normalize
from cityseg_lib.errors import CitysegError
from cityseg_lib.files import json_safe
from cityseg_lib.evaluate.modes import InferenceMode
from cityseg_lib.evaluate.uncertainty import bootstrap_ci
from cityseg_lib.train.metrics import ConfusionMatrix
from cityseg_lib.paths import default_cache_dir, resolve_data_root
from cityseg_lib.train.engine import evaluate, evaluate_full_res, load_run
from cityseg_lib.train.setup import resolve_device

__all__ = ["evaluate_run", "format_scores", "mode_train_size", "run_data_root"]


def mode_train_size(cfg, mode: InferenceMode) -> tuple[int, int]:
    """The ``train_size`` a run's ``mode`` gets: ``whole`` resizes a frame to the run's training size
    ``image_size``; ``slide``'s windows are what the model learned on, its training crop ``crop_size``
    when it trained on crops (else ``image_size``). Windows of ``image_size`` over a crop-trained run
    whose ``image_size`` is the label's resolution were one window: ``slide`` was ``whole``."""
    crop = getattr(cfg, "crop_size", None)
    return tuple(crop if mode.mode == "slide" and crop else cfg.image_size)


def run_data_root(run: Path, cfg, given: str | os.PathLike | None) -> Path:
    """The dataset a stored run is scored on: ``--root`` (``given``, already in ``cfg``) or where it
    trained. A folder that is gone there is one line naming the run and ``--root`` (the dataset
    moved since training), not the dataset layout's advice to download Cityscapes."""
    root = resolve_data_root(cfg.data_root)
    if not given and not root.is_dir():
        raise CitysegError(f"{runstore.relative(run)}: the dataset it trained on, {root}, is not there now; "
                           "if it moved, pass --root with its new place")
    return root


@torch.no_grad()
def _evaluate_mode(model, ds: CityscapesSegmentation, device: torch.device, mode: InferenceMode,
                   train_size: tuple[int, int]):
    """Official-protocol scores of ``mode``: each image at its original resolution goes to the
    inference mode (windows, flips, scales), its output at the label's size to the matrix.

    Returns the scores, the per-image matrices ``(N, C, C+1)`` and ``(N,)`` seconds of each image's
    prediction (the mode's forward passes and the argmax, device synchronised; not the file reads
    or the scoring), so that modes timed this way compare like for like, image by image.
    """
    confmat = ConfusionMatrix(NUM_CLASSES, device=device)
    per_image, seconds = [], []
    for sample in ds.samples:
        image = normalize(torch.from_numpy(read_image(sample.image)).permute(2, 0, 1))[None].to(device)
        label = torch.from_numpy(read_train_ids(sample.label)).to(device).long()
        _synchronize(device)
        t0 = time.perf_counter()
        pred = mode(model, image, tuple(label.shape), train_size=train_size).argmax(1)[0]
        _synchronize(device)
        seconds.append(time.perf_counter() - t0)
        one = ConfusionMatrix(NUM_CLASSES, device=device)
        one.update(pred, label)
        confmat.mat += one.mat
        per_image.append(one.mat.cpu().numpy())
    return confmat.compute(), np.stack(per_image), np.asarray(seconds)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _check_writable(run: Path) -> None:
    """Refuse, before the evaluation (minutes at full resolution), a run folder that cannot take its
    ``eval_*.json`` (a read-only copy or mount of finished runs): one line, not an error at the end."""
    try:
        with tempfile.TemporaryFile(dir=run):
            pass
    except OSError as e:
        raise CitysegError(f"{run}: cannot write the evaluation's eval_*.json there ({e.strerror or e}); "
                           "evaluate a writable copy of the run") from None


def evaluate_run(run_dir: str | os.PathLike, split: str = "val", full_res: bool = False, device: str = "auto",
                 batch_size: int | None = None, data_root: str | os.PathLike | None = None, mode=None,
                 images: int = 0) -> dict:
    """Scores of the run's best checkpoint on ``split`` (its first ``images`` frames when > 0).

    ``data_root`` replaces the dataset location stored in the run (it moved, or another copy);
    ``mode`` is an :class:`cityseg_lib.evaluate.modes.InferenceMode` (implies ``full_res``): each
    original frame goes through it one at a time, ``whole`` included (the frame resized in float,
    as the other modes see it), and each frame's prediction is timed (``image_seconds``). Without
    ``mode`` the official protocol runs batched on the cached training-size images, as validation does.
    The result is also written to ``RUN/eval_SPLIT[_fullres][_MODE][_firstN].json``, with ``miou_ci``:
    the mIoU's expanded 95% bootstrap interval over the frames ``[low, high]`` (the report's). The
    returned dict also holds ``per_image``, the per-image confusion matrices ``(N, C, C+1)`` the
    interval comes from, and ``seconds_per_image`` (wall time of the whole evaluation).
    """
    if isinstance(images, bool) or not isinstance(images, int) or images < 0:
        raise CitysegError(f"images={images!r}: expected an integer >= 0 (0 = every frame of the split)")
    if split == "test":  # its labels are all void: every score would be NaN
        raise CitysegError("split='test': Cityscapes withholds the test split's labels (all void in the release), so "
                           "it cannot be scored here; predict it (cityseg predict) and submit to the benchmark server")
    dev = resolve_device(device)
    run = runstore.resolve(run_dir)
    cfg, model = load_run(run, device=str(dev), data_root=data_root)
    _check_writable(run)
    root = run_data_root(run, cfg, data_root)
    cache = (Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()) if cfg.cache else None
    ds = CityscapesSegmentation(root, split, cfg.image_size, "fine", cache_dir=cache, mask_resize=cfg.mask_resize)
    first = ""
    if images and images < len(ds.samples):  # the first frames in the split's (sorted) order
        ds.samples, first = ds.samples[:images], f"_first{images}"
    bs = batch_size or cfg.batch_size
    label = ""
    t0 = time.perf_counter()
    per_image, image_seconds = None, None
    if mode is not None:
        full_res, label = True, "_" + mode.label().replace(" + ", "_").replace(" ", "")
        scores, per_image, image_seconds = _evaluate_mode(model, ds, dev, mode, mode_train_size(cfg, mode))
    elif full_res:
        scores, _, _, per_image = evaluate_full_res(model, ds, dev, batch_size=bs)
    else:
        _, scores, _, _, per_image = evaluate(model, None, torch.utils.data.DataLoader(ds, bs), dev, per_image=True)
    seconds = time.perf_counter() - t0
    result = {"run": runstore.relative(run), "split": split,
              "resolution": "full" if full_res else list(cfg.image_size),
              "mode": mode.label() if mode is not None else "whole", "images": len(ds.samples),
              "seconds_per_image": seconds / max(len(ds.samples), 1), **scores.to_dict()}
    iv = bootstrap_ci(per_image) if len(per_image) > 1 else None
    if iv is not None and np.isfinite([iv.low, iv.high]).all():  # none for unlabelled frames (the test split)
        result["miou_ci"] = [iv.low, iv.high]  # the mIoU's 95% bootstrap interval over the frames, as the report's
    if image_seconds is not None:
        result["image_seconds"] = [round(float(t), 6) for t in image_seconds]
    # strict JSON (an absent class's NaN as null): the file is for the user's own tools
    runstore.write_json(run, f"eval_{split}{'_fullres' if full_res else ''}{label}{first}.json", json_safe(result))
    # per-image matrices for bootstrap intervals: returned, not written to JSON
    return {**result, "per_image": per_image}


def format_scores(result: dict, run: str | os.PathLike) -> str:
    """The scores ``cityseg evaluate`` prints of an :func:`evaluate_run` result: the class IoUs
    (``absent`` for a class in neither labels nor predictions), the mIoU with its 95% interval over
    the frames, and pixel accuracy."""
    res = "full resolution" if result["resolution"] == "full" else "training size"
    lines = [f"{run} on {result['split']} ({res}, {result['mode']}):"]
    for name, iou in result["class_iou"].items():
        lines.append(f"  {name:<15} {100 * iou:6.2f}" if iou == iou else f"  {name:<15} {'absent':>6}")
    ci = result.get("miou_ci")
    ci = f"95% CI {100 * ci[0]:.2f}-{100 * ci[1]:.2f} over the {result['images']} images; " if ci else ""
    lines.append(f"  {'mIoU':<15} {100 * result['miou']:6.2f}   ({ci}mean over classes in the ground truth or "
                 f"predicted)   pixel acc {100 * result['pixel_accuracy']:.2f}")
    return "\n".join(lines)
