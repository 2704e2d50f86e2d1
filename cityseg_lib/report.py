"""The written report's tables and text, computed from the artifacts of one profile's runs.

``load_context(profile)`` gathers what the notebooks wrote (``reports/PROFILE/results/*.json``
and the run folders they name); every other function turns that into a table (a DataFrame), a
figure with its caption, or Markdown prose. Statements that compare numbers (rankings, "better
than", "within the seed spread") are computed here, so when the numbers change the text changes.

Numbering: Figures 1, 5 and 6 and Tables 1 and 2 keep the numbers of the reference report (sample
masks, loss comparison, scheduler comparison, sweep grid, sweep winners); the report notebook
passes every number explicitly.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import plots, study
from .labels import CLASS_NAMES

__all__ = [
    "MODEL_LABELS",
    "LOSS_LABELS",
    "ReportContext",
    "load_context",
    "pct",
    "table_html",
    "figure_caption",
    "show",
    "majority_baseline",
    "runs_frame",
    "split_table",
    "model_table",
    "results_table",
    "per_class_table",
    "augmentation_table",
    "loss_table",
    "loss_summary",
    "scheduler_table",
    "early_stopping_table",
    "dropout_table",
    "table1",
    "rung_plan_table",
    "table2",
    "best_model",
    "conclusions",
    "provenance_table",
    "timings_table",
]

MODEL_LABELS = {"simple_fcn": "SimpleFCN", "unet": "U-Net", "swin2_jnet": "Swin2-JNet"}
LOSS_LABELS = {"cross_entropy": "cross-entropy", "iou": "IoU (soft Jaccard)", "jaccard": "IoU (soft Jaccard)",
               "dice": "Dice"}
AUGMENT_LABELS = {"none": "none (original images)", "replace": "replace (transformed instead)",
                  "augment": "augment (originals + transformed)"}


# ----------------------------------------------------------------------------- formatting


def pct(x: float | None, digits: int = 1) -> str:
    """``0.4567`` -> ``"45.7%"``; NaN/None -> ``"n/a"``."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{100 * x:.{digits}f}%"


def _pts(x: float, digits: int = 1) -> str:
    """A difference of two fractions in percentage points."""
    return f"{100 * abs(x):.{digits}f} points"


def _signed_pts(x: float, digits: int = 1) -> str:
    """A signed difference of two fractions in points: ``+1.2 points``, ``−0.4 points``, ``0.0 points``."""
    v = round(100 * x, digits)
    sign = "+" if v > 0 else "−" if v < 0 else ""
    return f"{sign}{abs(v):.{digits}f} points"


def _count(n: float) -> str:
    """Parameter counts: ``1.23 M``, ``45.6 k``."""
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k"


def _flops(f: float) -> str:
    return f"{f / 1e9:.2f} GFLOPs" if f >= 1e8 else f"{f / 1e6:.1f} MFLOPs"


