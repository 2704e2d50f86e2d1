"""Experiment helpers the study notebooks call: data, training runs, their artifacts, results files.

The notebooks in ``notebooks/`` stay thin: a ``parameters`` cell of literals, calls into this
module (and :mod:`cityseg_lib.plots`, :mod:`cityseg_lib.report`), figures, and a last cell that
writes its headline numbers with :func:`save_results`. Every path derives from the profile and
:mod:`cityseg_lib.paths`:

* runs: ``runs/PROFILE/NAME/`` (the engine's run folders);
* results: ``reports/PROFILE/results/NN.json`` (one per notebook, read by the report notebook);
* data: the ``data_root`` parameter, else ``$CITYSCAPES_DATASET``, else the profile's generated
  demo data ``data/FOLDER`` (settings in ``params/PROFILE/data.yaml``), made on first use.

``params/`` and ``notebooks/`` are found next to the package source (they are part of the
code), while runs, data and reports live under :func:`cityseg_lib.paths.project_root`, which
``$CITYSEG_HOME`` moves (the tests point it at a temporary folder).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from .config import TrainConfig, config_to_dict, from_dict, load_yaml
from .errors import CitysegError
from .labels import CLASS_NAMES, LABEL_ID_TO_TRAIN_ID, NUM_CLASSES
from .paths import project_root, reports_dir, resolve_data_root, runs_dir

__all__ = [
    "PROFILES",
    "source_root",
    "params_dir",
    "notebooks_dir",
    "data_settings",
    "ensure_data",
    "is_synthetic",
    "dataset_overview",
    "class_statistics",
    "load_frames",
    "set_cpu_threads",
    "train_config",
    "train_or_load",
    "load_summary",
    "load_metrics",
    "load_run_config",
    "run_record",
    "model_stats",
    "split_frame",
    "generator_settings",
    "swin_options",
    "batchnorm_option",
    "seed_summary",
    "run_sweep_or_load",
    "sweep_results",
    "tuned_config",
    "table2_frame",
    "predict_frames",
    "results_dir",
    "save_results",
    "load_results",
    "collect_results",
    "run_path",
    "rel_run",
]

PROFILES = ("demo", "full", "smoke")

#: Marker written into a generated dataset root: its presence means "synthetic demo data".
DEMO_STAMP = "cityseg_demo_data.json"

#: Config keys that do not change what a run computes: a finished run with other values of
#: these is still reused. Any other difference means the run is stale and is trained again.
_EXECUTION_KEYS = {"device", "num_workers", "progress", "compile", "runs_dir", "cache_dir"}


# ----------------------------------------------------------------------------- locations


def source_root() -> Path:
    """The folder holding ``cityseg_lib/``, ``params/`` and ``notebooks/`` (not moved by CITYSEG_HOME)."""
    return Path(__file__).resolve().parent.parent


def params_dir(profile: str) -> Path:
    """``params/PROFILE/``; an unknown profile is an error listing the valid ones."""
    folder = source_root() / "params" / profile
    if not folder.is_dir():
        valid = sorted(p.name for p in (source_root() / "params").iterdir() if p.is_dir())
        raise CitysegError(f"unknown profile {profile!r}; valid profiles: {', '.join(valid)}")
    return folder


def notebooks_dir() -> Path:
    return source_root() / "notebooks"


def results_dir(profile: str) -> Path:
    """``reports/PROFILE/results/``: the notebooks' machine-readable headline numbers."""
    return reports_dir() / profile / "results"


def run_path(rel: str | os.PathLike) -> Path:
    """A run folder from its path relative to ``runs/`` (as stored in results files)."""
    p = Path(rel)
    return p if p.is_absolute() else runs_dir() / p


def rel_run(run: str | os.PathLike) -> str:
    """Path of a run folder relative to ``runs/`` when it lies below it, else absolute."""
    p = Path(run).resolve()
    try:
        return str(p.relative_to(runs_dir().resolve()))
    except ValueError:
        return str(p)


# ----------------------------------------------------------------------------- data


