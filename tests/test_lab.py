"""JupyterLab as a person uses it: live progress bars in a cell a person runs, none in notebooks
papermill executes or in CI; no IProgress warning; outputs never reach a commit (nbstripout
filter); `make lab` at the project root; `cityseg train` prints its epochs even with CI set."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from cityseg_lib.cli import main
from cityseg_lib.config import TrainConfig, load_config, train_config
from cityseg_lib.errors import CitysegError
from cityseg_lib.train import setup

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.executable).parent.parent


# ----------------------------------------------------------------------------- progress: "auto"


def _kernel(allow_stdin):
    parent = {"content": {"allow_stdin": allow_stdin}}
    return SimpleNamespace(kernel=SimpleNamespace(get_parent=lambda channel=None: parent))


def test_progress_defaults_to_auto_everywhere():
    assert TrainConfig().progress == "auto"
    assert train_config("smoke", "x").progress == "auto"  # notebooks no longer force it off
    assert load_config(None, ["progress=false"]).progress is False
    assert load_config(None, ["progress=true"]).progress is True
    with pytest.raises(CitysegError, match=r"progress='sometimes' is out of range \(allowed: one of auto, True, False\)"):
        load_config(None, ["progress=sometimes"])


@pytest.mark.parametrize("ci, shell, tty, expected", [
    ("true", _kernel(True), True, False),  # CI: never
    ("", _kernel(True), False, True),  # a cell run from JupyterLab / Notebook / VS Code
    ("", _kernel(False), True, False),  # papermill / nbclient / nbconvert --execute
    ("", None, True, True),  # a terminal
    ("", None, False, False),  # output to a pipe or a file
    ("false", None, True, True),  # CI=false is not CI
])
def test_interactive_decides_by_ci_kernel_and_terminal(monkeypatch, ci, shell, tty, expected):
    monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(setup, "_ipython", lambda: shell)
    monkeypatch.setattr(sys, "stderr", SimpleNamespace(isatty=lambda: tty))
    assert setup.interactive() is expected
    assert setup.progress_enabled("auto") is expected
    assert setup.progress_enabled(True) is True and setup.progress_enabled(False) is False


def test_ipywidgets_present_so_tqdm_auto_never_warns():
    from tqdm.notebook import IProgress

    assert IProgress is not None  # else tqdm warns "IProgress not found" on the first bar


_TRAIN_CELL = """
import warnings
warnings.simplefilter("always")
from cityseg_lib.config import train_config
from cityseg_lib.train.engine import fit
from cityseg_lib.train.setup import interactive
print("interactive:", interactive())
cfg = train_config("smoke", "lab", dict(runs_dir={runs!r}, data_root={data!r}, image_size=[32, 64],
                   model="simple_fcn", model_options={{"base_width": 4}}, epochs=1, batch_size=2,
                   full_res_eval=False))
