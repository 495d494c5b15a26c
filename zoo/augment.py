"""Differentiable augmentation: Zhao et al., "Differentiable Augmentation for Data-Efficient
GAN Training", NeurIPS 2020 (arXiv:2006.10738).

A discriminator trained on a few hundred images learns them by heart; its verdicts stop
meaning anything and the generator collapses. Shown the same random translations and
cutouts of real *and* generated images, it cannot memorise, and because every operation
here is differentiable the generator still learns through it. The generator never sees
augmented data as a target, so its samples are not shifted or cut out.

A policy is a comma list of operations, applied in the order given:

* ``translation``: shift each image by up to 1/8 of its size, edges repeated;
* ``cutout``: blank a random square half the image's size (to 0, the middle of [-1, 1]);
* ``color``: random brightness, contrast and, for colour images, saturation.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .errors import UsageError

TRANSLATION_RATIO, CUTOUT_RATIO = 0.125, 0.5


def translation(x: Tensor) -> Tensor:
    """Each image shifted by its own whole number of pixels, up to 1/8 of its size each way;
    the pixels that come in repeat the edge (the background, for digits)."""
    n, c, h, w = x.shape
    reach_y, reach_x = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    dy = torch.randint(-reach_y, reach_y + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-reach_x, reach_x + 1, (n, 1, 1), device=x.device)
    rows = (torch.arange(h, device=x.device)[None, :, None] + dy).clamp(0, h - 1)
    cols = (torch.arange(w, device=x.device)[None, None, :] + dx).clamp(0, w - 1)
    index = (rows * w + cols).view(n, 1, h * w).expand(n, c, h * w)
    return x.reshape(n, c, h * w).gather(2, index).view(n, c, h, w)


def cutout(x: Tensor) -> Tensor:
    """Each image with a square of half its size set to 0, its centre anywhere on the image
    (a square near an edge is cut by it)."""
    n, _, h, w = x.shape
    size_y, size_x = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    top = torch.randint(0, h, (n, 1, 1), device=x.device) - size_y // 2
    left = torch.randint(0, w, (n, 1, 1), device=x.device) - size_x // 2
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = (ys >= top) & (ys < top + size_y) & (xs >= left) & (xs < left + size_x)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def color(x: Tensor) -> Tensor:
    """Random brightness (+-0.5), saturation (x0..2, colour only) and contrast (x0.5..1.5)."""
    n = x.shape[0]
    x = x + (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
    if x.shape[1] > 1:
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


OPERATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "translation": translation, "cutout": cutout, "color": color}


def parse(policy: str) -> list[Callable[[Tensor], Tensor]]:
    """The operations of a policy such as "translation,cutout"; "" is none."""
    names = [part.strip() for part in policy.split(",") if part.strip()]
    unknown = [name for name in names if name not in OPERATIONS]
    if unknown:
        raise UsageError(f"augment: unknown operation {unknown[0]!r}; use a comma list of "
                         f"{', '.join(OPERATIONS)} (e.g. augment=translation,cutout)")
    return [OPERATIONS[name] for name in names]


def augment(images: Tensor, policy: str) -> Tensor:
    """``images`` through every operation of ``policy``, each image drawn its own way."""
    for operation in parse(policy):
        images = operation(images)
    return images
