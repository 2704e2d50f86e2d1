"""Results of different builds are never rendered together silently: a result records what it was
made from (its runs' epoch counts, the main runs it built on, the data), and a report whose results
no longer fit the runs and data is refused in one line naming the notebooks to run again.

Runs and results are made by hand here (no training, no notebook), as the run store and the
notebooks would write them."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from cityseg_lib import cli, runstore
from cityseg_lib.config import TrainConfig
from cityseg_lib.errors import CitysegError
from cityseg_lib.report import build
from cityseg_lib.report.freshness import check_fresh, stale_lines
from cityseg_lib.report.notebook_results import (DataResult, LossResult, SweepResult, UNetResult, result_path,
                                                 save_result)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CITYSEG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "home"


def _data(root, seed=0):
    from cityseg_lib.data.demo import make_demo_dataset
    from cityseg_lib.data.fingerprint import clear_cache

    make_demo_dataset(root, train=4, val=2, test=0, size=(64, 32), seed=seed, coarse=False, workers=1)
    clear_cache()
    return root


def _run(root, name, epochs, profile="smoke"):
    """A finished run folder as the run store writes it (config, identity, summary), untrained."""
    cfg = TrainConfig(profile=profile, name=name, model="unet", data_root=str(root), epochs=epochs)
    run = runstore.run_dir(cfg)
    run.mkdir(parents=True)
    runstore.write_run_info(run, cfg)
    _extend(run, epochs)
    return runstore.relative(run)


def _extend(run, epochs):
    runstore.write_summary(runstore.resolve(run), {"epochs_run": epochs})


def _reference(configs):
    """The run of notebook 03 that 05 and 06 build on: its ablation reference (the smoke profile has a main
    recipe, params/smoke/main.yaml), as ``notebook_results.reference_run`` hands it on."""
    cfgs = configs["03_unet"]
    return next((c for c in cfgs if c.name == "unet_ablation"), cfgs[0])


def _unet_result(main, seeds=()):
    return UNetResult(main_run=main, constant_lr_run=None, augment_runs={"none": main}, seed_runs=[main, *seeds])


def _data_result(root):
    return DataResult(data_root=str(root), synthetic=True, generator=None, splits={}, coarse_counts={},
                      image_sizes={}, class_stats={}, majority_class="road", majority_miou=0.1)


def test_a_main_run_extended_by_a_later_03_makes_05_and_06_stale(home, tmp_path):
    """``--only 03 --set '03.train={epochs: 3}'`` extends the U-Net runs in place (epochs are not
    part of a run's identity): 05's cross-entropy arm and 06's tuned comparison now meet 3 epochs
    where their other runs have 2."""
    root = _data(tmp_path / "data")
    unet, seed1 = _run(root, "unet", 2), _run(root, "unet_seed1", 2)
    iou, tuned = _run(root, "loss_iou_seed0", 2), _run(root, "unet_tuned", 2)
    save_result("smoke", _unet_result(unet, [seed1]))
    save_result("smoke", LossResult(runs={"cross_entropy": [unet, seed1], "iou": [iou, iou]}, seeds=[0, 1]))
    save_result("smoke", SweepResult(sweeps={}, tuned_runs={"unet": tuned}))
    assert stale_lines("smoke", ["03", "05", "06"], root) == []
    check_fresh("smoke", ["03", "05", "06"], root)  # fits: nothing said

    for run in (unet, seed1):  # notebook 03 again with 3 epochs, then its result rewritten
        _extend(run, 3)
    save_result("smoke", _unet_result(unet, [seed1]))
    found = stale_lines("smoke", ["03", "05", "06"], root)
    assert {nb for nb, _ in found} == {"05", "06"}
    lines = {nb: " | ".join(line for n, line in found if n == nb) for nb, _ in found}
    assert f"lists run {unet} at 2 epochs; it now holds 3" in lines["05"]
    assert f"built on notebook 03's run {unet} at 2 epochs" in lines["06"] and "at 3 epochs now" in lines["06"]
    with pytest.raises(CitysegError) as err:
        check_fresh("smoke", ["03", "05", "06"], root)
    message = str(err.value)
    assert "\n" not in message and "mix results of different builds" in message
    assert message.endswith("--only 05 06 07 (or without --only)")


def test_05_built_on_another_main_run_is_stale_unless_this_build_brings_that_one_back(home, tmp_path):
    """03 rerun with another setting names another main run; 05 still holds the earlier one's
    losses. A build that runs 03 again is judged by the main run 03 will hand on (``planned``)."""
    root = _data(tmp_path / "data")
    old, new, iou = _run(root, "unet", 2), _run(root, "unet_other", 2), _run(root, "loss_iou_seed0", 2)
    save_result("smoke", _unet_result(old))
    save_result("smoke", LossResult(runs={"cross_entropy": [old], "iou": [iou]}, seeds=[0]))
    save_result("smoke", _unet_result(new))
    lines = [line for _, line in stale_lines("smoke", ["05"], root)]
    assert len(lines) == 1 and f"run {old} at 2 epochs; notebook 03's run is {new} at 2 epochs" in lines[0]
    assert stale_lines("smoke", ["05"], root, planned={"03": {"run": old, "epochs": 2}}) == []
    assert stale_lines("smoke", ["05"], root, planned={"03": {"run": old, "epochs": 4}}) != []


def test_regenerated_data_makes_01_and_the_runs_trained_on_the_old_data_stale(home, tmp_path):
    """``cityseg make-demo-data`` with another seed into the same folder: runs on the earlier data would
    be paired image by image with runs on the new, and 01's statistics describe the earlier."""
    root = _data(tmp_path / "data")
    fcn = _run(root, "simple_fcn", 2)
    save_result("smoke", _data_result(root))
    save_result("smoke", _unet_result(fcn))
    assert stale_lines("smoke", ["01", "03"], root) == []
    _data(root, seed=7)
    found = dict(stale_lines("smoke", ["01", "03"], root))  # one line each
    assert set(found) == {"01", "03"} and len(stale_lines("smoke", ["01", "03"], root)) == 2
    assert "describes other data than" in found["01"] and f"lists run {fcn}, trained on other data" in found["03"]
    assert stale_lines("smoke", ["01", "03"], None) == []  # root None: the data not judged


def test_results_written_before_the_record_existed_are_not_judged(home, tmp_path):
    root = _data(tmp_path / "data")
    unet = _run(root, "unet", 2)
    path = save_result("smoke", _unet_result(unet))
    doc = json.loads(path.read_text())
    del doc["made_from"]
    path.write_text(json.dumps(doc))
    _extend(unet, 3)
    assert stale_lines("smoke", ["03"], root) == []


def _smoke_results(profile_root, epochs_read):
    """Results 01-06 of the smoke profile on its generated data, 05 and 06 built on 03's main run at
    ``epochs_read`` epochs (the main run named as the smoke params name it)."""
    from cityseg_lib.data.source import ensure_data
    from cityseg_lib.report import preflight
    from cityseg_lib.report.notebook_results import BaselineResult, SwinResult

    root = ensure_data("", "smoke")
    configs = preflight.check("smoke", selected=[])[1]
    main = runstore.relative(runstore.run_dir(replace(_reference(configs), data_root=str(root))))
    save_result("smoke", _data_result(root))
    save_result("smoke", BaselineResult(main_run=_run(root, "simple_fcn", 2)))
    save_result("smoke", _unet_result(main))
    save_result("smoke", SwinResult(main_run=_run(root, "swin2_jnet", 2)))
    save_result("smoke", LossResult(runs={"iou": [_run(root, "loss_iou_seed0", 2)]}, seeds=[0]))
    save_result("smoke", SweepResult(sweeps={}, tuned_runs={}))
    for nb in ("05", "06"):
        path = result_path("smoke", nb)
        doc = json.loads(path.read_text())
        doc["made_from"]["reads"] = {"03": {"run": main, "epochs": epochs_read},
                                     **({"04": doc["made_from"]["reads"]["04"]} if nb == "06" else {})}
        path.write_text(json.dumps(doc))
    return root


def test_report_refuses_to_render_from_results_of_mixed_builds_before_any_notebook(home, monkeypatch, capsys):
    """``cityseg report --only 03 07 --set '03.train={epochs: 3}'`` would hand 05 and 06 a longer main
    U-Net than they were built on: refused (exit 2, one line) before a notebook starts; with the
    length they were built on, the build goes on to its notebooks."""
    _smoke_results(home, epochs_read=2)
    ran = []
    monkeypatch.setattr(build, "run_notebook", lambda src, *a, **k: ran.append(src.stem) or 0.0)
    assert cli.main(["report", "--profile", "smoke", "--no-pdf", "--only", "03", "07",
                     "--set", "03.train={epochs: 3}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "notebook 03's run" in err and "--only 03 05 06 07" in err, err
    assert ran == []
    with pytest.raises(CitysegError, match="07_report.ipynb is missing"):  # the stub wrote no executed copy
        build.run_report("smoke", only=["03", "07"], pdf=False, verbose=False)
    assert ran == ["03_unet", "07_report"]


def test_05_rerun_after_03_with_another_length_is_checked_on_03s_result_as_the_notebook_reads_it(home):
    """After ``--only 03 --set '03.train={epochs: 3}'``, ``--only 05 06 07`` (the command the build
    names) checks 05's runs as notebook 05 builds them, on the U-Net of 03's result that 05 reads (its
    reference, 3 epochs; its cross-entropy arm that very run), not on the 2 epochs of 03's params: no
    run-length refusal."""
    from cityseg_lib.data.source import ensure_data
    from cityseg_lib.report import preflight

    root = ensure_data("", "smoke")
    main = replace(_reference(preflight.check("smoke", selected=[])[1]), data_root=str(root))
    assert main.epochs == 2
    save_result("smoke", _unet_result(_finished(replace(main, epochs=3))))
    selected = ["05_loss_comparison", "06_halving_sweep", "07_report"]
    configs = preflight.check("smoke", selected=selected)[1]
    arm = configs["05_loss_comparison"][0]
    assert (arm.name, arm.epochs) == ("unet_ablation", 3)
    assert {c.epochs for c in configs["05_loss_comparison"]} == {3}
    preflight.check_run_lengths(configs, root, selected)  # the 3-epoch run is reused, not refused
    assert preflight.check("smoke", selected=[])[1]["05_loss_comparison"][0].epochs == 2  # a full build: params


def _finished(cfg):
    run = runstore.run_dir(cfg)
    run.mkdir(parents=True)
    runstore.write_run_info(run, cfg)
    _extend(run, cfg.epochs)
    return runstore.relative(run)


def test_a_notebook_that_failed_leaves_its_earlier_result_refused_until_it_runs_again(home, monkeypatch, capsys):
    """A build in which 03 fails keeps the earlier build's 03.json (nothing is deleted), but records
    the failure: ``--only 07`` would render that earlier result beside this build's 01 and 02 as if
    03 had run, so it is refused in one line naming 03; once 03 runs again the record is gone."""
    from cityseg_lib.data.source import ensure_data
    from cityseg_lib.report import preflight

    _smoke_results(home, epochs_read=2)
    main = _reference(preflight.check("smoke", selected=[])[1])
    _finished(replace(main, data_root=str(ensure_data("", "smoke"))))  # 03's reference run, as 05 and 06 read it
    assert stale_lines("smoke", ["01", "02", "03", "04", "05", "06"]) == []  # an earlier build that fits
    before = result_path("smoke", "03").read_bytes()
    ran = []

    def notebook(src, *a, **k):
        ran.append(src.stem)
        if src.stem == "03_unet" and fail:
            raise CitysegError("notebook 03_unet.ipynb failed in cell 5: boom")
        return 0.0

    monkeypatch.setattr(build, "run_notebook", notebook)
    fail = True
    with pytest.raises(CitysegError, match="boom"):
        build.run_report("smoke", pdf=False, verbose=False)
    assert ran == ["01_data_exploration", "02_baseline_fcn", "03_unet"] and "07_report" not in ran
    assert result_path("smoke", "03").read_bytes() == before  # kept as it was
    ran.clear()
    assert cli.main(["report", "--profile", "smoke", "--no-pdf", "--only", "07"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "notebook 03 failed" in err and "--only 03 07" in err, err
    assert ran == []
    fail = False
    with pytest.raises(CitysegError, match="07_report.ipynb is missing"):  # the stub wrote no executed copy
        build.run_report("smoke", only=["03", "07"], pdf=False, verbose=False)
    assert ran == ["03_unet", "07_report"]
    assert stale_lines("smoke", ["03"]) == []
