"""The written report's tables and text, computed from the artifacts of one profile's runs.

``load_context(profile)`` gathers what the notebooks wrote (``reports/PROFILE/results/*.json``
and the run folders they name); every other function turns that into a table (a DataFrame), a
figure with its caption, or Markdown prose. Statements that compare numbers (rankings, "better
than", "within the seed spread") are computed here, so when the numbers change the text changes.

Numbering: Figures 1, 5 and 6 and Tables 1 and 2 keep the numbers of the reference report (sample
masks, loss comparison, scheduler comparison, sweep grid, sweep winners); the report notebook
passes every number explicitly.

The notebooks use this package as ``from cityseg_lib import report`` and ``report.<name>``; the
names are re-exported here from its modules:

* :mod:`.format`: number and text formatting, label names, HTML tables and captions, ``show``;
* :mod:`.context`: :class:`ReportContext`, :func:`load_context` and helpers several sections share;
* :mod:`.front`: title, introduction, provenance and timings;
* :mod:`.data`: the dataset (Section 2);
* :mod:`.models`: the architectures (Section 3);
* :mod:`.training`: augmentation, losses, scheduler and early stopping (Section 4);
* :mod:`.sweep`: the hyper-parameter sweep (Tables 1 and 2);
* :mod:`.results`: the results (Section 5);
* :mod:`.discussion`: conclusions and reflections (Sections 6 and 7).
"""

from __future__ import annotations

from .context import ReportContext, load_context, majority_baseline, runs_frame
from .data import dataset_text, fig_class_frequency, fig_cooccurrence, fig_samples, split_table
from .discussion import conclusions, reflections
from .format import AUGMENT_LABELS, LOSS_LABELS, MODEL_LABELS, figure_caption, pct, show, table_html
from .front import introduction, provenance_table, timings_note, timings_table, title_block
from .models import architecture_text, fig_learning_curves, model_table, model_table_note
from .results import (best_model, confusion_text, dropout_table, dropout_text, fig_confusion, fig_per_class,
                      fig_qualitative, per_class_table, results_table)
from .sweep import fig_brackets, rung_plan_table, sweep_text, table1, table2
from .training import (augmentation_table, augmentation_text, early_stopping_table, early_stopping_text,
                       fig_loss_comparison, fig_scheduler, loss_summary, loss_table, loss_text, loss_verdict,
                       scheduler_table, scheduler_text)

__all__ = [
    # format
    "MODEL_LABELS",
    "LOSS_LABELS",
    "AUGMENT_LABELS",
    "pct",
    "table_html",
    "figure_caption",
    "show",
    # context
    "ReportContext",
    "load_context",
    "majority_baseline",
    "runs_frame",
    # front
    "title_block",
    "introduction",
    "provenance_table",
    "timings_table",
    "timings_note",
    # data
    "split_table",
    "dataset_text",
    "fig_samples",
    "fig_class_frequency",
    "fig_cooccurrence",
    # models
    "architecture_text",
    "model_table",
    "model_table_note",
    "fig_learning_curves",
    # training
    "augmentation_table",
    "augmentation_text",
    "loss_summary",
    "loss_table",
    "loss_verdict",
    "loss_text",
    "fig_loss_comparison",
    "scheduler_table",
    "scheduler_text",
    "fig_scheduler",
    "early_stopping_table",
    "early_stopping_text",
    # sweep
    "table1",
    "rung_plan_table",
    "table2",
    "sweep_text",
    "fig_brackets",
    # results
    "results_table",
    "per_class_table",
    "fig_per_class",
    "best_model",
    "fig_confusion",
    "fig_qualitative",
    "confusion_text",
    "dropout_table",
    "dropout_text",
    # discussion
    "conclusions",
    "reflections",
]
