"""Contract tests of the three models: shapes, gradients, encoder channels/strides, registry
errors, weights loading and the summary numbers, all on CPU with tiny widths."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never wait on the network for weights

import time  # noqa: E402

import pytest  # noqa: E402
import timm  # noqa: E402
import torch  # noqa: E402

from cityseg_lib.errors import CitysegError  # noqa: E402
from cityseg_lib.models.swin2_jnet import _fit  # noqa: E402
from cityseg_lib.models.timm_weights import WeightsUnavailable  # noqa: E402
from cityseg_lib.data.labels import NUM_CLASSES  # noqa: E402
from cityseg_lib.models import (  # noqa: E402
    DEMO_ENCODER,
    MODEL_NAMES,
    SimpleFCN,
    Swin2JNet,
    UNet,
    build_model,
    model_options,
    model_summary,
)

SIZE = (64, 96)  # divisible by 32: every stride lands on an integer grid
ODD_SIZE = (72, 100)  # not a multiple of 8, 16 or 32
#: a Swin V2 with the real layout (4 stages, strides 4..32) but ~1M parameters: builds in ~0.1 s
TINY_SWIN = dict(embed_dim=24, depths=(1, 1, 1, 1), num_heads=(1, 2, 3, 4))
TINY = {
    "simple_fcn": dict(base_width=8),
    "unet": dict(base_width=4, depth=3, dropout=0.1),
    "swin2_jnet": dict(encoder=DEMO_ENCODER, img_size=SIZE, pretrained=False, encoder_kwargs=TINY_SWIN, dropout=0.1),
}


def _tiny(name: str, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, **{**TINY[name], **overrides})


def _timm_tiny_swin(img_size=SIZE) -> torch.nn.Module:
    """The classification model whose checkpoint ``weights:`` expects (as on the hub)."""
    return timm.create_model(DEMO_ENCODER, pretrained=False, img_size=img_size, **TINY_SWIN)


# ----------------------------------------------------------------------------- registry


def test_registry_names():
    assert MODEL_NAMES == ("simple_fcn", "swin2_jnet", "unet")
    assert isinstance(build_model("simple_fcn", base_width=4), SimpleFCN)
    assert isinstance(build_model("unet", base_width=4, depth=2), UNet)
    assert model_options("unet") == {"base_width": 64, "depth": 4, "dropout": 0.0}


def test_unknown_model_lists_valid_names():
    with pytest.raises(CitysegError, match="unknown model 'fcn'.*simple_fcn, swin2_jnet, unet"):
        build_model("fcn")


def test_unknown_option_names_option_and_valid_ones():
    with pytest.raises(CitysegError, match="'unet' has no option 'width'.*base_width, depth, dropout"):
        build_model("unet", width=8)


@pytest.mark.parametrize(
    "name, options, match",
    [
        ("unet", dict(dropout=1.0), "dropout=1.0"),
        ("unet", dict(depth=0), "depth=0"),
        ("unet", dict(base_width=8.0), "base_width=8.0"),
        ("simple_fcn", dict(base_width=5), "base_width=5 must be even"),
        ("swin2_jnet", dict(encoder="no_such_net"), "no_such_net"),
        ("swin2_jnet", dict(img_size=[64]), "img_size"),
        ("swin2_jnet", dict(encoder_kwargs=dict(img_size=64)), "img_size"),
        ("swin2_jnet", dict(weights="w.pth", pretrained=False), "pretrained=false"),
        ("swin2_jnet", dict(decoder_channels=[8, 8]), "decoder_channels"),
        # a slip of a width (2**70, an extra digit) failed inside the run, after its folder was made
        ("unet", dict(base_width=2**70), r"base_width=1180591620717411303424 must be an integer in \[1, 4096\]"),
        ("simple_fcn", dict(base_width=40960), r"base_width=40960 must be an integer in \[2, 4096\]"),
        ("swin2_jnet", dict(decoder_channels=[8, 8, 8, 10**6]), r"decoder_channels=1000000 must be an integer in"),
    ],
)
def test_bad_option_values(name, options, match):
    with pytest.raises(CitysegError, match=match):
        _tiny(name, **options)


@pytest.mark.parametrize(
    "options, size, match",
    [
        (dict(decoder_channels=[8, 8]), SIZE, r"decoder_channels=\[8, 8\] must list 4 widths, one per encoder stage"),
        (dict(encoder_kwargs=dict(TINY_SWIN, embed_dimm=24)), SIZE,
         r"encoder 'swinv2_tiny_window8_256' rejects its arguments .*'embed_dimm'.*unexpected keyword"),
        (dict(img_size=None), (2, 2), r"encoder 'swinv2_tiny_window8_256' cannot be built for \[2, 2\] images"),
    ],
    ids=["stage count", "encoder_kwargs typo", "smaller than a patch"],
)
def test_swin_options_timm_refuses_are_refused_where_the_config_enters(options, size, match):
    """check_model (run before a run folder or the data exists) finds what only timm can say: the
    number of stages, arguments the encoder rejects, a size it cannot build for; one line each."""
    from cityseg_lib.models import check_model

    with pytest.raises(CitysegError, match=match) as info:
        check_model("swin2_jnet", {**TINY["swin2_jnet"], **options}, size)
    assert "\n" not in str(info.value)
    check_model("swin2_jnet", TINY["swin2_jnet"], SIZE)  # the good options pass

def test_yaml_style_options():
    """Params files give lists: img_size, depths and num_heads arrive as YAML lists."""
    opts = dict(TINY["swin2_jnet"], img_size=list(SIZE), decoder_channels=[8, 8, 8, 8],
                encoder_kwargs={k: list(v) for k, v in TINY_SWIN.items() if isinstance(v, tuple)} | {"embed_dim": 24})
    model = build_model("swin2_jnet", **opts)
    assert model.img_size == SIZE
    assert model(torch.randn(1, 3, *SIZE)).shape == (1, NUM_CLASSES, *SIZE)


# ----------------------------------------------------------------------------- forward/backward


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("size", [SIZE, ODD_SIZE], ids=["64x96", "72x100"])
def test_forward_backward(name, size):
    model = _tiny(name).train()
    x = torch.randn(2, 3, *size)
    logits = model(x)
    assert logits.shape == (2, NUM_CLASSES, *size)
    torch.nn.functional.cross_entropy(logits, torch.randint(0, NUM_CLASSES, (2, *size))).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_unet_very_odd_size_and_too_small():
    model = _tiny("unet", depth=4)
    assert model(torch.randn(1, 3, 37, 51)).shape == (1, NUM_CLASSES, 37, 51)
    with pytest.raises(CitysegError, match="smaller than 2\\*\\*depth = 16"):
        model(torch.randn(1, 3, 8, 51))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_channels_last_and_bf16_autocast(name):
    model = _tiny(name).to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, *SIZE).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
    assert logits.shape == (2, NUM_CLASSES, *SIZE) and logits.dtype == torch.bfloat16
    assert torch.isfinite(logits).all()
    logits.float().mean().backward()


def test_eval_is_deterministic_and_dropout_only_in_train():
    model = _tiny("unet", dropout=0.5)
    x = torch.randn(1, 3, *SIZE)
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))


def test_swin_input_of_another_size_is_resized():
    model = _tiny("swin2_jnet").eval()
    x = torch.randn(1, 3, 48, 80)
    assert model(x).shape == (1, NUM_CLASSES, 48, 80)
    # documented behaviour: resize to img_size, predict, resize the logits back
    resized = torch.nn.functional.interpolate(x, size=SIZE, mode="bilinear", align_corners=False)
    stride4 = model.head(model.decoder(model.encoder(resized)))
    expected = torch.nn.functional.interpolate(stride4, size=(48, 80), mode="bilinear", align_corners=False)
    torch.testing.assert_close(model(x), expected)



class _FirstChannel(torch.nn.Module):
    """Stands in for the head: passes channel 0 (the decoder's row coordinate) on."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1]


class _CoordinateAndOne(torch.nn.Module):
    """Stands in for a decoder block: channel 0 of its input (the up-sampled deeper path, or the
    deepest feature) and a channel of ones, from which an up-convolution draws its offsets."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x[:, :1], torch.ones_like(x[:, :1])], dim=1)


def _exact_upconv(stride: int, factor: int) -> torch.nn.ConvTranspose2d:
    """A transposed convolution (kernel = stride = ``factor``) taking ``(coordinate, 1)`` at ``stride``
    to the coordinate of each finer cell's centre: coarse cell ``i``'s centre ``stride*i + (stride-1)/2``
    plus, on fine row ``factor*i + a``, the offset ``(stride/factor)*(a + 1/2) - stride/2`` (rows only)."""
    up = torch.nn.ConvTranspose2d(2, 1, factor, stride=factor)
    with torch.no_grad():
        up.bias.zero_()
        up.weight[0, 0] = 1.0
        offsets = (stride / factor) * (torch.arange(factor) + 0.5) - stride / 2
        up.weight[1, 0] = offsets.view(factor, 1).expand(factor, factor)
    return up


@pytest.mark.parametrize("height", [208, 210], ids=["208: 6.5 deepest rows", "210: not a multiple of 4"])
def test_swin_upsampling_keeps_features_on_their_pixels(height):
    """Geometry of the decoder's up-convolutions and the head's up-sampling, with the real encoder's
    feature sizes: every feature holds the image row of its cell's centre (stride r, cell i:
    r*i + (r-1)/2). With blocks that pass the up-sampled path on and up-convolutions that place each
    coarse cell on the two finer cells it covers, the decoder's output must hold the centre of every
    stride-4 row (an up-convolution's output fitted to its skip by cropping at the bottom, not
    stretched or cropped elsewhere), and the logits each pixel's own row away from the top/bottom
    (where the head's bilinear clamps). Swin pads an odd grid at the bottom (208 rows: the deepest 7
    rows cover 224), so stretching 7 rows onto 13 would put the deepest feature up to 16 px below
    where it belongs; its patch grid drops the last 210 % 4 rows."""
    model = _tiny("swin2_jnet", img_size=(height, 32)).eval()
    assert [(u.kernel_size, u.stride) for u in model.decoder.ups] == [((2, 2), (2, 2))] * 3
    with torch.no_grad():
        shapes = [f.shape[-2:] for f in model.encoder(torch.zeros(1, 3, height, 32))]
    assert [s[0] for s in shapes] == [height // 4, 26, 13, 7]
    rows = [(torch.arange(h) * r + (r - 1) / 2).view(1, 1, h, 1).expand(1, 1, h, w)
            for (h, w), r in zip(shapes, model.encoder.reductions)]
    model.encoder.forward = lambda x: rows
    model.decoder.blocks = torch.nn.ModuleList(_CoordinateAndOne() for _ in model.decoder.blocks)
    model.decoder.ups = torch.nn.ModuleList(_exact_upconv(r, 2) for r in (32, 16, 8))
    with torch.no_grad():
        decoded = model.decoder(rows)[0, 0]
    assert decoded.shape == shapes[0]  # the up-sampled maps cover exactly the skips' grids
    torch.testing.assert_close(decoded, rows[0][0, 0])  # every stride-4 row, borders included
    model.head = _FirstChannel()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, height, 32))[0, 0, :, 0]
    assert out.shape == (height,)
    interior = slice(8, height - 8)  # clear of the head's clamped borders
    torch.testing.assert_close(out[interior], torch.arange(height, dtype=torch.float32)[interior])


def test_swin_upconv_output_depends_on_the_coarse_cell_it_covers_only():
    """Fine cell (2i + a, 2j + b) of an up-convolution's output, fitted to a skip grid one row and
    column short of twice the coarse grid (a padded deeper grid), depends on coarse cell (i, j) alone:
    no feature moves or spreads to its neighbours' cells (a bilinear up-sampling mixes two of them)."""
    model = _tiny("swin2_jnet")
    up = model.decoder.ups[0]
    x = torch.randn(1, up.in_channels, 4, 3, requires_grad=True)
    y = _fit(up(x), (7, 5))
    assert y.shape == (1, up.out_channels, 7, 5)
    for row, col in [(0, 0), (3, 4), (6, 1), (5, 2)]:
        (grad,) = torch.autograd.grad(y[0, :, row, col].sum(), x, retain_graph=True)
        touched = grad.abs().sum(dim=1)[0].nonzero().tolist()
        assert touched == [[row // 2, col // 2]]


# ----------------------------------------------------------------------------- encoder contracts


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_encoder_channels_and_strides_match_outputs(name):
    model = _tiny(name).eval()
    encoder = model.encoder
    features = encoder(torch.randn(1, 3, *SIZE))
    assert len(features) == len(encoder.out_channels) == len(encoder.reductions)
    for f, c, r in zip(features, encoder.out_channels, encoder.reductions):
        assert f.shape == (1, c, SIZE[0] // r, SIZE[1] // r)


def test_swin_encoder_follows_feature_info():
    model = _tiny("swin2_jnet")
    info = model.encoder.model.feature_info
    assert model.encoder.out_channels == tuple(info.channels()) == (24, 48, 96, 192)
    assert model.encoder.reductions == tuple(info.reduction()) == (4, 8, 16, 32)
    assert model.encoder.nhwc  # timm's Swin returns NHWC; the wrapper permutes to NCHW
    # default decoder widths: half of each stage's channels; the head sees the shallowest
    assert model.decoder.out_channels == 12 and model.head.in_channels == 12
    # one up-convolution into each shallower block, keeping the deeper block's width (deepest first)
    assert [(u.in_channels, u.out_channels, u.kernel_size, u.stride) for u in model.decoder.ups] == [
        (c, c, (2, 2), (2, 2)) for c in (96, 48, 24)]
    wide = _tiny("swin2_jnet", decoder_channels=(16, 16, 32, 32))
    assert wide.head.in_channels == 16


def test_swin_decoder_batchnorm_switch():
    with_bn, without = _tiny("swin2_jnet"), _tiny("swin2_jnet", batchnorm=False)
    bn_layers = lambda m: sum(isinstance(x, torch.nn.BatchNorm2d) for x in m.decoder.modules())
    assert bn_layers(with_bn) == 8 and bn_layers(without) == 0  # two per decoder block
    assert all(c.bias is not None for c in without.decoder.modules() if isinstance(c, torch.nn.Conv2d))
    x = torch.randn(2, 3, *SIZE)
    without(x).mean().backward()
    assert model_options("swin2_jnet")["batchnorm"] is True
    with pytest.raises(CitysegError, match="batchnorm='no'"):
        _tiny("swin2_jnet", batchnorm="no")


def test_real_demo_encoder_builds_and_runs():
    """The demo's swinv2_tiny_window8_256 (28M parameters) at a small training size."""
    torch.manual_seed(0)
    model = build_model("swin2_jnet", encoder=DEMO_ENCODER, img_size=SIZE, pretrained=False).eval()
    assert model.encoder.out_channels == (96, 192, 384, 768)
    with torch.no_grad():
        assert model(torch.randn(1, 3, *SIZE)).shape == (1, NUM_CLASSES, *SIZE)


# ----------------------------------------------------------------------------- weights


def _assert_encoder_has(model: Swin2JNet, state_dict: dict[str, torch.Tensor]) -> None:
    """Every encoder parameter equals the checkpoint's (timm names ``layers.0``, features ``layers_0``)."""
    params = dict(model.encoder.model.named_parameters())
    assert params
    for key, value in params.items():
        ckpt_key = key.replace("layers_", "layers.")
        torch.testing.assert_close(value, state_dict[ckpt_key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_local_weights_round_trip(tmp_path, fmt):
    torch.manual_seed(1)
    state = _timm_tiny_swin().state_dict()
    path = tmp_path / f"encoder.{fmt}"
    if fmt == "pth":
        torch.save(state, path)
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    model = _tiny("swin2_jnet", pretrained=True, weights=str(path))  # seed 0: differs from the file
    _assert_encoder_has(model, state)
    random_model = _tiny("swin2_jnet")
    assert not torch.equal(random_model.encoder.model.patch_embed.proj.weight, state["patch_embed.proj.weight"])


def test_local_weights_into_another_img_size(tmp_path):
    """A checkpoint made at one size loads at another: timm's filter drops the size-bound buffers."""
    torch.manual_seed(1)
    state = _timm_tiny_swin(img_size=(64, 64)).state_dict()
    torch.save(state, tmp_path / "encoder.pth")
    model = _tiny("swin2_jnet", img_size=(96, 128), pretrained=True, weights=str(tmp_path / "encoder.pth"))
    _assert_encoder_has(model, state)
    assert model(torch.randn(1, 3, 96, 128)).shape == (1, NUM_CLASSES, 96, 128)


def test_missing_weights_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere" / "encoder.safetensors"
    with pytest.raises(CitysegError, match=f"weights file {path} does not exist"):
        _tiny("swin2_jnet", pretrained=True, weights=str(path))


def test_unloadable_weights_file_names_the_path(tmp_path):
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CitysegError, match=f"weights file {path} does not load"):
        _tiny("swin2_jnet", pretrained=True, weights=str(path))
    torch.save({"conv.weight": torch.zeros(1)}, path)  # a state dict of something else
    with pytest.raises(CitysegError, match=f"weights file {path} does not load.*tensors missing"):
        _tiny("swin2_jnet", pretrained=True, weights=str(path))
    state = _timm_tiny_swin().state_dict()  # timm loads non-strictly: one missing tensor must not pass
    del state["layers.0.blocks.0.attn.qkv.weight"]
    torch.save(state, path)
    with pytest.raises(CitysegError, match="1 tensors missing \\(layers.0.blocks.0.attn.qkv.weight\\)"):
        _tiny("swin2_jnet", pretrained=True, weights=str(path))
    wider = timm.create_model(DEMO_ENCODER, pretrained=False, img_size=SIZE, **{**TINY_SWIN, "embed_dim": 32})
    torch.save(wider.state_dict(), path)
    with pytest.raises(CitysegError, match=f"weights file {path} does not load.*size mismatch"):
        _tiny("swin2_jnet", pretrained=True, weights=str(path))
    # a deeper model of the same family (a swinv2_small file for swinv2_tiny) holds every tensor and more
    deeper = timm.create_model(DEMO_ENCODER, pretrained=False, img_size=SIZE, **{**TINY_SWIN, "depths": (1, 1, 3, 1)})
    torch.save(deeper.state_dict(), path)
    with pytest.raises(WeightsUnavailable, match=f"weights file {path} does not load.*holds \\d+ tensors the encoder "
                                                 "does not have \\(layers.2.blocks.1.*a checkpoint of a larger model"):
        _tiny("swin2_jnet", pretrained=True, weights=str(path))
    with pytest.raises(WeightsUnavailable, match=f"weights file {tmp_path} is a folder; name the checkpoint file"):
        _tiny("swin2_jnet", pretrained=True, weights=str(tmp_path))
    # names under a wrapper's prefix (a Lightning checkpoint's "model."): the line says what it holds
    torch.save({f"model.{k}": v for k, v in _timm_tiny_swin().state_dict().items()}, path)
    with pytest.raises(WeightsUnavailable, match=r"tensors missing .*none of its names matches \(its first: "
                                                 r"'model\.[a-z_.0-9]+'\): another model, or a prefix\?"):
        _tiny("swin2_jnet", pretrained=True, weights=str(path))
    # a full-size checkpoint for an encoder that encoder_kwargs shrink
    torch.save(timm.create_model(DEMO_ENCODER, pretrained=False, img_size=SIZE).state_dict(), path)
    with pytest.raises(WeightsUnavailable, match=r"encoder_kwargs \{.*\} change the architecture the checkpoint "
                                                 r"was made for \(timm's 'swinv2_tiny_window8_256'\): .*size mismatch"):
        _tiny("swin2_jnet", pretrained=True, weights=str(path))


def test_pretrained_offline_fails_fast_with_both_ways_out(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))  # even if the user has one
    start = time.perf_counter()
    with pytest.raises(CitysegError) as info:
        _tiny("swin2_jnet", pretrained=True)
    assert time.perf_counter() - start < 5
    message = str(info.value)
    assert "\n" not in message
    assert "weights: PATH" in message and "Hugging Face cache" in message and "internet" in message


# ----------------------------------------------------------------------------- summary


def _conv_flops(cin: int, cout: int, k: int, h_out: int, w_out: int) -> int:
    return 2 * cin * cout * k * k * h_out * w_out


def test_summary_simple_fcn_by_hand():
    w, n, (h, wd), c = 8, 2, SIZE, NUM_CLASSES
    model = build_model("simple_fcn", base_width=w)
    enc = [(3, w), (w, 2 * w), (2 * w, 4 * w)]
    dec = [(4 * w, 2 * w), (2 * w, w), (w, w // 2)]
    expected_params = (
        sum(ci * co * 9 + co for ci, co in enc) + sum(ci * co * 4 + co for ci, co in dec) + (w // 2) * c + c
    )
    # encoder convs at full, 1/2, 1/4 size (pooling follows); transposed convs counted at their
    # input size (1/8, 1/4, 1/2) as FlopCounterMode does; the classifier at full size
    expected_flops = n * (
        sum(_conv_flops(ci, co, 3, h >> i, wd >> i) for i, (ci, co) in enumerate(enc))
        + sum(_conv_flops(ci, co, 2, h >> (3 - i), wd >> (3 - i)) for i, (ci, co) in enumerate(dec))
        + _conv_flops(w // 2, c, 1, h, wd)
    )
    summary = model_summary(model, SIZE, batch_size=n)
    assert summary["params"] == summary["trainable_params"] == expected_params == 8843
    assert summary["flops"] == expected_flops == 2 * 11_845_632
    assert summary["output_shape"] == (n, c, h, wd)
    assert summary["param_bytes"] == 4 * expected_params

    for p in model.head.parameters():
        p.requires_grad_(False)
    assert model_summary(model, SIZE)["trainable_params"] == expected_params - ((w // 2) * c + c)


def test_summary_under_channels_last_autocast_and_meta():
    model = _tiny("unet").to(memory_format=torch.channels_last).train()
    plain = model_summary(model, SIZE)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model_summary(model, SIZE)
    assert mixed["flops"] == plain["flops"] > 0
    assert model.training  # mode restored
    with torch.device("meta"):
        meta_model = build_model("unet", **TINY["unet"])
    assert model_summary(meta_model, SIZE) == plain  # shapes only: no memory, no compute


# ----------------------------------------------------------------------------- torch.compile


def test_compile_traces_without_graph_breaks():
    """Dynamo + AOT autograd with a full graph (the inductor code generation is tested below)."""
    model = _tiny("simple_fcn", base_width=4)
    x = torch.randn(2, 3, *ODD_SIZE)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    out = compiled(x)
    torch.testing.assert_close(out, model(x))
    out.mean().backward()


@pytest.mark.slow
def test_compile_inductor_simple_fcn():
    """The real torch.compile (C++ code generation on CPU, ~20 s); forward only to keep it short."""
    model = _tiny("simple_fcn", base_width=4).eval()
    x = torch.randn(1, 3, *SIZE)
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(model, fullgraph=True)(x), model(x))


def test_a_pretrained_encoder_must_expect_the_pipelines_normalisation(tmp_path):
    """The data pipeline normalises with ImageNet's mean and std, as every timm Swin V2 expects; an
    encoder pretrained on other statistics (CLIP) would see shifted colours: refused before building."""
    from cityseg_lib.models import check_model

    with pytest.raises(CitysegError, match=r"encoder 'vit_base_patch16_clip_224.openai' was pretrained on inputs "
                                           r"normalised with mean \(0.4814"):
        check_model("swin2_jnet", {"encoder": "vit_base_patch16_clip_224.openai", "pretrained": True})
    check_model("swin2_jnet", {"encoder": "vit_base_patch16_clip_224.openai", "pretrained": False})
    check_model("swin2_jnet", {"encoder": "swinv2_base_window12to24_192to384", "pretrained": True})


def test_offline_a_pretrained_encoder_not_in_any_cache_is_refused_before_a_run_starts(tmp_path, monkeypatch,
                                                                                      demo_root, capsys):
    """HF_HUB_OFFLINE set and the checkpoint in neither the Hugging Face cache nor torch hub's: the
    download cannot happen, so check_weights refuses it (no network asked) with the ways out, and
    `cityseg train` exits 2 before a run folder exists (it left one holding only .lock). With the
    checkpoint in the hub cache, or pretrained false, it passes; check_model, which also vets configs
    that train nothing here (a re-rendered report, a GPU study's plan), does not ask."""
    from huggingface_hub import constants

    from cityseg_lib.cli import main
    from cityseg_lib.models import check_model, check_weights

    cache = tmp_path / "hf"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    options = {"encoder": DEMO_ENCODER, "pretrained": True}
    check_model("swin2_jnet", options)
    with pytest.raises(WeightsUnavailable, match="HF_HUB_OFFLINE is set and the checkpoint is in no cache.*weights: PATH"):
        check_weights("swin2_jnet", options)
    check_weights("swin2_jnet", {**options, "pretrained": False})
    check_weights("unet", {})
    runs = tmp_path / "runs"
    assert main(["train", f"runs_dir={runs}", f"data_root={demo_root}", "model=swin2_jnet", "image_size=[32, 64]",
                 "epochs=1", "device=cpu", f"model_options={{encoder: {DEMO_ENCODER}, pretrained: true}}"]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "cannot get pretrained weights" in err and not runs.exists(), (out, err)
    # the file in the hub's cache layout (refs/main -> snapshots/REV/model.safetensors): accepted
    from timm.models import get_pretrained_cfg

    repo = get_pretrained_cfg(DEMO_ENCODER).hf_hub_id.split("@")[0]
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("abc123")
    (folder / "snapshots" / "abc123").mkdir(parents=True)
    (folder / "snapshots" / "abc123" / "model.safetensors").write_bytes(b"x")
    check_weights("swin2_jnet", options)


def test_a_pickled_object_for_weights_says_what_it_is_not_what_torch_advises(tmp_path):
    path = tmp_path / "model.pth"
    torch.save(_timm_tiny_swin(), path)  # a whole pickled module, not a state dict
    with pytest.raises(WeightsUnavailable, match="not a checkpoint of tensors alone") as info:
        _tiny("swin2_jnet", pretrained=True, weights=str(path))
    assert "weights_only=False" not in str(info.value)
