"""The types a model and the pipelines share: what a model can do and is given, the shape
of its data, its batches and how far training has gone.

What a model is given besides noise is a *condition*: a class or a text
(:class:`Condition`); an image to start from is an image-to-image model's input. Batches
carry whatever conditions the data has; the pipelines pass what the user gave
(``--class``, ``--text``, an input image) to any model that declares the matching
capability (:class:`Capability`), without knowing the model.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from torch import Tensor


class Capability(str, enum.Enum):
    """What a model can do, declared as data and checked by the pipelines."""

    LATENT = "latent"
    """Generates from a latent vector drawn from a noise prior (sample, interpolate, invert)."""
    CLASS_CONDITIONAL = "class-conditional"
    """Generates an image of a requested class; trains on labelled data."""
    TEXT_CONDITIONAL = "text-conditional"
    """Generates from a text description."""
    IMAGE_TO_IMAGE = "image-to-image"
    """Translates an input image into an output image (pix2pix, CycleGAN, SRGAN)."""
    ENCODER = "encoder"
    """Maps an image to a latent vector (autoencoders, VAEs)."""
    LIKELIHOOD = "likelihood"
    """Estimates the log-likelihood of an image (VAEs: an importance-weighted bound), which
    ``zoo eval`` reports as a held-out negative log-likelihood."""

    def __str__(self) -> str:
        return self.value


class Condition(str, enum.Enum):
    """The kinds of condition a batch may carry and a generator may be given besides noise.

    ``class``: int64 class indices (N), or an N x K float blend of classes (interpolation).
    ``text``: N x D float sentence embeddings (``spec.text_dim``) made by the data's frozen
    text encoder (:mod:`zoo.data.text`): batches carry one of each image's captions, embedded at
    prep; a user's prompts (``zoo sample --text``) may be given as a list of N strings, which
    :meth:`Model.check_conditions` encodes. A model never reads words itself.

    An image to start from is not a condition but an image-to-image model's input: its
    batches carry it in ``images`` (domain A, or the low-resolution half of derived pairs)
    and :meth:`Model.translate` receives it.
    """

    CLASS = "class"
    TEXT = "text"

    def __str__(self) -> str:
        return self.value


Conditions = Mapping[str, Any]
"""Conditions by :class:`Condition` value: ``{"class": labels}``, ``{"text": ["a red bird"]}``."""


NEEDS: dict[Capability, Condition] = {Capability.CLASS_CONDITIONAL: Condition.CLASS,
                                      Capability.TEXT_CONDITIONAL: Condition.TEXT}
"""The condition each conditional capability needs from the data and from the user."""


@dataclass(frozen=True)
class DataSpec:
    """The shape of the data a model is built for; saved in every checkpoint.

    ``channels``, ``height`` and ``width`` are the model's input images (domain A of two-domain
    data); ``target_*`` its output images where those differ (domain B, or the high-resolution
    images of derived pairs): 0 means the same as the input."""

    name: str
    channels: int
    height: int
    width: int
    class_names: tuple[str, ...] = ()
    pairing: str = ""
    """"paired" (each image has a target), "unpaired" (two domains), "derived" (pairs made
    on the fly from one set of images, see :class:`Derivation`), or "" (one set of images)."""
    target_channels: int = 0
    """Channels of the targets (domain B) of two-domain data."""
    domains: tuple[str, ...] = ()
    """Names of domains A and B of two-domain data."""
    target_height: int = 0
    target_width: int = 0
    conditions: tuple[str, ...] = ()
    """Conditions the data carries besides a class (e.g. "text" for captioned images)."""
    text_dim: int = 0
    """Length of the sentence embeddings of captioned data (the ``text`` condition), else 0."""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def labelled(self) -> bool:
        return bool(self.class_names)

    @property
    def target_shape(self) -> tuple[int, int, int]:
        """Channels, height and width of the output images."""
        return (self.target_channels or self.channels, self.target_height or self.height,
                self.target_width or self.width)

    def has(self, condition: Condition) -> bool:
        """Whether the data carries this condition for every image."""
        return self.labelled if condition is Condition.CLASS else condition.value in self.conditions

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("class_names", "domains", "conditions"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataSpec:
        return cls(
            name=str(data["name"]),
            channels=int(data["channels"]),
            height=int(data["height"]),
            width=int(data["width"]),
            class_names=tuple(data.get("class_names", ())),
            pairing=str(data.get("pairing", "")),
            target_channels=int(data.get("target_channels", 0)),
            domains=tuple(data.get("domains", ())),
            target_height=int(data.get("target_height", 0)),
            target_width=int(data.get("target_width", 0)),
            conditions=tuple(data.get("conditions", ())),
            text_dim=int(data.get("text_dim", 0)),
        )


@dataclass
class Batch:
    """Images as float tensors in [-1, 1], N x C x H x W, on the training device, and their
    conditions. For two-domain data ``images`` are domain A and ``targets`` domain B: each
    image's own target for paired and derived data, an independent draw for unpaired data."""

    images: Tensor
    targets: Tensor | None = None
    conditions: dict[str, Any] = field(default_factory=dict)
    captions: list[str] | None = None
    """The words of each image's ``text`` condition, where known (the fixed batch of examples
    the previews show: their rows are labelled with it)."""

    @property
    def labels(self) -> Tensor | None:
        """The class condition, or None for unlabelled data."""
        return self.conditions.get(Condition.CLASS.value)

    def __len__(self) -> int:
        return int(self.images.shape[0])


class Batches(Protocol):
    """An endless, shuffled supply of batches."""

    batch_size: int
    """The configured batch size: what ``next()`` gives when asked for no size."""

    def next(self, size: int | None = None) -> Batch:
        """The next batch, of ``size`` images if given (ProGAN's smaller batches at higher
        resolution), else of ``batch_size``."""
        ...


@dataclass(frozen=True)
class Progress:
    """Where training stands when a step begins."""

    step: int
    """Steps completed so far (0 for the first step)."""
    total_steps: int
    """The length of training in steps; 0 when it is given in images (``--kimg``) or in time alone."""
    epoch: int
    time_fraction: float = 0.0
    """The share of a ``--minutes`` budget used so far (0 without one)."""
    images: int = 0
    """Training images seen so far (ProGAN schedules its stages in thousands of them)."""
    total_images: int = 0
    """The length of training in images, when it was given that way (``--kimg``, or a model's
    :meth:`Model.default_kimg` for a run given no length); else 0."""

    @property
    def kimg(self) -> float:
        return self.images / 1000

    @property
    def fraction(self) -> float:
        """How far through training, in [0, 1]: by steps (or images, with ``--kimg``), or by
        time when a ``--minutes`` budget will end training first; for schedules."""
        if self.total_images:
            done = self.images / self.total_images
        elif self.total_steps:
            done = self.step / self.total_steps
        else:  # a length in time alone (--minutes): the clock says how far
            done = 0.0
        return min(1.0, max(done, self.time_fraction))


Metrics = Mapping[str, "Tensor | float"]


def class_condition(labels: Tensor | None) -> dict[str, Any]:
    """``{"class": labels}``, or no conditions for None: what pipelines hand to ``generate``."""
    return {} if labels is None else {Condition.CLASS.value: labels}
