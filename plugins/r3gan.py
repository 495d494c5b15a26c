"""R3GAN: Huang, Gokaslan, Kuleshov & Tompkin, "The GAN is dead; long live the GAN! A Modern
GAN Baseline", NeurIPS 2024 (arXiv:2501.05441).

The paper's claim is that a GAN needs no bag of tricks once its loss is well behaved. Its
loss is the relativistic pairing GAN (RpGAN: each real image judged against a generated one,
``loss=rpgan`` of :mod:`zoo.losses`) with zero-centred gradient penalties on real *and*
generated images (R1 and R2, one gamma), which it shows to converge locally and to cover
every mode of Stacked MNIST. On that loss it trains a plain modern ConvNet:

* **blocks**: ResNeXt-style residual blocks with an inverted bottleneck, a 1x1 convolution
  that widens the channels ``expansion`` times, a grouped 3x3 convolution (groups of
  :data:`GROUP_CHANNELS` channels), and a 1x1 convolution back, each of the first two
  followed by a bias and a leaky ReLU (0.2);
* **no normalisation** anywhere: instead the initialisation keeps the signal's variance,
  each layer N(0, gain^2 / fan-in), the residual branches' gains scaled down by the number of
  blocks (the paper's variance scaling, after Fix-up) and each branch's last layer zero, so
  every block starts as the identity;
* **resampling** between stages with a 1x1 convolution where the width changes; the
  generator starts from a learned constant basis (4 x 4 for most sizes) modulated by z, the
  discriminator ends with a depthwise convolution over the same basis and a linear head.

The paper low-pass filters its resampling with a [1, 2, 1] kernel; zoo uses bilinear
upsampling and 2 x 2 average pooling, its close cousins with fast kernels everywhere and
plain ONNX operators. Its generator has no output activation; zoo's images are clamped to
[-1, 1] when drawn, not while training.

The optimiser is the paper's: Adam with beta1 = 0, its learning rate falling from 2e-4 to
5e-5 and beta2 rising from 0.9 to 0.99 along a cosine over training, and gamma falling to a
tenth of itself the same way. Zoo's length of training is the schedule's length (the paper
decays over a fixed number of images; a CPU run is shorter than its decay).

Widths: ``width`` channels at the finest stage, doubling towards the coarse ones up to
``max_width``. The defaults fit a CPU at 28 to 64 px; ``--preset paper256`` is the paper's
FFHQ 256 px network (widths 96 to 768, two blocks a stage), for a GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import zoo
from zoo import losses, priors
from zoo.config import option
from zoo.plugins.dcgan import DCGAN

SLOPE = 0.2
ACTIVATION_GAIN = math.sqrt(2 / (1 + SLOPE ** 2))
"""The gain that keeps a signal's variance through a leaky ReLU of slope 0.2 (He et al.)."""
GROUP_CHANNELS = 16
"""Channels in each group of the blocks' grouped convolution: the paper's cardinality at every
stage of its networks (e.g. 96 groups of the 1,536 widened channels at 768 wide)."""
LINEAR_LAYERS = 3
"""Layers in a residual branch; with the number of blocks, they set the branch's gain."""
MAX_BASIS = 8


@dataclass
class R3GANConfig(losses.AdversarialConfig):
    loss: losses.LossKind = option("rpgan", "the adversarial loss (the paper's: rpgan, relativistic pairs)")
    r1_weight: float = option(0.05, "R1 gamma on real images at the start (the paper's CIFAR-10: 0.05)")
    r2_weight: float = option(0.05, "R2 gamma on generated images at the start (the paper: R1's gamma)")
    penalty_every: int = option(4, "R1 and R2 every this many steps, weighted as many times (lazy "
                                   "regularisation: 1 is the paper's, 4 costs 40% less time on a CPU)")
    gamma_end: float = option(0.1, "the penalties' gamma falls along a cosine to this share of "
                                   "itself by the end of training (the paper: 0.1)")
    ema: float = option(0.999, "sample from a moving average of the generator with this decay (0: off)")
    batch_size: int = option(64, "images per training batch (the paper: 512 on GPUs)")
    latent_dim: int = option(64, "length of the noise vector z (the paper: 64)")
    noise: str = option("normal", "the prior z is drawn from: normal:MEAN,STD, uniform:LOW,HIGH, "
                                  "gamma:SHAPE,SCALE or laplace:LOC,SCALE")
    width: int = option(16, "channels at the finest stage; each coarser stage doubles it up to "
                            "max_width (the paper's FFHQ 256: 96)")
    max_width: int = option(64, "channels of the coarsest stages (the paper's FFHQ 256: 768)")
    blocks: int = option(1, "residual blocks per stage (the paper: 2)")
    expansion: int = option(2, "how many times a block widens its channels inside (the paper: 2)")
    lr: float = option(2e-4, "learning rate at the start, both networks (the paper: 2e-4)")
    lr_end: float = option(5e-5, "learning rate at the end, along a cosine (the paper: 5e-5)")
    beta2: float = option(0.9, "Adam beta2 at the start (the paper: 0.9); beta1 is 0")
    beta2_end: float = option(0.99, "Adam beta2 at the end, along a cosine (the paper: 0.99)")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.at_least(1, "latent_dim", "width", "max_width", "blocks", "expansion")
        priors.parse(self.noise)
        self.positive("lr", "lr_end")
        self.below_one("beta2", "beta2_end")
        self.not_negative("gamma_end")
        if self.max_width < self.width:
            raise zoo.UsageError(f"max_width ({self.max_width}) must be at least width ({self.width})")
        if self.width * self.expansion % GROUP_CHANNELS and self.width * self.expansion > GROUP_CHANNELS:
            raise zoo.UsageError(f"width x expansion ({self.width * self.expansion}) must be a multiple of "
                                 f"{GROUP_CHANNELS}, the channels of each group of a block's convolution")


