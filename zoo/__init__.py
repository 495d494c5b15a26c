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
    "Capability": "zoo.spec",
    "Condition": "zoo.spec",
    "Conditions": "zoo.spec",
    "DataSpec": "zoo.spec",
    "Derivation": "zoo.data.superres",
    "Batch": "zoo.spec",
    "Batches": "zoo.spec",
    "Progress": "zoo.spec",
    "Metrics": "zoo.spec",
    "evaluating": "zoo.training.engine",
    "frozen": "zoo.tricks",
    "init_normal": "zoo.tricks",
    "class_rows": "zoo.previews",
    "class_condition": "zoo.spec",
    "optimised_parameters": "zoo.model",
    "Engine": "zoo.training.engine",
    "EngineOptions": "zoo.training.engine",
    "image_rows": "zoo.previews",
    "load": "zoo.api",
    "TrainedModel": "zoo.api",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from zoo.api import TrainedModel, load
    from zoo.config import Config, option
    from zoo.data.superres import Derivation
    from zoo.errors import UsageError, ZooError
    from zoo.losses import AdversarialConfig
    from zoo.model import Model, optimised_parameters
    from zoo.previews import class_rows, image_rows
    from zoo.spec import Batch, Batches, Capability, Condition, Conditions, DataSpec, Metrics, Progress, class_condition
    from zoo.training.engine import Engine, EngineOptions, evaluating
    from zoo.tricks import frozen, init_normal


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'zoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
