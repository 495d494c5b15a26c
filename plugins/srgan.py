"""SRResNet and SRGAN: Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a
Generative Adversarial Network", CVPR 2017 (arXiv:1609.04802).

Both learn to make an image ``scale`` times larger from pairs derived from any photos:
random high-resolution crops (48 px by default, sized for a CPU; the paper's 96 px with
``--set crop=96``), flipped at random, and their bicubic
downsample (:class:`zoo.Derivation`); or from paired photos (``paired:PATH`` with the
low-resolution photos in ``A/`` and the high-resolution ones, ``scale`` times larger, in
``B/``), aligned crops of both.

* **Generator** (both): a 9 x 9 convolution and PReLU; ``blocks`` residual blocks (3 x 3
  convolution, batch norm, PReLU, 3 x 3 convolution, batch norm, plus the block's input);
  a 3 x 3 convolution and batch norm joined to the first layer's output; one sub-pixel
  convolution per doubling (3 x 3 to 4x the channels, pixel shuffle, PReLU), initialised
  ICNR (Aitken et al. 2017) so that it starts as nearest-neighbour upsampling, without the
  checkerboard artefacts a random sub-pixel layer leaves; a 9 x 9 convolution to the image.
  It is fully convolutional: any image size goes in, and :meth:`SRResNet.context` says how
  far each output pixel sees, so ``zoo upscale`` tiles large images without seams.
* **Bicubic skip** (``skip=bicubic``, the default; not in the paper): the generator's output
  is added to the bicubic upscale of its input, and its last layer starts at zero, so a run
  starts exactly at bicubic and learns the missing detail (residual learning, as VDSR, Kim
  et al. 2016). The paper's generator must first learn to upsample at all, which takes
  longer than a CPU run lasts; ``skip=none`` is the paper's.
* **SRResNet** trains on the content loss alone (pixel MSE, the PSNR-oriented model).
* **SRGAN** adds the VGG-style discriminator (eight 3 x 3 convolutions from 64 to 512
  channels, every other one of stride 2, batch norm but on the first, LeakyReLU 0.2, dense
  1024, dense 1) and trains the generator on content + 1e-3 x the adversarial loss
  (-log D(G(x))), started from a trained SRResNet (``zoo train srgan --init-from RUN``).
* **Content loss** (``content``): ``pixel`` (MSE); ``vgg19``, the paper's VGG54 (ImageNet
  VGG19's features after the 4th convolution of the 5th block, before its pooling, MSE
  rescaled by 1/12.75^2) from a safetensors file of torchvision's weights the user has,
  never downloaded and never saved in checkpoints; or ``random``: the features of a
  randomly initialised VGG-shaped network, fixed by a seed (Liu et al. 2021, "Generic
  Perceptual Loss", find such untrained networks a competitive perceptual loss), which needs
  no file at all. The run records which, with the weights' hash.
* Adam(1e-4, 0.9, 0.999) for both networks, the paper's.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import zoo
from zoo import losses
from zoo.config import option

SCALES = (2, 4, 8)
VGG19_ENV = "ZOO_VGG19_WEIGHTS"
VGG54_LAYERS = 36
"""torchvision's ``vgg19().features[:36]``: up to the ReLU after conv5_4, before the 5th pooling."""
VGG_RESCALE = 1 / 12.75 ** 2
"""The paper rescales VGG features by 1/12.75 so their MSE is of the pixel MSE's order."""
RANDOM_FEATURES_SEED = 2021
HOW_TO_GET_VGG19 = (
    "zoo never downloads weights nor unpickles them; make a safetensors file once from torchvision's "
    "weights: python -c \"import torchvision, safetensors.torch as s; s.save_file(torchvision.models."
    "vgg19(weights='DEFAULT').state_dict(), 'vgg19.safetensors')\" and pass --set vgg19_weights=vgg19.safetensors "
    f"(or set ${VGG19_ENV}); or train offline with --set content=random or content=pixel")


