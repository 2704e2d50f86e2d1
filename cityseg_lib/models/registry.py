"""Name -> model registry, and the option checks every model shares.

Models register their class with ``@register_model("name")``; ``build_model(name, **options)``
looks the name up and checks the options against the class signature, so a typo in
``model_options`` of a params file is one :class:`CitysegError` naming the option and the valid
ones, never a ``TypeError`` deep in ``__init__`` (the smp ``create_model`` / timm
``@register_model`` pattern, see CONVENTIONS.md section 4).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, Callable, TypeVar

from torch import nn

from cityseg_lib.errors import CitysegError
from cityseg_lib.data.labels import NUM_CLASSES

__all__ = [
    "register_model",
    "build_model",
    "model_names",
    "model_options",
    "check_model",
    "model_revision",
    "check_weights",
    "check_int",
    "check_probability",
    "check_size",
]

M = TypeVar("M", bound=Callable[..., nn.Module])

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
#: name -> ``check(options, input_size)``: the model's cheap value checks (nothing built)
_CHECKS: dict[str, Callable[[dict, "tuple[int, int] | None"], None]] = {}
#: name -> ``revision(options, input_size)``: which revision of the model's computation a config has
_REVISIONS: dict[str, Callable[[dict, "tuple[int, int] | None"], "int | None"]] = {}
#: name -> ``batch_check(options, input_size, smallest_batch)``: what a training batch this small breaks
_BATCH_CHECKS: dict[str, Callable[[dict, "tuple[int, int] | None", int], None]] = {}
#: name -> ``weights_check(options)``: whether the weights a run of these options starts from can be had here
_WEIGHTS_CHECKS: dict[str, Callable[[dict], None]] = {}


# ----------------------------------------------------------------------------- option checks


#: The largest integer option (a width in channels, a depth, a class count): a 3x3 convolution of
#: 4096 channels in and out already holds 151M weights; a larger number is a slip (an extra digit,
#: 2**70), which passed the checks and failed inside the run, after its folder was made (torch's
#: allocator, or its int64 overflow).
MAX_INT_OPTION = 4096


def check_int(model: str, key: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int in [``minimum``, :data:`MAX_INT_OPTION`]; bools and floats are rejected
    (YAML ``8.0`` is a typo)."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_INT_OPTION:
        raise CitysegError(f"{model}: option {key}={value!r} must be an integer in [{minimum}, {MAX_INT_OPTION}]")
    return value


def check_probability(model: str, key: str, value: Any) -> float:
    """``value`` as a float in [0, 1) (a dropout rate of 1 would zero every activation)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise CitysegError(f"{model}: option {key}={value!r} must be a number in [0, 1)")
    return float(value)


