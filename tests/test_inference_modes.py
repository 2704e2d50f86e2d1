"""Inference modes (whole, slide, flip and multi-scale TTA) on tiny models and tiny images."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cityseg_lib.errors import CitysegError
from cityseg_lib.evaluate.modes import DEFAULT_MS_SCALES, InferenceMode, default_stride, infer, slide_windows
from cityseg_lib.models import build_model


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _unet() -> nn.Module:
    torch.manual_seed(0)
    return build_model("unet", num_classes=5, base_width=4, depth=2).eval()


class Pointwise(nn.Module):
    """A 1x1 convolution: each output pixel depends on its input pixel only."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(3, classes, 1)

    def forward(self, x):
        return self.conv(x)


class WindowMean(nn.Module):
    """Class 0 = the mean of input channel 0 over the whole window (input), class 1 = 0."""

    def forward(self, x):
        mean = x[:, :1].mean(dim=(2, 3), keepdim=True).expand(-1, -1, *x.shape[-2:])
        return torch.cat([mean, torch.zeros_like(mean)], dim=1)


# ----------------------------------------------------------------------------- slide


def test_slide_with_one_window_equals_whole():
    model, x = _unet(), torch.randn(2, 3, 32, 48)
    whole = infer(model, x, (32, 48), mode="whole", train_size=(32, 48))
    slide = infer(model, x, (32, 48), mode="slide", train_size=(32, 48))
    assert whole.shape == (2, 5, 32, 48)
    torch.testing.assert_close(slide, whole)
    # a larger label: whole resizes to the training size; slide at scale train/label has one window too
    x = torch.randn(1, 3, 64, 96)
    whole = infer(model, x, (64, 96), mode="whole", train_size=(32, 48))
    slide = infer(model, x, (64, 96), mode="slide", train_size=(32, 48), scales=(0.5,))
    assert whole.shape == (1, 5, 64, 96)
    torch.testing.assert_close(slide, whole)


@pytest.mark.parametrize("size, stride", [((20, 30), None), ((20, 30), (3, 5)), ((6, 10), None), ((9, 40), (8, 12))],
                         ids=["default-stride", "small-stride", "padded", "padded-rows"])
def test_slide_of_a_pointwise_model_equals_whole_at_full_resolution(size, stride):
    model, x = Pointwise(), torch.randn(2, 3, *size)
    full = infer(model, x, size, mode="whole")  # train_size None: the image as it is
    torch.testing.assert_close(full, model(x))
    slide = infer(model, x, size, mode="slide", train_size=(8, 12), stride=stride)
    torch.testing.assert_close(slide, full)


def test_slide_windows_follow_mmseg():
    assert default_stride((512, 769)) == (341, 513) and default_stride((1, 2)) == (1, 1)
    # 11 rows, window 4, stride 3: a grid at 0, 3, 6 and a last window moved back to end at 11
    assert [w[:2] for w in slide_windows((11, 6), (4, 6), (3, 6))] == [(0, 4), (3, 7), (6, 10), (7, 11)]
    assert slide_windows((10, 6), (4, 6), (3, 6)) == [(0, 4, 0, 6), (3, 7, 0, 6), (6, 10, 0, 6)]
    assert slide_windows((4, 6), (4, 6), (3, 6)) == [(0, 4, 0, 6)]
    assert len(slide_windows((1024, 2048), (512, 1024), (341, 682))) == 9  # a 512x1024 crop on a full frame


def test_slide_averages_overlapping_windows_by_hand():
    x = torch.randn(1, 3, 11, 6)
    got = infer(WindowMean(), x, (11, 6), mode="slide", train_size=(4, 6), stride=(3, 6))
    rows = [(0, 4), (3, 7), (6, 10), (7, 11)]
    expected = torch.zeros(11, 6)
    for y in range(11):
        means = [x[0, 0, a:b].mean() for a, b in rows if a <= y < b]
        expected[y] = sum(means) / len(means)
    torch.testing.assert_close(got[0, 0], expected)
    assert torch.all(got[0, 1] == 0)


