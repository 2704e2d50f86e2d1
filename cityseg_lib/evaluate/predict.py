"""Predicting with a trained run: new images to label maps, and frames for the report's figures.

``predict_images`` writes official-format labelIds PNGs at each image's own resolution (ready for
the Cityscapes test server and ``cityseg evaluate-folder``), colour masks or overlays. It never
writes over an existing file (inputs included), mirrors the input folder's structure under the
output folder, and skips its own output folder when that lies inside the input.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF
from tqdm.auto import tqdm

from cityseg_lib import runstore
from cityseg_lib.data.dataset import CityscapesSegmentation
from cityseg_lib.data.images import read_image
from cityseg_lib.data.labels import train_ids_to_color, train_ids_to_label_ids
from cityseg_lib.data.transforms import normalize
from cityseg_lib.errors import CitysegError
from cityseg_lib.evaluate.modes import InferenceMode
from cityseg_lib.evaluate.score import mode_train_size
from cityseg_lib.files import atomic_write_text, write_new
from cityseg_lib.paths import default_cache_dir
from cityseg_lib.train.engine import load_run
from cityseg_lib.train.metrics import predict_full_res
from cityseg_lib.train.setup import resolve_device

__all__ = ["PREDICT_FORMATS", "ORIGIN_FILE", "check_origin", "write_origin", "predict_origin", "plan_outputs", "predict_images", "predict_frames"]

PREDICT_FORMATS = ("labelIds", "color", "overlay")
_SUFFIX = {"labelIds": "", "color": "_color", "overlay": "_overlay"}
_IMAGE_EXTS = (".png", ".jpg", ".jpeg")


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


#: What wrote the predictions in an output folder (run, format, engine, mode), for ``--resume``.
ORIGIN_FILE = ".cityseg-predict.json"


def check_origin(out_dir: str | os.PathLike, origin: dict, resume: bool) -> None:
    """Refuse an ``out_dir`` whose predictions another run, format, engine or mode wrote (its
    :data:`ORIGIN_FILE`), and a ``resume`` into a folder without that record: the outputs kept by a
    resumed predict must be those the rest would have been."""
    path = Path(out_dir).expanduser().resolve() / ORIGIN_FILE
    if not path.parent.is_dir():  # nothing written there yet (a file: plan_outputs names it)
        return
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        if resume and any(path.parent.iterdir()):
            raise CitysegError(f"--out {path.parent}: --resume, but no {ORIGIN_FILE} says what wrote its files; "
                               "choose another --out") from None
        return
    except (OSError, ValueError) as err:
        raise CitysegError(f"{path}: unreadable ({type(err).__name__}); choose another --out") from None
    if saved != origin:
        other = ", ".join(f"{k} {saved.get(k)!r}" for k in origin if saved.get(k) != origin[k])
        raise CitysegError(f"--out {path.parent}: holds predictions of another setting ({other}, its {ORIGIN_FILE}); "
                           "choose another --out")


def write_origin(out_dir: str | os.PathLike, origin: dict) -> None:
    """Record ``origin`` in ``out_dir`` before its first output (kept as it is when it is there)."""
    path = Path(out_dir).expanduser().resolve() / ORIGIN_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(origin, indent=2, sort_keys=True) + "\n")


def predict_origin(run: str | os.PathLike, fmt: str, engine: str, mode=None, onnx=None, alpha: float = 0.5) -> dict:
    """What makes a folder's predictions: the run (its folder and identity), the format (an overlay's
    ``alpha``), the engine (an ONNX file by path) and the inference mode."""
    folder = runstore.resolve(run)
    return {"run": str(folder), "run_id": runstore.load_identity(folder).get("run_id"), "checkpoint": "best",
            "format": fmt, "alpha": alpha if fmt == "overlay" else None, "engine": engine,
            "onnx": str(Path(onnx).expanduser().resolve()) if onnx else None,
            "mode": None if mode is None or mode == InferenceMode() else repr(mode)}


def plan_outputs(inputs: str | os.PathLike, out_dir: str | os.PathLike, fmt: str,
                 resume: bool = False) -> list[tuple[Path, Path]]:
    """``(input image, output file)`` pairs, checked before any work is done.

    A folder input is mirrored under ``out_dir`` (``a/x.png`` -> ``OUT/a/x.png``), so equal file
    names in different subfolders stay apart; images inside ``out_dir`` are skipped (earlier
    outputs are not inputs). An existing output, an output equal to an input, two inputs with one
    output (``a.png`` and ``a.jpg``), or an ``out_dir`` that is a file, is an error naming it.
    ``resume``: an existing output is kept and its input left out (outputs are written whole, by a
    rename, so one that exists is complete; :func:`check_origin` vouches for what wrote it).
    """
    if fmt not in PREDICT_FORMATS:
        raise CitysegError(f"format {fmt!r} is not one of {', '.join(PREDICT_FORMATS)}")
    src, out = Path(inputs).expanduser().resolve(), Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise CitysegError(f"--out {out}: exists and is not a folder")
    if src.is_file():
        files, base = [src], src.parent
    elif src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.suffix.lower() in _IMAGE_EXTS and p.is_file()
                       and not (out != src and _inside(out, src) and _inside(p, out)))
        base = src
        if not files:
            raise CitysegError(f"{src}: no .png/.jpg images found")
    else:
        raise CitysegError(f"{src}: no such file or folder")
    pairs, claimed = [], {}
    for f in files:
        target = out / f.relative_to(base).parent / f"{f.stem}{_SUFFIX[fmt]}.png"
        if target in claimed:  # a.png and a.jpg: the second would stop the run halfway, and block its re-run
            raise CitysegError(f"{claimed[target]} and {f} would both be written to {target}; "
                               "rename one, or predict them into different --out folders")
        claimed[target] = f
        if target.exists():
            if resume and target not in files:
                continue
            what = "is an input image" if target in files or target == f else "exists already"
            raise CitysegError(f"{target} {what}; refusing to overwrite it (choose another --out, or --resume to "
                               "keep an interrupted predict's outputs and write the rest)")
        _check_readable(f)
        pairs.append((f, target))
    return pairs


def _check_readable(path: Path) -> None:
    """A corrupt or truncated input fails here, before any output is written (else the outputs of the
    images before it would block a re-run into the same ``--out``). PIL's ``verify`` reads the file's
    structure (PNG chunks and their checksums) without decoding the pixels."""
    try:
        with Image.open(path) as im:
            im.verify()
    except Exception as err:  # PIL raises several types for broken files
        raise CitysegError(f"{path}: not a readable image ({type(err).__name__}); fix or remove it") from None


@torch.no_grad()
def predict_images(run_dir: str | os.PathLike, inputs: str | os.PathLike, out_dir: str | os.PathLike,
                   fmt: str = "labelIds", device: str = "auto", alpha: float = 0.5, progress: bool = True,
                   mode=None, resume: bool = False) -> list[Path]:
    """Segment every image under ``inputs`` with the run's best checkpoint; returns the written files.

    The image is resized to the training size, and the logits are up-sampled back to the image's
    own size before the argmax (the official protocol), so outputs match the input resolution; a
    photo stored sideways with an EXIF orientation is turned upright first, as viewers show it;
    ``mode`` (an :class:`cityseg_lib.evaluate.modes.InferenceMode`) selects slide/TTA inference.
    ``labelIds`` keeps the input file name (the test server and ``evaluate-folder`` match on the
    ``CITY_SEQ_FRAME`` key); ``color`` and ``overlay`` add a suffix. ``resume`` writes only the
    outputs an interrupted predict of the same run, format and mode into ``out_dir`` left missing.
    """
    origin = predict_origin(run_dir, fmt, "torch", mode=mode, alpha=alpha)
    check_origin(out_dir, origin, resume)
    pairs = plan_outputs(inputs, out_dir, fmt, resume)  # every check before the model is loaded
    dev = resolve_device(device)
    cfg, model = load_run(run_dir, device=str(dev))
    write_origin(out_dir, origin)
    written = []
    for f, target in tqdm(pairs, desc="predict", disable=not progress or bool(os.environ.get("CI"))):
        rgb = read_image(f, orient=True)  # upright as shown (a camera JPEG's EXIF orientation)
        x = torch.from_numpy(rgb).permute(2, 0, 1)
        # the same resize as training (uint8, bilinear, antialias), then normalise
        x = normalize(TF.resize(x, list(cfg.image_size), antialias=True))[None].to(dev)
        if mode is not None and mode != InferenceMode():
            logits = mode(model, normalize(torch.from_numpy(rgb).permute(2, 0, 1))[None].to(dev),
                          rgb.shape[:2], train_size=mode_train_size(cfg, mode))
            train_ids = logits.argmax(1)[0].cpu().numpy().astype(np.uint8)
        else:
            train_ids = predict_full_res(model(x).float(), rgb.shape[:2])[0].cpu().numpy().astype(np.uint8)
        if fmt == "labelIds":
            arr = train_ids_to_label_ids(train_ids)
        elif fmt == "color":
            arr = train_ids_to_color(train_ids)
        else:
            blend = (1 - alpha) * rgb.astype(np.float32) + alpha * train_ids_to_color(train_ids).astype(np.float32)
            arr = blend.round().astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        write_new(target, lambda fh, data=buf.getvalue(): fh.write(data))
        written.append(target)
    return written


def predict_frames(runs: dict[str, str | os.PathLike], data_root: str | os.PathLike, n: int = 3,
                   split: str = "val") -> dict:
    """Predictions of several runs on ``n`` evenly spaced frames, at the first run's training size.

    Returns ``{"ids", "images" [(H, W, 3) uint8], "truth" [(H, W) trainIds], "predictions"
    {label: [(H, W) trainIds]}}``; for the qualitative grid.
    """
    labels = list(runs)
    if not labels:
        raise CitysegError("predict_frames: no runs given")
    first = runstore.load_config(runs[labels[0]])
    size = tuple(first.image_size)
    ds = CityscapesSegmentation(data_root, split, size, "fine", cache_dir=default_cache_dir(),
                                mask_resize=first.mask_resize)
    picks = np.linspace(0, len(ds.samples) - 1, min(n, len(ds.samples))).round().astype(int)
    arrays = [ds.load_array(int(i)) for i in picks]
    out = {"ids": [ds.samples[int(i)].id for i in picks], "images": [a[..., :3] for a in arrays],
           "truth": [a[..., 3] for a in arrays], "predictions": {}}
    batch = torch.stack([ds[int(i)][0] for i in picks])
    for label in labels:
        _, model = load_run(runs[label])
        with torch.no_grad():
            logits = model(batch)
        if tuple(logits.shape[-2:]) != size:
            logits = torch.nn.functional.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        out["predictions"][label] = list(logits.argmax(1).numpy().astype(np.uint8))
    return out
