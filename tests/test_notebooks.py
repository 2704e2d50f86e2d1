"""The study notebooks: parameters contract, clean committed files, and the whole smoke report.

* every key of every ``params/PROFILE/NN_*.yaml`` is a parameter of its notebook (papermill
  only warns about unknown ones), and the demo files equal the notebooks' defaults (so a notebook
  run top to bottom in JupyterLab is the demo profile);
* every key of ``params/PROFILE/train.yaml`` is a TrainConfig key (the command line uses it as is);
* the ``parameters`` cell holds literals only, papermill can parse every line of it, and the
  notebooks are committed without outputs or execution counts; no notebook imports ``study``;
* ``run_report("smoke")`` on a dataset made by ``make_demo_dataset`` (no generator stamp, found
  through ``CITYSCAPES_DATASET``) builds a report with all sections, figures and tables, no code,
  labelled synthetic, and ``headline.json`` with the numbers of its tables;
* a failing notebook is one CitysegError naming the notebook and the cell, and the partly
  executed copy stays behind.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
from pathlib import Path

import nbformat
import papermill as pm
import pytest
import yaml

from cityseg_lib.config import TrainConfig
from cityseg_lib.errors import CitysegError
from cityseg_lib.paths import source_root
from cityseg_lib.report import build as report_runner

ROOT = source_root()
NOTEBOOKS = {stem: ROOT / "notebooks" / f"{stem}.ipynb" for stem in report_runner.NOTEBOOKS}
PROFILES = ("demo", "full", "smoke")


def _params_cell(nb) -> nbformat.NotebookNode:
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "exactly one cell must be tagged 'parameters'"
    return cells[0]


def _defaults(path: Path) -> dict:
    """The parameters cell's assignments, each value evaluated with ast.literal_eval."""
    tree = ast.parse(_params_cell(nbformat.read(str(path), as_version=4)).source)
    out = {}
    for node in tree.body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name), (
            f"{path.name}: the parameters cell may only hold `name = literal` lines, got {ast.unparse(node)!r}")
        try:
            out[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError:
            pytest.fail(f"{path.name}: parameter {node.targets[0].id} is not a literal: {ast.unparse(node.value)}")
    return out


# ----------------------------------------------------------------------------- static contract


@pytest.mark.parametrize("stem", list(NOTEBOOKS))
def test_notebook_is_clean_and_its_parameters_are_literals(stem):
    path = NOTEBOOKS[stem]
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} is committed with outputs"
            assert cell.execution_count is None, f"{path.name} cell {i} is committed with an execution count"
            assert "sys.path" not in cell.source, f"{path.name} cell {i}: import the installed package instead"
            assert not re.search(r"\bstudy\.|import .*\bstudy\b", cell.source), f"{path.name} cell {i}: study is gone"
            assert not re.search(r"^\s*(class|def) ", cell.source, re.M), f"{path.name} cell {i}: code belongs in cityseg_lib"
    defaults = _defaults(path)
    assert defaults["profile"] == "demo", "notebook defaults must be the demo profile"
    # papermill must parse every line, or it silently drops the parameter from inspect_notebook
    assert set(pm.inspect_notebook(str(path))) == set(defaults)


@pytest.mark.parametrize("profile", PROFILES)
def test_every_params_key_exists_in_its_notebook(profile):
    folder = ROOT / "params" / profile
    files = sorted(folder.glob("0*.yaml"))
    assert files, f"no notebook params in {folder}"
    for f in files:
        assert f.stem in NOTEBOOKS, f"{f}: no notebook notebooks/{f.stem}.ipynb"
        values = yaml.safe_load(f.read_text()) or {}
        keys = set(values)
        # `papermill NB OUT -f params/smoke/NN.yaml` would otherwise run the notebook's default profile (demo)
        assert values.get("profile") == profile, f"{f}: profile={values.get('profile')!r}, expected {profile!r}"
        known = set(pm.inspect_notebook(str(NOTEBOOKS[f.stem])))
        assert keys <= known, f"{f}: unknown parameter(s) {sorted(keys - known)}; the notebook has {sorted(known)}"
    assert (folder / "data.yaml").is_file()


