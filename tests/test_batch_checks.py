"""A training batch of one image on a 1x1 U-Net bottleneck (BatchNorm's "Expected more than 1 value
per channel when training") is refused where the config enters, and the count of the smallest
training batch is the one the training loader makes."""

from __future__ import annotations

import pytest
import torch

from cityseg_lib.cli import main
from cityseg_lib.errors import CitysegError
from cityseg_lib.models import build_model, check_model


def _trains_and_accepted(model_name: str, options: dict, size: tuple[int, int], batch: int, refusal: str):
    """Whether a training-mode forward of ``batch`` images at ``size`` runs (else BatchNorm's error),
    and whether ``check_model`` accepts the same (else its one line, holding ``refusal``)."""
    model = build_model(model_name, **options).train()
    try:
        model(torch.zeros(batch, 3, *size))
        trains = True
    except ValueError as e:
        assert "Expected more than 1 value per channel when training" in str(e)
        trains = False
    try:
        check_model(model_name, options, size, smallest_batch=batch)
        accepted = True
    except CitysegError as e:
        assert refusal in str(e) and "raise batch_size" in str(e)
        accepted = False
    return trains, accepted


@pytest.mark.parametrize("size, batch", [((4, 4), 1), ((4, 7), 1), ((7, 7), 1), ((4, 8), 1), ((8, 8), 1),
                                         ((4, 4), 2), ((5, 9), 1)])
def test_the_unet_batch_check_refuses_exactly_what_batchnorm_cannot_train(size, batch):
    trains, accepted = _trains_and_accepted("unet", {"base_width": 4, "depth": 2}, size, batch, "1x1 bottleneck")
    assert accepted == trains, (size, batch)
    assert trains == (batch > 1 or max(size) >= 8)  # the cases meant to break, broke


@pytest.mark.parametrize("overrides", [
    ["image_size=[4, 4]", "batch_size=1"],
    ["image_size=[4, 6]", "batch_size=4", "train_subset=1"],
    ["image_size=[4, 4]", "batch_size=2", "train_subset=0.1"],  # 0.1 of 6 frames rounds to 1
])
def test_train_refuses_a_batch_of_one_on_a_1x1_bottleneck_before_any_folder(demo_root, tmp_path, capsys, monkeypatch,
                                                                             overrides):
    monkeypatch.setattr("cityseg_lib.train.engine.fit", lambda *a, **k: pytest.fail("training started"))
    runs = tmp_path / "runs"
    argv = ["train", f"runs_dir={runs}", f"data_root={demo_root}", "epochs=1", "device=cpu", "model=unet",
            "model_options={base_width: 4, depth: 2}", *overrides]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "leaves a 1x1 bottleneck" in err, (out, err)
    assert not runs.exists()


@pytest.mark.parametrize("n, batch_size", [(1, 1), (1, 2), (2, 2), (3, 2), (5, 2), (4, 3), (7, 3), (2, 4)])
def test_smallest_batch_is_the_smallest_batch_the_training_loader_makes(monkeypatch, n, batch_size):
    from cityseg_lib import runstore
    from cityseg_lib.config import load_config
    from cityseg_lib.train.engine import _loaders

    cfg = load_config(None, {"batch_size": batch_size, "data_root": "unused"})
    monkeypatch.setattr("cityseg_lib.runstore.identity.dataset_fingerprint",
                        lambda c: {"images": {f"{c.train_split}/{c.annotation}": n}})
    train, *_ = _loaders(cfg, list(range(n)), [0], workers=0, use_cuda=False, distributed=False)
    assert runstore.smallest_batch(cfg, world=1) == min(len(b) for b in train)


