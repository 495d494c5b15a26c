"""Adversarial losses, shared by every GAN plugin and chosen by config.

A discriminator's output here is its *logits*: one per image for ``bce``, two per image
(fake, real) for the lab's ``cross_entropy``. Targets may be smoothed (real label 0.9,
fake label 0.1, ...); the generator always aims at 1 ("call my images real"), the
non-saturating form of Goodfellow et al.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

LOSSES = ("bce", "cross_entropy")


def logits_per_image(kind: str) -> int:
    """How many numbers a discriminator outputs per image for this loss."""
    return 2 if kind == "cross_entropy" else 1


def _against(kind: str, logits: Tensor, target: float) -> Tensor:
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits.view(-1), torch.full_like(logits.view(-1), target))
    if kind == "cross_entropy":
        probs = torch.tensor([1.0 - target, target], device=logits.device, dtype=logits.dtype)
        return F.cross_entropy(logits, probs.expand(logits.shape[0], 2))
    raise ValueError(f"unknown loss {kind!r}; known: {', '.join(LOSSES)}")


def discriminator_loss(kind: str, real_logits: Tensor, fake_logits: Tensor, *,
                       real_label: float = 1.0, fake_label: float = 0.0) -> Tensor:
    """Real images towards ``real_label``, generated ones towards ``fake_label``."""
    return _against(kind, real_logits, real_label) + _against(kind, fake_logits, fake_label)


def generator_loss(kind: str, fake_logits: Tensor) -> Tensor:
    """The generator wants its images called real."""
    return _against(kind, fake_logits, 1.0)


def real_probability(kind: str, logits: Tensor) -> Tensor:
    """D's belief that each image is real, in [0, 1]: D(x) and D(G(z)) in the logs."""
    if kind == "cross_entropy":
        return logits.softmax(dim=1)[:, 1]
    return torch.sigmoid(logits.view(-1))


def step_metrics(kind: str, loss_d: Tensor, loss_g: Tensor, real_logits: Tensor,
                 fake_logits: Tensor) -> dict[str, Tensor]:
    """What a GAN step reports: both losses, D(x) and D(G(z)) (mean beliefs that images are real)."""
    return {
        "loss_d": loss_d.detach(),
        "loss_g": loss_g.detach(),
        "d_real": real_probability(kind, real_logits.detach()).mean(),
        "d_fake": real_probability(kind, fake_logits.detach()).mean(),
    }
