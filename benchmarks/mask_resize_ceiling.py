"""What resizing the training masks costs a perfect model: the mask-resize ceiling (session 20).

A model that predicts its training mask exactly (one-hot logits at the training size) is scored by the
official protocol: logits up-sampled bilinearly to each validation label's own resolution
(:func:`cityseg_lib.train.metrics.upsample_logits`), arg-max, confusion matrix against the label,
mIoU over the classes present. The masks are resized as the training data pipeline resizes them
(:func:`cityseg_lib.data.transforms.resize_pair`) with each ``mask_resize`` mode: ``nearest`` takes the
label under each pixel's top-left corner, half a pixel off the bilinearly resized image; ``nearest-exact``
the label under its centre. The gap is what the corner rule costs before any learning.

    .venv/bin/python benchmarks/mask_resize_ceiling.py                     # the demo data, 3 sizes
    .venv/bin/python benchmarks/mask_resize_ceiling.py --root DATA --sizes 48x96 768x768
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from cityseg_lib.data.images import read_train_ids  # noqa: E402
from cityseg_lib.data.labels import NUM_CLASSES  # noqa: E402
from cityseg_lib.data.layout import find_samples  # noqa: E402
from cityseg_lib.data.transforms import MASK_RESIZE_MODES, resize_pair  # noqa: E402
from cityseg_lib.train.metrics import ConfusionMatrix, upsample_logits  # noqa: E402


def ceiling(samples, size: tuple[int, int], mode: str) -> float:
    """mIoU (over the classes present) of a model that predicts its ``size`` training masks exactly."""
    cm = ConfusionMatrix(NUM_CLASSES)
    for s in samples:
        label = torch.from_numpy(read_train_ids(s.label))
        _, small = resize_pair(torch.zeros(3, *label.shape, dtype=torch.uint8), label, size, mode)
        onehot = torch.nn.functional.one_hot(small.long().clamp(max=NUM_CLASSES), NUM_CLASSES + 1)
        logits = onehot[..., :NUM_CLASSES].permute(2, 0, 1)[None].float()  # void pixels: all zero, scored as class 0
        pred = upsample_logits(logits, tuple(label.shape)).argmax(1)[0]
        cm.update(pred, label.long())
    return cm.compute().miou


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="", help="dataset root; default: the demo profile's generated data")
    p.add_argument("--split", default="val")
    p.add_argument("--sizes", nargs="+", default=["48x96", "64x128", "96x192"], help="training sizes HxW")
    a = p.parse_args(argv)
    if not a.root:
        from cityseg_lib.data.source import ensure_data

        a.root = str(ensure_data("", "demo"))
    samples = find_samples(a.root, a.split)
    print(f"{len(samples)} {a.split} frames of {a.root}; mIoU (%) of a model predicting its training masks exactly")
    print("| training size | " + " | ".join(MASK_RESIZE_MODES) + " |")
    print("|---|" + "--:|" * len(MASK_RESIZE_MODES))
    for text in a.sizes:
        size = tuple(int(v) for v in text.lower().split("x"))
        cells = [f"{100 * ceiling(samples, size, m):.1f}" for m in MASK_RESIZE_MODES]
        print(f"| {size[0]}x{size[1]} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
