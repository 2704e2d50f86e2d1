"""TensorBoard event files of a run (``RUN/tb/``): watch training live, locally or in JupyterLab.

Per epoch (step = epoch number, as in ``metrics.csv``): train and validation loss, validation
mIoU and pixel accuracy, learning rate, images/s and epoch time, the very values of the
``metrics.csv`` row; every :data:`PREDICTIONS_EVERY` epochs (and the first and the last) a grid
of validation predictions, one row per image: image | truth | prediction in Cityscapes colours.
When the run finishes (step = epochs run): the kept checkpoint's scores, its per-class IoU
(scalars and a table) and its predictions.

Resume never duplicates a step: :meth:`RunLog.start` reads the tags and steps already in the
folder's event files and every later write of a (tag, step) pair present there is skipped, while
the epochs of ``history`` not logged yet (a kill between ``last.pt`` and the event write) are
written then, with the last one's prediction grid when it was due (``last.pt`` holds its weights). Each (re)start writes a new event file, named to sort after the older ones, which
is the order TensorBoard reads them in. Only the main rank writes (the engine calls this module
in its rank-0 blocks). :func:`serve` is ``cityseg tensorboard``.
"""

from __future__ import annotations

import math
import re
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cityseg_lib import runstore
from cityseg_lib.data.labels import CLASS_NAMES, train_ids_to_color
from cityseg_lib.errors import CitysegError

__all__ = ["SCALAR_TAGS", "PREDICTIONS_EVERY", "RunLog", "logged_steps", "prediction_grid", "serve"]

#: ``metrics.csv`` column -> TensorBoard tag (the "loss" section overlays train and val in one chart).
SCALAR_TAGS = {
    "train_loss": "loss/train", "val_loss": "loss/val", "val_miou": "val/mIoU",
    "val_pixel_accuracy": "val/pixel_accuracy", "lr": "train/lr", "train_images_per_s": "train/images_per_s",
    "epoch_time_s": "train/epoch_time_s",
}
PREDICTIONS_EVERY = 5  # epochs between two prediction grids (plus the first and the last epoch)
PREDICTION_IMAGES = 4  # validation images in a grid (the first ones: the same every time)
TILE = 256  # longest side of one tile of the grid, in pixels
_LAYOUT = {"loss": {"train and validation loss": ["Multiline", ["loss/train", "loss/val"]]}}
_LAYOUT_TAG = "custom_scalars__config__"
_TEXT_SUFFIX = "/text_summary"  # torch's add_text appends it to the tag


def logged_steps(folder: str | Path) -> set[tuple[str, int]]:
    """The ``(tag, step)`` pairs in the event files of ``folder`` (empty when there are none).

    A record cut short by a kill ends its file's reading; what came before it counts.
    """
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    seen: set[tuple[str, int]] = set()
    for f in sorted(Path(folder).glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(f)).Load():
            for value in event.summary.value:
                seen.add((value.tag.removesuffix(_TEXT_SUFFIX), int(event.step)))
    return seen


def _wait_past_newest(folder: Path) -> None:
    """Event files are named ``events.out.tfevents.SECONDS.HOST.PID...`` and read in name order:
    wait until a new file's name sorts after every existing one (a second at most: a file from a
    machine whose clock runs ahead is not waited for)."""
    stamps = [int(m.group(1)) for f in folder.glob("events.out.tfevents.*")
              if (m := re.match(r"events\.out\.tfevents\.(\d+)\.", f.name))]
    deadline = time.time() + 1.1
    while stamps and int(time.time()) <= max(stamps) and time.time() < deadline:
        time.sleep(0.05)


