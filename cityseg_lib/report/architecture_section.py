"""Section 3 of the report, the architectures: their sizes, cost and learning curves."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from cityseg_lib import plots
from cityseg_lib.report.context import ReportContext, devices, trained_on
from cityseg_lib.report.cost import interval_or_dash, side_by_side, side_by_side_cell, side_by_side_how
from cityseg_lib.report.format import count, figure_caption, flops, size_hw


def _options(ctx: ReportContext, label: str) -> str:
    cfg = ctx.runs.config(ctx.main_runs[label])
    opts = dict(cfg.model_options)
    opts.pop("img_size", None)
    if "encoder_kwargs" in opts and isinstance(opts["encoder_kwargs"], dict):
        opts["encoder_kwargs"] = ", ".join(f"{k}={v}" for k, v in opts["encoder_kwargs"].items())
    return "; ".join(f"{k}={v}" for k, v in opts.items()) or "defaults"


def architecture_text(ctx: ReportContext) -> dict[str, str]:
    """The computed part of each model's description (its widths in this profile)."""
    out = {}
    for label in ctx.untuned:
        st = ctx.stats(label)
        out[label] = (f"In this profile: `{_options(ctx, label)}`, {count(st['params'])} parameters and "
                      f"{flops(st['flops'])} per {size_hw(st['input_size'])} image.")
    swin = ctx.runs.config(ctx.swin.main_run).model_options
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
            "images/s 95% CI": interval_or_dash(ctx, ctx.main_runs[label]),
            **({"images/s side by side [95% CI]": side_by_side_cell(ctx, label)} if side_by_side(ctx) else {}),
            "peak memory (MB)": round(rec["peak_memory_mb"] or math.nan),
            "training time (s)": round(rec["train_time_s"] or math.nan),
        })
    return pd.DataFrame(rows)


def model_table_note(ctx: ReportContext) -> str:
    dev = devices(ctx)
    cpu = dev.startswith("CPU")
    per_run = all(ctx.main[label].get("peak_memory_scope") == "run" for label in ctx.untuned)
    mem = (("Peak memory on the CPU is the training process's largest resident set size during the run, which "
            "includes the Python interpreter and the data cache; it is an upper bound, not the model's own "
            "footprint." if per_run else
            "Peak memory on the CPU is the process's maximum resident set size, which includes the Python "
            "interpreter, the data cache and earlier runs in the same process; it is an upper bound, not the "
            "model's own footprint.") if cpu else
           "Peak memory is the largest CUDA allocation during the run (training and its evaluations).")
    threads = ctx.baseline.cpu_threads
    setup = trained_on(ctx)  # the device and its precision: bf16 autocast changes the speed
    on = f"{setup}, {threads} torch thread{'s' if threads != 1 else ''}" if cpu and threads else setup
    sbs = side_by_side(ctx)
    side = (f" Those speeds also carry what else the machine ran while each run trained, so the models are "
            f"compared by a second timing, {side_by_side_how(ctx)} on a random batch of each run's size, in this "
            f"notebook: the side-by-side column gives the median images/s with its 95% interval over the "
            f"{sbs['rounds']} rounds." if sbs else "")
    return (f"Throughput is the median over epochs of training images per second on {on} (forward, backward "
            f"and optimiser step at batch size {ctx.runs.config(ctx.baseline.main_run).batch_size}), with the 95% "
            "bootstrap interval of that median over the run's epochs: the machine's load moves from epoch to "
            "epoch" + (", and notebooks train side by side" if cpu else "") + "." + side + " " + mem)


def fig_learning_curves(ctx: ReportContext, number: int = 4) -> tuple:
    metrics = {label: ctx.runs.metrics(ctx.main_runs[label]) for label in ctx.untuned}
    best = {label: ctx.main[label]["best_epoch"] for label in ctx.untuned}
    return plots.learning_curves(metrics, best), figure_caption(
        number, "Training (dashed) and validation (solid) loss, and validation mIoU at the training size, per epoch, "
        "of the three architectures; the star marks the epoch of the lowest validation loss, whose weights are kept.")
