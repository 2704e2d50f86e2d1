"""The run store: the one module that names a run folder, writes its files and reads them back.

A run folder ``RUNS/PROFILE/NAME-HASH/`` holds::

    config.yaml        the resolved TrainConfig (data_root absolute: the dataset's current place)
    identity.json      what the run computes: its computed keys and the dataset's fingerprint
    environment.json   git commit, package versions, device
    metrics.csv        one row per finished epoch
    last.pt, best.pt   the latest state (exact resume) and the lowest-validation-loss weights
    summary.json       the kept checkpoint's scores; written when the run finishes
    per_image.npz      per-image confusion matrices of the final evaluation (for the bootstrap)
    model_stats.json   parameters and FLOPs (cache), eval_*.json (``cityseg evaluate``)
    tb/                TensorBoard event files (written by :mod:`cityseg_lib.train.tblog`)

A run is identified by what it computes: ``HASH`` is a short digest of every config key except
:data:`EXECUTION_KEYS` (where it runs, its name, how many epochs) plus the dataset's content
fingerprint (its split file lists and sizes, not its path). A changed computed key therefore
makes a *new* folder beside the old one; moving the dataset or the checkout changes nothing; a
larger ``epochs`` extends the finished run from ``last.pt`` (StepLR continues its schedule, so
the result equals a run trained that long from the start). Nothing here deletes a run except
an explicit ``retrain=True``, which says so. Notebooks, report, sweep and CLI read run files
only through this module.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from cityseg_lib.config import TrainConfig
from cityseg_lib.provenance import environment_info
from cityseg_lib.strict import config_to_dict, from_dict, load_yaml
from cityseg_lib.errors import CitysegError
from cityseg_lib.files import atomic_write, atomic_write_csv, atomic_write_json, atomic_write_text
from cityseg_lib.lock import folder_lock

__all__ = [
    "EXECUTION_KEYS", "METRIC_FIELDS", "computed_config", "dataset_fingerprint", "run_id", "run_dir",
    "runs_root", "find_runs", "checkpoint_path", "tensorboard_dir", "is_finished", "check_same_computation", "prepare",
    "train_or_load", "write_run_info", "write_metrics", "write_summary", "write_per_image",
    "load_config", "load_identity", "load_summary", "load_metrics", "load_per_image", "run_record",
    "model_stats", "write_json", "relative", "resolve",
]

#: TrainConfig keys that do not change what a run computes: where and how fast it runs, what it
#: is called, where its files go, and how many epochs (a larger number extends the same run).
#: The one list used by reuse, resume and the sweep.
EXECUTION_KEYS = frozenset({"name", "profile", "runs_dir", "data_root", "cache", "cache_dir", "num_workers",
                            "progress", "compile", "device", "epochs"})

METRIC_FIELDS = ["epoch", "lr", "train_loss", "val_loss", "val_miou", "val_pixel_accuracy",
                 "epoch_time_s", "train_images_per_s", "is_best"]

# ----------------------------------------------------------------------------- identity


def computed_config(cfg: TrainConfig) -> dict:
    """The config keys that decide what ``cfg`` computes (everything but :data:`EXECUTION_KEYS`)."""
    return {k: v for k, v in config_to_dict(cfg).items() if k not in EXECUTION_KEYS}


def dataset_fingerprint(cfg: TrainConfig) -> dict:
    """Content identity of the data ``cfg`` trains (``cfg.annotation``) and validates (fine) on."""
    from cityseg_lib.data.fingerprint import fingerprint
    from cityseg_lib.paths import resolve_data_root

    return fingerprint(resolve_data_root(cfg.data_root), ((cfg.train_split, cfg.annotation), (cfg.val_split, "fine")))


def run_id(cfg: TrainConfig) -> str:
    """Eight hex digits of what ``cfg`` computes (computed keys and dataset fingerprint)."""
    identity = {"config": computed_config(cfg), "dataset": dataset_fingerprint(cfg)["digest"]}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]


def runs_root(cfg: TrainConfig) -> Path:
    from cityseg_lib.paths import runs_dir

    return (Path(cfg.runs_dir).expanduser() if cfg.runs_dir else runs_dir()).resolve()


def run_dir(cfg: TrainConfig) -> Path:
    """``RUNS/PROFILE/NAME-HASH``: the folder of the run ``cfg`` describes."""
    return runs_root(cfg) / cfg.profile / f"{cfg.name}-{run_id(cfg)}"


def find_runs(cfg: TrainConfig) -> list[Path]:
    """Run folders of ``cfg.name`` (any hash) in its profile, newest first."""
    parent = (runs_root(cfg) / cfg.profile / cfg.name).parent
    stem = Path(cfg.name).name
    found = [p for p in parent.glob(f"{stem}-*") if (p / "config.yaml").is_file() and len(p.name) == len(stem) + 9]
    return sorted(found, key=lambda p: (p / "config.yaml").stat().st_mtime, reverse=True)


def checkpoint_path(run: str | os.PathLike, which: str = "best") -> Path:
    """``RUN/best.pt`` or ``RUN/last.pt``."""
    if which not in ("best", "last"):
        raise CitysegError(f"checkpoint {which!r} is not one of best, last")
    return Path(run) / f"{which}.pt"


def tensorboard_dir(run: str | os.PathLike) -> Path:
    """``RUN/tb``: the run's TensorBoard event files (a ``--logdir`` above it groups runs)."""
    return Path(run) / "tb"


