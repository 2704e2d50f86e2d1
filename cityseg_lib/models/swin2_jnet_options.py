"""The Swin2-JNet's options: their checks where a config enters (nothing built but a meta-device
encoder, shapes only) and the revision of its computation that enters a run's identity."""

from __future__ import annotations

from typing import Any

import torch

from cityseg_lib.errors import CitysegError, one_line
from cityseg_lib.models.registry import check_int, check_probability, check_size

__all__ = ["check_swin2_jnet", "check_swin2_jnet_batch", "check_swin2_jnet_weights", "swin2_jnet_revision", "REVISIONS"]

_NAME = "swin2_jnet"

#: encoder_kwargs this module sets itself.
_RESERVED_KWARGS = ("features_only", "pretrained", "pretrained_cfg_overlay", "img_size")


def _check_encoder_kwargs(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CitysegError(f"{_NAME}: option encoder_kwargs={value!r} must be a mapping of timm.create_model arguments")
    for key in value:
        if key in _RESERVED_KWARGS:
            raise CitysegError(f"{_NAME}: encoder_kwargs may not set {key!r}; use the model option instead")
    # YAML gives lists; timm expects tuples for depths, num_heads, window sizes
    return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}


def _check_normalisation(encoder: str) -> None:
    """A pretrained encoder must expect the inputs the data pipeline gives: ImageNet's mean and std
    (every Swin V2 of timm does; CLIP or Inception encoders do not, and would see shifted colours)."""
    import math

    from timm.models import get_pretrained_cfg

    from cityseg_lib.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    cfg = get_pretrained_cfg(encoder)
    if cfg is None or cfg.mean is None or cfg.std is None:
        return
    expected, given = (*cfg.mean, *cfg.std), (*IMAGENET_MEAN, *IMAGENET_STD)
    if not all(math.isclose(a, b, abs_tol=1e-4) for a, b in zip(expected, given)):
        raise CitysegError(f"{_NAME}: encoder {encoder!r} was pretrained on inputs normalised with mean {cfg.mean} "
                           f"and std {cfg.std}; the data pipeline gives ImageNet's {IMAGENET_MEAN} / {IMAGENET_STD}: "
                           "choose an ImageNet-normalised encoder (e.g. a swinv2_*), or pretrained: false")


#: (encoder, encoder_kwargs, img_size) -> the stride of each feature stage, see :func:`_encoder_strides`
_STAGES: dict[str, tuple[int, ...]] = {}


def _encoder_stages(encoder: str, kwargs: dict[str, Any], img_size: tuple[int, int] | None) -> int:
    """Feature stages of the encoder (:func:`_encoder_strides`)."""
    return len(_encoder_strides(encoder, kwargs, img_size))


def _encoder_strides(encoder: str, kwargs: dict[str, Any], img_size: tuple[int, int] | None) -> tuple[int, ...]:
    """The stride of each feature stage of the encoder, shallow to deep, from a build on the meta
    device (shapes only, no weights: 0.06 s for the demo's tiny Swin, 0.4 s for the base one; cached),
    so that arguments timm rejects and a size it cannot build for are refused where a config enters,
    not after its data and run folder."""
    key = repr((encoder, sorted(kwargs.items()), img_size))
    if key not in _STAGES:
        import timm

        size = {} if img_size is None else {"img_size": img_size}
        try:
            with torch.device("meta"):
                model = timm.create_model(encoder, pretrained=False, features_only=True, **kwargs, **size)
        except TypeError as err:  # timm passes unknown keyword arguments on to the model class
            raise CitysegError(f"{_NAME}: encoder {encoder!r} rejects its arguments {sorted(kwargs)}: "
                               f"{one_line(err)}") from err
        except Exception as err:  # e.g. an input smaller than a patch
            where = f" for {list(img_size)} images" if img_size else ""
            raise CitysegError(f"{_NAME}: encoder {encoder!r} cannot be built{where} (encoder_kwargs {kwargs}): "
                               f"{one_line(err)}") from err
        _STAGES[key] = tuple(model.feature_info.reduction())
    return _STAGES[key]


def check_swin2_jnet_weights(options: dict) -> None:
    """Before a run of ``options`` (defaults filled) starts: a pretrained encoder without a ``weights``
    file must be downloadable, which it is not offline with the checkpoint in no cache
    (:func:`~cityseg_lib.models.timm_weights.check_download`; no network asked)."""
    if options["pretrained"] and not options["weights"]:
        from cityseg_lib.models.timm_weights import check_download

        check_download(options["encoder"], _NAME)


