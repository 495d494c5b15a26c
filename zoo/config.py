"""Typed model configuration with one precedence.

dataclass defaults  <  config file (TOML or JSON)  <  ``--set key=value``  <  explicit flags

Every value is checked against its field's annotation, and an unknown key is an error that
lists the valid ones. A number must be one a network can use: a float finite (NaN never, and
an infinity only where its field says so: ``option(..., infinite=True)``), an integer within
:data:`INT_LIMIT`. Nothing here imports torch, so the CLI can resolve and print a config
(``--dry-run``) instantly.

The command line's own numbers are checked where the pipelines resolve them, with
:func:`within` and :func:`check_seed`; JSON from files zoo did not write (a stranger's
checkpoint header, a config file) is read with :func:`parse_json`, which bounds its nesting.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import sys
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from zoo.errors import UsageError

INT_LIMIT = 2**31 - 1
"""The largest integer a config key takes (and the most negative, negated): beyond it no
width, count or step is meaningful, and torch's sizes overflow."""
SEED_MAX = 2**32 - 1
"""Seeds run from 0 to this: torch takes up to 2**64 - 1, and zoo derives further seeds from
a seed (times a million and more), which must stay within that."""
JSON_DEPTH = 100
"""The deepest nesting of JSON zoo reads (a checkpoint's header nests about ten deep)."""

_NONE_WORDS = {"none", "null"}
_TRUE_WORDS = {"true", "yes", "on", "1"}
_FALSE_WORDS = {"false", "no", "off", "0"}


def option(default: Any, help: str, *, infinite: bool = False) -> Any:
    """A config field with its default and a one-line help text (shown by ``zoo info``).
    A float field refuses infinities unless ``infinite`` (NaN always)."""
    return dataclasses.field(default=default, metadata={"help": help, "infinite": infinite})


@dataclasses.dataclass
class Config:
    """Settings every model has. A plugin subclasses this with its paper's defaults.

    Validate cross-field rules in ``__post_init__`` and raise :class:`zoo.UsageError`.
    """

    batch_size: int = option(64, "images per training batch")

    def __post_init__(self) -> None:
        self.at_least(1, "batch_size")

    def at_least(self, low: float, *keys: str) -> None:
        """Refuse a value of any of ``keys`` below ``low`` (None means "automatic" and passes)."""
        for key in keys:
            value = getattr(self, key)
            if value is not None and value < low:
                raise UsageError(f"{key} must be at least {low}, got {value}")

    def positive(self, *keys: str) -> None:
        """Refuse a value of any of ``keys`` that is not above 0 (a learning rate)."""
        for key in keys:
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise UsageError(f"{key} must be positive, got {value}")

    def below_one(self, *keys: str) -> None:
        """Refuse a value of any of ``keys`` outside [0, 1) (Adam's betas, a dropout rate)."""
        for key in keys:
            value = getattr(self, key)
            if value is not None and not 0.0 <= value < 1.0:
                raise UsageError(f"{key} must be within [0, 1), got {value}")

    def not_negative(self, *keys: str) -> None:
        """Refuse a negative value of any of ``keys`` (None passes)."""
        for key in keys:
            value = getattr(self, key)
            if value is not None and value < 0:
                raise UsageError(f"{key} must not be negative, got {value}")


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    name: str
    type: str
    default: Any
    help: str