def check_same_computation(saved: dict, cfg: TrainConfig, where: str | os.PathLike) -> None:
    """Refuse (one line naming the key) when ``saved`` (a config dict) computes something else."""
    now = config_to_dict(cfg)
    for key in sorted(set(saved) | set(now)):
        if key in EXECUTION_KEYS:
            continue
        if key not in now:
            raise CitysegError(f"{where}: incompatible run: it has config key {key!r} this version does not know")
        if saved.get(key) != now[key]:
            raise CitysegError(f"{where}: cannot resume: {key} was {saved.get(key)!r} in that run, now {now[key]!r}")


def is_finished(run: str | os.PathLike, cfg: TrainConfig) -> bool:
    """True when ``run`` holds a finished run of ``cfg``'s length; an error when it is longer."""
    path = Path(run) / "summary.json"
    if not path.is_file():
        return False
    done = int(json.loads(path.read_text()).get("epochs", load_config(run).epochs))
    if done > cfg.epochs:
        raise CitysegError(f"{run}: this run was trained for {done} epochs, {cfg.epochs} were asked; "
                           "choose another name, or retrain to replace it")
    return done == cfg.epochs


# ----------------------------------------------------------------------------- training


def prepare(cfg: TrainConfig, resume: bool, retrain: bool = False, new_ok: bool = False) -> tuple[Path, str]:
    """Where ``cfg`` trains and what to do: ``(folder, "finished" | "resume" | "new")``.

    ``resume`` continues (or extends) the run of the same computation; when only runs of the
    same name that compute something else exist, resuming is refused naming the first differing
    key, unless ``new_ok`` (notebooks: a changed parameter simply starts a new run beside the
    old). ``retrain`` removes the run of this computation first (and says so).
    """
    out = run_dir(cfg)
    if retrain and out.exists():
        with folder_lock(out):
            print(f"{cfg.name}: retrain requested: removing {out}")
            for child in out.iterdir():
                if child.name != ".lock":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
    if (out / "config.yaml").is_file():
        if is_finished(out, cfg):
            return out, "finished"
        if not resume:
            raise CitysegError(f"{out} already holds this run ({_progress_text(out, cfg)}); pass --resume "
                               "(resume=True) to continue it")
        return out, "resume"
    if resume and not new_ok:
        others = find_runs(cfg)
        if others:
            check_same_computation(load_yaml(others[0] / "config.yaml"), cfg, others[0])
            raise CitysegError(f"{others[0]}: cannot resume: the dataset differs from that run's")
    return out, "new"


def _progress_text(run: Path, cfg: TrainConfig) -> str:
    metrics = run / "metrics.csv"
    done = max(len(metrics.read_text().splitlines()) - 1, 0) if metrics.is_file() else 0
    return f"{done} of {cfg.epochs} epochs done"


