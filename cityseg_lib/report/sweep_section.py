"""The hyper-parameter sweep (successive halving): Table 1 (grid), Table 2 (winners), rung plan, brackets."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from cityseg_lib import plots, runstore
from cityseg_lib.report.context import ReportContext
from cityseg_lib.report.format import MODEL_LABELS, figure_caption, join, plural, tuned_label


def sweep_results(ctx: ReportContext) -> dict[str, dict]:
    return ctx.sweep.sweeps


def table1(ctx: ReportContext) -> pd.DataFrame:
    """Table 1: the hyper-parameter grid of each sweep (one row per parameter)."""
    rows = []
    for model, sw in sweep_results(ctx).items():
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
    for model, sw in sweep_results(ctx).items():
        for rung in sw.get("plan", []):
            rows.append({"model": MODEL_LABELS.get(model, model), "rung": rung["rung"], "trials": rung["trials"],
                         "kept": rung["kept"], "train images": rung["train images"], "epochs": rung["epochs"],
                         "final": "yes" if rung["final"] else ""})
    return pd.DataFrame(rows)


def table2(ctx: ReportContext) -> pd.DataFrame:
    """Table 2: the winner of each sweep (its resolved LR, γ, L2, dropout) and validation losses."""
    rows = []
    for model, sw in sweep_results(ctx).items():
        t = sw["table2"]
        tuned = ctx.main.get(tuned_label(model), {})
        rows.append({"model": MODEL_LABELS.get(model, model), "LR": _fmt_value("lr", t.get("lr")),
                     "γ": _fmt_value("gamma", t.get("gamma")), "L2": _fmt_value("weight_decay", t.get("weight_decay")),
                     "dropout": _fmt_value("dropout", t.get("dropout")),
                     "val loss (sweep)": round(float(t.get("val_loss", math.nan)), 4),
                     "val loss (tuned run)": round(tuned.get("best_val_loss", math.nan), 4)})
    return pd.DataFrame(rows)


def _images(n: int, n_train: int) -> str:
    return f"all {n_train} images" if n >= n_train else plural(n, "image")


def rung_steps(plan: list[dict], n_train: int) -> str:
    """How the sweep's rungs ran, from its plan (the rows of :func:`rung_plan_table`): ``"the first trains
    every combination for 1 epoch on 2 of the 6 training images; after each rung the candidates with the
    lowest validation loss go on: 3 of 5 to a rung on 3 images, then 2 of 3 to the last rung, on all 6
    images."`` -- the numbers kept and the images of each rung as planned, never "half" or "twice"."""
    first = plan[0]
    if len(plan) == 1:
        return (f"it trains every combination for {plural(first['epochs'], 'epoch')} on all {n_train} training "
                "images.")
    on = (f"all {n_train} training images" if first["train images"] >= n_train else
          f"{first['train images']} of the {n_train} training images")
    moves = []
    for rung, nxt in zip(plan, plan[1:]):
        to = "the last rung," if nxt["final"] else "a rung"
        epochs = f" for {plural(nxt['epochs'], 'epoch')}" if nxt["epochs"] != rung["epochs"] else ""
        moves.append(f"{rung['kept']} of {rung['trials']} to {to} on {_images(nxt['train images'], n_train)}{epochs}")
    return (f"the first trains every combination for {plural(first['epochs'], 'epoch')} on {on}; after each rung "
            f"the candidates with the lowest validation loss go on: {', then '.join(moves)}.")


def sweep_text(ctx: ReportContext) -> str:
    sweeps = sweep_results(ctx)
    if not sweeps:
        return "No sweep results were found."
    bodies: dict[str, list[str]] = {}  # identical descriptions (same grid and plan) are told once
    for model, sw in sweeps.items():
        plan = sw.get("plan", [])
        first, last = plan[0], plan[-1]
        full_grid = first["trials"] * sw["n_train"] * last["epochs"]
        body = (
            f"the grid has {plural(first['trials'], 'combination')}"
            + (" (a reduced grid: the reference's Table 1 has 36)" if first["trials"] < 36 else "")
            + f" and the sweep ran {sw['trials']} trials in {plural(len(plan), 'rung')}: "
            + rung_steps(plan, sw["n_train"])
            + f" That costs {sw['image_epochs']:,} image-epochs, "
            f"{100 * sw['image_epochs'] / max(full_grid, 1):.0f}% of training every combination on all the data"
            + (f"; {sw['failed']} trial{'s' if sw['failed'] != 1 else ''} failed." if sw.get("failed") else ".")
        )
        bodies.setdefault(body, []).append(MODEL_LABELS.get(model, model))
    parts = [f"For {join(labels)}{' alike' if len(labels) > 1 else ''}, {body}" for body, labels in bodies.items()]
    text = " ".join(parts)
    text += (" Table 2 gives the winners. Their parameters are then applied to the main model of each architecture "
             "and trained with the main schedule on the whole training split: the tuned models of Section 5."
             if not ctx.two_recipes else
             " Table 2 gives the winners. Their parameters are then applied to each architecture trained with the "
             "ablation recipe, on all of the images the rungs drew from: the tuned models of Section 5, compared "
             "with that recipe's runs, not with the longer main runs.")
    short = [MODEL_LABELS.get(m, m) for m, sw in sweeps.items()
             if tuned_label(m) in ctx.main
             and sw["plan"][-1]["epochs"] < ctx.runs.config(ctx.main_runs[tuned_label(m)]).epochs]
    if short:
        text += (f" The sweep's rungs are shorter than the tuned runs' schedule for {join(short)}, so the winner is the "
                 "best setting for a short run, which need not be the best for the long one.")
    return text


def fig_brackets(ctx: ReportContext, number: int = 7) -> tuple:
    sweeps = sweep_results(ctx)
    if not sweeps:
        return None, "*No sweep results were found for this profile.*"
    fig = plots.sweep_brackets({MODEL_LABELS.get(m, m): runstore.resolve(sw["dir"]) for m, sw in sweeps.items()})
    return fig, figure_caption(number, "Successive halving: best validation loss of every trial per rung (lower is "
                                       "better); a line ends where its candidate was dropped, the winner in red, a failed trial an x on the top edge.")
