"""Image similarity: MSE, PSNR and SSIM, differentiable, with nothing to download.

Images are compared in [0, 1] (converted from zoo's [-1, 1]); every function returns one
value per image. SSIM is Wang et al.'s (2004): an 11 x 11 Gaussian window with sigma 1.5,
K1 = 0.01, K2 = 0.03, averaged over channels and positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _unit(images: Tensor) -> Tensor:
    return (images + 1) / 2


def mse(a: Tensor, b: Tensor) -> Tensor:
    """Mean squared error per image, in [0, 1] units."""
    return (_unit(a) - _unit(b)).pow(2).flatten(1).mean(1)


def psnr(a: Tensor, b: Tensor) -> Tensor:
    """Peak signal-to-noise ratio per image, in dB (peak 1)."""
    return -10 * torch.log10(mse(a, b).clamp_min(1e-10))


def ssim(a: Tensor, b: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Structural similarity per image, in [-1, 1] (1: identical)."""
    x, y = _unit(a), _unit(b)
    channels = x.shape[1]
    size = min(window, x.shape[2], x.shape[3])
    coords = torch.arange(size, dtype=x.dtype, device=x.device) - (size - 1) / 2
    g = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(t, kernel, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    score = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return score.flatten(1).mean(1)


def spread(images: Tensor, pairs: int | None = 2000, seed: int = 0) -> float:
    """Mean pixel distance between two different images of a set: every pair, or ``pairs``
    random ones (seeded) when there are more than that."""
    x = images.flatten(1).float()
    n = x.shape[0]
    if n < 2:
        return 0.0
    if pairs is None or n * (n - 1) // 2 <= pairs:
        a, b = torch.triu_indices(n, n, offset=1)
    else:
        a, b = torch.randint(n, (2, pairs), generator=torch.Generator().manual_seed(seed))
        keep = a != b
        a, b = a[keep], b[keep]
    return float((x[a] - x[b]).norm(dim=1).mean())


def diversity(images: Tensor, reference: Tensor, pairs: int | None = 2000, seed: int = 0) -> float:
    """How varied generated images are next to real ones of the same kind: the ratio of
    their :func:`spread`. About 1 is as varied as the data; near 0 is a collapsed mode."""
    return spread(images, pairs, seed) / max(spread(reference, pairs, seed), 1e-12)
