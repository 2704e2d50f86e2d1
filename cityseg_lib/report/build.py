"""``cityseg report``: check everything, run the seven study notebooks with papermill, render the report.

For a profile ``P`` (``demo``, ``full`` or ``smoke``)::

    checks      every notebook's params and --set overrides (keys, types, the TrainConfigs and sweep
                configs they become), the dataset root, pretrained weights (:mod:`.preflight`)
    data        params/P/data.yaml  -> generated demo data (if the profile uses it and it is missing)
    notebooks   notebooks/0N_*.ipynb + params/P/0N_*.yaml -> reports/P/executed/0N_*.ipynb
    results     each notebook's last cell -> reports/P/results/0N.json, a typed result
                (+ timings.json from here, + reports/P/headline.json from the report notebook)
    report      reports/P/executed/07_report.ipynb -> reports/P/report.html (no code, images embedded)
                                                    -> reports/P/report.pdf  (headless Chromium)

Any failure of the checks is one :class:`CitysegError` line before the first notebook starts.
Training runs live in ``runs/P/``; a finished run with the same config is reused, so rebuilding
after editing only ``07_report.ipynb`` costs seconds (``only=["07"]`` skips even the reuse checks);
``retrain=True`` trains everything again. Earlier builds' results that no longer fit the runs and data
(:mod:`.freshness`) are refused before any notebook, naming the notebooks to run again. A failing notebook
stops the build with one line naming the notebook, the cell and the error; its partial copy stays in executed/.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from cityseg_lib.errors import CitysegError, one_line
from cityseg_lib.paths import notebooks_dir, params_dir, reports_dir
from cityseg_lib.report.kernel import kernel_manager_class, stop_kernels
from cityseg_lib.report.render import find_chromium, render_html, render_pdf
from cityseg_lib.strict import load_yaml

__all__ = ["NOTEBOOKS", "notebook_paths", "notebook_params", "run_notebook", "run_report", "find_chromium",
           "check_earlier_results"]

#: The study, in order; ``07_report`` renders the written report from the others' results.
NOTEBOOKS = ("01_data_exploration", "02_baseline_fcn", "03_unet", "04_swin2_jnet", "05_loss_comparison",
             "06_halving_sweep", "07_report")
REPORT_NOTEBOOK = NOTEBOOKS[-1]
KERNEL = "python3"
#: Lines of a notebook's output echoed to the terminal while it runs: the run store's and the sweep's
#: progress, and why a run is new beside an earlier one of its name (after an upgrade: why a study trains again).
_PROGRESS = re.compile(r"^\S+: (reusing the finished run|resuming |trained \d+ epochs?|retrain requested|a new run )"
                       r"|^rung \d+: \d+ trial\(s\) start beside|^winner |^wrote ")


def notebook_paths() -> dict[str, Path]:
    """``{stem: notebooks/STEM.ipynb}`` for the seven notebooks (all must exist)."""
    out = {}
    for stem in NOTEBOOKS:
        path = notebooks_dir() / f"{stem}.ipynb"
        if not path.is_file():
            raise CitysegError(f"{path}: notebook missing (is the project checkout complete?)")
        out[stem] = path
    return out


def _select(only: list[str] | tuple[str, ...] | str | None) -> list[str]:
    """Notebook stems from ``only`` (full stems, ``01``-style numbers, or None for all)."""
    if only is None:
        return list(NOTEBOOKS)
    if isinstance(only, str):
        only = [p for p in only.replace(",", " ").split() if p]
    chosen = []
    for item in only:
        item = str(item).removesuffix(".ipynb")
        matches = [s for s in NOTEBOOKS if s == item or s.split("_")[0] == item.zfill(2)]
        if not matches:
            raise CitysegError(f"unknown notebook {item!r}; valid: {', '.join(NOTEBOOKS)} (or their numbers 01..07)")
        chosen += [m for m in matches if m not in chosen]
    return [s for s in NOTEBOOKS if s in chosen]


def notebook_params(profile: str, stem: str, retrain: bool = False, overrides: dict | None = None) -> dict:
    """Papermill parameters of a notebook: ``params/PROFILE/STEM.yaml`` + profile/retrain + overrides.

    Unknown keys are errors (papermill would only warn and run with the default).
    """
    import papermill as pm

    known = set(pm.inspect_notebook(str(notebook_paths()[stem])))
    path = params_dir(profile) / f"{stem}.yaml"
    params = load_yaml(path) if path.is_file() else {}
    for source, values in ((str(path), params), (f"--set {stem[:2]}.", overrides or {})):
        unknown = sorted(set(values) - known)
        if unknown:
            where = f"{source}{unknown[0]}" if source.startswith("--set") else source
            raise CitysegError(f"{where}: unknown parameter {unknown[0]!r} of notebook {stem} "
                               f"(it has: {', '.join(sorted(known))})")
    for source, values in ((str(path), params), (f"--set {stem[:2]}.profile", overrides or {})):
        if values.get("profile", profile) != profile:  # the profile is the build's, checked as one
            raise CitysegError(f"{source}: profile={values['profile']!r} differs from the build's profile {profile!r}; "
                               "choose the profile with --profile")
    params["profile"] = profile
    if "retrain" in known:
        params["retrain"] = bool(retrain)
    params.update(overrides or {})
    return params


# ----------------------------------------------------------------------------- execution


class _Progress:
    """A papermill ``stdout_file`` that echoes a notebook's progress lines (:data:`_PROGRESS`)."""

    def __init__(self, prefix: str, echo: bool) -> None:
        self.prefix, self.echo, self.pending = prefix, echo, ""

    def write(self, text: str) -> None:
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            if self.echo and _PROGRESS.search(line):
                print(f"{self.prefix}{line}", flush=True)

    def flush(self) -> None:
        pass