@pytest.mark.parametrize("profile", PROFILES)
def test_shared_training_block_is_a_train_config(profile):
    """params/PROFILE/train.yaml holds TrainConfig keys only: `cityseg train --params` takes it as is."""
    import dataclasses

    from cityseg_lib.config import load_config, train_config

    path = ROOT / "params" / profile / "train.yaml"
    keys = set(yaml.safe_load(path.read_text()) or {})
    assert keys <= {f.name for f in dataclasses.fields(TrainConfig)}, f"{path}: {sorted(keys)}"
    assert load_config(path).profile == profile
    cfg = train_config(profile, "x", {"epochs": 3})  # the notebooks' merge: file <- train <- run keys
    assert cfg.epochs == 3 and cfg.profile == profile and cfg.name == "x"
    main = ROOT / "params" / profile / "main.yaml"  # the main runs' recipe, over train.yaml
    if main.is_file():
        keys = set(yaml.safe_load(main.read_text()) or {})
        assert keys <= {f.name for f in dataclasses.fields(TrainConfig)}, f"{main}: {sorted(keys)}"
        assert load_config([path, main]).profile == profile
        assert train_config(profile, "x", main=True) != train_config(profile, "x"), f"{main} changes nothing"


def test_demo_params_equal_the_notebook_defaults():
    """Running a notebook top to bottom in JupyterLab is the demo profile."""
    for f in sorted((ROOT / "params" / "demo").glob("0*.yaml")):
        defaults = _defaults(NOTEBOOKS[f.stem])
        for key, value in (yaml.safe_load(f.read_text()) or {}).items():
            assert defaults[key] == value, f"{f}: {key}={value!r} but the notebook default is {defaults[key]!r}"


# ----------------------------------------------------------------------------- the smoke report


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory, demo_root):
    """The whole smoke build on a `make_demo_dataset` folder (no generator stamp), via CITYSCAPES_DATASET."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CITYSEG_HOME", str(home))
        mp.setenv("CITYSEG_CACHE", str(home / "cache"))
        mp.setenv("CITYSCAPES_DATASET", str(demo_root))
        html = report_runner.run_report("smoke", verbose=False)
    return home, html


@pytest.mark.slow
def test_smoke_report_has_sections_figures_tables(smoke_report):
    home, html_path = smoke_report
    assert html_path == home / "reports" / "smoke" / "report.html"
    text = html_path.read_text()
    for heading in ("Introduction", "Dataset", "Architectures", "Training methodology", "Results", "Conclusions",
                    "Reflections", "Provenance"):
        assert re.search(rf"<h[12][^>]*>[^<]*{heading}", text), f"section {heading!r} missing"
    assert text.count('src="data:image/png;base64,') >= 10
    assert "No description has been provided" not in text  # every figure has its caption as alt text
    for caption in ("Table 1:", "Table 2:", "Table 4:", "Table 10:", "Table 11:", "Figure 1:", "Figure 5:", "Figure 6:"):
        assert caption in text, f"{caption} missing"
    assert "Size and training cost" in text and "Validation results of the kept checkpoints" in text
    provenance = text[text.index("Provenance"):]
    assert "SYNTHETIC" in provenance and "synthetic" in text and "made by cityseg make-demo-data" in provenance
    assert "95% CI" in text and "Table 13:" in text and "Figure 11:" in text
    # no code: inputs are excluded, prompts too
    assert "hl-ipython3" not in text and "from cityseg_lib import" not in text and "report.show(" not in text
    assert "Traceback" not in text


@pytest.mark.slow
def test_smoke_report_artifacts(smoke_report):
    home, _ = smoke_report
    out = home / "reports" / "smoke"
    for stem in report_runner.NOTEBOOKS:
        assert (out / "executed" / f"{stem}.ipynb").is_file()
    for nb in ("01", "02", "03", "04", "05", "06", "07"):
        assert (out / "results" / f"{nb}.json").is_file(), nb
    timings = json.loads((out / "results" / "timings.json").read_text())
    assert set(timings["notebooks"]) == set(report_runner.NOTEBOOKS)
    assert len(list((home / "runs" / "smoke").glob("simple_fcn-*/summary.json"))) == 1
    if report_runner.find_chromium() is None:
        pytest.skip("no Chromium installed: the PDF step is skipped (make pdf-tools installs it)")
    pdf = out / "report.pdf"
    assert pdf.is_file() and pdf.read_bytes()[:5] == b"%PDF-"


@pytest.mark.slow
def test_rebuilding_reuses_finished_runs(smoke_report, demo_root):
    home, _ = smoke_report
    (summary,) = (home / "runs" / "smoke").glob("simple_fcn-*/summary.json")
    before = summary.stat().st_mtime_ns
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CITYSEG_HOME", str(home))
        mp.setenv("CITYSEG_CACHE", str(home / "cache"))
        mp.setenv("CITYSCAPES_DATASET", str(demo_root))
        report_runner.run_report("smoke", only=["02", "07"], pdf=False, verbose=False)
    assert summary.stat().st_mtime_ns == before, "a finished run was trained again"
    assert list((home / "runs" / "smoke").glob("simple_fcn-*/summary.json")) == [summary]


@pytest.mark.slow
def test_smoke_headline_json_holds_the_tables_numbers(smoke_report):
    """headline.json: every main model with its interval, 19 class IoUs, every comparison; the same
    numbers as the runs' summaries (Table 10 shows them rounded)."""
    from cityseg_lib import runstore

    home, html_path = smoke_report
    head = json.loads((home / "reports" / "smoke" / "headline.json").read_text())
    assert set(head["models"]) == {"simple_fcn", "unet", "swin2_jnet", "unet_tuned"}
    text = html_path.read_text()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CITYSEG_HOME", str(home))
        for key, m in head["models"].items():
            assert 0 <= m["ci_low"] <= m["ci_high"] <= 1 and 0 <= m["miou"] <= 1, key
            assert 0 <= m["pixel_accuracy"] <= 1 and len(m["class_iou"]) == 19 and len(m["class_iou_ci"]) == 19
            summary = runstore.load_summary(m["run"])
            assert m["miou"] == pytest.approx(summary["val_full_res"]["miou"], abs=1e-9)
            shown = f"{100 * m['miou']:.1f}"  # Table 10: the value with its interval, "2.4 (2.1-5.0)"
            assert f"<td>{shown} (" in text or f"<td>{shown}</td>" in text, key
    assert {"unet_vs_simple_fcn", "swin2_jnet_vs_unet", "loss_dice_vs_cross_entropy", "augment_replace_vs_none",
            "steplr_vs_constant_lr", "dropout_vs_no_dropout", "unet_tuned_vs_unet"} <= set(head["comparisons"])
    for key, c in head["comparisons"].items():
        assert -1 <= c["ci_low"] <= c["ci_high"] <= 1 and -1 <= c["difference"] <= 1, key
        assert isinstance(c["resolved"], bool) and c["verdict"]
        # resolved: the interval excludes zero and the seeds (where assessed) agree
        assert c["resolved"] == ((c["ci_low"] > 0 or c["ci_high"] < 0) and c["seeds_agree"] is not False), key
    assert head["comparisons"]["loss_iou_vs_cross_entropy"]["seeds_a"] == 3
    arch = head["comparisons"]["swin2_jnet_vs_unet"]
    assert (arch["seeds_a"], arch["seeds_b"]) == (3, 3)  # architectures pool their three seeds
    for key in ("simple_fcn", "unet", "swin2_jnet"):
        m = head["models"][key]
        assert m["seeds"] == [0, 1, 2] and len(m["seed_miou"]) == 3 and m["seed_sd"] is not None, key
    # 05's cross-entropy runs are 03's U-Net reference with its seeds (reused, not trained twice); the smoke
    # profile has two recipes (params/smoke/main.yaml), so the reference is not the main runs
    loss = json.loads((home / "reports" / "smoke" / "results" / "05.json").read_text())["result"]["runs"]
    unet = json.loads((home / "reports" / "smoke" / "results" / "03.json").read_text())["result"]
    assert loss["cross_entropy"] == unet["ablation_runs"] and len(unet["ablation_runs"]) == 3
    assert not set(unet["ablation_runs"]) & set(unet["seed_runs"])


