"""Every writer and reader of a run folder's files (config.yaml, identity.json, metrics.csv,
summary.json, per-image matrices, side files): nothing else in the package opens them."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from cityseg_lib.config import TrainConfig
from cityseg_lib.errors import CitysegError
from cityseg_lib.files import atomic_write, atomic_write_csv, atomic_write_json, atomic_write_text
from cityseg_lib.provenance import environment_info
from cityseg_lib.runstore import identity
from cityseg_lib.strict import config_to_dict, from_dict, load_yaml

METRIC_FIELDS = ["epoch", "lr", "train_loss", "val_loss", "val_miou", "val_pixel_accuracy",
                 "epoch_time_s", "train_images_per_s", "is_best"]


def checkpoint_path(run: str | os.PathLike, which: str = "best") -> Path:
    """``RUN/best.pt`` or ``RUN/last.pt``."""
    if which not in ("best", "last"):
        raise CitysegError(f"checkpoint {which!r} is not one of best, last")
    return Path(run) / f"{which}.pt"


def remove_partial_checkpoints(run: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of checkpoint writes a kill interrupted (``.last.pt.XXXX.tmp``,
    ``.best.pt.XXXX.tmp``: :func:`cityseg_lib.files.atomic_write` before its rename); returns them.
    They hold no result (the rename never happened) but can be as large as the model. Only the
    process that trains the run writes checkpoints, so call this holding the run's lock."""
    found = [p for which in ("best", "last") for p in Path(run).glob(f".{which}.pt.*.tmp") if p.is_file()]
    for p in found:
        p.unlink(missing_ok=True)
    return found


def tensorboard_dir(run: str | os.PathLike) -> Path:
    """``RUN/tb``: the run's TensorBoard event files (a ``--logdir`` above it groups runs)."""
    return Path(run) / "tb"


# ----------------------------------------------------------------------------- writers (engine)


def write_run_info(run: Path, cfg: TrainConfig) -> None:
    """``config.yaml`` (data_root absolute), ``identity.json`` and ``environment.json``."""
    from cityseg_lib.paths import resolve_data_root

    values = config_to_dict(cfg)
    values["data_root"] = str(resolve_data_root(cfg.data_root))
    atomic_write_text(run / "config.yaml", yaml.safe_dump(values, sort_keys=False))
    atomic_write_json(run / "identity.json", {"run_id": identity.run_id(cfg), "computed": identity.computed_config(cfg),
                                              "dataset": identity.dataset_fingerprint(cfg)})
    atomic_write_json(run / "environment.json", environment_info())


def write_metrics(run: Path, history: list[dict]) -> None:
    atomic_write_csv(run / "metrics.csv", history, METRIC_FIELDS)


def write_summary(run: Path, summary: dict) -> None:
    atomic_write_json(run / "summary.json", summary)


def write_per_image(run: Path, ids: list[str], matrices: np.ndarray, full_res: bool) -> None:
    """Per-image confusion matrices ``(N, C, C+1)`` of the final evaluation, keyed by frame id."""
    name = "per_image_full_res" if full_res else "per_image"

    def save(f):
        np.savez_compressed(f, ids=np.array(ids), matrices=matrices.astype(np.int64))

    atomic_write(run / f"{name}.npz", save)


def write_json(run: str | os.PathLike, name: str, payload: Any) -> Path:
    """A JSON side file of a run (``eval_val.json``...)."""
    path = Path(run) / name
    atomic_write_json(path, payload)
    return path


# ----------------------------------------------------------------------------- readers


def resolve(run: str | os.PathLike) -> Path:
    """A run folder from a path, absolute or relative to the runs root."""
    from cityseg_lib.paths import runs_dir

    p = Path(run).expanduser()
    if p.is_absolute() or p.exists():
        return p
    below = runs_dir() / p
    return below if below.exists() else p  # neither: the path as given, for the error that names it


def relative(run: str | os.PathLike) -> str:
    """A run folder relative to the runs root when it lies below it (for results files), else absolute."""
    from cityseg_lib.paths import runs_dir

    p = Path(run).resolve()
    try:
        return str(p.relative_to(runs_dir().resolve()))
    except ValueError:
        return str(p)


def load_config(run: str | os.PathLike, data_root: str | os.PathLike | None = None) -> TrainConfig:
    """The resolved config of a run; ``data_root`` replaces the stored one (``--root``). A key added
    to the config after the run was trained (:data:`~cityseg_lib.runstore.identity.ADDED_KEYS`)
    takes the value that computes what the run computed, not today's default."""
    path = resolve(run) / "config.yaml"
    if not path.is_file():
        from cityseg_lib.paths import runs_dir

        folder = path.parent
        where = (str(folder.absolute()) if folder.is_absolute() or folder.exists()
                 else f"{folder.absolute()} nor in {runs_dir() / folder}")
        raise CitysegError(f"{run}: not a run folder (no config.yaml in {where})")
    values = load_yaml(path)
    from cityseg_lib.runstore.identity import ADDED_KEYS

    for key, earlier in ADDED_KEYS.items():  # a run saved before the key computed with its earlier value
        if isinstance(values, dict):
            values.setdefault(key, earlier)
    if data_root:
        values["data_root"] = str(Path(data_root).expanduser().resolve())
    return from_dict(TrainConfig, values, source=str(path))


