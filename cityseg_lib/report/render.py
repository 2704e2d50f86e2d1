"""Rendering the executed report notebook: HTML without code (images embedded), PDF by headless Chromium."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from cityseg_lib.errors import CitysegError
from cityseg_lib.files import atomic_write_text

__all__ = ["render_html", "render_pdf", "find_chromium"]

_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_PDF_HELP = ("no PDF converter found: install Chromium (`make pdf-tools` as root, or `sudo apt-get install "
             "chromium`), or xelatex for nbconvert's LaTeX PDF (`sudo apt-get install texlive-xetex`)")

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
       half-empty pages). JupyterLab's own print style keeps every output together
       (.jp-OutputArea-child, break-inside: avoid-page): an output taller than the space left on
       a page, such as the list of conclusions, was pushed on and left a blank page before it. */
    .jp-OutputArea-child { break-inside: auto; }
    .jp-MarkdownCell { break-after: avoid-page; }  /* a section heading stays with the output after it */
    img, table, .figcaption { break-inside: avoid-page; }
    .jp-OutputArea-output:has(> img) { break-after: avoid-page; }
    h1, h2, h3, h4 { break-after: avoid-page; }
    p, li { orphans: 3; widows: 3; }
    /* the reference list is short: one page, never its last entry alone on a page of its own */
    #References + ol { break-inside: avoid-page; }
    /* a number and its interval, "21.0 (20.1-21.7)", stay on one line: the hyphen of an interval
       is a break opportunity, and narrow cells split them over three lines. Labels (the first
       column) and the text tables (.left) still wrap; headers wrap at their spaces. */
    .jp-RenderedHTMLCommon table { font-size: 11px; }
    .jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th { padding: 2px 5px; }
    table.report-table:not(.left) td:not(:first-child) { white-space: nowrap; }
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
    atomic_write_text(html_path, body)  # a full disk leaves the earlier build's report.html whole
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


def _complete_pdf(path: Path) -> bool:
    """Whether ``path`` is a whole PDF: ``%PDF-`` at its start, ``%%EOF`` at its end. On a full disk
    Chromium stops writing without a word and exits 0, leaving the first pages' bytes only."""
    try:
        with open(path, "rb") as f:
            head = f.read(5)
            f.seek(max(f.seek(0, os.SEEK_END) - 64, 0))
            return head == b"%PDF-" and f.read().rstrip().endswith(b"%%EOF")
    except OSError:
        return False


def render_pdf(html_path: Path, pdf_path: Path, timeout: int = 180) -> Path | None:
    """Print the HTML to PDF with headless Chromium; None (and a hint on what to install) without it.

    Chromium prints to a temporary file beside ``pdf_path``, renamed over it once it is a whole PDF,
    so a failed print (a full disk) leaves the earlier build's ``report.pdf`` as it was."""
    chromium = find_chromium()
    if chromium is None:
        print(f"report: {_PDF_HELP}; wrote the HTML only")
        return None
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = pdf_path.with_name(f".{pdf_path.name}.{os.getpid()}.tmp.pdf")  # made by Chromium: its usual mode
    try:
        with tempfile.TemporaryDirectory(prefix="cityseg-chromium-") as profile_dir:
            cmd = [
                chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile_dir}",
                f"--print-to-pdf={tmp}", "--no-pdf-header-footer", html_path.resolve().as_uri(),
            ]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise CitysegError(f"{chromium} did not print {html_path} to PDF within {timeout} s") from None
        if not _complete_pdf(tmp):
            size = tmp.stat().st_size if tmp.is_file() else 0
            why = (f"it wrote {size} bytes and exited 0: is the disk full?" if proc.returncode == 0
                   else f"exit {proc.returncode}: {' '.join((proc.stderr or '').split()[-30:])}")
            raise CitysegError(f"{chromium} failed to print {html_path} to PDF ({why}); {pdf_path} is unchanged")
        os.replace(tmp, pdf_path)
    finally:
        tmp.unlink(missing_ok=True)
    return pdf_path