def data_settings(profile: str) -> dict:
    """``params/PROFILE/data.yaml``: how the profile gets its data (generated demo data or not)."""
    path = params_dir(profile) / "data.yaml"
    settings = load_yaml(path)
    known = {"generate", "folder", "train", "val", "test", "train_extra", "size", "seed", "coarse", "description"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise CitysegError(f"{path}: unknown key {unknown[0]!r} (valid keys: {', '.join(sorted(known))})")
    return settings


def is_synthetic(root: str | os.PathLike) -> bool:
    """True for a dataset made by the demo-data generator (not real Cityscapes)."""
    root = Path(root)
    if (root / DEMO_STAMP).is_file():
        return True
    readme = root / "README.txt"
    return readme.is_file() and readme.read_text(errors="replace").startswith("cityseg synthetic demo dataset")


def _generation_args(settings: dict) -> dict:
    size = settings.get("size", [1024, 512])
    return {
        "train": int(settings.get("train", 80)),
        "val": int(settings.get("val", 20)),
        "test": int(settings.get("test", 4)),
        "train_extra": int(settings.get("train_extra", 0)),
        "size": [int(size[0]), int(size[1])],
        "seed": int(settings.get("seed", 0)),
        "coarse": bool(settings.get("coarse", True)),
    }


def ensure_data(data_root: str = "", profile: str = "demo", progress: bool = False) -> Path:
    """The dataset root for a notebook: ``data_root``, else ``$CITYSCAPES_DATASET``, else demo data.

    Demo data (profiles whose ``data.yaml`` says ``generate: true``) is generated into
    ``PROJECT/data/FOLDER`` on first use and regenerated when its settings change; a folder
    without the generator's marker is never overwritten.
    """
    if data_root or os.environ.get("CITYSCAPES_DATASET"):
        root = resolve_data_root(data_root or None)
        if not root.is_dir():
            raise CitysegError(f"dataset root {root} does not exist (data_root / CITYSCAPES_DATASET)")
        return root
    settings = data_settings(profile)
    if not settings.get("generate", False):
        raise CitysegError(
            f"profile {profile!r} needs the real Cityscapes: set CITYSCAPES_DATASET (or data_root) to the folder "
            "holding leftImg8bit/ and gtFine/"
        )
    args = _generation_args(settings)
    root = project_root() / "data" / str(settings.get("folder", profile))
    stamp = root / DEMO_STAMP
    if stamp.is_file():
        try:
            if json.loads(stamp.read_text()).get("settings") == args:
                return root
        except json.JSONDecodeError:
            pass
    elif root.exists() and any(root.iterdir()) and not is_synthetic(root):
        raise CitysegError(f"{root} exists but was not made by the demo-data generator; move it or set data_root")
    from .demo import make_demo_dataset

    t0 = time.perf_counter()
    stamp.unlink(missing_ok=True)
    make_demo_dataset(root, train=args["train"], val=args["val"], test=args["test"], train_extra=args["train_extra"],
                      size=tuple(args["size"]), seed=args["seed"], coarse=args["coarse"],
                      workers=os.cpu_count() or 1, progress=progress)
    info = {"settings": args, "generator": "cityseg_lib.demo.make_demo_dataset", "synthetic": True,
            "seconds": round(time.perf_counter() - t0, 1)}
    stamp.write_text(json.dumps(info, indent=2))
    return root


def dataset_overview(root: str | os.PathLike) -> dict:
    """Splits, cities, image sizes and annotation kinds of ``root`` (PNG headers only: fast)."""
    from .check import check_dataset

    from .layout import available_splits, find_samples

    summary = check_dataset(root, fast=True)
    summary["synthetic"] = is_synthetic(root)
    summary["coarse_counts"] = {s: len(find_samples(root, s, "coarse")) for s in available_splits(root, "coarse")}
    return summary


def split_frame(overview: dict):
    """Images, cities and coarse-labelled frames per split, from :func:`dataset_overview`."""
    import pandas as pd

    rows = [{"split": split, "images": info["images"], "cities": len(info["cities"]),
             "with coarse labels": overview.get("coarse_counts", {}).get(split, 0)}
            for split, info in overview["splits"].items()]
    return pd.DataFrame(rows)


def generator_settings(root: str | os.PathLike) -> dict | None:
    """Settings the demo data under ``root`` was generated with (None for real data)."""
    stamp = Path(root) / DEMO_STAMP
    if stamp.is_file():
        try:
            return json.loads(stamp.read_text()).get("settings")
        except json.JSONDecodeError:
            return None
    return None


def class_statistics(root: str | os.PathLike, split: str = "train", annotation: str = "fine",
                     max_images: int = 0, stride: int = 4) -> dict:
    """Class pixel counts, classes per image and class co-occurrence of one split.

    Labels are read at every ``stride``-th pixel in each direction (pixel shares barely move, the
    cost drops by ``stride**2``); ``max_images`` > 0 uses an evenly spaced subset of frames.
    Returns ``{"images", "pixels" {class: count}, "classes_per_image" [n], "cooccurrence"
    (19x19 counts of images holding both classes), "presence" {class: images}}``.
    """
    from .images import read_label_ids
    from .layout import find_samples

    samples = find_samples(root, split, annotation)
    if max_images and len(samples) > max_images:
        keep = np.linspace(0, len(samples) - 1, max_images).round().astype(int)
        samples = [samples[i] for i in sorted(set(keep))]
    pixels = np.zeros(NUM_CLASSES, dtype=np.int64)
    co = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    per_image = []
    for s in samples:
        ids = LABEL_ID_TO_TRAIN_ID[read_label_ids(s.label)[::stride, ::stride]]
        counts = np.bincount(ids.ravel(), minlength=256)[:NUM_CLASSES]
        pixels += counts * stride * stride
        present = counts > 0
        per_image.append(int(present.sum()))
        co += np.outer(present, present)
    return {
        "split": split,
        "annotation": annotation,
        "images": len(samples),
        "stride": stride,
        "pixels": {n: int(c) for n, c in zip(CLASS_NAMES, pixels)},
        "classes_per_image": per_image,
        "cooccurrence": co.tolist(),
        "presence": {n: int(co[i, i]) for i, n in enumerate(CLASS_NAMES)},
    }


def load_frames(root: str | os.PathLike, split: str = "train", n: int = 3, width: int = 512,
                coarse: bool = True) -> list[dict]:
    """``n`` evenly spaced frames for display: ``{"id", "image" (H, W, 3) uint8, "fine", "coarse"}``.

    Images are downsized to ``width`` pixels (bilinear), masks with nearest neighbour, as trainIds.
    ``coarse`` is None for frames without a coarse label.
    """
    from PIL import Image

    from .images import read_image, read_train_ids
    from .layout import available_splits, find_samples

    fine = find_samples(root, split, "fine")
    coarse_map = {}
    if coarse and split in available_splits(root, "coarse"):
        coarse_map = {s.id: s for s in find_samples(root, split, "coarse")}
    with_coarse = [s for s in fine if s.id in coarse_map] or fine
    picks = np.linspace(0, len(with_coarse) - 1, min(n, len(with_coarse))).round().astype(int)
    frames = []
    for i in picks:
        s = with_coarse[i]
        rgb = read_image(s.image)
        h = max(1, round(rgb.shape[0] * width / rgb.shape[1]))

        def small(arr, resample):
            return np.asarray(Image.fromarray(arr).resize((width, h), resample))

        frame = {"id": s.id, "image": small(rgb, Image.BILINEAR),
                 "fine": small(read_train_ids(s.label), Image.NEAREST), "coarse": None}
        if s.id in coarse_map:
            frame["coarse"] = small(read_train_ids(coarse_map[s.id].label), Image.NEAREST)
        frames.append(frame)
    return frames


# ----------------------------------------------------------------------------- runs


def train_config(profile: str, name: str, **params: Any) -> TrainConfig:
    """The :class:`TrainConfig` of run ``runs/PROFILE/NAME``: defaults updated with ``params``.

    ``params`` are TrainConfig keys (unknown keys and wrong types are errors naming the key);
    progress bars are off unless asked for, so executed notebooks stay readable.
    """
    values = {"progress": False, **params, "profile": profile, "name": name}
    if isinstance(values.get("data_root"), Path):
        values["data_root"] = str(values["data_root"])
    return from_dict(TrainConfig, values, source=f"run {profile}/{name}")


def set_cpu_threads(threads: int = 0) -> int:
    """Use ``threads`` torch CPU threads (0 keeps torch's default); returns the number in use.

    On a small shared CPU one thread is often faster than several: OpenMP threads wait for each
    other at every operation, and one descheduled thread stalls them all.
    """
    import torch

    if threads and threads > 0:
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def _run_dir(cfg: TrainConfig) -> Path:
    from .engine import run_dir_for

    return run_dir_for(cfg)


def _stale_reason(run: Path, cfg: TrainConfig) -> str | None:
    """Why the run folder cannot stand for ``cfg`` (a computed key differs), or None."""
    try:
        saved = load_yaml(run / "config.yaml")
    except CitysegError:
        return "no readable config.yaml"
    now = config_to_dict(cfg)
    for key in sorted(set(saved) | set(now)):
        if key in _EXECUTION_KEYS:
            continue
        if saved.get(key) != now.get(key):
            return f"{key} was {saved.get(key)!r}, now {now.get(key)!r}"
    return None


def train_or_load(cfg: TrainConfig, retrain: bool = False, verbose: bool = True) -> Path:
    """Train ``cfg`` unless its finished run exists with the same config; returns the run folder.

    ``retrain`` deletes the run folder first. A run with a different config (params edited) is
    deleted and trained again; an interrupted run with the same config resumes from ``last.pt``.
    """
    from .engine import fit

    run = _run_dir(cfg)
    if run.exists():
        reason = "retrain requested" if retrain else _stale_reason(run, cfg) if (run / "config.yaml").exists() else None
        if reason:
            if verbose:
                print(f"{cfg.name}: training again ({reason})")
            shutil.rmtree(run)
        elif (run / "summary.json").is_file():
            if verbose:
                print(f"{cfg.name}: reusing the finished run {run}")
            return run
    t0 = time.perf_counter()
    out = fit(cfg, resume=True)
    if verbose:
        s = load_summary(out)
        print(f"{cfg.name}: trained {s['epochs_run']} epochs in {time.perf_counter() - t0:.0f} s; "
              f"best epoch {s['best_epoch']}, val mIoU {100 * s['val']['miou']:.1f}%")
    return out


def load_summary(run: str | os.PathLike) -> dict:
    """``summary.json`` of a finished run."""
    path = run_path(run) / "summary.json"
    if not path.is_file():
        raise CitysegError(f"{path.parent}: no summary.json (the run did not finish; train it first)")
    return json.loads(path.read_text())


def load_metrics(run: str | os.PathLike):
    """``metrics.csv`` of a run as a DataFrame (one row per epoch)."""
    import pandas as pd

    path = run_path(run) / "metrics.csv"
    if not path.is_file():
        raise CitysegError(f"{path.parent}: no metrics.csv (the run has not finished an epoch)")
    return pd.read_csv(path)


def load_run_config(run: str | os.PathLike) -> TrainConfig:
    """The resolved :class:`TrainConfig` of a run (its ``config.yaml``)."""
    path = run_path(run) / "config.yaml"
    return from_dict(TrainConfig, load_yaml(path), source=str(path))


def run_record(run: str | os.PathLike, label: str | None = None) -> dict:
    """One flat row of a finished run: what it is and its headline numbers."""
    run = run_path(run)
    s = load_summary(run)
    cfg = load_run_config(run)
    full = s.get("val_full_res") or {}
    return {
        "label": label or cfg.name,
        "run": rel_run(run),
        "name": cfg.name,
        "model": cfg.model,
        "loss": cfg.loss,
        "seed": cfg.seed,
        "augment": cfg.augment,
        "lr": cfg.lr,
        "gamma": cfg.gamma,
        "step_size": cfg.step_size,
        "weight_decay": cfg.weight_decay,
        "dropout": cfg.model_options.get("dropout", 0.0),
        "image_size": list(cfg.image_size),
        "epochs": cfg.epochs,
        "epochs_run": s["epochs_run"],
        "best_epoch": s["best_epoch"],
        "best_val_loss": s["best_val_loss"],
        "miou": s["val"]["miou"],
        "pixel_accuracy": s["val"]["pixel_accuracy"],
        "miou_full_res": full.get("miou", math.nan),
        "pixel_accuracy_full_res": full.get("pixel_accuracy", math.nan),
        "train_images": s.get("train_images"),
        "val_images": s.get("val_images"),
        "train_images_per_s": s.get("train_images_per_s"),
        "peak_memory_mb": s.get("peak_memory_mb"),
        "train_time_s": s.get("train_time_s"),
        "device": s.get("device"),
    }


def _count_flops(model, size: tuple[int, int]) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, *size))
    return float(counter.get_total_flops())


