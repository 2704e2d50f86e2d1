"""Figures of the study. Each function takes plain data (arrays, DataFrames, dicts) and returns a
``matplotlib.figure.Figure``.

Figures are built without ``pyplot`` (no global state, nothing shown twice in a notebook); in
Jupyter the returned figure displays itself (``display(fig)`` or as a cell's last expression).
Colours of classes are the official Cityscapes palette (:data:`cityseg_lib.data.labels.TRAIN_ID_COLORS`).
Modules follow the report: :mod:`.data` (Section 2), :mod:`.training` (Sections 3-4),
:mod:`.results` (Section 5 and the sweep), :mod:`.common` (shared helpers).
"""

from __future__ import annotations

from cityseg_lib.plots.common import overlay
from cityseg_lib.plots.data import class_cooccurrence, class_frequency_bars, sample_grid, split_city_bars
from cityseg_lib.plots.results import (brackets_panel, confusion_heatmap, differences_plot, per_class_iou_bars,
                                       qualitative_grid, sweep_brackets)
from cityseg_lib.plots.training import learning_curves, loss_comparison, metric_bars, scheduler_comparison

__all__ = [
    "overlay", "sample_grid", "split_city_bars", "class_frequency_bars", "class_cooccurrence", "learning_curves",
    "loss_comparison", "scheduler_comparison", "metric_bars", "confusion_heatmap", "qualitative_grid",
    "per_class_iou_bars", "brackets_panel", "sweep_brackets", "differences_plot",
]


def _enable_notebook_display() -> None:
    """In IPython, show a returned ``Figure`` as a PNG (pyplot-free figures get no formatter otherwise)."""
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        select_figure_formats(shell, {"png"})


_enable_notebook_display()