def read_json(path: Path, fix: str = "restore the file, or retrain the run") -> dict:
    """A run's JSON file as a mapping. A truncated or hand-edited file is one line naming it and
    what to do (``fix``; the CLI's exit 2), not a decoder traceback."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CitysegError(f"{path}: unreadable JSON ({e.msg} at line {e.lineno}); {fix}") from None
    except UnicodeDecodeError:
        raise CitysegError(f"{path}: unreadable JSON (not UTF-8 text); {fix}") from None
    if not isinstance(data, dict):
        raise CitysegError(f"{path}: expected a JSON object, got {type(data).__name__}; {fix}")
    return data


def load_identity(run: str | os.PathLike) -> dict:
    path = resolve(run) / "identity.json"
    return read_json(path) if path.is_file() else {}


def load_environment(run: str | os.PathLike) -> dict:
    """``environment.json``: the commit, versions and device of the run's latest (re)start; {} when absent."""
    path = resolve(run) / "environment.json"
    return read_json(path) if path.is_file() else {}


def load_summary(run: str | os.PathLike) -> dict:
    """``summary.json`` of a finished run."""
    path = resolve(run) / "summary.json"
    if not path.is_file():
        raise CitysegError(f"{path.parent}: no summary.json (the run did not finish; train it first)")
    return read_json(path)


def load_metrics(run: str | os.PathLike):
    """``metrics.csv`` of a run as a DataFrame (one row per epoch)."""
    import pandas as pd

    path = resolve(run) / "metrics.csv"
    if not path.is_file():
        raise CitysegError(f"{path.parent}: no metrics.csv (the run has not finished an epoch)")
    return pd.read_csv(path)


def last_epoch_gain(metrics) -> float:
    """How far a run's last epoch lowered the validation loss below the best of its earlier epochs.

    A fraction of that earlier best, from ``metrics.csv``'s ``val_loss`` column (:func:`load_metrics`):
    0.03 means the last epoch improved on every earlier one by 3% (the curve was still descending
    when the run stopped); 0 or less means it did not improve. NaN with fewer than two epochs.
    """
    losses = [float(v) for v in metrics["val_loss"]]
    if len(losses) < 2:
        return math.nan
    before = min(losses[:-1])
    return (before - losses[-1]) / before if before > 0 else math.nan


def load_per_image(run: str | os.PathLike, full_res: bool = True) -> tuple[list[str], np.ndarray]:
    """Frame ids and per-image confusion matrices ``(N, C, C+1)`` of a finished run."""
    path = resolve(run) / ("per_image_full_res.npz" if full_res else "per_image.npz")
    if not path.is_file():
        raise CitysegError(f"{path}: missing (the run did not finish, or predates per-image matrices)")
    with np.load(path) as data:
        return [str(i) for i in data["ids"]], data["matrices"]


def run_record(run: str | os.PathLike, label: str | None = None) -> dict:
    """One flat row of a finished run: what it is and its headline numbers."""
    run = resolve(run)
    s, cfg, env = load_summary(run), load_config(run), load_environment(run)
    full = s.get("val_full_res") or {}
    return {
        "label": label or cfg.name, "run": relative(run), "name": cfg.name, "model": cfg.model, "loss": cfg.loss,
        "optimizer": getattr(cfg, "optimizer", "adamw"), "seed": cfg.seed, "augment": cfg.augment, "lr": cfg.lr,
        "gamma": cfg.gamma, "step_size": cfg.step_size, "weight_decay": cfg.weight_decay,
        "dropout": cfg.model_options.get("dropout", 0.0), "image_size": list(cfg.image_size), "epochs": cfg.epochs,
        "epochs_run": s["epochs_run"], "best_epoch": s["best_epoch"], "best_val_loss": s["best_val_loss"],
        "miou": s["val"]["miou"], "pixel_accuracy": s["val"]["pixel_accuracy"],
        "miou_full_res": full.get("miou", math.nan), "pixel_accuracy_full_res": full.get("pixel_accuracy", math.nan),
        "train_images": s.get("train_images"), "val_images": s.get("val_images"),
        "train_images_per_s": s.get("train_images_per_s"), "peak_memory_mb": s.get("peak_memory_mb"),
        "peak_memory_scope": s.get("peak_memory_scope", "process"), "train_time_s": s.get("train_time_s"), "device": s.get("device"),
        "commit": env.get("commit"), "device_name": env.get("device"), "cpu_count": env.get("cpu_count"),
        "precision": s.get("precision") or _precision_before(s, cfg), "cpu_amx": env.get("cpu_amx"),
    }


def _precision_before(summary: dict, cfg: TrainConfig) -> str:
    """The precision of a run whose ``summary.json`` predates its record: CPU runs trained in
    float32 (cpu_bf16 came later), CUDA runs under bf16 autocast when ``amp``."""
    return "bf16" if cfg.amp and str(summary.get("device", "")).startswith("cuda") else "float32"


def model_stats(run: str | os.PathLike) -> dict:
    """Parameters and forward FLOPs per image at the run's training size (cached in the run folder)."""
    run = resolve(run)
    cache = run / "model_stats.json"
    if cache.is_file():
        try:
            return read_json(cache)
        except CitysegError:  # a cache: a damaged one is computed again
            pass
    from cityseg_lib.models.summary import model_summary
    from cityseg_lib.train.engine import load_run

    cfg, model = load_run(run)
    info = model_summary(model, tuple(cfg.image_size), 1)
    stats = {"params": int(info["params"]), "flops": float(info["flops"]), "input_size": list(cfg.image_size)}
    atomic_write_json(cache, stats)
    return stats
