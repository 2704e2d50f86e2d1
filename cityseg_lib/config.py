"""Typed, strict configuration: dataclass defaults <- params YAML <- ``key=value`` overrides.

Unknown keys and values of the wrong type are errors that name the key (and the file); the
resolved config is written next to every result (see :func:`save_run_info`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import CitysegError

__all__ = [
    "TrainConfig",
    "from_dict",
    "load_yaml",
    "parse_overrides",
    "load_config",
    "config_to_dict",
    "save_run_info",
    "environment_info",
    "git_commit",
]

T = TypeVar("T")


@dataclass
class TrainConfig:
    """Everything that defines one training run. Defaults follow the reference report."""

    # --- run ---
    name: str = "run"  # run folder: RUNS_DIR/PROFILE/NAME
    profile: str = "demo"  # params profile this run belongs to (demo, full, smoke)
    runs_dir: str = ""  # "" -> PROJECT/runs
    seed: int = 0  # seeds weights, shuffling, augmentation and dropout (per epoch, so resume is exact)
    # --- data ---
    data_root: str = ""  # "" -> $CITYSCAPES_DATASET
    image_size: tuple[int, int] = (768, 768)  # (H, W) training size; the report resizes to 768x768
    annotation: str = "fine"  # fine | coarse labels for training
    train_split: str = "train"
    val_split: str = "val"
    train_subset: float | int | None = None  # fraction (0, 1] or count of training images; None = all
    subset_seed: int = 0  # seed of the (nested) subset draw
    max_val_images: int = 0  # 0 = the whole validation split
    augment: str = "none"  # none | replace | augment (Section 3.1)
    hflip_p: float = 0.5  # horizontal flip probability when augmenting
    crop_scale: tuple[float, float] = (0.5, 1.0)  # RandomResizedCrop area range when augmenting
    cache: bool = True  # preprocessed-sample cache (decode each PNG once)
    cache_dir: str = ""  # "" -> $CITYSEG_CACHE or PROJECT/data/cache
    num_workers: int = -1  # DataLoader workers; -1 = min(cpus, 8) on CUDA, 0 on CPU
    # --- model ---
    model: str = "unet"  # simple_fcn | unet | swin2_jnet
    model_options: dict = field(default_factory=dict)  # passed to build_model (width, depth, dropout, ...)
    # --- optimisation ---
    loss: str = "cross_entropy"  # cross_entropy | iou | dice
    epochs: int = 20
    batch_size: int = 8
    lr: float = 1e-3  # AdamW initial learning rate
    weight_decay: float = 1e-4  # AdamW decoupled L2
    step_size: int = 10  # StepLR: decay every step_size epochs
    gamma: float = 0.1  # StepLR factor (1 = constant learning rate)
    patience: int = 0  # stop after this many epochs without a lower val loss; 0 = never
    # --- execution ---
    device: str = "auto"  # auto (CUDA if present) | cpu | cuda | cuda:N
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    channels_last: bool = True  # NHWC memory format on CUDA (ignored on CPU)
    compile: bool = False  # torch.compile the model
    full_res_eval: bool = True  # final evaluation also at the original label resolution (official protocol)
    max_batches: int = 0  # cap on training batches per epoch (smoke tests); 0 = all
    progress: bool = True  # tqdm bars (always off when CI is set)


# ----------------------------------------------------------------------------- strict merging


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert lossless cases (int -> float, list -> tuple)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None
        errors = []
        # try exact types first so 3 stays an int in `float | int`
        args = sorted(typing.get_args(tp), key=lambda a: a is not type(value))
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except CitysegError as e:
                errors.append(e)
        raise CitysegError(f"{key}: {value!r} is not a {_type_name(tp)}")
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise CitysegError(f"{key}: {value!r} is not a list of {len(args)} values ({_type_name(tp)})")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is list:
        (arg,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, (list, tuple)):
            raise CitysegError(f"{key}: {value!r} is not a list")
        return [_coerce(v, arg, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise CitysegError(f"{key}: {value!r} is not a mapping")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise CitysegError(f"{key}: {value!r} is not a bool (true/false)")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise CitysegError(f"{key}: {value!r} is not an int")
        return value
    if tp is float:
        if isinstance(value, str):
            try:  # YAML 1.1 reads "1e-3" as a string
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CitysegError(f"{key}: {value!r} is not a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise CitysegError(f"{key}: {value!r} is not a string")
        return value
    raise TypeError(f"unsupported config annotation {tp!r} for {key}")  # a bug, not user input


def from_dict(cls: type[T], values: dict, source: str = "config", base: T | None = None) -> T:
    """Build dataclass ``cls`` from ``base`` (or defaults) updated with ``values``, strictly."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in values if k not in hints]
    if unknown:
        raise CitysegError(f"{source}: unknown key {unknown[0]!r} (valid keys: {', '.join(names)})")
    merged = {**(config_to_dict(base) if base is not None else {}), **values}
    for k, v in merged.items():
        try:
            merged[k] = _coerce(v, hints[k], k)
        except CitysegError as e:
            raise CitysegError(f"{source}: {e}") from None
    return cls(**merged)


def config_to_dict(cfg: Any) -> dict:
    """Plain dict of a config dataclass (tuples become lists, so it round-trips through YAML)."""

    def plain(v):
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {f.name: plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def load_yaml(path: str | os.PathLike) -> dict:
    """A YAML mapping from ``path``; errors name the file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise CitysegError(f"{path}: params file not found") from None
    except yaml.YAMLError as e:
        raise CitysegError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CitysegError(f"{path}: expected a mapping of key: value, got {type(data).__name__}")
    return data


def parse_overrides(items: list[str]) -> dict:
    """``["lr=1e-4", "model_options={width: 8}"]`` -> dict, values parsed as YAML."""
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CitysegError(f"override {item!r} is not key=value")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            raise CitysegError(f"override {item!r}: value is not valid YAML") from None
    return out


def load_config(params: str | os.PathLike | None = None, overrides: list[str] | dict | None = None, cls: type[T] = TrainConfig) -> T:
    """Defaults <- ``params`` YAML file <- overrides (``key=value`` strings or a dict)."""
    cfg = cls()
    if params is not None:
        cfg = from_dict(cls, load_yaml(params), source=str(params), base=cfg)
    if overrides:
        values = overrides if isinstance(overrides, dict) else parse_overrides(list(overrides))
        cfg = from_dict(cls, values, source="override", base=cfg)
    return cfg


# ----------------------------------------------------------------------------- provenance


def git_commit() -> str:
    """Git commit of the code that runs (the package's own checkout, wherever the data and runs
    live), ``+dirty`` with uncommitted changes to tracked files, or ``unknown`` outside git."""
    src = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, timeout=5
        )
        commit = out.stdout.strip() if out.returncode == 0 else "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=src, capture_output=True, text=True, timeout=5,
        ).stdout.strip()
        return commit + ("+dirty" if dirty and commit != "unknown" else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment_info() -> dict:
    """Git commit, package versions and hardware, for provenance."""
    import numpy
    import timm
    import torch
    import torchvision

    cuda = torch.cuda.is_available()
    return {
        "commit": git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "device": torch.cuda.get_device_name(0) if cuda else f"CPU ({platform.processor() or platform.machine()})",
        "cuda": torch.version.cuda if cuda else None,
    }


def save_run_info(cfg: Any, folder: str | os.PathLike) -> None:
    """Write ``config.yaml`` (the resolved config) and ``environment.json`` into ``folder``."""
    from .checkpoint import atomic_write_text

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "config.yaml", yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    atomic_write_text(folder / "environment.json", json.dumps(environment_info(), indent=2))
