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
names are re-exported here from its modules, each imported on first use (PEP 562), so that
importing a light submodule (``cityseg report``'s arguments, the notebooks' ``experiments``) does
not load torch, timm and matplotlib with every section:

* :mod:`.notebook_results`: the typed result of each notebook, written and read back strictly;
* :mod:`.experiments`: the training runs each notebook builds from its parameters;
* :mod:`.format`: number and text formatting, label names, HTML tables and captions, ``show``;
* :mod:`.context`: :class:`ReportContext`, :func:`load_context` and helpers several sections share;
* :mod:`.evidence`: intervals and paired comparisons; :mod:`.cells`: their table cells;
  :mod:`.headline_json`: ``headline.json``;
* :mod:`.cost`: training and inference speeds with their intervals, and the side-by-side timing;
* :mod:`.front`: title, introduction, provenance and timings;
* :mod:`.dataset_section`, :mod:`.architecture_section`, :mod:`.augmentation_section`, :mod:`.training_section`,
  :mod:`.loss_section`, :mod:`.sweep_section`, :mod:`.results_section`: Sections 2 to 5;
* :mod:`.discussion`: conclusions and reflections (Sections 6 and 7);
* :mod:`.build` (``cityseg report``; its command line in :mod:`.arguments`), :mod:`.preflight` and
  :mod:`.render`: running and rendering.
"""

from __future__ import annotations

import importlib

#: submodule -> the names it exports here
_EXPORTS = {
    "inference_section": ["inference_table", "inference_text"],
    "variants_section": ["optimizer_table", "optimizer_text", "fig_optimizers", "resolution_table", "resolution_text",
                         "resolution_caption", "fig_resolution"],
    # results hand-off
    "notebook_results": ["DataResult", "BaselineResult", "UNetResult", "SwinResult", "LossResult", "SweepResult",
                         "ReportResult", "save_result", "load_result"],
    "format": ["MODEL_LABELS", "LOSS_LABELS", "AUGMENT_LABELS", "pct", "table_html", "figure_caption", "show"],
    "context": ["ReportContext", "StoredRuns", "MemoryRuns", "load_context", "majority_baseline", "runs_frame"],
    "evidence": ["comparisons"],
    "cost": ["measure_step_speeds"],
    "headline_json": ["differences_table", "headline", "write_headline"],
    "front": ["title_block", "introduction", "provenance_table", "timings_table", "timings_note"],
    "dataset_section": ["split_table", "dataset_text", "fig_samples", "fig_class_frequency", "fig_cooccurrence"],
    "architecture_section": ["architecture_text", "model_table", "model_table_note", "fig_learning_curves"],
    "augmentation_section": ["augmentation_table", "augmentation_text"],
    "training_section": ["scheduler_table", "scheduler_text", "fig_scheduler", "early_stopping_table",
                         "early_stopping_text"],
    "loss_section": ["seed_summary", "seed_table", "loss_summary", "loss_table", "loss_text", "fig_loss_comparison"],
    "sweep_section": ["table1", "rung_plan_table", "table2", "sweep_text", "fig_brackets"],
    "ranking": ["ranking_scores", "best_model", "top_model_phrase"],
    "results_section": ["results_table", "results_note", "per_class_table", "fig_per_class",
                        "fig_confusion", "fig_qualitative", "confusion_text", "comparisons_table", "fig_differences",
                        "dropout_table", "dropout_text"],
    "discussion": ["conclusions", "reflections"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = list(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
