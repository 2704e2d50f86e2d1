"""Checks of the command line's arguments that :mod:`argparse` cannot make (flags that contradict
each other or would be ignored, output files that could not be written, a device this machine
lacks), and the argparse types of sizes and counts. Each refuses in one line (exit 2) before the
command does any work.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from cityseg_lib.errors import CitysegError

__all__ = ["OneLineParser", "inference_mode", "check_predict_engine", "check_output_file", "check_local_device",
           "size_arg", "nonnegative_int_arg", "output_arg", "profile_arg"]


class OneLineParser(argparse.ArgumentParser):
    """argparse's parser whose errors (a bad int, an unknown choice, a missing flag) are one line and
    exit 2, like every other bad input (argparse printed its whole usage first, 4-10 lines)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _tta_names(tta: str | None) -> list[str]:
    """The TTA names of ``--tta`` as :meth:`InferenceMode.parse` reads them ("none" and "" dropped)."""
    return [t for t in (tta or "").replace("+", ",").replace(" ", "").split(",") if t and t.lower() != "none"]


def inference_mode(a):
    """The :class:`InferenceMode` of ``--mode/--tta/--scales/--stride`` (None: whole image, no TTA).

    ``--scales`` only means something with ``--tta ms`` and ``--stride`` with ``--mode slide``:
    given without them they would be ignored, so they are refused.
    """
    mode, tta, scales, stride = getattr(a, "mode", "whole"), getattr(a, "tta", None), a.scales, a.stride
    if scales is not None and "ms" not in _tta_names(tta):
        raise CitysegError(f"--scales {scales}: multi-scale scales need --tta ms (or flip,ms); without it they "
                           "are ignored")
    if stride is not None and mode != "slide":
        raise CitysegError(f"--stride {stride}: a sliding-window stride needs --mode slide; with --mode {mode} "
                           "it is ignored")
    if mode == "whole" and not _tta_names(tta):
        return None
    from cityseg_lib.evaluate.modes import InferenceMode

    return InferenceMode.parse(mode=mode, tta=tta, scales=scales, stride=stride)


def check_predict_engine(a) -> None:
    """``predict``: ``--onnx`` needs ``--engine onnxruntime``; that engine runs the exported model
    whole-image on the CPU, so ``--mode slide``, ``--tta``, ``--scales``, ``--stride`` and a CUDA
    ``--device`` would be ignored: refused."""
    if a.engine != "onnxruntime":
        if a.onnx is not None:
            raise CitysegError(f"--onnx {a.onnx}: an exported model runs with --engine onnxruntime; "
                               f"with --engine {a.engine} it is ignored")
        return
    ignored = [f"--mode {a.mode}" if a.mode != "whole" else "", f"--tta {a.tta}" if _tta_names(a.tta) else "",
               f"--scales {a.scales}" if a.scales is not None else "",
               f"--stride {a.stride}" if a.stride is not None else "",
               f"--device {a.device}" if a.device not in ("auto", "cpu") else ""]
    ignored = [flag for flag in ignored if flag]
    if ignored:
        raise CitysegError(f"{', '.join(ignored)}: --engine onnxruntime runs the exported model whole-image on the "
                           "CPU and would ignore it; use --engine torch for inference modes and CUDA")


def check_output_file(path: str | os.PathLike, flag: str, make_parents: bool = False,
                      inputs: tuple[tuple[str, str | os.PathLike], ...] = ()) -> None:
    """Refuse, before the work, an output file that could not be written: a folder, a missing
    parent folder (unless ``make_parents``: then the nearest existing one must take new files), a
    read-only file or place; and one that is, or lies inside, an input of the command (``inputs``:
    ``(flag, path)`` pairs, e.g. the dataset root): replacing it would destroy a user's file, and a
    new file inside a dataset or predictions folder is read back as part of it. Paths are compared
    resolved (links followed). Leaves nothing behind (a probe file is removed again)."""
    p = Path(path)
    if p.is_dir():
        raise CitysegError(f"{flag} {path}: is a folder; name the file to write")
    target = p.expanduser().resolve()
    for in_flag, in_path in inputs:
        source = Path(in_path).expanduser().resolve()
        if target == source or source in target.parents:
            where = "is" if target == source else "lies inside"
            raise CitysegError(f"{flag} {path}: {where} {in_flag} {in_path}, an input of this command; write it "
                               "elsewhere")
    try:
        if p.exists():
            with open(p, "r+b"):  # writable, and left as it is (no truncation)
                return
        parent = p.parent
        if make_parents:
            while not parent.exists() and parent != parent.parent:
                parent = parent.parent
        if not parent.is_dir():
            raise CitysegError(f"{flag} {path}: {'a file, not a folder' if parent.exists() else 'no such folder'}: "
                               f"{parent}")
        if parent == p.parent:
            fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            os.close(fd)
            p.unlink()
        else:
            with tempfile.TemporaryFile(dir=parent):
                pass
    except OSError as e:
        raise CitysegError(f"{flag} {path}: cannot be written ({e.strerror or e})") from None


def check_local_device(executor_kind: str, device: str) -> None:
    """A CUDA device this machine lacks, refused before anything is printed or made, when the run
    trains here (on Ray the worker's device decides)."""
    if executor_kind == "local" and device != "auto":
        from cityseg_lib.train.setup import resolve_device

        resolve_device(device)


def size_arg(text: str) -> tuple[int, int]:
    """argparse type of ``WIDTHxHEIGHT`` (``--size 2048x1024``)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 2048x1024") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"size {text!r} must be positive")
    return w, h


def nonnegative_int_arg(text: str) -> int:
    """argparse type of a count that may be 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def output_arg(text: str) -> str:
    """argparse type of an output path: an empty one (``--out ""``, an unset shell variable) would
    mean the current folder, where the outputs would land unasked."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is empty; name the output")
    return text


def profile_arg(text: str) -> str:
    """argparse type of a profile (``runs/PROFILE``): one folder name; ``tensorboard --profile ../..``
    served, and TensorBoard crawled, the folders above ``runs/``."""
    from cityseg_lib.config import check_profile

    try:
        return check_profile(text, "profile")
    except CitysegError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
