"""Augmentation of the images a GAN learns from, of two kinds.

**Differentiable augmentation**: Zhao et al., "Differentiable Augmentation for Data-Efficient
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

**Random jitter and mirroring**: pix2pix (Isola et al. 2017, training details) enlarges each
training image from 256 to 286 px, crops it back to 256 px at a random place, and flips it
left to right half the time; CycleGAN (Zhu et al. 2017) does the same. Both generator and
discriminator see the changed images, so a few hundred pairs go further.
A pair keeps its alignment: input and target get the same crop and flip
(:func:`jitter_batch`).

Every random draw here comes from torch's global generator of the images' device, which the
train pipeline saves in each checkpoint: a resumed run draws what an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.errors import UsageError

if TYPE_CHECKING:
    from zoo.spec import Batch

TRANSLATION_RATIO, CUTOUT_RATIO = 0.125, 0.5
PAPER_JITTER = 286 / 256
"""pix2pix's and CycleGAN's enlargement before the random crop: 256 px -> 286 px."""
MAX_JITTER = 2.0
AUTO_SIZE = 64
"""Shorter image side from which jitter and mirroring are on by default (see :func:`resolve`)."""


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


# -- random jitter and mirroring (pix2pix, CycleGAN) ----------------------------------------------

def check_jitter(scale: float | None) -> None:
    """Refuse a jitter that is neither 0 (off), None (automatic) nor an enlargement from 1 to 2."""
    if scale is not None and scale != 0 and not 1 <= scale <= MAX_JITTER:
        raise UsageError(f"jitter must be 0 (off) or an enlargement factor from 1 to {MAX_JITTER:g} "
                         f"(the papers': 286/256 = {PAPER_JITTER}), got {scale}")


def resolve(scale: float | None, mirror: bool | None, height: int, width: int) -> tuple[float, bool]:
    """The jitter and mirroring to use for images of this size; None means automatic: the
    papers' (286/256 and flips) when the shorter side is at least :data:`AUTO_SIZE` px (photos
    such as facades, maps or horse2zebra, which zoo prepares at 64 px unless told otherwise),
    off below. The built-in sets are 28 and 32 px digits and Fashion-MNIST items: centred,
    all facing one way (a mirrored digit is no digit, and a CycleGAN discriminator shown
    mirrored eights as real lets its generator draw them), with the edge of the item a pixel
    or two from the border, so a crop of a 12% enlargement cuts into it at a scale their
    held-out inputs never have."""
    large = min(height, width) >= AUTO_SIZE
    return (PAPER_JITTER if large else 0.0) if scale is None else scale, large if mirror is None else mirror


def jitter(images: Tensor, scale: float, mirror: bool) -> Tensor:
    """Each image enlarged ``scale`` times (bilinear, so values stay within [-1, 1]), cropped
    back to its size at a random place of its own, and, with ``mirror``, flipped left to
    right half the time. ``scale`` 0 or 1 without ``mirror`` returns ``images`` and draws
    nothing from the random generator, so runs without jitter are what they always were."""
    n, c, h, w = images.shape
    big_h, big_w = (round(h * scale), round(w * scale)) if scale > 1 else (h, w)
    if (big_h, big_w) == (h, w) and not mirror:
        return images
    if (big_h, big_w) != (h, w):
        images = F.interpolate(images, size=(big_h, big_w), mode="bilinear", align_corners=False)
    device = images.device
    top = torch.randint(0, big_h - h + 1, (n, 1, 1), device=device)
    left = torch.randint(0, big_w - w + 1, (n, 1, 1), device=device)
    cols = torch.arange(w, device=device)[None, None, :].expand(n, 1, w)
    if mirror:
        cols = torch.where(torch.rand(n, 1, 1, device=device) < 0.5, w - 1 - cols, cols)
    rows = torch.arange(h, device=device)[None, :, None] + top
    index = (rows * big_w + cols + left).view(n, 1, h * w).expand(n, c, h * w)
    return images.reshape(n, c, big_h * big_w).gather(2, index).view(n, c, h, w)


def jitter_batch(batch: Batch, scale: float | None, mirror: bool | None, *, paired: bool) -> Batch:
    """The batch's two domains through :func:`jitter`, with a plugin's config values (None:
    automatic, see :func:`resolve`). ``paired``: each image and its target, of the same height
    and width, get the same crop and flip (they are cropped as one stack of channels), so the
    pair stays aligned; otherwise each image of either domain gets its own."""
    images, targets = batch.images, batch.targets
    assert targets is not None, "jitter_batch takes two-domain batches"
    scale, mirror = resolve(scale, mirror, images.shape[2], images.shape[3])
    if paired:
        both = jitter(torch.cat([images, targets], dim=1), scale, mirror)
        images, targets = both[:, :images.shape[1]], both[:, images.shape[1]:]
    else:
        images, targets = jitter(images, scale, mirror), jitter(targets, scale, mirror)
    return dataclasses.replace(batch, images=images, targets=targets)
