"""CycleGAN: Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks", ICCV 2017 (arXiv:1703.10593).

Learns translations both ways between two domains from images that are *not* paired
(horse <-> zebra, photo <-> Monet in seed 004; seed 003's Monet data comes from the same
competition). Two generators, G: A -> B and F: B -> A, and two discriminators, D_B on B
and D_A on A:

* **Generators**: Johnson et al.'s ResNet: a 7x7 convolution, two stride-2 downsamplings,
  residual blocks (9 at 256 px and up, 6 below: the paper's rule), two upsamplings and a
  7x7 convolution to tanh; instance norm and reflection padding throughout.
* **Discriminators**: pix2pix's PatchGAN with instance norm.
* **Objective**: least-squares GAN losses (the paper's (D(G(x)) - 1)^2 for the
  generators), plus 10 x the cycle losses ||F(G(a)) - a||_1 + ||G(F(b)) - b||_1, plus
  0.5 x 10 x the identity losses ||G(b) - b||_1 + ||F(a) - a||_1 that keep colours.
  Each discriminator learns from a pool of the last 50 generated images (Shrivastava et
  al.), half the time from an older one, so that it does not chase the generator.
* **Schedule**: Adam(2e-4, betas 0.5 / 0.999), the learning rate constant for the first
  half of training and then falling linearly to zero (the paper's 100 + 100 epochs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import zoo
from zoo import augment, losses
from zoo.config import option
from zoo.plugins.pix2pix import patch_discriminator, patch_layers, patches, smallest_patch_input

LSGAN_SCALE = 2.0
"""zoo.losses' least-squares generator loss is Mao et al.'s 1/2 (D - 1)^2; CycleGAN's is (D - 1)^2."""


@dataclass
class CycleGANConfig(zoo.Config):
    batch_size: int = option(8, "images of each domain per batch (the paper: 1; instance norm "
                                "makes the batch size free)")
    g_width: int = option(64, "channels of the generators' first layer")
    d_width: int = option(64, "channels of the discriminators' first layer")
    res_blocks: int | None = option(None, "residual blocks per generator (default: 9 at 256 px, 6 below)")
    d_layers: int | None = option(None, "stride-2 layers of each PatchGAN (default: 3 at 128 px and up, 2 below)")
    cycle_weight: float = option(10.0, "lambda: weight of each cycle-consistency loss")
    identity_weight: float = option(0.5, "weight of the identity losses, relative to cycle_weight; 0 = off")
    pool_size: int = option(50, "generated images each discriminator remembers; 0 = no pool")
    decay_start: float = option(0.5, "fraction of training after which the learning rate falls linearly to 0")
    jitter: float | None = option(None, "random jitter: enlarge each image this many times, then crop it back at a "
                                        "random place (the paper: 286/256 = 1.117); 0 = off. Default: the paper's "
                                        "for images of 64 px and up, off below (the 28-32 px built-in sets are "
                                        "centred items a pixel or two from the border)")
    mirror: bool | None = option(None, "flip each image left to right half the time, each domain on its own (the "
                                       "paper). Default: on for images of 64 px and up, off below (digits and "
                                       "Fashion-MNIST items all face one way)")
    lr: float = option(2e-4, "Adam learning rate, all networks")
    beta1: float = option(0.5, "Adam beta1")
    beta2: float = option(0.999, "Adam beta2")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.at_least(1, "g_width", "d_width")
        self.not_negative("cycle_weight", "identity_weight", "pool_size", "res_blocks")
        if self.d_layers is not None and not 1 <= self.d_layers <= 5:
            raise zoo.UsageError(f"d_layers must be 1 to 5, got {self.d_layers}")
        if not 0.0 <= self.decay_start <= 1.0:
            raise zoo.UsageError(f"decay_start must be within [0, 1], got {self.decay_start}")
        augment.check_jitter(self.jitter)
        self.positive("lr")
        self.below_one("beta1", "beta2")


# -- networks ---------------------------------------------------------------------------------

def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=False), _norm(channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=False), _norm(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def resnet_generator(in_channels: int, out_channels: int, width: int, blocks: int) -> nn.Sequential:
    """c7s1-w, d2w, d4w, R4w x blocks, u2w, uw, c7s1-out (Johnson et al.'s notation)."""
    layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7, bias=False),
                               _norm(width), nn.ReLU(True)]
    c = width
    for _ in range(2):
        layers += [nn.Conv2d(c, 2 * c, 3, 2, 1, bias=False), _norm(2 * c), nn.ReLU(True)]
        c *= 2
    layers += [ResidualBlock(c) for _ in range(blocks)]
    for _ in range(2):
        layers += [nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1, bias=False), _norm(c // 2), nn.ReLU(True)]
        c //= 2
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(c, out_channels, 7), nn.Tanh()]
    return nn.Sequential(*layers)