def describe(cls: type[Config]) -> list[FieldInfo]:
    """The fields of a config class, for help screens."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        out.append(FieldInfo(f.name, _type_name(hints[f.name]), default, f.metadata.get("help", "")))
    return out


def to_dict(config: Config) -> dict[str, Any]:
    """A JSON-ready dict of the config (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def from_dict(cls: type[Config], values: Mapping[str, Any], *, source: str) -> Config:
    """Build a config from typed values (a checkpoint, a config file); unknown keys are errors."""
    return cls(**_checked(cls, values, source=source))


def resolve(
    cls: type[Config],
    *,
    config_file: Path | None = None,
    sets: Iterable[str] = (),
    flags: Mapping[str, Any] | None = None,
    base: Mapping[str, Any] | None = None,
    base_source: str = "the checkpoint",
) -> Config:
    """Apply the precedence: defaults < base < config file < ``--set`` < flags (None = not given)."""
    values: dict[str, Any] = {}
    if base:
        values.update(_checked(cls, base, source=base_source))
    if config_file is not None:
        values.update(_checked(cls, load_file(config_file), source=str(config_file)))
    hints = typing.get_type_hints(cls)
    for item in sets:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--set expects key=value, got {item!r}")
        _require_known(cls, key, source="--set")
        values[key] = parse_value(text.strip(), hints[key], key=key)
        _check_number(cls, key, values[key], f"--set {key}={_cut(text.strip())}")
    for key, value in (flags or {}).items():
        if value is not None:
            values.update(_checked(cls, {key: value}, source="the command line"))
    return cls(**values)


def load_file(path: Path) -> dict[str, Any]:
    """Read a TOML or JSON config file into a dict."""
    if not path.is_file():
        raise UsageError(f"config file {path} does not exist")
    if path.suffix not in (".toml", ".json"):
        raise UsageError(f"config file {path} must end in .toml or .json")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:
                import tomli as tomllib

            data = tomllib.loads(text)
        else:
            data = parse_json(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # TOML nested too deep: RecursionError
        raise UsageError(f"config file {path} could not be parsed: {str(exc)[:200] or type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must hold a table of key = value pairs")
    return data


def parse_value(text: str, annotation: Any, *, key: str) -> Any:
    """Turn the text of ``--set key=value`` into a value of the field's type."""
    try:
        return _parse(text, annotation)
    except ValueError:
        raise UsageError(
            f"--set {key}={text}: expected {_type_name(annotation)}"
        ) from None


def _parse(text: str, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        for choice in args:
            if str(choice) == text:
                return choice
        raise ValueError(text)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and text.lower() in _NONE_WORDS:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _parse(text, arg)
            except ValueError:
                continue
        raise ValueError(text)
    if origin is tuple:
        parts = [p.strip() for p in text.strip("()[] ").split(",") if p.strip()]
        item_types = args[:1] * len(parts) if len(args) == 2 and args[1] is Ellipsis else args
        if len(item_types) != len(parts):
            raise ValueError(text)
        return tuple(_parse(p, t) for p, t in zip(parts, item_types, strict=True))
    if annotation is bool:
        low = text.lower()
        if low in _TRUE_WORDS:
            return True
        if low in _FALSE_WORDS:
            return False
        raise ValueError(text)
    if annotation is int:
        return int(text)
    if annotation is float:
        return float(text)
    if annotation is str:
        return text
    raise ValueError(f"unsupported field type {annotation!r}")


def _checked(cls: type[Config], values: Mapping[str, Any], *, source: str) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    out = {}
    for key, value in values.items():
        _require_known(cls, key, source=source)
        if not _matches(value, hints[key]):
            if not isinstance(value, str):
                raise UsageError(f"{key} = {_shown(value)} in {source}: expected {_type_name(hints[key])}")
            try:
                value = _parse(value, hints[key])
            except ValueError:
                raise UsageError(
                    f"{key} = {_shown(value)} in {source}: expected {_type_name(hints[key])}"
                ) from None
        out[key] = _normalise(value, hints[key])
        _check_number(cls, key, out[key], f"{key} = {_shown(out[key])} in {source}")
    return out


def _check_number(cls: type[Config], key: str, value: Any, where: str) -> None:
    """Refuse a number no network can use: NaN, an infinity (unless the field allows it), an
    integer beyond :data:`INT_LIMIT`; in a tuple, each of its numbers."""
    field = next(f for f in dataclasses.fields(cls) if f.name == key)
    for number in value if isinstance(value, tuple) else (value,):
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            continue
        if isinstance(number, int) and abs(number) > INT_LIMIT:
            raise UsageError(f"{where}: expected an integer from {-INT_LIMIT:,} to {INT_LIMIT:,}")
        if isinstance(number, float) and (math.isnan(number) or math.isinf(number)
                                          and not field.metadata.get("infinite")):
            allowed = " (or inf)" if field.metadata.get("infinite") else ""
            raise UsageError(f"{where}: expected a finite number{allowed}")


def within(flag: str, value: float | None, low: float, high: float, *, above: bool = False) -> None:
    """Refuse ``value`` of an option (None passes) unless it is a finite number from ``low``
    (more than ``low`` with ``above``) to ``high``: one line naming the option, the numbers it
    takes and what it was given."""
    if value is None:
        return
    whole = isinstance(value, int)
    if not ((low < value) if above else (low <= value)) or not value <= high:  # NaN and infinities fail too
        if whole:
            takes = f"a whole number from {low:,} to {high:,}"
        else:
            takes = f"a number {'more than' if above else 'from'} {low:g} {'and at most' if above else 'to'} {high:g}"
        raise UsageError(f"{flag} must be {takes}, got {_shown(value)}")


def check_seed(seed: int | None, flag: str = "--seed") -> None:
    """Refuse a seed outside 0 .. :data:`SEED_MAX` (None passes)."""
    within(flag, seed, 0, SEED_MAX)


def parse_json(text: str) -> Any:
    """``json.loads`` for text zoo may not have written: nesting deeper than
    :data:`JSON_DEPTH` is a ValueError, as malformed JSON is (never a RecursionError)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"JSON nested more than {JSON_DEPTH} deep") from None
    level, depth = [value], 0
    while level:  # breadth first, level by level: no recursion
        depth += 1
        if depth > JSON_DEPTH:
            raise ValueError(f"JSON nested more than {JSON_DEPTH} deep")
        level = [child for node in level if isinstance(node, (dict, list))
                 for child in (node.values() if isinstance(node, dict) else node)]
    return value


def _cut(text: str, most: int = 60) -> str:
    return text if len(text) <= most else f"{text[:most - 3]}..."


def _shown(value: Any) -> str:
    """A value for a message, cut short when it is long."""
    if isinstance(value, int) and abs(value) >= 10**40:  # str() of one past 4,300 digits raises
        return f"an integer of {math.floor(value.bit_length() * math.log10(2)) + 1} digits"
    return _cut(repr(value))


def _require_known(cls: type[Config], key: str, *, source: str) -> None:
    names = [f.name for f in dataclasses.fields(cls)]
    if key in names:
        return
    close = difflib.get_close_matches(key, names, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise UsageError(f"unknown config key {key!r} in {source}{hint}; valid keys: {', '.join(names)}")


def _matches(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return value in args
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if annotation is type(None):
        return value is None
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False
        item_types = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        return len(item_types) == len(value) and all(_matches(v, t) for v, t in zip(value, item_types, strict=True))
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation in (bool, str):
        return isinstance(value, annotation)
    return False


def _normalise(value: Any, annotation: Any) -> Any:
    if annotation is float and isinstance(value, int):
        return float(value)
    if typing.get_origin(annotation) is tuple and isinstance(value, list):
        return tuple(value)
    return value


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return "one of " + "|".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if annotation is type(None):
        return "none"
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"comma-separated {_type_name(args[0])}s"
        return "comma-separated (" + ", ".join(_type_name(a) for a in args) + ")"
    return {int: "an integer", float: "a number", bool: "true or false", str: "text"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )
