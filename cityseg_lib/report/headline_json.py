"""``reports/PROFILE/headline.json``: the report's headline numbers, and the tables read from them.

For each headline model its official full-resolution mIoU with the 95% interval, pixel accuracy,
per-class IoU (each class with its interval), each seed's score and whether its curve had
flattened; for each comparison of :mod:`.evidence` the paired difference, its interval and
whether it is resolved. Fractions in [0, 1]. Table 10, Table 13 and this file come from the same
dict, computed once per context.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from cityseg_lib.data.labels import CLASS_NAMES
from cityseg_lib.evaluate.uncertainty import seed_spread
from cityseg_lib.evaluate.wording import fixed_point
from cityseg_lib.report.context import FLAT_GAIN, ReportContext
from cityseg_lib.report.evidence import _memo, class_intervals, comparisons, interval

__all__ = ["seed_scores", "headline", "headline_path", "write_headline", "points", "differences_table"]


def _num(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def seed_scores(ctx: ReportContext, label: str) -> dict:
    """``seeds``, ``seed_miou`` (each seed's full-resolution mIoU), their mean and sd (ddof=1)."""
    runs = ctx.seed_runs(label)
    values = [v for v in (ctx.record(r)["miou_full_res"] for r in runs) if v is not None and not math.isnan(v)]
    spread = seed_spread(values) if values else None
    return {"seeds": [ctx.runs.config(r).seed for r in runs], "seed_miou": values,
            "seed_mean": spread["mean"] if spread else None,
            "seed_sd": spread["std"] if spread and spread["n"] > 1 else None}


def headline(ctx: ReportContext) -> dict:
    """The report's headline numbers (what ``headline.json`` holds; fractions in [0, 1])."""
    def make():
        models = {}
        for label, run in ctx.main_runs.items():
            rec, iv, per_class = ctx.main[label], interval(ctx, run), class_intervals(ctx, run)
            summary = ctx.runs.summary(run)
            scores = summary.get("val_full_res") or summary["val"]
            models[ctx.main_keys[label]] = {
                "label": label, "run": run,
                "miou": _num(iv.value if iv else rec["miou_full_res"]),
                "ci_low": _num(iv.low) if iv else None, "ci_high": _num(iv.high) if iv else None,
                "pixel_accuracy": _num(rec["pixel_accuracy_full_res"]),
                "class_iou": {n: _num(scores["class_iou"].get(n)) for n in CLASS_NAMES},
                # each class's 95% bootstrap interval over the validation images, [low, high] (Figure 8)
                "class_iou_ci": ({n: [_num(lo), _num(hi)] for n, lo, hi in zip(CLASS_NAMES, per_class[1], per_class[2])}
                                 if per_class is not None else None),
                "n_images": iv.n_images if iv else None,
                **seed_scores(ctx, label),
                "epochs_run": rec["epochs_run"], "best_epoch": rec["best_epoch"],
                "last_epoch_gain": _num(ctx.last_gain[label]),
                "flattened": bool(ctx.last_gain[label] <= FLAT_GAIN) if not math.isnan(ctx.last_gain[label]) else None,
                # the same for every seed (main run first): comparisons pool the seeds
                "seed_last_epoch_gain": [_num(g) for g in [ctx.last_gain[label], *(g for _, g in ctx.seed_gains[label])]],
                "seeds_flattened": _all_flat([ctx.last_gain[label], *(g for _, g in ctx.seed_gains[label])]),
            }
        comps = {}
        for c in comparisons(ctx):
            d = c.diff
            comps[c.key] = {"topic": c.topic, "a": c.name_a, "b": c.name_b,
                            "difference": _num(d.difference) if d else None, "ci_low": _num(d.low) if d else None,
                            "ci_high": _num(d.high) if d else None, "resolved": c.resolved,
                            "seeds_a": d.n_seeds_a if d else None, "seeds_b": d.n_seeds_b if d else None,
                            "seeds_agree": d.seeds_agree if d else None,
                            # a single run's difference is to the other side's run of this seed (not pooled)
                            "matched_seed": d.matched_seed if d else None,
                            "seed_spread_a": d.spread_a if d and d.n_seeds_a > 1 else None,
                            "seed_spread_b": d.spread_b if d and d.n_seeds_b > 1 else None, "verdict": c.sentence()}
        return {"profile": ctx.profile, "metric": "mIoU on the validation split at full resolution (official protocol)",
                "level": 0.95, "interval": "expanded percentile bootstrap over validation images (paired for comparisons)",
                "n_boot": ctx.n_boot, "synthetic": ctx.synthetic, "models": models,
                "comparisons": comps}

    return _memo(ctx, ("headline",), make)


def _all_flat(gains: list[float]) -> bool | None:
    """Whether every run's last epoch lowered its validation loss by at most :data:`FLAT_GAIN`
    (None when no run has two epochs)."""
    known = [g for g in gains if not math.isnan(g)]
    return all(g <= FLAT_GAIN for g in known) if known else None


def headline_path(profile: str) -> Path:
    from cityseg_lib.paths import reports_dir

    return reports_dir() / profile / "headline.json"


def write_headline(ctx: ReportContext) -> Path:
    """Write :func:`headline` to ``reports/PROFILE/headline.json``."""
    from cityseg_lib.files import atomic_write_json

    path = headline_path(ctx.profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, headline(ctx))
    return path


def points(x: float | None) -> float:
    """A fraction from :func:`headline` in percent (points), one decimal, never -0.0; NaN for None.
    A non-zero value that would round to 0.0 keeps decimals to its first significant digit (0.04;
    :func:`fixed_point`), so an interval that excludes zero never shows a bound of 0.0."""
    if x is None:
        return math.nan
    return float(fixed_point(100 * x)) + 0.0  # + 0.0: -0.0 becomes 0.0


def differences_table(ctx: ReportContext) -> pd.DataFrame:
    """Every comparison: difference, 95% interval, seeds ("1 vs 3": a single run, its difference taken
    against the other side's run of its own seed, ``matched_seed``), and whether it is a finding."""
    rows = []
    for c in headline(ctx)["comparisons"].values():
        seeds = f"{c['seeds_a']} vs {c['seeds_b']}" if c["seeds_a"] else "–"
        rows.append({"comparison": f"{c['a']} − {c['b']}", "difference (points)": points(c["difference"]),
                     "95% CI low": points(c["ci_low"]), "95% CI high": points(c["ci_high"]), "seeds": seeds,
                     "finding": "yes" if c["resolved"] else "unresolved"})
    return pd.DataFrame(rows)
