"""The pictures drawn while a model trains: what a model's preview hooks do unless it says
otherwise.

Every few steps the train loop draws the model's outputs for inputs fixed once per run
(:meth:`zoo.Model.preview_inputs`), so the grids, and the GIF made of them, show one
thing changing. The defaults here follow the capabilities: image-to-image models and
encoders show a row per fixed example (input | output | target, input | reconstruction),
class-conditional models a row per class, text-conditional ones a row per example's
caption with the same z down each column, other latent models plain samples. A plugin
overrides a hook to draw something else (the VAE adds samples beside its reconstructions)
and may call these for the part it keeps.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.spec import Batch, Capability, Condition, Conditions, DataSpec
from zoo.training.engine import evaluating, full_precision

PREVIEW_PER_CLASS = 8
"""Columns of a preview with a row per class or per caption."""
PREVIEW_CLASSES = 32
"""Class-conditional previews show a row for each of the first this many classes."""
PREVIEW_EXAMPLES = 8
"""Rows of a preview with a row per example."""


class Model(Protocol):
    """What the default previews use of a model (a :class:`zoo.Model` is one)."""

    spec: DataSpec

    @property
    def directions(self) -> tuple[str, ...]: ...

    @property
    def device(self) -> torch.device: ...

    def has(self, capability: Capability) -> bool: ...

    def needs(self) -> list[Condition]: ...

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor: ...

    def generate(self, z: Tensor, conditions: Conditions | None = None) -> Tensor: ...

    def translate(self, images: Tensor, direction: str = "AtoB") -> Tensor: ...

    def encode(self, images: Tensor, conditions: Conditions | None = None) -> Tensor: ...

    def modules(self) -> Iterator[nn.Module]: ...

    def eval(self) -> Any: ...


def default_inputs(model: Model, n: int, generator: torch.Generator, examples: Batch) -> dict[str, Any]:
    """Image-to-image models and encoders: the first examples (and their targets and
    conditions); class-conditional models: a row per class, ``PREVIEW_PER_CLASS`` wide;
    text-conditional ones: a row per example's caption, the same z down each column; other
    latent models: ``n`` latents (and the examples' conditions, when the model needs some)."""
    if model.has(Capability.IMAGE_TO_IMAGE) or model.has(Capability.ENCODER):
        inputs: dict[str, Any] = {"images": examples.images[:PREVIEW_EXAMPLES]}
        if examples.targets is not None:
            inputs["targets"] = examples.targets[:PREVIEW_EXAMPLES]
        if model.needs():  # a conditional encoder is told each example's own condition
            inputs["conditions"] = {c.value: examples.conditions[c.value][:PREVIEW_EXAMPLES] for c in model.needs()}
        return inputs
    if model.has(Capability.CLASS_CONDITIONAL):
        labels = class_rows(min(model.spec.num_classes, PREVIEW_CLASSES), PREVIEW_PER_CLASS)
        return {"z": model.sample_latent(len(labels), generator),
                "conditions": {Condition.CLASS.value: labels.to(model.device)}}
    if model.has(Capability.TEXT_CONDITIONAL):
        text = examples.conditions[Condition.TEXT.value][:PREVIEW_EXAMPLES]
        z = model.sample_latent(PREVIEW_PER_CLASS, generator).repeat(len(text), 1)
        return {"z": z, "conditions": {Condition.TEXT.value: text.repeat_interleave(PREVIEW_PER_CLASS, 0)},
                "captions": (examples.captions or [])[:len(text)]}
    conditions = {c.value: examples.conditions[c.value][:n] for c in model.needs()}
    count = min(n, *(len(v) for v in conditions.values())) if conditions else n
    return {"z": model.sample_latent(count, generator), "conditions": conditions}


@torch.no_grad()
def default_preview(model: Model, inputs: Mapping[str, Any]) -> Tensor:
    """The outputs for :func:`default_inputs`, in eval mode and full precision: a row per
    example (input | output | target, or input | reconstruction), rows of
    ``PREVIEW_PER_CLASS`` for conditional models, else the samples."""
    with evaluating(model), full_precision():
        if model.has(Capability.IMAGE_TO_IMAGE):
            output = model.translate(inputs["images"], model.directions[0] if model.directions else "AtoB")
            return image_rows(inputs["images"], output, *([inputs["targets"]] if "targets" in inputs else []))
        if model.has(Capability.ENCODER):
            given = inputs.get("conditions")
            return image_rows(inputs["images"], model.generate(model.encode(inputs["images"], given), given))
        images = model.generate(inputs["z"], inputs.get("conditions"))
    if model.has(Capability.CLASS_CONDITIONAL) or model.has(Capability.TEXT_CONDITIONAL):
        return images.view(-1, PREVIEW_PER_CLASS, *images.shape[1:])
    return images


def default_labels(model: Model, inputs: Mapping[str, Any]) -> tuple[list[str] | None, list[str] | None]:
    """The labels of :func:`default_preview`'s grid: input | output (| target), input |
    reconstruction, or a class name (a caption) for each row; plain samples have none."""
    if model.has(Capability.IMAGE_TO_IMAGE):
        return ["input", "output", *(["target"] if "targets" in inputs else [])], None
    if model.has(Capability.ENCODER):
        return ["input", "reconstruction"], None
    if model.has(Capability.CLASS_CONDITIONAL):
        labels = inputs["conditions"][Condition.CLASS.value][::PREVIEW_PER_CLASS]
        return None, [model.spec.class_names[int(c)] for c in labels]
    if model.has(Capability.TEXT_CONDITIONAL) and inputs.get("captions"):
        return None, list(inputs["captions"])
    return None, None


def default_samples(model: Model, inputs: Mapping[str, Any], preview: Tensor) -> Tensor | None:
    """The samples in :func:`default_preview`'s grid: all of it for a latent model, none for
    translations and reconstructions."""
    if not model.has(Capability.LATENT) or model.has(Capability.IMAGE_TO_IMAGE) or model.has(Capability.ENCODER):
        return None
    if model.has(Capability.TEXT_CONDITIONAL) and not model.has(Capability.CLASS_CONDITIONAL):
        return preview.flatten(0, 1)  # a row per caption, not per class: compared with the data as a whole
    return preview


def image_rows(*columns: Tensor) -> Tensor:
    """Images side by side, one example per row: N x len(columns) x C x H x W. Columns of
    different sizes are scaled to the largest (nearest neighbour, so pixels stay visible:
    a 32 px input beside its 128 px super-resolution), and every column is drawn in 3
    channels when their channels differ (gray inputs beside colour outputs)."""
    height = max(c.shape[2] for c in columns)
    width = max(c.shape[3] for c in columns)
    columns = tuple(c if c.shape[2:] == (height, width) else F.interpolate(c, size=(height, width), mode="nearest")
                    for c in columns)
    if len({c.shape[1] for c in columns}) > 1:
        columns = tuple(c.expand(-1, 3, -1, -1) if c.shape[1] == 1 else c for c in columns)
    return torch.stack(columns, dim=1)


def class_rows(num_classes: int, per_class: int) -> Tensor:
    """Labels 0,0,..,1,1,..: ``per_class`` of each class in turn (a grid with a row per class)."""
    return torch.arange(num_classes).repeat_interleave(per_class)