def cosine(start: float, end: float, fraction: float) -> float:
    """From ``start`` at fraction 0 to ``end`` at 1, along half a cosine: the paper's schedules."""
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, fraction))))


# -- networks -----------------------------------------------------------------------------------

def basis_size(size: int) -> tuple[int, int]:
    """The side of the basis the generator starts from, and how many times it doubles to
    ``size``: halve while the side stays even and at least 4 (32 -> 4, 28 -> 7, 48 -> 6)."""
    side, doublings = size, 0
    while side % 2 == 0 and side // 2 >= 4:
        side, doublings = side // 2, doublings + 1
    return side, doublings


def stage_widths(config: R3GANConfig, stages: int) -> list[int]:
    """Channels per stage, coarse to fine: ``width`` at the finest, doubling up to ``max_width``."""
    return [min(config.width * 2 ** (stages - 1 - i), config.max_width) for i in range(stages)]


def _msr(layer: nn.Conv2d | nn.Linear, gain: float = 1.0) -> None:
    """Variance-preserving initialisation: weights N(0, gain^2 / fan-in), no bias."""
    fan_in = layer.weight[0].numel()
    nn.init.normal_(layer.weight, 0.0, gain / math.sqrt(fan_in))
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def _conv(c_in: int, c_out: int, kernel: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel, padding=(kernel - 1) // 2, groups=groups, bias=False)


class BiasedActivation(nn.Module):
    """A learned bias per channel, then a leaky ReLU (the blocks' only non-linearity)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x + self.bias.view(1, -1, 1, 1), SLOPE)


class ResidualBlock(nn.Module):
    """x + a branch of three convolutions: widen (1x1), grouped 3x3, narrow (1x1)."""

    def __init__(self, channels: int, expansion: int, total_blocks: int) -> None:
        super().__init__()
        wide = channels * expansion
        self.widen = _conv(channels, wide)
        self.act1 = BiasedActivation(wide)
        self.mix = _conv(wide, wide, 3, groups=max(1, wide // GROUP_CHANNELS))
        self.act2 = BiasedActivation(wide)
        self.narrow = _conv(wide, channels)
        self.total_blocks = total_blocks

    def reset_parameters(self) -> None:
        # The paper's variance scaling: the branch's gain falls with the number of blocks, so
        # the sum of all residual branches keeps the signal's scale; its last layer starts at 0.
        gain = ACTIVATION_GAIN * self.total_blocks ** (-1 / (2 * LINEAR_LAYERS - 2))
        _msr(self.widen, gain)
        _msr(self.mix, gain)
        nn.init.zeros_(self.narrow.weight)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.narrow(self.act2(self.mix(self.act1(self.widen(x)))))


class Generator(nn.Module):
    """z -> a basis of ``side`` x ``side`` modulated by z -> stages of blocks, doubling the
    size between them -> a 1x1 convolution to the image's channels."""

    def __init__(self, latent_dim: int, widths: list[int], side: int, blocks: int, expansion: int,
                 channels: int) -> None:
        super().__init__()
        total = blocks * len(widths)
        self.basis = nn.Parameter(torch.empty(widths[0], side, side))
        self.modulation = nn.Linear(latent_dim, widths[0], bias=False)
        self.stages = nn.ModuleList()
        for i, width in enumerate(widths):
            layers: list[nn.Module] = []
            if i:
                layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
                if widths[i - 1] != width:
                    layers.insert(0, _conv(widths[i - 1], width))  # narrow before doubling: cheaper
            layers += [ResidualBlock(width, expansion, total) for _ in range(blocks)]
            self.stages.append(nn.Sequential(*layers))
        self.to_image = _conv(widths[-1], channels)

    def reset_parameters(self) -> None:
        nn.init.normal_(self.basis)
        _initialise(self)

    def forward(self, z: Tensor) -> Tensor:
        x = self.basis.unsqueeze(0) * self.modulation(z.flatten(1)).view(z.shape[0], -1, 1, 1)
        for stage in self.stages:
            x = stage(x)
        return self.to_image(x)


class Discriminator(nn.Module):
    """The generator's mirror: a 1x1 convolution from the image, stages of blocks halving the
    size between them, a depthwise convolution over the basis, and a linear head."""

    def __init__(self, widths: list[int], side: int, blocks: int, expansion: int, channels: int,
                 logits: int) -> None:
        super().__init__()
        widths = widths[::-1]  # fine to coarse
        total = blocks * len(widths)
        self.from_image = _conv(channels, widths[0])
        self.stages = nn.ModuleList()
        for i, width in enumerate(widths):
            layers: list[nn.Module] = [ResidualBlock(width, expansion, total) for _ in range(blocks)]
            if i + 1 < len(widths):
                layers.append(nn.AvgPool2d(2))
                if widths[i + 1] != width:
                    layers.append(_conv(width, widths[i + 1]))
            self.stages.append(nn.Sequential(*layers))
        self.basis = nn.Conv2d(widths[-1], widths[-1], side, groups=widths[-1], bias=False)
        self.head = nn.Linear(widths[-1], logits, bias=False)

    def reset_parameters(self) -> None:
        _initialise(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.from_image(x)
        for stage in self.stages:
            x = stage(x)
        return self.head(self.basis(x).flatten(1))


def _initialise(network: nn.Module) -> None:
    """The paper's initialisation of a network: each residual block its own (scaled, last layer
    zero), every other convolution and linear layer variance-preserving with gain 1."""
    inside = {id(m) for block in network.modules() if isinstance(block, ResidualBlock) for m in block.modules()}
    for module in network.modules():
        if isinstance(module, ResidualBlock):
            module.reset_parameters()
        elif isinstance(module, (nn.Linear, nn.Conv2d)) and id(module) not in inside:
            _msr(module)


# -- the model ----------------------------------------------------------------------------------

class R3GAN(DCGAN):
    name = "r3gan"
    summary = "The modern baseline: RpGAN + R1 + R2 on a plain ResNeXt-style ConvNet, no tricks"
    paper = "Huang, Gokaslan, Kuleshov & Tompkin 2024, arXiv:2501.05441"
    family = "GAN"
    version = "1"
    Config = R3GANConfig  # type: ignore[assignment]  # DCGAN's step, R3GAN's own options
    capabilities = frozenset({zoo.Capability.LATENT})
    tiny_config = {"width": 8, "max_width": 16, "batch_size": 8, "latent_dim": 8}
    small_data = {"augment": "translation,cutout"}

    config: R3GANConfig  # type: ignore[assignment]

    @classmethod
    def check_data(cls, config: R3GANConfig, spec: zoo.DataSpec) -> None:  # type: ignore[override]
        side, doublings = basis_size(spec.height)
        if spec.height != spec.width or side > MAX_BASIS or doublings < 1:
            raise zoo.UsageError(
                f"r3gan needs square images whose side halves down to 4-{MAX_BASIS} px (16, 28, 32, 48, "
                f"64, 128, 256, ...), the data is {spec.height}x{spec.width}; prep it with --size 32")

    def build_networks(self, config: R3GANConfig, spec: zoo.DataSpec) -> tuple[nn.Module, nn.Module]:  # type: ignore[override]
        side, doublings = basis_size(spec.height)
        widths = stage_widths(config, doublings + 1)
        generator = Generator(config.latent_dim, widths, side, config.blocks, config.expansion, spec.channels)
        discriminator = Discriminator(widths, side, config.blocks, config.expansion, spec.channels,
                                      losses.logits_per_image(config.loss))
        return generator, discriminator

    def initialise(self) -> None:
        # The paper's initialisation in place of DCGAN's N(0, 0.02): it is what lets the
        # networks train without normalisation.
        for network in (self.generator, self.discriminator):
            assert isinstance(network, (Generator, Discriminator))  # built by build_networks above
            network.reset_parameters()

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = (0.0, self.config.beta2)
        return {"generator": torch.optim.Adam(self.generator.parameters(), self.config.lr, betas=betas),
                "discriminator": torch.optim.Adam(self.discriminator.parameters(), self.config.lr, betas=betas)}

    def penalty_scale(self, progress: zoo.Progress) -> float:
        return cosine(1.0, self.config.gamma_end, progress.fraction)

    def train_step(self, batches: zoo.Batches, progress: zoo.Progress) -> zoo.Metrics:
        cfg = self.config
        lr = cosine(cfg.lr, cfg.lr_end, progress.fraction)
        beta2 = cosine(cfg.beta2, cfg.beta2_end, progress.fraction)
        for optimiser in self.optimizers.values():
            for group in optimiser.param_groups:
                group["lr"], group["betas"] = lr, (0.0, beta2)
        metrics = super().train_step(batches, progress)
        return {**metrics, "gamma": torch.tensor(cfg.r1_weight * self.penalty_scale(progress))}

    def generate(self, z: Tensor, conditions: zoo.Conditions | None = None) -> Tensor:
        # No output activation while training (the paper's); drawn images stay in [-1, 1].
        return super().generate(z, conditions).clamp(-1, 1)
