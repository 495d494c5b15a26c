"""zoo: a plugin-based zoo of GANs and their relatives.

The public API for plugin authors is what this module exports. Importing ``zoo`` is
instant: torch and the rest load the first time one of these names is used.

    import zoo

    @dataclass
    class TinyConfig(zoo.Config):
        latent_dim: int = zoo.option(16, "length of z")

    class Tiny(zoo.Model):
        name = "tiny"
        Config = TinyConfig
        capabilities = frozenset({zoo.Capability.LATENT})
        ...

See docs/plugins.md for the whole contract.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Config": "zoo.config",
    "AdversarialConfig": "zoo.losses",
    "option": "zoo.config",
    "ZooError": "zoo.errors",
    "UsageError": "zoo.errors",
    "Model": "zoo.model",
    "Capability": "zoo.model",
    "Condition": "zoo.model",
    "Conditions": "zoo.model",
    "DataSpec": "zoo.model",
    "Derivation": "zoo.model",
    "Batch": "zoo.model",
    "Batches": "zoo.model",
    "Progress": "zoo.model",
    "Metrics": "zoo.model",
    "evaluating": "zoo.model",
    "frozen": "zoo.model",
    "init_normal": "zoo.model",
    "class_rows": "zoo.model",
    "class_condition": "zoo.model",
    "optimised_parameters": "zoo.model",
    "Engine": "zoo.engine",
    "EngineOptions": "zoo.engine",
    "image_rows": "zoo.model",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .config import Config, option
    from .engine import Engine, EngineOptions
    from .errors import UsageError, ZooError
    from .losses import AdversarialConfig
    from .model import (
        Batch,
        Batches,
        Capability,
        Condition,
        Conditions,
        DataSpec,
        Derivation,
        Metrics,
        Model,
        Progress,
        class_condition,
        class_rows,
        evaluating,
        frozen,
        image_rows,
        init_normal,
        optimised_parameters,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'zoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
