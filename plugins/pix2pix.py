"""pix2pix: Isola, Zhu, Zhou & Efros, "Image-to-Image Translation with Conditional
Adversarial Networks", CVPR 2017 (arXiv:1611.07004).

Learns a mapping from input images A to target images B from aligned pairs (seed 004's
edges -> cats and facades):

* **Generator**: a U-Net. An encoder of 4x4 stride-2 convolutions (64, 128, 256, 512, 512,
  ... channels; LeakyReLU 0.2, batch norm but on the first and the innermost layer) halves
  the image down to its bottleneck; the decoder's transposed convolutions double it back,
  each joined by a skip connection to the encoder layer of the same size, so fine detail
  need not pass through the bottleneck. Dropout 0.5 in the three innermost decoder layers
  is the generator's noise. Its depth follows the image: as many halvings as the size
  allows, up to the paper's eight (256 px -> 1 px); 28 px data halves twice (7 x 7).
* **Discriminator**: a PatchGAN that sees the input and an output (real or generated)
  stacked as channels and classifies overlapping patches as real or fake: 70 x 70 patches
  at 128 px and up (three stride-2 layers), 34 x 34 on small images (two).
* **Objective**: the conditional GAN loss plus 100 x the L1 distance to the target; D's
  loss halved (the paper's D slows down). Adam(2e-4, betas 0.5 / 0.999), the paper's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import zoo
from zoo import augment, losses
from zoo.config import option

MAX_DEPTH = 8
MAX_WIDTH_FACTOR = 8


@dataclass
class Pix2PixConfig(zoo.Config):
    batch_size: int = option(16, "pairs per training batch (the paper: 1 to 10; 16 suits small images)")
    loss: Literal["bce", "lsgan", "hinge"] = option("bce", "the adversarial loss: bce (the paper), lsgan or hinge")
    l1_weight: float = option(100.0, "lambda: weight of the L1 distance to the target")
    g_width: int = option(64, "channels of the U-Net's first layer (doubling to 8x)")
    d_width: int = option(64, "channels of the PatchGAN's first layer")
    d_layers: int | None = option(None, "stride-2 layers of the PatchGAN: 3 gives 70x70 patches "
                                        "(default: 3 at 128 px and up, 2 below)")
    depth: int | None = option(None, "U-Net halvings (default: as many as the size allows, at most 8)")
    dropout: float = option(0.5, "dropout in the three innermost decoder layers")
    jitter: float | None = option(None, "random jitter: enlarge each pair this many times, then crop it back at a "
                                        "random place (the paper: 286/256 = 1.117); 0 = off. Default: the paper's "
                                        "for images of 64 px and up, off below (the 28-32 px built-in sets are "
                                        "centred items a pixel or two from the border)")
    mirror: bool | None = option(None, "flip each pair left to right half the time, input and target alike (the "
                                       "paper). Default: on for images of 64 px and up, off below (digits and "
                                       "Fashion-MNIST items all face one way)")
    lr: float = option(2e-4, "Adam learning rate, both networks")
    beta1: float = option(0.5, "Adam beta1")
    beta2: float = option(0.999, "Adam beta2")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.at_least(1, "g_width", "d_width")
        self.not_negative("l1_weight")
        self.below_one("dropout")
        augment.check_jitter(self.jitter)
        if self.d_layers is not None and not 1 <= self.d_layers <= 5:
            raise zoo.UsageError(f"d_layers must be 1 to 5, got {self.d_layers}")
        if self.depth is not None and not 1 <= self.depth <= MAX_DEPTH:
            raise zoo.UsageError(f"depth must be 1 to {MAX_DEPTH}, got {self.depth}")
        self.positive("lr")
        self.below_one("beta1", "beta2")


# -- networks ---------------------------------------------------------------------------------

def halvings(height: int, width: int) -> int:
    """How many times both sides halve evenly, at most the paper's eight."""
    k = 0
    while k < MAX_DEPTH and height % 2 ** (k + 1) == 0 and width % 2 ** (k + 1) == 0:
        k += 1
    return k


class UNet(nn.Module):
    """Encoder-decoder with a skip connection between layers of the same size."""

    def __init__(self, in_channels: int, out_channels: int, width: int, depth: int, dropout: float) -> None:
        super().__init__()
        sizes = [width * min(2 ** i, MAX_WIDTH_FACTOR) for i in range(depth)]
        self.down = nn.ModuleList()
        for i, c in enumerate(sizes):
            if i == 0:
                self.down.append(nn.Conv2d(in_channels, c, 4, 2, 1))
                continue
            layers = [nn.LeakyReLU(0.2), nn.Conv2d(sizes[i - 1], c, 4, 2, 1, bias=False)]
            if i < depth - 1:  # no norm at the 1x1 bottleneck (a single value per channel)
                layers.append(nn.BatchNorm2d(c))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):  # innermost first
            c_in = sizes[i] if i == depth - 1 else 2 * sizes[i]
            if i == 0:
                self.up.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(c_in, out_channels, 4, 2, 1), nn.Tanh()))
                continue
            layers = [nn.ReLU(), nn.ConvTranspose2d(c_in, sizes[i - 1], 4, 2, 1, bias=False),
                      nn.BatchNorm2d(sizes[i - 1])]
            if depth - 1 - i < 3 and dropout > 0:
                layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        x = self.up[0](skips.pop())
        for layer in self.up[1:]:
            x = layer(torch.cat([x, skips.pop()], dim=1))
        return x


