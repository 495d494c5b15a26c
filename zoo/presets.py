"""Presets: a model's named recipes (``zoo train dcgan --preset lab``), each with what it cost
and what it scored when zoo's benchmarks measured it.

A plugin keeps its presets in ``presets/NAME.toml`` beside its module (for a package,
beside its ``__init__.py``), one table per preset::

    [lab]
    summary = "The Romanian lab's DCGAN on MNIST: 1,560 steps of the paper's networks"
    data = "mnist"                 # any zoo train option of OPTIONS, by its name
    steps = 1560
    [lab.config]                   # config keys, as --set gives them
    ema = 0.999
    [lab.measured]                 # what a benchmark measured, and where it wrote it
    result = "benchmarks/results/as-typed-demo-seed0.json"
    machine = "AMD EPYC, 2 cores, no GPU"
    [lab.measured.figures]         # name = [value, where in the result's JSON]
    train_seconds = [195.9, "figures.train.seconds"]

What the user gives wins: a flag over the preset's option (a length flag over the preset's
whole length), ``--set`` over its config keys. The run records each value's source.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import UsageError, ZooError

OPTIONS = ("data", "epochs", "steps", "kimg", "minutes", "batch_size", "seed", "size", "channels", "classes",
           "subset", "direction", "noise", "precision", "eval_every", "init_from")
"""The options of ``zoo train`` a preset may set (TrainOptions' names)."""
LENGTHS = ("epochs", "steps", "kimg", "minutes")
FOLDER = "presets"


@dataclass(frozen=True)
class Preset:
    """One named recipe: the options and config keys it sets and what it measured."""

    model: str
    name: str
    file: Path
    summary: str
    options: dict[str, Any]
    config: dict[str, Any]
    measured: dict[str, Any] = field(default_factory=dict)

    @property
    def command(self) -> str:
        """The one command that trains it."""
        return f"zoo train {self.model} --preset {self.name}" + ("" if "data" in self.options else " --data DATA")

    def figures(self) -> dict[str, float]:
        return {k: v[0] for k, v in (self.measured.get("figures") or {}).items()}


def file_of(cls: Any) -> Path:
    """Where a plugin's presets are: ``presets/NAME.toml`` beside its module."""
    return Path(inspect.getfile(cls)).parent / FOLDER / f"{cls.name}.toml"


def presets(cls: Any) -> dict[str, Preset]:
    """A plugin's presets by name (none when it has no presets file)."""
    path = file_of(cls)
    if not path.is_file():
        return {}
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ZooError(f"{cls.name}'s presets file {path} is unreadable: {str(exc)[:200]}") from None
    found = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ZooError(f"{path}: {name!r} is not a table of a preset's values")
        unknown = sorted(set(table) - {*OPTIONS, "summary", "config", "measured"})
        if unknown:
            raise ZooError(f"{path}: preset {name!r} sets {', '.join(unknown)}, which are not zoo train options "
                           f"({', '.join(OPTIONS)}); config keys go in [{name}.config]")
        _check_types(path, name, table)
        found[name] = Preset(cls.name, name, path, str(table.get("summary", "")),
                             {k: table[k] for k in OPTIONS if k in table}, dict(table.get("config") or {}),
                             dict(table.get("measured") or {}))
    return found


_KINDS: dict[str, tuple[type, ...]] = {
    "data": (str,), "epochs": (int,), "steps": (int,), "kimg": (int, float), "minutes": (int, float),
    "batch_size": (int,), "seed": (int,), "size": (int, str), "channels": (int,), "classes": (str,),
    "subset": (str,), "direction": (str,), "noise": (str,), "precision": (str,), "eval_every": (int,),
    "init_from": (str,), "summary": (str,), "config": (dict,), "measured": (dict,)}
"""The TOML type each value of a preset's table takes."""


def _check_types(path: Path, name: str, table: dict[str, Any]) -> None:
    for key, value in table.items():
        kinds = _KINDS[key]
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise ZooError(f"{path}: preset {name!r} sets {key} to {value!r}; it takes "
                           f"{' or '.join('a table' if k is dict else k.__name__ for k in kinds)}")
    for figure, given in ((table.get("measured") or {}).get("figures") or {}).items():
        if not (isinstance(given, list) and len(given) == 2 and isinstance(given[0], (int, float))
                and isinstance(given[1], str)):
            raise ZooError(f"{path}: preset {name!r}'s figure {figure} is {given!r}; write it as "
                           '[value, "where.in.result"]')


def get(cls: Any, name: str) -> Preset:
    """The preset ``name`` of a plugin; an unknown one is refused with the list."""
    known = presets(cls)
    if name not in known:
        listed = ", ".join(known) if known else "none"
        raise UsageError(f"--preset {name!r}: {cls.name} has no such preset (its presets: {listed}; "
                         f"zoo info {cls.name} shows them)")
    return known[name]


def apply(preset: Preset, given: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The preset's options under what the user gave (``given``: the options' values, None
    where not given): the options to use, and the source of each option the preset could set.
    A length the user gives replaces the preset's whole length."""
    user_length = any(given.get(k) is not None for k in LENGTHS)
    options, sources = {}, {}
    for key in OPTIONS:
        if given.get(key) is not None:
            options[key], sources[key] = given[key], "command line"
        elif key in preset.options and not (key in LENGTHS and user_length):
            options[key], sources[key] = preset.options[key], f"preset {preset.name}"
    return options, sources


def record(preset: Preset, sources: dict[str, str], sets: list[str]) -> dict[str, Any]:
    """What run.json keeps of the preset: its name and file, and where each value came from."""
    values = dict(sources)
    for key in preset.config:
        values[key] = f"preset {preset.name}"
    for item in sets:
        values[item.partition("=")[0].strip()] = "--set"
    return {"name": preset.name, "file": str(Path(*preset.file.parts[-3:])), "values": values}
