"""What the report reads (:class:`ReportContext`, :func:`load_context`) and the helpers several sections share.

The context holds the notebooks' typed results (:mod:`.notebook_results`, refused when they no longer
fit together: :mod:`.freshness`) and a run reader: the report asks ``ctx.runs`` for a run's record,
metrics, config or per-image matrices and never opens a run folder itself. :class:`StoredRuns` reads
them through :mod:`cityseg_lib.runstore`; :class:`MemoryRuns` holds hand-made ones (tests); both live in
:mod:`.run_reader`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from cityseg_lib.data.labels import CLASS_NAMES
from cityseg_lib.models.names import display_name
from cityseg_lib.report.format import tuned_label
from cityseg_lib.report.notebook_results import (BaselineResult, DataResult, LossResult, SweepResult, SwinResult,
                                                 UNetResult, load_result, load_timings)
from cityseg_lib.report.run_reader import MemoryRuns, StoredRuns

__all__ = ["StoredRuns", "MemoryRuns", "ReportContext", "load_context", "runs_frame", "majority_baseline",
           "val_class_pixels", "devices", "run_device", "run_precision", "trained_on", "full_or_train", "MAIN_MODELS",
           "FLAT_GAIN"]

#: The headline models, in report order: model key -> the notebook result holding its main run.
MAIN_MODELS = ("simple_fcn", "unet", "swin2_jnet")

#: A run whose last epoch lowered the validation loss by at most this fraction of its earlier best had
#: a flattened curve when it stopped; by more, it stopped mid-descent (its score is limited by its length).
FLAT_GAIN = 0.01


@dataclass
class ReportContext:
    """Everything the report reads: the notebooks' typed results, a run reader, the environment."""

    profile: str
    data: DataResult
    baseline: BaselineResult
    unet: UNetResult
    swin: SwinResult
    losses: LossResult
    sweep: SweepResult
    runs: StoredRuns | MemoryRuns = field(default_factory=StoredRuns)
    timings: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    built: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M"))
    n_boot: int = 2000  # bootstrap resamples of every interval
    _memo: dict = field(default_factory=dict, repr=False)

    @property
    def data_root(self) -> Path:
        return Path(self.data.data_root)

    @property
    def synthetic(self) -> bool:
        return self.data.synthetic

    @property
    def data_root_shown(self) -> str:
        """The data root as the report prints it: relative to the project when inside it (portable)."""
        from cityseg_lib.paths import project_root

        try:
            return str(self.data_root.resolve().relative_to(project_root()))
        except ValueError:
            return str(self.data_root)

    @cached_property
    def main_runs(self) -> dict[str, str]:
        """``{label: run}`` of the headline models: the three architectures, then the tuned ones."""
        runs = {display_name("simple_fcn"): self.baseline.main_run, display_name("unet"): self.unet.main_run,
                display_name("swin2_jnet"): self.swin.main_run}
        runs.update({tuned_label(m): r for m, r in self.sweep.tuned_runs.items()})
        return runs

    @cached_property
    def main_keys(self) -> dict[str, str]:
        """``{label: key}``: ``simple_fcn``, ``unet``, ``swin2_jnet``, ``unet_tuned``... (headline.json keys)."""
        keys = {display_name(m): m for m in MAIN_MODELS}
        keys.update({tuned_label(m): f"{m}_tuned" for m in self.sweep.tuned_runs})
        return keys

    @cached_property
    def main(self) -> dict[str, dict]:
        """``{label: run record}`` of the headline models."""
        return {label: {**self.runs.record(run), "label": label} for label, run in self.main_runs.items()}

    @cached_property
    def last_gain(self) -> dict[str, float]:
        """``{label: fraction}``: how far each headline run's last epoch lowered its validation loss below
        the best of the earlier epochs (``runstore.last_epoch_gain``; > :data:`FLAT_GAIN`: still descending)."""
        from cityseg_lib.runstore import last_epoch_gain

        return {label: last_epoch_gain(self.runs.metrics(run)) for label, run in self.main_runs.items()}

    @cached_property
    def seed_gains(self) -> dict[str, list[tuple[int, float]]]:
        """``{label: [(seed, gain), ...]}``: :attr:`last_gain` of each headline model's other seeds (its
        seed runs after the main one; empty for a model trained once). Comparisons pool every seed,
        so whether a repeated seed stopped mid-descent matters as much as the main run's curve."""
        from cityseg_lib.runstore import last_epoch_gain

        return {label: [(int(self.runs.record(run)["seed"]), last_epoch_gain(self.runs.metrics(run)))
                        for run in self.seed_runs(label)[1:]] for label in self.main_runs}

    def seed_runs(self, label: str) -> list[str]:
        """The runs of a headline model, one per seed (its main run first; tuned models: one run)."""
        results = {display_name("simple_fcn"): self.baseline, display_name("unet"): self.unet,
                   display_name("swin2_jnet"): self.swin}
        result = results.get(label)
        return list(getattr(result, "seed_runs", None) or [self.main_runs[label]])

    def ablation_runs(self, label: str) -> list[str]:
        """The ablation reference of an untuned headline model, one run per seed (the seed of its main run
        first): what its ablations (and its tuned model) are compared with. With one recipe (no
        ``params/PROFILE/main.yaml``), :meth:`seed_runs`: the main runs are their own reference."""
        results = {display_name("unet"): self.unet, display_name("swin2_jnet"): self.swin}
        return list(getattr(results.get(label), "ablation_runs", None) or self.seed_runs(label))

    def reference(self, label: str) -> str:
        """The first run of :meth:`ablation_runs`: the run each single ablation varies."""
        return self.ablation_runs(label)[0]

    @property
    def two_recipes(self) -> bool:
        """Whether the ablations trained with another recipe than the main runs (the demo)."""
        return bool(getattr(self.unet, "ablation_runs", None) or getattr(self.swin, "ablation_runs", None))

    def recipe_of(self, run: str) -> str:
        """``"main"`` or ``"ablation"``: which recipe ``run`` trained with (a table column of runs of both
        recipes, :attr:`two_recipes`; the introduction says what each recipe is)."""
        mains = {r for label in self.untuned for r in self.seed_runs(label)}
        return "main" if run in mains else "ablation"

    def record(self, run: str) -> dict:
        return self.runs.record(run)

    def stats(self, label: str) -> dict:
        return self.runs.model_stats(self.main_runs[label])

    @property
    def untuned(self) -> list[str]:
        return [display_name(m) for m in MAIN_MODELS]

    @property
    def tuned(self) -> list[str]:
        return [tuned_label(m) for m in self.sweep.tuned_runs]


