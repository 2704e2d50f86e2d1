"""Bad command-line input is one line (exit 2) before any work: flags that contradict each other or
would be ignored, output files that cannot be written, a training config that cannot train."""

from __future__ import annotations

import pytest

from cityseg_lib.cli import main


def _one_line(capsys, fragment: str) -> None:
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and fragment in err, (out, err)


@pytest.mark.parametrize("args, fragment", [
    (["evaluate", "--scales", "0.5,1.0"], "--scales 0.5,1.0: multi-scale scales need --tta ms"),
    (["evaluate", "--scales", "0.5,1.0", "--tta", "flip"], "--scales 0.5,1.0: multi-scale scales need --tta ms"),
    (["evaluate", "--stride", "10x10"], "--stride 10x10: a sliding-window stride needs --mode slide"),
    (["evaluate", "--stride", "10x10", "--tta", "flip"], "--stride 10x10: a sliding-window stride needs --mode slide"),
    (["predict", "--input", "x", "--out", "y", "--onnx", "x.onnx"], "--onnx x.onnx: an exported model runs with "
                                                                    "--engine onnxruntime"),
    (["predict", "--input", "x", "--out", "y", "--engine", "onnxruntime", "--mode", "slide"],
     "--mode slide: --engine onnxruntime runs the exported model whole-image on the CPU"),
    (["predict", "--input", "x", "--out", "y", "--engine", "onnxruntime", "--tta", "flip"],
     "--tta flip: --engine onnxruntime"),
    (["predict", "--input", "x", "--out", "y", "--engine", "onnxruntime", "--device", "cuda"],
     "--device cuda: --engine onnxruntime"),
    (["predict", "--input", "x", "--out", "y", "--scales", "0.5"], "--scales 0.5: multi-scale scales need --tta ms"),
])
def test_conflicting_or_ignored_inference_flags_are_refused_before_the_run_is_read(tmp_path, capsys, args, fragment):
    run = tmp_path / "no_run"  # never read: the flags are refused first
    assert main([args[0], "--run", str(run), *args[1:]]) == 2
    _one_line(capsys, fragment)


