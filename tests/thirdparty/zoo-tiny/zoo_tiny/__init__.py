"""A tiny fully-connected GAN (Goodfellow et al. 2014), packaged as a third-party plugin.

It uses nothing of zoo but the public API, and zoo's core knows nothing of it: installing
this package is all it takes for ``zoo list`` to show it and ``zoo train tiny`` to work.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

import zoo


@dataclass
class TinyConfig(zoo.Config):
    batch_size: int = zoo.option(32, "images per batch")
    latent_dim: int = zoo.option(8, "length of z")
    hidden: int = zoo.option(32, "units in each hidden layer")
    lr: float = zoo.option(2e-4, "Adam learning rate")


class TinyGAN(zoo.Model):
    name = "tiny"
    summary = "A two-layer fully-connected GAN (third-party example plugin)"
    paper = "Goodfellow et al. 2014, arXiv:1406.2661"
    family = "GAN"
    Config = TinyConfig
    capabilities = frozenset({zoo.Capability.LATENT})
    tiny_config = {"hidden": 8, "batch_size": 4}

    def __init__(self, config: TinyConfig, spec: zoo.DataSpec) -> None:
        super().__init__(config, spec)
        pixels = spec.channels * spec.height * spec.width
        self.generator = nn.Sequential(nn.Linear(config.latent_dim, config.hidden), nn.ReLU(),
                                       nn.Linear(config.hidden, pixels), nn.Tanh())
        self.discriminator = nn.Sequential(nn.Flatten(), nn.Linear(pixels, config.hidden),
                                           nn.LeakyReLU(0.2), nn.Linear(config.hidden, 1))

    def configure_optimizers(self):
        return {"generator": torch.optim.Adam(self.generator.parameters(), self.config.lr),
                "discriminator": torch.optim.Adam(self.discriminator.parameters(), self.config.lr)}

    def generate(self, z, conditions=None):
        return self.generator(z).view(-1, self.spec.channels, self.spec.height, self.spec.width)

    def train_step(self, batches, progress):
        real = batches.next().images
        fake = self.generate(self.sample_latent(real.shape[0]))
        bce = F.binary_cross_entropy_with_logits

        real_logits, fake_logits = self.discriminator(real), self.discriminator(fake.detach())
        loss_d = (bce(real_logits, torch.ones_like(real_logits))
                  + bce(fake_logits, torch.zeros_like(fake_logits)))
        self.update("discriminator", loss_d)  # zoo's seam: precision, clipping, many GPUs

        fake_logits = self.discriminator(fake)
        loss_g = bce(fake_logits, torch.ones_like(fake_logits))
        self.update("generator", loss_g)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}
