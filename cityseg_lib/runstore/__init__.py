"""The run store: the one module that names a run folder, writes its files and reads them back.

The package has four modules: :mod:`.identity` (what a run computes, hence its folder name),
:mod:`.files` (every writer and reader of the files below), :mod:`.lifecycle` (reuse, resume,
extension and the explicit retrain) and :mod:`.history` (an extended run's earlier results). A run folder ``RUNS/PROFILE/NAME-HASH/`` holds::

    config.yaml        the resolved TrainConfig (data_root absolute: the dataset's current place)
    identity.json      what the run computes: its computed keys and the dataset's fingerprint
    environment.json   git commit, package versions, device (a CPU's AMX tiles: cpu_amx)
    metrics.csv        one row per finished epoch (train_loss, val_loss: batch losses weighted by
                       their images, see ``train.loop.evaluate``)
    last.pt, best.pt   the latest state (exact resume) and the lowest-validation-loss weights
    summary.json       the kept checkpoint's scores, and the precision it trained in; written when the run finishes
    history/N_epochs/  the results (summary, per-image matrices, eval_*.json) of the run when it was
                       finished at N epochs, moved there before an extension changes anything
    per_image.npz      per-image confusion matrices of the final evaluation at the training size,
    per_image_full_res.npz   and under the official full-resolution protocol (for the bootstrap)
    model_stats.json   parameters and FLOPs (cache), eval_*.json (``cityseg evaluate``)
    tb/                TensorBoard event files (written by :mod:`cityseg_lib.train.tblog`)

A run is identified by what it computes: ``HASH`` is a short digest of every config key except
:data:`EXECUTION_KEYS` (where it runs, its name, how many epochs) plus the dataset's content
fingerprint (its split file lists and sizes, not its path); a key added by a later version enters
it only at a value other than the earlier behaviour (:data:`ADDED_KEYS`), so an upgrade moves no
run. A changed computed key therefore makes a *new* folder beside the old one, and says which
(:func:`earlier_runs_note`); moving the dataset or the checkout changes nothing; a
larger ``epochs`` extends the finished run from ``last.pt`` (StepLR continues its schedule, so
the result equals a run trained that long from the start). Nothing here deletes a run: an
explicit ``retrain=True`` moves it whole to ``.replaced/`` beside the runs and says where. Notebooks, report, sweep and CLI read run files
only through this module.
"""

from cityseg_lib.runstore.identity import (ADDED_KEYS, EXECUTION_KEYS, ResumeRefused, check_same_computation,
                                           computed_config, dataset_fingerprint, find_runs, run_dir, run_id, runs_root,
                                           smallest_batch)
from cityseg_lib.runstore.files import (METRIC_FIELDS, checkpoint_path, last_epoch_gain, load_config, load_environment,
                                        load_identity, load_metrics, load_per_image, load_summary, model_stats, read_json,
                                        relative, remove_partial_checkpoints, resolve, run_record, tensorboard_dir,
                                        write_json, write_metrics, write_per_image, write_run_info, write_summary)
from cityseg_lib.runstore.history import HISTORY_DIR, mark_unfinished
from cityseg_lib.runstore.lifecycle import (check_revision, earlier_runs_note, fit_state, identity_change, is_finished,
                                            longer_run, prepare, start_line, train_or_load)

__all__ = [
    "ADDED_KEYS", "EXECUTION_KEYS", "METRIC_FIELDS", "HISTORY_DIR", "ResumeRefused", "computed_config",
    "dataset_fingerprint",
    "run_id", "run_dir", "smallest_batch",
    "runs_root", "find_runs", "checkpoint_path", "tensorboard_dir", "is_finished", "fit_state", "longer_run",
    "mark_unfinished", "check_same_computation", "prepare", "identity_change", "earlier_runs_note", "check_revision",
    "start_line", "train_or_load", "write_run_info", "write_metrics", "write_summary", "write_per_image",
    "last_epoch_gain", "load_config", "load_environment", "load_identity", "load_summary", "load_metrics", "load_per_image",
    "run_record", "remove_partial_checkpoints",
    "model_stats", "read_json", "write_json", "relative", "resolve",
]
