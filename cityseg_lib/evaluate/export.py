"""ONNX export of a trained model, and a check of the exported file against PyTorch.

``export_onnx(model, path, input_size)`` writes one self-contained ``.onnx`` file: input
``images`` ``(N, 3, H, W)`` float32, normalised with the ImageNet mean and std exactly as for the
PyTorch model; output ``logits`` ``(N, num_classes, H, W)``. The batch is always dynamic; height
and width are dynamic where the model allows it:

* SimpleFCN and U-Net: any H and W that are **multiples of the model's stride** (8 for SimpleFCN,
  ``2**depth`` for U-Net; the export size must be one too). Their padding for other sizes is a
  Python branch that tracing fixes at the export size, so other sizes give wrong shapes there.
* Swin2-JNet: Swin V2 fixes its input size at creation, so the file is exported at the model's
  ``img_size`` (its training size) only; callers resize images to it and the logits back
  (``whole`` mode), as ``Swin2JNet.forward`` does. ``ExportInfo.message`` says so.

The file is written to a temporary file in the target folder, then linked into place (atomic,
and never over an existing file: that is a :class:`CitysegError` naming it). Export details are
also stored as ONNX metadata (``cityseg.*`` keys, see :func:`onnx_metadata`).

Exporters: the TorchScript one (``torch.onnx.export(dynamo=False)``, default: ~1 s for these
models, one file) or ``exporter="dynamo"`` (``torch.export`` with ``dynamic_shapes``; 5-20 s,
opset >= 18). Both match PyTorch to ~1e-7 on all three models. Needs the ``deploy`` extra
(onnx, onnxruntime, onnxscript).
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from cityseg_lib.errors import CitysegError
from cityseg_lib.files import write_new

__all__ = ["ExportInfo", "export_onnx", "check_onnx", "onnx_session", "onnx_metadata", "size_rule", "EXPORTERS"]

EXPORTERS = ("torchscript", "dynamo")
INPUT_NAME, OUTPUT_NAME = "images", "logits"
_MAX_DIM = 16384  # upper bound of the dynamic sizes for torch.export


@dataclass(frozen=True)
class ExportInfo:
    """What :func:`export_onnx` wrote: the file, its shapes, and what inputs it accepts."""

    path: str
    model: str  # class name
    num_classes: int
    input_size: tuple[int, int]  # (H, W) the graph was traced at
    dynamic_batch: bool
    dynamic_hw: bool
    size_multiple: int | None  # with dynamic_hw: H and W must be multiples of it
    opset: int
    exporter: str
    size_bytes: int
    message: str  # one line for the user: what sizes the file accepts, and why

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        return d


def _require(module: str):
    try:
        return __import__(module)
    except ImportError as err:
        raise CitysegError(f"ONNX export needs the {module} package: pip install 'cityseg-lib[deploy]' "
                           "(onnx, onnxruntime, onnxscript)") from err


def size_rule(model: nn.Module) -> tuple[tuple[int, int] | None, int | None]:
    """``(fixed_size, multiple)``: the (H, W) a model is built for (Swin V2), else None and the stride
    its H and W must be multiples of for a dynamic-size export (None when unknown)."""
    fixed = getattr(model, "img_size", None)
    if fixed is not None:
        return (int(fixed[0]), int(fixed[1])), None
    reductions = getattr(getattr(model, "encoder", None), "reductions", None)
    return None, (int(max(reductions)) if reductions else None)


def _check_size(value: Any) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)):
        raise CitysegError(f"export: input_size={value!r} must be [H, W], two positive integers")
    return int(value[0]), int(value[1])


def _plan(model: nn.Module, input_size: tuple[int, int], dynamic_hw: bool | None
          ) -> tuple[tuple[int, int], bool, int | None, str]:
    """Export size, dynamic H/W, size multiple and the message, from what the model allows."""
    name = type(model).__name__
    fixed, multiple = size_rule(model)
    if fixed is not None:
        if dynamic_hw:
            raise CitysegError(f"export: {name} fixes its input size at creation ({fixed[0]}x{fixed[1]}); "
                               "it cannot be exported with dynamic height/width (use dynamic_hw=None or False)")
        asked = "" if fixed == input_size else f" (input_size {input_size[0]}x{input_size[1]} ignored)"
        return fixed, False, None, (
            f"{name} fixes its input size at creation: exported for {fixed[0]}x{fixed[1]} images only{asked}; "
            "resize inputs to it and the logits back to the image size (whole mode)")
    h, w = input_size
    if multiple is None:
        if dynamic_hw:
            return input_size, True, None, f"{name}: dynamic height/width as asked (no known size rule: check sizes)"
        return input_size, False, None, f"{name}: exported for {h}x{w} images only (no known size rule)"
    divisible = h % multiple == 0 and w % multiple == 0
    if dynamic_hw and not divisible:
        raise CitysegError(f"export: input_size {h}x{w} of {name} must be a multiple of {multiple} for dynamic "
                           "height/width (the model's stride)")
    if dynamic_hw is False or not divisible:
        why = "as asked" if dynamic_hw is False else f"{h}x{w} is not a multiple of the stride {multiple}"
        return input_size, False, None, f"{name}: exported for {h}x{w} images only ({why})"
    return input_size, True, multiple, f"{name}: any height and width that are multiples of {multiple}"


def _export_proto(model: nn.Module, dummy: torch.Tensor, dynamic_hw: bool, multiple: int | None, opset: int,
                  exporter: str):
    """The ONNX ModelProto of ``model`` traced on ``dummy``."""
    onnx = _require("onnx")
    if exporter == "torchscript":
        axes = {0: "batch", 2: "height", 3: "width"} if dynamic_hw else {0: "batch"}
        buf = io.BytesIO()
        with warnings.catch_warnings():  # tracer warnings about Python branches: the size rule covers them
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (dummy,), buf, dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME], dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes},
                              do_constant_folding=True)
        return onnx.load_from_string(buf.getvalue())
    _require("onnxscript")
    from torch.export import Dim

    shapes = {0: Dim("batch", min=1, max=_MAX_DIM)}
    if dynamic_hw:
        step = multiple or 1
        shapes[2] = step * Dim("h_steps", min=1, max=_MAX_DIM // step)
        shapes[3] = step * Dim("w_steps", min=1, max=_MAX_DIM // step)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (dummy,), None, dynamo=True, opset_version=opset, input_names=[INPUT_NAME],
                                    output_names=[OUTPUT_NAME], dynamic_shapes=(shapes,),
                                    optimize=True, verbose=False)
    return program.model_proto


def export_onnx(model: nn.Module, path: str | os.PathLike, input_size: Sequence[int], *,
                dynamic_hw: bool | None = None, opset: int = 17, exporter: str = "torchscript") -> ExportInfo:
    """Export ``model`` (in eval mode; its training flag is restored) to the new file ``path``.

    ``input_size``: the (H, W) to trace at, normally the training size. ``dynamic_hw``: None = dynamic
    height/width when the model allows it at this size, True = require it (CitysegError otherwise),
    False = fixed size. The batch dimension is always dynamic. Returns an :class:`ExportInfo`.
    """
    path = Path(path)
    if exporter not in EXPORTERS:
        raise CitysegError(f"export: exporter {exporter!r} is not one of {', '.join(EXPORTERS)}")
    if isinstance(opset, bool) or not isinstance(opset, int) or not 11 <= opset <= 23:
        raise CitysegError(f"export: opset={opset!r} must be an integer in 11..23")
    if exporter == "dynamo":
        opset = max(opset, 18)  # the opsets torch.export's ONNX translation is written for
    if dynamic_hw is not None and not isinstance(dynamic_hw, bool):
        raise CitysegError(f"export: dynamic_hw={dynamic_hw!r} must be true, false or None (automatic)")
    if path.exists():
        raise CitysegError(f"export: {path} already exists; remove it or choose another path")
    if not path.parent.is_dir():
        raise CitysegError(f"export: folder {path.parent} does not exist")
    size, dynamic, multiple, message = _plan(model, _check_size(input_size), dynamic_hw)
    onnx = _require("onnx")

    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    # batch 2: a traced batch of 1 can be specialised away
    dummy = torch.randn(2, 3, *size, device=device, generator=torch.Generator(device).manual_seed(0))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            num_classes = int(model(dummy[:1]).shape[1])
        proto = _export_proto(model, dummy, dynamic, multiple, opset, exporter)
    finally:
        model.train(was_training)
    meta = {"input_size": f"{size[0]},{size[1]}", "dynamic_hw": str(dynamic).lower(),
            "size_multiple": str(multiple or ""), "num_classes": str(num_classes), "model": type(model).__name__,
            "normalize": "imagenet mean/std, RGB in [0, 1]", "message": message}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = f"cityseg.{key}", value
    data = proto.SerializeToString()
    onnx.checker.check_model(proto)
    write_new(path, lambda f: f.write(data))  # the umask's mode (mkstemp alone gives 0600), never over a file
    return ExportInfo(path=str(path), model=type(model).__name__, num_classes=num_classes, input_size=size,
                      dynamic_batch=True, dynamic_hw=dynamic, size_multiple=multiple, opset=opset, exporter=exporter,
                      size_bytes=len(data), message=message)


def onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``cityseg.*`` metadata of an exported file, without the prefix (input_size "H,W", ...)."""
    onnx = _require("onnx")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as err:
        raise CitysegError(f"{path}: not a readable ONNX file ({type(err).__name__})") from err
    return {p.key[len("cityseg."):]: p.value for p in proto.metadata_props if p.key.startswith("cityseg.")}


