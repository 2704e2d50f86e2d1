"""``cpu_bf16``: bf16 autocast and channels_last for CPU training (off | on | auto: where the CPU has
AMX tiles). The value is checked; ``auto`` follows torch's AMX probe; a CPU run trains under the
resolved autocast and records it (``last.pt``, ``summary.json``); a run resumes bit for bit in the
precision it began with, also where ``auto`` now resolves otherwise; ``off`` keeps every identity."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from cityseg_lib import runstore
from cityseg_lib.config import TrainConfig, load_config
from cityseg_lib.errors import CitysegError
from cityseg_lib.files import atomic_write_json
from cityseg_lib.train import engine
from cityseg_lib.train import resume as R
from cityseg_lib.train.checkpoint import load_checkpoint
from cityseg_lib.train.setup import autocast, cpu_has_amx, precision
from test_resume_faults import _assert_same_run, _cfg, _kill_at, _Killed, _weights

CPU, CUDA = torch.device("cpu"), torch.device("cuda", 0)


def _amx(monkeypatch, present: bool) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: present, raising=False)


# ----------------------------------------------------------------------------- the key


@pytest.mark.parametrize("value", ["maybe", "ON", "bf16", ""])
def test_a_bad_value_is_one_line_naming_the_key_and_its_values(value):
    with pytest.raises(CitysegError) as err:
        load_config(None, {"cpu_bf16": value})
    assert str(err.value) == f"override: cpu_bf16={value!r} is out of range (allowed: one of off, on, auto)"


def test_yamls_unquoted_on_and_off_read_as_the_words(tmp_path):
    """YAML 1.1 reads ``on``/``off`` as booleans: ``cpu_bf16=on`` and ``cpu_bf16: off`` mean the words."""
    assert load_config(None, ["cpu_bf16=on"]).cpu_bf16 == "on"
    assert load_config(None, ["cpu_bf16=auto"]).cpu_bf16 == "auto"
    params = tmp_path / "p.yaml"
    params.write_text("cpu_bf16: off\n")
    assert load_config(params).cpu_bf16 == "off"
    assert TrainConfig().cpu_bf16 == "off"


def test_auto_follows_the_amx_probe_and_cuda_keeps_amp_and_channels_last(monkeypatch):
    on, off, auto = (TrainConfig(cpu_bf16=v) for v in ("on", "off", "auto"))
    _amx(monkeypatch, True)
    assert cpu_has_amx() and precision(auto, CPU) == (True, True) and precision(off, CPU) == (False, False)
    _amx(monkeypatch, False)
    assert not cpu_has_amx() and precision(auto, CPU) == (False, False) and precision(on, CPU) == (True, True)
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")  # an older torch: no probe
    assert not cpu_has_amx() and precision(auto, CPU) == (False, False)

    def broken():
        raise RuntimeError("cpuinfo failed")

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", broken, raising=False)
    assert not cpu_has_amx()
    # a resumed run's recorded precision wins over the config on the CPU
    assert precision(off, CPU, recorded=True) == (True, True) and precision(on, CPU, recorded=False) == (False, False)
    # CUDA: amp and channels_last, whatever cpu_bf16 says
    assert precision(off, CUDA) == (True, True) and precision(on, CUDA, recorded=False) == (True, True)
    assert precision(TrainConfig(cpu_bf16="on", amp=False, channels_last=False), CUDA) == (False, False)
    assert precision(TrainConfig(amp=True, channels_last=False), CUDA) == (True, False)


def test_cpu_autocast_runs_convolutions_in_bf16():
    conv = nn.Conv2d(3, 4, 3)
    x = torch.randn(1, 3, 8, 8)
    with autocast(CPU, True):
        assert conv(x).dtype == torch.bfloat16
    with autocast(CPU, False):
        assert conv(x).dtype == torch.float32


def test_off_keeps_every_identity_and_on_or_auto_are_other_runs(monkeypatch):
    """The hashes every version computed before cpu_bf16 existed (run 007efa0b as in
    test_upgrades; a sweep's 92b3414f, computed by the commit before this key)."""
    from cityseg_lib.runstore import identity
    from cityseg_lib.sweep import SweepConfig
    from cityseg_lib.sweep.trials import sweep_id

    monkeypatch.setattr(identity, "dataset_fingerprint", lambda cfg: {"digest": "0123456789abcdef", "images": {}})
    values = {"name": "pin", "image_size": [32, 64], "model": "unet", "lr": 0.01, "batch_size": 2,
              "model_options": {"base_width": 4, "depth": 2}}
    for given in ({}, {"cpu_bf16": "off"}, {"cpu_bf16": False}):
        cfg = load_config(None, {**values, **given})
        assert identity.run_id(cfg) == "007efa0b" and "cpu_bf16" not in identity.computed_config(cfg)
    on, auto = (load_config(None, {**values, "cpu_bf16": v}) for v in ("on", "auto"))
    assert len({identity.run_id(on), identity.run_id(auto), "007efa0b"}) == 3
    assert identity.computed_config(on)["cpu_bf16"] == "on"

    def sweep(**base):
        return SweepConfig(name="pin", profile="smoke", devices=["cpu"], rung_epochs=1, grid={"lr": [1e-2, 1e-3]},
                           base={"model": "unet", "model_options": {"base_width": 4}, "image_size": [32, 64], **base})

    assert sweep_id(sweep()) == "92b3414f"
    assert sweep_id(sweep(cpu_bf16="auto")) != "92b3414f"


# ----------------------------------------------------------------------------- training


def _watch_convolutions(monkeypatch) -> list[tuple[torch.dtype, bool]]:
    """``(output dtype, input channels_last)`` of every training-mode convolution of the models fit builds."""
    seen = []
    real = engine.build_model_for

    def hook(module, inputs, output):
        if module.training:
            seen.append((output.dtype, inputs[0].is_contiguous(memory_format=torch.channels_last)))

    def watched(cfg, init_weights=True):
        model = real(cfg, init_weights)
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.register_forward_hook(hook)
        return model

    monkeypatch.setattr(engine, "build_model_for", watched)
    return seen


def test_a_cpu_bf16_run_trains_under_cpu_autocast_and_records_it(demo_root, tmp_path, one_torch_thread, monkeypatch):
    seen = _watch_convolutions(monkeypatch)
    run = engine.fit(_cfg(demo_root, tmp_path / "on", epochs=1, device="cpu", cpu_bf16="on"))
    assert seen and all(s == (torch.bfloat16, True) for s in seen)
    assert load_checkpoint(run / "last.pt")["execution"]["cpu_bf16"] is True
    summary = runstore.load_summary(run)
    assert (summary["precision"], summary["channels_last"]) == ("bf16", True)
    record = runstore.run_record(run)
    assert record["precision"] == "bf16" and record["cpu_amx"] == cpu_has_amx()
    assert load_checkpoint(run / "best.pt")["model"]["head.weight"].dtype == torch.float32  # fp32 master weights

    seen.clear()
    off = engine.fit(_cfg(demo_root, tmp_path / "off", epochs=1, device="cpu"))
    assert seen and all(s == (torch.float32, False) for s in seen)
    assert load_checkpoint(off / "last.pt")["execution"]["cpu_bf16"] is False
    assert runstore.load_summary(off)["precision"] == "float32" and runstore.run_record(off)["precision"] == "float32"
    a, b = _weights(run / "last.pt"), _weights(off / "last.pt")
    assert any(not torch.equal(a[k], b[k]) for k in a)  # another arithmetic

    # a run finished before precision was recorded: CPU runs were float32, CUDA runs bf16 where amp
    path = run / "summary.json"
    for device, expected in (("cpu", "float32"), ("cuda:0", "bf16")):
        atomic_write_json(path, {**{k: v for k, v in summary.items() if k != "precision"},
                                 "device": device})
        assert runstore.run_record(run)["precision"] == expected


def test_the_side_by_side_timing_steps_as_the_run_would_train(monkeypatch):
    from cityseg_lib.models.summary import _is_channels_last
    from cityseg_lib.train import speed

    gen = torch.Generator().manual_seed(0)
    cfg = TrainConfig(name="a", profile="test", model="simple_fcn", image_size=(16, 32), batch_size=2,
                      model_options={"base_width": 4})
    for value, amx, expected in (("on", False, True), ("off", True, False), ("auto", True, True), ("auto", False, False)):
        _amx(monkeypatch, amx)
        model, *_, amp, channels_last = speed._setup(dataclasses.replace(cfg, cpu_bf16=value), CPU, gen)
        assert (amp, channels_last) == (expected, expected), value
        assert _is_channels_last(model) == expected


# ----------------------------------------------------------------------------- resume


def test_a_cpu_bf16_run_killed_mid_way_resumes_bit_identical(demo_root, tmp_path, one_torch_thread, monkeypatch):
    straight = engine.fit(_cfg(demo_root, tmp_path / "straight", epochs=3, device="cpu", cpu_bf16="on"))
    cfg = _cfg(demo_root, tmp_path / "killed", epochs=3, device="cpu", cpu_bf16="on")
    with monkeypatch.context() as m:
        _kill_at(m, engine, "train_one_epoch", 3)  # epochs 1-2 saved, killed in epoch 3
        with pytest.raises(_Killed):
            engine.fit(cfg, resume=True)
    run = runstore.run_dir(cfg)
    assert load_checkpoint(run / "last.pt")["epoch"] == 2
    seen = _watch_convolutions(monkeypatch)
    assert engine.fit(cfg, resume=True) == run
    assert seen and all(s == (torch.bfloat16, True) for s in seen)  # the resumed epoch too
    _assert_same_run(straight, run)


@pytest.mark.parametrize("amx_then, amx_now, older", [(True, False, False), (False, True, False), (False, True, True)],
                         ids=["bf16-kept-without-amx", "float32-kept-with-amx", "older-last-pt-is-float32"])
def test_an_auto_run_resumed_where_amx_differs_keeps_its_precision(demo_root, tmp_path, one_torch_thread,
                                                                   monkeypatch, amx_then, amx_now, older):
    """``cpu_bf16=auto`` begun on a CPU with (without) AMX and resumed on one without (with) it goes
    on in the precision it began with, and ends as the uninterrupted run; a ``last.pt`` of an older
    version records no precision: float32, the only one there was."""
    _amx(monkeypatch, amx_then)
    straight = engine.fit(_cfg(demo_root, tmp_path / "straight", epochs=3, device="cpu", cpu_bf16="auto"))
    assert runstore.load_summary(straight)["precision"] == ("bf16" if amx_then else "float32")
    cfg = _cfg(demo_root, tmp_path / "killed", epochs=3, device="cpu", cpu_bf16="auto")
    with monkeypatch.context() as m:
        _kill_at(m, engine, "train_one_epoch", 3)
        with pytest.raises(_Killed):
            engine.fit(cfg, resume=True)
    run = runstore.run_dir(cfg)
    if older:
        state = load_checkpoint(run / "last.pt")
        del state["execution"]["cpu_bf16"]
        torch.save(state, run / "last.pt")
    _amx(monkeypatch, amx_now)
    assert precision(cfg, CPU) == (amx_now, amx_now)  # what a new run would take here
    lines = []
    engine.fit(cfg, resume=True, log=lines.append)
    kept = "bf16 autocast" if amx_then else "float32"
    assert f"r: continues in {kept} as it began (cpu_bf16=auto; this CPU {'lacks' if amx_then else 'has'} AMX)" in lines
    assert load_checkpoint(run / "last.pt")["execution"]["cpu_bf16"] is amx_then
    assert runstore.load_summary(run)["precision"] == ("bf16" if amx_then else "float32")
    _assert_same_run(straight, run)


def test_a_resume_in_another_precision_than_recorded_is_refused():
    """fit keeps the recorded precision; a caller that asked for another would mix two in one run."""
    saved = {"num_workers": 0, "threads": 1, "world_size": 1, "device": "cpu", "cpu_bf16": True}
    with pytest.raises(runstore.ResumeRefused, match=r"^RUN: cannot resume in float32: this run trained in bf16 "):
        R.check_execution(saved, {**saved, "cpu_bf16": False}, "RUN")
    R.check_execution(saved, dict(saved), "RUN")
    older = {k: v for k, v in saved.items() if k != "cpu_bf16"}  # a last.pt before the record: float32
    R.check_execution(older, {**saved, "cpu_bf16": False}, "RUN")
    with pytest.raises(runstore.ResumeRefused, match="cannot resume in bf16 autocast: this run trained in float32"):
        R.check_execution(older, saved, "RUN")
    assert R.recorded_cpu_bf16(None) is None and R.recorded_cpu_bf16({"epoch": 1}) is False
    assert R.recorded_cpu_bf16({"execution": saved}) is True