@torch.no_grad()
def prediction_grid(model: nn.Module, dataset, device: torch.device, n: int = PREDICTION_IMAGES,
                    amp: bool = False) -> np.ndarray:
    """``(rows * h, 3 * w, 3)`` uint8: for the first ``n`` items of ``dataset``, image | truth |
    prediction (trainIds in Cityscapes colours, ignore black), each tile at most :data:`TILE` px.

    ``dataset`` items are ``(image (3, H, W), mask (H, W), id)``, uint8 or normalised images.
    The model's train/eval mode is restored; no random number is drawn.
    """
    from cityseg_lib.data.transforms import denormalize
    from cityseg_lib.train.loop import to_device
    from cityseg_lib.train.setup import autocast

    was_training = model.training
    model.eval()
    rows = []
    for i in range(min(n, len(dataset))):
        image, mask, _ = dataset[i]
        x, _ = to_device(image[None], mask[None], device)
        with autocast(device, amp):
            pred = model(x).float().argmax(1)[0].cpu().numpy()
        if image.dtype == torch.uint8:
            rgb = image.permute(1, 2, 0).numpy()
        else:
            rgb = (denormalize(image).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        step = max(1, math.ceil(max(rgb.shape[:2]) / TILE))  # nearest-neighbour: classes stay classes
        tiles = [rgb, train_ids_to_color(mask.numpy()), train_ids_to_color(pred)]
        rows.append(np.concatenate([t[::step, ::step] for t in tiles], axis=1))
    model.train(was_training)
    return np.concatenate(rows, axis=0)


class RunLog:
    """The TensorBoard writer of one run folder; a context manager that closes it.

    Nothing is created before :meth:`start`, so ranks other than 0 (which never call it) and
    runs that return early leave no file.
    """

    def __init__(self, run: str | Path) -> None:
        self.folder = runstore.tensorboard_dir(Path(run))
        self._writer = None
        self._seen: set[tuple[str, int]] = set()

    def __enter__(self) -> "RunLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self, history: list[dict], model: nn.Module | None = None, dataset=None,
              device: torch.device | None = None, epochs: int = 0, amp: bool = False) -> None:
        """Open the writer (after the steps already logged) and log the epochs of ``history``
        that are missing from the event files: their scalars, and the prediction grid of the last
        one when it was due, drawn by ``model`` (holding ``last.pt``'s weights, which are that
        epoch's) on ``dataset`` -- the grids of earlier epochs need weights no longer kept."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:  # a declared dependency; training goes on without it
            warnings.warn(f"no TensorBoard logging ({e}); pip install tensorboard", stacklevel=2)
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self._seen = logged_steps(self.folder)
        _wait_past_newest(self.folder)
        self._writer = SummaryWriter(str(self.folder), max_queue=1000, flush_secs=30)
        if (_LAYOUT_TAG, 0) not in self._seen:
            self._writer.add_custom_scalars(_LAYOUT)
            self._seen.add((_LAYOUT_TAG, 0))
        for row in history:
            self._scalars(row)
        if history and model is not None and _grid_due(int(history[-1]["epoch"]), epochs):
            self._grid("val/predictions", int(history[-1]["epoch"]), model, dataset, device, amp)
        self._writer.flush()

    # ------------------------------------------------------------------------- writes

    def _new(self, tag: str, step: int) -> bool:
        """True the first time ``(tag, step)`` is asked for (and the writer is open)."""
        if self._writer is None or (tag, step) in self._seen:
            return False
        self._seen.add((tag, step))
        return True

    def _scalar(self, tag: str, value: float, step: int) -> None:
        if self._new(tag, step):
            self._writer.add_scalar(tag, float(value), step)

    def _scalars(self, row: dict) -> None:
        for field, tag in SCALAR_TAGS.items():
            self._scalar(tag, row[field], int(row["epoch"]))

    def _grid(self, tag: str, step: int, model: nn.Module, dataset, device: torch.device, amp: bool) -> None:
        if self._new(tag, step):
            self._writer.add_image(tag, prediction_grid(model, dataset, device, amp=amp), step, dataformats="HWC")

    def epoch(self, row: dict, model: nn.Module, dataset, device: torch.device, epochs: int,
              amp: bool = False) -> None:
        """Log one finished epoch: its ``metrics.csv`` ``row`` and, when due, a prediction grid
        of ``model`` (the plain module, not a DDP or compiled wrapper) on ``dataset``."""
        if self._writer is None:
            return
        epoch = int(row["epoch"])
        self._scalars(row)
        if _grid_due(epoch, epochs):
            self._grid("val/predictions", epoch, model, dataset, device, amp)
        self._writer.flush()

    def final(self, step: int, best_epoch: int, best_loss: float, scores, full, model: nn.Module, dataset,
              device: torch.device, amp: bool = False) -> None:
        """Log the kept checkpoint at ``step`` (epochs run): scores, per-class IoU, predictions.

        ``scores`` / ``full``: :class:`~cityseg_lib.train.metrics.SegScores` at the training size
        and at full resolution (None when not evaluated).
        """
        if self._writer is None:
            return
        self._scalar("best/epoch", best_epoch, step)
        self._scalar("best/val_loss", best_loss, step)
        self._scalar("best/val_mIoU", scores.miou, step)
        self._scalar("best/val_pixel_accuracy", scores.pixel_accuracy, step)
        if full is not None:
            self._scalar("best/full_res_mIoU", full.miou, step)
        per_class = full if full is not None else scores
        for name, iou in zip(per_class.class_names, per_class.class_iou):
            self._scalar(f"class_IoU/{name.replace(' ', '_')}", iou, step)
        if self._new("best/class_IoU", step):
            self._writer.add_text("best/class_IoU", _iou_table(best_epoch, scores, full), step)
        self._grid("best/predictions", step, model, dataset, device, amp)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _grid_due(epoch: int, epochs: int) -> bool:
    """Whether epoch ``epoch`` of a run of ``epochs`` logs a prediction grid."""
    return epoch == 1 or epoch % PREDICTIONS_EVERY == 0 or epoch == epochs


def _iou_table(best_epoch: int, scores, full) -> str:
    """Markdown table of per-class IoU (%) of the kept checkpoint (TensorBoard's Text tab)."""
    cols = [("training size", scores)] + ([("full resolution", full)] if full is not None else [])

    def pct(v: float) -> str:
        return "absent" if not math.isfinite(v) else f"{100 * v:.1f}"

    lines = [f"Kept checkpoint: epoch {best_epoch}.", "",
             "| class | " + " | ".join(c for c, _ in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for i, name in enumerate(CLASS_NAMES[: len(scores.class_iou)]):
        lines.append(f"| {name} | " + " | ".join(pct(s.class_iou[i]) for _, s in cols) + " |")
    lines.append("| **mIoU** | " + " | ".join(f"**{pct(s.miou)}**" for _, s in cols) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- serving


def check_address(port: int, host: str) -> None:
    """Refuse, in one line, a port outside 0..65535 or a host name that does not resolve."""
    import socket

    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise CitysegError(f"--port {port}: a port is 0..65535 (0: a free port)")
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        reason = getattr(e, "strerror", None) or e
        raise CitysegError(f"--host {host!r}: cannot be resolved to an address ({reason})") from None


def serve(logdir: str | Path, port: int = 6006, host: str = "localhost") -> int:
    """Serve TensorBoard on ``logdir`` (blocks until Ctrl-C). ``host`` localhost: this machine only.

    ``port`` 0 lets the system choose a free port (TensorBoard prints the URL).
    """
    check_address(port, host)
    logdir = Path(logdir)
    if not logdir.is_dir():
        raise CitysegError(f"{logdir}: no such folder (no runs yet: train one, or pass --logdir)")
    try:
        from tensorboard import program
    except ImportError:
        raise CitysegError("tensorboard is not installed: pip install tensorboard (a dependency of cityseg)") from None
    board = program.TensorBoard()
    board.configure(logdir=str(logdir), port=port, host=host, reload_interval=5)
    return board.main()
