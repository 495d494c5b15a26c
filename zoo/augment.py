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

**Adaptive discriminator augmentation** (ADA): Karras et al., "Training Generative Adversarial
Networks with Limited Data", NeurIPS 2020 (arXiv:2006.06676). Each image the discriminator
sees, real or generated, goes through a pipeline of geometric and colour operations, each
applied with probability p (:class:`AdaptiveAugment`). Because every operation is applied
with p < 1 and can be told apart from its inverse, the generator cannot satisfy the
discriminator by drawing augmented images: the augmentations do not leak into the samples
as long as p stays below about 0.8 (the paper's finding). p is not fixed but follows how
much the discriminator overfits: r_t = E[sign(D(x_real))] over the last few steps, near 0
when D cannot tell the training images from the samples and near 1 when it knows them by
heart. Every ``interval`` steps p moves towards r_t = ``target`` (0.6), fast enough to go
from 0 to 1 in ``kimg`` thousand images. DiffAugment (above) is fixed and cheap; ADA sets
its own strength, so it neither hurts a large data set (p stays near 0) nor under-protects
a tiny one.

Every random draw here comes from torch's global generator of the images' device, which the
train pipeline saves in each checkpoint: a resumed run draws what an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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


ADAPTIVE = "ada"
"""The policy that turns on adaptive augmentation (:class:`AdaptiveAugment`) instead."""


def is_adaptive(policy: str) -> bool:
    return ADAPTIVE in [part.strip() for part in policy.split(",")]


def parse(policy: str) -> list[Callable[[Tensor], Tensor]]:
    """The operations of a policy such as "translation,cutout"; "" is none; "ada" is adaptive
    augmentation, which :class:`AdaptiveAugment` applies, alone."""
    names = [part.strip() for part in policy.split(",") if part.strip()]
    if ADAPTIVE in names:
        if len(names) > 1:
            raise UsageError(f"augment=ada sets its own operations and strength: give it alone, not with "
                             f"{', '.join(n for n in names if n != ADAPTIVE)}")
        return []
    unknown = [name for name in names if name not in OPERATIONS]
    if unknown:
        raise UsageError(f"augment: unknown operation {unknown[0]!r}; use a comma list of "
                         f"{', '.join(OPERATIONS)} (e.g. augment=translation,cutout), or ada alone")
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


# -- adaptive discriminator augmentation (ADA) ----------------------------------------------------

ADA_TRANSLATE = 0.125
"""Largest integer translation, and the std of the fractional one, as a share of the image size."""
ADA_SCALE_STD = 0.2
"""Std of log2 of the isotropic and anisotropic scalings."""
ADA_BRIGHTNESS_STD, ADA_CONTRAST_STD, ADA_SATURATION_STD = 0.2, 0.5, 1.0
"""Brightness is added (N(0, 0.2)); contrast and saturation multiply by 2^N(0, std)."""
LUMA = torch.tensor([1.0, 1.0, 1.0]) / 3 ** 0.5
"""The grey axis of RGB, about which colour images are flipped and their hue rotated."""


def _chosen(n: int, p: Tensor) -> Tensor:
    """Which of ``n`` images an operation of probability ``p`` (a 0-d tensor) applies to, as 0/1."""
    return (torch.rand(n, device=p.device) < p).to(torch.float32)


def _rotation(theta: Tensor) -> Tensor:
    cos, sin, zero, one = theta.cos(), theta.sin(), torch.zeros_like(theta), torch.ones_like(theta)
    return torch.stack([torch.stack([cos, -sin, zero], -1), torch.stack([sin, cos, zero], -1),
                        torch.stack([zero, zero, one], -1)], -2)


def _scaling(sx: Tensor, sy: Tensor) -> Tensor:
    zero, one = torch.zeros_like(sx), torch.ones_like(sx)
    return torch.stack([torch.stack([sx, zero, zero], -1), torch.stack([zero, sy, zero], -1),
                        torch.stack([zero, zero, one], -1)], -2)


def _translation(tx: Tensor, ty: Tensor) -> Tensor:
    zero, one = torch.zeros_like(tx), torch.ones_like(tx)
    return torch.stack([torch.stack([one, zero, tx], -1), torch.stack([zero, one, ty], -1),
                        torch.stack([zero, zero, one], -1)], -2)


def geometric_matrices(n: int, p: Tensor, height: int, width: int) -> Tensor:
    """N x 3 x 3 maps from each output pixel to where it samples its input (coordinates in
    [-1, 1]): ADA's x-flip, 90-degree rotation, integer translation, isotropic scaling,
    rotation, anisotropic scaling, rotation and fractional translation, each applied to an
    image with probability p (the rotations with 1 - sqrt(1 - p) each, so that at least one
    happens with p)."""
    device = p.device
    m = torch.eye(3, device=device).expand(n, 3, 3)
    flip = 1 - 2 * torch.randint(0, 2, (n,), device=device) * _chosen(n, p)
    m = m @ _scaling(flip, torch.ones_like(flip))
    quarter = torch.randint(0, 4, (n,), device=device) * _chosen(n, p)
    m = m @ _rotation(quarter * (torch.pi / 2))
    chosen = _chosen(n, p)
    shift = ((torch.rand(2, n, device=device) * 2 - 1) * ADA_TRANSLATE * chosen)
    shift = torch.stack([torch.round(shift[0] * width) * 2 / width, torch.round(shift[1] * height) * 2 / height])
    m = m @ _translation(shift[0], shift[1])
    scale = torch.exp2(torch.randn(n, device=device) * ADA_SCALE_STD * _chosen(n, p))
    m = m @ _scaling(scale, scale)
    p_rotation = 1 - torch.sqrt((1 - p).clamp(min=0))
    m = m @ _rotation((torch.rand(n, device=device) * 2 - 1) * torch.pi * _chosen(n, p_rotation))
    aniso = torch.exp2(torch.randn(n, device=device) * ADA_SCALE_STD * _chosen(n, p))
    m = m @ _scaling(aniso, 1 / aniso)
    m = m @ _rotation((torch.rand(n, device=device) * 2 - 1) * torch.pi * _chosen(n, p_rotation))
    fraction = torch.randn(2, n, device=device) * ADA_TRANSLATE * 2 * _chosen(n, p)
    return m @ _translation(fraction[0], fraction[1])


def ada_geometric(images: Tensor, p: Tensor) -> Tensor:
    """``images`` resampled through :func:`geometric_matrices` (bilinear, the borders
    reflected, as ADA pads them), differentiably with respect to the images."""
    n, _, h, w = images.shape
    matrices = geometric_matrices(n, p, h, w)[:, :2].to(images.dtype)
    grid = F.affine_grid(matrices, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def ada_color(images: Tensor, p: Tensor) -> Tensor:
    """ADA's colour operations on images in [-1, 1], each with probability p: brightness
    (+N(0, 0.2)), contrast (x 2^N(0, 0.5), about 0); for colour images also a flip about the
    grey axis, a rotation of hue about it and saturation (x 2^N(0, 1), away from it)."""
    n, c = images.shape[:2]
    device, dtype = images.device, images.dtype
    brightness = torch.randn(n, device=device) * ADA_BRIGHTNESS_STD * _chosen(n, p)
    contrast = torch.exp2(torch.randn(n, device=device) * ADA_CONTRAST_STD * _chosen(n, p))
    if c != 3:
        return (images * contrast.view(n, 1, 1, 1) + brightness.view(n, 1, 1, 1)).to(dtype)
    v = LUMA.to(device)
    outer = torch.outer(v, v)
    eye = torch.eye(3, device=device)
    flip = torch.randint(0, 2, (n,), device=device) * _chosen(n, p)
    m = eye - 2 * outer * flip.view(n, 1, 1)
    theta = (torch.rand(n, device=device) * 2 - 1) * torch.pi * _chosen(n, p)
    cross = torch.tensor([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]], device=device)
    hue = (outer + (eye - outer) * theta.cos().view(n, 1, 1) + cross * theta.sin().view(n, 1, 1))
    saturation = torch.exp2(torch.randn(n, device=device) * ADA_SATURATION_STD * _chosen(n, p))
    sat = outer + (eye - outer) * saturation.view(n, 1, 1)
    m = contrast.view(n, 1, 1) * (sat @ hue @ m)
    out = torch.einsum("nij,njhw->nihw", m.to(dtype), images) + brightness.view(n, 1, 1, 1).to(dtype)
    return out


class AdaptiveAugment(nn.Module):
    """ADA's augmentation pipeline and the controller of its probability p (buffers, so p and
    the controller's running sums are saved in every checkpoint and a resumed run goes on
    exactly). Call it on every batch the discriminator sees; call :meth:`observe` with D's
    scores of each real batch it trained on. Nothing here reads a value back to the host."""

    p: Tensor
    signs: Tensor
    observed: Tensor
    overfitting: Tensor

    def __init__(self, target: float = 0.6, interval: int = 4, kimg: float = 100.0) -> None:
        super().__init__()
        self.target, self.interval, self.kimg = target, interval, kimg
        self.register_buffer("p", torch.zeros(()))
        self.register_buffer("signs", torch.zeros(2))
        """Sum of sign(D(x)) over the real images seen since p last moved, and their count."""
        self.register_buffer("observed", torch.zeros((), dtype=torch.long))
        self.register_buffer("overfitting", torch.zeros(()))
        """r_t at the last adjustment."""

    def forward(self, images: Tensor) -> Tensor:
        if images.device.type == "cpu" and not torch.compiler.is_compiling() and self.p.item() == 0:
            return images  # nothing would change; on a CPU, reading p costs no wait
        return ada_color(ada_geometric(images, self.p), self.p)

    @torch.no_grad()
    def observe(self, real_scores: Tensor) -> None:
        """Count the signs of D's scores of real images; every ``interval`` calls, move p by
        sign(r_t - target) x images counted / (kimg x 1000), within [0, 1]."""
        self.signs += torch.stack([real_scores.sign().sum(), torch.tensor(float(real_scores.numel()),
                                                                          device=real_scores.device)])
        self.observed += 1
        due = (self.observed % self.interval == 0).to(self.p.dtype)
        signs = self.signs
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            signs = signs.clone()
            torch.distributed.all_reduce(signs)  # one r_t, so one p, for every process
        r_t = signs[0] / signs[1].clamp(min=1)
        move = torch.sign(r_t - self.target) * signs[1] / (self.kimg * 1000)
        self.p.copy_(torch.where(due > 0, (self.p + move).clamp(0, 1), self.p))
        self.overfitting.copy_(torch.where(due > 0, r_t, self.overfitting))
        self.signs.mul_(1 - due)
