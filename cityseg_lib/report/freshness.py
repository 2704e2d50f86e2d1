"""Whether the notebooks' results still fit together, judged by what they were made from.

A build can run some notebooks only (``cityseg report --only 03``, a notebook that failed, one run
by hand), so the results files of one profile can come from different builds. That is fine as
long as every result still describes the runs and data the report will read; it is not when

* a run a result lists was extended in place since (``--only 03 --set '03.train={epochs: 3}'``
  extends the U-Net runs that 05 lists as its cross-entropy arm: the loss comparison would pit
  3 epochs against 2);
* a result was built on another notebook's main run (05 and 06 on 03's and 04's,
  :data:`READS`) that has changed or been extended since (the tuned U-Net against a longer main one);
* the data was regenerated (another seed, size) or replaced: runs trained on the earlier data
  would be paired image by image with runs on the new one, and 01's statistics describe the old;
* the notebook failed in a later build (:func:`run_recorded` leaves ``NN.failed.json`` beside the
  results): its ``NN.json`` is an earlier build's, kept, but the build that failed ran the notebooks
  before it anew, and its own inputs may have changed; it is judged stale until it runs again.

:func:`save_result <cityseg_lib.report.notebook_results.save_result>` records, beside each
result, what it was made from (:func:`made_from`: each listed run's epoch count, the upstream
main runs it read, for 01 the data's content fingerprint); :func:`stale_lines` compares that with
the run folders and data as they are now, as a pipeline tool (Snakemake, DVC) compares a
product's inputs. Results written before this record existed are not judged.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

from cityseg_lib.errors import CitysegError

__all__ = ["READS", "listed_runs", "made_from", "stale_lines", "planned_mains", "check_fresh", "render_hint",
           "run_recorded", "failure_path"]

#: Notebook -> the notebooks whose reference run (``notebook_results.reference_run``: the ablation
#: reference, or the main run with one recipe) it builds on (as ``execute.notebooks.DEPENDS``).
READS = {"05": ("03",), "06": ("03", "04")}
_FINE = (("train", "fine"), ("val", "fine"))


def listed_runs(result) -> list[str]:
    """The training runs a typed notebook result names (sweep trials not included), in order."""
    runs: list = []
    for name in ("main_run", "constant_lr_run", "resolution_run", "no_dropout_run", "no_batchnorm_run"):
        runs.append(getattr(result, name, None))
    runs += list(getattr(result, "seed_runs", []) or [])
    runs += list(getattr(result, "ablation_runs", []) or [])
    for name in ("augment_runs", "optimizer_runs", "tuned_runs"):
        runs += list((getattr(result, name, None) or {}).values())
    for group in (getattr(result, "runs", None) or {}).values():
        runs += list(group)
    return [r for r in dict.fromkeys(runs) if isinstance(r, str) and r]


def _epochs(run: str) -> int | None:
    """Epochs a finished run holds now (its ``summary.json``); None when it has none."""
    from cityseg_lib import runstore

    try:
        return int(runstore.load_summary(run)["epochs_run"])
    except (CitysegError, KeyError, TypeError, ValueError):
        return None


def _data_digest(root: str | os.PathLike, splits) -> str | None:
    from cityseg_lib.data.fingerprint import fingerprint

    try:
        return fingerprint(Path(root), tuple(splits))["digest"]
    except (CitysegError, OSError):
        return None


def made_from(profile: str, notebook: str, result) -> dict:
    """What a result is made from, recorded beside it: ``{"run_epochs": {run: epochs}, "reads":
    {NN: {"run", "epochs"}}, "dataset": digest}`` (the last for 01's data only)."""
    from cityseg_lib.report.notebook_results import load_result, reference_run

    out: dict = {"run_epochs": {run: _epochs(run) for run in listed_runs(result)}}
    reads = {}
    for up in READS.get(notebook, ()):
        try:
            main = reference_run(load_result(profile, up))
        except CitysegError:
            continue
        reads[up] = {"run": main, "epochs": _epochs(main)}
    if reads:
        out["reads"] = reads
    if notebook == "01" and getattr(result, "data_root", ""):
        out["dataset"] = _data_digest(result.data_root, _FINE)
    return out


def _run_data(run: str, root: str | os.PathLike) -> tuple[str | None, str | None]:
    """(the digest of the data ``run`` trained on, that of the same splits under ``root`` now)."""
    from cityseg_lib import runstore

    trained = (runstore.load_identity(run).get("dataset") or {}).get("digest")
    if trained is None:
        return None, None
    try:
        cfg = runstore.load_config(run)
    except CitysegError:
        return trained, None
    return trained, _data_digest(root, ((cfg.train_split, cfg.annotation), (cfg.val_split, "fine")))


def failure_path(profile: str, notebook: str) -> Path:
    """``reports/PROFILE/results/NN.failed.json``: notebook NN's last run in a build failed."""
    from cityseg_lib.report.notebook_results import results_dir

    return results_dir(profile) / f"{notebook}.failed.json"


def run_recorded(profile: str, notebook: str, run: Callable[..., Any], *args: Any) -> Any:
    """``run(*args)`` (a notebook of a build): a failure is recorded in :func:`failure_path` (when,
    and its one-line error) and raised again; a success removes that record (the notebook wrote its
    result anew). ``NN.json`` itself is never touched here: an earlier build's result is kept."""
    import json

    from cityseg_lib.files import atomic_write_text

    path = failure_path(profile, notebook)
    try:
        result = run(*args)
    except BaseException as err:  # an interrupt too: the notebook did not finish
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"failed": time.strftime("%Y-%m-%d %H:%M:%S"),
                                            "error": str(err).splitlines()[0] if str(err) else type(err).__name__},
                                           indent=2) + "\n")
        raise
    path.unlink(missing_ok=True)
    return result


