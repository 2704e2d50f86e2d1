"""``cityseg report`` checks everything it can before the first notebook starts: each failure is one
line naming the file, key or value, exit code 2, and no notebook runs (nor is any data generated)."""

from __future__ import annotations

import pytest

from cityseg_lib import cli
from cityseg_lib.errors import CitysegError
from cityseg_lib.report import build, preflight


@pytest.fixture
def report(tmp_path, monkeypatch, capsys):
    """Run ``cityseg report --profile smoke --no-pdf ARGS``; returns (exit code, stderr)."""
    monkeypatch.setenv("CITYSEG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty Hugging Face cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_notebook(*args, **kwargs):
        raise AssertionError("a notebook ran although the checks failed")

    monkeypatch.setattr(build, "run_notebook", no_notebook)

    def run(*args: str, profile: str = "smoke") -> tuple[int, str]:
        rc = cli.main(["report", "--profile", profile, "--no-pdf", *args])
        err = capsys.readouterr().err.strip()
        assert not (tmp_path / "home" / "data").exists(), "data was generated before the checks passed"
        return rc, err

    return run


def _failed(result: tuple[int, str], *needles: str) -> None:
    rc, err = result
    assert rc == 2, err
    assert err.count("\n") == 0, f"not one line: {err!r}"
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"


def test_unknown_key_of_a_set_override(report):
    _failed(report("--set", "03.x=1"), "--set 03.x", "unknown parameter 'x'", "03_unet")


def test_bad_value_in_the_training_block(report):
    _failed(report("--set", "03.train={batch_size: 0}"), "03_unet", "batch_size=0", "out of range")


def test_bad_type_of_a_parameter(report):
    _failed(report("--set", "01.n_samples=abc"), "01_data_exploration", "n_samples='abc'", "is not a number")


def test_bad_loss_and_sweep_settings(report):
    _failed(report("--set", "05.losses=[focal]"), "05_loss_comparison", "loss='focal'")
    _failed(report("--set", "06.sweep_overrides={rung_epochs: 0}"), "06_halving_sweep", "rung_epochs=0")
    _failed(report("--set", "06.sweep_files={unet: nope.yaml}"), "nope.yaml", "not found")



@pytest.mark.parametrize("files, needles", [
    # a mapping as the file name failed with a TypeError traceback (PosixPath / dict)
    ("{unet: {epochs: 0}}", ("sweep_files.unet={'epochs': 0} must name a sweep params file",)),
    ("{unet: 3}", ("sweep_files.unet=3 must name a sweep params file",)),
    ("{unet: ''}", ("sweep_files.unet='' must name a sweep params file",)),
    # a model without a main run passed the checks and failed in notebook 06, after 01-05 had run
    ("{unett: sweep.yaml}", ("sweep_files: 'unett' is not a model with a main run", "unet, swin2_jnet")),
])
def test_bad_sweep_files_entries_fail_before_any_notebook(report, files, needles):
    _failed(report("--set", f"06.sweep_files={files}"), "06_halving_sweep", *needles)


def test_unknown_model_option(report):
    _failed(report("--set", "02.model_options={widht: 4}"), "02_baseline_fcn", "'widht'", "base_width")


def test_model_option_values_and_input_sizes_fail_before_any_notebook(report):
    _failed(report("--set", "02.model_options={base_width: -1}"), "02_baseline_fcn", "base_width=-1")
    _failed(report("--set", "03.model_options={base_width: 4, depth: 2, dropout: 3}"), "03_unet", "dropout=3")
    _failed(report("--set", "03.model_options={base_width: 4, depth: 20}"), "03_unet", "depth=20", "above 8")
    _failed(report("--set", "03.model_options={base_width: 4, depth: 7}"), "03_unet", "smaller than 2**depth = 128")
    _failed(report("--set", "04.encoder=nosuch"), "04_swin2_jnet", "'nosuch' is not a timm model name")
    _failed(report("--set", "04.dropout=-1"), "04_swin2_jnet", "dropout=-1")


def test_device_and_test_split_fail_before_any_notebook(report):
    _failed(report("--set", "03.train={device: gpu}"), "03_unet", "device='gpu'", "cuda:N")
    _failed(report("--set", "02.train={val_split: test}"), "02_baseline_fcn", "val_split='test'", "withholds")


def test_counts_of_the_exploration_and_report_notebooks(report):
    _failed(report("--set", "01.stats_stride=0"), "01_data_exploration", "stats_stride=0", "integer >= 1")
    _failed(report("--set", "01.n_samples=-3"), "n_samples=-3", "integer >= 0")
    _failed(report("--set", "07.speed_rounds=-5"), "07_report", "speed_rounds=-5")
    _failed(report("--set", "07.n_qualitative=1.5"), "n_qualitative=1.5", "integer")
    _failed(report("--set", "03.cpu_threads=-4"), "03_unet", "cpu_threads=-4")


def test_nulls_seeds_and_sizes_fail_before_any_notebook(report):
    _failed(report("--set", "01.stats_stride=null"), "01_data_exploration", "stats_stride=None is not a number")
    _failed(report("--set", "03.constant_gamma=null"), "03_unet", "constant_gamma=None is not a number")
    _failed(report("--set", "03.resolution_size=[32]"), "03_unet", "resolution_size=[32]: expected [H, W]")
    _failed(report("--set", "02.seeds=[a]"), "02_baseline_fcn", "seeds=['a']: expected a list of integers >= 0")
    _failed(report("--set", "02.seeds=null"), "02_baseline_fcn", "seeds=None is not a list")
    _failed(report("--set", "04.seeds=[11, 12]"), "04_swin2_jnet", "must include the main run's seed 0",
            "train={seed: 11}")
    _failed(report("--set", "03.seeds=[0, 1, 1]"), "03_unet", "a seed is listed twice")
    _failed(report("--set", "05.seeds=[]"), "05_loss_comparison", "seeds=[]: at least 1 seed(s) needed")


def test_an_override_of_a_notebook_not_run_is_refused(report):
    _failed(report("--only", "02", "07", "--set", "03.seeds=[0]"), "--set 03.seeds", "notebook 03_unet is not run",
            "--only 02 07")


def test_a_notebook_cannot_switch_to_another_profile(report):
    _failed(report("--set", "03.profile=full"), "--set 03.profile", "profile='full'", "--profile")


def test_generated_data_settings_are_checked_naming_data_yaml(report, monkeypatch):
    from cityseg_lib.data import source

    real = source.data_settings
    for bad, needle in (({"train": -2}, "train=-2"), ({"size": [5, 5]}, "size=[5, 5]"), ({"val": 0}, "val=0"),
                        ({"train": "many"}, "train='many'")):
        monkeypatch.setattr(source, "data_settings", lambda profile, bad=bad: {**real(profile), **bad})
        _failed(report(), "smoke/data.yaml", needle)


def test_pretrained_weights_offline_without_a_local_file(report):
    _failed(report("--set", "04.pretrained=true"), "04_swin2_jnet", "HF_HUB_OFFLINE=1", "weights:",
            "HF_HUB_OFFLINE=0")


def test_pretrained_weights_file_missing(report, tmp_path):
    missing = tmp_path / "model.safetensors"
    _failed(report("--set", "04.pretrained=true", "--set", f"04.weights={missing}"), str(missing), "unreadable")


def test_a_weights_file_of_another_model_is_refused_before_any_notebook_and_a_fitting_one_passes(report, tmp_path):
    """The check builds notebook 04's model with the file, as the notebook will: a checkpoint of
    another model fails here, not after notebooks 01-03 trained."""
    import timm
    import torch
    import yaml

    from cityseg_lib.paths import source_root

    kwargs = yaml.safe_load((source_root() / "params" / "smoke" / "04_swin2_jnet.yaml").read_text())["encoder_kwargs"]
    other = tmp_path / "resnet.pth"
    torch.save(timm.create_model("resnet18", pretrained=False).state_dict(), other)
    _failed(report("--set", "04.pretrained=true", "--set", f"04.weights={other}"), "04_swin2_jnet", str(other),
            "does not load into encoder 'swinv2_tiny_window8_256'", "tensors missing")
    fitting = tmp_path / "model.pth"
    torch.save(timm.create_model("swinv2_tiny_window8_256", pretrained=False, **kwargs).state_dict(), fitting)
    params, configs = preflight.check("smoke", overrides={"04": {"pretrained": True, "weights": str(fitting)}},
                                      selected=["04_swin2_jnet"])
    assert {c.model_options.get("weights") for c in configs["04_swin2_jnet"]} == {str(fitting)}


def test_dataset_root_missing_or_without_the_layout(report, tmp_path, monkeypatch):
    monkeypatch.setenv("CITYSCAPES_DATASET", str(tmp_path / "nowhere"))
    _failed(report(), "CITYSCAPES_DATASET", "does not exist")
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("CITYSCAPES_DATASET", str(tmp_path / "empty"))
    _failed(report(), "no leftImg8bit/ and gtFine/")


def test_full_profile_needs_cityscapes(report):
    _failed(report(profile="full"), "needs the real Cityscapes", "CITYSCAPES_DATASET")


def test_the_checks_pass_on_the_committed_profiles(tmp_path, monkeypatch, demo_root):
    """Every committed profile passes the checks (full: on a stand-in dataset, with weights available)."""
    monkeypatch.setenv("CITYSEG_HOME", str(tmp_path))
    for profile in ("smoke", "demo"):
        params, configs = preflight.check(profile)
        assert set(params) == set(build.NOTEBOOKS) and all(p["profile"] == profile for p in params.values())
        size = {"smoke": "48x96", "demo": "72x144"}[profile]
        # both profiles have a main recipe (params/PROFILE/main.yaml): the ablations' reference trains too
        assert [c.name for c in configs["03_unet"]] == ["unet", "unet_seed1", "unet_seed2", "unet_ablation",
                                                        "unet_ablation_seed1", "unet_ablation_seed2", "unet_constant_lr",
                                                        "unet_aug_replace", "unet_aug_augment", "unet_opt_adam",
                                                        "unet_opt_adamax", f"unet_{size}"]
        # 05's cross-entropy runs are 03's U-Net reference with its seeds, reused
        assert [c.name for c in configs["05_loss_comparison"][:3]] == ["unet_ablation", "unet_ablation_seed1",
                                                                       "unet_ablation_seed2"]
    monkeypatch.setenv("CITYSCAPES_DATASET", str(demo_root))
    monkeypatch.setattr("cityseg_lib.report.weights_check._cached", lambda repo, filename: True)
    params, configs = preflight.check("full")
    assert params["04_swin2_jnet"]["pretrained"] is True
    sizes = {c.name: c.image_size for cs in configs.values() for c in cs}
    assert sizes.pop("unet_1024x2048") == (1024, 2048)  # Section 3.1's comparison: the full resolution
    assert set(sizes.values()) == {(768, 768)}  # the reference's size everywhere else
    # one recipe (no params/full/main.yaml): no ablation reference; 05 reuses the main U-Net's seeds
    assert not any("ablation" in name for name in sizes)
    assert [c.name for c in configs["05_loss_comparison"][:3]] == ["unet", "unet_seed1", "unet_seed2"]


def test_re_rendering_the_report_does_not_need_the_weights(tmp_path, monkeypatch, demo_root):
    monkeypatch.setenv("CITYSEG_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("CITYSCAPES_DATASET", str(demo_root))
    preflight.check("full", selected=["07_report"])  # notebook 07 trains nothing
    with pytest.raises(CitysegError, match="HF_HUB_OFFLINE=1"):
        preflight.check("full", selected=["04_swin2_jnet"])


def test_every_architecture_runs_three_seeds_and_05_reuses_03s_cross_entropy_runs(tmp_path):
    """Each profile trains the three architectures with three seeds (the first is the main run), and
    notebook 05's cross-entropy runs are notebook 03's U-Net seeds by name and computation, so the
    run store reuses them instead of training them twice."""
    from cityseg_lib.report import experiments as ex
    from cityseg_lib.runstore import computed_config

    def params(profile, stem):
        return {**preflight.notebook_defaults(build.notebook_paths()[stem]), **build.notebook_params(profile, stem)}

    for profile in ("smoke", "demo", "full"):
        for stem in ("02_baseline_fcn", "04_swin2_jnet", "05_loss_comparison"):
            assert len(params(profile, stem)["seeds"]) >= 3, (profile, stem)
        seeds = params(profile, "03_unet")["seeds"]
        assert len(seeds) >= 3, profile
        unet = ex.unet_runs(profile, str(tmp_path), {}, {"base_width": 4, "depth": 2}, None, ["none"], seeds=seeds)
        group = ex.seed_group(unet, "unet")
        assert [unet[k].seed for k in group] == seeds and group[0] == "unet"
        losses = ex.loss_runs(profile, unet["unet"], str(tmp_path), {}, ["cross_entropy", "dice"], seeds)
        for key, cfg in zip(group, losses["cross_entropy"]):
            assert cfg.name == unet[key].name and computed_config(cfg) == computed_config(unet[key])
        assert all(c.name.startswith("loss_dice_seed") for c in losses["dice"])


def test_a_second_build_of_a_profile_is_refused_at_once_naming_the_first(report, tmp_path):
    """Two builds of one profile would train the same runs and write the same results files."""
    import subprocess
    import sys

    folder = tmp_path / "home" / "reports" / "smoke"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom cityseg_lib.lock import folder_lock\n"
         f"with folder_lock({str(folder)!r}, 'cityseg report'):\n    print('held', flush=True)\n    time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        _failed(report(), str(folder), "another cityseg report is using this folder", f"pid {holder.pid}")
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("profile", ["..", "../..", ""])
def test_a_profile_that_is_a_path_is_named_as_such(report, capsys, profile):
    """--profile .. was read as params/../ and refused naming params/../data.yaml, not the profile."""
    with pytest.raises(SystemExit) as stop:
        report(profile=profile)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1, err
    assert f"argument --profile: profile={profile!r} must be one plain folder name" in err, err
