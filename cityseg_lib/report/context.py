"""What the report reads (:class:`ReportContext`, :func:`load_context`) and the helpers several sections share."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import study
from ..labels import CLASS_NAMES
from .format import tuned_label


def runs_frame(records: Sequence[dict]) -> pd.DataFrame:
    """Headline numbers of runs (``study.run_record`` rows) as a table, percentages rounded."""
    rows = []
    for r in records:
        rows.append({"run": r["label"], "epochs": r["epochs_run"], "best epoch": r["best_epoch"],
                     "best val loss": round(r["best_val_loss"], 4), "val mIoU (%)": round(100 * r["miou"], 1),
                     "val mIoU full res (%)": round(100 * r["miou_full_res"], 1),
                     "pixel acc (%)": round(100 * r["pixel_accuracy"], 1),
                     "train img/s": round(r["train_images_per_s"] or math.nan, 1),
                     "train time (s)": round(r["train_time_s"] or math.nan)})
    return pd.DataFrame(rows)


@dataclass
class ReportContext:
    """Everything the report reads, loaded once: results files, run records, environment."""

    profile: str
    results: dict
    data_root: Path
    synthetic: bool
    main: dict[str, dict]  # label -> run record of the headline models
    env: dict
    built: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M"))
    _stats: dict = field(default_factory=dict)

    @property
    def data_root_shown(self) -> str:
        """The data root as the report prints it: relative to the project when inside it (portable)."""
        from ..paths import project_root

        try:
            return str(self.data_root.resolve().relative_to(project_root()))
        except ValueError:
            return str(self.data_root)

    def record(self, run: str) -> dict:
        return study.run_record(run)

    def stats(self, label: str) -> dict:
        if label not in self._stats:
            self._stats[label] = study.model_stats(self.main[label]["run"])
        return self._stats[label]

    @property
    def untuned(self) -> list[str]:
        return [k for k in self.main if "tuned" not in k]

    @property
    def tuned(self) -> list[str]:
        return [k for k in self.main if "tuned" in k]


def _main_runs(results: dict) -> dict[str, str]:
    runs = {
        "SimpleFCN": results["02"]["runs"]["simple_fcn"],
        "U-Net": results["03"]["runs"]["unet"],
        "Swin2-JNet": results["04"]["runs"]["swin2_jnet"],
    }
    for model, run in results["06"].get("tuned_runs", {}).items():
        runs[tuned_label(model)] = run
    return runs


def load_context(profile: str) -> ReportContext:
    """Read ``reports/PROFILE/results/`` and the runs it names; an error names what is missing."""
    from ..config import environment_info

    results = study.collect_results(profile)
    root = Path(results["01"]["data_root"])
    main = {label: study.run_record(run, label) for label, run in _main_runs(results).items()}
    env = environment_info()  # commit of the code, see config.git_commit
    return ReportContext(profile=profile, results=results, data_root=root,
                         synthetic=bool(results["01"].get("synthetic")), main=main, env=env)


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
    stats = ctx.results["01"].get("class_stats", {})
    return (stats.get("val_fine") or stats.get("fine") or {}).get("pixels", {})


def devices(ctx: ReportContext) -> str:
    devices = sorted({str(r.get("device")) for r in ctx.main.values()})
    if devices == ["cpu"]:
        return f"CPU ({ctx.env.get('cpu_count')} cores)"
    return ", ".join(devices) + (f" ({ctx.env.get('device')})" if ctx.env.get("device") else "")
