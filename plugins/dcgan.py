"""DCGAN: Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks", ICLR 2016 (arXiv:1511.06434).

Two network families, chosen by the data's size:

* **lab** (28 x 28): the networks of the Romanian GAN lab (seed 000) for MNIST-sized
  digits: a generator of four transposed convolutions (128-64-32-1 channels) and a
  discriminator of four strided convolutions (16-32-64-128) with a linear head. The lab
  ends its generator with a sigmoid on data in [0, 1]; zoo's images live in [-1, 1], so a
  tanh takes its place (tanh(x) = 2 sigmoid(2x) - 1: the same family of functions).
* **radford** (16, 32, 64, 128, 256 square): the paper's all-convolutional networks, batch
  norm everywhere but the generator's output and the discriminator's input, ReLU in the
  generator, LeakyReLU(0.2) in the discriminator.

Both start from N(0, 0.02) weights and train with Adam(2e-4, betas 0.5 / 0.999). The loss
is the paper's one-logit binary cross-entropy, or the lab's two-logit cross-entropy, with
optional label smoothing (seed 002 uses a real label of 0.9, seed 003 0.8 real / 0.1 fake).

The network builders here are the shared building blocks of the other convolutional GANs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

import zoo
from zoo import losses, priors
from zoo.config import option

LAB_SIZE = 28
LAB_WIDTHS = {"generator": 32, "discriminator": 16}
RADFORD_WIDTH = 64


@dataclass
class DCGANConfig(zoo.Config):
    batch_size: int = option(128, "images per training batch (the paper: 128)")
    latent_dim: int = option(100, "length of the noise vector z")
    noise: str = option("normal", "the prior z is drawn from: normal:MEAN,STD, uniform:LOW,HIGH, "
                                  "gamma:SHAPE,SCALE or laplace:LOC,SCALE")
    architecture: Literal["auto", "lab", "radford"] = option(
        "auto", "auto: lab networks for 28x28 data, Radford et al.'s for 16..256 powers of two")
    g_width: int | None = option(
        None, "generator width: channels of its last hidden layer (default 32 lab, 64 radford)")
    d_width: int | None = option(
        None, "discriminator width: channels of its first layer (default 16 lab, 64 radford)")
    loss: Literal["bce", "cross_entropy"] = option(
        "bce", "bce: one logit (the paper); cross_entropy: the lab's two logits")
    real_label: float = option(1.0, "target for real images; 0.9 or 0.8 smooth the labels")
    fake_label: float = option(0.0, "target for generated images; seed 003 uses 0.1")
    lr: float = option(2e-4, "Adam learning rate, both networks")
    beta1: float = option(0.5, "Adam beta1")
    beta2: float = option(0.999, "Adam beta2")
    leaky_slope: float = option(0.2, "negative slope of the discriminator's LeakyReLU")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.latent_dim < 1:
            raise zoo.UsageError(f"latent_dim must be at least 1, got {self.latent_dim}")
        priors.parse(self.noise)
        for key in ("g_width", "d_width"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise zoo.UsageError(f"{key} must be at least 1, got {value}")
        for key in ("real_label", "fake_label"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise zoo.UsageError(f"{key} must be within [0, 1], got {getattr(self, key)}")
        if self.fake_label >= self.real_label:
            raise zoo.UsageError("fake_label must be below real_label")
        if self.lr <= 0:
            raise zoo.UsageError(f"lr must be positive, got {self.lr}")


# -- networks ---------------------------------------------------------------------------------

def pick_architecture(requested: str, spec: zoo.DataSpec) -> str:
    """The network family for data of this shape, or a UsageError saying what fits."""
    square = spec.height == spec.width
    size = spec.height
    radford_ok = square and 16 <= size <= 256 and size & (size - 1) == 0
    lab_ok = square and size == LAB_SIZE
    if requested == "auto":
        requested = "lab" if lab_ok else "radford"
    if requested == "lab" and not lab_ok:
        raise zoo.UsageError(f"the lab networks need 28x28 images, the data is "
                             f"{spec.height}x{spec.width}; prep it with --size 28")
    if requested == "radford" and not radford_ok:
        raise zoo.UsageError(f"DCGAN needs square images of 28 (lab) or 16, 32, 64, 128 or 256 "
                             f"pixels, the data is {spec.height}x{spec.width}; "
                             "prep it with --size 32 or --size 64")
    return requested


def _up(c_in: int, c_out: int, stride: int, padding: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(c_in, c_out, 4, stride, padding, bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def _down(c_in: int, c_out: int, stride: int, padding: int, slope: float, norm: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, stride, padding, bias=False)]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.LeakyReLU(slope, inplace=True))
    return layers


class Generator(nn.Module):
    """z (N x latent_dim) -> images in [-1, 1]."""

    def __init__(self, body: nn.Sequential) -> None:
        super().__init__()
        self.body = body

    def forward(self, z: Tensor) -> Tensor:
        return self.body(z.view(z.shape[0], -1, 1, 1))


def lab_generator(latent_dim: int, width: int, channels: int) -> Generator:
    """The lab's 28x28 generator: 4x4 -> 8x8 -> 16x16 -> 28x28."""
    return Generator(nn.Sequential(
        *_up(latent_dim, 4 * width, 1, 0),
        *_up(4 * width, 2 * width, 2, 1),
        *_up(2 * width, width, 2, 1),
        nn.ConvTranspose2d(width, channels, 4, 2, 3, bias=False),  # 16 -> 28
        nn.Tanh(),
    ))


