"""Two recipes in one profile (``params/PROFILE/main.yaml``): the main runs of 02-04 train with it over the
shared block, every ablation trains with the shared block alone and is compared with its architecture
trained the same way (the *ablation reference*); without the file, one recipe and no extra run.
And the sweep's pool (``base.train_subset``): the rungs are nested in the images the tuned run trains on."""

from __future__ import annotations

from pathlib import Path

import pytest

import cityseg_lib.paths as paths
from cityseg_lib import sweep as S
from cityseg_lib.data.dataset import subset_indices
from cityseg_lib.report import experiments as ex
from cityseg_lib.runstore import run_dir

SHARED = "epochs: 3\nimage_size: [48, 96]\ntrain_subset: 4\nbatch_size: 2\n"
MAIN = "epochs: 5\nimage_size: [64, 128]\ntrain_subset: null\n"


@pytest.fixture
def profile(tmp_path, monkeypatch):
    """A params folder ``test`` with the shared block; ``main(text)`` adds a main.yaml."""
    folder = tmp_path / "params" / "test"
    folder.mkdir(parents=True)
    (folder / "train.yaml").write_text(SHARED)
    monkeypatch.setattr(paths, "params_dir", lambda p: folder)
    return folder


def _unet(root="data", **kw):
    return ex.unet_runs("test", root, {}, {"base_width": 4, "depth": 2}, 1.0, ["none", "replace"], ["adamw", "adam"],
                        [32, 64], [0, 1], **kw)


def test_main_yaml_trains_the_main_runs_longer_and_the_ablations_against_a_reference_of_their_recipe(profile, demo_root):
    (profile / "main.yaml").write_text(MAIN)
    cfgs = _unet(demo_root)
    assert set(cfgs) == {"unet", "unet_seed1", "unet_ablation", "unet_ablation_seed1", "unet_constant_lr",
                         "unet_aug_replace", "unet_opt_adam", "unet_size"}
    for key in ("unet", "unet_seed1"):  # the main recipe over the shared block
        assert (cfgs[key].epochs, cfgs[key].image_size, cfgs[key].train_subset, cfgs[key].batch_size) == (5, (64, 128), None, 2)
    for key in ("unet_ablation", "unet_ablation_seed1", "unet_constant_lr", "unet_aug_replace", "unet_opt_adam"):
        assert (cfgs[key].epochs, cfgs[key].image_size, cfgs[key].train_subset) == (3, (48, 96), 4), key
    assert [cfgs[k].seed for k in ("unet_ablation", "unet_ablation_seed1")] == [0, 1]
    assert ex.ablation_key(cfgs, "unet") == "unet_ablation"
    # the loss comparison on the reference reuses its runs by name: one folder, not trained twice
    losses = ex.loss_runs("test", cfgs["unet_ablation"], demo_root, {}, ["cross_entropy", "dice"], [0, 1])
    assert [c.name for c in losses["cross_entropy"]] == ["unet_ablation", "unet_ablation_seed1"]
    assert run_dir(losses["cross_entropy"][1]) == run_dir(cfgs["unet_ablation_seed1"])
    assert [c.epochs for c in losses["dice"]] == [3, 3]
    swin = ex.swin_runs("test", "data", {}, "swinv2_tiny_window8_256", False, "", {}, 0.1, True, False, [0])
    assert set(swin) == {"swin2_jnet", "swin2_jnet_ablation", "swin2_jnet_no_dropout"}
    assert swin["swin2_jnet"].epochs == 5 and swin["swin2_jnet_no_dropout"].epochs == 3
    fcn = ex.baseline_runs("test", "data", {}, {"base_width": 4}, [0, 1])
    assert set(fcn) == {"simple_fcn", "simple_fcn_seed1"} and fcn["simple_fcn_seed1"].epochs == 5


def test_main_model_options_widen_the_main_unet_only(profile, demo_root):
    (profile / "main.yaml").write_text(MAIN)
    cfgs = _unet(demo_root, main_model_options={"base_width": 8})
    assert cfgs["unet"].model_options == cfgs["unet_seed1"].model_options == {"base_width": 8, "depth": 2}
    for key in ("unet_ablation", "unet_ablation_seed1", "unet_constant_lr", "unet_opt_adam", "unet_size"):
        assert cfgs[key].model_options == {"base_width": 4, "depth": 2}, key
    from cityseg_lib.errors import CitysegError

    with pytest.raises(CitysegError, match="main_model_options=8"):
        _unet(demo_root, main_model_options=8)


def test_without_main_yaml_the_main_run_is_its_own_reference(profile):
    cfgs = _unet()
    assert not any("ablation" in k for k in cfgs) and ex.ablation_key(cfgs, "unet") == "unet"
    assert cfgs["unet"].epochs == cfgs["unet_constant_lr"].epochs == 3
    # a main.yaml that changes nothing trains nothing more either
    (profile / "main.yaml").write_text("epochs: 3\n")
    assert set(_unet()) == set(cfgs)


def test_a_bad_main_yaml_value_names_the_file_and_key(profile):
    from cityseg_lib.errors import CitysegError

    (profile / "main.yaml").write_text("epochs: 0\n")
    with pytest.raises(CitysegError, match=r"main\.yaml.*epochs"):
        _unet()


def test_the_sweeps_rungs_are_nested_in_its_pool_and_the_final_rung_trains_on_all_of_it(demo_root, tmp_path):
    """base.train_subset (the tuned run's images) is the sweep's whole training set: the rungs draw nested
    subsets of it with the same permutation, and the final rung's trials train on exactly those images."""
    cfg = S.load_sweep_config(Path(paths.source_root()) / "params/smoke/sweep.yaml",
                              [f"base.data_root={demo_root}", f"runs_dir={tmp_path}", "base.train_subset=4"])
    n = S.count_train_images(cfg)
    assert n == 4  # of the 6 frames of the split
    plan = S.plan_rungs(2, n, cfg.min_subset, cfg.rung_epochs, cfg.final_epochs)
    cand = S.grid_candidates(cfg.grid)[0]
    first, final = S.trial_config(cfg, cand, plan[0], n), S.trial_config(cfg, cand, plan[-1], n)
    assert final.train_subset == 4
    pool = set(subset_indices(6, 4, cfg.subset_seed))
    assert set(subset_indices(6, first.train_subset, first.subset_seed)) <= pool
    with pytest.raises(Exception, match="train_subset is set by the sweep"):
        S.load_sweep_config(Path(paths.source_root()) / "params/smoke/sweep.yaml",
                            [f"base.data_root={demo_root}", "grid.train_subset=[2, 4]"])
