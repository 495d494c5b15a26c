"""The plugin contract: what a model family tells zoo, and what zoo asks of it.

A plugin is a subclass of :class:`Model`, an ``nn.Module`` that holds all of a family's
networks (one generator and one discriminator, two of each for CycleGAN, an encoder...).
Its class attributes declare what it is and what it can do; the pipelines read those
before any work starts and never test a model's name.

The train pipeline owns the loop, the devices, checkpoints and logging. A model owns one
step: :meth:`Model.train_step` draws as many batches as it needs (a WGAN critic takes
five per generator update, ProGAN asks for smaller ones at higher resolution), updates
whichever networks it has through :meth:`Model.update` (the seam where the loop adds mixed
precision, clipping and gradient averaging: :mod:`zoo.engine`), and returns the numbers
worth plotting as tensors, which the loop reads every few steps. Progressive growing and
learning-rate schedules read :class:`Progress`, in steps and in images seen.

What a model is given besides noise is a *condition*: a class or a text
(:class:`Condition`); an image to start from is an image-to-image model's input. Batches
carry whatever conditions the data has; the pipelines pass what the user gave
(``--class``, ``--text``, an input image) to any model that declares the matching
capability, without knowing the model.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import config as config_io
from . import priors
from .config import Config
from .devices import to_device
from .engine import Engine, full_precision
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
    LIKELIHOOD = "likelihood"
    """Estimates the log-likelihood of an image (VAEs: an importance-weighted bound), which
    ``zoo eval`` reports as a held-out negative log-likelihood."""

    def __str__(self) -> str:
        return self.value


class Condition(str, enum.Enum):
    """The kinds of condition a batch may carry and a generator may be given besides noise.

    ``class``: int64 class indices (N), or an N x K float blend of classes (interpolation).
    ``text``: N x D float sentence embeddings (``spec.text_dim``) made by the data's frozen
    text encoder (:mod:`zoo.text`): batches carry one of each image's captions, embedded at
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


