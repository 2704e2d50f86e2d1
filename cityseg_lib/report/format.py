"""Formatting for the report: numbers, percentages, word lists, label names, HTML tables and captions."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cityseg_lib.models.names import DISPLAY_NAMES as MODEL_LABELS  # the one table of model names
from cityseg_lib.models.names import display_name
from cityseg_lib.evaluate.wording import fixed_point

__all__ = ["MODEL_LABELS", "LOSS_LABELS", "OPTIMIZER_LABELS", "AUGMENT_LABELS", "tuned_label", "first_up", "pct", "pts", "signed_pts",
           "count", "flops",
           "join", "size_hw", "size_relation", "plural", "table_html", "figure_caption", "show"]

LOSS_LABELS = {"cross_entropy": "cross-entropy", "iou": "IoU (soft Jaccard)", "jaccard": "IoU (soft Jaccard)",
               "dice": "Dice"}
OPTIMIZER_LABELS = {"adamw": "AdamW", "adam": "Adam", "adamax": "Adamax"}
AUGMENT_LABELS = {"none": "none (original images)", "replace": "replace (transformed instead)",
                  "augment": "augment (originals + transformed)"}


def tuned_label(model: str) -> str:
    return f"{display_name(model)} (tuned)"


def first_up(text: str) -> str:
    """``text`` with its first letter upper-case, the rest as it is (unlike ``str.capitalize``: "on CPU" stays)."""
    return text[:1].upper() + text[1:]


def pct(x: float | None, digits: int = 1) -> str:
    """``0.4567`` -> ``"45.7%"``; NaN/None -> ``"n/a"``."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{100 * x:.{digits}f}%"


def pts(x: float, digits: int = 1) -> str:
    """A difference of two fractions in percentage points; a non-zero one never reads "0.0"."""
    return f"{fixed_point(100 * abs(x), digits)} points"


def signed_pts(x: float, digits: int = 1) -> str:
    """A signed difference of two fractions in points: ``+1.2 points``, ``−0.4 points``, ``0.0 points``
    (a non-zero difference never reads as zero: ``+0.03 points``)."""
    s = fixed_point(100 * x, digits).lstrip("-")
    sign = "" if x == 0 else "+" if x > 0 else "−"
    return f"{sign}{s} points"


def count(n: float) -> str:
    """Parameter counts: ``1.23 M``, ``45.6 k``."""
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k"


def flops(f: float) -> str:
    return f"{f / 1e9:.2f} GFLOPs" if f >= 1e8 else f"{f / 1e6:.1f} MFLOPs"


def join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def size_hw(hw: Sequence[int]) -> str:
    return f"{hw[0]}x{hw[1]} (HxW)"


def size_relation(hw: Sequence[int], ref: Sequence[int]) -> str:
    """How the (H, W) size ``hw`` stands to ``ref``: ``"larger"`` or ``"smaller"`` (no side the other
    way, not equal), ``"same"``, or ``"different"`` (one side larger, the other smaller)."""
    (h, w), (rh, rw) = hw, ref
    if (h, w) == (rh, rw):
        return "same"
    if h >= rh and w >= rw:
        return "larger"
    if h <= rh and w <= rw:
        return "smaller"
    return "different"


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``"1 epoch"``, ``"2 epochs"``."""
    return f"{n} {noun if n == 1 else (nouns or noun + 's')}"


def _column_format(values: pd.Series, name: str):
    """One number format per column, so its decimals line up: whole numbers without decimals,
    percentages and values of 10 or more with one, smaller values (losses, sizes) with two;
    tiny non-zero values (learning rates) in 3 significant digits, and any other non-zero value
    the column's decimals would show as zero in one ("0.04" in a column of one decimal)."""
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
        if 0 < abs(v) < 1e-2:  # 3 significant digits, never an exponent (a learning rate of 1e-5: 0.00001)
            return np.format_float_positional(v, precision=3, unique=True, fractional=False, trim="-")
        text = f"{v:,.{digits}f}"
        return fixed_point(v, digits) if v != 0 and float(text.replace(",", "")) == 0 else text

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
