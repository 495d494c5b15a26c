"""Choosing classes on the command line: --class NAME|INDEX and its alias --digit."""

from __future__ import annotations

from zoo import registry
from zoo.errors import UsageError
from zoo.model import Model
from zoo.spec import Capability, DataSpec

DIGITS = tuple(str(d) for d in range(10))


def chosen_class(model: Model, class_: str | None, digit: str | None) -> str | None:
    """The class asked for with --class or --digit, checked against the model."""
    if class_ is not None and digit is not None:
        raise UsageError("give --class or --digit, not both")
    wanted = class_ if class_ is not None else digit
    if wanted is not None and not model.has(Capability.CLASS_CONDITIONAL):
        able = ", ".join(registry.registry().with_capability(Capability.CLASS_CONDITIONAL)) or "none installed"
        raise UsageError(f"{model.name} is not class-conditional, so it cannot make only "
                         f"{'digit ' if digit else 'class '}{wanted} (class-conditional models: {able}); "
                         f"or train it on that class alone: zoo train {model.name} --data DATA --classes {wanted}")
    if digit is not None and model.spec.class_names != DIGITS:
        raise UsageError(f"--digit is for digit data sets; this model's classes are "
                         f"{', '.join(model.spec.class_names)}: use --class")
    if wanted is not None:
        class_index(model.spec, wanted)
    return wanted


def class_index(spec: DataSpec, wanted: str) -> int:
    """The index of a class given by name or index, or an error listing the valid ones."""
    names = list(spec.class_names)
    lower = [name.lower() for name in names]
    if wanted.lower() in lower:
        return lower.index(wanted.lower())
    if wanted.isdigit() and int(wanted) < len(names):
        return int(wanted)
    listing = ", ".join(name if name == str(i) else f"{i} {name}" for i, name in enumerate(names))
    raise UsageError(f"no class {wanted!r} in this model's data; its classes are: {listing}")
