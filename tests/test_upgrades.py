"""Runs made by an older version of the code, met by this one (a user pulls a newer commit and
re-runs ``make report``): identities that stay put, and a clear line where one changed.

The older files are written here as the older versions wrote them (observed with real runs of
commits 595ab1b, 2026-12-01, to 504d8f8, 2026-12-05): a run folder before ``crop_size`` and
``crop_class_balance`` existed has neither key in ``config.yaml`` nor in ``identity.json``, and
its HASH was computed without them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
import yaml

from cityseg_lib import runstore
from cityseg_lib.config import TrainConfig, load_config
from cityseg_lib.errors import CitysegError
from cityseg_lib.runstore import identity
from cityseg_lib.strict import config_to_dict

#: Keys the 2026-12-01 16:43 run store (595ab1b) did not have; added two hours later (c6971c8).
LATER = ("crop_size", "crop_class_balance")


def _cfg(root, runs, name="r", **extra):
    values = {"name": name, "profile": "test", "runs_dir": str(runs), "data_root": str(root), "image_size": [32, 64],
              "model": "simple_fcn", "model_options": {"base_width": 4}, "epochs": 1, "batch_size": 2, "lr": 0.01,
              "step_size": 1, "gamma": 0.5, "progress": False, **extra}
    return load_config(None, values)


def _as_before(run: Path, keys=LATER, values: dict | None = None) -> Path:
    """``run`` as a version without ``keys`` (and with the computed ``values``) wrote it: the keys gone
    from config.yaml and identity.json, the folder named by the hash of what is left (that version's run_id)."""
    saved = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({k: v for k, v in saved.items() if k not in keys}, sort_keys=False))
    ident = json.loads((run / "identity.json").read_text())
    ident["computed"] = {**{k: v for k, v in ident["computed"].items() if k not in keys}, **(values or {})}
    old = {"config": ident["computed"], "dataset": ident["dataset"]["digest"]}
    ident["run_id"] = hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:8]
    (run / "identity.json").write_text(json.dumps(ident, indent=2))
    return run.rename(run.with_name(f"{run.name[:-9]}-{ident['run_id']}"))


def _files(run: Path) -> dict:
    return {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}


def test_the_identity_of_a_run_is_pinned(monkeypatch):
    """The hashed keys and the hash of one config, as every version since 2026-12-01 23:47
    (ac26f66, 092bb29, fa090ec, 504d8f8) computed them. A new TrainConfig key that fails this
    test goes to EXECUTION_KEYS (it does not change results) or ADDED_KEYS (with the value that
    computes what earlier runs did): otherwise every finished run of every user is trained again."""
    monkeypatch.setattr(identity, "dataset_fingerprint", lambda cfg: {"digest": "0123456789abcdef", "images": {}})
    values = {"name": "pin", "image_size": [32, 64], "model": "unet", "lr": 0.01, "batch_size": 2,
              "model_options": {"base_width": 4, "depth": 2}}
    before = load_config(None, {**values, "mask_resize": "nearest"})  # what every run computed until 2026-12-05
    hashed = ["amp", "annotation", "augment", "batch_size", "channels_last", "crop_class_balance", "crop_scale",
              "crop_size", "full_res_eval", "gamma", "hflip_p", "image_size", "loss", "lr", "max_batches",
              "max_val_images", "model", "model_options", "optimizer", "patience", "seed", "step_size", "subset_seed",
              "train_split", "train_subset", "val_split", "weight_decay"]
    assert sorted(identity.computed_config(before)) == hashed
    assert identity.run_id(before) == "9fddddf2"
    # the default since: masks resized at pixel centres, a new computation with its own identity
    now = load_config(None, values)
    assert sorted(identity.computed_config(now)) == sorted([*hashed, "mask_resize"])
    assert identity.computed_config(now)["mask_resize"] == "nearest-exact"
    assert identity.run_id(now) == "007efa0b"


@dataclasses.dataclass
class _Later(TrainConfig):
    """TrainConfig as a later version might have it: one more computed key, whose 0.0 computes
    what runs did before it existed."""

    new_knob: float = 0.0


def test_a_key_added_at_its_earlier_value_keeps_every_identity(monkeypatch):
    monkeypatch.setattr(identity, "dataset_fingerprint", lambda cfg: {"digest": "0123456789abcdef", "images": {}})
    monkeypatch.setattr(identity, "ADDED_KEYS", {"new_knob": 0.0})
    now = load_config(None, {"name": "r", "image_size": [32, 64], "lr": 0.01})
    fields = {f.name: getattr(now, f.name) for f in dataclasses.fields(TrainConfig)}
    later, other = _Later(**fields), _Later(**fields, new_knob=0.5)
    assert identity.run_id(later) == identity.run_id(now) != identity.run_id(other)
    assert "new_knob" not in identity.computed_config(later) and identity.computed_config(other)["new_knob"] == 0.5
    # a run saved before the key resumes under it at its earlier value, and is refused at another
    saved = config_to_dict(now)
    identity.check_same_computation(saved, later, "RUN")
    with pytest.raises(CitysegError, match=r"RUN: cannot resume: new_knob was 0.0 in that run, now 0.5"):
        identity.check_same_computation(saved, other, "RUN")