def train_or_load(cfg: TrainConfig, retrain: bool = False, verbose: bool = True) -> Path:
    """The finished run of ``cfg``: reused when it exists, else trained (or resumed, or extended).

    Returns the run folder. Other runs of the same name are never touched.
    """
    import time

    from cityseg_lib.train.engine import fit

    out, state = prepare(cfg, resume=True, retrain=retrain, new_ok=True)
    if state == "finished":
        _refresh_data_root(out, cfg)
        if verbose:
            print(f"{cfg.name}: reusing the finished run {relative(out)}")
        return out
    t0 = time.perf_counter()
    fit(cfg, resume=True)
    if verbose:
        s = load_summary(out)
        print(f"{cfg.name}: trained {s['epochs_run']} epochs in {time.perf_counter() - t0:.0f} s; "
              f"best epoch {s['best_epoch']}, val mIoU {100 * s['val']['miou']:.1f}%")
    return out


def _refresh_data_root(run: Path, cfg: TrainConfig) -> None:
    """Point a reused run's ``config.yaml`` at the dataset's current place (same content)."""
    from cityseg_lib.paths import resolve_data_root

    saved = load_yaml(run / "config.yaml")
    now = str(resolve_data_root(cfg.data_root))
    if saved.get("data_root") != now:
        saved["data_root"] = now
        with folder_lock(run):
            atomic_write_text(run / "config.yaml", yaml.safe_dump(saved, sort_keys=False))


# ----------------------------------------------------------------------------- writers (engine)


def write_run_info(run: Path, cfg: TrainConfig) -> None:
    """``config.yaml`` (data_root absolute), ``identity.json`` and ``environment.json``."""
    from cityseg_lib.paths import resolve_data_root

    values = config_to_dict(cfg)
    values["data_root"] = str(resolve_data_root(cfg.data_root))
    atomic_write_text(run / "config.yaml", yaml.safe_dump(values, sort_keys=False))
    atomic_write_json(run / "identity.json", {"run_id": run_id(cfg), "computed": computed_config(cfg),
                                              "dataset": dataset_fingerprint(cfg)})
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
    return p if p.is_absolute() or p.exists() else runs_dir() / p


def relative(run: str | os.PathLike) -> str:
    """A run folder relative to the runs root when it lies below it (for results files), else absolute."""
    from cityseg_lib.paths import runs_dir

    p = Path(run).resolve()
    try:
        return str(p.relative_to(runs_dir().resolve()))
    except ValueError:
        return str(p)


def load_config(run: str | os.PathLike, data_root: str | os.PathLike | None = None) -> TrainConfig:
    """The resolved config of a run; ``data_root`` replaces the stored one (``--root``)."""
    path = resolve(run) / "config.yaml"
    if not path.is_file():
        raise CitysegError(f"{path.parent}: not a run folder (no config.yaml)")
    values = load_yaml(path)
    if data_root:
        values["data_root"] = str(Path(data_root).expanduser().resolve())
    return from_dict(TrainConfig, values, source=str(path))


def load_identity(run: str | os.PathLike) -> dict:
    path = resolve(run) / "identity.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def load_summary(run: str | os.PathLike) -> dict:
    """``summary.json`` of a finished run."""
    path = resolve(run) / "summary.json"
    if not path.is_file():
        raise CitysegError(f"{path.parent}: no summary.json (the run did not finish; train it first)")
    return json.loads(path.read_text())


def load_metrics(run: str | os.PathLike):
    """``metrics.csv`` of a run as a DataFrame (one row per epoch)."""
    import pandas as pd

    path = resolve(run) / "metrics.csv"
    if not path.is_file():
        raise CitysegError(f"{path.parent}: no metrics.csv (the run has not finished an epoch)")
    return pd.read_csv(path)


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
    s, cfg = load_summary(run), load_config(run)
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
        "train_time_s": s.get("train_time_s"), "device": s.get("device"),
    }


def model_stats(run: str | os.PathLike) -> dict:
    """Parameters and forward FLOPs per image at the run's training size (cached in the run folder)."""
    run = resolve(run)
    cache = run / "model_stats.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    from cityseg_lib.models.summary import model_summary
    from cityseg_lib.train.engine import load_run

    cfg, model = load_run(run)
    info = model_summary(model, tuple(cfg.image_size), 1)
    stats = {"params": int(info["params"]), "flops": float(info["flops"]), "input_size": list(cfg.image_size)}
    atomic_write_json(cache, stats)
    return stats