@dataclass
class SRResNetConfig(zoo.Config):
    scale: int = option(4, "how many times larger the output is: 2, 4 or 8")
    crop: int = option(48, "side of the random high-resolution training crops, a multiple of scale: 48 is sized "
                           "for a CPU (3.6x the crops of the paper's 96 in the same time); --set crop=96 on a GPU")
    batch_size: int = option(16, "crops per training batch (the paper's 16)")
    blocks: int = option(16, "residual blocks of the generator (the paper's 16)")
    width: int = option(64, "channels of the generator's layers (the paper's 64)")
    content: Literal["pixel", "vgg19", "random"] = option(
        "pixel", "content loss: pixel (MSE), vgg19 (the paper's VGG54; needs vgg19_weights) or random (features of "
                 "a fixed, randomly initialised VGG-shaped network: offline)")
    vgg19_weights: str = option("", f"a safetensors file of torchvision's VGG19 weights, for content=vgg19 "
                                    f"(default: ${VGG19_ENV})")
    flips: bool = option(True, "flip each training crop left-right and upside-down at random")
    skip: Literal["bicubic", "none"] = option(
        "bicubic", "bicubic: the generator adds its output to the bicubic upscale of its input (residual learning, "
                   "VDSR's; its last layer starts at zero, so training starts from bicubic and beats it in CPU "
                   "minutes); none: the paper's generator, which must first learn to upsample at all")
    lr: float = option(1e-4, "Adam learning rate (the paper's 1e-4)")
    beta1: float = option(0.9, "Adam beta1")
    beta2: float = option(0.999, "Adam beta2")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.scale not in SCALES:
            raise zoo.UsageError(f"scale must be 2, 4 or 8, got {self.scale}")
        self.at_least(1, "blocks", "width")
        if self.crop < 2 * self.scale or self.crop % self.scale:
            raise zoo.UsageError(f"crop must be a multiple of scale ({self.scale}) and at least {2 * self.scale} px, "
                                 f"got {self.crop}")
        self.positive("lr")
        self.below_one("beta1", "beta2")


@dataclass
class SRGANConfig(SRResNetConfig):
    content: Literal["pixel", "vgg19", "random"] = option(
        "random", "content loss: random (features of a fixed, randomly initialised VGG-shaped network: offline; "
                  "the default, cleaner than pixel's grid artefacts), pixel (MSE) or vgg19 (the paper's VGG54; needs "
                  "vgg19_weights)")
    adversarial_weight: float = option(1e-3, "weight of the adversarial loss beside the content loss (the paper's "
                                             "1e-3)")
    d_width: int = option(64, "channels of the discriminator's first layers (doubling to 8x)")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.not_negative("adversarial_weight")
        self.at_least(1, "d_width")


# -- the generator ------------------------------------------------------------------------------

class ResidualBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
                                  nn.PReLU(width), nn.Conv2d(width, width, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(width))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def icnr_(conv: nn.Conv2d, factor: int) -> None:
    """Initialise a convolution feeding a pixel shuffle by ``factor`` so that its output
    starts as a nearest-neighbour upsampling of a normally initialised one (ICNR): each group
    of factor^2 output channels begins with the same kernel, so no checkerboard is learnt
    away from a random start."""
    out_channels, in_channels, k, _ = conv.weight.shape
    base = torch.empty(out_channels // factor ** 2, in_channels, k, k)
    nn.init.kaiming_normal_(base, a=0.25, nonlinearity="leaky_relu")  # PReLU's initial slope
    with torch.no_grad():
        conv.weight.copy_(base.repeat_interleave(factor ** 2, dim=0))
        if conv.bias is not None:
            conv.bias.zero_()


class Generator(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, width: int, blocks: int, scale: int,
                 skip: bool = False) -> None:
        super().__init__()
        self.scale = scale
        self.skip = skip and in_channels == out_channels
        self.head = nn.Sequential(nn.Conv2d(in_channels, width, 9, 1, 4), nn.PReLU(width))
        self.body = nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)],
                                  nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width))
        ups: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):
            conv = nn.Conv2d(width, width * 4, 3, 1, 1)
            icnr_(conv, 2)
            ups += [conv, nn.PixelShuffle(2), nn.PReLU(width)]
        self.up = nn.Sequential(*ups)
        self.tail = nn.Conv2d(width, out_channels, 9, 1, 4)
        if self.skip:  # start as bicubic upsampling exactly; learn the detail it lacks
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)  # type: ignore[arg-type]

    def forward(self, x: Tensor) -> Tensor:
        features = self.head(x)
        out = self.tail(self.up(features + self.body(features)))
        if self.skip:
            out = out + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False, antialias=True)
        return out


def generator_context(blocks: int, scale: int) -> int:
    """Input pixels each output pixel depends on, each side: the 9 x 9 head (4), two 3 x 3
    convolutions per block, the body's last (1), each doubling's 3 x 3 (1 px at its own
    size, so 1, 1/2, 1/4 input pixels) and the 9 x 9 tail at the output size (4 / scale).
    Bicubic's reach (2 px) lies within it."""
    doublings = int(math.log2(scale))
    return math.ceil(4 + 2 * blocks + 1 + sum(0.5 ** i for i in range(doublings)) + 4 / scale)


# -- the discriminator ----------------------------------------------------------------------------

