"""Super-resolution's measurement: PSNR and SSIM on the Y channel with the border cropped."""

from __future__ import annotations

import math

import pytest
import torch

from zoo.measure import metrics


def test_luma_is_bt601_in_8_bit_units_and_a_gray_image_is_its_own() -> None:
    black, white = -torch.ones(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    assert torch.allclose(metrics.luma(black), torch.full((1, 1, 4, 4), 16.0))
    assert torch.allclose(metrics.luma(white), torch.full((1, 1, 4, 4), 235.0), atol=1e-3)
    gray = torch.rand(2, 1, 4, 4) * 2 - 1
    assert torch.allclose(metrics.luma(gray), (gray + 1) / 2 * 255)
    with pytest.raises(ValueError, match="gray or RGB"):
        metrics.luma(torch.zeros(1, 4, 4, 4))


def test_psnr_y_has_peak_255_and_ignores_what_the_border_crop_removes() -> None:
    target = torch.zeros(2, 1, 16, 16)
    output = target + 2 * 10 / 255  # 10 gray levels off everywhere
    assert torch.allclose(metrics.psnr_y(output, target), torch.full((2,), 20 * math.log10(255 / 10)))
    framed = target.clone()
    framed[..., :4, :] = framed[..., -4:, :] = framed[..., :, :4] = framed[..., :, -4:] = 1.0
    assert metrics.psnr_y(framed, target, border=4).min() > 90  # identical once 4 px are cropped
    assert metrics.psnr_y(framed, target, border=3).max() < 20
    assert torch.allclose(metrics.ssim_y(target, target, border=4), torch.ones(2))
    with pytest.raises(ValueError, match="cannot crop 8 px"):
        metrics.psnr_y(target, target, border=8)


def test_colour_alone_does_not_move_psnr_y() -> None:
    g = torch.Generator().manual_seed(0)
    rgb = torch.rand(1, 3, 8, 8, generator=g) * 1.6 - 0.8
    # the same luma, another colour: move along a direction BT.601 gives no weight
    direction = torch.tensor([128.553, -65.481, 0.0]).view(1, 3, 1, 1) / 255
    shifted = rgb + 0.05 * direction
    assert metrics.psnr_y(shifted, rgb).item() > 90 and metrics.psnr(shifted, rgb).item() < 60


def test_grid_artefact_finds_a_checkerboard_and_not_real_detail() -> None:
    torch.manual_seed(0)
    photo = torch.rand(2, 3, 256, 256) * 2 - 1  # detail everywhere, on no phase in particular
    smooth = torch.linspace(-1, 1, 256).expand(1, 3, 256, 256).contiguous()
    grid = smooth.clone()
    grid[..., 0::4, 0::4] += 0.3  # a bright dot every 4 pixels: a sub-pixel layer's checkerboard
    noise_score = metrics.grid_artefact(photo, 4)
    assert float(metrics.grid_artefact(smooth, 4)[0]) < 1e-3
    assert float(metrics.grid_artefact(grid.clamp(-1, 1), 4)[0]) > 5 * float(noise_score.max())
