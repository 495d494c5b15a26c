"""Image metrics: similarity of two images (MSE, PSNR, SSIM), and of two sets of images in a
feature space (Frechet and kernel distances, precision/recall, density/coverage, the
memorisation check, classifier score, class accuracy). Nothing to download.

Images are compared in [0, 1] (converted from zoo's [-1, 1]); every function returns one
value per image. SSIM is Wang et al.'s (2004): an 11 x 11 Gaussian window with sigma 1.5,
K1 = 0.01, K2 = 0.03, averaged over channels and positions; MS-SSIM its multi-scale form
(Wang, Simoncelli & Bovik 2003); PSNR and SSIM on the Y channel with the border cropped,
as super-resolution is measured. The sliced Wasserstein distance on Laplacian pyramids,
Karras et al.'s own, is in :mod:`zoo.measure.swd`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

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


def _ssim_maps(x: Tensor, y: Tensor, window: int, sigma: float) -> tuple[Tensor, Tensor]:
    """SSIM's luminance and contrast-structure terms at each position, for images in [0, 1]."""
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
    return (2 * mu_x * mu_y + c1) / (mu_x ** 2 + mu_y ** 2 + c1), (2 * cov + c2) / (var_x + var_y + c2)


def ssim(a: Tensor, b: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Structural similarity per image, in [-1, 1] (1: identical)."""
    luminance, contrast_structure = _ssim_maps(_unit(a), _unit(b), window, sigma)
    return (luminance * contrast_structure).flatten(1).mean(1)


MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Wang, Simoncelli & Bovik's (2003) weights of the five scales, finest first."""
MS_SSIM_SMALL_WINDOW = 7


def ms_ssim_scales(side: int) -> tuple[int, int]:
    """(scales, window) for images of this side: the standard 5 scales and 11 px window
    where they fit (176 px and up); for smaller images a 7 px window (its Gaussian's sigma
    scaled with it, 0.95) and as many scales as keep the coarsest at least 7 px (32 px: 3
    scales), the weights renormalised."""
    if side >> 4 >= 11:
        return 5, 11
    scales = 1
    while scales < 5 and side >> scales >= MS_SSIM_SMALL_WINDOW:
        scales += 1
    return scales, min(MS_SSIM_SMALL_WINDOW, side)


def ms_ssim(a: Tensor, b: Tensor) -> Tensor:
    """Multi-scale SSIM per image pair, in [0, 1] (1: identical): the contrast-structure term at
    each scale and the luminance at the coarsest, weighted as Wang et al. (2003), the images
    halved by 2 x 2 averaging between scales (:func:`ms_ssim_scales` says how many)."""
    x, y = _unit(a.float()), _unit(b.float())
    scales, window = ms_ssim_scales(min(x.shape[2], x.shape[3]))
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales], dtype=x.dtype, device=x.device)
    weights = weights / weights.sum()
    score = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
    sigma = 1.5 * window / 11  # the window's Gaussian narrows with it (Karras et al.'s ms_ssim.py)
    for scale in range(scales):
        luminance, contrast_structure = _ssim_maps(x, y, window, sigma)
        term = contrast_structure if scale < scales - 1 else luminance * contrast_structure
        # Negative structure (anti-correlated images) counts as none, as in common practice.
        score = score * term.flatten(1).mean(1).clamp_min(0) ** weights[scale]
        if scale < scales - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return score


def pairwise_ms_ssim(images: Tensor, pairs: int = 2000, seed: int = 0) -> float:
    """Mean MS-SSIM between random pairs of different images of a set (seeded): how alike a
    model's samples are to each other, Odena et al.'s (2017) diversity figure, which Karras et
    al. report too. Lower is more varied; compare with the same for real images."""
    n = images.shape[0]
    if n < 2:
        raise ValueError("MS-SSIM among images needs at least 2 of them")
    a, b = torch.randint(n, (2, pairs), generator=torch.Generator().manual_seed(seed))
    b = torch.where(a == b, (b + 1) % n, b)
    scores = [ms_ssim(images[i], images[j]) for i, j in zip(a.split(500), b.split(500), strict=True)]
    return float(torch.cat(scores).mean())


# -- super-resolution's convention ---------------------------------------------------------------