def model_stats(run: str | os.PathLike) -> dict:
    """Parameters and forward FLOPs per image at the run's training size (cached in the run folder)."""
    run = run_path(run)
    cache = run / "model_stats.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    from .engine import load_run

    cfg, model = load_run(run)
    size = tuple(cfg.image_size)
    try:
        from .models.summary import model_summary

        info = model_summary(model, size, 1)
        params = info.get("params", info.get("parameters"))
        flops = info.get("flops", info.get("forward_flops"))
    except ImportError:
        params = sum(p.numel() for p in model.parameters())
        flops = _count_flops(model, size)
    if params is None:
        params = sum(p.numel() for p in model.parameters())
    if flops is None:
        flops = _count_flops(model, size)
    stats = {"params": int(params), "flops": float(flops), "input_size": list(size)}
    cache.write_text(json.dumps(stats, indent=2))
    return stats


def swin_options(encoder: str, pretrained: bool, weights: str = "", encoder_kwargs: dict | None = None,
                 dropout: float = 0.0, **extra: Any) -> dict:
    """``model_options`` of a Swin2-JNet run from notebook parameters ("" and empty mean "not set")."""
    options = {"encoder": encoder, "pretrained": bool(pretrained), "dropout": float(dropout)}
    if weights:
        options["weights"] = str(Path(weights).expanduser())
    if encoder_kwargs:
        options["encoder_kwargs"] = dict(encoder_kwargs)
    options.update({k: v for k, v in extra.items() if v is not None})
    return options