def stale_lines(profile: str, notebooks: list[str], root: str | os.PathLike | None = None,
                planned: dict[str, dict] | None = None) -> list[tuple[str, str]]:
    """Why the results of ``notebooks`` (``["01", "05"]``) no longer fit the runs and data:
    ``(NN, reason)`` pairs, one line each ([] when they fit). ``root``: the dataset root the report
    reads now (None: the data is not judged); ``planned``: ``{NN: {"run", "epochs"}}``, the main run
    a notebook this build runs will hand on, instead of its current result's."""
    import json

    from cityseg_lib.report.notebook_results import load_result, reference_run, result_path

    lines: list[tuple[str, str]] = []
    for nb in notebooks:
        path = result_path(profile, nb)
        try:
            failed = json.loads(failure_path(profile, nb).read_text())
        except (OSError, ValueError):
            failed = None
        if isinstance(failed, dict) and path.is_file():
            lines.append((nb, f"notebook {nb} failed in the build of {failed.get('failed', '?')} "
                              f"({failed.get('error', '?')}); {path} is an earlier build's result"))
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # missing or broken: load_result names it where it is read
        made = doc.get("made_from") if isinstance(doc, dict) else None
        if not isinstance(made, dict):
            continue  # written before results recorded their inputs
        where = f"{path} (notebook {nb}, written {doc.get('written', '?')})"
        for run, then in (made.get("run_epochs") or {}).items():
            now = _epochs(run)
            if then is not None and now is not None and now != then:
                lines.append((nb, f"{where} lists run {run} at {then} epochs; it now holds {now} (extended since)"))
        for up, then in (made.get("reads") or {}).items():
            if planned and up in planned:
                now = planned[up]
            else:
                try:
                    main = reference_run(load_result(profile, up))
                except CitysegError:
                    continue
                now = {"run": main, "epochs": _epochs(main)}
            if (then.get("run"), then.get("epochs")) != (now["run"], now["epochs"]):
                lines.append((nb, f"{where} was built on notebook {up}'s run {then.get('run')} at "
                                  f"{then.get('epochs')} epochs; notebook {up}'s run is {now['run']} at {now['epochs']} epochs now"))
        if root is None:
            continue
        if made.get("dataset") and _data_digest(root, _FINE) not in (None, made["dataset"]):
            lines.append((nb, f"{where} describes other data than {root} holds now (regenerated or replaced since)"))
        for run in made.get("run_epochs") or {}:
            trained, now = _run_data(run, root)
            if trained is not None and now != trained:
                lines.append((nb, f"{where} lists run {run}, trained on other data than {root} holds now "
                                  "(regenerated or replaced since)"))
                break  # one run names the change; the others trained with it
    return lines


def planned_mains(configs: dict, root: str | os.PathLike, selected: list[str]) -> dict[str, dict]:
    """``{NN: {"run", "epochs"}}``: the run notebooks 03 and 04 of this build will hand on (their
    ablation reference, else the first of their checked run configs, :func:`cityseg_lib.report.preflight.check`)."""
    from dataclasses import replace

    from cityseg_lib import runstore
    from cityseg_lib.report.preflight import GENERATED

    out = {}
    for stem in selected:
        cfgs = configs.get(stem) or []
        if stem[:2] in ("03", "04") and cfgs:
            cfg = next((c for c in cfgs if c.name == f"{cfgs[0].name}_ablation"), cfgs[0])
            cfg = cfg if cfg.data_root not in ("", GENERATED) else replace(cfg, data_root=str(root))
            out[stem[:2]] = {"run": runstore.relative(runstore.run_dir(cfg)), "epochs": cfg.epochs}
    return out


def check_fresh(profile: str, notebooks: list[str], root: str | os.PathLike | None, planned: dict | None = None,
                rerun: list[str] = ()) -> None:
    """Refuse, in one line, to render a report from results that no longer fit (:func:`stale_lines`),
    naming the first reason and the notebooks to run again (beside ``rerun``, those this build runs)."""
    found = stale_lines(profile, notebooks, root, planned)
    if not found:
        return
    again = sorted({nb for nb, _ in found} | {s[:2] for s in rerun} | {"07"})
    more = f" (and {len(found) - 1} more reason(s))" if len(found) > 1 else ""
    raise CitysegError(f"the report would mix results of different builds: {found[0][1]}{more}; run them again: "
                       f"cityseg report --profile {profile} --only {' '.join(again)} (or without --only)")


def render_hint(profile: str, notebooks: list[str], root: str | os.PathLike | None) -> str:
    """After a build without 07: the command that renders the report, with the notebooks among
    ``notebooks`` whose results no longer fit (:func:`stale_lines`) run again."""
    stale = sorted({nb for nb, _ in stale_lines(profile, notebooks, root)})
    return (f"`cityseg report --profile {profile} --only {' '.join([*stale, '07'])}` renders it from these results"
            + (f" (the results of {', '.join(stale)} no longer fit this build's, so they run again)" if stale else ""))