@dataclass(frozen=True)
class Derivation:
    """Pairs derived on the fly from one set of images: each image (or a random
    ``crop`` x ``crop`` patch of it, flipped at random with ``flips``) is the target, and its
    bicubic downsample by ``factor`` (antialiased, as MATLAB's ``imresize`` and PIL do) the
    input. Super-resolution trains on any image data this way, prepared once; full-size
    photos (``--size full``) give their crops straight from each photo."""

    factor: int
    crop: int = 0
    """Side of the random square patch taken from each image first; 0 = the whole image."""
    flips: bool = False
    """Flip each pair left-right and upside-down, each with probability 1/2."""

    def __post_init__(self) -> None:
        if self.factor < 1:
            raise UsageError(f"a downscale factor must be at least 1, got {self.factor}")
        if self.crop and self.crop % self.factor:
            raise UsageError(f"the crop ({self.crop} px) must be a multiple of the factor {self.factor}")

    def spec(self, spec: DataSpec) -> DataSpec:
        """The spec a model sees: low-resolution inputs, the (cropped) images as targets."""
        height, width = (self.crop, self.crop) if self.crop else (spec.height, spec.width)
        if self.crop and (self.crop > spec.height or self.crop > spec.width):
            raise UsageError(f"patches of {self.crop} px do not fit in {spec.height}x{spec.width} images (the "
                             f"smallest); set a smaller crop (--set crop=...) or use larger images")
        if height % self.factor or width % self.factor:
            raise UsageError(f"{height}x{width} images do not divide by the factor {self.factor}; "
                             f"prep the data with a --size that is a multiple of {self.factor}")
        return DataSpec(spec.name, spec.channels, height // self.factor, width // self.factor,
                        spec.class_names, "derived", spec.channels, ("low", "high"), height, width,
                        spec.conditions, spec.text_dim)

    def __call__(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(inputs, targets) for float images in [-1, 1]."""
        n, _, h, w = images.shape
        if self.crop and (h > self.crop or w > self.crop):
            top = torch.randint(0, h - self.crop + 1, (n,))
            left = torch.randint(0, w - self.crop + 1, (n,))
            images = windows(images, top, left, self.crop)
        (images,) = self.flip(images)
        return self.downsample(images), images

    def flip(self, *images: Tensor) -> tuple[Tensor, ...]:
        """With ``flips``, each example flipped left-right and upside-down with probability
        1/2, the same way in every tensor given (a pair's two halves); else as they are."""
        if not self.flips:
            return images
        n = images[0].shape[0]
        flip = torch.rand(2, n, 1, 1, 1, device=images[0].device) < 0.5
        return tuple(torch.where(flip[1], x.flip(-2), x) for x in
                     (torch.where(flip[0], x.flip(-1), x) for x in images))

    def paired_spec(self, spec: DataSpec) -> DataSpec:
        """The spec a model sees for paired low- and high-resolution photos (its crops)."""
        side = self.crop // self.factor
        if side > spec.height or side > spec.width:
            raise UsageError(f"crops of {self.crop} px need low-resolution images of {side} px; the smallest is "
                             f"{spec.height}x{spec.width}; set a smaller crop (--set crop=...)")
        return DataSpec(spec.name, spec.channels, side, side, spec.class_names, "paired",
                        spec.target_channels or spec.channels, spec.domains, self.crop, self.crop, spec.conditions,
                        spec.text_dim)

    def downsample(self, images: Tensor) -> Tensor:
        """Images in [-1, 1] made ``factor`` times smaller (their sides must divide by it)."""
        if self.factor == 1:
            return images
        return F.interpolate(images, scale_factor=1 / self.factor, mode="bicubic", antialias=True,
                             align_corners=False).clamp(-1, 1)


def windows(images: Tensor, top: Tensor, left: Tensor, size: int) -> Tensor:
    """The ``size`` x ``size`` window of each image (N x C x H x W) whose top left corner is at
    (``top``, ``left``), N host tensors each."""
    n, c, h, w = images.shape
    first = torch.arange(n) * (c * h * w) + top * w + left
    return flat_windows(images.contiguous().view(-1), first, torch.full((n,), h * w), torch.full((n,), w), c, size)


def flat_windows(pixels: Tensor, first: Tensor, plane: Tensor, row: Tensor, channels: int, size: int) -> Tensor:
    """N windows of ``channels`` x ``size`` x ``size`` pixels of images laid end to end in
    ``pixels`` (1-D), each given by N host tensors: the offset of its top left pixel in its
    image's first channel (``first``), and its image's strides from channel to channel
    (``plane``) and row to row (``row``). One selection of ``size``-pixel runs, on the
    pixels' device: no per-image Python, nothing read back from the device, and on a CPU
    faster than slicing each window (a gather of single pixels is several times slower)."""
    first, plane, row = (t.view(-1, 1, 1) for t in to_device(torch.stack([first, plane, row]), pixels.device))
    starts = (first + plane * torch.arange(channels, device=pixels.device).view(1, -1, 1)
              + row * torch.arange(size, device=pixels.device).view(1, 1, -1))
    runs = pixels.unfold(0, size, 1)  # every run of ``size`` pixels, as a view
    return runs.index_select(0, starts.view(-1)).view(-1, channels, size, size)


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


class Model(nn.Module):
    """Base class of every zoo model plugin.

    Subclasses set the class attributes, build their networks in ``__init__(config, spec)``
    and implement :meth:`configure_optimizers` and :meth:`train_step`. Models with the
    ``latent`` capability implement :meth:`generate` and get sampling and previews free;
    image-to-image models implement :meth:`translate`.
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
    """Two-domain data an image-to-image model trains on: "paired", "unpaired", "derived"."""
    directions: ClassVar[tuple[str, ...]] = ()
    """The ways an image-to-image model translates: ("AtoB",), or ("AtoB", "BtoA")."""
    state_metrics: ClassVar[tuple[str, ...]] = ()
    """Metrics of :meth:`train_step` that say where training stands rather than how it goes
    (ProGAN's ``resolution`` and ``alpha``): the epoch line shows their latest value, not a
    mean, and the loss curves draw them in a panel of their own."""
    small_data: ClassVar[dict[str, Any]] = {}
    """Config values for training sets of fewer than :data:`SMALL_DATA` images, used where the
    user set nothing else (the train pipeline says so): e.g. DCGAN's augmentation."""
    # Within this class body ``Config`` is the attribute above, not a type: hence config_io.Config.
    # check_data and derivation take Any because each plugin declares them with its own Config
    # subclass, which a type checker would reject as an override of a base that takes any Config.
    def __init__(self, config: config_io.Config, spec: DataSpec) -> None:
        super().__init__()
        self.config = config
        self.spec = spec
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.engine = Engine()
        # Frozen helper networks live outside the module tree: no optimiser sees them and no
        # checkpoint holds them (see add_helper).
        self._helpers: dict[str, tuple[nn.Module, str]] = {}

    # -- declared before any work starts -----------------------------------------------

    @classmethod
    def check_data(cls, config: Any, spec: DataSpec) -> None:
        """Raise :class:`zoo.UsageError` if this model cannot be built for data of this shape."""

    def batch_sizes(self) -> set[int]:
        """Every batch size :meth:`train_step` asks of ``batches.next`` over the run (ProGAN's
        per resolution); under torchrun each must split evenly over the processes, which
        the train pipeline checks before the first step."""
        return {int(getattr(self.config, "batch_size", 1))}

    def uncompiled(self) -> dict[str, str]:
        """The networks ``--compile`` must leave eager, each with the reason (zoo says so and
        compiles the rest). ``--compile`` compiles each direct child module with weights."""
        return {}

    @classmethod
    def derivation(cls, config: Any) -> Derivation | None:
        """For models whose ``data_pairing`` includes "derived": how pairs are made from one
        set of images (super-resolution: the image and its downsample)."""
        return None

    @classmethod
    def default_kimg(cls, config: Any, spec: DataSpec) -> float | None:
        """The length of a run given none, in thousands of images, for a model whose schedule
        is in images (ProGAN: one pass through its growth); None: the loop's default epochs."""
        return None

    @classmethod
    def has(cls, capability: Capability) -> bool:
        return capability in cls.capabilities

    @classmethod
    def needs(cls) -> list[Condition]:
        """The conditions this model needs from its data and from the user."""
        return [condition for capability, condition in NEEDS.items() if capability in cls.capabilities]

    # -- training -------------------------------------------------------------------------

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Create the optimisers, by name. Called after the model is on its device and its
        weights and extra state are restored; a model may call it again when it grows."""
        raise NotImplementedError

    def batches_per_step(self) -> int:
        """How many batches one :meth:`train_step` draws; sets how many steps make an epoch."""
        return 1

    def train_step(self, batches: Batches, progress: Progress) -> Metrics:
        """One update of the model. Returns scalar metrics (losses, D(x), ...) by name, as
        tensors: the loop reads them from the device every few steps, not every step."""
        raise NotImplementedError

    def manual_backward(self, loss: Tensor) -> None:
        """Gradients of ``loss``; use instead of ``loss.backward()`` (the loop may scale it)."""
        self.engine.backward(loss)

    def optimizer_step(self, name: str) -> None:
        """Step the optimiser ``name`` with the gradients accumulated so far, then clear them;
        use instead of ``optimizer.step()`` (the loop may clip, unscale and average them)."""
        optimizer = self.optimizers[name]
        self.engine.step(optimizer)
        optimizer.zero_grad(set_to_none=True)

    def update(self, name: str, loss: Tensor) -> None:
        """One update of the networks of optimiser ``name`` to lower ``loss``: gradients
        cleared, backward pass, optimiser step. The usual way a plugin steps."""
        self.optimizers[name].zero_grad(set_to_none=True)
        self.manual_backward(loss)
        self.optimizer_step(name)

    # -- frozen helpers and warm starts -------------------------------------------------------

    def add_helper(self, name: str, module: nn.Module, source: str) -> None:
        """Use a network that is not trained (a feature extractor for a perceptual loss):
        frozen, in eval mode, moved with the model, and never written into a checkpoint;
        ``source`` (a file path and hash) is recorded instead, by reference (the text encoder
        zoo attaches to text-conditional models is the one exception: see
        :meth:`attach_text_encoder`). Reach
        it with :meth:`helper`; do not also assign it as an attribute (that would make it
        one of the model's own networks, trained and checkpointed)."""
        if any(module is child for child in self.modules()):
            raise ValueError(f"helper {name!r} is already one of {self.name}'s networks; pass a module "
                             "that is not assigned as an attribute")
        module.requires_grad_(False).eval()
        self._helpers[name] = (module, source)

    def helper(self, name: str) -> nn.Module:
        return self._helpers[name][0]

    def attach_text_encoder(self, encoder: nn.Module, source: str) -> None:
        """The frozen text encoder the data's captions were embedded with (zoo's own
        :class:`zoo.text.TextEncoder`, or a :class:`zoo.text.InstalledEncoder` chosen with
        ``--text-encoder``): the train pipeline attaches it to a text-conditional model, and
        every checkpoint of one holds it (zoo's by value, it is small; an installed one by
        reference), since ``--text`` needs it. Prompts given as strings are encoded by it
        (:meth:`check_conditions`)."""
        self.add_helper(TEXT_ENCODER, encoder, source)

    @property
    def text_encoder(self) -> Any:
        """The attached text encoder (see :meth:`attach_text_encoder`), or None."""
        return self._helpers[TEXT_ENCODER][0] if TEXT_ENCODER in self._helpers else None

    def encode_text(self, texts: list[str] | tuple[str, ...], what: str = "--text") -> Tensor:
        """Sentence embeddings (N x ``spec.text_dim``) of prompts, on the model's device; a
        UsageError for a prompt the encoder cannot read (no words, or unknown ones)."""
        if self.text_encoder is None:
            raise UsageError(f"{self.name} has no text encoder attached to read {what}")
        return self.text_encoder.encode(list(texts), what).to(self.device)

    def helper_sources(self) -> dict[str, str]:
        """Where each frozen helper came from, for the checkpoint's record."""
        return {name: source for name, (_, source) in self._helpers.items()}

    def _apply(self, fn: Any, recurse: bool = True) -> Model:
        super()._apply(fn, recurse)
        for module, _ in self._helpers.values():
            module._apply(fn, recurse)
        return self

    def train(self, mode: bool = True) -> Model:
        super().train(mode)
        for module, _ in self._helpers.values():
            module.eval()  # helpers stay in eval mode: their batch norms and dropout are fixed
        return self

    def warm_start(self, weights: Mapping[str, Tensor]) -> tuple[list[str], list[str]]:
        """Start from another run's weights (``zoo train --init-from RUN``): every weight
        whose name and shape match is copied. Returns (copied, left as initialised). A
        plugin may override this to map names (StackGAN's stage II from stage I)."""
        own = self.state_dict()
        copied = [k for k, v in weights.items() if k in own and own[k].shape == v.shape]
        with torch.no_grad():
            for key in copied:
                own[key].copy_(weights[key])
        return copied, [k for k in own if k not in set(copied)]

    # -- generation --------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def latent_dim(self) -> int:
        """Length of the latent vector, for models with the ``latent`` capability."""
        return int(getattr(self.config, "latent_dim"))  # noqa: B009 (not a field of the base Config)

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

    def generate(self, z: Tensor, conditions: Conditions | None = None) -> Tensor:
        """Images in [-1, 1] for latent vectors ``z``, given the ``conditions`` the model
        needs (see :class:`Condition`): a class-conditional model reads ``conditions["class"]``."""
        raise NotImplementedError(f"{self.name} does not generate from a latent vector")

    def translate(self, images: Tensor, direction: str = "AtoB") -> Tensor:
        """Images in [-1, 1] translated from one domain to the other, for models with the
        ``image-to-image`` capability; ``direction`` is one of :attr:`directions`. Outputs
        may be larger than inputs (super-resolution): ``spec.target_shape``."""
        raise NotImplementedError(f"{self.name} does not translate images")

    def context(self) -> int:
        """How far an output pixel of :meth:`translate` sees, in input pixels on each side
        (its receptive field's reach), for a fully convolutional image-to-image model:
        ``zoo upscale`` cuts large images into tiles overlapping by this much and keeps each
        tile's centre, so the tiles join with no seams (the result is the untiled one). 0,
        the default, means the model takes whole images only (it is not tiled)."""
        return 0

    def encode(self, images: Tensor, conditions: Conditions | None = None) -> Tensor:
        """Latent vectors for images in [-1, 1], for models with the ``encoder`` capability
        (``zoo reconstruct`` shows ``generate(encode(x))``; inversion starts from this guess;
        interpolation between images walks between their codes). A class-conditional encoder
        reads each image's class from ``conditions`` as ``generate`` does."""
        raise NotImplementedError(f"{self.name} has no encoder")

    def log_likelihood(self, images: Tensor, conditions: Conditions | None = None, *, samples: int = 1,
                       generator: torch.Generator | None = None) -> Tensor:
        """An estimate of log p(x) in nats for each image (float in [-1, 1], 8-bit values), for
        models with the ``likelihood`` capability; ``samples`` is how many draws an estimate may
        take (a VAE's importance samples), ``generator`` (CPU) makes it reproducible. The model
        says what data the figure is of in :meth:`likelihood_data`."""
        raise NotImplementedError(f"{self.name} does not estimate a likelihood")

    def likelihood_data(self) -> str:
        """What :meth:`log_likelihood` is the likelihood of (binarised pixels, dequantised
        8-bit pixels, ...), written into ``zoo eval``'s protocol."""
        return "8-bit pixels"

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None,
               conditions: Conditions | None = None, prior: Prior | None = None,
               truncation: float | None = None) -> Tensor:
        """``n`` new images in [-1, 1], N x C x H x W, with the networks in eval mode.
        Conditional models need their conditions for each image (``{"class": labels}``)."""
        if not self.has(Capability.LATENT):
            raise UsageError(f"{self.name} does not sample from noise")
        conditions = self.check_conditions(n, conditions)
        with evaluating(self), full_precision():
            return self.generate(self.sample_latent(n, generator, prior=prior, truncation=truncation),
                                 conditions)

    def check_conditions(self, n: int, conditions: Conditions | None) -> dict[str, Any]:
        """The conditions for ``n`` images on this model's device; a UsageError names what is
        missing."""
        given = dict(conditions or {})
        for condition in self.needs():
            value = given.get(condition.value)
            if value is None or len(value) != n:
                raise UsageError(f"{self.name} is {condition.value}-conditional: give a {condition.value} "
                                 f"for each of the {n} images")
        text = given.get(Condition.TEXT.value)
        if isinstance(text, (list, tuple)):  # prompts as strings: their embeddings
            given[Condition.TEXT.value] = self.encode_text(text)
        return {k: v.to(self.device) if isinstance(v, Tensor) else v for k, v in given.items()}

    # -- the pictures shown during training --------------------------------------------------

    def preview_inputs(self, n: int, generator: torch.Generator, examples: Batch) -> dict[str, Any]:
        """Fixed inputs, made once per run, whose outputs are drawn as training goes.

        ``examples`` is a fixed batch of the training data (at least ``PREVIEW_EXAMPLES``).
        Image-to-image models and encoders show examples; class-conditional models a row
        per class, ``PREVIEW_PER_CLASS`` wide; text-conditional ones a row per example's
        caption (the same z down each column); other latent models ``n`` samples."""
        if self.has(Capability.IMAGE_TO_IMAGE) or self.has(Capability.ENCODER):
            inputs: dict[str, Any] = {"images": examples.images[:PREVIEW_EXAMPLES]}
            if examples.targets is not None:
                inputs["targets"] = examples.targets[:PREVIEW_EXAMPLES]
            if self.needs():  # a conditional encoder is told each example's own condition
                inputs["conditions"] = {c.value: examples.conditions[c.value][:PREVIEW_EXAMPLES] for c in self.needs()}
            return inputs
        if self.has(Capability.CLASS_CONDITIONAL):
            labels = class_rows(min(self.spec.num_classes, PREVIEW_CLASSES), PREVIEW_PER_CLASS)
            return {"z": self.sample_latent(len(labels), generator),
                    "conditions": {Condition.CLASS.value: labels.to(self.device)}}
        if self.has(Capability.TEXT_CONDITIONAL):  # a row per example's caption, the same z in each column
            text = examples.conditions[Condition.TEXT.value][:PREVIEW_EXAMPLES]
            z = self.sample_latent(PREVIEW_PER_CLASS, generator).repeat(len(text), 1)
            return {"z": z, "conditions": {Condition.TEXT.value: text.repeat_interleave(PREVIEW_PER_CLASS, 0)},
                    "captions": (examples.captions or [])[:len(text)]}
        conditions = {c.value: examples.conditions[c.value][:n] for c in self.needs()}
        count = min(n, *(len(v) for v in conditions.values())) if conditions else n
        return {"z": self.sample_latent(count, generator), "conditions": conditions}

    @torch.no_grad()
    def preview(self, inputs: Mapping[str, Any]) -> Tensor:
        """Images in [-1, 1] for the fixed preview inputs (a grid every so often, then a GIF):
        N x C x H x W, or rows x columns x C x H x W to fix the grid's layout. Image-to-image
        models show a row per example: input | output | target; encoders input | reconstruction."""
        with evaluating(self), full_precision():
            if self.has(Capability.IMAGE_TO_IMAGE):
                output = self.translate(inputs["images"], self.directions[0] if self.directions else "AtoB")
                return image_rows(inputs["images"], output, *([inputs["targets"]] if "targets" in inputs else []))
            if self.has(Capability.ENCODER):
                given = inputs.get("conditions")
                return image_rows(inputs["images"], self.generate(self.encode(inputs["images"], given), given))
            images = self.generate(inputs["z"], inputs.get("conditions"))
        if self.has(Capability.CLASS_CONDITIONAL) or self.has(Capability.TEXT_CONDITIONAL):
            return images.view(-1, PREVIEW_PER_CLASS, *images.shape[1:])
        return images

    def preview_labels(self, inputs: Mapping[str, Any]) -> tuple[list[str] | None, list[str] | None]:
        """What the columns and the rows of :meth:`preview` show, written on the preview grid
        so that it explains itself: (a label for each column, a label for each row), either
        None. The defaults describe the default preview: input | output (| target),
        input | reconstruction, or a class name for each row; plain samples have none. A
        model that draws its own preview says what it drew."""
        if self.has(Capability.IMAGE_TO_IMAGE):
            return ["input", "output", *(["target"] if "targets" in inputs else [])], None
        if self.has(Capability.ENCODER):
            return ["input", "reconstruction"], None
        if self.has(Capability.CLASS_CONDITIONAL):
            labels = inputs["conditions"][Condition.CLASS.value][::PREVIEW_PER_CLASS]
            return None, [self.spec.class_names[int(c)] for c in labels]
        if self.has(Capability.TEXT_CONDITIONAL) and inputs.get("captions"):
            return None, list(inputs["captions"])
        return None, None

    def preview_samples(self, inputs: Mapping[str, Any], preview: Tensor) -> Tensor | None:
        """The samples among a preview's images, which the train loop watches for mode
        collapse: N x C x H x W, or rows x columns x C x H x W for a row per class; None when
        the preview shows none (translations, reconstructions). The default: the whole preview
        of a latent model that draws its default preview."""
        if not self.has(Capability.LATENT) or self.has(Capability.IMAGE_TO_IMAGE) or self.has(Capability.ENCODER):
            return None
        if self.has(Capability.TEXT_CONDITIONAL) and not self.has(Capability.CLASS_CONDITIONAL):
            return preview.flatten(0, 1)  # a row per caption, not per class: compared with the data as a whole
        return preview

    # -- state a checkpoint needs beyond the weights -----------------------------------------

    def extra_state(self) -> dict[str, Any]:
        """Tensors, numbers and strings (nested in dicts and lists) to checkpoint."""
        return {}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned. Called before the optimisers are made."""


TEXT_ENCODER = "text"
"""The helper name of a text-conditional model's frozen text encoder."""
SMALL_DATA = 2000
"""Fewer training images than this is a small data set (:attr:`Model.small_data`)."""
PREVIEW_PER_CLASS = 8
PREVIEW_CLASSES = 32
"""Class-conditional previews show a row for each of the first this many classes."""
PREVIEW_EXAMPLES = 8


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


def class_condition(labels: Tensor | None) -> dict[str, Any]:
    """``{"class": labels}``, or no conditions for None: what pipelines hand to ``generate``."""
    return {} if labels is None else {Condition.CLASS.value: labels}


def optimised_parameters(optimizers: Iterable[torch.optim.Optimizer]) -> list[nn.Parameter]:
    """Every parameter some optimiser updates."""
    return [p for optimizer in optimizers for group in optimizer.param_groups for p in group["params"]]


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
