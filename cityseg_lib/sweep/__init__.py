"""Halving hyperparameter sweep over training-set size, resumable (reference report, Section 3.5).

Successive halving: rung 0 trains every configuration of the grid for ``rung_epochs`` epochs on
a random subset of the training set; the half with the highest best-validation-loss is dropped
(``ceil(n/2)`` survive), the subset doubles, and so on until two candidates remain. Those two
are trained on the whole training set (for ``final_epochs``) and the lower validation loss wins.
With the 36 configurations of Table 1 the rungs hold 36, 18, 9, 5, 3 and 2 candidates, so rung 0
sees 1/32 of the data (rung ``r`` of ``R`` halvings sees ``N / 2**(R - r)`` images, never fewer
than ``min_subset``). Subsets are nested (one seeded permutation, see
:func:`cityseg_lib.data.dataset.subset_indices`) and every trial is scored on the same, whole
validation split, so the losses of a rung are comparable.

Layout of a sweep folder ``RUNS/PROFILE/NAME/``::

    sweep.yaml        resolved sweep config (a later run must agree with it)
    plan.json         training-set size, rungs and candidates
    plan.txt          the rung plan as printed by ``--dry-run``
    trials.csv        one row per trial, rewritten atomically after every finished trial
    table2.csv        the winner as a row of the report's Table 2
    winner.json       the winner, runner-up and their scores
    brackets.png      val loss of every candidate across rungs
    trials/rR_cII/    one ordinary training run per trial (see :func:`cityseg_lib.train.engine.fit`)

Resuming: every trial is an ordinary run trained with ``fit(resume=True)``, which returns at
once when its ``summary.json`` exists and continues an interrupted run from ``last.pt``. The
sweep keeps no other state: on every start it walks the rungs again, takes finished trials from
their ``summary.json`` (and failed ones from ``trials.csv``), and re-derives the halving
decisions from those losses -- so a sweep killed at any moment and started again ends with the
same tables as an uninterrupted one.

A trial whose training raises :class:`CitysegError` (a non-finite loss, for instance) is
recorded as ``failed`` with val loss ``inf``, ranks last, and the sweep goes on; it is not
retried on resume (delete ``trials.csv`` to retry failed trials -- finished ones are kept in
their run folders). If every trial of a rung fails the sweep stops, since a winner would be
meaningless. Other exceptions are bugs or hardware trouble and stop the sweep.

Parallel trials: the trials of a rung are independent, so they are submitted together to the
executor (:mod:`cityseg_lib.execute`; ``executor: ray`` or ``--executor ray`` runs each as a Ray
task holding one GPU, or ``cpus_per_run`` CPUs) and the rung waits for all of them. The records
are sorted by (rung, candidate), and every trial uses the same torch thread count
(``cpu_threads``), so the tables do not depend on the executor, the number of workers or the
order in which trials finish. A trial whose Ray worker dies is retried and resumes from its
``last.pt``; a failed trial (:class:`CitysegError`) is not retried.
"""

from __future__ import annotations

from cityseg_lib.sweep.config import SWEEP_OWNED, TABLE1_GRID, SweepConfig, load_sweep_config
from cityseg_lib.sweep.halving import Candidate, Rung, format_plan, grid_candidates, plan_rungs, select_survivors
from cityseg_lib.sweep.records import read_trials
from cityseg_lib.sweep.run import run_sweep
from cityseg_lib.sweep.trials import count_train_images, run_trial, sweep_dir_for, table2_row, trial_config

__all__ = ["SWEEP_OWNED", "TABLE1_GRID", "SweepConfig", "load_sweep_config", "Candidate", "Rung", "format_plan",
           "grid_candidates", "plan_rungs", "select_survivors", "read_trials", "run_sweep", "count_train_images",
           "run_trial", "sweep_dir_for", "table2_row", "trial_config"]
