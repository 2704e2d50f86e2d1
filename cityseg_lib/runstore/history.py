"""A finished run that is extended stops being finished *before* anything of it changes.

``summary.json`` is what makes a run finished (:func:`cityseg_lib.runstore.is_finished`). When a
larger ``epochs`` extends a finished run, its results (``summary.json``, the per-image matrices,
``eval_*.json`` of its ``best.pt``) move to ``RUN/history/N_epochs/`` first, and only then are
``config.yaml``, ``best.pt`` and ``last.pt`` overwritten; so a process killed during the
extension leaves an *unfinished* run (resumed with the larger ``epochs``, refused with the smaller
one), never a "finished" one whose files disagree. Nothing is deleted: the results stay whole in
the history folder.

The move is one switch: every other result file is hard-linked into the history folder first,
then ``summary.json`` is renamed there (atomic), then the stale names in the run folder are
unlinked (their content is in the history folder). A kill between two steps is finished by the
next start, which calls :func:`mark_unfinished` again.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from cityseg_lib.runstore.files import read_json

__all__ = ["HISTORY_DIR", "mark_unfinished", "result_files"]

HISTORY_DIR = "history"  # RUN/history/N_epochs/: the results of the run when it was finished at N epochs


def result_files(run: Path) -> list[Path]:
    """The files of ``run`` that describe its finished state (its ``best.pt``), ``summary.json`` last."""
    found = [run / n for n in ("per_image.npz", "per_image_full_res.npz") if (run / n).is_file()]
    found += sorted(run.glob("eval_*.json"))
    return found + ([run / "summary.json"] if (run / "summary.json").is_file() else [])


def _link(src: Path, dst: Path) -> None:
    """``dst`` names ``src``'s content (a hard link; a copy where the file system has none)."""
    if dst.exists() and os.path.samefile(src, dst):
        return
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)


def _destination(run: Path, epochs: int) -> Path:
    """``history/N_epochs``, or ``N_epochs-K`` beside a complete one of the same length."""
    base = run / HISTORY_DIR / f"{epochs}_epochs"
    dest, n = base, 1
    while (dest / "summary.json").exists():
        dest, n = base.with_name(f"{base.name}-{n}"), n + 1
    return dest


def _held(path: Path, run: Path) -> bool:
    """Whether a history folder of ``run`` holds ``path``'s content under its name (the same file)."""
    return any(os.path.samefile(path, kept) for kept in (run / HISTORY_DIR).glob(f"*/{path.name}"))


def mark_unfinished(run: Path) -> Path | None:
    """Move a finished run's results to its history folder (see the module); returns that folder,
    None when the run was not finished. Called under the run's lock, on the main rank."""
    summary = run / "summary.json"
    dest = None
    if summary.is_file():
        dest = _destination(run, int(read_json(summary).get("epochs", 0)))
        dest.mkdir(parents=True, exist_ok=True)
        for path in result_files(run)[:-1]:
            _link(path, dest / path.name)
        os.replace(summary, dest / "summary.json")  # the switch: from here on the run is unfinished
    if (run / HISTORY_DIR).is_dir():
        for path in result_files(run):  # stale names whose content the history holds (a kill just after the switch)
            if _held(path, run):
                path.unlink()
    return dest
