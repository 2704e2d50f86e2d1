"""``cityseg report``: run the seven study notebooks with papermill and render the written report.

For a profile ``P`` (``demo``, ``full`` or ``smoke``)::

    data        params/P/data.yaml  -> generated demo data (if the profile uses it and it is missing)
    notebooks   notebooks/0N_*.ipynb + params/P/0N_*.yaml -> reports/P/executed/0N_*.ipynb
    results     each notebook's last cell -> reports/P/results/0N.json (+ timings.json from here)
    report      reports/P/executed/07_report.ipynb -> reports/P/report.html (no code, images embedded)
                                                    -> reports/P/report.pdf  (headless Chromium)

Training runs live in ``runs/P/``; a finished run with the same config is reused, so rebuilding
the report after editing only ``07_report.ipynb`` costs seconds (``only=["07"]`` skips even the
reuse checks). ``retrain=True`` trains everything again. A failing notebook stops the build with
one :class:`CitysegError` naming the notebook, the cell and the error; its partly executed copy
stays in ``reports/P/executed/``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from .config import load_yaml
from .errors import CitysegError
from .paths import reports_dir

__all__ = [
    "NOTEBOOKS",
    "notebook_paths",
    "notebook_params",
    "run_notebook",
    "render_html",
    "render_pdf",
    "find_chromium",
    "run_report",
    "add_report_arguments",
    "report_from_args",
]

#: The study, in order; ``07_report`` renders the written report from the others' artifacts.
NOTEBOOKS = (
    "01_data_exploration",
    "02_baseline_fcn",
    "03_unet",
    "04_swin2_jnet",
    "05_loss_comparison",
    "06_halving_sweep",
    "07_report",
)
REPORT_NOTEBOOK = NOTEBOOKS[-1]
KERNEL = "python3"
_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_PDF_HELP = ("no PDF converter found: install Chromium (`make pdf-tools` as root, or `sudo apt-get install "
             "chromium`), or xelatex for nbconvert's LaTeX PDF (`sudo apt-get install texlive-xetex`)")


# ----------------------------------------------------------------------------- locations


def _source_root() -> Path:
    from .study import source_root

    return source_root()


def notebook_paths() -> dict[str, Path]:
    """``{stem: notebooks/STEM.ipynb}`` for the seven notebooks (all must exist)."""
    folder = _source_root() / "notebooks"
    out = {}
    for stem in NOTEBOOKS:
        path = folder / f"{stem}.ipynb"
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
    """Papermill parameters of a notebook: ``params/PROFILE/STEM.yaml`` + profile/retrain + overrides."""
    import papermill as pm

    from .study import params_dir

    known = set(pm.inspect_notebook(str(notebook_paths()[stem])))
    path = params_dir(profile) / f"{stem}.yaml"
    params = load_yaml(path) if path.is_file() else {}
    for source, values in ((str(path), params), (f"override of {stem}", overrides or {})):
        unknown = sorted(set(values) - known)
        if unknown:  # papermill would only warn and run with the default
            raise CitysegError(f"{source}: unknown parameter {unknown[0]!r} (the notebook has: {', '.join(sorted(known))})")
    params["profile"] = profile
    if "retrain" in known:
        params["retrain"] = bool(retrain)
    params.update(overrides or {})
    return params


# ----------------------------------------------------------------------------- execution


def _error_line(err: Any) -> str:
    text = f"{getattr(err, 'ename', type(err).__name__)}: {getattr(err, 'evalue', str(err))}"
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


def run_notebook(source: Path, output: Path, parameters: dict, cwd: Path | None = None) -> float:
    """Execute ``source`` into ``output`` with papermill; returns wall seconds.

    A cell that raises becomes one :class:`CitysegError` naming the notebook, the cell (its
    index in the executed copy, which counts papermill's injected-parameters cell) and the
    error; the partly executed copy is kept at ``output``.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    output.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(source), str(output), parameters=parameters, kernel_name=KERNEL, cwd=str(cwd or source.parent),
            progress_bar=False, log_output=False, report_mode=False,
        )
    except PapermillExecutionError as err:
        raise CitysegError(
            f"notebook {source.name} failed in cell {err.cell_index} (execution count {err.exec_count}): "
            f"{_error_line(err)}; partly executed copy: {output}"
        ) from None
    except Exception as err:  # the kernel died, or papermill could not start it
        if isinstance(err, CitysegError):
            raise
        raise CitysegError(f"notebook {source.name} could not run: {_error_line(err)}; partial copy: {output}") from None
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------- rendering