def test_slide_scale_resizes_the_label_resolution_image():
    model, x = Pointwise(), torch.randn(1, 3, 16, 24)
    got = infer(model, x, (16, 24), mode="slide", train_size=(8, 8), scales=(0.5,))
    half = F.interpolate(x, size=(8, 12), mode="bilinear", align_corners=False, antialias=True)
    expected = F.interpolate(model(half), size=(16, 24), mode="bilinear", align_corners=False)
    torch.testing.assert_close(got, expected)


# ----------------------------------------------------------------------------- TTA


def test_flip_of_a_flip_equivariant_model_equals_no_flip():
    model, x = Pointwise(), torch.randn(2, 3, 16, 24)
    for mode in ("whole", "slide"):
        plain = infer(model, x, (16, 24), mode=mode, train_size=(8, 16))
        flipped = infer(model, x, (16, 24), mode=mode, train_size=(8, 16), flip=True)
        torch.testing.assert_close(flipped, plain.softmax(1))  # TTA returns probabilities


@pytest.mark.parametrize("mode", ["whole", "slide"])
def test_flip_tta_is_mirror_consistent(mode):
    model, x = _unet(), torch.randn(1, 3, 32, 48)
    symmetric = torch.cat([x[..., :24], x[..., :24].flip(-1)], dim=-1)
    out = infer(model, symmetric, (32, 48), mode=mode, train_size=(16, 24), flip=True)
    torch.testing.assert_close(out, out.flip(-1))  # a mirror-symmetric image gets a symmetric prediction
    a = infer(model, x, (32, 48), mode=mode, train_size=(16, 24), flip=True)
    b = infer(model, x.flip(-1), (32, 48), mode=mode, train_size=(16, 24), flip=True)
    torch.testing.assert_close(b, a.flip(-1))
    assert torch.allclose(a.sum(1), torch.ones(1, 32, 48))


def test_multi_scale_with_one_scale_equals_single_scale():
    model, x = _unet(), torch.randn(2, 3, 32, 48)
    single = infer(model, x, (32, 48), train_size=(16, 24))
    torch.testing.assert_close(infer(model, x, (32, 48), train_size=(16, 24), scales=(1.0,)), single)
    torch.testing.assert_close(infer(model, x, (32, 48), train_size=(16, 24), scales=[1.0, 1.0]), single.softmax(1))
    torch.testing.assert_close(infer(model, x, (32, 48), train_size=(16, 24), softmax=True), single.softmax(1))


def test_multi_scale_averages_probabilities_at_the_output_size():
    model, x = _unet(), torch.randn(1, 3, 32, 48)
    got = infer(model, x, (32, 48), mode="whole", train_size=(16, 24), scales=(1.0, 2.0), flip=True)
    parts = []
    for size in ((16, 24), (32, 48)):
        for view, back in ((x, lambda t: t), (x.flip(-1), lambda t: t.flip(-1))):
            resized = view if size == (32, 48) else F.interpolate(view, size=size, mode="bilinear",
                                                                    align_corners=False, antialias=True)
            logits = F.interpolate(model(resized), size=(32, 48), mode="bilinear", align_corners=False)
            parts.append(back(logits).softmax(1))
    torch.testing.assert_close(got, sum(parts) / 4)
    slide = infer(model, x, (32, 48), mode="slide", train_size=(16, 16), scales=(0.75, 1.25))
    assert slide.shape == (1, 5, 32, 48) and torch.allclose(slide.sum(1), torch.ones(1, 32, 48))


# ----------------------------------------------------------------------------- InferenceMode