@pytest.mark.slow
def test_a_run_an_earlier_build_extended_is_refused_before_any_notebook_and_only_07_renders(smoke_report, demo_root,
                                                                                           tmp_path):
    """--set 02.train={epochs: 4} extends 02's runs in place; the default build then asks 3 (the smoke main
    recipe, params/smoke/main.yaml) and
    is refused before its first notebook, naming the run and the ways out (it stopped in 02's cell
    before). A build without 07 does not re-render the earlier report as if it were new."""
    home = tmp_path / "home"
    shutil.copytree(smoke_report[0], home, symlinks=True)
    html = home / "reports" / "smoke" / "report.html"
    rendered = html.stat().st_mtime_ns
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CITYSEG_HOME", str(home))
        mp.setenv("CITYSEG_CACHE", str(home / "cache"))
        mp.setenv("CITYSCAPES_DATASET", str(demo_root))
        report_runner.run_report("smoke", only=["02"], overrides={"02": {"train": {"epochs": 4}}}, pdf=False,
                                 verbose=False)
        assert html.stat().st_mtime_ns == rendered, "the report was re-rendered from the earlier 07"
        ran = []
        mp.setattr(report_runner, "run_notebook", lambda *a, **k: ran.append(a))
        with pytest.raises(CitysegError, match=r"notebook 02_baseline_fcn: .*simple_fcn-\w+: this run was trained "
                                               r"for 4 epochs, 3 were asked.*--set 02.train=\{epochs: ...\}"):
            report_runner.run_report("smoke", only=["02"], pdf=False, verbose=False)
        assert ran == []