_EXTRA_CSS = """
<style>
  body { max-width: 1100px; margin: 0 auto; }
  .jp-Cell { padding: 0; }
  /* text from Markdown cells and text displayed by code cells line up on one margin */
  .jp-MarkdownOutput, .jp-OutputArea-output.jp-RenderedHTMLCommon, .jp-OutputArea-output { padding-left: 0; padding-right: 0; }
  .jp-RenderedHTMLCommon { padding-left: 0; padding-right: 0; }
  .jp-OutputArea-output img { max-width: 100%; height: auto; }
  .jp-RenderedHTMLCommon table { font-size: 12px; margin: 0.4em 0 1em 0; }
  .jp-RenderedHTMLCommon caption { caption-side: bottom; font-style: italic; text-align: left; padding-top: 4px; }
  .jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th { padding: 2px 8px; }
  .jp-RenderedHTMLCommon table.left td, .jp-RenderedHTMLCommon table.left th { text-align: left; }
  .figcaption { font-style: italic; font-size: 12px; margin: 0 0 1.2em 0; }
  .banner { border: 2px solid #c62828; background: #fff3f3; padding: 6px 12px; margin: 8px 0; }
  @media print {
    /* break between paragraphs, never inside a figure or table, and keep captions and headings
       with what they belong to (whole cells are often a page long: keeping them together left
       half-empty pages) */
    img, table, .figcaption { break-inside: avoid-page; }
    .jp-OutputArea-output:has(> img) { break-after: avoid-page; }
    h1, h2, h3, h4 { break-after: avoid-page; }
    p, li { orphans: 3; widows: 3; }
  }
</style>
"""