def _num(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _size(hw: Sequence[int]) -> str:
    return f"{hw[0]}x{hw[1]} (HxW)"


def _column_format(values: pd.Series, name: str):
    """One number format per column, so its decimals line up: whole numbers without decimals,
    percentages and values of 10 or more with one, smaller values (losses, sizes) with two;
    tiny non-zero values (learning rates) in 3 significant digits."""
    finite = values.dropna()
    if not finite.empty and (finite == finite.round()).all():
        digits = 0
    elif "%" in name or "points" in name or (not finite.empty and finite.abs().max() >= 10):
        digits = 1
    else:
        digits = 2

    def fmt(v: float) -> str:
        if v != v:  # NaN
            return "–"
        return f"{v:.3g}" if 0 < abs(v) < 1e-2 else f"{v:,.{digits}f}"

    return fmt


def table_html(df: pd.DataFrame, number: int | str, caption: str, index: bool = False,
               align: str = "right") -> "HTML":  # noqa: F821
    """A DataFrame as an HTML table with a numbered caption (NaN shown as a dash)."""
    from IPython.display import HTML

    classes = "dataframe report-table" + (" left" if align == "left" else "")
    formatters = {col: _column_format(df[col], str(col)) for col in df.columns
                  if pd.api.types.is_float_dtype(df[col])}
    body = df.to_html(index=index, escape=True, na_rep="–", border=0, classes=classes, formatters=formatters)
    cap = f"<caption><b>Table {html.escape(str(number))}:</b> {html.escape(caption)}</caption>"
    body = body.replace(">", ">" + cap, 1)
    return HTML(body)


def figure_caption(number: int | str, text: str) -> "HTML":  # noqa: F821
    from IPython.display import HTML

    return HTML(f'<p class="figcaption"><b>Figure {html.escape(str(number))}:</b> {html.escape(text)}</p>')


def show(*items: Any) -> None:
    """Display figures, tables, captions and Markdown strings in order (strings are Markdown)."""
    from IPython.display import Markdown, display

    for item in items:
        if item is None:
            continue
        if isinstance(item, (list, tuple)):
            show(*item)
        elif isinstance(item, str):
            display(Markdown(item))
        else:
            display(item)


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


# ----------------------------------------------------------------------------- context


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
        runs[_tuned_label(model)] = run
    return runs


def load_context(profile: str) -> ReportContext:
    """Read ``reports/PROFILE/results/`` and the runs it names; an error names what is missing."""
    from .config import environment_info

    results = study.collect_results(profile)
    root = Path(results["01"]["data_root"])
    main = {label: study.run_record(run, label) for label, run in _main_runs(results).items()}
    env = environment_info()
    if env.get("commit") in (None, "unknown"):
        env["commit"] = study.source_commit()
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


def _val_class_pixels(ctx: ReportContext) -> dict:
    stats = ctx.results["01"].get("class_stats", {})
    return (stats.get("val_fine") or stats.get("fine") or {}).get("pixels", {})


# ----------------------------------------------------------------------------- title, introduction


def title_block(ctx: ReportContext) -> str:
    data = "synthetic demo data (procedurally drawn street scenes, not Cityscapes)" if ctx.synthetic \
        else f"Cityscapes at `{ctx.data_root}`"
    lines = [
        "# Semantic segmentation of street scenes: SimpleFCN, U-Net and Swin2-JNet",
        f"**Profile:** `{ctx.profile}` &nbsp;·&nbsp; **Data:** {data} &nbsp;·&nbsp; **Device:** "
        f"{_devices(ctx)} &nbsp;·&nbsp; **Built:** {ctx.built}",
    ]
    if ctx.synthetic:
        lines.append(
            '<div class="banner"><b>Synthetic data.</b> Every number in this report was measured on the '
            "generated demo dataset, with the small models and short schedules of the "
            f"<code>{ctx.profile}</code> profile. It shows that the whole study runs and that the models learn; "
            "it says nothing about accuracy on the real Cityscapes (the <code>full</code> profile measures that).</div>"
        )
    return "\n\n".join(lines)


def _devices(ctx: ReportContext) -> str:
    devices = sorted({str(r.get("device")) for r in ctx.main.values()})
    if devices == ["cpu"]:
        return f"CPU ({ctx.env.get('cpu_count')} cores)"
    return ", ".join(devices) + (f" ({ctx.env.get('device')})" if ctx.env.get("device") else "")


def _all_runs(ctx: ReportContext) -> list[str]:
    runs: list[str] = []

    def walk(v):
        if isinstance(v, str) and v and (study.run_path(v) / "summary.json").is_file():
            runs.append(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    for nb in ("02", "03", "04", "05", "06"):
        walk(ctx.results[nb].get("runs", {}))
        walk(ctx.results[nb].get("tuned_runs", {}))
    return sorted(set(runs))


def introduction(ctx: ReportContext) -> str:
    runs = _all_runs(ctx)
    seconds = sum(study.load_summary(r).get("train_time_s") or 0 for r in runs)
    trials = sum(int(s.get("trials", 0)) for s in ctx.results["06"].get("sweeps", {}).values())
    size = ctx.main["SimpleFCN"]["image_size"]
    return (
        f"This build of the study is the `{ctx.profile}` profile. It trained {len(runs)} complete runs "
        f"(plus {trials} shorter sweep trials) for {seconds / 60:.1f} minutes of training in total, at an input size of "
        f"{_size(size)}, and every figure and table below is computed from the files those runs wrote. "
        "Sections 2 to 4 follow the reference study's structure (data, architectures, training method); "
        "Section 5 fills in the results the reference left empty, and Sections 6 and 7 draw conclusions "
        "from them. The provenance block at the end records the code version, packages, hardware and the "
        "time each notebook took."
    )


# ----------------------------------------------------------------------------- dataset


def split_table(ctx: ReportContext) -> pd.DataFrame:
    r = ctx.results["01"]
    rows = []
    for split, info in r["splits"].items():
        coarse = r.get("coarse_counts", {}).get(split)
        rows.append({"split": split, "images": info["images"], "cities": len(info["cities"]),
                     "coarse labels": coarse if coarse is not None else "–"})
    return pd.DataFrame(rows)


def dataset_text(ctx: ReportContext) -> str:
    r = ctx.results["01"]
    fine = r["class_stats"]["fine"]
    pixels = fine["pixels"]
    total = sum(pixels.values()) or 1
    shares = sorted(((v / total, k) for k, v in pixels.items() if v > 0), reverse=True)
    absent = [k for k, v in pixels.items() if v == 0]
    top3 = _join([f"{k} ({pct(s)})" for s, k in shares[:3]])
    rare = _join([f"{k} ({pct(s, 2)})" for s, k in shares[-3:]])
    per_image = np.asarray(fine["classes_per_image"])
    frames = sum(info["images"] for info in r["splits"].values())
    sizes = _join(list(r["image_sizes"]))
    text = [
        f"The dataset of this build lives at `{ctx.data_root}`"
        + (", and it is **synthetic**: frames drawn by `cityseg make-demo-data` in the official folder layout and "
           "label encoding, with made-up city names." if ctx.synthetic else ".")
        + f" Its {frames} frames are {sizes} pixels (width x height); Table 3 counts them per split.",
        f"In the fine training labels the three most frequent classes cover {top3} of the labelled pixels, "
        f"while the rarest present classes are {rare}"
        + (f"; {_join(absent)} never occur{'s' if len(absent) == 1 else ''}" if absent else "")
        + f". A training frame holds {per_image.mean():.1f} classes on average (between {per_image.min()} and "
          f"{per_image.max()}). This imbalance matters twice: a model can reach a high pixel accuracy by getting "
          "only the large classes right, which is why the study reports the class-averaged IoU, and the rare, "
          "thin classes are the first to suffer from down-scaled inputs.",
    ]
    coarse = r["class_stats"].get("coarse")
    if coarse:
        c_total = sum(coarse["pixels"].values())
        f_lab = fine.get("labelled_share")
        c_lab = coarse.get("labelled_share")
        if f_lab is not None and c_lab is not None:
            text.append(
                f"The coarse annotations label {pct(c_lab)} of the pixels of their frames, against {pct(f_lab)} for the "
                "fine ones: coarse polygons leave object borders unlabelled (Figure 1a), which makes them cheap to draw "
                "and useful as extra weak supervision, but not a substitute for fine labels at evaluation time."
            )
        elif c_total:
            text.append("The coarse polygons leave object borders unlabelled (Figure 1a).")
    name, base = majority_baseline(_val_class_pixels(ctx) or pixels)
    text.append(
        f"As a floor for the results: predicting the most frequent class ({name}) everywhere would score "
        f"a mIoU of {pct(base)} on the validation split."
    )
    return "\n\n".join(text)


def fig_samples(ctx: ReportContext, number: int = 1, n: int = 2) -> tuple:
    frames = study.load_frames(ctx.data_root, "train", n, width=640)
    has_coarse = any(f["coarse"] is not None for f in frames)
    cap = ("Training frames with (a) the coarse and (b) the fine annotation overlaid in the official class "
           "colours; unlabelled pixels show the plain image." if has_coarse else
           "Training frames with the fine annotation overlaid (this dataset has no coarse labels).")
    return plots.sample_grid(frames), figure_caption(number, cap)


def fig_class_frequency(ctx: ReportContext, number: int = 2) -> tuple:
    stats = ctx.results["01"]["class_stats"]
    data = {"fine": stats["fine"]["pixels"]}
    if stats.get("coarse"):
        data["coarse"] = stats["coarse"]["pixels"]
    note = f" (labels read every {stats['fine']['stride']}th pixel)" if stats["fine"].get("stride", 1) > 1 else ""
    return plots.class_frequency_bars(data), figure_caption(
        number, f"Share of the labelled pixels of the {stats['fine']['images']} training frames per class, fine "
        f"(class colours) and coarse (hatched) annotations, log scale{note}.")


def fig_cooccurrence(ctx: ReportContext, number: int = 3) -> tuple:
    fine = ctx.results["01"]["class_stats"]["fine"]
    return plots.class_cooccurrence(np.asarray(fine["cooccurrence"]), fine["classes_per_image"]), figure_caption(
        number, "Left: percentage of training frames that contain both classes (diagonal: frames containing the "
        "class). Right: number of classes per frame.")


# ----------------------------------------------------------------------------- architectures


def _options(rec: dict) -> str:
    cfg = study.load_run_config(rec["run"])
    opts = dict(cfg.model_options)
    opts.pop("img_size", None)
    if "encoder_kwargs" in opts and isinstance(opts["encoder_kwargs"], dict):
        opts["encoder_kwargs"] = ", ".join(f"{k}={v}" for k, v in opts["encoder_kwargs"].items())
    return "; ".join(f"{k}={v}" for k, v in opts.items()) or "defaults"


def architecture_text(ctx: ReportContext) -> dict[str, str]:
    """The computed part of each model's description (its widths in this profile)."""
    out = {}
    for label in ctx.untuned:
        rec = ctx.main[label]
        st = ctx.stats(label)
        out[label] = (f"In this profile: `{_options(rec)}`, {_count(st['params'])} parameters and "
                      f"{_flops(st['flops'])} per {_size(st['input_size'])} image.")
    swin = study.load_run_config(ctx.main["Swin2-JNet"]["run"]).model_options
    enc = swin.get("encoder", "swinv2_base_window12to24_192to384")
    if swin.get("weights"):
        source = f"pretrained weights from the local file `{Path(swin['weights']).name}`"
    elif swin.get("pretrained", True):
        source = "pretrained ImageNet weights from timm"
    else:
        source = "random initial weights (no pretrained checkpoint in this profile)"
    out["Swin2-JNet"] += f" The encoder is timm's `{enc}` with {source}."
    return out


def model_table(ctx: ReportContext) -> pd.DataFrame:
    rows = []
    for label in ctx.untuned:
        rec, st = ctx.main[label], ctx.stats(label)
        rows.append({
            "model": label,
            "epochs": rec["epochs_run"],
            "parameters (M)": round(st["params"] / 1e6, 3),
            f"GFLOPs / image ({st['input_size'][0]}x{st['input_size'][1]})": round(st["flops"] / 1e9, 3),
            "train images/s": round(rec["train_images_per_s"] or math.nan, 1),
            "peak memory (MB)": round(rec["peak_memory_mb"] or math.nan),
            "training time (s)": round(rec["train_time_s"] or math.nan),
        })
    return pd.DataFrame(rows)


def model_table_note(ctx: ReportContext) -> str:
    dev = _devices(ctx)
    cpu = dev.startswith("CPU")
    mem = ("Peak memory on the CPU is the process's maximum resident set size, which includes the Python "
           "interpreter, the data cache and earlier runs of the same notebook; it is an upper bound, not the "
           "model's own footprint." if cpu else "Peak memory is the largest CUDA allocation during training.")
    threads = ctx.results["02"].get("cpu_threads")
    on = f"{dev}, {threads} torch thread{'s' if threads != 1 else ''}" if cpu and threads else dev
    return (f"Throughput is the median over epochs of training images per second on {on} (forward, backward "
            f"and optimiser step at batch size {study.load_run_config(ctx.main['SimpleFCN']['run']).batch_size}). "
            + mem)


def fig_learning_curves(ctx: ReportContext, number: int = 4) -> tuple:
    metrics = {label: study.load_metrics(ctx.main[label]["run"]) for label in ctx.untuned}
    best = {label: ctx.main[label]["best_epoch"] for label in ctx.untuned}
    return plots.learning_curves(metrics, best), figure_caption(
        number, "Training (dashed) and validation (solid) loss, and validation mIoU at the training size, per epoch, "
        "of the three architectures; the star marks the epoch of the lowest validation loss, whose weights are kept.")


# ----------------------------------------------------------------------------- training methodology


def augmentation_table(ctx: ReportContext) -> pd.DataFrame:
    rows = []
    for mode, run in ctx.results["03"]["augment_runs"].items():
        rec = study.run_record(run)
        rows.append({"augmentation": AUGMENT_LABELS.get(mode, mode), "train images / epoch": rec["train_images"],
                     "best val loss": round(rec["best_val_loss"], 4), "best epoch": rec["best_epoch"],
                     "val mIoU (%)": round(100 * rec["miou"], 1),
                     "val mIoU full res (%)": round(100 * rec["miou_full_res"], 1)})
    return pd.DataFrame(rows)


def augmentation_text(ctx: ReportContext) -> str:
    recs = {m: study.run_record(r) for m, r in ctx.results["03"]["augment_runs"].items()}
    key = "miou_full_res" if all(not math.isnan(r["miou_full_res"]) for r in recs.values()) else "miou"
    ranked = sorted(recs, key=lambda m: recs[m][key], reverse=True)
    best, none = ranked[0], recs.get("none")
    cfg = study.load_run_config(next(iter(ctx.results["03"]["augment_runs"].values())))
    parts = [
        f"Every image is resized to {_size(cfg.image_size)} before training (bilinear for the image, nearest "
        "neighbour for the mask), and the loss is computed at that size. For the full-resolution scores the "
        "logits are up-sampled to the label's own size before the arg-max, as the official protocol requires.",
        f"The augmentation experiment trains the U-Net three times with the same settings: without augmentation, "
        f"with each training image replaced by a randomly flipped (p = {cfg.hflip_p}) and cropped (area "
        f"{cfg.crop_scale[0]:.0%} to {cfg.crop_scale[1]:.0%}, resized back) copy, and with the transformed copies "
        "added to the originals (twice the images per epoch). Table 5 lists the outcome.",
    ]
    order = " > ".join(f"{m} ({pct(recs[m][key])})" for m in ranked)
    verdict = (f"Training without augmentation did best ({order}), as in the reference study, where the "
               "transforms only made validation worse." if best == "none" else
               f"Here `{best}` did best ({order}), {_pts(recs[best][key] - none[key])} above no augmentation"
               " — unlike the reference study, which found augmentation unhelpful on the full dataset"
               + (" (with this little data and so few epochs, variety seems to matter more)." if ctx.synthetic else ".")
               if none else f"Ranking: {order}.")
    parts.append(verdict + " The main models are trained without augmentation, as in the reference.")
    return "\n\n".join(parts)


def loss_summary(ctx: ReportContext) -> dict[str, dict]:
    """Per loss: the seeds' best-checkpoint val mIoU (training size and full res) and spread."""
    out = {}
    for loss, runs in ctx.results["05"]["runs"].items():
        recs = [study.run_record(r) for r in runs]
        m = np.array([r["miou"] for r in recs])
        f = np.array([r["miou_full_res"] for r in recs])
        last = np.array([study.load_metrics(r["run"])["val_miou"].iloc[-1] for r in recs])
        out[loss] = {"seeds": [r["seed"] for r in recs], "miou": m.tolist(), "mean": float(m.mean()),
                     "std": float(m.std(ddof=1)) if len(m) > 1 else 0.0, "min": float(m.min()), "max": float(m.max()),
                     "full_res_mean": float(np.nanmean(f)) if np.isfinite(f).any() else math.nan,
                     "last_epoch_mean": float(last.mean())}
    return out


def loss_table(ctx: ReportContext) -> pd.DataFrame:
    rows = []
    for loss, s in loss_summary(ctx).items():
        rows.append({"training loss": LOSS_LABELS.get(loss, loss), "seeds": len(s["seeds"]),
                     "val mIoU mean (%)": round(100 * s["mean"], 1), "std (points)": round(100 * s["std"], 1),
                     "min (%)": round(100 * s["min"], 1), "max (%)": round(100 * s["max"], 1),
                     "full res mean (%)": round(100 * s["full_res_mean"], 1),
                     "last-epoch mean (%)": round(100 * s["last_epoch_mean"], 1)})
    return pd.DataFrame(rows)


def loss_verdict(ctx: ReportContext) -> tuple[str, str, bool]:
    """(best loss, runner-up, whether the gap exceeds both seed ranges' overlap)."""
    s = loss_summary(ctx)
    ranked = sorted(s, key=lambda k: s[k]["mean"], reverse=True)
    if len(ranked) < 2:
        return ranked[0], ranked[0], False
    a, b = ranked[0], ranked[1]
    separated = s[a]["min"] > s[b]["max"]  # every seed of the best beats every seed of the runner-up
    return a, b, separated


def loss_text(ctx: ReportContext) -> str:
    s = loss_summary(ctx)
    seeds = len(next(iter(s.values()))["seeds"])
    ranked = sorted(s, key=lambda k: s[k]["mean"], reverse=True)
    a, b, separated = loss_verdict(ctx)
    order = " > ".join(f"{LOSS_LABELS.get(k, k)} ({pct(s[k]['mean'])} ± {100 * s[k]['std']:.1f})" for k in ranked)
    cfg = study.load_run_config(ctx.results["05"]["runs"][a][0])
    parts = [
        "Three training losses were compared on the U-Net: pixel-wise cross-entropy (every labelled pixel weighs "
        "the same), a soft IoU (Jaccard) loss that optimises a differentiable version of the metric, and the Dice "
        "loss, which averages a per-class overlap score and so gives rare classes as much weight as common ones. "
        "All three ignore the void label.",
        f"Each loss was trained with {seeds} seeds ({_join([str(x) for x in s[a]['seeds']])}; {cfg.epochs} epochs, "
        f"{_size(cfg.image_size)}), so that a difference can be compared with the spread between seeds. "
        f"Ranked by mean validation mIoU of the kept checkpoint: {order} (mean ± standard deviation over seeds, "
        "training size).",
    ]
    gap = s[a]["mean"] - s[b]["mean"]
    if round(100 * gap, 1) == 0:
        parts.append(f"{LOSS_LABELS.get(a, a).capitalize()} and {LOSS_LABELS.get(b, b)} tie at this precision, so these "
                     "runs do not separate them.")
    elif separated:
        parts.append(
            f"{LOSS_LABELS.get(a, a).capitalize()} is ahead of {LOSS_LABELS.get(b, b)} by {_pts(gap)}, and its worst seed "
            f"({pct(s[a]['min'])}) beats the best seed of {LOSS_LABELS.get(b, b)} ({pct(s[b]['max'])}): the ranking is "
            "not one run's luck."
        )
    else:
        parts.append(
            f"{LOSS_LABELS.get(a, a).capitalize()} leads {LOSS_LABELS.get(b, b)} by only {_pts(gap)}, and their seed ranges "
            f"overlap ({pct(s[a]['min'])}–{pct(s[a]['max'])} against {pct(s[b]['min'])}–{pct(s[b]['max'])}), so these "
            "runs do not separate the two."
        )
    ref = ("This agrees with the reference study, where cross-entropy also beat both overlap losses."
           if a == "cross_entropy" else
           "The reference study found cross-entropy best; here it is not, "
           + ("and the gap is outside the seed spread." if separated else "but the gap is within the seed spread."))
    parts.append(ref)
    return "\n\n".join(parts)


def fig_loss_comparison(ctx: ReportContext, number: int = 5) -> tuple:
    curves = {LOSS_LABELS.get(loss, loss): [study.load_metrics(r) for r in runs]
              for loss, runs in ctx.results["05"]["runs"].items()}
    seeds = len(next(iter(ctx.results["05"]["runs"].values())))
    return plots.loss_comparison(curves), figure_caption(
        number, f"Validation mIoU (training size) per epoch of the U-Net trained with each loss: bold line the mean "
        f"of {seeds} seeds, thin lines the single seeds, band their minimum to maximum.")


def _scheduler_runs(ctx: ReportContext) -> dict[str, dict]:
    r3 = ctx.results["03"]["runs"]
    return {"StepLR": study.run_record(r3["unet"]), "constant": study.run_record(r3["unet_constant_lr"])}


def scheduler_table(ctx: ReportContext) -> pd.DataFrame:
    rows = []
    for label, rec in _scheduler_runs(ctx).items():
        m = study.load_metrics(rec["run"])
        rows.append({"learning rate": f"{label} (γ = {rec['gamma']:g}" + (f", every {rec['step_size']} epochs)"
                                                                            if label == "StepLR" else ")"),
                     "lowest val loss": round(m["val_loss"].min(), 4), "at epoch": int(m.loc[m["val_loss"].idxmin(), "epoch"]),
                     "final val loss": round(m["val_loss"].iloc[-1], 4), "final train loss": round(m["train_loss"].iloc[-1], 4),
                     "val mIoU (%)": round(100 * rec["miou"], 1)})
    return pd.DataFrame(rows)


def scheduler_text(ctx: ReportContext) -> str:
    runs = _scheduler_runs(ctx)
    step, const = runs["StepLR"], runs["constant"]
    ms, mc = study.load_metrics(step["run"]), study.load_metrics(const["run"])
    cfg = study.load_run_config(step["run"])
    parts = [
        f"All models use AdamW (initial learning rate {cfg.lr:g}, decoupled weight decay {cfg.weight_decay:g}). "
        f"The learning rate is multiplied by γ = {cfg.gamma:g} every {cfg.step_size} epochs (StepLR)"
        + (f"; the reference decays every 10 epochs of 20-epoch runs, and with only {cfg.epochs} epochs this "
           f"profile scales the step down to {cfg.step_size} so the decay happens at all." if cfg.step_size < 10 else ".")
        + " Figure 6 compares this schedule with a constant learning rate (γ = 1), everything else equal.",
    ]
    lows = {"the step schedule": ms["val_loss"].min(), "the constant learning rate": mc["val_loss"].min()}
    (win, lo), (lose, hi) = sorted(lows.items(), key=lambda kv: kv[1])
    parts.append(f"{win[0].upper() + win[1:]} reached the lower validation loss: {lo:.4f} against {hi:.4f} for "
                 f"{lose}, a difference of {hi - lo:.4f}.")
    rising = []
    for label, m in (("StepLR", ms), ("constant", mc)):
        if m["val_loss"].iloc[-1] > m["val_loss"].min() * 1.01:
            rising.append(f"{label} (lowest at epoch {int(m.loc[m['val_loss'].idxmin(), 'epoch'])}, "
                          f"{m['val_loss'].iloc[-1]:.4f} at the end)")
    if rising:
        parts.append("Validation loss rose again after its minimum for " + _join(rising)
                     + ": the start of the over-fitting the scheduler is meant to slow down.")
    else:
        parts.append("Neither run's validation loss had turned upwards by the last epoch, so this schedule is too "
                     "short to show the over-fitting the reference observed after about 10 to 20 epochs; the "
                     "comparison here is about convergence speed only.")
    return "\n\n".join(parts)


def fig_scheduler(ctx: ReportContext, number: int = 6) -> tuple:
    runs = _scheduler_runs(ctx)
    step = runs["StepLR"]
    frames = {f"StepLR (γ={step['gamma']:g}/{step['step_size']} ep)": study.load_metrics(step["run"]),
              "constant LR": study.load_metrics(runs["constant"]["run"])}
    return plots.scheduler_comparison(frames), figure_caption(
        number, "Training (dashed) and validation (solid) cross-entropy of the U-Net with a step-decayed and a "
        "constant learning rate (lower panel); the star marks each run's lowest validation loss.")


def early_stopping_table(ctx: ReportContext) -> pd.DataFrame:
    rows = []
    for label, rec in ctx.main.items():
        m = study.load_metrics(rec["run"])
        best_row = m[m["epoch"] == rec["best_epoch"]]
        rows.append({"model": label, "epochs run": rec["epochs_run"], "best epoch": rec["best_epoch"],
                     "best val loss": round(rec["best_val_loss"], 4),
                     "val mIoU at best (%)": round(100 * float(best_row["val_miou"].iloc[0]), 1) if len(best_row) else math.nan,
                     "val mIoU at last (%)": round(100 * float(m["val_miou"].iloc[-1]), 1)})
    return pd.DataFrame(rows)


def early_stopping_text(ctx: ReportContext) -> str:
    early = [k for k, r in ctx.main.items() if r["best_epoch"] < r["epochs_run"]]
    base = ("Every run keeps the weights of the epoch with the lowest validation loss (`best.pt`), and all "
            "scores in this report are those of that checkpoint. ")
    if early:
        last = [k for k in ctx.main if k not in early]
        return base + (f"For {_join(early)} that epoch came before the last one, so the kept model differs from the "
                       f"final one (Table 8)" + (f"; for {_join(last)} the last epoch was the best." if last else "."))
    return base + ("In this build every model's best epoch was its last (Table 8): none had started to over-fit, "
                   "so early stopping changed nothing and longer training would probably still help.")


# ----------------------------------------------------------------------------- sweep


def _sweeps(ctx: ReportContext) -> dict[str, dict]:
    return ctx.results["06"].get("sweeps", {})


def table1(ctx: ReportContext) -> pd.DataFrame:
    """Table 1: the hyper-parameter grid of each sweep (one row per parameter)."""
    rows = []
    for model, sw in _sweeps(ctx).items():
        for param, options in sw.get("grid", {}).items():
            rows.append({"model": MODEL_LABELS.get(model, model), "hyper-parameter": _PARAM_LABELS.get(param, param),
                         "options": ", ".join(_fmt_value(param, v) for v in options)})
    return pd.DataFrame(rows)


_PARAM_LABELS = {"lr": "initial learning rate", "gamma": "learning-rate decay γ", "weight_decay": "L2 weight decay",
                 "dropout": "dropout", "model_options.dropout": "dropout", "step_size": "StepLR step (epochs)",
                 "batch_size": "batch size", "loss": "loss"}


def _fmt_value(param: str, v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = float(v)
        if param in ("lr", "weight_decay") and v > 0:
            mant, exp = f"{v:.0e}".split("e")
            return f"{mant}e{int(exp)}" if mant != "1" else f"1e{int(exp)}"
        if param == "gamma" and abs(v - math.sqrt(0.1)) < 1e-6:
            return "√0.1"
        return f"{v:g}"
    return str(v)


def rung_plan_table(ctx: ReportContext) -> pd.DataFrame:
    rows = []
    for model, sw in _sweeps(ctx).items():
        for rung in sw.get("plan", []):
            rows.append({"model": MODEL_LABELS.get(model, model), "rung": rung["rung"], "trials": rung["trials"],
                         "kept": rung["kept"], "train images": rung["train images"], "epochs": rung["epochs"],
                         "final": "yes" if rung["final"] else ""})
    return pd.DataFrame(rows)


def _tuned_label(model: str) -> str:
    return f"{MODEL_LABELS.get(model, model)} (tuned)"


def table2(ctx: ReportContext) -> pd.DataFrame:
    """Table 2: the winner of each sweep (its resolved LR, γ, L2, dropout) and validation losses."""
    rows = []
    for model, sw in _sweeps(ctx).items():
        t = sw["table2"]
        tuned = ctx.main.get(_tuned_label(model), {})
        rows.append({"model": MODEL_LABELS.get(model, model), "LR": _fmt_value("lr", t.get("lr")),
                     "γ": _fmt_value("gamma", t.get("gamma")), "L2": _fmt_value("weight_decay", t.get("weight_decay")),
                     "dropout": _fmt_value("dropout", t.get("dropout")),
                     "val loss (sweep)": round(float(t.get("val_loss", math.nan)), 4),
                     "val loss (tuned run)": round(tuned.get("best_val_loss", math.nan), 4)})
    return pd.DataFrame(rows)


def sweep_text(ctx: ReportContext) -> str:
    sweeps = _sweeps(ctx)
    if not sweeps:
        return "No sweep results were found."
    bodies: dict[str, list[str]] = {}  # identical descriptions (same grid and plan) are told once
    for model, sw in sweeps.items():
        plan = sw.get("plan", [])
        first, last = plan[0], plan[-1]
        full_grid = first["trials"] * sw["n_train"] * last["epochs"]
        body = (
            f"the grid has {first['trials']} combinations"
            + (" (a reduced grid: the reference's Table 1 has 36)" if first["trials"] < 36 else "")
            + f" and the sweep ran {sw['trials']} trials in "
            f"{len(plan)} rungs: the first trains every combination for {first['epochs']} epochs on "
            f"{first['train images']} of the {sw['n_train']} training images, and the last trains the final "
            f"{last['trials']} on all of them. That costs {sw['image_epochs']:,} image-epochs, "
            f"{100 * sw['image_epochs'] / max(full_grid, 1):.0f}% of training every combination on all the data"
            + (f"; {sw['failed']} trial{'s' if sw['failed'] != 1 else ''} failed." if sw.get("failed") else ".")
        )
        bodies.setdefault(body, []).append(MODEL_LABELS.get(model, model))
    parts = [f"For {_join(labels)}{' alike' if len(labels) > 1 else ''}, {body}" for body, labels in bodies.items()]
    text = " ".join(parts)
    text += (" Table 2 gives the winners. Their parameters are then applied to the main model of each architecture "
             "and trained with the main schedule on the whole training split: the tuned models of Section 5.")
    short = [MODEL_LABELS.get(m, m) for m, sw in sweeps.items()
             if _tuned_label(m) in ctx.main
             and sw["plan"][-1]["epochs"] < study.load_run_config(ctx.main[_tuned_label(m)]["run"]).epochs]
    if short:
        text += (f" The sweep's rungs are shorter than the main schedule for {_join(short)}, so the winner is the "
                 "best setting for a short run, which need not be the best for the long one.")
    return text


def fig_brackets(ctx: ReportContext, number: int = 7) -> tuple:
    sweeps = _sweeps(ctx)
    if not sweeps:
        return None, "*No sweep results were found for this profile.*"
    fig = plots.sweep_brackets({MODEL_LABELS.get(m, m): study.run_path(sw["dir"]) for m, sw in sweeps.items()})
    return fig, figure_caption(number, "Successive halving: best validation loss of every trial per rung (lower is "
                                       "better); a line ends where its candidate was dropped, the winner in red.")


# ----------------------------------------------------------------------------- results


def results_table(ctx: ReportContext) -> pd.DataFrame:
    size = ctx.main["SimpleFCN"]["image_size"]
    rows = []
    for label, rec in ctx.main.items():
        rows.append({"model": label,
                     f"val mIoU @{size[0]}x{size[1]} (%)": round(100 * rec["miou"], 1),
                     "val mIoU full res, official (%)": round(100 * rec["miou_full_res"], 1),
                     f"pixel accuracy @{size[0]}x{size[1]} (%)": round(100 * rec["pixel_accuracy"], 1),
                     "pixel accuracy full res (%)": round(100 * rec["pixel_accuracy_full_res"], 1),
                     "best epoch": rec["best_epoch"], "best val loss": round(rec["best_val_loss"], 4)})
    name, base = majority_baseline(_val_class_pixels(ctx))
    rows.append({"model": f"constant '{name}' (reference floor)", f"val mIoU @{size[0]}x{size[1]} (%)": round(100 * base, 1),
                 "val mIoU full res, official (%)": round(100 * base, 1)})
    return pd.DataFrame(rows)


def per_class_table(ctx: ReportContext, full_res: bool = True) -> pd.DataFrame:
    key = "val_full_res" if full_res else "val"
    data = {}
    for label, rec in ctx.main.items():
        s = study.load_summary(rec["run"])
        scores = s.get(key) or s["val"]
        data[label] = [round(100 * scores["class_iou"].get(n, math.nan), 1) for n in CLASS_NAMES]
    df = pd.DataFrame(data, index=list(CLASS_NAMES))
    df.index.name = "class"
    return df.reset_index()


def fig_per_class(ctx: ReportContext, number: int = 8) -> tuple:
    ious = {label: study.load_summary(rec["run"])["val"]["class_iou"] for label, rec in ctx.main.items()}
    return plots.per_class_iou_bars(ious), figure_caption(
        number, "Per-class IoU on the validation split at the training size (missing bar: the class never appears "
        "in the validation labels nor in the predictions).")


def best_model(ctx: ReportContext) -> str:
    key = "miou_full_res" if all(not math.isnan(r["miou_full_res"]) for r in ctx.main.values()) else "miou"
    return max(ctx.main, key=lambda k: ctx.main[k][key])


def fig_confusion(ctx: ReportContext, number: int = 9) -> tuple:
    from .metrics import normalized_confusion

    label = best_model(ctx)
    s = study.load_summary(ctx.main[label]["run"])
    mat = s.get("confusion_matrix_full_res") or s["confusion_matrix"]
    where = "at full resolution" if s.get("confusion_matrix_full_res") else "at the training size"
    return plots.confusion_heatmap(normalized_confusion(np.asarray(mat))), figure_caption(
        number, f"Row-normalised confusion matrix of the best model, {label}, on the validation split {where} "
        "(rows: ground truth; the diagonal is each class's recall; void predictions are not shown).")


def fig_qualitative(ctx: ReportContext, number: int = 10, n: int = 3) -> tuple:
    runs = {label: rec["run"] for label, rec in ctx.main.items()}
    frames = study.predict_frames(runs, ctx.data_root, n=n)
    return plots.qualitative_grid(frames["images"], frames["truth"], frames["predictions"], frames["ids"]), figure_caption(
        number, f"{len(frames['ids'])} validation frames (columns) at the training size: the image, the ground truth "
        "(ignored pixels black) and the prediction of each model (rows).")


def confusion_text(ctx: ReportContext) -> str:
    from .metrics import normalized_confusion

    label = best_model(ctx)
    s = study.load_summary(ctx.main[label]["run"])
    mat = np.asarray(s.get("confusion_matrix_full_res") or s["confusion_matrix"], dtype=float)
    norm = normalized_confusion(mat)
    off = norm.copy()
    np.fill_diagonal(off, np.nan)
    pairs = []
    flat = np.nan_to_num(off, nan=-1).ravel()
    for idx in np.argsort(flat)[::-1][:3]:
        t, p = divmod(int(idx), norm.shape[1])
        if flat[idx] > 0:
            pairs.append(f"{CLASS_NAMES[t]} taken for {CLASS_NAMES[p]} ({pct(flat[idx])} of its pixels)")
    recall = np.diag(norm)
    valid = ~np.isnan(recall)
    worst = [CLASS_NAMES[i] for i in np.argsort(np.where(valid, recall, np.inf))[:3] if valid[i]]
    return (f"The confusion matrix of the best model, {label} (Figure 9), shows where its errors go. The largest "
            f"confusions are {_join(pairs) or 'negligible'}; the classes it recovers least are {_join(worst)}. "
            "Confusions concentrate between classes that share colour and texture or that are thin, which the "
            "down-scaled input blurs into their surroundings.")


def dropout_table(ctx: ReportContext) -> pd.DataFrame:
    rows = []
    for label, run in ctx.results["04"]["runs"].items():
        rec = study.run_record(run)
        rows.append({"variant": ctx.results["04"].get("labels", {}).get(label, label),
                     "dropout": rec["dropout"], "best val loss": round(rec["best_val_loss"], 4),
                     "best epoch": rec["best_epoch"], "val mIoU (%)": round(100 * rec["miou"], 1),
                     "val mIoU full res (%)": round(100 * rec["miou_full_res"], 1)})
    return pd.DataFrame(rows)


def dropout_text(ctx: ReportContext) -> str:
    r4 = ctx.results["04"]
    runs = {k: study.run_record(v) for k, v in r4["runs"].items()}
    main = runs.get("swin2_jnet")
    nodrop = runs.get("swin2_jnet_no_dropout")
    parts = []
    if main and nodrop:
        d = main["miou"] - nodrop["miou"]
        loss_with, loss_without = main["best_val_loss"], nodrop["best_val_loss"]
        agree = (loss_with < loss_without) == (d > 0)
        parts.append(
            f"Swin2-JNet was trained with dropout {main['dropout']:g} in every decoder block and without it (Table 12). "
            f"Dropout changed the validation mIoU by {_signed_pts(d)} ({pct(main['miou'])} with, {pct(nodrop['miou'])} "
            f"without) and the lowest validation loss from {loss_without:.4f} to {loss_with:.4f}; "
            + ("both measures agree." if agree else "the two measures disagree, so the effect is within noise.")
        )
    if "swin2_jnet_no_batchnorm" in runs:
        nb = runs["swin2_jnet_no_batchnorm"]
        parts.append(f"Without BatchNorm the decoder reached {pct(nb['miou'])} val mIoU against {pct(main['miou'])} with it.")
    elif not r4.get("batchnorm_switch", False):
        parts.append("The model code has no switch to remove the decoder's BatchNorm, so only the dropout half of the "
                     "reference's regularisation claim is tested here; BatchNorm stays on in every run.")
    return "\n\n".join(parts)


# ----------------------------------------------------------------------------- conclusions


def _full_or_train(rec: dict) -> float:
    return rec["miou_full_res"] if not math.isnan(rec["miou_full_res"]) else rec["miou"]


def _not_learnt(ctx: ReportContext) -> list[str]:
    """Headline models that do not reach twice the constant-prediction mIoU."""
    _, floor = majority_baseline(_val_class_pixels(ctx))
    return [k for k, r in ctx.main.items() if _full_or_train(r) <= 2 * floor]


def conclusions(ctx: ReportContext) -> list[str]:
    """Statements derived from the measured numbers (the ranking and comparisons are computed)."""
    out = []
    recs = ctx.main
    ranked = sorted(recs, key=lambda k: _full_or_train(recs[k]), reverse=True)
    out.append("**Ranking.** By validation mIoU under the official full-resolution protocol: "
               + " > ".join(f"{k} ({pct(_full_or_train(recs[k]))})" for k in ranked) + ".")
    base = recs["SimpleFCN"]
    gains = {k: _full_or_train(recs[k]) - _full_or_train(base) for k in ctx.untuned if k != "SimpleFCN"}
    ahead = [k for k, g in gains.items() if g > 0]
    behind = [k for k, g in gains.items() if g <= 0]
    s = []
    if ahead:
        s.append(f"{_join(ahead)} beat{'s' if len(ahead) == 1 else ''} the SimpleFCN baseline by "
                 f"{_join([_pts(gains[k]) for k in ahead])}{' respectively' if len(ahead) > 1 else ''}")
    if behind:
        s.append(_join([f"{k} does not beat it ({_pts(gains[k])} behind)" for k in behind]))
    out.append("**Against the baseline.** " + "; ".join(s) + "."
               + (" The skip connections and the deeper encoders pay off, as the reference study argued." if not behind
                  else " The reference's expectation that both enhanced models clearly improve on the baseline does not "
                       "hold in this build."))
    _, floor = majority_baseline(_val_class_pixels(ctx))
    learnt = [k for k in recs if k not in _not_learnt(ctx)]
    missing = [k for k in recs if k not in learnt]
    out.append(f"**Learning.** {len(learnt)} of {len(recs)} models score more than twice the mIoU of predicting "
               f"the most frequent class everywhere ({pct(floor)})"
               + ("." if not missing else f"; {_join(missing)} {'does' if len(missing) == 1 else 'do'} not."))
    for t in ctx.tuned:
        plain = t.replace(" (tuned)", "")
        if plain in recs:
            d = _full_or_train(recs[t]) - _full_or_train(recs[plain])
            out.append(f"**Sweep, {plain}.** The sweep's parameters {'improved' if d > 0 else 'did not improve'} "
                       f"{plain}: {pct(_full_or_train(recs[t]))} tuned against {pct(_full_or_train(recs[plain]))} "
                       f"with the default settings ({_signed_pts(d)}).")
    a, b, separated = loss_verdict(ctx)
    ls = loss_summary(ctx)
    out.append(f"**Loss.** {LOSS_LABELS.get(a, a).capitalize()} gave the highest mean mIoU over "
               f"{len(ls[a]['seeds'])} seeds ({pct(ls[a]['mean'])}, next {LOSS_LABELS.get(b, b)} {pct(ls[b]['mean'])}); "
               + ("the seed ranges do not overlap, so the ordering is robust to the seed."
                  if separated else "the seed ranges overlap, so this ordering is not established by these runs."))
    runs = _scheduler_runs(ctx)
    ms, mc = (study.load_metrics(runs[k]["run"])["val_loss"].min() for k in ("StepLR", "constant"))
    out.append(f"**Scheduler.** {'StepLR' if ms < mc else 'A constant learning rate'} reached the lower validation "
               f"loss ({min(ms, mc):.4f} against {max(ms, mc):.4f}).")
    aug = {m: study.run_record(r) for m, r in ctx.results["03"]["augment_runs"].items()}
    best_aug = max(aug, key=lambda m: _full_or_train(aug[m]))
    out.append(f"**Augmentation.** The best augmentation mode was `{best_aug}` ({pct(_full_or_train(aug[best_aug]))}"
               + (f", against {pct(_full_or_train(aug['none']))} without)." if best_aug != "none" and "none" in aug else ")."))
    drops = {k: study.run_record(v) for k, v in ctx.results["04"]["runs"].items()}
    if "swin2_jnet" in drops and "swin2_jnet_no_dropout" in drops:
        d = drops["swin2_jnet"]["miou"] - drops["swin2_jnet_no_dropout"]["miou"]
        out.append(f"**Dropout.** Swin2-JNet with dropout {drops['swin2_jnet']['dropout']:g} scored "
                   f"{'higher' if d > 0 else 'lower'} than without ({_pts(d)} at the training size).")
    if "swin2_jnet" in drops and "swin2_jnet_no_batchnorm" in drops:
        d = drops["swin2_jnet"]["miou"] - drops["swin2_jnet_no_batchnorm"]["miou"]
        out.append(f"**BatchNorm.** Swin2-JNet with BatchNorm in its decoder scored {'higher' if d > 0 else 'lower'} "
                   f"than without ({pct(drops['swin2_jnet']['miou'])} against {pct(drops['swin2_jnet_no_batchnorm']['miou'])}"
                   " at the training size, one run each).")
    diffs = [r["miou_full_res"] - r["miou"] for r in recs.values() if not math.isnan(r["miou_full_res"])]
    if diffs:
        mean = float(np.mean(diffs))
        spread = (f"by less than 0.05 points for every model" if max(abs(d) for d in diffs) < 5e-4 else
                  f"by {_signed_pts(mean)} on average (from {_signed_pts(min(diffs))} to {_signed_pts(max(diffs))})")
        out.append(f"**Resolution.** Scoring at the labels' full resolution instead of the training size changes mIoU "
                   f"{spread}: up-sampled logits "
                   + ("recover the label detail well." if abs(mean) < 0.01 else
                      "cannot restore detail lost by down-scaling." if mean < 0 else
                      "are smoother than the nearest-neighbour down-scaled training masks."))
    fastest = max(ctx.untuned, key=lambda k: recs[k]["train_images_per_s"] or 0)
    slowest = min(ctx.untuned, key=lambda k: recs[k]["train_images_per_s"] or 0)
    fast, slow = recs[fastest]["train_images_per_s"], recs[slowest]["train_images_per_s"]
    ratio = fast / max(slow, 1e-9)
    speeds = ", ".join(f"{k} {recs[k]['train_images_per_s']:.1f}" for k in ctx.untuned)
    out.append("**Cost.** " + (f"{fastest} trains {ratio:.1f}x faster than {slowest}" if ratio >= 1.2 else
                               "The three architectures train at about the same speed")
               + f" ({speeds} images/s on {_devices(ctx)}); parameters and FLOPs per image are in Table 4.")
    return out


def reflections(ctx: ReportContext) -> str:
    recs = ctx.main
    parts = []
    if ctx.synthetic:
        parts.append(
            "**What these numbers can and cannot say.** The data is synthetic and the budget tiny (a couple of CPU "
            "cores, minutes per model), so the absolute scores are far below what the same code reaches on Cityscapes "
            "and the ranking may not transfer: a pretrained Swin V2 encoder in particular is run here from random "
            "weights at a fraction of its size, removing the transfer-learning advantage the reference relied on. "
            "What the build does establish is that every stage (data checks, training, early stopping, the sweep, "
            "full-resolution evaluation, this report) works end to end"
            + (" and that every model learns: each scores at least twice the constant-prediction floor."
               if not _not_learnt(ctx) else
               f"; {_join(_not_learnt(ctx))} did not get past twice the constant-prediction floor with this budget.")
        )
    ls = loss_summary(ctx)
    spread = max(s["max"] - s["min"] for s in ls.values())
    parts.append(
        f"**Seeds.** The same configuration trained with different seeds varied by up to {_pts(spread)} of mIoU in the "
        "loss comparison. Single-run differences of that size elsewhere in this report (augmentation, dropout, "
        "scheduler) are therefore suggestive at best; only the loss comparison was repeated."
    )
    not_converged = [k for k, r in recs.items() if r["best_epoch"] == r["epochs_run"]]
    if not_converged:
        parts.append(
            f"**Training length.** {_join(not_converged)} still improved in {'its' if len(not_converged) == 1 else 'their'} "
            f"last epoch, so {'its score is' if len(not_converged) == 1 else 'their scores are'} limited by the schedule "
            "rather than by the architecture; comparisons between models trained this briefly favour the ones that "
            "converge fastest."
        )
    sweeps = _sweeps(ctx)
    if sweeps:
        held, failed = [], []
        for model in sweeps:
            t, plain = _tuned_label(model), MODEL_LABELS.get(model, model)
            if t in recs and plain in recs:
                d = _full_or_train(recs[t]) - _full_or_train(recs[plain])
                (held if d > 0 else failed).append(f"{plain} ({_signed_pts(d)})")
        verdict = []
        if held:
            verdict.append(f"it held up for {_join(held)}")
        if failed:
            verdict.append(f"not for {_join(failed)}")
        parts.append(
            "**Sweep.** Successive halving judges candidates on short, small-data rungs, which favours settings that "
            "learn fast early over ones that win late. Trained with the main schedule, the winners' settings were "
            "compared with the defaults: " + ("; ".join(verdict) or "no tuned model was trained") + "."
        )
    parts.append(
        "**Next steps.** Repeat the architecture comparison over seeds as was done for the losses; report a confidence "
        "interval for every headline number; and on real data, evaluate the coarse labels as extra training data, "
        "which the reference left unexplored."
    )
    return "\n\n".join(parts)


# ----------------------------------------------------------------------------- provenance


def provenance_table(ctx: ReportContext) -> pd.DataFrame:
    env = ctx.env
    r1 = ctx.results["01"]
    if ctx.synthetic:
        gen = r1.get("generator", {})
        data = (f"SYNTHETIC demo data (cityseg make-demo-data, {gen.get('train', '?')} train / {gen.get('val', '?')} val "
                f"frames at {'x'.join(str(v) for v in gen.get('size', []))}, seed {gen.get('seed', '?')}) at {ctx.data_root}")
    else:
        data = f"Cityscapes at {ctx.data_root}"
    runs = _all_runs(ctx)
    train_s = sum(study.load_summary(r).get("train_time_s") or 0 for r in runs)
    rows = [
        ("profile", ctx.profile),
        ("dataset", data),
        ("device", f"{_devices(ctx)}; {env.get('device')}"
                   + (f"; {ctx.results['02']['cpu_threads']} torch CPU thread(s)" if ctx.results["02"].get("cpu_threads")
                      and _devices(ctx).startswith("CPU") else "")),
        ("platform", env.get("platform")),
        ("commit", env.get("commit")),
        ("versions", f"python {env.get('python')}, torch {env.get('torch')}, torchvision {env.get('torchvision')}, "
                     f"timm {env.get('timm')}, numpy {env.get('numpy')}"),
        ("runs", f"{len(runs)} run folders under runs/{ctx.profile}/, {train_s / 60:.1f} min of training in total"),
        ("built", ctx.built),
    ]
    return pd.DataFrame(rows, columns=["item", "value"])


def timings_table(ctx: ReportContext) -> pd.DataFrame:
    t = ctx.results.get("timings", {})
    rows = []
    if "data_s" in t:
        rows.append({"step": "demo data generation / check", "wall time (s)": t["data_s"], "finished": ""})
    for nb, info in t.get("notebooks", {}).items():
        if nb.startswith("07"):
            continue
        rows.append({"step": f"{nb}.ipynb", "wall time (s)": info["seconds"], "finished": info.get("finished", "")})
    rows.append({"step": "07_report.ipynb (this notebook)", "wall time (s)": math.nan, "finished": "running now"})
    return pd.DataFrame(rows)


def timings_note(ctx: ReportContext) -> str:
    t = ctx.results.get("timings", {})
    if not t.get("notebooks"):
        return ("No timings recorded: this notebook was run directly, not through `cityseg report`, which times "
                "each notebook.")
    total = sum(v["seconds"] for k, v in t["notebooks"].items() if not k.startswith("07")) + t.get("data_s", 0)
    return (f"Notebooks 01–06 and the data step took {total / 60:.1f} minutes of wall time in their latest execution "
            "(a notebook whose runs were reused takes seconds; the training time of every run is in its "
            "`summary.json`). The report notebook cannot time itself; `cityseg report` prints its time.")