def test_a_run_from_before_a_key_is_kept_and_its_successor_says_why(demo_root, tmp_path, capsys):
    """A changed identity (here: keys added before ADDED_KEYS existed) trains the run again, beside
    the old one, which stays as it was; the notebooks' path, the command line and --resume say so
    in one line each, naming the keys (it read 'crop_class_balance was None in that run, now 0.0'
    on --resume, and nothing at all when a report trained a study again)."""
    from cityseg_lib.cli import main
    from cityseg_lib.execute import train_all

    old = _as_before(runstore.train_or_load(_cfg(demo_root, tmp_path), verbose=False))
    before = _files(old)
    args = ["name=r", "profile=test", f"runs_dir={tmp_path}", f"data_root={demo_root}", "image_size=[32, 64]",
            "model=simple_fcn", "model_options={base_width: 4}", "epochs=1", "batch_size=2", "lr=0.01",
            "step_size=1", "gamma=0.5", "progress=false"]
    capsys.readouterr()
    assert main(["train", *args, "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{old}: cannot resume: that run was trained by an older version" in err
    assert "config key crop_class_balance (now 0.0)" in err and "train without --resume" in err
    (new,) = train_all([_cfg(demo_root, tmp_path)], executor="local")
    out = capsys.readouterr().out
    assert new != old and new.parent == old.parent and _files(old) == before
    note = [line for line in out.splitlines() if "computes something else" in line]
    assert note == [f"r: a new run {runstore.relative(new)}; the earlier run {runstore.relative(old)} computes "
                    "something else (crop_class_balance=0.0, a key added since that run; crop_size=None, a key added "
                    "since that run) and is kept"]
    assert runstore.find_runs(_cfg(demo_root, tmp_path)) == [new, old]
    # cityseg report echoes it from the notebook's output (a report training a study again says why)
    from cityseg_lib.report.build import _PROGRESS

    assert _PROGRESS.match(note[0])


def test_a_resume_beside_another_computation_names_what_differs(demo_root, tmp_path, monkeypatch):
    """--resume where only another computation of the name exists: a config key is named by
    check_same_computation; what no config key shows (the dataset, a weights file's content, an
    older identity) is named from the run's identity.json (it always said 'the dataset differs')."""
    run = runstore.train_or_load(_cfg(demo_root, tmp_path), verbose=False)
    same = runstore.identity_change(run, _cfg(demo_root, tmp_path))
    assert same == "the same keys and data, identified by an older version"
    monkeypatch.setattr(identity, "dataset_fingerprint", lambda cfg: {"digest": "0123456789abcdef", "images": {}})
    with pytest.raises(CitysegError, match=r"cannot resume: that run computes something else \(the dataset's content"):
        runstore.prepare(_cfg(demo_root, tmp_path), resume=True)
    ident = json.loads((run / "identity.json").read_text())
    ident["computed"]["model_options"]["weights"] = "/old/path/model.pth"  # as identities before 2026-12-05 11:36
    (run / "identity.json").write_text(json.dumps(ident))
    change = runstore.identity_change(run, _cfg(demo_root, tmp_path))
    assert change == "model_options.weights='/old/path/model.pth' there, unset now; the dataset's content"


def test_a_sweep_whose_trials_changed_identity_says_so_and_keeps_them(tmp_path, monkeypatch):
    """A sweep folder keeps its hash (its own keys did not change) while its trials' identities
    did: the trials run again beside the old ones, kept, and the rung says so."""
    from cityseg_lib import sweep as S

    monkeypatch.setattr(identity, "dataset_fingerprint", lambda cfg: {"digest": "test", "images": {}})
    monkeypatch.setattr("cityseg_lib.sweep.run.count_train_images", lambda cfg: 8)
    result = {"subset": 8, "epochs": 1, "status": "ok", "best_val_loss": 1.0, "best_epoch": 1, "val_miou": 0.1,
              "train_time_s": 0.1, "wall_time_s": 0.1, "error": ""}
    trained = []
    monkeypatch.setattr("cityseg_lib.sweep.run.run_trial", lambda tc: trained.append(tc.name) or {
        **result, "best_val_loss": 1.0 + tc.lr, "subset": tc.train_subset or 8})
    cfg = S.SweepConfig(name="up", profile="smoke", runs_dir=str(tmp_path), devices=["cpu"], rung_epochs=1,
                        base={"model": "unet", "model_options": {"base_width": 4}}, grid={"lr": [1e-2, 1e-3]})
    cands = S.grid_candidates(cfg.grid)
    first = S.plan_rungs(len(cands), 8)[0]
    # the first trial as the older version left it: finished, under the hash without LATER's keys
    trial = runstore.run_dir(S.trial_config(cfg, cands[0], first, 8))
    trial.mkdir(parents=True)
    tc = S.trial_config(cfg, cands[0], first, 8)
    (trial / "config.yaml").write_text(yaml.safe_dump(config_to_dict(tc)))
    (trial / "identity.json").write_text(json.dumps({"run_id": "x", "computed": json.loads(json.dumps(
        identity.computed_config(tc))), "dataset": {"digest": "test"}}))
    (trial / "summary.json").write_text(json.dumps({"epochs": 1, "best_val_loss": 1.0}))
    old = _as_before(trial)
    before = _files(old)
    log = []
    out = S.run_sweep(cfg, log=log.append)
    assert any(t.endswith("/r0_c00") for t in trained) and _files(old) == before
    (line,) = [line for line in log if "start beside earlier runs" in line]
    assert line.startswith("rung 0: 1 trial(s) start beside earlier runs of theirs that are kept; the first: ")
    from cityseg_lib.report.build import _PROGRESS

    assert _PROGRESS.match(line)  # notebook 06's line reaches cityseg report's terminal
    assert f"the earlier run {runstore.relative(old)} computes something else (crop_class_balance=0.0" in line
    assert (out / "winner.json").is_file()


_SWIN = {"model": "swin2_jnet", "model_options": {"encoder": "swinv2_tiny_window8_256", "pretrained": False,
                                                   "encoder_kwargs": {"embed_dim": 24, "depths": [1, 1, 1, 1],
                                                                      "num_heads": [1, 2, 3, 4]}}}


def test_a_model_revision_enters_the_identity_only_where_it_computes_something_else(monkeypatch):
    """Swin2-JNet's decoder changed twice: revision 2 (2026-12-05) only at sizes 32 does not divide,
    revision 3 (up-convolutions for the bilinear up-sampling) at every size, so the demo's 48x96 runs
    and 64x96 (like the full profile's 768x768) all get a new identity; models without revisions are
    untouched (the U-Net's pinned hash above)."""
    monkeypatch.setattr(identity, "dataset_fingerprint", lambda cfg: {"digest": "0123456789abcdef", "images": {}})
    odd, even = (load_config(None, {"name": "s", "image_size": size, "lr": 0.01, **_SWIN}) for size in ([48, 96], [64, 96]))
    assert identity.computed_config(odd)["model_revision"] == identity.computed_config(even)["model_revision"] == 3
    unet = load_config(None, {"name": "u", "image_size": [48, 96], "model": "unet", "lr": 0.01})
    assert "model_revision" not in identity.computed_config(unet)


@pytest.mark.parametrize("size, saved", [([48, 96], 2), ([64, 96], None)],
                         ids=["48x96 of revision 2", "64x96 of revision 1"])
def test_weights_of_an_earlier_model_revision_are_not_scored_by_this_one(demo_root, tmp_path, capsys, size, saved):
    """A Swin2-JNet run trained before revision 3: at 48x96 by revision 2 (its identity.json records
    it), at 64x96 (as the full profile's 768x768) by revision 1 (its identity.json records none). It
    holds weights of a decoder without up-convolutions: evaluate, predict and export refuse it in one
    line, a rebuild trains a new run beside it (the line names model_revision) and keeps it."""
    from cityseg_lib.cli import main
    from cityseg_lib.execute import train_all
    from cityseg_lib.train.engine import load_run

    cfg = _cfg(demo_root, tmp_path, name="s", image_size=size, **_SWIN)
    run = runstore.train_or_load(cfg, verbose=False)
    assert load_run(run)[0].model == "swin2_jnet"  # this version's own run loads
    old = _as_before(run, keys=("model_revision",), values=None if saved is None else {"model_revision": saved})
    before = _files(old)
    capsys.readouterr()
    image = next(demo_root.rglob("*_leftImg8bit.png"))
    for command in (["evaluate"], ["predict", "--input", str(image), "--out", str(tmp_path / "pred")],
                    ["export", "--out", str(tmp_path / "model.onnx")]):
        assert main([*command, "--run", str(old)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, command
        assert f"trained by revision {saved or 1} of the swin2_jnet model, and this version builds revision 3" in err
    assert not (tmp_path / "pred").exists() and not (tmp_path / "model.onnx").exists()
    (new,) = train_all([cfg], executor="local")
    note = [line for line in capsys.readouterr().out.splitlines() if "computes something else" in line]
    assert new != old and _files(old) == before
    assert note and f"(model_revision {saved or 1} there, 3 now) and is kept" in note[0]
