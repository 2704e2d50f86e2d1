"""The notebooks' hand-off to the report: one declared, typed result per notebook.

Each study notebook ends by writing its result dataclass to ``reports/PROFILE/results/NN.json``
(``{"type": "UNetResult", "profile", "written", "result": {...}, "made_from": {...}}``, the last
what it was made from: :mod:`.freshness`); the report loads them back
into the same dataclasses (:func:`load_result`), strictly: a missing file, a missing field or a
value of the wrong type is one line naming the file and the field. Runs are stored relative to
the runs root (:func:`cityseg_lib.runstore.relative`), so a results file survives moving the
project.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from cityseg_lib.errors import CitysegError
from cityseg_lib.files import atomic_write_json
from cityseg_lib.paths import reports_dir
from cityseg_lib.strict import from_dict

__all__ = ["DataResult", "BaselineResult", "UNetResult", "SwinResult", "LossResult", "SweepResult", "ReportResult",
           "RESULT_TYPES", "results_dir", "result_path", "save_result", "load_result", "load_timings"]

R = TypeVar("R")


@dataclass
class DataResult:
    """01: the dataset the study ran on and its statistics."""

    data_root: str  # absolute path of the dataset root
    synthetic: bool  # made by the demo-data generator (profile data or `cityseg make-demo-data`)
    generator: dict | None  # the generator's settings when the profile generated it; None otherwise
    splits: dict  # {split: {"images", "cities" {city: n}, ...}} from check_dataset(fast=True)
    coarse_counts: dict  # {split: frames with a coarse label}
    image_sizes: dict  # {"WxH": frames of that size}
    class_stats: dict  # {"fine", "val_fine"[, "coarse"]}: data.statistics.class_statistics results
    majority_class: str  # the most frequent validation class
    majority_miou: float  # mIoU of predicting it everywhere: the floor
    figure1_ids: list[str] = field(default_factory=list)


@dataclass
class BaselineResult:
    """02: the SimpleFCN baseline."""

    main_run: str
    cpu_threads: int = 0  # torch CPU threads the notebook used (0: torch's default)
    seed_runs: list[str] = field(default_factory=list)  # main_run with each seed (main_run first); [] = [main_run]


@dataclass
class UNetResult:
    """03: the main U-Net and, trained with the ablation recipe, the constant-learning-rate comparison, the
    augmentation modes, the optimisers and the training size."""

    main_run: str
    constant_lr_run: str | None  # gamma = constant_gamma, everything else as main_run
    augment_runs: dict  # {mode: run}; "none" is main_run
    constant_gamma: float = 1.0
    optimizer_runs: dict = field(default_factory=dict)  # {optimizer: run}; "adamw" is main_run (Section 3.3)
    resolution_run: str | None = None  # the U-Net reference at resolution_size (Section 3.1); None: skipped
    seed_runs: list[str] = field(default_factory=list)  # main_run with each seed (main_run first); [] = [main_run]
    # the ablation reference with each seed (first: the seed of main_run) when the profile trains its main
    # runs with a recipe of their own (params/PROFILE/main.yaml); [] = seed_runs: the main runs are the reference.
    # The variants above (and 05, 06) are this reference with one change: "none" and the main optimiser are it.
    ablation_runs: list[str] = field(default_factory=list)


@dataclass
class SwinResult:
    """04: the main Swin2-JNet and its regularisation comparisons."""

    main_run: str
    no_dropout_run: str | None = None
    no_batchnorm_run: str | None = None
    batchnorm_switch: bool = False  # whether the model has an option to remove BatchNorm
    seed_runs: list[str] = field(default_factory=list)  # main_run with each seed (main_run first); [] = [main_run]
    ablation_runs: list[str] = field(default_factory=list)  # as UNetResult's: the reference of the two runs above


@dataclass
class LossResult:
    """05: the U-Net trained with each loss, once per seed."""

    runs: dict  # {loss: [run of each seed]}
    seeds: list[int]


@dataclass
class SweepResult:
    """06: the halving sweeps and the tuned models trained with their winners' parameters."""

    sweeps: dict  # {model: sweep.results.sweep_results(...)}
    tuned_runs: dict  # {model: run}


