"""The sliced Wasserstein distance between two sets of images on their Laplacian pyramids:
Karras et al.'s (ICLR 2018, section 5) measure of how alike two image distributions are at
each scale, with no network weights (it sees pixels, so a model cannot exploit a feature
extractor's blind spots; it is less tied to what people see than FID).

For each set, each image's Laplacian pyramid is built (a 5-tap binomial filter, levels
halved down to 16 px), and at each level random 7 x 7 neighbourhoods of every image (128
per image, as the paper, or fewer for many images: at most 131,072 in all) become
descriptors, normalised per channel over the whole set. The distance at a level is
the sliced Wasserstein distance between the two sets of descriptors: the mean, over random
unit directions (4 repeats of 128), of the 1-D Wasserstein distance between the sorted
projections. Reported, as in the paper, times 1000: per level (fine detail at the data's
size, coarse shape at 16 px) and averaged. Lower is more alike; two samples of the same
real data give the floor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)
PATCH = 7
"""Side of the neighbourhoods compared (the paper's: 7)."""
PATCHES_PER_IMAGE = 128
DESCRIPTORS = 2 ** 17
"""The most descriptors per set and level: the paper's 16,384 images x 128 patches would take
minutes to sort on a CPU; 131,072 (4,096 images x 32 patches) take seconds."""
DIRECTIONS, REPEATS = 128, 4
SMALLEST = 16
"""The coarsest pyramid level (the paper's: 16 px)."""


def _filter(images: Tensor) -> Tensor:
    c = images.shape[1]
    k = torch.tensor(BINOMIAL, dtype=images.dtype, device=images.device)
    kernel = (k[:, None] * k[None, :] / 256).expand(c, 1, 5, 5).contiguous()
    return F.conv2d(F.pad(images, [2, 2, 2, 2], mode="reflect"), kernel, groups=c)


def pyramid_down(images: Tensor) -> Tensor:
    """Blurred with the 5-tap binomial filter, then every second pixel."""
    return _filter(images)[..., ::2, ::2]


def pyramid_up(images: Tensor, size: tuple[int, int]) -> Tensor:
    """Zeros between pixels up to ``size``, then the filter (times 4, for the zeros)."""
    n, c, h, w = images.shape
    up = images.new_zeros(n, c, size[0], size[1])
    up[..., ::2, ::2] = images
    return _filter(up) * 4


def levels_for(side: int) -> int:
    """How many pyramid levels images of this side get: halved while still 16 px or more."""
    levels = 1
    while side >> levels >= SMALLEST:
        levels += 1
    return levels


def laplacian_pyramid(images: Tensor, levels: int) -> list[Tensor]:
    """Finest first: each level the detail lost by halving, the last the coarse image."""
    pyramid, current = [], images
    for _ in range(levels - 1):
        smaller = pyramid_down(current)
        pyramid.append(current - pyramid_up(smaller, (current.shape[-2], current.shape[-1])))
        current = smaller
    pyramid.append(current)
    return pyramid


def _descriptors(level: Tensor, patches: int, generator: torch.Generator) -> Tensor:
    """``patches`` random 7 x 7 neighbourhoods of every image, flattened: (N * patches) x C*49."""
    n, c, h, w = level.shape
    top = torch.randint(0, h - PATCH + 1, (n, patches), generator=generator)
    left = torch.randint(0, w - PATCH + 1, (n, patches), generator=generator)
    offsets = torch.arange(PATCH)
    rows = (top[..., None] + offsets).to(level.device)  # n x p x 7
    cols = (left[..., None] + offsets).to(level.device)
    image = torch.arange(n, device=level.device)[:, None, None, None]
    # n x p x 7 x 7 x c: each patch's pixels gathered by advanced indexing.
    picked = level.permute(0, 2, 3, 1)[image, rows[..., :, None], cols[..., None, :]]
    return picked.permute(0, 1, 4, 2, 3).reshape(n * patches, c * PATCH * PATCH)


def _normalised(descriptors: Tensor, channels: int) -> Tensor:
    """Each channel's values shifted and scaled to mean 0, std 1 over the whole set."""
    d = descriptors.view(descriptors.shape[0], channels, -1)
    mean = d.mean(dim=(0, 2), keepdim=True)
    std = d.std(dim=(0, 2), keepdim=True).clamp_min(1e-8)
    return ((d - mean) / std).view_as(descriptors)


def sliced_wasserstein(a: Tensor, b: Tensor, generator: torch.Generator, directions: int = DIRECTIONS,
                       repeats: int = REPEATS) -> float:
    """The sliced Wasserstein distance between two equally many descriptors (rows): random
    unit directions, each set projected and sorted, the mean absolute difference."""
    distances = []
    for _ in range(repeats):
        d = torch.randn(a.shape[1], directions, generator=generator).to(a)
        d = d / d.norm(dim=0, keepdim=True)
        pa, _ = (d.T @ a.T).sort(dim=1)  # each direction's projections in a contiguous row: sorts faster
        pb, _ = (d.T @ b.T).sort(dim=1)
        distances.append((pa - pb).abs().mean())
    return float(torch.stack(distances).mean())


def patches_per_image(images: int, budget: int = DESCRIPTORS) -> int:
    """Neighbourhoods taken from each image: the paper's 128, fewer when that many images would
    give more than ``budget`` descriptors (sorting them is the cost on a CPU)."""
    return max(1, min(PATCHES_PER_IMAGE, budget // max(1, images)))


def swd(real: Tensor, fake: Tensor, *, patches: int | None = None, seed: int = 0,
        batch: int = 500) -> dict[int, float]:
    """The distance between two sets of images in [-1, 1] or 8-bit (the same size, equally many used:
    the smaller count), times 1000, by pyramid level: {side in px: distance}, finest first.
    ``patches`` per image: by default :func:`patches_per_image`."""
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"SWD compares images of one shape, got {tuple(real.shape[1:])} and {tuple(fake.shape[1:])}")
    n = min(real.shape[0], fake.shape[0])
    side = min(real.shape[2], real.shape[3])
    if side < PATCH:
        raise ValueError(f"SWD needs images of at least {PATCH} px, got {side}")
    levels = levels_for(side)
    channels = real.shape[1]
    patches = patches or patches_per_image(n)
    descriptors: dict[str, list[list[Tensor]]] = {}
    for name, images in (("real", real[:n]), ("fake", fake[:n])):
        g = torch.Generator().manual_seed(seed)  # the same patch positions for both sets
        per_level: list[list[Tensor]] = [[] for _ in range(levels)]
        for chunk in images.split(batch):
            # 8-bit images (as zoo eval holds samples) become floats a chunk at a time.
            chunk = chunk.float() / 127.5 - 1 if chunk.dtype == torch.uint8 else chunk.float()
            for level, detail in enumerate(laplacian_pyramid(chunk, levels)):
                per_level[level].append(_descriptors(detail, patches, g))
        descriptors[name] = per_level
    result: dict[int, float] = {}
    g = torch.Generator().manual_seed(seed + 1)
    for level in range(levels):
        a = _normalised(torch.cat(descriptors["real"][level]), channels)
        b = _normalised(torch.cat(descriptors["fake"][level]), channels)
        result[side >> level] = 1000 * sliced_wasserstein(a, b, g)
    return result
