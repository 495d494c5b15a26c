"""The autoencoder: an encoder that squeezes an image into a short code z and a decoder that
rebuilds the image from it, trained to make the two match (Hinton & Salakhutdinov, "Reducing
the Dimensionality of Data with Neural Networks", Science 2006). Seed 004 puts it first
among the GANs' friends.

The networks are DCGAN's building blocks (:mod:`zoo.plugins.dcgan`): the encoder is its
discriminator's body (strided convolutions, batch norm, LeakyReLU(0.2)) with a linear head
that gives z, the decoder its generator (transposed convolutions, batch norm, ReLU). The lab's
28x28 networks for 28 px data, Radford et al.'s for 16-256 px, gray or RGB.

The reconstruction loss is ``mse`` (the default: what PSNR measures) or ``bce``, the binary
cross-entropy of each pixel's intensity in [0, 1] against the decoder's logit. Either way the
decoder's output lives in the data's range [-1, 1]: ``tanh`` of its last layer for ``mse``,
and for ``bce`` the probability sigmoid(logit) rescaled, 2 sigmoid(l) - 1 = tanh(l / 2), so
the loss never sees an activation that does not match what it compares.

An autoencoder has no prior: nothing says which codes are images, so it does not sample
(``zoo sample`` says so and names the models that do). It encodes, so ``zoo reconstruct``,
``zoo interpolate --from-image/--to-image`` (straight between the two codes) and
``zoo invert`` (starting from the encoder's guess) work. The VAE (:mod:`zoo.plugins.vae`)
adds the prior.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import zoo
from zoo.config import option
from zoo.plugins.dcgan import (
    RADFORD_WIDTH,
    Generator,
    lab_features,
    lab_generator,
    pick_architecture,
    radford_features,
    radford_generator,
)

LAB_WIDTH = 32
"""Channels of the lab encoder's first layer and the lab decoder's last hidden layer."""


@dataclass
class CodecConfig(zoo.Config):
    """The keys every encoder-decoder model of zoo shares: networks and optimiser."""

    batch_size: int = option(64, "images per training batch")
    latent_dim: int = option(16, "length of the code z")
    architecture: Literal["auto", "lab", "radford"] = option(
        "auto", "auto: the lab's networks for 28x28 data, Radford et al.'s for 16..256 powers of two")
    encoder_width: int | None = option(
        None, f"channels of the encoder's first layer (default {LAB_WIDTH} lab, {RADFORD_WIDTH} radford)")
    decoder_width: int | None = option(
        None, f"channels of the decoder's last hidden layer (default {LAB_WIDTH} lab, {RADFORD_WIDTH} radford)")
    norm: Literal["batch", "none"] = option("batch", "normalisation in the encoder: batch (DCGAN's) or none")
    lr: float = option(1e-3, "Adam learning rate, both networks")
    beta1: float = option(0.9, "Adam beta1")
    beta2: float = option(0.999, "Adam beta2")
    leaky_slope: float = option(0.2, "negative slope of the encoder's LeakyReLU")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.at_least(1, "latent_dim", "encoder_width", "decoder_width")
        self.positive("lr")
        self.below_one("beta1", "beta2")


@dataclass
class AEConfig(CodecConfig):
    loss: Literal["mse", "bce"] = option("mse", "reconstruction loss: mse (what PSNR measures) or bce of "
                                                "each pixel's intensity against the decoder's logit")


# -- networks ---------------------------------------------------------------------------------

class Encoder(nn.Module):
    """Images -> ``outputs`` numbers per image: DCGAN's discriminator body and a linear head.
    With ``num_classes``, one-hot label maps join the image's channels (the class it is)."""

    def __init__(self, config: CodecConfig, spec: zoo.DataSpec, outputs: int, num_classes: int = 0) -> None:
        super().__init__()
        channels = spec.channels + num_classes
        width = config.encoder_width
        if pick_architecture(config.architecture, spec) == "lab":
            self.features, features = lab_features(width or LAB_WIDTH, channels, config.leaky_slope, config.norm)
        else:
            self.features, features = radford_features(width or RADFORD_WIDTH, channels, spec.height,
                                                       config.leaky_slope, config.norm)
        self.head = nn.Linear(features, outputs)
        self.num_classes = num_classes

    def forward(self, images: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.num_classes:
            if labels is None:
                raise zoo.UsageError("this encoder is class-conditional: give the class of each image")
            maps = F.one_hot(labels, self.num_classes).to(images.dtype)[:, :, None, None]
            images = torch.cat([images, maps.expand(-1, -1, *images.shape[2:])], dim=1)
        return self.head(self.features(images))


def decoder_body(config: CodecConfig, spec: zoo.DataSpec, input_dim: int) -> Generator:
    """DCGAN's generator for ``spec`` without its final tanh: the decoder's raw output (a
    mean before its squashing, or a logit), which the model maps to [-1, 1] itself."""
    width = config.decoder_width
    if pick_architecture(config.architecture, spec) == "lab":
        generator = lab_generator(input_dim, width or LAB_WIDTH, spec.channels)
    else:
        generator = radford_generator(input_dim, width or RADFORD_WIDTH, spec.channels, spec.height)
    layers = list(generator.body)
    assert isinstance(layers[-1], nn.Tanh)  # DCGAN's generators end in one
    generator.body = nn.Sequential(*layers[:-1])
    return generator


def to_image(raw: Tensor, logits: bool) -> Tensor:
    """The decoder's raw output as an image in [-1, 1]: the probability of a Bernoulli logit
    rescaled (2 sigmoid(l) - 1 = tanh(l / 2)), or a squashed mean."""
    return torch.tanh(raw / 2) if logits else torch.tanh(raw)


def intensities(images: Tensor) -> Tensor:
    """Images in [-1, 1] as pixel intensities in [0, 1] (what a Bernoulli pixel's target is)."""
    return ((images + 1) / 2).clamp(0, 1)


def adam(model: nn.Module, config: CodecConfig) -> dict[str, torch.optim.Optimizer]:
    """One optimiser for encoder and decoder together (they minimise one loss), over every
    weight that trains (a VAE's fixed sigma, a conditional VAE's standard prior do not)."""
    trained = [p for p in model.parameters() if p.requires_grad]
    return {"autoencoder": torch.optim.Adam(trained, config.lr, betas=(config.beta1, config.beta2))}


# -- the models -----------------------------------------------------------------------------------

class EncoderDecoder(zoo.Model):
    """What the autoencoder and the VAEs share: an encoder and a decoder on DCGAN's blocks, one
    Adam for both, and the hooks a subclass fills in (the code's length, what the decoder's
    output means, a class for conditional models). Not a model of its own: it has no name."""

    family = "autoencoder"
    config: CodecConfig

    def __init__(self, config: CodecConfig, spec: zoo.DataSpec) -> None:
        super().__init__(config, spec)
        classes = spec.num_classes if self.has(zoo.Capability.CLASS_CONDITIONAL) else 0
        self.encoder = Encoder(config, spec, self.code_length(), classes)
        self.decoder = self.build_decoder(config, spec, classes)
        zoo.init_normal(self)

    # -- what a subclass changes ---------------------------------------------------------------

    def code_length(self) -> int:
        """Numbers the encoder gives per image: z itself, or a mean and a log-variance (VAE)."""
        return self.config.latent_dim

    def build_decoder(self, config: CodecConfig, spec: zoo.DataSpec, classes: int) -> nn.Module:
        """z (and, for a class-conditional model, the class) -> the decoder's raw output."""
        return decoder_body(config, spec, config.latent_dim)

    def decode(self, z: Tensor, conditions: zoo.Conditions | None = None) -> Tensor:
        """The decoder's raw output for codes ``z``: logits, or means before their tanh."""
        return self.decoder(z)

    @property
    def outputs_logits(self) -> bool:
        """Whether the decoder's raw output is a Bernoulli logit (else a mean before its tanh)."""
        raise NotImplementedError

    # -- the contract ----------------------------------------------------------------------------

    @classmethod
    def check_data(cls, config: CodecConfig, spec: zoo.DataSpec) -> None:
        if config.architecture != "auto":
            pick_architecture(config.architecture, spec)  # its own message says what that family takes
            return
        try:
            pick_architecture("auto", spec)
        except zoo.UsageError:
            raise zoo.UsageError(f"{cls.name} takes square images of 28 px (the lab's networks) or 16, 32, 64, "
                                 f"128 or 256 px, the data is {spec.height}x{spec.width}; prep it with "
                                 "--size 28, 32 or 64") from None

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return adam(self, self.config)

    def generate(self, z: Tensor, conditions: zoo.Conditions | None = None) -> Tensor:
        return to_image(self.decode(z, conditions), self.outputs_logits)


class Autoencoder(EncoderDecoder):
    name = "ae"
    summary = "Convolutional autoencoder on DCGAN's blocks: encode, reconstruct (no prior, no sampling)"
    paper = "Hinton & Salakhutdinov 2006, doi:10.1126/science.1127647"
    version = "1"
    Config = AEConfig
    capabilities = frozenset({zoo.Capability.ENCODER})
    tiny_config = {"encoder_width": 4, "decoder_width": 4, "batch_size": 8, "latent_dim": 4}

    config: AEConfig

    @property
    def outputs_logits(self) -> bool:
        return self.config.loss == "bce"

    def encode(self, images: Tensor, conditions: zoo.Conditions | None = None) -> Tensor:
        return self.encoder(images)

    def reconstruction_loss(self, images: Tensor) -> Tensor:
        """The mean per-pixel loss of the batch's reconstructions."""
        raw = self.decode(self.encode(images))
        if self.config.loss == "bce":
            return F.binary_cross_entropy_with_logits(raw, intensities(images))
        return F.mse_loss(torch.tanh(raw), images)

    def train_step(self, batches: zoo.Batches, progress: zoo.Progress) -> zoo.Metrics:
        loss = self.reconstruction_loss(batches.next().images)
        self.update("autoencoder", loss)
        return {"loss": loss.detach()}
