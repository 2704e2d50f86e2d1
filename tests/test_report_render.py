"""The printed report: headless Chromium lays the notebook's HTML out on pages (skipped without Chromium)."""

from __future__ import annotations

import re

import nbformat
import pytest

from cityseg_lib.report import render


def _pages(pdf: bytes) -> list[bytes]:
    """The page objects of a PDF as Chromium writes it (uncompressed dictionaries)."""
    starts = [m.start() for m in re.finditer(rb"/Type\s*/Page\b(?!s)", pdf)]
    return [pdf[i:pdf.index(b"endobj", i)] for i in starts]


def _blank(pdf: bytes) -> list[int]:
    """1-based numbers of the pages that draw no text and no image."""
    return [n for n, page in enumerate(_pages(pdf), 1) if b"/Font" not in page and b"/XObject" not in page]


@pytest.mark.skipif(render.find_chromium() is None, reason="no Chromium installed (make pdf-tools installs it)")
@pytest.mark.parametrize("space_px", [856, 904, 940, 988])
def test_a_heading_near_the_foot_of_a_page_and_a_long_output_print_without_a_blank_page(tmp_path, space_px):
    """A section heading that lands near the foot of a page, then one output (a list) longer than a
    page, as the report's conclusions are. JupyterLab's print style keeps each output in one piece,
    so Chromium pushed the list on and left page 2 blank at these heights (measured); the report's
    style lets outputs break between lines."""
    out = nbformat.v4.new_output
    items = "\n".join(f"- **Finding {i}.** " + "a sentence of the conclusion " * 9 for i in range(30))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("", outputs=[out("display_data", data={
                    "text/html": f'<p>Top.</p><div style="height:{space_px}px"></div>', "text/plain": "space"})]),
                nbformat.v4.new_markdown_cell("## 6 Conclusions"),
                nbformat.v4.new_code_cell("", outputs=[out("display_data", data={"text/markdown": items,
                                                                                 "text/plain": "list"})])]
    executed = tmp_path / "report.ipynb"
    nbformat.write(nb, str(executed))
    html = render.render_html(executed, tmp_path / "report.html", "test")
    pdf = render.render_pdf(html, tmp_path / "report.pdf").read_bytes()
    assert len(_pages(pdf)) >= 3 and _blank(pdf) == []