def batchnorm_option(model: str) -> str | None:
    """Name of the model's option that switches BatchNorm off, or None when it has none."""
    from .models import model_options

    return "batchnorm" if "batchnorm" in model_options(model) else None


def seed_summary(runs: dict[str, list]):
    """Per key (e.g. loss): mean, std, min and max over seeds of the kept checkpoint's val mIoU."""
    import pandas as pd

    rows = {}
    for key, rs in runs.items():
        m = np.array([load_summary(r)["val"]["miou"] for r in rs])
        rows[key] = {"seeds": len(m), "mean": float(m.mean()), "std": float(m.std(ddof=1)) if len(m) > 1 else 0.0,
                     "min": float(m.min()), "max": float(m.max())}
    return pd.DataFrame.from_dict(rows, orient="index")


def predict_frames(runs: dict[str, str | os.PathLike], data_root: str | os.PathLike, n: int = 3,
                   split: str = "val") -> dict:
    """Predictions of several runs on ``n`` evenly spaced frames, at the first run's training size.

    Returns ``{"ids", "images" [(H, W, 3) uint8], "truth" [(H, W) trainIds], "predictions"
    {label: [(H, W) trainIds]}}``; for the qualitative grid.
    """
    import torch

    from .dataset import CityscapesSegmentation
    from .engine import load_run
    from .paths import default_cache_dir

    labels = list(runs)
    if not labels:
        raise CitysegError("predict_frames: no runs given")
    size = tuple(load_run_config(runs[labels[0]]).image_size)
    ds = CityscapesSegmentation(data_root, split, size, "fine", cache_dir=default_cache_dir())
    picks = np.linspace(0, len(ds.samples) - 1, min(n, len(ds.samples))).round().astype(int)
    arrays = [ds.load_array(int(i)) for i in picks]
    out = {"ids": [ds.samples[int(i)].id for i in picks], "images": [a[..., :3] for a in arrays],
           "truth": [a[..., 3] for a in arrays], "predictions": {}}
    batch = torch.stack([ds[int(i)][0] for i in picks])
    for label in labels:
        _, model = load_run(run_path(runs[label]))
        with torch.no_grad():
            logits = model(batch)
        if tuple(logits.shape[-2:]) != size:
            logits = torch.nn.functional.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        out["predictions"][label] = list(logits.argmax(1).numpy().astype(np.uint8))
    return out


