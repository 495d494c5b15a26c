"""The plugin contract: what a model family tells zoo, and what zoo asks of it.

A plugin is a subclass of :class:`Model`, an ``nn.Module`` that holds all of a family's
networks (one generator and one discriminator, two of each for CycleGAN, an encoder...).
Its class attributes declare what it is and what it can do; the pipelines read those
before any work starts and never test a model's name.

The train pipeline owns the loop, the devices, checkpoints and logging. A model owns one
step: :meth:`Model.train_step` draws as many batches as it needs (a WGAN critic takes
five per generator update, ProGAN asks for smaller ones at higher resolution), updates
whichever networks it has through :meth:`Model.update` (the seam where the loop adds mixed
precision, clipping and gradient averaging: :mod:`zoo.training.engine`), and returns the numbers
worth plotting as tensors, which the loop reads every few steps. Progressive growing and
learning-rate schedules read :class:`~zoo.spec.Progress`, in steps and in images seen.

The types a model shares with the pipelines (capabilities, conditions, the data's shape,
batches) are in :mod:`zoo.spec`; the default previews in :mod:`zoo.previews`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from zoo import config as config_io
from zoo import previews, priors
from zoo.config import Config
from zoo.errors import UsageError
from zoo.priors import Prior
from zoo.spec import NEEDS, Batch, Batches, Capability, Condition, Conditions, DataSpec, Metrics, Progress
from zoo.training.engine import Engine, evaluating, full_precision

if TYPE_CHECKING:
    from zoo.data.superres import Derivation


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

    def training_only(self) -> tuple[str, ...]:
        """The networks only training uses (attribute names, which prefix their weights' names
        in the state dict): ``zoo export`` leaves them out of an export, which holds what
        drawing, translating and encoding need. A GAN names its discriminator, and its live
        generator where samples come from a moving average of it. Keys of :meth:`extra_state`
        named here are left out too (CycleGAN's image pools). The default keeps every network
        (an export then holds all the weights, still without optimiser state)."""
        return ()

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
        :class:`zoo.data.text.TextEncoder`, or a :class:`zoo.data.sentence_encoder.InstalledEncoder` chosen with
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

    # -- the pictures shown during training (the defaults: zoo.previews) ---------------------

    def preview_inputs(self, n: int, generator: torch.Generator, examples: Batch) -> dict[str, Any]:
        """Fixed inputs, made once per run, whose outputs are drawn as training goes.
        ``examples`` is a fixed batch of the training data (at least ``PREVIEW_EXAMPLES``).
        The default follows the capabilities: :func:`zoo.previews.default_inputs`."""
        return previews.default_inputs(self, n, generator, examples)

    @torch.no_grad()
    def preview(self, inputs: Mapping[str, Any]) -> Tensor:
        """Images in [-1, 1] for the fixed preview inputs (a grid every so often, then a GIF):
        N x C x H x W, or rows x columns x C x H x W to fix the grid's layout. Default:
        :func:`zoo.previews.default_preview` (samples; input | output (| target); input |
        reconstruction)."""
        return previews.default_preview(self, inputs)

    def preview_labels(self, inputs: Mapping[str, Any]) -> tuple[list[str] | None, list[str] | None]:
        """What the columns and the rows of :meth:`preview` show, written on the grid so that it
        explains itself: (a label for each column, a label for each row), either None. A model
        that draws its own preview says what it drew. Default: :func:`zoo.previews.default_labels`."""
        return previews.default_labels(self, inputs)

    def preview_samples(self, inputs: Mapping[str, Any], preview: Tensor) -> Tensor | None:
        """The samples among a preview's images, which the train loop watches for mode collapse
        (N x C x H x W, or rows x columns x C x H x W for a row per class); None when the
        preview shows none. Default: :func:`zoo.previews.default_samples`."""
        return previews.default_samples(self, inputs, preview)

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


def optimised_parameters(optimizers: Iterable[torch.optim.Optimizer]) -> list[nn.Parameter]:
    """Every parameter some optimiser updates."""
    return [p for optimizer in optimizers for group in optimizer.param_groups for p in group["params"]]


