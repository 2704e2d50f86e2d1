"""The file system as users have it: a disk that fills up mid-run, a read-only folder, a very long
path. A write that fails is one line naming the file and the cause (CLI: exit 2, no traceback),
leaves the previous file whole and no temporary file, and the same command goes on once there is
room again.

A full disk is simulated without root: :func:`full_disk` makes every file opened for writing below
a folder raise ``ENOSPC`` once a given number of bytes went into it, as a real one does (through
``open``, ``Path.open`` and ``os.fdopen``; torch, numpy and PIL write through those objects).
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
from contextlib import nullcontext
from pathlib import Path

import pytest
import torch

from cityseg_lib import runstore
from cityseg_lib.cli import main
from cityseg_lib.config import load_config
from cityseg_lib.train import engine
from cityseg_lib.train.checkpoint import load_checkpoint

TIME_COLUMNS = ["epoch_time_s", "train_images_per_s"]

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="full_disk names descriptors via /proc")


class _Filling:
    """A file whose writes fail with ENOSPC once the shared ``room`` (bytes) is used up."""

    def __init__(self, f, room: list[int]) -> None:
        self._f, self._room = f, room

    def write(self, data) -> int:
        n = data.nbytes if isinstance(data, memoryview) else len(data)
        if n > self._room[0]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room[0] -= n
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __iter__(self):
        return iter(self._f)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()


def full_disk(monkeypatch, folder: Path, room: int = 0) -> list[int]:
    """From now on files opened for writing below ``folder`` take ``room`` more bytes in all, then
    every write raises ``OSError(ENOSPC)``; returns the room left (a one-item list)."""
    folder, left, real_open = Path(folder).resolve(), [room], io.open

    def where(file) -> Path | None:
        try:
            return Path(os.readlink(f"/proc/self/fd/{file}") if isinstance(file, int) else file).resolve()
        except (OSError, TypeError):
            return None

    def filling_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        p = where(file)
        if any(c in mode for c in "wax+") and p is not None and folder in (p, *p.parents):
            return _Filling(f, left)
        return f

    monkeypatch.setattr(io, "open", filling_open)
    monkeypatch.setattr(builtins, "open", filling_open)
    return left


def read_only(monkeypatch, folder: Path) -> None:
    """From now on ``folder`` is on a read-only file system: opening a file below it for writing
    (``os.open``, as tempfile does, or ``open``) raises ``OSError(EROFS)`` naming it."""
    folder, real_os_open, real_open = Path(folder).resolve(), os.open, io.open
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT

    def refuse(path) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    def below(path) -> bool:
        return not isinstance(path, int) and folder in (p := Path(path).resolve(), *p.parents)

    def os_open(path, flags, *args, **kwargs):
        if flags & writing and below(path):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def py_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and below(file):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(io, "open", py_open)
    monkeypatch.setattr(builtins, "open", py_open)


def _values(root, runs, **extra) -> dict:
    return {"name": "r", "profile": "test", "runs_dir": str(runs), "data_root": str(root), "image_size": [32, 64],
            "model": "simple_fcn", "model_options": {"base_width": 4}, "epochs": 2, "batch_size": 2, "lr": 0.01,
            "step_size": 1, "gamma": 0.5, "progress": False, "full_res_eval": False, "num_workers": 0, **extra}


def _train_args(root, runs, **extra) -> list[str]:
    return [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in _values(root, runs, **extra).items()]


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def test_the_fault_injector_fills_the_disk_for_every_writer(tmp_path, monkeypatch):
    """What the tests below rely on: text, numpy, torch (into a file object, as the package saves)
    and os.fdopen writes all hit the full disk, and only below the folder."""
    import numpy as np
    from PIL import Image

    full_disk(monkeypatch, tmp_path, room=10)
    (tmp_path / "ok.txt").write_text("0123456789")
    for name, write in {"text": lambda: (tmp_path / "a.txt").write_text("x"),
                        "numpy": lambda: np.save(tmp_path / "a.npy", np.zeros(4)),
                        "PIL": lambda: Image.new("L", (4, 4)).save(tmp_path / "a.png"),
                        "torch": lambda: torch.save({"w": torch.zeros(4)}, open(tmp_path / "a.pt", "wb")),
                        "fdopen": lambda: os.fdopen(os.open(tmp_path / "b", os.O_CREAT | os.O_WRONLY), "wb")
                        .write(b"x"),
                        }.items():
        with pytest.raises((OSError, RuntimeError)):
            write()
            pytest.fail(f"{name}: wrote on a full disk")
    (tmp_path.parent / "elsewhere.txt").write_text("other disks are not full")


# ----------------------------------------------------------------------------- training runs


@pytest.mark.parametrize("room", [0, 20_000], ids=["at-its-start", "halfway"])
def test_a_full_disk_at_a_checkpoint_is_one_line_keeps_the_last_one_and_resumes_exactly(demo_root, tmp_path,
                                                                                       monkeypatch, capsys, room):
    """The disk fills while epoch 2's last.pt is written (at its first byte: an OSError without a
    path; halfway: torch's "unexpected pos" RuntimeError, a traceback): one line naming last.pt and
    the cause, epoch 1's last.pt whole, no temporary file, and ``--resume`` after space is freed
    ends as the uninterrupted run."""
    straight = engine.fit(load_config(None, _values(demo_root, tmp_path / "straight")))
    runs = tmp_path / "runs"
    real_save, calls = engine.save_checkpoint, [0]

    def save_then_fill(path, state):
        calls[0] += 1
        if calls[0] == 3:  # epoch 1: last.pt, best.pt; epoch 2: last.pt on a full disk
            full_disk(m, runs, room)
        return real_save(path, state)

    with monkeypatch.context() as m:
        m.setattr(engine, "save_checkpoint", save_then_fill)
        assert main(["train", *_train_args(demo_root, runs)]) == 2
    run = next((runs / "test").iterdir())
    _one_line_error(capsys, f"{run / 'last.pt'}: No space left on device")
    assert load_checkpoint(run / "last.pt")["epoch"] == 1
    assert not list(run.glob(".*.tmp")) and not (run / "summary.json").exists()

    assert main(["train", *_train_args(demo_root, runs), "--resume"]) == 0  # the space is back
    assert runstore.load_metrics(run).drop(columns=TIME_COLUMNS).equals(
        runstore.load_metrics(straight).drop(columns=TIME_COLUMNS))
    for name in ("last.pt", "best.pt"):
        a, b = load_checkpoint(run / name)["model"], load_checkpoint(straight / name)["model"]
        assert all(torch.equal(a[k], b[k]) for k in a), name


# ----------------------------------------------------------------------------- the sample cache


def test_a_full_cache_disk_serves_the_pngs_and_keeps_no_partial_entry(demo_root, tmp_path, monkeypatch):
    """The cache is a speed-up: a failed entry write leaves no file and a warning, and later samples
    are served without trying again; the entries written before the disk filled stay valid."""
    import numpy as np

    from cityseg_lib.data.dataset import CityscapesSegmentation, preprocess_sample

    ds = CityscapesSegmentation(demo_root, "train", size=(32, 64), cache_dir=tmp_path / "cache")
    full_disk(monkeypatch, tmp_path / "cache", room=32 * 64 * 4 + 200)  # one entry, then full (halfway the next)
    with pytest.warns(RuntimeWarning, match=f"{ds.cache.dir}: cannot write to the sample cache"):
        arrays = [ds.load_array(i) for i in range(3)]
    monkeypatch.undo()
    assert all(np.array_equal(a, preprocess_sample(s, (32, 64))) for a, s in zip(arrays, ds.samples))
    assert [p.name for p in ds.cache.dir.iterdir()] == [ds.cache.path_for(ds.samples[0]).name]
    assert np.array_equal(np.load(ds.cache.path_for(ds.samples[0])), arrays[0])


def test_training_goes_on_when_the_cache_disk_is_full(demo_root, tmp_path, monkeypatch, capsys):
    """In a DataLoader worker the cache's failed write was a traceback through the CLI (torch
    re-raises a worker's OSError with the worker's traceback as its message), in the main process
    numpy's "8192 requested and 3968 written", naming no file."""
    for workers in (0, 1):
        cache = tmp_path / f"cache{workers}"
        full_disk(monkeypatch, cache, room=20_000)
        # the warning of a DataLoader worker goes to that process's stderr
        with pytest.warns(RuntimeWarning, match="cannot write to the sample cache") if not workers else nullcontext():
            assert main(["train", *_train_args(demo_root, tmp_path / f"runs{workers}", epochs=1, num_workers=workers,
                                               cache_dir=str(cache))]) == 0, capsys.readouterr().err
        monkeypatch.undo()
        assert not list(cache.rglob("*.tmp"))