fit(cfg)
"""


def _widget_outputs(outputs: list[dict]) -> list[dict]:
    return [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]


def _text(outputs: list[dict]) -> str:
    return "".join(o.get("text", "") for o in outputs)


@pytest.mark.slow
def test_papermill_executed_training_cell_has_no_progress_output(demo_root, tmp_path, monkeypatch):
    import papermill as pm

    monkeypatch.delenv("CI", raising=False)  # the kernel alone must tell papermill from a person
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        _TRAIN_CELL.format(runs=str(tmp_path / "runs"), data=str(demo_root)))])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "in.ipynb")
    pm.execute_notebook(str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb"), kernel_name="python3",
                        cwd=str(tmp_path), progress_bar=False, log_output=False)
    outputs = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[0].outputs
    assert "interactive: False" in _text(outputs)
    assert not _widget_outputs(outputs) and "epoch 1/1" not in _text(outputs) and "\r" not in _text(outputs)
    assert "IProgress" not in _text(outputs)


@pytest.mark.slow
def test_a_person_running_the_cell_sees_a_live_bar_per_run(demo_root, tmp_path, monkeypatch):
    from jupyter_client.manager import start_new_kernel

    monkeypatch.delenv("CI", raising=False)
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        # JupyterLab's execute requests allow stdin (papermill's do not)
        msg_id = kc.execute(_TRAIN_CELL.format(runs=str(tmp_path / "runs"), data=str(demo_root)), allow_stdin=True)
        outputs = []
        while True:
            msg = kc.get_iopub_msg(timeout=300)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            if msg["msg_type"] in ("stream", "display_data", "error"):
                outputs.append(msg["content"])
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert not [o for o in outputs if "ename" in o], outputs
    text = _text(outputs)
    assert "interactive: True" in text and "IProgress" not in text and "TqdmWarning" not in text
    widgets = _widget_outputs(outputs)
    assert widgets, "no progress widget displayed"
    assert any("lab epoch 1/1" in o["data"].get("text/plain", "") for o in widgets)  # run name, epoch
    assert "epoch 1/1: train loss" in text  # and one line per finished epoch


def test_cli_train_prints_epochs_and_scores_even_in_ci(demo_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CI", "true")
    args = [f"{k}={v}" for k, v in {
        "name": "ci", "profile": "test", "runs_dir": tmp_path, "data_root": demo_root, "image_size": "[32, 64]",
        "model": "simple_fcn", "model_options": "{base_width: 4}", "epochs": 2, "batch_size": 2}.items()]
    assert main(["train", *args]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("epoch ")] == ["epoch 1/2", "epoch 2/2"]
    assert any(line.startswith("best epoch ") for line in lines)
    assert any(line.startswith("run finished: ") and "val mIoU" in line for line in lines)
    assert "\r" not in captured.err  # no bars in CI


# ----------------------------------------------------------------------------- outputs never committed


def test_gitattributes_send_notebooks_through_nbstripout():
    lines = (ROOT / ".gitattributes").read_text().splitlines()
    assert "*.ipynb filter=nbstripout" in lines and "*.ipynb diff=ipynb" in lines


def test_committed_notebooks_pass_the_filter_unchanged():
    """Installing the filter leaves `git status` clean: it changes nothing in a committed notebook."""
    notebooks = sorted(str(p) for p in (ROOT / "notebooks").glob("*.ipynb"))
    check = subprocess.run([sys.executable, "-m", "nbstripout", "--keep-id", "--verify", *notebooks],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def _make(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    return subprocess.run(["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), "-C", str(cwd),
                           f"VENV={VENV}", *args], capture_output=True, text=True, env=env)


@pytest.mark.skipif(shutil.which("make") is None or shutil.which("git") is None, reason="needs make and git")
def test_make_install_sets_up_a_filter_that_strips_outputs(tmp_path):
    repo = tmp_path / "clone"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    shutil.copy(ROOT / ".gitattributes", repo / ".gitattributes")
    done = _make("git-filter", cwd=repo)
    assert done.returncode == 0, done.stderr
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    nb.cells[0].execution_count = 3
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(nb, repo / "n.ipynb")
    subprocess.run(["git", "add", "n.ipynb"], cwd=repo, check=True)
    staged = json.loads(subprocess.run(["git", "show", ":n.ipynb"], cwd=repo, capture_output=True, text=True,
                                       check=True).stdout)
    cell = staged["cells"][0]
    assert cell["outputs"] == [] and cell["execution_count"] is None
    assert cell["id"] == nb.cells[0].id and cell["metadata"]["tags"] == ["parameters"]  # papermill's tag stays
    assert json.loads((repo / "n.ipynb").read_text())["cells"][0]["outputs"]  # the working copy keeps them


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_install_is_harmless_outside_git(tmp_path):
    done = _make("git-filter", cwd=tmp_path)
    assert done.returncode == 0 and "not a git work tree" in done.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_makefile_install_lab_and_tensorboard_recipes():
    stamp = str(VENV / ".installed")
    install = _make("-n", "-W", "pyproject.toml", "install")  # what a changed pyproject.toml would run
    assert install.returncode == 0 and "filter.nbstripout.clean" in install.stdout
    assert f"--env TENSORBOARD_BINARY {VENV}/bin/tensorboard" in install.stdout.replace('"', "")  # %tensorboard
    lab = _make("-n", "-o", stamp, "lab").stdout
    assert f"--ServerApp.root_dir={ROOT}" in lab.replace('"', "") and "cd notebooks" not in lab
    assert "cityseg tensorboard --port 6006" in " ".join(_make("-n", "-o", stamp, "tensorboard").stdout.split())
    board = _make("-n", "-o", stamp, "tensorboard", "PROFILE=smoke", "PORT=7007").stdout
    assert "cityseg tensorboard --profile smoke --port 7007" in " ".join(board.split())
