"""Strict typed configuration: dataclass defaults <- YAML file <- ``key=value`` overrides.

Unknown keys and values of the wrong type are errors that name the key and the file (nanoGPT's
configurator); YAML syntax errors give the file and line. Each config dataclass states the
allowed range of its numeric keys in a ``RANGES`` class attribute, checked on every build.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml

from cityseg_lib.errors import CitysegError

__all__ = ["from_dict", "config_to_dict", "load_yaml", "parse_overrides", "check_ranges", "at_least", "between",
           "one_of"]

T = TypeVar("T")


# ----------------------------------------------------------------------------- ranges


def at_least(low: float, strict: bool = False) -> tuple[Callable[[Any], bool], str]:
    """A range rule: value >= low (or > low)."""
    return ((lambda v: v > low) if strict else (lambda v: v >= low)), (f"> {low}" if strict else f">= {low}")


def between(low: float, high: float) -> tuple[Callable[[Any], bool], str]:
    """A range rule: low <= value <= high."""
    return (lambda v: low <= v <= high), f"in [{low}, {high}]"


def one_of(*values: Any) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v in values), "one of " + ", ".join(map(str, values))


def _items(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def check_ranges(cfg: Any, source: str) -> None:
    """Check every key of ``cfg`` named in ``type(cfg).RANGES`` (each element of a tuple value).

    The message names the source, key, value and the allowed range; NaN and inf are refused.
    """
    for key, (ok, allowed) in getattr(type(cfg), "RANGES", {}).items():
        value = getattr(cfg, key)
        if value is None:
            continue
        for v in _items(value):
            bad = isinstance(v, float) and not math.isfinite(v)
            if bad or not ok(v):
                raise CitysegError(f"{source}: {key}={value!r} is out of range (allowed: {allowed})")


# ----------------------------------------------------------------------------- strict merging


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert lossless cases (int -> float, list -> tuple)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None
        errors = []
        # try exact types first so 3 stays an int in `float | int`
        args = sorted(typing.get_args(tp), key=lambda a: a is not type(value))
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except CitysegError as e:
                errors.append(e)
        raise CitysegError(f"{key}: {value!r} is not a {_type_name(tp)}")
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise CitysegError(f"{key}: {value!r} is not a list of {len(args)} values ({_type_name(tp)})")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is list:
        (arg,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, (list, tuple)):
            raise CitysegError(f"{key}: {value!r} is not a list")
        return [_coerce(v, arg, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise CitysegError(f"{key}: {value!r} is not a mapping")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise CitysegError(f"{key}: {value!r} is not a bool (true/false)")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise CitysegError(f"{key}: {value!r} is not an int")
        return value
    if tp is float:
        if isinstance(value, str):
            try:  # YAML 1.1 reads "1e-3" as a string
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CitysegError(f"{key}: {value!r} is not a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise CitysegError(f"{key}: {value!r} is not a string")
        return value
    raise TypeError(f"unsupported config annotation {tp!r} for {key}")  # a bug, not user input


def from_dict(cls: type[T], values: dict, source: str = "config", base: T | None = None) -> T:
    """Build dataclass ``cls`` from ``base`` (or defaults) updated with ``values``, strictly."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in values if k not in hints]
    if unknown:
        raise CitysegError(f"{source}: unknown key {unknown[0]!r} (valid keys: {', '.join(names)})")
    merged = {**(config_to_dict(base) if base is not None else {}), **values}
    for k, v in merged.items():
        try:
            merged[k] = _coerce(v, hints[k], k)
        except CitysegError as e:
            raise CitysegError(f"{source}: {e}") from None
    try:
        cfg = cls(**merged)
    except CitysegError as e:
        raise CitysegError(f"{source}: {e}") from None
    check_ranges(cfg, source)
    return cfg


def config_to_dict(cfg: Any) -> dict:
    """Plain dict of a config dataclass (tuples become lists, so it round-trips through YAML)."""

    def plain(v):
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {f.name: plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (PyYAML keeps the last
    silently, so ``epochs: 1`` above ``epochs: 2`` would train 2 epochs unseen). Keys merged in
    with ``<<:`` may be overridden, as YAML intends."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: PyYAML's own error follows
                    continue
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} given twice, first on line {first}", key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _safe_load(text: str):
    return yaml.load(text, Loader=_UniqueKeyLoader)


def load_yaml(path: str | os.PathLike) -> dict:
    """A YAML mapping from ``path``; errors name the file (and the line of a syntax error)."""
    path = Path(path)
    try:
        data = _safe_load(path.read_text())
    except FileNotFoundError:
        raise CitysegError(f"{path}: params file not found") from None
    except IsADirectoryError:
        raise CitysegError(f"{path}: is a folder, not a params file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise CitysegError(f"{path}: cannot read ({getattr(e, 'strerror', None) or type(e).__name__})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise CitysegError(f"{where}: invalid YAML ({problem})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CitysegError(f"{path}: expected a mapping of key: value, got {type(data).__name__}")
    return data


def parse_overrides(items: list[str]) -> dict:
    """``["lr=1e-4", "model_options={width: 8}"]`` -> dict, values parsed as YAML."""
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CitysegError(f"override {item!r} is not key=value")
        try:
            out[key.strip()] = _safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            problem = getattr(e, "problem", None) if isinstance(e, yaml.constructor.ConstructorError) else None
            raise CitysegError(f"override {item!r}: value is not valid YAML"
                               + (f" ({problem})" if problem else "")) from None
    return out