def check_swin2_jnet_batch(options: dict, input_size: tuple[int, int] | None, smallest_batch: int) -> None:
    """A training batch of one image whose deepest encoder grid is 1x1 (a 32x32 input): the decoder's
    deepest block normalises one value per channel, which BatchNorm cannot in training mode (torch:
    "Expected more than 1 value per channel when training"). The grid follows Swin V2: the patch
    embedding drops a remainder (``side // 4``), each patch merging pads an odd grid (ceil of half).
    Refused where the config enters, naming what to change; without BatchNorm nothing is refused."""
    size = options["img_size"] if options["img_size"] is not None else input_size
    if size is None or smallest_batch != 1 or not options["batchnorm"]:
        return
    size = check_size(_NAME, "img_size", size)
    strides = _encoder_strides(options["encoder"], _check_encoder_kwargs(options["encoder_kwargs"]), size)
    deepest = []
    for side in size:
        cells = side // strides[0]
        for shallow, deep in zip(strides[:-1], strides[1:]):
            cells = -(-cells // (deep // shallow))
        deepest.append(cells)
    if deepest == [1, 1]:
        raise CitysegError(f"{_NAME}: a training batch of 1 image at {list(size)} leaves the encoder's deepest grid "
                           "1x1, one value per channel for the decoder's BatchNorm; raise batch_size (and the "
                           f"training images) to 2 or more, or image_size to more than {strides[-1]} on a side, or "
                           "set model_options.batchnorm: false")


def check_swin2_jnet(options: dict, input_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """The Swin2-JNet's option values, without weights: a timm model name, booleans, ``weights`` only
    with ``pretrained``, the dropout rate, ``encoder_kwargs`` (returned as timm takes them), sizes and
    widths, one per encoder stage (counted on a meta-device build for ``img_size``, else the input
    size). Any input size the encoder builds for works (others are resized to it)."""
    import timm

    encoder, pretrained, weights = options["encoder"], options["pretrained"], options["weights"]
    if not isinstance(encoder, str) or not timm.is_model(encoder):
        raise CitysegError(f"{_NAME}: encoder {encoder!r} is not a timm model name (see timm.list_models('swinv2*'))")
    if options["img_size"] is not None:
        check_size(_NAME, "img_size", options["img_size"])
    for key in ("pretrained", "batchnorm"):
        if not isinstance(options[key], bool):
            raise CitysegError(f"{_NAME}: option {key}={options[key]!r} must be true or false")
    if weights and not pretrained:
        raise CitysegError(f"{_NAME}: weights={weights!r} with pretrained=false; drop one of the two")
    if pretrained:
        _check_normalisation(encoder)

    check_probability(_NAME, "dropout", options["dropout"])
    channels = options["decoder_channels"]
    if channels is not None:
        if not isinstance(channels, (list, tuple)):
            raise CitysegError(f"{_NAME}: option decoder_channels={channels!r} must list one width per encoder stage")
        for c in channels:
            check_int(_NAME, "decoder_channels", c)
    kwargs = _check_encoder_kwargs(options["encoder_kwargs"])
    size = options["img_size"] if options["img_size"] is not None else input_size
    stages = _encoder_stages(encoder, kwargs, None if size is None else check_size(_NAME, "img_size", size))
    if channels is not None and len(channels) != stages:
        raise CitysegError(f"{_NAME}: option decoder_channels={channels!r} must list {stages} widths, one per "
                           "encoder stage")
    return kwargs


#: What each revision of the Swin2-JNet computes that the one before did not. A run's identity
#: records the revision (``model_revision``) wherever two revisions compute different things, so a
#: run of an earlier one is never reused as, extended by, or scored with this version's model.
REVISIONS = {
    2: "each decoder stage up-sampled by its stride ratio and cropped to the finer grid (2026-12-05); "
       "before, stretched onto it, which shifted the deepest features at sizes not a multiple of 32",
    3: "the decoder up-samples by 2x2 transposed convolutions (up-convolutions) as the reference describes; "
       "before, bilinear",
}


def swin2_jnet_revision(options: dict, input_size: tuple[int, int] | None) -> int:
    """The revision whose computation a Swin2-JNet of ``options`` at ``input_size`` has: the latest,
    :data:`REVISIONS`' 3, at every size (its learned up-convolutions replace the bilinear up-sampling
    of revisions 1 and 2 everywhere), so every Swin2-JNet run trained before it, the full profile's
    768x768 included, differs from this version's by its identity and is kept beside the new one.
    (Revision 2 had changed only sizes the deepest stride, 32, does not divide: an earlier run of
    another size records none, which reads as 1.) Neither the options nor the size matter now;
    they stay the signature every model's ``revision`` has (:func:`~.registry.register_model`)."""
    return max(REVISIONS)