def test_relative_data_roots_reach_the_kernels_absolute(tmp_path, monkeypatch, demo_root):
    """The checks read a relative root (or weights file) from the working directory; the kernels
    start in notebooks/."""
    monkeypatch.setenv("CITYSEG_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").symlink_to(demo_root, target_is_directory=True)
    monkeypatch.setenv("CITYSCAPES_DATASET", "data")
    seen = {}

    def record(source, output, parameters, *args, **kwargs):
        seen[source.stem] = (dict(parameters), os.environ["CITYSCAPES_DATASET"])
        raise CitysegError("stop here")

    monkeypatch.setattr(report_runner, "run_notebook", record)
    for overrides in ({}, {"01": {"data_root": "data"}}):
        with pytest.raises(CitysegError, match="stop here"):
            report_runner.run_report("smoke", only=["01"], overrides=overrides, pdf=False, verbose=False)
        params, env = seen["01_data_exploration"]
        absolute = str((tmp_path / "data").resolve())
        assert env == absolute and params.get("data_root", absolute) == absolute
    import timm
    from safetensors.torch import save_file

    kwargs = yaml.safe_load((ROOT / "params" / "smoke" / "04_swin2_jnet.yaml").read_text())["encoder_kwargs"]
    encoder = timm.create_model("swinv2_tiny_window8_256", pretrained=False, **kwargs)  # the checks load the file
    save_file({k: v.contiguous() for k, v in encoder.state_dict().items()}, str(tmp_path / "w.safetensors"))
    with pytest.raises(CitysegError, match="stop here"):
        report_runner.run_report("smoke", only=["04"], overrides={"04": {"pretrained": True, "weights": "w.safetensors"}},
                                 pdf=False, verbose=False)
    assert seen["04_swin2_jnet"][0]["weights"] == str(tmp_path / "w.safetensors")


# ----------------------------------------------------------------------------- failures


def test_failing_notebook_names_notebook_and_cell_and_keeps_partial_copy(tmp_path, monkeypatch, demo_root):
    monkeypatch.setenv("CITYSEG_HOME", str(tmp_path))
    # a corrupt training image passes the checks before the build (they list folders, they do not decode
    # every frame) and fails in the training cell, naming the file
    root = tmp_path / "broken"
    shutil.copytree(demo_root, root)
    bad = sorted((root / "leftImg8bit" / "train").rglob("*.png"))[0]
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(CitysegError) as err:
        report_runner.run_report("smoke", only=["02"], overrides={"02": {"data_root": str(root)}},
                                 pdf=False, verbose=False)
    message = str(err.value)
    assert "\n" not in message
    assert "02_baseline_fcn.ipynb" in message and re.search(r"cell \d+", message) and bad.name in message
    partial = tmp_path / "reports" / "smoke" / "executed" / "02_baseline_fcn.ipynb"
    assert partial.is_file()
    nb = nbformat.read(str(partial), as_version=4)
    assert any(o.get("output_type") == "error" for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_the_kernel_process_writes_its_own_stderr_to_a_log_not_the_terminal(tmp_path, capfd):
    """What a kernel process writes to its standard error itself (ipykernel's traceback after a
    Ctrl-C, native libraries, a crash) goes to ``EXECUTED.kernel.log``; a cell's own output stays in
    the notebook; a kernel that dies is one line naming that log."""
    source = tmp_path / "nb.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os, sys\nos.write(2, b'native stderr of the kernel process\\n')\nprint('cell output', file=sys.stderr)")]),
        str(source))
    out = tmp_path / "executed" / "nb.ipynb"
    report_runner.run_notebook(source, out, {}, cwd=tmp_path)
    terminal = capfd.readouterr()
    assert "native stderr" not in terminal.out + terminal.err
    assert "native stderr of the kernel process" in out.with_suffix(".kernel.log").read_text()
    cell = nbformat.read(str(out), as_version=4).cells[0]
    assert any("cell output" in o.get("text", "") for o in cell.outputs)

    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os\nos._exit(3)")]),
                   str(source))
    with pytest.raises(CitysegError, match=r"could not run: .*the kernel's log: .*nb\.kernel\.log$"):
        report_runner.run_notebook(source, out, {}, cwd=tmp_path)


def test_unknown_profile_and_notebook_are_one_line_errors():
    with pytest.raises(CitysegError, match="unknown profile 'nope'"):
        report_runner.run_report("nope", verbose=False)
    with pytest.raises(CitysegError, match="unknown notebook '09'"):
        report_runner.run_report("smoke", only=["09"], verbose=False)
