"""The plugin contract: what a model family tells zoo, and what zoo asks of it.

A plugin is a subclass of :class:`Model`, an ``nn.Module`` that holds all of a family's
networks (one generator and one discriminator, two of each for CycleGAN, an encoder...).
Its class attributes declare what it is and what it can do; the pipelines read those
before any work starts and never test a model's name.

The train pipeline owns the loop, the devices, checkpoints and logging. A model owns one
step: :meth:`Model.train_step` draws as many batches as it needs (a WGAN critic takes
five per generator update), updates whichever networks it has with its own optimisers,
and returns the numbers worth plotting. Progressive growing and learning-rate schedules
read :class:`Progress`.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Protocol

import torch
from torch import Tensor, nn

from . import priors
from .config import Config
from .errors import UsageError
from .priors import Prior


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

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class DataSpec:
    """The shape of the data a model is built for; saved in every checkpoint."""

    name: str
    channels: int
    height: int
    width: int
    class_names: tuple[str, ...] = ()
    pairing: str = ""
    """"paired" (each image has a target), "unpaired" (two domains), or "" (one set of images)."""
    target_channels: int = 0
    """Channels of the targets (domain B) of two-domain data."""
    domains: tuple[str, ...] = ()
    """Names of domains A and B of two-domain data."""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def labelled(self) -> bool:
        return bool(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["class_names"] = list(self.class_names)
        data["domains"] = list(self.domains)
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
        )


@dataclass
class Batch:
    """Images as float tensors in [-1, 1], N x C x H x W, on the training device. For
    two-domain data ``images`` are domain A and ``targets`` domain B: each image's own
    target for paired data, an independent draw for unpaired data."""

    images: Tensor
    labels: Tensor | None = None
    targets: Tensor | None = None


class Batches(Protocol):
    """An endless, shuffled supply of batches; ``next()`` gives the next one."""

    def next(self) -> Batch: ...


@dataclass(frozen=True)
class Progress:
    """Where training stands when a step begins."""

    step: int
    """Steps completed so far (0 for the first step)."""
    total_steps: int
    epoch: int
    time_fraction: float = 0.0
    """The share of a ``--minutes`` budget used so far (0 without one)."""

    @property
    def fraction(self) -> float:
        """How far through training, in [0, 1]: by steps, or by time when a ``--minutes``
        budget will end training first; for schedules and progressive growing."""
        return min(1.0, max(self.step / max(1, self.total_steps), self.time_fraction))


Metrics = Mapping[str, "Tensor | float"]


class Model(nn.Module):
    """Base class of every zoo model plugin.

    Subclasses set the class attributes, build their networks in ``__init__(config, spec)``
    and implement :meth:`configure_optimizers` and :meth:`train_step`. Models with the
    ``latent`` capability implement :meth:`generate` and get sampling and previews free.
    """

    name: ClassVar[str]
    """The registry name, as typed on the command line."""
    summary: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    family: ClassVar[str] = "GAN"
    version: ClassVar[str] = "1"
    """Bump when a change makes older checkpoints of this plugin unloadable."""
    Config: ClassVar[type[Config]] = Config
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    tiny_config: ClassVar[dict[str, Any]] = {}
    """Config overrides for the smallest working model: the conformance tests train it."""
    data_pairing: ClassVar[tuple[str, ...]] = ()
    """Two-domain data an image-to-image model trains on: "paired", "unpaired" or both."""
    directions: ClassVar[tuple[str, ...]] = ()
    """The ways an image-to-image model translates: ("AtoB",), or ("AtoB", "BtoA")."""
    small_data: ClassVar[dict[str, Any]] = {}
    """Config values for training sets of fewer than :data:`SMALL_DATA` images, used where the
    user set nothing else (the train pipeline says so): e.g. DCGAN's augmentation."""

    def __init__(self, config: Config, spec: DataSpec) -> None:
        super().__init__()
        self.config = config
        self.spec = spec
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    # -- declared before any work starts -----------------------------------------------

    @classmethod
    def check_data(cls, config: Config, spec: DataSpec) -> None:
        """Raise :class:`zoo.UsageError` if this model cannot be built for data of this shape."""

    @classmethod
    def has(cls, capability: Capability) -> bool:
        return capability in cls.capabilities

    # -- training -------------------------------------------------------------------------

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Create the optimisers, by name. Called once, after the model is on its device."""
        raise NotImplementedError

    def batches_per_step(self) -> int:
        """How many batches one :meth:`train_step` draws; sets how many steps make an epoch."""
        return 1

    def train_step(self, batches: Batches, progress: Progress) -> Metrics:
        """One update of the model. Returns scalar metrics (losses, D(x), ...) by name."""
        raise NotImplementedError

    # -- generation --------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def latent_dim(self) -> int:
        """Length of the latent vector, for models with the ``latent`` capability."""
        return int(getattr(self.config, "latent_dim"))

    @property
    def prior(self) -> Prior:
        """The noise prior z is drawn from: the config's ``noise`` key, else N(0, 1)."""
        return priors.parse(getattr(self.config, "noise", "normal"))

    def sample_latent(self, n: int, generator: torch.Generator | None = None, *,
                      prior: Prior | None = None, truncation: float | None = None) -> Tensor:
        """Draw ``n`` latent vectors from the prior (or another one, for experiments). A CPU
        ``generator`` makes them reproducible on every device; without one they come from
        the device's global random stream."""
        return (prior or self.prior).sample(n, self.latent_dim, generator=generator,
                                            device=self.device, truncation=truncation)

    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Images in [-1, 1] for latent vectors ``z``. Class-conditional models also take
        ``labels``: N class indices, or an N x K float tensor of class weights (a blend,
        used to interpolate from one class to another)."""
        raise NotImplementedError(f"{self.name} does not generate from a latent vector")

    def translate(self, images: Tensor, direction: str = "AtoB") -> Tensor:
        """Images in [-1, 1] translated from one domain to the other, for models with the
        ``image-to-image`` capability; ``direction`` is one of :attr:`directions`."""
        raise NotImplementedError(f"{self.name} does not translate images")

    def encode(self, images: Tensor) -> Tensor:
        """Latent vectors for images in [-1, 1], for models with the ``encoder`` capability
        (inversion starts from this guess)."""
        raise NotImplementedError(f"{self.name} has no encoder")

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None,
               labels: Tensor | None = None, prior: Prior | None = None,
               truncation: float | None = None) -> Tensor:
        """``n`` new images in [-1, 1], N x C x H x W, with the networks in eval mode.
        Class-conditional models need ``labels`` (N class indices)."""
        if not self.has(Capability.LATENT):
            raise UsageError(f"{self.name} does not sample from noise")
        if self.has(Capability.CLASS_CONDITIONAL):
            if labels is None or len(labels) != n:
                raise UsageError(f"{self.name} is class-conditional: give a class for each of the {n} images")
            labels = labels.to(self.device)
        with evaluating(self):
            return self.generate(self.sample_latent(n, generator, prior=prior, truncation=truncation), labels)

    # -- the pictures shown during training --------------------------------------------------

    def preview_inputs(self, n: int, generator: torch.Generator, examples: Batch | None = None) -> dict[str, Tensor]:
        """Fixed inputs, made once per run, whose outputs are drawn after every epoch.

        Class-conditional models get one row per class, ``PREVIEW_PER_CLASS`` wide;
        image-to-image models get ``examples``, a fixed batch of the training data."""
        if self.has(Capability.IMAGE_TO_IMAGE):
            if examples is None:
                raise ValueError(f"{self.name} previews need example images")
            inputs = {"images": examples.images[:PREVIEW_EXAMPLES]}
            if examples.targets is not None:
                inputs["targets"] = examples.targets[:PREVIEW_EXAMPLES]
            return inputs
        if self.has(Capability.CLASS_CONDITIONAL):
            labels = class_rows(self.spec.num_classes, PREVIEW_PER_CLASS)
            return {"z": self.sample_latent(len(labels), generator), "labels": labels.to(self.device)}
        return {"z": self.sample_latent(n, generator)}

    @torch.no_grad()
    def preview(self, inputs: Mapping[str, Tensor]) -> Tensor:
        """Images in [-1, 1] for the fixed preview inputs (one grid per epoch, then a GIF):
        N x C x H x W, or rows x columns x C x H x W to fix the grid's layout. Image-to-image
        models show a row per example: input | output | target."""
        if self.has(Capability.IMAGE_TO_IMAGE):
            with evaluating(self):
                output = self.translate(inputs["images"], self.directions[0] if self.directions else "AtoB")
            return image_rows(inputs["images"], output, *([inputs["targets"]] if "targets" in inputs else []))
        with evaluating(self):
            images = self.generate(**inputs)
        if self.has(Capability.CLASS_CONDITIONAL):
            return images.view(self.spec.num_classes, -1, *images.shape[1:])
        return images

    # -- state a checkpoint needs beyond the weights -----------------------------------------

    def extra_state(self) -> dict[str, Any]:
        """Tensors, numbers and strings (nested in dicts and lists) to checkpoint."""
        return {}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""


SMALL_DATA = 2000
"""Fewer training images than this is a small data set (:attr:`Model.small_data`)."""
PREVIEW_PER_CLASS = 8
PREVIEW_EXAMPLES = 8


def image_rows(*columns: Tensor) -> Tensor:
    """Images side by side, one example per row: N x len(columns) x C x H x W, every column
    in 3 channels when their channels differ (gray inputs beside colour outputs)."""
    if len({c.shape[1] for c in columns}) > 1:
        columns = tuple(c.expand(-1, 3, -1, -1) if c.shape[1] == 1 else c for c in columns)
    return torch.stack(columns, dim=1)


def class_rows(num_classes: int, per_class: int) -> Tensor:
    """Labels 0,0,..,1,1,..: ``per_class`` of each class in turn (a grid with a row per class)."""
    return torch.arange(num_classes).repeat_interleave(per_class)


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No weight gradients for a module within a block (a GAN's generator step needs none
    for the discriminator's weights: a third of its backward pass saved)."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


@contextlib.contextmanager
def evaluating(module: nn.Module) -> Iterator[None]:
    """Put a module in eval mode for a block, then restore each submodule's own mode."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def init_normal(module: nn.Module, std: float = 0.02) -> None:
    """DCGAN's initialisation: conv and linear weights N(0, std), norm scales N(1, std)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)) and m.affine:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)