def patch_discriminator(in_channels: int, width: int, layers: int,
                        norm: Callable[[int], nn.Module] = nn.BatchNorm2d) -> nn.Sequential:
    """The PatchGAN: ``layers`` stride-2 convolutions, one stride-1, then one logit per patch."""
    body: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
    c = width
    for i in range(1, layers + 1):
        c_out = width * min(2 ** i, MAX_WIDTH_FACTOR)
        body += [nn.Conv2d(c, c_out, 4, 2 if i < layers else 1, 1, bias=False), norm(c_out), nn.LeakyReLU(0.2)]
        c = c_out
    body.append(nn.Conv2d(c, 1, 4, 1, 1))
    return nn.Sequential(*body)


def patch_layers(requested: int | None, height: int, width: int) -> int:
    return requested if requested is not None else (3 if min(height, width) >= 128 else 2)


def smallest_patch_input(layers: int) -> int:
    """The smallest image side a PatchGAN of ``layers`` can score (its maps must stay >= 2 px)."""
    return 2 ** layers * 4


# -- the model --------------------------------------------------------------------------------

class Pix2Pix(zoo.Model):
    name = "pix2pix"
    summary = "Paired image-to-image translation: U-Net generator, PatchGAN on (input, output), L1 x 100"
    paper = "Isola et al. 2017, arXiv:1611.07004"
    family = "GAN"
    version = "1"
    Config = Pix2PixConfig
    capabilities = frozenset({zoo.Capability.IMAGE_TO_IMAGE})
    data_pairing = ("paired",)
    directions = ("AtoB",)
    tiny_config = {"g_width": 4, "d_width": 4, "batch_size": 4}

    config: Pix2PixConfig

    def __init__(self, config: Pix2PixConfig, spec: zoo.DataSpec) -> None:
        super().__init__(config, spec)
        depth = config.depth or halvings(spec.height, spec.width)
        out_channels = spec.target_channels or spec.channels
        self.generator = UNet(spec.channels, out_channels, config.g_width, depth, config.dropout)
        self.discriminator = patch_discriminator(spec.channels + out_channels, config.d_width,
                                                 patch_layers(config.d_layers, spec.height, spec.width))
        zoo.init_normal(self)

    @classmethod
    def check_data(cls, config: Pix2PixConfig, spec: zoo.DataSpec) -> None:
        depth = halvings(spec.height, spec.width)
        if config.depth is not None and config.depth > depth:
            raise zoo.UsageError(f"depth={config.depth} needs images whose sides divide by {2 ** config.depth}; "
                                 f"{spec.height}x{spec.width} allows {depth}")
        if depth < 1:
            raise zoo.UsageError(f"pix2pix's U-Net needs even image sides, the data is {spec.height}x{spec.width}; "
                                 "prep it with --size 32 (or any multiple of a power of two)")
        layers = patch_layers(config.d_layers, spec.height, spec.width)
        if min(spec.height, spec.width) < smallest_patch_input(layers):
            raise zoo.UsageError(f"a PatchGAN of {layers} layers needs images of at least "
                                 f"{smallest_patch_input(layers)} px; the data is {spec.height}x{spec.width} "
                                 "(set d_layers lower, or prep with a larger --size)")

    def training_only(self) -> tuple[str, ...]:
        return ("discriminator",)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = (self.config.beta1, self.config.beta2)
        return {"generator": torch.optim.Adam(self.generator.parameters(), self.config.lr, betas=betas),
                "discriminator": torch.optim.Adam(self.discriminator.parameters(), self.config.lr, betas=betas)}

    def translate(self, images: Tensor, direction: str = "AtoB") -> Tensor:
        return self.generator(images)

    def train_step(self, batches: zoo.Batches, progress: zoo.Progress) -> zoo.Metrics:
        cfg = self.config
        batch = batches.next()
        batch = augment.jitter_batch(batch, cfg.jitter, cfg.mirror, paired=True)
        source, target = batch.images, batch.targets
        assert target is not None  # the train pipeline gives pix2pix paired data only
        output = self.generator(source)

        # D judges (input, output) pairs: is this output the real target for this input?
        real_logits = self.discriminator(torch.cat([source, target], dim=1))
        fake_logits = self.discriminator(torch.cat([source, output.detach()], dim=1))
        loss_d = 0.5 * losses.discriminator_loss(cfg.loss, patches(real_logits), patches(fake_logits))
        self.update("discriminator", loss_d)

        with zoo.frozen(self.discriminator):
            loss_gan = losses.generator_loss(cfg.loss, patches(self.discriminator(torch.cat([source, output], dim=1))))
            l1 = F.l1_loss(output, target)
            loss_g = loss_gan + cfg.l1_weight * l1
            self.update("generator", loss_g)
        return {**losses.step_metrics(cfg.loss, loss_d, loss_g, patches(real_logits), patches(fake_logits)),
                "loss_g_gan": loss_gan.detach(), "l1": l1.detach()}


def patches(logits: Tensor) -> Tensor:
    """A PatchGAN's N x 1 x h x w logits as one logit per patch, for the shared losses."""
    return logits.reshape(-1, 1)