def onnx_session(path: str | os.PathLike, threads: int | None = None, providers: Sequence[str] | None = None):
    """An onnxruntime ``InferenceSession`` of ``path`` (all graph optimisations; ``threads`` intra-op
    threads, None = onnxruntime's default; providers default CPUExecutionProvider)."""
    ort = _require("onnxruntime")
    if not Path(path).is_file():
        raise CitysegError(f"{path}: no such ONNX file")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), options, providers=list(providers or ["CPUExecutionProvider"]))
    except Exception as err:  # onnxruntime raises its own types (InvalidProtobuf, Fail...) for a bad file
        raise CitysegError(f"{path}: not a valid ONNX model ({type(err).__name__}: "
                           f"{str(err).splitlines()[0][:160] if str(err) else 'unreadable'})") from None


def check_onnx(path: str | os.PathLike, model: nn.Module, images: torch.Tensor | np.ndarray, *,
               session=None) -> dict[str, Any]:
    """Run ``images`` (N, 3, H, W) normalised through the file (onnxruntime, CPU) and ``model`` (eval).

    Returns ``agreement`` (fraction of pixels with the same argmax), ``max_abs_diff`` (of the
    logits), ``mean_abs_diff``, ``pixels`` and ``shape``. Callers require agreement >= 0.999.
    """
    x = torch.as_tensor(images, dtype=torch.float32)
    if x.ndim != 4 or x.shape[1] != 3:
        raise CitysegError(f"check_onnx: images must be (N, 3, H, W), got {tuple(x.shape)}")
    session = session or onnx_session(path)
    try:
        got = torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: x.contiguous().numpy()})[0])
    except Exception as err:  # onnxruntime raises its own types; a wrong size is the usual cause
        raise CitysegError(f"{path}: onnxruntime rejects images {tuple(x.shape)}: "
                           f"{onnx_metadata(path).get('message', str(err).splitlines()[0][:200])}") from err
    param = next(model.parameters(), None)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            ref = model(x.to(param.device if param is not None else "cpu")).float().cpu()
    finally:
        model.train(was_training)
    if got.shape != ref.shape:
        raise CitysegError(f"{path}: onnxruntime gave logits {tuple(got.shape)}, PyTorch {tuple(ref.shape)}: "
                           f"{onnx_metadata(path).get('message', 'the file does not accept this size')}")
    diff = (got - ref).abs()
    return {"agreement": float((got.argmax(1) == ref.argmax(1)).float().mean()), "max_abs_diff": float(diff.max()),
            "mean_abs_diff": float(diff.mean()), "pixels": int(ref.shape[0] * ref.shape[2] * ref.shape[3]),
            "shape": list(ref.shape)}