def test_a_run_started_on_a_full_disk_names_the_file_it_could_not_write(demo_root, tmp_path, monkeypatch, capsys):
    """The first write of a new run is its lock's holder line (``os.pwrite``), which names no file."""
    from cityseg_lib import lock

    def no_room(fd, data, offset):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(lock.os, "pwrite", no_room)
    assert main(["train", *_train_args(demo_root, tmp_path)]) == 2
    (run,) = (tmp_path / "test").iterdir()
    _one_line_error(capsys, f"{run / '.lock'}: No space left on device")


# ----------------------------------------------------------------------------- the demo dataset


def test_demo_data_on_a_full_disk_names_the_file_keeps_no_partial_png_and_is_redone(tmp_path, monkeypatch, capsys):
    """The generator's failed PNG write named no file ("No space left on device"); PIL removes the
    file it could not finish, and the same command with room replaces the partial dataset."""
    from PIL import Image

    out = tmp_path / "demo"
    args = ["make-demo-data", str(out), "--train", "3", "--val", "1", "--test", "0", "--size", "64x32",
            "--workers", "1"]
    full_disk(monkeypatch, out, room=6_000)
    assert main(args) == 2
    monkeypatch.undo()
    err = _one_line_error(capsys, "No space left on device")
    failed = Path(err.split("error: ", 1)[1].rsplit(": No space", 1)[0])
    assert failed.suffix == ".png" and out in failed.parents and not failed.exists()
    for png in out.rglob("*.png"):  # every file left is whole
        with Image.open(png) as im:
            im.load()
    assert main(args) == 0
    straight = tmp_path / "straight"
    assert main([args[0], str(straight), *args[2:]]) == 0
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(straight) for p in straight.rglob("*") if p.is_file())
    assert all((out / f).read_bytes() == (straight / f).read_bytes() for f in files)