# ----------------------------------------------------------------------------- sweeps


def run_sweep_or_load(params_file: str | os.PathLike, overrides: dict | None = None, retrain: bool = False,
                      verbose: bool = True) -> Path:
    """Run (or resume, or just read) the halving sweep of ``params_file``; returns its folder.

    ``retrain`` deletes the sweep folder first; so does a sweep config that no longer matches the
    folder's (the params were edited), instead of refusing to resume.
    """
    from . import sweep

    cfg = sweep.load_sweep_config(params_file, overrides)
    folder = sweep.sweep_dir_for(cfg)
    log = print if verbose else (lambda _msg: None)
    if retrain and folder.exists():
        shutil.rmtree(folder)
    if (folder / "winner.json").is_file() and not retrain:
        try:
            return sweep.run_sweep(cfg, log=lambda _msg: None)  # checks the config, trains nothing
        except CitysegError as e:
            if "cannot resume" not in str(e):
                raise
            log(f"{cfg.name}: running the sweep again ({e})")
            shutil.rmtree(folder)
    return sweep.run_sweep(cfg, log=log)


def sweep_results(folder: str | os.PathLike) -> dict:
    """What the report needs of a finished sweep: grid, rung plan, trials, Table 2 row, winner."""
    import pandas as pd

    folder = Path(folder)
    cfg = load_yaml(folder / "sweep.yaml")
    plan = json.loads((folder / "plan.json").read_text())
    winner = json.loads((folder / "winner.json").read_text())
    trials = pd.read_csv(folder / "trials.csv")
    rungs = [{"rung": r["index"], "trials": r["candidates"], "kept": r["keep"], "train images": r["subset"],
              "epochs": r["epochs"], "final": bool(r["final"])} for r in plan["rungs"]]
    return {"dir": rel_run(folder), "name": cfg.get("name"), "grid": cfg.get("grid", {}), "plan": rungs,
            "trials": int(len(trials)), "n_train": plan["n_train"], "failed": int((trials["status"] == "failed").sum()),
            "table2": winner["table2"], "winner": winner["winner"], "runner_up": winner.get("runner_up"),
            "image_epochs": int(sum(r["candidates"] * r["subset"] * r["epochs"] for r in plan["rungs"]))}