@pytest.mark.parametrize("args, fragment", [
    (["evaluate", "--run", "r", "--images", "-1"], "cityseg evaluate: error: argument --images: '-1' must be 0 or more"),
    (["evaluate", "--run", "r", "--mode", "tiles"], "argument --mode: invalid choice: 'tiles'"),
    (["make-demo-data", "d", "--size", "0x0"], "argument --size: size '0x0' must be positive"),
    (["make-demo-data", "d", "--train", "1.5"], "argument --train: invalid int value: '1.5'"),
    (["predict", "--run", "r"], "the following arguments are required: --input, --out"),
    (["train", "--resume", "--retrain"], "argument --retrain: not allowed with argument --resume"),
    (["tensorboard", "--port", "x"], "argument --port: invalid int value: 'x'"),
    (["report", "--bogus"], "unrecognized arguments: --bogus"),
    (["no-such-command"], "cityseg: error: argument command: invalid choice: 'no-such-command'"),
    # an empty output path would mean the current folder: the outputs would land there unasked
    (["make-demo-data", ""], "argument out: '' is empty; name the output"),
    (["predict", "--run", "r", "--input", "i", "--out", ""], "argument --out: '' is empty"),
    (["export", "--run", "r", "--out", " "], "argument --out: ' ' is empty"),
    (["check-data", "--json", ""], "argument --json: '' is empty"),
    (["evaluate-folder", "--pred", "p", "--gt", "g", "--out", ""], "argument --out: '' is empty"),
])
def test_argparse_errors_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch, args, fragment):
    """argparse's own refusals (a bad int, an unknown choice, a missing flag) printed the whole usage
    first, 4-10 lines; now one line, with where to look."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and fragment in err and err.rstrip().endswith("--help)"), err
    assert list(tmp_path.iterdir()) == []


def test_check_data_json_that_cannot_be_written_is_refused_before_the_check(demo_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("cityseg_lib.data.check.check_dataset", lambda *a, **k: pytest.fail("the check ran"))
    (tmp_path / "afile").write_text("x")
    for target, fragment in [(tmp_path, "is a folder"), ("/proc/x.json", "cannot be written"),
                             (tmp_path / "none" / "x.json", "no such folder"),
                             (tmp_path / "afile" / "x.json", "a file, not a folder")]:
        assert main(["check-data", "--root", str(demo_root), "--json", str(target)]) == 2
        _one_line(capsys, f"--json {target}: {fragment}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # the probe left nothing behind


def test_evaluate_folder_out_that_cannot_be_written_is_refused_before_the_evaluation(demo_root, tmp_path, capsys,
                                                                                   monkeypatch):
    monkeypatch.setattr("cityseg_lib.evaluate.folder.evaluate_folder", lambda *a, **k: pytest.fail("it evaluated"))
    for target, fragment in [(tmp_path, "is a folder"), ("/proc/a/b.json", "cannot be written")]:
        assert main(["evaluate-folder", "--pred", str(tmp_path), "--gt", str(demo_root), "--out", str(target)]) == 2
        _one_line(capsys, f"--out {target}: {fragment}")


def test_an_output_file_in_a_folder_still_to_make_is_accepted(tmp_path):
    from cityseg_lib.cli_checks import check_output_file

    check_output_file(tmp_path / "a" / "b" / "r.json", "--out", make_parents=True)
    existing = tmp_path / "r.json"
    existing.write_text("kept")
    check_output_file(existing, "--json")
    assert existing.read_text() == "kept" and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


@pytest.mark.parametrize("override, fragment", [
    ("model_options={base_width: 4, depth: 7}", "the training input [32, 64] is smaller than 2**depth"),
    ("model_options={base_width: 4, depth: 2, dropout: 1.5}", "option dropout=1.5 must be a number in [0, 1)"),
    ("train_subset=1000", "train_subset=1000: the train split (fine labels) holds only 6 images"),
    ("device=cuda", "device 'cuda' requested but CUDA is not available"),
    ("seed=4294967296", "seed=4294967296 is out of range"),
    ("num_workers=100000", "num_workers=100000 is out of range"),
    ("profile=../escape", "profile='../escape' must be one plain folder name"),
    # passed the checks and failed inside fit (torch's int64 overflow, its allocator), a run folder left
    ("model_options={base_width: 1180591620717411303424, depth: 2}", "option base_width=1180591620717411303424 "
                                                                     "must be an integer in [1, 4096]"),
    ("model_options={base_width: 100000, depth: 2}", "option base_width=100000 must be an integer in [1, 4096]"),
])
def test_train_refuses_a_config_that_cannot_train_before_any_output_or_folder(demo_root, tmp_path, capsys,
                                                                              monkeypatch, override, fragment):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same on a machine with a GPU
    monkeypatch.setattr("cityseg_lib.train.engine.fit", lambda *a, **k: pytest.fail("training started"))
    runs = tmp_path / "runs"
    argv = ["train", f"runs_dir={runs}", f"data_root={demo_root}", "image_size=[32, 64]", "epochs=1", "device=cpu",
            "model=unet", "model_options={base_width: 4, depth: 2}", override]
    assert main(argv) == 2
    _one_line(capsys, fragment)
    assert not runs.exists() and sorted(p.name for p in tmp_path.iterdir()) == []  # nor runs/../escape


def test_a_train_subset_up_to_the_split_is_accepted(demo_root, tmp_path):
    from cityseg_lib import runstore
    from cityseg_lib.config import load_config

    cfg = load_config(None, {"runs_dir": str(tmp_path), "data_root": str(demo_root), "train_subset": 6})
    assert runstore.run_dir(cfg).parent == tmp_path / "demo" and not (tmp_path / "demo").exists()


def test_report_only_needs_the_results_of_the_notebooks_it_does_not_run(tmp_path, monkeypatch, capsys):
    """`cityseg report --only 07` reads 01-06's results: a missing or broken one is one line naming the
    file, before data is made or a kernel starts (it used to fail inside notebook 07)."""
    from cityseg_lib.report import build
    from cityseg_lib.report.notebook_results import result_path

    monkeypatch.setenv("CITYSEG_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(build, "run_notebook", lambda *a, **k: pytest.fail("a notebook ran"))
    monkeypatch.setattr("cityseg_lib.data.source.ensure_data", lambda *a, **k: pytest.fail("data was made"))
    assert main(["report", "--profile", "smoke", "--no-pdf", "--only", "07"]) == 2
    _one_line(capsys, f"notebook 07_report reads the result of 01_data_exploration, which this build does not run: "
                      f"{result_path('smoke', '01')} is missing")
    assert main(["report", "--profile", "smoke", "--no-pdf", "--only", "05"]) == 2
    _one_line(capsys, f"{result_path('smoke', '03')} is missing")
    result_path("smoke", "03").parent.mkdir(parents=True)
    result_path("smoke", "03").write_text("{not json")
    assert main(["report", "--profile", "smoke", "--no-pdf", "--only", "06"]) == 2
    _one_line(capsys, f"{result_path('smoke', '03')}: not a readable JSON results file")
    build.check_earlier_results("smoke", ["01_data_exploration", "02_baseline_fcn"])  # they read no results