# ----------------------------------------------------------------------------- the report


def test_a_full_disk_while_rendering_keeps_the_earlier_report_html(tmp_path, monkeypatch):
    """report.html was written in place: a full disk left it empty (the earlier build's lost)."""
    import nbformat

    from cityseg_lib.report.render import render_html

    executed = tmp_path / "07_report.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Results")]), str(executed))
    html = tmp_path / "out" / "report.html"
    html.parent.mkdir()
    html.write_text("<html>the earlier build</html>")
    full_disk(monkeypatch, html.parent, room=100)
    with pytest.raises(OSError) as caught:
        render_html(executed, html, "test")
    assert caught.value.filename == str(html) and caught.value.errno == errno.ENOSPC
    assert html.read_text() == "<html>the earlier build</html>"
    assert [p.name for p in html.parent.iterdir()] == [html.name]


_FAKE_CHROMIUM = """#!/bin/sh
for arg in "$@"; do case "$arg" in --print-to-pdf=*) out="${arg#--print-to-pdf=}";; esac; done
printf '%%PDF-1.4\\n1 0 obj << /Type /Catalog >> endobj\\n' > "$out"
[ "$CITYSEG_TEST_FULL" = 1 ] && exit 0  # a full disk: Chromium stops writing and exits 0
printf 'trailer << /Root 1 0 R >>\\n%%%%EOF\\n' >> "$out"
"""