class ImagePool:
    """The last ``size`` generated images; a query returns, for each new image, either it
    or (half the time, once the pool is full) an older one, which the new one replaces."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: Tensor | None = None

    def query(self, images: Tensor) -> Tensor:
        """Detached images, pooled or not: the discriminators' update must not reach the
        generators' graph, which their own update has already used and freed."""
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for image in images:
            stored = 0 if self.images is None else len(self.images)
            if stored < self.size:
                self.images = image[None] if self.images is None else torch.cat([self.images, image[None]])
                out.append(image)
            elif torch.rand(()) < 0.5:
                assert self.images is not None  # the pool is full
                i = int(torch.randint(stored, ()))
                out.append(self.images[i].clone())
                self.images[i] = image
            else:
                out.append(image)
        return torch.stack(out)


# -- the model --------------------------------------------------------------------------------

class CycleGAN(zoo.Model):
    name = "cyclegan"
    summary = "Unpaired translation both ways: two ResNet generators, two PatchGANs, cycle and identity losses"
    paper = "Zhu et al. 2017, arXiv:1703.10593"
    family = "GAN"
    version = "1"
    Config = CycleGANConfig
    capabilities = frozenset({zoo.Capability.IMAGE_TO_IMAGE})
    data_pairing = ("unpaired", "paired")
    directions = ("AtoB", "BtoA")
    tiny_config = {"g_width": 4, "d_width": 4, "batch_size": 4, "res_blocks": 1, "pool_size": 3}

    config: CycleGANConfig

    def __init__(self, config: CycleGANConfig, spec: zoo.DataSpec) -> None:
        super().__init__(config, spec)
        c = spec.channels
        blocks = (config.res_blocks if config.res_blocks is not None
                  else (9 if min(spec.height, spec.width) >= 256 else 6))
        layers = patch_layers(config.d_layers, spec.height, spec.width)
        self.generator_ab = resnet_generator(c, c, config.g_width, blocks)
        self.generator_ba = resnet_generator(c, c, config.g_width, blocks)
        self.discriminator_a = patch_discriminator(c, config.d_width, layers, _norm)
        self.discriminator_b = patch_discriminator(c, config.d_width, layers, _norm)
        zoo.init_normal(self)
        self.pool_a, self.pool_b = ImagePool(config.pool_size), ImagePool(config.pool_size)

    @classmethod
    def check_data(cls, config: CycleGANConfig, spec: zoo.DataSpec) -> None:
        if spec.target_channels and spec.target_channels != spec.channels:
            raise zoo.UsageError(f"cyclegan needs the same channels in both domains, the data has "
                                 f"{spec.channels} and {spec.target_channels}; prep it with --channels 3")
        if spec.height % 4 or spec.width % 4:
            raise zoo.UsageError(f"cyclegan's generators halve the image twice: its sides must divide by 4, "
                                 f"the data is {spec.height}x{spec.width}; prep it with --size 32 (or 64, 128, ...)")
        layers = patch_layers(config.d_layers, spec.height, spec.width)
        if min(spec.height, spec.width) < smallest_patch_input(layers):
            raise zoo.UsageError(f"a PatchGAN of {layers} layers needs images of at least "
                                 f"{smallest_patch_input(layers)} px; the data is {spec.height}x{spec.width}")

    def training_only(self) -> tuple[str, ...]:
        # The image pools are extra state (generated images the discriminators learn from).
        return ("discriminator_a", "discriminator_b", "pool_a", "pool_b")

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        cfg = self.config
        betas = (cfg.beta1, cfg.beta2)
        generators = [*self.generator_ab.parameters(), *self.generator_ba.parameters()]
        discriminators = [*self.discriminator_a.parameters(), *self.discriminator_b.parameters()]
        return {"generators": torch.optim.Adam(generators, cfg.lr, betas=betas),
                "discriminators": torch.optim.Adam(discriminators, cfg.lr, betas=betas)}

    def translate(self, images: Tensor, direction: str = "AtoB") -> Tensor:
        return (self.generator_ab if direction == "AtoB" else self.generator_ba)(images)

    def learning_rate(self, fraction: float) -> float:
        """Constant until ``decay_start``, then linearly down to 0 at the end of training."""
        start = self.config.decay_start
        if fraction <= start or start >= 1.0:
            return self.config.lr
        return self.config.lr * max(0.0, (1.0 - fraction) / (1.0 - start))

    def train_step(self, batches: zoo.Batches, progress: zoo.Progress) -> zoo.Metrics:
        cfg = self.config
        lr = self.learning_rate(progress.fraction)
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = lr
        batch = batches.next()
        batch = augment.jitter_batch(batch, cfg.jitter, cfg.mirror, paired=False)
        real_a, real_b = batch.images, batch.targets
        assert real_b is not None  # the train pipeline gives cyclegan two-domain data only

        # Generators: fool both discriminators, and come back to where each image started.
        fake_b = self.generator_ab(real_a)
        fake_a = self.generator_ba(real_b)
        with zoo.frozen(self.discriminator_a), zoo.frozen(self.discriminator_b):
            adversarial = LSGAN_SCALE * (
                losses.generator_loss("lsgan", patches(self.discriminator_b(fake_b)))
                + losses.generator_loss("lsgan", patches(self.discriminator_a(fake_a))))
            cycle = F.l1_loss(self.generator_ba(fake_b), real_a) + F.l1_loss(self.generator_ab(fake_a), real_b)
            loss_g = adversarial + cfg.cycle_weight * cycle
            identity = torch.zeros((), device=real_a.device)
            if cfg.identity_weight > 0:
                identity = F.l1_loss(self.generator_ab(real_b), real_b) + F.l1_loss(self.generator_ba(real_a), real_a)
                loss_g = loss_g + cfg.cycle_weight * cfg.identity_weight * identity
            self.update("generators", loss_g)

        # Discriminators: real images of their domain against generated ones from the pools.
        real_logits_b = self.discriminator_b(real_b)
        fake_logits_b = self.discriminator_b(self.pool_b.query(fake_b))
        real_logits_a = self.discriminator_a(real_a)
        fake_logits_a = self.discriminator_a(self.pool_a.query(fake_a))
        loss_d_b = losses.discriminator_loss("lsgan", patches(real_logits_b), patches(fake_logits_b))
        loss_d_a = losses.discriminator_loss("lsgan", patches(real_logits_a), patches(fake_logits_a))
        self.update("discriminators", loss_d_a + loss_d_b)

        return {"loss_g": loss_g.detach(), "loss_d_a": loss_d_a.detach(), "loss_d_b": loss_d_b.detach(),
                "loss_g_gan": adversarial.detach(), "cycle": cycle.detach() / 2, "identity": identity.detach() / 2,
                "critic_real": 0.5 * (real_logits_a.mean() + real_logits_b.mean()).detach(),
                "critic_fake": 0.5 * (fake_logits_a.mean() + fake_logits_b.mean()).detach(), "lr": lr}

    @torch.no_grad()
    def preview(self, inputs: Mapping[str, Tensor]) -> Tensor:
        """Both cycles, a row per example: A | G(A) | F(G(A)), then B | F(B) | G(F(B))."""
        a, b = inputs["images"], inputs["targets"]
        with zoo.evaluating(self):
            to_b, to_a = self.generator_ab(a), self.generator_ba(b)
            rows_a = zoo.image_rows(a, to_b, self.generator_ba(to_b))
            rows_b = zoo.image_rows(b, to_a, self.generator_ab(to_a))
        return torch.cat([rows_a, rows_b])

    def preview_labels(self, inputs: Mapping[str, Tensor]) -> tuple[list[str] | None, list[str] | None]:
        """The columns of both cycles, each row named by its way round (horse -> zebra)."""
        a, b = self.spec.domains or ("A", "B")
        ways = [f"{a} -> {b}"] * len(inputs["images"]) + [f"{b} -> {a}"] * len(inputs["targets"])
        return ["real", "translated", "cycled back"], ways

    def extra_state(self) -> dict[str, Any]:
        return {name: pool.images for name, pool in (("pool_a", self.pool_a), ("pool_b", self.pool_b))
                if pool.images is not None}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        device = self.device
        self.pool_a.images = state["pool_a"].to(device) if "pool_a" in state else None
        self.pool_b.images = state["pool_b"].to(device) if "pool_b" in state else None