def _error_line(err: Any) -> str:
    """A notebook's error (papermill's ``ename``/``evalue``, or any exception) as one line."""
    return one_line(f"{getattr(err, 'ename', type(err).__name__)}: {getattr(err, 'evalue', str(err))}")


def run_notebook(source: Path, output: Path, parameters: dict, cwd: Path | None = None, echo: str = "") -> float:
    """Execute ``source`` into ``output`` with papermill; returns wall seconds.

    ``echo``: a prefix to print the notebook's progress lines with (nothing when empty). A cell
    that raises becomes one :class:`CitysegError` naming the notebook, the cell (its index in the
    executed copy, which counts papermill's injected-parameters cell) and the error; the partly
    executed copy is kept at ``output``. The kernel process's own standard error goes to
    ``output`` with the suffix ``.kernel.log`` (see :func:`kernel_manager_class`).
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    output.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(source), str(output), parameters=parameters, kernel_name=KERNEL, cwd=str(cwd or source.parent),
            progress_bar=False, log_output=False, report_mode=False, stdout_file=_Progress(echo, bool(echo)),
            kernel_manager_class=kernel_manager_class(output.with_suffix(".kernel.log")),
        )
    except PapermillExecutionError as err:
        raise CitysegError(
            f"notebook {source.name} failed in cell {err.cell_index} (execution count {err.exec_count}): "
            f"{_error_line(err)}; partly executed copy: {output}"
        ) from None
    except Exception as err:  # the kernel died, or papermill could not start it
        if isinstance(err, CitysegError):
            raise
        raise CitysegError(f"notebook {source.name} could not run: {_error_line(err)}; partial copy: {output}; "
                           f"the kernel's log: {output.with_suffix('.kernel.log')}") from None
    return time.perf_counter() - t0


def check_earlier_results(profile: str, selected: list[str]) -> None:
    """The results files that the ``selected`` notebooks read from notebooks not run now (07 reads
    all six, 05 and 06 their main runs') exist and load, checked before any kernel starts: one line
    naming the missing or broken file."""
    from cityseg_lib.execute.notebooks import DEPENDS
    from cityseg_lib.report.notebook_results import load_result

    for stem in selected:
        reads = NOTEBOOKS[:-1] if stem == REPORT_NOTEBOOK else DEPENDS.get(stem, ())
        for earlier in (s for s in reads if s not in selected):
            try:
                load_result(profile, earlier[:2])
            except CitysegError as err:
                raise CitysegError(f"notebook {stem} reads the result of {earlier}, which this build does not run: "
                                   f"{err}") from None


def _write_timings(path: Path, timings: dict) -> None:
    from cityseg_lib.files import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(timings, indent=2))


def run_report(
    profile: str = "demo",
    retrain: bool = False,
    only: list[str] | tuple[str, ...] | str | None = None,
    overrides: dict[str, dict] | None = None,
    pdf: bool = True,
    verbose: bool = True,
    executor: str | None = None,
) -> Path:
    """Build ``reports/PROFILE/report.html`` (and ``report.pdf``); returns the HTML path.

    Args:
        profile: params profile (``params/PROFILE/``): demo, full or smoke.
        retrain: train every run of the executed notebooks again instead of reusing them (the earlier
            runs and sweeps move to ``.replaced/`` beside them).
        only: run just these notebooks (stems or numbers, e.g. ``["07"]``); the others' results
            files must exist from an earlier build. None runs all seven.
        overrides: extra parameters per notebook, ``{"03": {"train": {"epochs": 2}}}`` (stem or number).
        pdf: also print the PDF (skipped with a hint when no Chromium is installed).
        executor: where the notebooks' runs train, ``local`` or ``ray`` (None: ``$CITYSEG_EXECUTOR``,
            else local); the notebooks see it as ``$CITYSEG_EXECUTOR``. With ``ray`` one cluster
            serves every notebook and independent notebooks (02-04, then 05-06) run at once.

    One build of a profile at a time (``reports/PROFILE/.lock``): two would train the same runs
    and write the same results files; the second is refused at once, naming the first.
    """
    from cityseg_lib.execute import use_executor
    from cityseg_lib.lock import folder_lock
    from cityseg_lib.report.preflight import check

    kind = use_executor(executor)
    selected = _select(only)
    for key, values in (overrides or {}).items():  # a --set of a notebook not run would be silently ignored
        for stem in set(_select([key])) - set(selected):
            raise CitysegError(f"--set {key}.{next(iter(values))}: notebook {stem} is not run (--only "
                               f"{' '.join(x[:2] for x in selected)}); add {stem[:2]} to --only or drop the --set")
    params, configs = check(profile, retrain, overrides, selected)  # one line and nothing run, on any problem
    _absolute_paths(params)  # the kernels run in notebooks/: a relative path would point there
    check_earlier_results(profile, selected)  # --only: what the notebooks read from those not run
    with folder_lock(reports_dir() / profile, "cityseg report"):  # checked: now the folder may be made
        return _build(profile, params, configs, selected, kind, retrain, pdf, verbose)


def _build(profile: str, params: dict[str, dict], configs: dict, selected: list[str], kind: str, retrain: bool,
           pdf: bool, verbose: bool) -> Path:
    """The data, the notebooks and the rendering of a checked build (:func:`run_report`)."""
    from cityseg_lib.data.source import ensure_data
    from cityseg_lib.execute.notebooks import in_dependency_order, shared_cluster
    from cityseg_lib.report.freshness import check_fresh, planned_mains, render_hint, run_recorded
    from cityseg_lib.report.notebook_results import results_dir
    from cityseg_lib.report.preflight import check_run_lengths

    log = (lambda msg: print(f"report[{profile}]: {msg}", flush=True)) if verbose else (lambda msg: None)
    out_dir = reports_dir() / profile
    timings_path = results_dir(profile) / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    timings.setdefault("notebooks", {})
    t_start = time.perf_counter()
    log("checks passed (params, overrides, dataset root, weights)")

    # data: the notebooks would make it on demand; doing it here times it separately
    t0 = time.perf_counter()
    root = ensure_data(params[NOTEBOOKS[0]].get("data_root", ""), profile)
    timings["data_s"] = round(time.perf_counter() - t0, 1)
    log(f"data ready at {root} ({timings['data_s']} s)")
    if not retrain:
        check_run_lengths(configs, root, selected)  # a run an earlier build extended: refused before any notebook
    earlier = [s[:2] for s in NOTEBOOKS[:-1] if s not in selected]
    if REPORT_NOTEBOOK in selected:  # results of earlier builds that no longer fit: refused before any notebook
        check_fresh(profile, earlier, root, planned_mains(configs, root, selected), selected[:-1])

    paths = notebook_paths()
    echo = f"report[{profile}]:   " if verbose else ""
    with shared_cluster(kind, log) as parallel:
        def job(stem: str) -> float:
            return run_recorded(profile, stem[:2], run_notebook, paths[stem], out_dir / "executed" / f"{stem}.ipynb",
                                params[stem], None, echo)

        started = lambda stem: log(f"[{selected.index(stem) + 1}/{len(selected)}] {stem} ...")  # noqa: E731
        for stem, seconds in in_dependency_order(selected, job, parallel, started, stop_kernels):
            timings["notebooks"][stem] = {"seconds": round(seconds, 1), "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
            timings["notebooks"] = {s: timings["notebooks"][s] for s in NOTEBOOKS if s in timings["notebooks"]}
            _write_timings(timings_path, timings)  # 07 reads it for the provenance block
            log(f"[{selected.index(stem) + 1}/{len(selected)}] {stem} done in {seconds:.0f} s")

    executed = out_dir / "executed" / f"{REPORT_NOTEBOOK}.ipynb"
    if REPORT_NOTEBOOK not in selected:  # rendering the earlier 07 would show the earlier results as new
        _write_timings(timings_path, timings)
        log(f"report not rendered: {REPORT_NOTEBOOK} did not run; {render_hint(profile, earlier, root)}")
        return out_dir / "report.html"
    if not executed.is_file():
        raise CitysegError(f"{executed} is missing: run the report notebook (only=None or only=['07'])")
    title = f"Semantic segmentation of street scenes: a reproducible study ({profile} profile)"
    html = render_html(executed, out_dir / "report.html", title)
    if pdf:
        render_pdf(html, out_dir / "report.pdf")
    timings["last_build_s"] = round(time.perf_counter() - t_start, 1)
    _write_timings(timings_path, timings)
    pdf_note = " and report.pdf" if pdf and (out_dir / "report.pdf").is_file() else ""
    if not pdf and (out_dir / "report.pdf").is_file():
        pdf_note = f" (--no-pdf: {out_dir / 'report.pdf'} is an earlier build's)"
    log(f"wrote {html}{pdf_note} in {timings['last_build_s']:.0f} s")
    return html


def _absolute_paths(params: dict[str, dict]) -> None:
    """Make ``data_root`` and ``weights`` parameters and ``$CITYSCAPES_DATASET`` absolute, as this
    process reads them (the checks passed here): the notebooks' kernels start in ``notebooks/``."""
    for values in params.values():
        for key in ("data_root", "weights"):
            if isinstance(values.get(key), str) and values[key]:
                values[key] = str(Path(values[key]).expanduser().resolve())
    if os.environ.get("CITYSCAPES_DATASET"):
        os.environ["CITYSCAPES_DATASET"] = str(Path(os.environ["CITYSCAPES_DATASET"]).expanduser().resolve())
