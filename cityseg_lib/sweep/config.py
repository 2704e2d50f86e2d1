"""The sweep's config: fixed training settings (``base``), the grid (Table 1), and how rungs run.

Strict like :class:`cityseg_lib.config.TrainConfig`: unknown keys, wrong types and out-of-range
values are one-line errors naming the key; ``base`` and every grid point are built into
TrainConfigs here, so a value that would fail every trial fails before the first one.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from cityseg_lib.config import TrainConfig, check_device, check_profile
from cityseg_lib.errors import CitysegError
from cityseg_lib.strict import at_least, from_dict, load_yaml, parse_overrides

__all__ = ["TABLE1_GRID", "SWEEP_OWNED", "MODEL_OPTION", "VOLATILE_SWEEP", "SweepConfig", "load_sweep_config"]

#: Table 1 of the reference report: 2 x 3 x 2 x 3 = 36 configurations.
TABLE1_GRID: dict[str, list] = {
    "lr": [1e-3, 1e-4],
    "gamma": [1.0, math.sqrt(0.1), 0.1],
    "weight_decay": [0.0, 1e-4],
    "model_options.dropout": [0.0, 0.05, 0.1],
}

#: TrainConfig keys the sweep sets on every trial; ``base`` and ``grid`` may not set them.
SWEEP_OWNED = ("name", "profile", "runs_dir", "epochs", "train_subset", "subset_seed", "device")

#: SWEEP_OWNED keys that ``base`` may set all the same: ``train_subset`` there is the sweep's *pool*, the
#: training images the run it tunes trains on (a profile's ablation recipe: 128 of the demo's 512
#: frames). The rungs are nested subsets of the pool (one permutation of ``subset_seed``) and the final
#: rung trains on all of it, so the winner is chosen on the data the tuned run gets.
BASE_POOL = ("train_subset",)

#: Sweep keys that may differ when a sweep is resumed (where and how its trials run, not what they compute).
#: ``cpu_threads`` changes CPU results in round-off: finished trials are reused whatever count trained
#: them, and a trial begun with another count is refused by the engine (the sweep stops, one line).
VOLATILE_SWEEP = {"devices", "runs_dir", "cpu_threads", "executor", "cpus_per_run"}

#: TrainConfig keys that choose the data: one for every candidate (the rungs are nested subsets of
#: one training split, ranked on one validation split), so they are set in ``base``, never swept.
DATA_KEYS = ("data_root", "train_split", "val_split", "annotation", "max_val_images")

MODEL_OPTION = "model_options."
_TRIAL_FIELDS = ["subset", "epochs", "status", "best_val_loss", "best_epoch", "val_miou",
                 "train_time_s", "wall_time_s"]


@dataclass
class SweepConfig:
    """A halving sweep: fixed training settings, the grid, and how the rungs are run."""

    name: str = "sweep"  # sweep folder: RUNS_DIR/PROFILE/NAME
    profile: str = "demo"  # params profile (demo, full, smoke)
    runs_dir: str = ""  # "" -> PROJECT/runs
    base: dict = field(default_factory=dict)  # TrainConfig keys fixed for every trial
    # grid: TrainConfig key (or model_options.KEY) -> values; default = Table 1 of the report
    grid: dict = field(default_factory=lambda: {k: list(v) for k, v in TABLE1_GRID.items()})
    rung_epochs: int = 20  # epochs of every trial before the final rung (the report uses 20)
    final_epochs: int = 0  # epochs of the final two on the whole training set; 0 = rung_epochs
    min_subset: int = 1  # fewest training images of a rung
    subset_seed: int = 0  # seed of the nested subsets (the trials' weight seed is base.seed)
    # device of every trial: [auto] = the GPU the executor gives the run (a Ray task's), else CPU;
    # or one torch device ([cpu], [cuda:1]). Trials run in parallel on the executor, not per device.
    devices: list[str] = field(default_factory=lambda: ["auto"])
    cpu_threads: int = 0  # torch threads of every trial; 0 = this process's count (CPU results depend on it)
    executor: str = ""  # local | ray: where trials run; "" = $CITYSEG_EXECUTOR, else local (--executor overrides)
    cpus_per_run: int = 0  # ray without GPUs: CPUs each trial holds; 0 = its torch threads (cpu_threads)

    RANGES: ClassVar[dict] = {"rung_epochs": at_least(1), "final_epochs": at_least(0), "min_subset": at_least(1),
                              "subset_seed": at_least(0), "cpu_threads": at_least(0), "cpus_per_run": at_least(0)}


def _check_sweep(cfg: SweepConfig, source: str) -> SweepConfig:
    """Validate ``cfg`` (strictly, like TrainConfig) and return it with typed grid values."""
    if len(cfg.devices) != 1:
        raise CitysegError(f"{source}: devices={cfg.devices} must name one device ([auto], [cpu], [cuda:1]); "
                           "trials run in parallel on the executor: executor: ray (one GPU per trial)")
    check_device(cfg.devices[0], f"{source}: devices")
    if cfg.executor:
        from cityseg_lib.execute import executor_name

        executor_name(cfg.executor, f"{source}: executor")
    if not cfg.name or cfg.name.startswith("/") or ".." in Path(cfg.name).parts:
        raise CitysegError(f"{source}: name {cfg.name!r} must be a plain folder name")
    check_profile(cfg.profile, f"{source}: profile")

    owned = [k for k in cfg.base if k in SWEEP_OWNED and k not in BASE_POOL]
    if owned:
        raise CitysegError(f"{source}: base.{owned[0]} is set by the sweep for every trial "
                           "(use name, profile, runs_dir, rung_epochs, final_epochs, min_subset, subset_seed, devices)")
    from_dict(TrainConfig, cfg.base, source=f"{source}: base")  # unknown keys / wrong types name the key

    if not isinstance(cfg.grid, dict) or not cfg.grid:
        raise CitysegError(f"{source}: grid is empty; give at least one key with a list of values")
    grid = {}
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    base_options = cfg.base.get("model_options", {}) or {}
    for key, values in cfg.grid.items():
        where = f"{source}: grid.{key}"
        if not isinstance(values, list) or not values:
            raise CitysegError(f"{where}: expected a non-empty list of values, got {values!r}")
        if key.startswith(MODEL_OPTION):
            option = key[len(MODEL_OPTION):]
            if not option:
                raise CitysegError(f"{where}: name the option, e.g. model_options.dropout")
            if option in base_options:
                raise CitysegError(f"{where}: also fixed in base.model_options; set it in one place")
            grid[key] = _distinct(list(values), where)
            continue
        if key not in fields or key == "model_options":
            raise CitysegError(f"{where}: not a training key (use a TrainConfig key or model_options.KEY)")
        if key in SWEEP_OWNED:
            raise CitysegError(f"{where}: {key} is set by the sweep and cannot be swept")
        if key in DATA_KEYS:
            raise CitysegError(f"{where}: {key} chooses the data, which is one for every candidate (the rungs are "
                               "subsets of one training split); set it in base, or run one sweep per value")
        if key in cfg.base:
            raise CitysegError(f"{where}: also fixed in base; set it in one place")
        grid[key] = _distinct([getattr(from_dict(TrainConfig, {key: v}, source=where), key) for v in values], where)
    return dataclasses.replace(cfg, grid=grid)


def _distinct(values: list, where: str) -> list:
    """``values`` when no two are equal (after typing: 1 and 1.0 are one learning rate), else one line."""
    for i, value in enumerate(values):
        if value in values[:i]:
            raise CitysegError(f"{where}: {value!r} is listed twice; a grid's values must differ "
                               "(each would be the same trial)")
    return values


def _merge(cfg: SweepConfig, values: dict, source: str) -> SweepConfig:
    """``values`` over ``cfg``; ``base.KEY`` / ``grid.KEY`` update one entry of those mappings."""
    plain, nested = {}, {"base": dict(cfg.base), "grid": dict(cfg.grid)}
    touched = set()
    for key, value in values.items():
        head, dot, rest = key.partition(".")
        if dot and head in nested:
            nested[head][rest] = value
            touched.add(head)
        else:
            plain[key] = value
    plain.update({k: nested[k] for k in touched if k not in plain})
    return from_dict(SweepConfig, plain, source=source, base=cfg)


def load_sweep_config(params: str | os.PathLike | None = None, overrides: list[str] | dict | None = None) -> SweepConfig:
    """Defaults <- ``params`` YAML <- overrides (``key=value``; ``base.KEY=`` / ``grid.KEY=`` set one entry).

    A ``grid`` in the file replaces the default (Table 1) grid as a whole.
    """
    cfg = SweepConfig()
    if params is not None:
        cfg = _check_sweep(_merge(cfg, load_yaml(params), str(params)), str(params))
    if overrides:
        values = overrides if isinstance(overrides, dict) else parse_overrides(list(overrides))
        cfg = _merge(cfg, values, "override")
    return _check_sweep(cfg, "override" if overrides else str(params or "sweep config"))