def test_inference_mode_parse_and_label():
    assert InferenceMode().label() == "whole"
    assert InferenceMode.parse("slide", "flip").label() == "slide + flip"
    ms = InferenceMode.parse("whole", "flip,ms")
    assert ms.flip and ms.scales == DEFAULT_MS_SCALES and ms.tta
    assert ms.label() == "whole + flip + ms(0.5,0.75,1,1.25,1.5,1.75)"
    custom = InferenceMode.parse("slide", None, scales="0.75,1,1.25", stride="200,300")
    assert custom == InferenceMode("slide", False, (0.75, 1.0, 1.25), (200, 300))
    assert custom.label() == "slide (stride 200x300) + ms(0.75,1,1.25)"
    assert InferenceMode.parse("whole", "none") == InferenceMode()
    assert InferenceMode("slide", scales=(0.5,)).label() == "slide + scale 0.5"
    assert InferenceMode.parse("slide", stride="341x682").stride == (341, 682)
    assert InferenceMode(scales=[1, 2]).scales == (1.0, 2.0)  # normalised, hashable
    model, x = Pointwise(), torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(InferenceMode("slide")(model, x, (8, 8), train_size=(4, 4)), model(x))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(mode="sliding"), "mode 'sliding' is not one of whole, slide"),
        (dict(flip="yes"), "flip='yes'"),
        (dict(scales=()), r"scales=\(\)"),
        (dict(scales=(1.0, 0)), "scale 0 in scales"),
        (dict(scales=(True,)), "scale True"),
        (dict(scales="1,x"), "scales='1,x'"),
        (dict(mode="whole", stride=4), "stride=4 only applies to mode 'slide'"),
        (dict(mode="slide", stride=(0, 4)), r"stride=\(0, 4\)"),
    ],
)
def test_bad_inference_modes(kwargs, match):
    with pytest.raises(CitysegError, match=match):
        InferenceMode(**kwargs)


def test_bad_values_in_infer_and_parse():
    model, x = Pointwise(), torch.randn(1, 3, 8, 8)
    with pytest.raises(CitysegError, match="mode 'slide' needs train_size"):
        infer(model, x, (8, 8), mode="slide")
    with pytest.raises(CitysegError, match=r"stride=\[5, 5\] is larger than the window \[4, 4\]"):
        infer(model, x, (8, 8), mode="slide", train_size=(4, 4), stride=5)
    with pytest.raises(CitysegError, match="train_size=.0, 4."):
        infer(model, x, (8, 8), train_size=(0, 4))
    with pytest.raises(CitysegError, match=r"images must be a float tensor \(N, 3, H, W\), got \(3, 8, 8\)"):
        infer(model, x[0], (8, 8))
    with pytest.raises(CitysegError, match="out_size=8.5"):
        infer(model, x, 8.5)
    with pytest.raises(CitysegError, match="tta 'rotate' is not one of flip, ms"):
        InferenceMode.parse("whole", "flip,rotate")
    for typo in ("a", "20x", "20,", "1x2x3"):
        with pytest.raises(CitysegError, match=f"stride='{typo}' must be an integer or H,W"):
            InferenceMode.parse("slide", stride=typo)
    assert InferenceMode.parse("slide", stride="20x30").stride == (20, 30)
    with pytest.raises(CitysegError) as info:
        InferenceMode.parse("tiles")
    assert "\n" not in str(info.value) and "'tiles'" in str(info.value)


def test_slide_in_batches_of_windows_equals_one_window_at_a_time():
    from cityseg_lib.evaluate import modes
    from cityseg_lib.models import build_model

    torch.manual_seed(0)
    model = build_model("unet", num_classes=5, base_width=4, depth=2).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, used as constants in eval mode
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 3, 40, 70)
    with torch.no_grad():
        one = modes._slide(model, x, (16, 24), (10, 16), batch=1)
        many = modes._slide(model, x, (16, 24), (10, 16), batch=7)  # 7 does not divide the 4 x 4 windows
    assert len(slide_windows((40, 70), (16, 24), (10, 16))) == 16
    torch.testing.assert_close(many, one, rtol=1e-5, atol=1e-5)
