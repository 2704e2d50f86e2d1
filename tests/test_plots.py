"""Figures show what their titles and captions say: asserted on the artists of the returned Figure."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.container import BarContainer

from cityseg_lib import plots
from cityseg_lib.data.labels import CLASS_NAMES


def _metrics(miou: list[float]) -> pd.DataFrame:
    n = len(miou)
    return pd.DataFrame({"epoch": range(1, n + 1), "train_loss": np.linspace(2, 1, n),
                         "val_loss": np.linspace(2.5, 1.5, n), "val_miou": miou, "lr": [1e-3] * n})


def test_learning_curves_star_sits_on_the_kept_epoch_and_the_title_names_it_only_when_drawn():
    frames = {"a": _metrics([0.1, 0.3, 0.2]), "b": _metrics([0.05, 0.1, 0.15])}
    fig = plots.learning_curves(frames, {"a": 2, "b": 3})
    ax = fig.axes[1]
    stars = [ln for ln in ax.get_lines() if ln.get_marker() == "*"]
    assert [(float(s.get_xdata()[0]), float(s.get_ydata()[0])) for s in stars] == [(2.0, 30.0), (3.0, 15.0)]
    assert "star" in ax.get_title()
    bare = plots.learning_curves(frames).axes[1]
    assert not [ln for ln in bare.get_lines() if ln.get_marker() == "*"]
    assert "star" not in bare.get_title()


def test_scheduler_lr_panel_says_its_scale_is_log():
    ax_lr = plots.scheduler_comparison({"const": _metrics([0.1, 0.2])}).axes[1]
    assert ax_lr.get_yscale() == "log" and "log" in ax_lr.get_ylabel()


def test_per_class_bars_equal_the_values_and_mark_absent_classes_apart_from_zero():
    iou = {n: 0.0 for n in CLASS_NAMES}
    iou.update({"road": 0.4, "fence": math.nan, "train": math.nan})
    low = np.array([0.3 if n == "road" else 0.0 for n in CLASS_NAMES])
    high = np.array([0.5 if n == "road" else 0.0 for n in CLASS_NAMES])
    fig = plots.per_class_iou_bars({"m": iou}, {"m": (low, high)})
    ax = fig.axes[0]
    bars = next(c for c in ax.containers if isinstance(c, BarContainer))
    heights = np.array([p.get_height() for p in bars.patches])
    np.testing.assert_allclose(heights, [100 * iou[n] for n in CLASS_NAMES])
    marks = [t for t in ax.texts if t.get_text() == "n/a"]
    centres = [p.get_x() + p.get_width() / 2 for p in bars.patches]
    assert sorted(t.get_position()[0] for t in marks) == [centres[CLASS_NAMES.index("fence")],
                                                          centres[CLASS_NAMES.index("train")]]
    # the road bar's error bar spans exactly its interval
    seg = bars.errorbar.lines[2][0].get_segments()[CLASS_NAMES.index("road")]
    np.testing.assert_allclose(sorted(seg[:, 1]), [30.0, 50.0])


def test_brackets_draw_every_finite_trial_and_mark_failed_ones():
    from matplotlib.figure import Figure

    trials = pd.DataFrame({
        "rung": [0, 0, 0, 1], "candidate": ["c00", "c01", "c02", "c00"], "subset": [2, 2, 2, 4],
        "best_val_loss": [1.5, 1.7, math.inf, 1.2], "decision": ["kept", "dropped", "dropped", "winner"]})
    ax = Figure().subplots()
    plots.brackets_panel(ax, trials)
    drawn = {(float(x), float(y)) for ln in ax.get_lines() if ln.get_marker() != "x"
             for x, y in zip(ln.get_xdata(), ln.get_ydata())}
    assert drawn == {(0.0, 1.5), (0.0, 1.7), (1.0, 1.2)}
    failed = [ln for ln in ax.get_lines() if ln.get_marker() == "x"]
    assert len(failed) == 1 and list(failed[0].get_xdata()) == [0]
    assert "failed (1)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_loss_comparison_keeps_every_epoch_of_a_seed_that_ran_longer():
    short, long = _metrics([0.1, 0.2]), _metrics([0.1, 0.3, 0.4, 0.5])
    ax = plots.loss_comparison({"ce": [short, long]}).axes[0]
    thin = [ln for ln in ax.get_lines() if ln.get_linewidth() < 1]
    assert sorted(len(ln.get_xdata()) for ln in thin) == [2, 4]
    mean = next(ln for ln in ax.get_lines() if ln.get_label().startswith("ce"))
    np.testing.assert_allclose(mean.get_ydata(), [10.0, 25.0])
