"""Karras et al.'s sliced Wasserstein distance on Laplacian pyramids, and MS-SSIM."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zoo.measure import metrics, swd


def blobs(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Soft random ellipses on black: images with coarse shape and fine edges, in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    centre = torch.rand(n, 2, 1, 1, generator=g) - 0.5
    radius = 0.2 + 0.4 * torch.rand(n, 2, 1, 1, generator=g)
    inside = ((xs - centre[:, :1]) / radius[:, :1]) ** 2 + ((ys - centre[:, 1:]) / radius[:, 1:]) ** 2
    return torch.sigmoid((1 - inside) * 8) * 2 - 1  # n x 1 x size x size


def test_a_laplacian_pyramid_adds_back_up_to_the_image() -> None:
    images = torch.rand(3, 2, 32, 32)
    pyramid = swd.laplacian_pyramid(images, swd.levels_for(32))
    assert [level.shape[-1] for level in pyramid] == [32, 16]
    rebuilt = pyramid[-1]
    for detail in reversed(pyramid[:-1]):
        rebuilt = detail + swd.pyramid_up(rebuilt, (detail.shape[-2], detail.shape[-1]))
    assert torch.allclose(rebuilt, images, atol=1e-5)
    assert [swd.levels_for(s) for s in (8, 16, 28, 32, 64, 256)] == [1, 1, 1, 2, 3, 5]


def test_swd_is_zero_for_one_set_small_for_two_draws_and_large_for_other_images() -> None:
    a, b = blobs(256, seed=1), blobs(256, seed=2)
    same = swd.swd(a, a, patches=16)
    assert set(same) == {32, 16} and all(v == pytest.approx(0.0, abs=1e-6) for v in same.values())
    draws = swd.swd(a, b, patches=16)
    noise = swd.swd(a, torch.rand(256, 1, 32, 32) * 2 - 1, patches=16)
    assert all(noise[side] > 5 * draws[side] for side in (32, 16)), (draws, noise)
    assert swd.swd(a, b, patches=16, seed=3) == swd.swd(a, b, patches=16, seed=3)


def test_blurred_images_are_far_in_fine_detail_and_near_in_coarse_shape() -> None:
    a, b = blobs(256, seed=1), blobs(256, seed=2)
    blurred = F.interpolate(F.interpolate(b, scale_factor=0.25, mode="bilinear", antialias=True), size=(32, 32),
                            mode="bilinear")
    sharp, soft = swd.swd(a, b, patches=16), swd.swd(a, blurred, patches=16)
    assert soft[32] > 3 * sharp[32]  # the finest level sees the lost detail
    assert soft[32] / sharp[32] > soft[16] / sharp[16]


def test_swd_refuses_sets_of_different_shapes() -> None:
    with pytest.raises(ValueError, match="one shape"):
        swd.swd(torch.zeros(4, 1, 32, 32), torch.zeros(4, 3, 32, 32))


def test_ms_ssim_is_one_for_identical_images_and_falls_with_noise() -> None:
    image = blobs(4)
    assert torch.allclose(metrics.ms_ssim(image, image), torch.ones(4))
    g = torch.Generator().manual_seed(0)
    scores = [float(metrics.ms_ssim(image, (image + s * torch.randn(image.shape, generator=g)).clamp(-1, 1)).mean())
              for s in (0.05, 0.2, 0.8)]
    assert scores[0] > scores[1] > scores[2]
    assert metrics.ms_ssim_scales(32) == (3, 7) and metrics.ms_ssim_scales(256) == (5, 11)


def test_ms_ssim_among_samples_is_one_for_a_collapse_and_lower_for_varied_images() -> None:
    collapsed = blobs(1).expand(50, -1, -1, -1)
    assert metrics.pairwise_ms_ssim(collapsed, pairs=100) == pytest.approx(1.0)
    assert metrics.pairwise_ms_ssim(blobs(50), pairs=100) < 0.9

