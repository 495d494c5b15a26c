"""The runs a server shows, and the only way a browser's choice becomes a path.

A browser names a run by the name ``zoo runs`` shows (the folder's name); the server looks
it up in a fresh listing of the folder it serves and accepts nothing else: no path a
browser sends (``../``, an absolute path, a link that leads out of the folder) ever
reaches a file. Which tabs a run appears on follows from its model's capabilities, read
from the registry, never from the model's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo import registry
from zoo.errors import UsageError, ZooError
from zoo.records import checkpoint as ckpt_io
from zoo.records.run_info import RunSummary, find_runs, read_run
from zoo.records.runs import BEST_FILE, read_run_info
from zoo.spec import Capability


class RunGone(ZooError):
    """A run the page showed that is no longer there (deleted, or never finished a first save)."""


@dataclass(frozen=True)
class Choice:
    """A run as the page offers it: its name, what it does, and its summary."""

    name: str
    summary: RunSummary
    abilities: frozenset[str]

    @property
    def label(self) -> str:
        s = self.summary
        step = f"step {s.step:,}" if s.step is not None else "no step yet"
        return f"{self.name}  ({s.model or '?'} on {s.data or '?'}, {step}, {s.status})"


TABS = ("sample", "explore", "invert", "translate", "upscale", "reconstruct")
"""What a run can be used for on the page; :func:`abilities` says which of them a model has."""


def abilities(model: str | None, config: dict[str, Any] | None = None) -> frozenset[str]:
    """The page's tabs a model of this name can use, from its declared capabilities."""
    from zoo.data import superres

    reg = registry.registry()
    if not model or not reg.is_name(model):
        return frozenset()
    cls = reg.get(model)
    can: set[str] = set()
    if cls.has(Capability.LATENT):
        can |= {"sample", "explore"}
        if not cls.has(Capability.TEXT_CONDITIONAL):
            can.add("invert")
    if cls.has(Capability.ENCODER):
        can.add("reconstruct")
    if cls.has(Capability.IMAGE_TO_IMAGE):
        derivation = None
        if "derived" in cls.data_pairing:
            from zoo import config as config_io

            try:
                derivation = superres.derivation_of(cls, config_io.from_dict(cls.Config, config or {}, source=model))
            except ZooError:
                derivation = None
        can.add("upscale" if derivation is not None and derivation.factor > 1 else "translate")
    return frozenset(can)


class Catalog:
    """The runs under one folder (or one run folder alone), listed afresh when asked."""

    def __init__(self, root: Path) -> None:
        root = root.expanduser()
        if not root.is_dir():
            raise UsageError(f"{root} is not a folder; zoo serve takes a runs folder or a run folder")
        self.single = (root / ckpt_io.FILENAME).is_file() or (root / "run.json").is_file()
        self.root = root.resolve()

    def choices(self, tab: str | None = None) -> list[Choice]:
        """The runs with a checkpoint, newest last, that can be used on ``tab`` (all when None)."""
        found = [read_run(self.root)] if self.single else find_runs(self.root, None)
        made = []
        for summary in found:
            if summary is None or not (summary.path / ckpt_io.FILENAME).is_file():
                continue
            config = _config(summary.path)
            choice = Choice(summary.path.name, summary, abilities(summary.model, config))
            if tab is None or tab in choice.abilities:
                made.append(choice)
        return made

    def runs(self) -> list[RunSummary]:
        """Every run in the folder as ``zoo runs`` lists it, with a checkpoint or not yet."""
        if self.single:
            summary = read_run(self.root)
            return [summary] if summary is not None else []
        return find_runs(self.root, None)

    def resolve(self, name: Any, tab: str | None = None, any_run: bool = False) -> Path:
        """The folder of the run named ``name`` in a fresh listing (and usable on ``tab``; with
        ``any_run``, of every run, one without a checkpoint yet included). Anything else, a
        path of any form included, is refused."""
        if not isinstance(name, str) or not name:
            raise UsageError("choose a run from the list")
        listed = self.runs() if any_run else [choice.summary for choice in self.choices(tab)]
        for summary in listed:
            if summary.path.name == name:
                if not summary.path.resolve().is_relative_to(self.root):  # a link out of the served folder
                    break
                return summary.path
        raise RunGone(f"no run {name[:80]!r} here{f' that can {tab}' if tab else ''}; choose one from the list "
                      "(it may have been deleted; the list is read again)")

    def checkpoint(self, name: Any, which: str, tab: str | None = None) -> Path:
        """The checkpoint file (latest or best) of a run chosen on the page."""
        if which not in ("latest", "best"):
            raise UsageError("the checkpoint is latest or best")
        run = self.resolve(name, tab)
        path = run / (BEST_FILE if which == "best" else ckpt_io.FILENAME)
        if path.is_file() and not path.resolve().is_relative_to(self.root):
            raise RunGone(f"{name}'s {path.name} is a link out of the served folder; zoo serve reads no file there")
        if not path.is_file():
            raise RunGone(f"{name} has no {path.name}" + (": a run keeps one when it trains with --eval-every"
                                                          if which == "best" else ""))
        return path


def _config(run: Path) -> dict[str, Any] | None:
    config = read_run_info(run).get("config")
    return config if isinstance(config, dict) else None


def names(choices: Sequence[Choice]) -> list[tuple[str, str]]:
    """Dropdown choices: (label, name) pairs."""
    return [(choice.label, choice.name) for choice in choices]