BT601 = (65.481, 128.553, 24.966)
"""ITU-R BT.601's luma weights for R, G, B in [0, 1], giving Y in [16, 235] (MATLAB's
rgb2ycbcr, which the super-resolution literature measures with)."""


def luma(images: Tensor) -> Tensor:
    """The Y channel in 8-bit units, N x 1 x H x W, of images in [-1, 1]: BT.601 for RGB
    (16 for black, 235 for white); a gray image is its own value, 0-255."""
    x = _unit(images.float())
    if x.shape[1] == 1:
        return x * 255
    if x.shape[1] != 3:
        raise ValueError(f"luma takes gray or RGB images, got {x.shape[1]} channels")
    weights = torch.tensor(BT601, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return 16 + (x * weights).sum(dim=1, keepdim=True)


def _shaved(images: Tensor, border: int) -> Tensor:
    if border < 0 or 2 * border >= min(images.shape[-2:]):
        raise ValueError(f"cannot crop {border} px from each side of {tuple(images.shape[-2:])} images")
    return images[..., border:images.shape[-2] - border, border:images.shape[-1] - border] if border else images


def psnr_y(outputs: Tensor, targets: Tensor, border: int = 0) -> Tensor:
    """PSNR per image on the Y channel, peak 255, with ``border`` pixels cropped from each
    side first: super-resolution's convention (Ledig et al. crop the scale factor), which
    neither colour nor the edges a network cannot see past sway."""
    a, b = _shaved(luma(outputs), border), _shaved(luma(targets), border)
    mse_y = (a - b).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(255 ** 2 / mse_y.clamp_min(1e-10))


def ssim_y(outputs: Tensor, targets: Tensor, border: int = 0) -> Tensor:
    """SSIM per image on the Y channel (8-bit units, Wang et al.'s constants for that range),
    with ``border`` pixels cropped from each side first, as :func:`psnr_y`."""
    a, b = _shaved(luma(outputs), border) / 255, _shaved(luma(targets), border) / 255
    luminance, contrast_structure = _ssim_maps(a, b, 11, 1.5)
    return (luminance * contrast_structure).flatten(1).mean(1)


def paired_scores(outputs: Tensor, targets: Tensor) -> dict[str, float]:
    """L1 (in [0, 1] units), PSNR and SSIM of outputs against their targets, each averaged over
    the images: a translator's outputs against the real targets, or reconstructions against
    their inputs."""
    pairs = list(zip(outputs.split(256), targets.split(256), strict=True))
    return {"l1": float(((outputs - targets).abs() / 2).flatten(1).mean(1).mean()),
            "psnr": float(torch.cat([psnr(a, b) for a, b in pairs]).mean()),
            "ssim": float(torch.cat([ssim(a, b) for a, b in pairs]).mean())}


LAPLACIAN = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))


def laplacian_energy(images: Tensor) -> Tensor:
    """Sharpness per image: the mean square of its Laplacian (the 3 x 3 discrete one, on
    intensities in [0, 1], each channel apart, borders left out). Blur removes exactly the
    fine detail the Laplacian responds to, so a blurred image scores less than its original
    (Pech-Pacheco et al. 2000 use its variance to focus microscopes)."""
    x = _unit(images.float())
    kernel = torch.tensor(LAPLACIAN, dtype=x.dtype, device=x.device).expand(x.shape[1], 1, 3, 3)
    return F.conv2d(x, kernel, groups=x.shape[1]).pow(2).flatten(1).mean(1)