@dataclass
class ReportResult:
    """07: what the written report concluded."""

    best_model: str
    conclusions: list[str]


def reference_run(result) -> str:
    """The run notebooks 05 and 06 build on in a result of 03 or 04: its ablation reference (the run of
    the first seed), or its main run when the profile has one recipe."""
    return (getattr(result, "ablation_runs", None) or [result.main_run])[0]


#: Notebook number -> its declared result type.
RESULT_TYPES: dict[str, type] = {"01": DataResult, "02": BaselineResult, "03": UNetResult, "04": SwinResult,
                                 "05": LossResult, "06": SweepResult, "07": ReportResult}


def results_dir(profile: str) -> Path:
    """``reports/PROFILE/results/``: the notebooks' typed results and the build's timings."""
    return reports_dir() / profile / "results"


def result_path(profile: str, notebook: str) -> Path:
    return results_dir(profile) / f"{notebook}.json"


def _notebook_of(cls: type) -> str:
    for nb, tp in RESULT_TYPES.items():
        if tp is cls:
            return nb
    raise CitysegError(f"{cls.__name__} is not a declared notebook result ({', '.join(RESULT_TYPES)})")


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


def save_result(profile: str, result: Any) -> Path:
    """Write a notebook's typed result to ``reports/PROFILE/results/NN.json`` (checked on the way out)."""
    if not dataclasses.is_dataclass(result) or isinstance(result, type):
        raise CitysegError(f"save_result expects a notebook result dataclass, got {type(result).__name__}")
    nb = _notebook_of(type(result))
    payload = _plain(dataclasses.asdict(result))
    _build(type(result), payload, f"{nb}.json (being written)")  # refuse to write what cannot be read back
    from cityseg_lib.report.freshness import made_from

    path = result_path(profile, nb)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"type": type(result).__name__, "profile": profile,
                             "written": time.strftime("%Y-%m-%d %H:%M:%S"), "result": payload,
                             "made_from": made_from(profile, nb, result)})  # judged by report.freshness
    return path


def _build(cls: type[R], values: Any, source: str) -> R:
    if not isinstance(values, dict):
        raise CitysegError(f"{source}: 'result' is not a mapping of {cls.__name__} fields")
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [k for k in required if k not in values]
    if missing:
        raise CitysegError(f"{source}: field {missing[0]!r} of {cls.__name__} is missing")
    return from_dict(cls, values, source=f"{source}: {cls.__name__} field")


def load_result(profile: str, notebook: str, cls: type[R] | None = None) -> R:
    """The typed result of notebook ``NN`` in ``profile``; one-line errors name the file and field."""
    expected = cls or RESULT_TYPES.get(notebook)
    if expected is None:
        raise CitysegError(f"no result type is declared for notebook {notebook!r} (known: {', '.join(RESULT_TYPES)})")
    path = result_path(profile, notebook)
    if not path.is_file():
        raise CitysegError(f"{path} is missing: run notebooks/{notebook}_*.ipynb (profile {profile}) first")
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CitysegError(f"{path}: not a readable JSON results file ({type(err).__name__})") from None
    if not isinstance(doc, dict) or doc.get("type") != expected.__name__:
        found = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
        raise CitysegError(f"{path}: field 'type' is {found!r}, expected {expected.__name__!r} "
                           f"(rerun notebook {notebook})")
    return _build(expected, doc.get("result"), str(path))


def load_timings(profile: str) -> dict:
    """Wall seconds per notebook as recorded by ``cityseg report`` (empty when run by hand)."""
    path = results_dir(profile) / "timings.json"
    return json.loads(path.read_text()) if path.is_file() else {}