@pytest.mark.parametrize("n, batch_size", [(6, 4), (7, 2), (8, 4), (9, 4), (3, 4), (17, 4)])
def test_under_ddp_each_process_trains_its_share_in_batches_and_smallest_batch_counts_them(monkeypatch, n,
                                                                                          batch_size):
    """Two processes: DistributedSampler gives each n // 2 images. The loader dropped the partial
    batch by the whole set's size, so 6 images at batch 4 left each process 3 images and no batch at
    all (an epoch without a step); now each trains its share, and smallest_batch says what it holds."""
    from functools import partial

    from cityseg_lib import runstore
    from cityseg_lib.config import load_config
    from cityseg_lib.train.engine import _loaders

    cfg = load_config(None, {"batch_size": batch_size, "data_root": "unused"})
    monkeypatch.setattr("cityseg_lib.runstore.identity.dataset_fingerprint",
                        lambda c: {"images": {f"{c.train_split}/{c.annotation}": n}})
    sizes = []
    for rank in (0, 1):
        monkeypatch.setattr(torch.utils.data, "DistributedSampler",
                            partial(torch.utils.data.DistributedSampler, num_replicas=2, rank=rank))
        train, *_ = _loaders(cfg, list(range(n)), [0], workers=0, use_cuda=False, distributed=True)
        sizes.append([len(b) for b in train])
    assert sizes[0] == sizes[1] and sizes[0], sizes  # every process steps, the same number of times
    assert sum(sizes[0]) == (n // 2 if n // 2 <= batch_size else n // 2 // batch_size * batch_size)
    assert runstore.smallest_batch(cfg, world=2) == min(sizes[0])



def test_fewer_training_images_than_ddp_processes_are_refused_in_one_line_before_any_folder(
        demo_root, tmp_path, capsys, monkeypatch):
    """DistributedSampler(drop_last=True) gives each of ``world`` processes ``n // world`` images: with
    fewer images than processes every share was empty, and the run "finished" its epochs without a
    step (train loss 0.0000 in metrics.csv). Refused where the config enters, on every rank alike."""
    from cityseg_lib import runstore
    from cityseg_lib.config import load_config

    runs = tmp_path / "runs"
    cfg = load_config(None, {"data_root": str(demo_root), "runs_dir": str(runs), "train_subset": 2, "batch_size": 1})
    assert runstore.smallest_batch(cfg, world=2) == 1  # one image each: trains
    with pytest.raises(CitysegError, match=r"^3 DDP processes need at least 3 training images \(one each\), but the "
                                           r"train split \(fine labels, train_subset=2\) gives 2: run on at most 2 "):
        runstore.smallest_batch(cfg, world=3)
    monkeypatch.setenv("WORLD_SIZE", "7")  # what torchrun --nproc-per-node 7 tells each process (6 images here)
    argv = ["train", f"runs_dir={runs}", f"data_root={demo_root}", "epochs=1", "device=cpu", "model=simple_fcn"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "7 DDP processes need at least 7 training images" in err, (out, err)
    assert "gives 6:" in err and not runs.exists()


def test_a_sweep_whose_trials_train_batches_of_one_on_a_1x1_bottleneck_exits_2_before_any_folder(
        demo_root, tmp_path, capsys, monkeypatch):
    from cityseg_lib.paths import params_dir

    monkeypatch.setattr("cityseg_lib.sweep.run.run_trial", lambda tc: pytest.fail("a trial ran"))
    runs = tmp_path / "runs"
    argv = ["sweep", "--params", str(params_dir("smoke") / "sweep.yaml"), f"base.data_root={demo_root}",
            f"runs_dir={runs}", "base.image_size=[4, 4]", "base.batch_size=1"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and "leaves a 1x1 bottleneck" in err and err.count("\n") == 1, err
    assert not runs.exists()


TINY_SWIN = {"encoder": "swinv2_tiny_window8_256", "pretrained": False,
             "encoder_kwargs": {"embed_dim": 24, "depths": [1, 1, 1, 1], "num_heads": [1, 2, 3, 4], "window_size": 2}}


@pytest.mark.parametrize("size, batch, batchnorm", [((32, 32), 1, True), ((32, 32), 2, True), ((32, 32), 1, False),
                                                    ((33, 35), 1, True), ((36, 32), 1, True), ((32, 64), 1, True),
                                                    ((48, 48), 1, True)])
def test_the_swin2_jnet_batch_check_refuses_exactly_what_batchnorm_cannot_train(size, batch, batchnorm):
    """Swin V2's deepest grid: side // 4, then halved with padding three times (32 and 35 -> 1, 36 -> 2);
    a 1x1 grid in a batch of one breaks the decoder's deepest BatchNorm, and only that is refused."""
    options = {**TINY_SWIN, "img_size": list(size), "batchnorm": batchnorm}
    trains, accepted = _trains_and_accepted("swin2_jnet", options, size, batch, "deepest grid 1x1")
    assert accepted == trains, (size, batch, batchnorm)
    assert trains == (batch > 1 or not batchnorm or max(size) > 35)  # the cases meant to break, broke