def test_a_pdf_printed_onto_a_full_disk_is_refused_and_the_earlier_one_kept(tmp_path, monkeypatch):
    """Chromium on a full disk writes the PDF's first bytes and exits 0: the earlier report.pdf was
    deleted before printing and the truncated one was accepted as the report (measured with
    Chromium on a full tmpfs: 4096 of 11908 bytes, no %%EOF)."""
    from cityseg_lib.errors import CitysegError
    from cityseg_lib.report.render import render_pdf

    chromium = tmp_path / "chromium"
    chromium.write_text(_FAKE_CHROMIUM)
    chromium.chmod(0o755)
    monkeypatch.setenv("CITYSEG_CHROMIUM", str(chromium))
    html, pdf = tmp_path / "report.html", tmp_path / "report.pdf"
    html.write_text("<html></html>")
    pdf.write_bytes(b"%PDF-1.4 the earlier build %%EOF\n")
    monkeypatch.setenv("CITYSEG_TEST_FULL", "1")
    with pytest.raises(CitysegError, match=r"\(it wrote \d+ bytes and exited 0: is the disk full\?\); .* unchanged"):
        render_pdf(html, pdf)
    assert pdf.read_bytes() == b"%PDF-1.4 the earlier build %%EOF\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chromium", "report.html", "report.pdf"]
    monkeypatch.setenv("CITYSEG_TEST_FULL", "0")
    assert render_pdf(html, pdf) == pdf and pdf.read_bytes().rstrip().endswith(b"%%EOF")
    assert b"earlier" not in pdf.read_bytes() and len(list(tmp_path.iterdir())) == 3


# ----------------------------------------------------------------------------- long and unusual paths


@pytest.mark.parametrize("deep", ["runtime", "runtime and temporary folders"])
def test_a_notebook_runs_under_a_deep_home_and_into_a_folder_with_spaces_and_accents(tmp_path, monkeypatch, deep):
    """The kernels talk over Unix sockets in Jupyter's runtime folder (``~/.local/share/jupyter/
    runtime``); a socket's path holds at most 107 bytes, so under a $HOME of ~52 characters or more
    no notebook started ("ZMQError: File name too long"): the sockets then go to the temporary
    folder, or with that deep too, the kernel listens on TCP on loopback."""
    import tempfile

    import nbformat

    from cityseg_lib.report.build import run_notebook
    from cityseg_lib.report.kernel import kernel_manager_class

    runtime = tmp_path / ("deep-" * 16) / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    if deep != "runtime":
        (tmp_path / ("deep-" * 16) / "tmp").mkdir(parents=True)
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / ("deep-" * 16) / "tmp"))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                                         nbformat.v4.new_code_cell("print(x * 2)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source = tmp_path / "nb.ipynb"
    nbformat.write(nb, str(source))
    output = tmp_path / "réports ü" / "executed 07" / "nb.ipynb"
    run_notebook(source, output, {"x": 21}, cwd=tmp_path)
    assert nbformat.read(str(output), as_version=4).cells[-1].outputs[0]["text"] == "42\n"
    assert kernel_manager_class()().transport == ("ipc" if deep == "runtime" else "tcp")


# ----------------------------------------------------------------------------- read-only folders


def test_evaluating_a_read_only_run_is_refused_before_the_evaluation(demo_root, tmp_path, monkeypatch, capsys):
    """A finished run on a read-only mount: ``evaluate`` scored every frame (minutes at full
    resolution) and then failed writing eval_val.json, without showing the scores."""
    from cityseg_lib.evaluate import score

    run = engine.fit(load_config(None, _values(demo_root, tmp_path, epochs=1)))
    monkeypatch.setattr(score, "evaluate_full_res", lambda *a, **k: pytest.fail("evaluated before the check"))
    read_only(monkeypatch, run)
    assert main(["evaluate", "--run", str(run), "--full-res"]) == 2
    _one_line_error(capsys, f"{run}: cannot write", "Read-only file system")
    assert not list(run.glob("eval_*"))
