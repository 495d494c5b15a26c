"""A toy plugin that zoo's core knows nothing of: a generator conditioned on an image of
another size (a low-resolution input -> an image twice as large), trained on pairs derived
on the fly from one-domain data. It proves that the generic pipelines carry a non-class
condition and different input and output sizes with no core change.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

import zoo


@dataclass
class ToyConfig(zoo.Config):
    batch_size: int = zoo.option(16, "pairs per batch")
    factor: int = zoo.option(2, "how much larger the output is than the input")
    width: int = zoo.option(8, "channels of the hidden layers")
    lr: float = zoo.option(1e-3, "Adam learning rate")


class ToyUpscaler(zoo.Model):
    name = "toy-upscaler"
    summary = "Doubles an image's size, conditioned on the small image and a noise map"
    family = "test"
    Config = ToyConfig
    capabilities = frozenset({zoo.Capability.IMAGE_TO_IMAGE})
    data_pairing = ("derived",)
    directions = ("AtoB",)
    tiny_config = {"width": 4, "batch_size": 4}

    def __init__(self, config: ToyConfig, spec: zoo.DataSpec) -> None:
        super().__init__(config, spec)
        channels, _, _ = spec.target_shape
        self.generator = nn.Sequential(
            nn.Upsample(scale_factor=config.factor, mode="nearest"),
            nn.Conv2d(spec.channels + 1, config.width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(config.width, channels, 3, padding=1), nn.Tanh())
        self.critic = nn.Sequential(nn.Conv2d(channels, config.width, 4, 2, 1), nn.LeakyReLU(0.2),
                                    nn.Flatten(), nn.LazyLinear(1))
        self.critic(torch.zeros(1, *spec.target_shape))  # materialise the lazy layer

    @classmethod
    def derivation(cls, config: ToyConfig) -> zoo.Derivation:
        return zoo.Derivation(factor=config.factor)

    def configure_optimizers(self):
        return {"generator": torch.optim.Adam(self.generator.parameters(), self.config.lr),
                "critic": torch.optim.Adam(self.critic.parameters(), self.config.lr)}

    def translate(self, images, direction="AtoB"):
        noise = torch.randn(images.shape[0], 1, *images.shape[2:], device=images.device)
        return self.generator(torch.cat([images, noise], dim=1))

    def train_step(self, batches, progress):
        batch = batches.next()
        small, large = batch.images, batch.targets
        assert large.shape[-1] == self.config.factor * small.shape[-1]
        fake = self.translate(small)
        loss_c = F.softplus(-self.critic(large)).mean() + F.softplus(self.critic(fake.detach())).mean()
        self.update("critic", loss_c)
        with zoo.frozen(self.critic):
            loss_g = F.softplus(-self.critic(fake)).mean() + 10 * F.l1_loss(fake, large)
            self.update("generator", loss_g)
        return {"loss_d": loss_c.detach(), "loss_g": loss_g.detach()}