def grid_artefact(images: Tensor, period: int) -> Tensor:
    """How much of an image's fine detail repeats every ``period`` pixels (the checkerboard a
    sub-pixel or transposed convolution leaves), per image: the Laplacian of Y (8-bit units)
    is averaged over each of the period^2 phases (rows and columns mod ``period``), and the
    RMS of those phase means is the figure. Real detail lands on every phase alike and
    averages out (a photo scores near 0); a grid puts the same sign on the same phase and
    stays. Sharpness bought with a grid shows here, where the Laplacian energy rewards it."""
    y = luma(images)
    kernel = torch.tensor(LAPLACIAN, dtype=y.dtype, device=y.device).view(1, 1, 3, 3)
    detail = F.conv2d(y, kernel)[:, 0]
    n, h, w = detail.shape
    h, w = h - h % period, w - w % period
    phases = detail[:, :h, :w].reshape(n, h // period, period, w // period, period).mean(dim=(1, 3))
    return phases.pow(2).flatten(1).mean(1).sqrt()


def sharpness(images: Tensor, reference: Tensor) -> float:
    """How sharp a set of images is beside a reference set (real images of the same data):
    the ratio of their mean Laplacian energies. 1 is as sharp as the data, below 1 blurrier."""
    ours = torch.cat([laplacian_energy(chunk) for chunk in images.split(500)]).mean()
    theirs = torch.cat([laplacian_energy(chunk) for chunk in reference.split(500)]).mean()
    return float(ours / theirs.clamp_min(1e-12))


def active_units(codes: Tensor, threshold: float = 0.01) -> int:
    """How many latent dimensions an encoder uses (Burda et al. 2016): those whose code for an
    image (a VAE's posterior mean) varies across images with a variance above ``threshold``.
    A VAE whose posterior collapsed onto the prior has few or none."""
    return int((codes.double().var(0) > threshold).sum())


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


# -- distributions of images, compared in a feature space ---------------------------------------
#
# Every function below takes features (N x D, one row per image) from a feature extractor
# (zoo.features), so each figure is only as meaningful as that extractor: the protocol
# that `zoo eval` records says which one. Distances are computed in float64 and in chunks:
# no N x M matrix of a whole set against another is ever held in memory.

CHUNK = 1024
"""Rows of one set compared with a whole other set at a time (CHUNK x M distances)."""


class _Given(torch.nn.Module):
    """Hands features already extracted to torchmetrics, which expects a feature network."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """Heusel et al.'s Frechet distance between Gaussians fitted to two sets of features
    (FID when the features are Inception's): torchmetrics' implementation, in float64."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    _check_sets(real, fake, 2, "a Frechet distance")
    metric = FrechetInceptionDistance(feature=_Given(real.shape[1]), sync_on_compute=False)  # features are whole here
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return max(0.0, float(metric.compute()))


def kernel_distance(real: Tensor, fake: Tensor, subsets: int = 100, subset_size: int = 1000,
                    seed: int = 0) -> tuple[float, float]:
    """Binkowski et al.'s kernel distance (KID): the unbiased MMD^2 with a cubic polynomial
    kernel, mean and standard deviation over random subsets (torchmetrics, seeded)."""
    from torchmetrics.image.kid import KernelInceptionDistance

    _check_sets(real, fake, 4, "a kernel distance")
    # Subsets of at most half of each set: subsets of a whole set would all be alike, and the
    # standard deviation over them would say nothing.
    size = min(subset_size, len(real) // 2, len(fake) // 2)
    with warnings.catch_warnings():  # that it keeps every feature: so do we, for the other metrics
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(feature=_Given(real.shape[1]), subsets=subsets, subset_size=size,
                                         sync_on_compute=False)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def _check_sets(real: Tensor, fake: Tensor, least: int, what: str) -> None:
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be N x D of one D, got {tuple(real.shape)} and {tuple(fake.shape)}")
    if len(real) < least or len(fake) < least:
        raise ValueError(f"{what} needs at least {least} images in each set, got {len(real)} and {len(fake)}")


def nearest(queries: Tensor, points: Tensor, k: int = 1, skip_self: bool = False) -> tuple[Tensor, Tensor]:
    """Distances to, and indices of, the ``k`` nearest ``points`` of each query (each k-th
    column in order), in chunks. ``skip_self``: queries are the points themselves; a point
    is not its own neighbour (the k-nearest-neighbour radius of Kynkaanniemi et al.)."""
    points = points.double()
    distances, indices = [], []
    for start in range(0, len(queries), CHUNK):
        part = queries[start:start + CHUNK].double()
        d = torch.cdist(part, points)
        if skip_self:
            rows = torch.arange(len(part))
            d[rows, rows + start] = torch.inf
        values, index = d.topk(k, dim=1, largest=False)
        distances.append(values)
        indices.append(index)
    return torch.cat(distances), torch.cat(indices)


def _within(queries: Tensor, points: Tensor, radii: Tensor) -> tuple[Tensor, Tensor]:
    """For each query: how many ``points`` balls (radius ``radii``) hold it, and the distance
    to its nearest point minus that point's radius (<= 0: inside the nearest ball)."""
    points, radii = points.double(), radii.double()
    counts, margins = [], []
    for start in range(0, len(queries), CHUNK):
        d = torch.cdist(queries[start:start + CHUNK].double(), points)
        counts.append((d <= radii[None]).sum(1))
        margins.append((d - radii[None]).min(1).values)
    return torch.cat(counts), torch.cat(margins)


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> tuple[float, float]:
    """Kynkaanniemi et al.'s (2019) improved precision and recall: the share of generated
    images inside the real images' k-nearest-neighbour manifold, and of real images inside
    the generated ones'. Precision is fidelity, recall is coverage of the data's variety.
    Measure sets of one size, as the paper does: both figures depend on the two sets' sizes
    (each set's neighbourhoods shrink as it grows)."""
    _check_sets(real, fake, k + 1, f"precision and recall (k={k})")
    real_radii = nearest(real, real, k, skip_self=True)[0][:, -1]
    fake_radii = nearest(fake, fake, k, skip_self=True)[0][:, -1]
    precision = (_within(fake, real, real_radii)[0] > 0).double().mean()
    recall = (_within(real, fake, fake_radii)[0] > 0).double().mean()
    return float(precision), float(recall)


def density_coverage(real: Tensor, fake: Tensor, k: int = 5) -> tuple[float, float]:
    """Naeem et al.'s (2020) density and coverage: how many real neighbourhoods each
    generated image falls in, over k (about 1 for samples like the data; above 1 when they
    crowd where the data is dense), and the share of real images with a generated one
    inside their neighbourhood (robust to outliers, unlike recall). Measure sets of one
    size, as the paper does: with many more generated images than real ones, each real
    neighbourhood holds several and coverage climbs to 1 whatever the model."""
    _check_sets(real, fake, k + 1, f"density and coverage (k={k})")
    radii = nearest(real, real, k, skip_self=True)[0][:, -1]
    counts = _within(fake, real, radii)[0]
    density = counts.double().sum() / (k * len(fake))
    nearest_fake = nearest(real, fake, 1)[0][:, 0]
    coverage = (nearest_fake <= radii.double()).double().mean()
    return float(density), float(coverage)


@dataclass
class Memorisation:
    """How many samples sit closer to the training images than unseen real images come."""

    share: float
    """Samples closer to a training image than any held-out image is to one."""
    reference: float
    """The same share for real held-out images the model never saw: what chance gives."""
    threshold: float
    """The distance no held-out image comes within of a training image."""
    distance: Tensor
    """Distance from each sample to its nearest training image."""


def memorisation(samples: Tensor, train: Tensor, heldout: Tensor) -> Memorisation:
    """The memorisation check: a sample closer to a training image than any held-out image
    is to one comes nearer the training set than unseen data ever does, and may be a copy.
    The held-out images are split in two: one half sets that threshold, the other half is
    checked like the samples, so ``reference`` is what a model that copies nothing scores
    (about 1 / (half the held-out images))."""
    if len(heldout) < 2:
        raise ValueError("the memorisation check needs at least 2 held-out images")
    probe, threshold_set = heldout[0::2], heldout[1::2]
    threshold = nearest(threshold_set, train)[0][:, 0].min()
    distance = nearest(samples, train)[0][:, 0]
    reference = (nearest(probe, train)[0][:, 0] < threshold).double().mean()
    return Memorisation(float((distance < threshold).double().mean()), float(reference), float(threshold), distance)


def classifier_score(logits: Tensor) -> float:
    """Inception Score's formula, exp E_x KL(p(y|x) || p(y)), on a classifier's logits: high
    when each image is confidently one class and the classes are evenly used (at most the
    number of classes)."""
    log_p = logits.double().log_softmax(1)
    log_marginal = log_p.exp().mean(0).clamp_min(1e-30).log()
    return float((log_p.exp() * (log_p - log_marginal[None])).sum(1).mean().exp())


def class_accuracy(predicted: Tensor, asked: Tensor, num_classes: int) -> tuple[float, list[float | None]]:
    """The share of samples a classifier reads as the class they were drawn for, overall and
    per class (None for a class with no samples)."""
    right = (predicted.cpu() == asked.cpu()).double()
    per_class = [float(right[asked.cpu() == c].mean()) if bool((asked == c).any()) else None
                 for c in range(num_classes)]
    return float(right.mean()), per_class
