"""Finding model plugins: the built-ins and those of installed packages, one way for both.

A third-party package adds itself to the entry-point group ``zoo.plugins``::

    [project.entry-points."zoo.plugins"]
    tiny = "zoo_tiny:TinyGAN"

The built-in models are the list below, turned into the same entry points. Names are read
without importing anything; a plugin's module is imported the first time it is needed,
once. A plugin that fails to import (raises, or even calls ``sys.exit``), or is not a valid
:class:`zoo.Model`, is reported as broken (``zoo list`` shows why) without stopping the
commands that do not use it. Listing imports every plugin at once, each in its own thread,
and waits :data:`IMPORT_SECONDS` for the installed packages' plugins (each imported in a
thread of its own): one that hangs is listed as still importing, and only a command that
uses it waits for it.
"""

from __future__ import annotations

import difflib
import functools
import importlib.metadata as md
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from zoo.errors import UsageError, ZooError

if TYPE_CHECKING:
    from zoo.model import Model
    from zoo.spec import Capability

GROUP = "zoo.plugins"

# Adding a built-in model: write plugins/NAME.py and add one line here.
BUILTINS = [
    "dcgan = zoo.plugins.dcgan:DCGAN",
    "cgan = zoo.plugins.cgan:CGAN",
    "wgan = zoo.plugins.wgan:WGAN",
    "wgan-gp = zoo.plugins.wgan:WGANGP",
    "r3gan = zoo.plugins.r3gan:R3GAN",
    "pix2pix = zoo.plugins.pix2pix:Pix2Pix",
    "cyclegan = zoo.plugins.cyclegan:CycleGAN",
    "ae = zoo.plugins.autoencoder:Autoencoder",
    "vae = zoo.plugins.vae:VAE",
    "cvae = zoo.plugins.vae:CVAE",
    "progan = zoo.plugins.progan:ProGAN",
    "srresnet = zoo.plugins.srgan:SRResNet",
    "srgan = zoo.plugins.srgan:SRGAN",
    "stackgan = zoo.plugins.stackgan:StackGAN",
]

BUILTIN_PACKAGE = "zoo-gan (built-in)"

def _import_seconds() -> float:
    try:
        return float(os.environ.get("ZOO_PLUGIN_IMPORT_SECONDS", 20))
    except ValueError:
        return 20.0


IMPORT_SECONDS = _import_seconds()
"""How long listing the plugins waits for their imports, all together (``ZOO_PLUGIN_IMPORT_SECONDS``)."""


@dataclass
class PluginEntry:
    """One registered plugin: where it comes from, and once loaded, its class or its error."""

    name: str
    target: str
    package: str
    entry_point: md.EntryPoint = field(repr=False)
    model: type[Model] | None = None
    error: str | None = None
    _loaded: bool = field(default=False, repr=False)

    @property
    def builtin(self) -> bool:
        return self.package == BUILTIN_PACKAGE

    _importing: threading.Thread | None = field(default=None, repr=False)

    def load(self) -> None:
        """Import the plugin (waiting for an import :meth:`start` began)."""
        if self._importing is not None:
            self._importing.join()
        if not self._loaded:
            self._import()

    def start(self) -> None:
        """Begin importing the plugin in a thread of its own (see :meth:`wait`)."""
        if not self._loaded and self._importing is None:
            self._importing = threading.Thread(target=self._import, name=f"zoo-plugin-{self.name}", daemon=True)
            self._importing.start()

    def wait(self, deadline: float) -> None:
        """Wait for :meth:`start`'s import until ``deadline`` (``time.monotonic()``); one
        still importing then is reported as such, and left to finish in its thread."""
        if self._importing is not None:
            self._importing.join(max(0.0, deadline - time.monotonic()))
            if self._importing.is_alive():
                self.error = (f"still importing after {IMPORT_SECONDS:g} s (a slow or stuck import); "
                              f"commands that use {self.name} wait for it")

    def _import(self) -> None:
        try:
            obj = self.entry_point.load()
        except (Exception, SystemExit) as exc:  # any import failure of foreign code marks it broken
            self.error = f"{type(exc).__name__}: {exc}"
            self._loaded = True
            return
        self.error = _contract_problem(obj, self.name)
        if self.error is None:
            self.model = obj
        self._loaded = True