def load_context(profile: str) -> ReportContext:
    """The notebooks' typed results of ``profile`` and a reader of their runs; errors name the missing file."""
    from cityseg_lib.provenance import environment_info
    from cityseg_lib.report.freshness import check_fresh

    ctx = ReportContext(profile=profile, data=load_result(profile, "01"), baseline=load_result(profile, "02"),
                        unet=load_result(profile, "03"), swin=load_result(profile, "04"),
                        losses=load_result(profile, "05"), sweep=load_result(profile, "06"),
                        timings=load_timings(profile), env=environment_info())
    _ = ctx.main  # every headline run must exist: fail here, naming it, not in a later section
    check_fresh(profile, ["01", "02", "03", "04", "05", "06"], ctx.data_root)  # 07 run by hand: results of mixed builds
    return ctx


def full_or_train(rec: Mapping) -> float:
    """The official full-resolution mIoU of a record, or the training-size one when it has none."""
    return rec["miou_full_res"] if not math.isnan(rec["miou_full_res"]) else rec["miou"]


def runs_frame(records: Sequence[dict]) -> pd.DataFrame:
    """Headline numbers of runs (``runstore.run_record`` rows) as a table, percentages rounded."""
    rows = []
    for r in records:
        rows.append({"run": r["label"], "epochs": r["epochs_run"], "best epoch": r["best_epoch"],
                     "best val loss": round(r["best_val_loss"], 4), "val mIoU (%)": round(100 * r["miou"], 1),
                     "val mIoU full res (%)": round(100 * r["miou_full_res"], 1), "pixel acc (%)": round(100 * r["pixel_accuracy"], 1),
                     "train img/s": round(r["train_images_per_s"] or math.nan, 1),
                     "train time (s)": round(r["train_time_s"] or math.nan)})
    return pd.DataFrame(rows)


def majority_baseline(class_pixels: Mapping[str, int]) -> tuple[str, float]:
    """The class a constant predictor would pick (the most frequent) and that predictor's mIoU.

    Predicting class ``k`` everywhere gives IoU(k) = share of k, every other present class IoU 0,
    so mIoU = share(k) / number of present classes: the floor a model must clear to have learnt.
    """
    counts = np.array([class_pixels.get(n, 0) for n in CLASS_NAMES], dtype=float)
    present = int((counts > 0).sum())
    k = int(counts.argmax())
    share = counts[k] / max(counts.sum(), 1)
    return CLASS_NAMES[k], share / max(present, 1)


def val_class_pixels(ctx: ReportContext) -> dict:
    stats = ctx.data.class_stats
    return (stats.get("val_fine") or stats.get("fine") or {}).get("pixels", {})


def run_device(rec: Mapping) -> str:
    """Where a run trained, from its own ``environment.json`` (the GPU's name, or ``CPU (N cores)``);
    for a run without one, its summary's ``cpu``/``cuda``."""
    name, kind = rec.get("device_name"), str(rec.get("device"))
    if kind == "cpu" or (name or "").startswith("CPU"):
        return f"CPU ({rec['cpu_count']} cores)" if rec.get("cpu_count") else "CPU"
    return name or kind


def devices(ctx: ReportContext) -> str:
    """The devices the headline runs trained on, as their own records give them (not this machine's)."""
    return ", ".join(sorted({run_device(r) for r in ctx.main.values()}))


def run_precision(rec: Mapping) -> str | None:
    """The arithmetic a run trained in, from its record (``runstore.run_record``): ``float32`` or
    ``bf16 autocast``, on a CPU with ``(AMX)`` or ``(no AMX)`` as its ``environment.json`` says; a
    record without one: float32 on a CPU (all there was before ``cpu_bf16``), else None (unknown)."""
    cpu = run_device(rec).startswith("CPU")
    if rec.get("precision") is None:
        return "float32" if cpu else None
    if rec["precision"] != "bf16":
        return "float32"
    if cpu and rec.get("cpu_amx") is not None:
        return "bf16 autocast (AMX)" if rec["cpu_amx"] else "bf16 autocast (no AMX)"
    return "bf16 autocast"


def trained_on(ctx: ReportContext) -> str:
    """The devices and precisions of the headline runs: ``CPU (2 cores), float32``."""
    found = {(run_device(r), run_precision(r)) for r in ctx.main.values()}
    return "; ".join(sorted(f"{d}, {p}" if p else d for d, p in found))
