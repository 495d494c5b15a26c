"""ProGAN's layers (Karras et al. 2018, section 4): convolutions and linear layers with an
equalized learning rate (weights drawn from N(0, 1), scaled by He's constant at run time),
pixelwise feature normalisation, and the minibatch standard deviation of the critic's last
block.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

HE_GAIN = math.sqrt(2)


class EqualizedConv2d(nn.Conv2d):
    """A convolution whose N(0, 1) weights are scaled at run time by gain / sqrt(fan_in)
    (He's initialisation moved into the forward pass), so that Adam, which steps each raw
    weight by about the same amount, trains every layer at the same speed. With
    ``equalized=False`` it is an ordinary He-initialised convolution, for comparison. A
    subclass of ``nn.Conv2d``, so that whatever finds a model's convolutions finds these."""

    def __init__(self, c_in: int, c_out: int, kernel: int, gain: float = HE_GAIN, equalized: bool = True) -> None:
        super().__init__(c_in, c_out, kernel, padding=kernel // 2)
        self.scale = _equalize(self, gain / math.sqrt(c_in * kernel * kernel), equalized)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.weight * self.scale, self.bias)


class EqualizedLinear(nn.Linear):
    """A dense layer with the equalized learning rate of :class:`EqualizedConv2d`."""

    def __init__(self, c_in: int, c_out: int, gain: float = HE_GAIN, equalized: bool = True) -> None:
        super().__init__(c_in, c_out)
        self.scale = _equalize(self, gain / math.sqrt(c_in), equalized)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


@torch.no_grad()
def _equalize(layer: nn.Conv2d | nn.Linear, scale: float, equalized: bool) -> float:
    """Weights N(0, 1) and biases 0; returns the run-time scale (1 when the scale is baked
    into the weights once instead, as He et al. initialise)."""
    layer.weight.normal_()
    assert layer.bias is not None
    layer.bias.zero_()
    if equalized:
        return scale
    layer.weight.mul_(scale)
    return 1.0


class PixelNorm(nn.Module):
    """Each pixel's feature vector divided by its root mean square over channels (the paper's
    local response normalisation): b = a / sqrt(mean_j a_j^2 + 1e-8)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class MinibatchStdDev(nn.Module):
    """One more feature map: the standard deviation of each feature across a group of images,
    averaged over features and positions, the same value at every pixel of each image in the
    group. The paper's code reshapes the batch into groups of ``group`` images (image i in
    group i mod N/group), which fails when the batch does not divide; here a batch of N is
    split into ceil(N / group) groups the same way (i mod groups), so their sizes differ by at
    most one and are identical to the paper's whenever N divides."""

    def __init__(self, group: int = 4) -> None:
        super().__init__()
        self.group = group

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        groups = math.ceil(n / min(self.group, n))
        rows = math.ceil(n / groups)  # the most images in a group
        # Image i sits at row i // groups, column i % groups of a rows x groups grid, padded
        # with empty places that a mask leaves out. Reductions along the grid's rows keep the
        # result the same bit for bit on every run, as scatter-adds over threads do not.
        y = x.float()  # statistics in full precision under autocast, as the paper's code
        mask = y.new_ones(n)
        if rows * groups > n:
            y = torch.cat([y, y.new_zeros(rows * groups - n, *y.shape[1:])])
            mask = torch.cat([mask, mask.new_zeros(rows * groups - n)])
        y = y.view(rows, groups, *y.shape[1:])
        mask = mask.view(rows, groups, 1, 1, 1)
        counts = mask.sum(0)
        mean = (y * mask).sum(0) / counts
        variance = ((y - mean) * mask).pow(2).sum(0) / counts
        std = torch.sqrt(variance + 1e-8).mean(dim=(1, 2, 3)).to(x.dtype)  # one per group
        return torch.cat([x, std.repeat(rows)[:n].view(n, 1, 1, 1).expand(n, 1, *x.shape[2:])], dim=1)