class Discriminator(nn.Module):
    """The paper's VGG-style discriminator, for crops of one size."""

    def __init__(self, channels: int, width: int, crop: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, 1, 1), nn.LeakyReLU(0.2)]
        c = width
        for i, c_out in enumerate([width, 2 * width, 2 * width, 4 * width, 4 * width, 8 * width, 8 * width]):
            stride = 2 if i % 2 == 0 else 1
            layers += [nn.Conv2d(c, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]
            c = c_out
        self.features = nn.Sequential(*layers)
        side = crop
        for _ in range(4):
            side = (side + 1) // 2
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * side * side, 16 * width), nn.LeakyReLU(0.2),
                                  nn.Linear(16 * width, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


# -- content losses ------------------------------------------------------------------------------

class RandomFeatures(nn.Module):
    """A VGG-shaped network (3 x 3 convolutions and ReLUs, 64-64, pool, 128-128, pool,
    256-256) with Kaiming-normal weights from a fixed seed: its features after each stage
    are the perceptual loss, each stage's MSE divided by the target features' mean square
    so every stage counts alike whatever the initial scale."""

    def __init__(self, channels: int, seed: int = RANDOM_FEATURES_SEED) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        stages, c = [], channels
        for width, pool in ((64, False), (128, True), (256, True)):
            convs: list[nn.Module] = [nn.AvgPool2d(2)] if pool else []
            for _ in range(2):
                conv = nn.Conv2d(c, width, 3, 1, 1)
                with torch.no_grad():
                    conv.weight.normal_(0, math.sqrt(2 / (9 * c)), generator=generator)
                    nn.init.zeros_(conv.bias)  # type: ignore[arg-type]
                convs += [conv, nn.ReLU()]
                c = width
            stages.append(nn.Sequential(*convs))
        self.stages = nn.ModuleList(stages)

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        total = output.new_zeros(())
        x, y = output, target
        for stage in self.stages:
            x, y = stage(x), stage(y)
            total = total + F.mse_loss(x, y) / y.detach().pow(2).mean().clamp_min(1e-8)
        return total / len(self.stages)


class VGG54(nn.Module):
    """ImageNet VGG19's features up to conv5_4's ReLU (the paper's VGG54)."""

    def __init__(self, path: Path) -> None:
        from safetensors.torch import load_file
        from torchvision.models import vgg19

        super().__init__()
        net = vgg19(weights=None)
        try:
            state = load_file(str(path))
        except Exception as exc:
            raise zoo.UsageError(f"{path} is not a readable safetensors file ({exc})") from None
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise zoo.UsageError(f"{path} does not hold torchvision's VGG19 weights: "
                                 f"{str(exc).splitlines()[0]}") from None
        self.net = net.features[:VGG54_LAYERS]
        self.mean: Tensor
        self.std: Tensor
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        def features(x: Tensor) -> Tensor:
            x = (x + 1) / 2
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            return self.net((x - self.mean) / self.std)

        return F.mse_loss(features(output), features(target)) * VGG_RESCALE


def vgg19_path(given: str) -> Path:
    """The VGG19 weights file content=vgg19 needs, or a one-line error saying how to get it."""
    text = given or os.environ.get(VGG19_ENV, "")
    if not text:
        raise zoo.UsageError(f"content=vgg19 needs ImageNet VGG19 weights on disk. {HOW_TO_GET_VGG19}")
    path = Path(text).expanduser()
    if not path.is_file():
        raise zoo.UsageError(f"VGG19 weights {path} not found. {HOW_TO_GET_VGG19}")
    if path.suffix != ".safetensors":
        raise zoo.UsageError(f"{path} is not a .safetensors file. {HOW_TO_GET_VGG19}")
    return path


# -- the models ---------------------------------------------------------------------------------

class SRResNet(zoo.Model):
    name = "srresnet"
    summary = "Super-resolution x2/x4/x8: the SRGAN paper's residual generator, trained on the content loss alone"
    paper = "Ledig et al. 2017, arXiv:1609.04802"
    family = "super-resolution"
    version = "1"
    Config = SRResNetConfig
    capabilities = frozenset({zoo.Capability.IMAGE_TO_IMAGE})
    data_pairing = ("derived", "paired")
    directions = ("AtoB",)
    tiny_config = {"blocks": 1, "width": 4, "batch_size": 4, "crop": 16, "scale": 2}

    config: SRResNetConfig

    def __init__(self, config: SRResNetConfig, spec: zoo.DataSpec) -> None:
        super().__init__(config, spec)
        self.generator = Generator(spec.channels, spec.target_channels or spec.channels, config.width,
                                   config.blocks, config.scale, skip=config.skip == "bicubic")

    @classmethod
    def check_data(cls, config: SRResNetConfig, spec: zoo.DataSpec) -> None:
        if config.content == "vgg19":
            vgg19_path(config.vgg19_weights)  # refused before any work when the weights are not there

    def _add_content_network(self) -> None:
        """The content loss's frozen network, for training only: upscaling a trained model
        needs no VGG19 file (nor builds one)."""
        if self.config.content == "pixel" or "content" in self.helper_sources():
            return
        channels = self.spec.target_channels or self.spec.channels
        if self.config.content == "vgg19":
            from zoo.features import file_hash

            path = vgg19_path(self.config.vgg19_weights)
            network: nn.Module = VGG54(path)
            source = f"vgg19: {path.resolve()} (sha256 {file_hash(path)})"
        else:
            network = RandomFeatures(channels)
            source = f"random: a VGG-shaped network, Kaiming-normal weights from seed {RANDOM_FEATURES_SEED}"
        self.add_helper("content", network.to(next(self.generator.parameters()).device), source)

    @classmethod
    def derivation(cls, config: SRResNetConfig) -> zoo.Derivation:
        return zoo.Derivation(factor=config.scale, crop=config.crop, flips=config.flips)

    @classmethod
    def default_kimg(cls, config: SRResNetConfig, spec: zoo.DataSpec) -> float:
        """A run given no length: 20,000 crops, 11 minutes on 2 CPU cores at the default
        48 px crops (the paper's SRResNet saw 16 million 96 px crops)."""
        return 20.0

    def context(self) -> int:
        return generator_context(self.config.blocks, self.config.scale)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        self._add_content_network()  # only training asks for optimisers
        betas = (self.config.beta1, self.config.beta2)
        return {"generator": torch.optim.Adam(self.generator.parameters(), self.config.lr, betas=betas)}

    def translate(self, images: Tensor, direction: str = "AtoB") -> Tensor:
        return self.generator(images).clamp(-1, 1)

    def content_loss(self, output: Tensor, target: Tensor) -> Tensor:
        if self.config.content == "pixel":
            return F.mse_loss(output, target)
        self._add_content_network()
        helper = self.helper("content")
        assert isinstance(helper, VGG54 | RandomFeatures)
        return helper.loss(output, target)

    def train_step(self, batches: zoo.Batches, progress: zoo.Progress) -> zoo.Metrics:
        batch = batches.next()
        assert batch.targets is not None  # derived pairs: the crops are the targets
        output = self.generator(batch.images)
        loss = self.content_loss(output, batch.targets)
        self.update("generator", loss)
        return {"loss_g": loss.detach(), "mse": F.mse_loss(output.detach(), batch.targets)}


class SRGAN(SRResNet):
    name = "srgan"
    summary = ("Super-resolution x2/x4/x8 with a GAN: SRResNet's generator, a VGG-style discriminator, "
               "content + 1e-3 x adversarial")
    Config = SRGANConfig
    tiny_config = {**SRResNet.tiny_config, "d_width": 4}

    config: SRGANConfig

    def __init__(self, config: SRGANConfig, spec: zoo.DataSpec) -> None:
        super().__init__(config, spec)
        self.discriminator = Discriminator(spec.target_channels or spec.channels, config.d_width,
                                           spec.target_height or spec.height)

    @classmethod
    def default_kimg(cls, config: SRResNetConfig, spec: zoo.DataSpec) -> float:
        """6,000 crops, about 10 minutes on 2 CPU cores at 48 px: each step also trains and
        runs the discriminator, and the content network."""
        return 6.0

    def training_only(self) -> tuple[str, ...]:
        return ("discriminator",)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = (self.config.beta1, self.config.beta2)
        return {**super().configure_optimizers(),
                "discriminator": torch.optim.Adam(self.discriminator.parameters(), self.config.lr, betas=betas)}

    def train_step(self, batches: zoo.Batches, progress: zoo.Progress) -> zoo.Metrics:
        batch = batches.next()
        assert batch.targets is not None
        output = self.generator(batch.images)
        real_logits = self.discriminator(batch.targets)
        fake_logits = self.discriminator(output.detach())
        loss_d = losses.discriminator_loss("bce", real_logits, fake_logits)
        self.update("discriminator", loss_d)
        with zoo.frozen(self.discriminator):
            adversarial = losses.generator_loss("bce", self.discriminator(output))
            content = self.content_loss(output, batch.targets)
            loss_g = content + self.config.adversarial_weight * adversarial
            self.update("generator", loss_g)
        return {**losses.step_metrics("bce", loss_d, loss_g, real_logits, fake_logits),
                "content": content.detach(), "adversarial": adversarial.detach(),
                "mse": F.mse_loss(output.detach(), batch.targets)}