def _caption_alt_texts(body: str) -> str:
    """Give every figure the text of the caption that follows it as its ``alt`` (accessibility)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(body, features="html.parser")
    for img in soup.find_all("img"):
        caption = img.find_next("p", class_="figcaption")
        if caption is not None:
            img["alt"] = " ".join(caption.get_text(" ").split())
    return str(soup)


def render_html(executed: Path, html_path: Path, title: str) -> Path:
    """The executed report notebook as HTML: no code cells or prompts, no stderr, images embedded."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(executed), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":  # warnings and logs are not part of the report
            cell.outputs = [o for o in cell.get("outputs", []) if not (o.get("output_type") == "stream"
                                                                       and o.get("name") == "stderr")]
    nb.metadata["title"] = title
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
                            embed_images=True)
    exporter.log.setLevel(logging.ERROR)  # alt texts are added below, from the figure captions
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    body = _caption_alt_texts(body).replace("</head>", _EXTRA_CSS + "</head>", 1)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(body, encoding="utf-8")
    return html_path


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable (``$CITYSEG_CHROMIUM`` first), or None."""
    env = os.environ.get("CITYSEG_CHROMIUM")
    if env and Path(env).is_file():
        return env
    for name in _CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def render_pdf(html_path: Path, pdf_path: Path, timeout: int = 180) -> Path | None:
    """Print the HTML to PDF with headless Chromium; None (and a hint on what to install) without it."""
    chromium = find_chromium()
    if chromium is None:
        print(f"report: {_PDF_HELP}; wrote the HTML only")
        return None
    with tempfile.TemporaryDirectory(prefix="cityseg-chromium-") as profile_dir:
        cmd = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile_dir}",
            f"--print-to-pdf={pdf_path}", "--no-pdf-header-footer", html_path.resolve().as_uri(),
        ]
        pdf_path.unlink(missing_ok=True)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise CitysegError(f"{chromium} did not print {html_path} to PDF within {timeout} s") from None
    if not pdf_path.is_file() or pdf_path.stat().st_size == 0:
        tail = " ".join((proc.stderr or "").split()[-30:])
        raise CitysegError(f"{chromium} failed to print {html_path} to PDF (exit {proc.returncode}): {tail}")
    return pdf_path


# ----------------------------------------------------------------------------- the whole report


def _write_timings(path: Path, timings: dict) -> None:
    from .checkpoint import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(timings, indent=2))


def run_report(
    profile: str = "demo",
    retrain: bool = False,
    only: list[str] | tuple[str, ...] | str | None = None,
    overrides: dict[str, dict] | None = None,
    pdf: bool = True,
    verbose: bool = True,
) -> Path:
    """Build ``reports/PROFILE/report.html`` (and ``report.pdf``); returns the HTML path.

    Args:
        profile: params profile (``params/PROFILE/``): demo, full or smoke.
        retrain: delete and retrain every run of the executed notebooks instead of reusing them.
        only: run just these notebooks (stems or numbers, e.g. ``["07"]``); the others' results
            files must exist from an earlier build. None runs all seven.
        overrides: extra parameters per notebook, ``{"03": {"epochs": 2}}`` (stem or number).
        pdf: also print the PDF (skipped with a hint when no Chromium is installed).
    """
    from .study import data_settings, ensure_data, results_dir

    selected = _select(only)
    paths = notebook_paths()
    per_nb: dict[str, dict] = {}
    for key, values in (overrides or {}).items():
        for stem in _select([key]):
            per_nb.setdefault(stem, {}).update(values)

    out_dir = reports_dir() / profile
    executed_dir = out_dir / "executed"
    timings_path = results_dir(profile) / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    timings.setdefault("notebooks", {})
    t_start = time.perf_counter()

    # data: the notebooks would make it on demand; doing it here times it separately
    settings = data_settings(profile)
    params01 = notebook_params(profile, NOTEBOOKS[0], overrides=per_nb.get(NOTEBOOKS[0]))
    if settings.get("generate") and not params01.get("data_root") and not os.environ.get("CITYSCAPES_DATASET"):
        t0 = time.perf_counter()
        root = ensure_data("", profile)
        timings["data_s"] = round(time.perf_counter() - t0, 1)
        if verbose:
            print(f"report[{profile}]: data ready at {root} ({timings['data_s']} s)")

    for stem in selected:
        params = notebook_params(profile, stem, retrain, per_nb.get(stem))
        target = executed_dir / f"{stem}.ipynb"
        if verbose:
            print(f"report[{profile}]: running {stem} ...", flush=True)
        seconds = run_notebook(paths[stem], target, params)
        timings["notebooks"][stem] = {"seconds": round(seconds, 1), "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
        timings["notebooks"] = {s: timings["notebooks"][s] for s in NOTEBOOKS if s in timings["notebooks"]}
        _write_timings(timings_path, timings)  # 07 reads it for the provenance block
        if verbose:
            print(f"report[{profile}]: {stem} done in {seconds:.0f} s", flush=True)

    executed = executed_dir / f"{REPORT_NOTEBOOK}.ipynb"
    if not executed.is_file():
        raise CitysegError(f"{executed} is missing: run the report notebook (only=None or only=['07'])")
    title = f"Semantic segmentation of street scenes: a reproducible study ({profile} profile)"
    html = render_html(executed, out_dir / "report.html", title)
    if pdf:
        render_pdf(html, out_dir / "report.pdf")
    timings["last_build_s"] = round(time.perf_counter() - t_start, 1)
    _write_timings(timings_path, timings)
    if verbose:
        pdf_note = " and report.pdf" if (out_dir / "report.pdf").is_file() and pdf else ""
        print(f"report[{profile}]: wrote {html}{pdf_note} in {timings['last_build_s']:.0f} s")
    return html


# ----------------------------------------------------------------------------- CLI glue


def add_report_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``cityseg report``; pair with :func:`report_from_args`."""
    parser.add_argument("--profile", default="demo", help="params profile: demo (default), full or smoke")
    parser.add_argument("--retrain", action="store_true", help="train every run again instead of reusing finished runs")
    parser.add_argument("--only", nargs="+", default=None, metavar="NB",
                        help="run only these notebooks (e.g. 07 to re-render the report from existing results)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NB.KEY=VALUE",
                        help="override a notebook parameter, e.g. 03.epochs=2 (value in YAML syntax)")
    parser.add_argument("--no-pdf", dest="pdf", action="store_false", help="write the HTML only")
    return parser


def _parse_sets(items: list[str]) -> dict[str, dict]:
    import yaml

    out: dict[str, dict] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        nb, dot, name = key.partition(".")
        if not sep or not dot or not nb or not name:
            raise CitysegError(f"--set {item!r} is not NB.KEY=VALUE (e.g. 03.epochs=2)")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            raise CitysegError(f"--set {item!r}: value is not valid YAML") from None
        out.setdefault(nb, {})[name] = value
    return out


def report_from_args(args: argparse.Namespace) -> int:
    """Run :func:`run_report` from parsed :func:`add_report_arguments` arguments; returns 0."""
    run_report(args.profile, retrain=args.retrain, only=args.only, overrides=_parse_sets(args.overrides), pdf=args.pdf)
    return 0
