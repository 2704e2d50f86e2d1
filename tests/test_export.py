"""ONNX export of the three models: agreement with PyTorch, dynamic batch and sizes, safe writing."""

from __future__ import annotations

import os
import stat

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never wait on the network for weights

import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from cityseg_lib.errors import CitysegError  # noqa: E402
from cityseg_lib.evaluate.export import check_onnx, export_onnx, onnx_metadata, onnx_session  # noqa: E402
from cityseg_lib.models import DEMO_ENCODER, build_model  # noqa: E402

SIZE = (64, 96)
TINY_SWIN = dict(embed_dim=24, depths=(1, 1, 1, 1), num_heads=(1, 2, 3, 4))
TINY = {
    "simple_fcn": dict(base_width=8),
    "unet": dict(base_width=4, depth=3),
    "swin2_jnet": dict(encoder=DEMO_ENCODER, img_size=SIZE, pretrained=False, encoder_kwargs=TINY_SWIN),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tiny(name: str, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(name, **{**TINY[name], **overrides})
    # BatchNorm statistics away from (0, 1), so that eval mode matters
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.parametrize("name", ["simple_fcn", "unet", "swin2_jnet"])
def test_export_agrees_with_pytorch_with_dynamic_batch(name, tmp_path):
    model = _tiny(name)
    info = export_onnx(model, tmp_path / f"{name}.onnx", SIZE)
    assert info.dynamic_batch and info.num_classes == 19 and info.input_size == SIZE
    assert info.size_bytes == (tmp_path / f"{name}.onnx").stat().st_size
    assert os.listdir(tmp_path) == [f"{name}.onnx"]  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / f"{name}.onnx").stat().st_mode) == 0o666 & ~umask  # as open() gives, not 0600
    session = onnx_session(info.path, threads=1)
    for batch in (1, 3):
        result = check_onnx(info.path, model, torch.randn(batch, 3, *SIZE), session=session)
        assert result["shape"] == [batch, 19, *SIZE]
        assert result["agreement"] >= 0.999 and result["max_abs_diff"] < 1e-3, result
    assert not model.training


def test_dynamic_height_and_width_of_unet(tmp_path):
    model = _tiny("unet")
    info = export_onnx(model, tmp_path / "unet.onnx", SIZE)
    assert info.dynamic_hw and info.size_multiple == 8 and "multiples of 8" in info.message
    result = check_onnx(info.path, model, torch.randn(2, 3, 128, 40))
    assert result["shape"] == [2, 19, 128, 40] and result["agreement"] >= 0.999
    meta = onnx_metadata(info.path)
    assert meta["input_size"] == "64,96" and meta["dynamic_hw"] == "true" and meta["size_multiple"] == "8"


def test_swin_is_exported_at_its_fixed_size_with_a_message(tmp_path):
    model = _tiny("swin2_jnet")
    info = export_onnx(model, tmp_path / "swin.onnx", (32, 32))
    assert info.input_size == SIZE and not info.dynamic_hw and info.size_multiple is None
    assert "fixes its input size" in info.message and "64x96" in info.message and "32x32 ignored" in info.message
    with pytest.raises(CitysegError, match="swin.onnx: onnxruntime rejects images"):
        check_onnx(info.path, model, torch.randn(1, 3, 32, 64))
    with pytest.raises(CitysegError, match="Swin2JNet fixes its input size at creation .64x96."):
        export_onnx(model, tmp_path / "swin_dynamic.onnx", SIZE, dynamic_hw=True)


def test_size_rules_and_static_export(tmp_path):
    model = _tiny("simple_fcn")
    with pytest.raises(CitysegError, match="input_size 60x96 of SimpleFCN must be a multiple of 8"):
        export_onnx(model, tmp_path / "a.onnx", (60, 96), dynamic_hw=True)
    info = export_onnx(model, tmp_path / "b.onnx", (60, 96))  # automatic: a fixed size
    assert not info.dynamic_hw and "60x96 is not a multiple of the stride 8" in info.message
    assert check_onnx(info.path, model, torch.randn(2, 3, 60, 96))["agreement"] >= 0.999
    fixed = export_onnx(model, tmp_path / "c.onnx", SIZE, dynamic_hw=False)
    assert not fixed.dynamic_hw and "as asked" in fixed.message
    with pytest.raises(CitysegError, match="onnxruntime rejects images"):
        check_onnx(fixed.path, model, torch.randn(1, 3, 32, 48))


def test_refuses_to_overwrite_and_bad_arguments(tmp_path):
    model = _tiny("simple_fcn")
    target = tmp_path / "model.onnx"
    target.write_bytes(b"precious")
    with pytest.raises(CitysegError, match=f"{target} already exists"):
        export_onnx(model, target, SIZE)
    assert target.read_bytes() == b"precious" and os.listdir(tmp_path) == ["model.onnx"]
    with pytest.raises(CitysegError, match="folder .*missing does not exist"):
        export_onnx(model, tmp_path / "missing" / "m.onnx", SIZE)
    with pytest.raises(CitysegError, match="input_size=.64. must be"):
        export_onnx(model, tmp_path / "m.onnx", [64])
    with pytest.raises(CitysegError, match="exporter 'jit' is not one of torchscript, dynamo"):
        export_onnx(model, tmp_path / "m.onnx", SIZE, exporter="jit")
    with pytest.raises(CitysegError, match="dynamic_hw='yes'"):
        export_onnx(model, tmp_path / "m.onnx", SIZE, dynamic_hw="yes")
    with pytest.raises(CitysegError, match="no such ONNX file"):
        onnx_session(tmp_path / "m.onnx")
    with pytest.raises(CitysegError, match=f"{target}: not a valid ONNX model"):  # b"precious" is no model
        onnx_session(target)
    assert os.listdir(tmp_path) == ["model.onnx"]


def test_training_flag_is_restored(tmp_path):
    model = _tiny("unet").train()
    export_onnx(model, tmp_path / "m.onnx", SIZE)
    assert model.training


@pytest.mark.slow  # torch.export: ~10 s on 2 CPUs
def test_dynamo_exporter(tmp_path):
    pytest.importorskip("onnxscript")
    model = _tiny("unet")
    info = export_onnx(model, tmp_path / "unet.onnx", SIZE, exporter="dynamo")
    assert info.exporter == "dynamo" and info.opset >= 18 and info.dynamic_hw
    for shape in ((1, 3, *SIZE), (3, 3, 32, 128)):
        assert check_onnx(info.path, model, torch.randn(*shape))["agreement"] >= 0.999