class Registry:
    """The plugins visible to this process, keyed by name."""

    def __init__(self, entry_points: Iterable[md.EntryPoint]) -> None:
        self._entries: dict[str, list[PluginEntry]] = defaultdict(list)
        for ep in entry_points:
            dist = getattr(ep, "dist", None)
            package = f"{dist.name} {dist.version}" if dist is not None else BUILTIN_PACKAGE
            self._entries[ep.name].append(PluginEntry(ep.name, ep.value, package, ep))

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[PluginEntry]:
        """Every registered plugin, loaded (for ``zoo list``), conflicting names included."""
        out = [entry for name in self.names() for entry in self._entries[name]]
        foreign = [entry for entry in out if not entry.builtin]
        for entry in foreign:  # ours import here, one after another; theirs each in a thread
            entry.start()
        for entry in out:
            if entry.builtin:
                entry.load()
        deadline = time.monotonic() + IMPORT_SECONDS
        for entry in foreign:
            entry.wait(deadline)
        return out

    def conflict(self, name: str) -> str | None:
        """The error for a name that two packages register, or None."""
        entries = self._entries.get(name, [])
        if len(entries) < 2:
            return None
        packages = " and ".join(e.package for e in entries)
        return (f"two plugins are named {name!r}: {packages}; uninstall one of the packages "
                "or ask its author to rename the plugin")

    def get(self, name: str) -> type[Model]:
        """The model class registered as ``name``, or a clear error."""
        if name not in self._entries:
            raise UsageError(self.unknown_message(name))
        problem = self.conflict(name)
        if problem:
            raise ZooError(problem)
        entry = self._entries[name][0]
        entry.load()
        if entry.model is None:
            raise ZooError(f"plugin {name!r} from {entry.package} is broken: {entry.error}")
        return entry.model

    def with_capability(self, capability: Capability) -> list[str]:
        """Names of the working plugins that have a capability (for refusal messages)."""
        return [e.name for e in self.entries()
                if e.model is not None and self.conflict(e.name) is None
                and capability in e.model.capabilities]

    def trained_on(self, pairing: str) -> list[str]:
        """Names of the working plugins that train on ``paired`` or ``unpaired`` data."""
        return [e.name for e in self.entries()
                if e.model is not None and self.conflict(e.name) is None
                and pairing in e.model.data_pairing]

    def require(self, model: type[Model], capability: Capability, action: str, hint: str = "") -> None:
        """Refuse, naming the models that can, when ``model`` lacks ``capability``; ``hint``
        (a sentence) says what the model does instead."""
        if capability in model.capabilities:
            return
        able = [n for n in self.with_capability(capability) if n != model.name]
        alternatives = f"; models that can: {', '.join(able)}" if able else ""
        raise UsageError(f"{model.name} cannot {action}: it lacks the {capability.value!r} "
                         f"capability{alternatives}{'. ' + hint if hint else ''}")

    def is_name(self, name: str) -> bool:
        return name in self._entries

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        return f"unknown model {name!r}{hint} (known: {', '.join(self.names())}; see `zoo list`)"


def _contract_problem(obj: object, name: str) -> str | None:
    from zoo.config import Config
    from zoo.model import Model
    from zoo.spec import Capability

    if not (isinstance(obj, type) and issubclass(obj, Model)):
        return f"{obj!r} is not a subclass of zoo.Model"
    if getattr(obj, "name", None) != name:
        return f"its class says name={getattr(obj, 'name', None)!r} but it is registered as {name!r}"
    if not (isinstance(obj.Config, type) and issubclass(obj.Config, Config)):
        return "its Config is not a subclass of zoo.Config"
    unknown = [c for c in obj.capabilities if not isinstance(c, Capability)]
    if unknown:
        return f"unknown capabilities {unknown}; use zoo.Capability members"
    return None


def builtin_entry_points() -> list[md.EntryPoint]:
    entries = []
    for line in BUILTINS:
        name, _, value = (part.strip() for part in line.partition("="))
        entries.append(md.EntryPoint(name=name, value=value, group=GROUP))
    return entries


def installed_entry_points() -> list[md.EntryPoint]:
    return list(md.entry_points(group=GROUP))


# Tests swap this for a function that returns entry points of their own making.
entry_point_source: Callable[[], list[md.EntryPoint]] = installed_entry_points


@functools.cache
def registry() -> Registry:
    """The process-wide registry, built on first use."""
    return Registry(builtin_entry_points() + entry_point_source())


def get(name: str) -> type[Model]:
    return registry().get(name)