def table2_frame(sweeps: dict[str, dict]):
    """Table 2 of the sweeps (``{model: sweep_results(...)}``): the winners' parameters and val loss."""
    import pandas as pd

    return pd.DataFrame([sw["table2"] for sw in sweeps.values()])


def tuned_config(profile: str, name: str, base_run: str | os.PathLike, params: dict) -> TrainConfig:
    """The config of ``base_run`` with the sweep winner's ``params`` (``lr``, ``model_options.dropout``...)."""
    values = config_to_dict(load_run_config(base_run))
    options = dict(values.get("model_options") or {})
    for key, value in params.items():
        if key.startswith("model_options."):
            options[key.removeprefix("model_options.")] = value
        else:
            values[key] = value
    values["model_options"] = options
    return train_config(profile, name, **{k: v for k, v in values.items() if k not in ("profile", "name")})


# ----------------------------------------------------------------------------- results files


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def save_results(profile: str, notebook: str, results: dict) -> Path:
    """Write a notebook's headline numbers to ``reports/PROFILE/results/NOTEBOOK.json``."""
    from .checkpoint import atomic_write_text

    path = results_dir(profile) / f"{notebook}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"notebook": notebook, "profile": profile, "written": time.strftime("%Y-%m-%d %H:%M:%S"),
               **_plain(results)}
    atomic_write_text(path, json.dumps(payload, indent=2))
    return path


def load_results(profile: str, notebook: str) -> dict:
    """A notebook's results file; an error naming the notebook to run when it is missing."""
    path = results_dir(profile) / f"{notebook}.json"
    if not path.is_file():
        raise CitysegError(f"{path} is missing: run notebooks/{notebook}.ipynb (profile {profile}) first")
    return json.loads(path.read_text())


def collect_results(profile: str, notebooks: tuple[str, ...] = ("01", "02", "03", "04", "05", "06")) -> dict:
    """``{"01": {...}, ...}`` from ``reports/PROFILE/results/NN.json``; missing ones are errors.

    Also ``"timings"``: wall seconds per notebook as recorded by the report runner (may be empty).
    """
    out = {nb: load_results(profile, nb) for nb in notebooks}
    timings = results_dir(profile) / "timings.json"
    out["timings"] = json.loads(timings.read_text()) if timings.is_file() else {}
    return out
