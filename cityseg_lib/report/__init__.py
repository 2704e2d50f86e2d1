"""The written report's tables and text, computed from the artifacts of one profile's runs.

``load_context(profile)`` gathers the notebooks' typed results (:mod:`.notebook_results`) and a
reader of the runs they name; every other function turns that into a table (a DataFrame), a
figure with its caption, or Markdown prose. Statements that compare numbers (rankings, "better
than", "unresolved") are computed here from paired bootstrap intervals (:mod:`.evidence`), so
when the numbers change the text changes.

Numbering: Figures 1, 5 and 6 and Tables 1 and 2 keep the numbers of the reference report (sample
masks, loss comparison, scheduler comparison, sweep grid, sweep winners); the report notebook
passes every number explicitly.

The notebooks use this package as ``from cityseg_lib import report`` and ``report.<name>``; the
names are re-exported here from its modules:

* :mod:`.notebook_results`: the typed result of each notebook, written and read back strictly;
* :mod:`.experiments`: the training runs each notebook builds from its parameters;
* :mod:`.format`: number and text formatting, label names, HTML tables and captions, ``show``;
* :mod:`.context`: :class:`ReportContext`, :func:`load_context` and helpers several sections share;
* :mod:`.evidence`: intervals, paired comparisons and ``headline.json``;
* :mod:`.front`: title, introduction, provenance and timings;
* :mod:`.dataset_section`, :mod:`.architecture_section`, :mod:`.training_section`,
  :mod:`.loss_section`, :mod:`.sweep_section`, :mod:`.results_section`: Sections 2 to 5;
* :mod:`.discussion`: conclusions and reflections (Sections 6 and 7);
* :mod:`.build` (``cityseg report``), :mod:`.preflight` and :mod:`.render`: running and rendering.
"""

from __future__ import annotations

from cityseg_lib.report.architecture_section import architecture_text, fig_learning_curves, model_table, model_table_note
from cityseg_lib.report.context import (MemoryRuns, ReportContext, StoredRuns, load_context, majority_baseline,
                                        runs_frame)
from cityseg_lib.report.dataset_section import dataset_text, fig_class_frequency, fig_cooccurrence, fig_samples, split_table
from cityseg_lib.report.discussion import conclusions, reflections
from cityseg_lib.report.evidence import comparisons, differences_table, headline, write_headline
from cityseg_lib.report.inference_section import inference_table, inference_text
from cityseg_lib.report.variants_section import (fig_optimizers, fig_resolution, optimizer_table, optimizer_text,
                                                resolution_table, resolution_text)
from cityseg_lib.report.format import AUGMENT_LABELS, LOSS_LABELS, MODEL_LABELS, figure_caption, pct, show, table_html
from cityseg_lib.report.front import introduction, provenance_table, timings_note, timings_table, title_block
from cityseg_lib.report.loss_section import (fig_loss_comparison, loss_summary, loss_table, loss_text, seed_summary,
                                             seed_table)
from cityseg_lib.report.notebook_results import (BaselineResult, DataResult, LossResult, ReportResult, SweepResult,
                                                 SwinResult, UNetResult, load_result, save_result)
from cityseg_lib.report.results_section import (best_model, comparisons_table, confusion_text, dropout_table,
                                                dropout_text, fig_confusion, fig_differences, fig_per_class,
                                                fig_qualitative, per_class_table, results_note, results_table)
from cityseg_lib.report.sweep_section import fig_brackets, rung_plan_table, sweep_text, table1, table2
from cityseg_lib.report.training_section import (augmentation_table, augmentation_text, early_stopping_table,
                                                 early_stopping_text, fig_scheduler, scheduler_table, scheduler_text)

__all__ = [
    "inference_table", "inference_text", "optimizer_table", "optimizer_text", "fig_optimizers",
    "resolution_table", "resolution_text", "fig_resolution",
    # results hand-off
    "DataResult", "BaselineResult", "UNetResult", "SwinResult", "LossResult", "SweepResult", "ReportResult",
    "save_result", "load_result",
    # format
    "MODEL_LABELS", "LOSS_LABELS", "AUGMENT_LABELS", "pct", "table_html", "figure_caption", "show",
    # context
    "ReportContext", "StoredRuns", "MemoryRuns", "load_context", "majority_baseline", "runs_frame",
    # evidence
    "comparisons", "differences_table", "headline", "write_headline",
    # front
    "title_block", "introduction", "provenance_table", "timings_table", "timings_note",
    # data
    "split_table", "dataset_text", "fig_samples", "fig_class_frequency", "fig_cooccurrence",
    # models
    "architecture_text", "model_table", "model_table_note", "fig_learning_curves",
    # training
    "augmentation_table", "augmentation_text", "scheduler_table", "scheduler_text", "fig_scheduler",
    "early_stopping_table", "early_stopping_text",
    # losses
    "seed_summary", "seed_table", "loss_summary", "loss_table", "loss_text", "fig_loss_comparison",
    # sweep
    "table1", "rung_plan_table", "table2", "sweep_text", "fig_brackets",
    # results
    "results_table", "results_note", "per_class_table", "fig_per_class", "best_model", "fig_confusion",
    "fig_qualitative", "confusion_text", "comparisons_table", "fig_differences", "dropout_table", "dropout_text",
    # discussion
    "conclusions", "reflections",
]