def lab_features(width: int, channels: int, slope: float) -> tuple[nn.Sequential, int]:
    """The lab's 28x28 discriminator body: 14x14 -> 7x7 -> 4x4 -> 1x1, flattened."""
    body = nn.Sequential(
        *_down(channels, width, 2, 1, slope, norm=False),
        *_down(width, 2 * width, 2, 1, slope),
        *_down(2 * width, 4 * width, 1, 0, slope),
        *_down(4 * width, 8 * width, 1, 0, slope),
        nn.Flatten(),
    )
    return body, 8 * width


def radford_generator(latent_dim: int, width: int, channels: int, size: int) -> Generator:
    """The paper's generator: project to 4x4, then double the size until ``size``."""
    doublings = int(math.log2(size)) - 2
    c = width * 2 ** (doublings - 1)
    layers = _up(latent_dim, c, 1, 0)
    for _ in range(doublings - 1):
        layers += _up(c, c // 2, 2, 1)
        c //= 2
    layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1, bias=False), nn.Tanh()]
    return Generator(nn.Sequential(*layers))


def radford_features(width: int, channels: int, size: int, slope: float) -> tuple[nn.Sequential, int]:
    """The paper's discriminator body: halve the size down to 4x4, flattened. The paper's
    last 4x4 convolution over it is the same function as a linear head on these features."""
    layers = _down(channels, width, 2, 1, slope, norm=False)
    c, s = width, size // 2
    while s > 4:
        layers += _down(c, 2 * c, 2, 1, slope)
        c, s = 2 * c, s // 2
    layers.append(nn.Flatten())
    return nn.Sequential(*layers), c * 4 * 4


class Discriminator(nn.Module):
    """A convolutional body and a linear head: images -> logits."""

    def __init__(self, features: nn.Sequential, feature_dim: int, logits: int) -> None:
        super().__init__()
        self.features = features
        self.head = nn.Linear(feature_dim, logits)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def build_generator(config: DCGANConfig, spec: zoo.DataSpec, input_dim: int) -> Generator:
    """The generator for ``spec``, taking vectors of ``input_dim`` (z, or z with a label code)."""
    if pick_architecture(config.architecture, spec) == "lab":
        return lab_generator(input_dim, config.g_width or LAB_WIDTHS["generator"], spec.channels)
    return radford_generator(input_dim, config.g_width or RADFORD_WIDTH, spec.channels, spec.height)


def build_features(config: DCGANConfig, spec: zoo.DataSpec) -> tuple[nn.Sequential, int]:
    """The discriminator body for ``spec`` and the length of its feature vector."""
    if pick_architecture(config.architecture, spec) == "lab":
        return lab_features(config.d_width or LAB_WIDTHS["discriminator"], spec.channels, config.leaky_slope)
    return radford_features(config.d_width or RADFORD_WIDTH, spec.channels, spec.height, config.leaky_slope)


def adam_pair(generator: nn.Module, discriminator: nn.Module, config: DCGANConfig) -> dict[str, torch.optim.Optimizer]:
    """The paper's optimisers: Adam(lr, betas (beta1, beta2)) for each network."""
    betas = (config.beta1, config.beta2)
    return {"generator": torch.optim.Adam(generator.parameters(), config.lr, betas=betas),
            "discriminator": torch.optim.Adam(discriminator.parameters(), config.lr, betas=betas)}


# -- the model ----------------------------------------------------------------------------------

class DCGAN(zoo.Model):
    name = "dcgan"
    summary = "Deep convolutional GAN; the lab's 28x28 networks or the paper's 16-256 px ones"
    paper = "Radford, Metz & Chintala 2016, arXiv:1511.06434"
    family = "GAN"
    version = "1"
    Config = DCGANConfig
    capabilities = frozenset({zoo.Capability.LATENT})
    tiny_config = {"g_width": 4, "d_width": 4, "batch_size": 8, "latent_dim": 8}

    config: DCGANConfig

    def __init__(self, config: DCGANConfig, spec: zoo.DataSpec) -> None:
        super().__init__(config, spec)
        self.generator = build_generator(config, spec, config.latent_dim)
        features, feature_dim = build_features(config, spec)
        self.discriminator = Discriminator(features, feature_dim, losses.logits_per_image(config.loss))
        zoo.init_normal(self)

    @classmethod
    def check_data(cls, config: DCGANConfig, spec: zoo.DataSpec) -> None:
        pick_architecture(config.architecture, spec)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return adam_pair(self.generator, self.discriminator, self.config)

    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.generator(z)

    def train_step(self, batches: zoo.Batches, progress: zoo.Progress) -> zoo.Metrics:
        cfg = self.config
        real = batches.next().images
        fake = self.generator(self.sample_latent(real.shape[0]))

        # Discriminator: real and generated images as separate batches, so each gets its
        # own batch-norm statistics (the DCGAN paper's and the lab's practice).
        opt_d = self.optimizers["discriminator"]
        opt_d.zero_grad(set_to_none=True)
        real_logits = self.discriminator(real)
        fake_logits = self.discriminator(fake.detach())
        loss_d = losses.discriminator_loss(cfg.loss, real_logits, fake_logits,
                                           real_label=cfg.real_label, fake_label=cfg.fake_label)
        loss_d.backward()
        opt_d.step()

        # Generator: make the updated discriminator call the same images real. D's weights
        # need no gradient here, which saves a third of its backward pass.
        opt_g = self.optimizers["generator"]
        opt_g.zero_grad(set_to_none=True)
        with zoo.frozen(self.discriminator):
            loss_g = losses.generator_loss(cfg.loss, self.discriminator(fake))
            loss_g.backward()
        opt_g.step()
        return losses.step_metrics(cfg.loss, loss_d, loss_g, real_logits, fake_logits)