def check_size(model: str, key: str, value: Any) -> tuple[int, int]:
    """``value`` as an ``(H, W)`` pair of positive ints; YAML gives lists, a single int means square."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)
    ):
        raise CitysegError(f"{model}: option {key}={value!r} must be [H, W], two positive integers")
    return int(value[0]), int(value[1])


# ----------------------------------------------------------------------------- registry


def register_model(name: str, check: Callable[[dict, "tuple[int, int] | None"], None] | None = None,
                   revision: Callable[[dict, "tuple[int, int] | None"], "int | None"] | None = None,
                   batch_check: Callable[[dict, "tuple[int, int] | None", int], None] | None = None,
                   weights_check: Callable[[dict], None] | None = None) -> Callable[[M], M]:
    """Class (or function) decorator: make ``build_model(name, ...)`` build it.

    The builder must accept ``num_classes`` and its options as keyword arguments; its
    signature is the list of valid options. ``check(options, input_size)``, when given, refuses bad
    option values (every option present, defaults filled in) and an input size the model cannot
    take (None: not known), cheaply: :func:`check_model` runs it where a config enters, before any
    folder, data or weights are touched. ``revision(options, input_size)``, when given, names the
    revision of the model's computation where a later version of its code computes something else
    than an earlier one (None where they agree): it enters a run's identity (:func:`model_revision`).
    ``batch_check(options, input_size, smallest_batch)``, when given, refuses a training batch of
    ``smallest_batch`` images the model cannot train on at that input size (BatchNorm needs more
    than one value per channel in training mode). ``weights_check(options)``, when given, refuses
    pretrained weights that cannot be had here (offline, in no cache) without the network, just
    before a run starts (:func:`check_weights`): not in :func:`check_model`, which also vets configs
    that train nothing here (a report re-rendered, a study planned for a GPU machine).
    """

    def decorator(builder: M) -> M:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")  # a bug, not a user error
        _REGISTRY[name] = builder
        if check is not None:
            _CHECKS[name] = check
        if revision is not None:
            _REVISIONS[name] = revision
        if batch_check is not None:
            _BATCH_CHECKS[name] = batch_check
        if weights_check is not None:
            _WEIGHTS_CHECKS[name] = weights_check
        return builder

    return decorator


def model_names() -> tuple[str, ...]:
    """The registered model names, sorted."""
    return tuple(sorted(_REGISTRY))


def _builder(name: str) -> Callable[..., nn.Module]:
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise CitysegError(f"unknown model {name!r}; valid models: {', '.join(model_names())}") from None


def model_options(name: str) -> dict[str, Any]:
    """Option name -> default value of model ``name`` (``num_classes`` excluded)."""
    params = inspect.signature(_builder(name)).parameters
    return {
        key: p.default
        for key, p in params.items()
        if key != "num_classes" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def build_model(name: str, num_classes: int = NUM_CLASSES, **options: Any) -> nn.Module:
    """Build the registered model ``name`` with ``num_classes`` output channels.

    Every model maps images ``(N, 3, H, W)`` float to logits ``(N, num_classes, H, W)``.
    Raises :class:`CitysegError` for an unknown name (listing the valid names) and for an
    unknown option (listing the model's valid options).
    """
    check_model(name, options)
    check_int(name, "num_classes", num_classes)
    return _builder(name)(num_classes=num_classes, **options)


def check_model(name: str, options: Mapping[str, Any], input_size: tuple[int, int] | None = None,
                smallest_batch: int | None = None) -> None:
    """What :func:`build_model` refuses before building: an unknown model name (listing the valid
    ones), an option the model does not take (listing its options), an option value out of range,
    and (with ``input_size``, the ``(H, W)`` the model will be trained on) an input the model cannot
    take, and (with ``smallest_batch``, the fewest images a training batch will hold) a batch the
    model cannot train on at that size. Cheap: no weights are made or loaded (a Swin encoder is
    built on the meta device, shapes only), so a config can be checked where it enters, before any folder or data is touched."""
    valid = model_options(name)
    for key in options:
        if key not in valid:
            raise CitysegError(
                f"model {name!r} has no option {key!r}; valid options: {', '.join(sorted(valid)) or '(none)'}"
            )
    size = None if input_size is None else tuple(input_size)
    if name in _CHECKS:
        _CHECKS[name]({**valid, **options}, size)
    if smallest_batch is not None and name in _BATCH_CHECKS:
        _BATCH_CHECKS[name]({**valid, **options}, size, smallest_batch)


def model_revision(name: str, options: Mapping[str, Any], input_size: tuple[int, int] | None) -> int | None:
    """The revision of model ``name``'s computation for ``options`` at ``input_size`` (the training
    size), or None where it computes what it always did. A run's identity records it, so that a fix
    to a model's arithmetic trains a new run beside the runs of the old one (reported as such) and a
    checkpoint of the old one is never scored by the new code. Options are :func:`check_model`'s to
    judge (a config's identity may be asked for before its model is checked)."""
    if name not in _REVISIONS:
        return None
    return _REVISIONS[name]({**model_options(name), **options}, None if input_size is None else tuple(input_size))


def check_weights(name: str, options: Mapping[str, Any]) -> None:
    """Refuse, before a run of model ``name`` with ``options`` starts (its folder, data or weights
    touched), initial weights that cannot be had here: one line naming the ways out (a Swin2-JNet's
    pretrained encoder offline, its checkpoint in no cache). Options are :func:`check_model`'s to judge."""
    if name in _WEIGHTS_CHECKS:
        _WEIGHTS_CHECKS[name]({**model_options(name), **options})
