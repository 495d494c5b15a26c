"""ProGAN: Karras, Aila, Laine & Lehtinen, "Progressive Growing of GANs for Improved Quality,
Stability, and Variation", ICLR 2018 (arXiv:1710.10196).

Seed 004 lists it among the GAN's friends: both networks start at 4 x 4 and grow by a
resolution at a time, each new layer faded in while the ones below keep training, which
makes the later, harder stages start from a model that already knows the coarse structure.
The parts of the paper, and where each lives here:

* **Equalized learning rate** (section 4.1): every weight is drawn from N(0, 1) and scaled at
  run time by He's constant gain / sqrt(fan_in) (:class:`EqualizedConv2d`,
  :class:`EqualizedLinear`). Adam's steps are about ``lr`` in each raw weight whatever its
  layer's fan-in, so every layer learns at the same speed relative to its scale.
* **Pixel norm** (4.2): after every convolution of the generator, each pixel's feature vector
  is scaled to unit mean square (:class:`PixelNorm`); the latent vector is normalised the
  same way on its way in.
* **Minibatch standard deviation** (3): the discriminator's last block sees, as one more
  feature map, the standard deviation of its features across groups of ``mbstd_group``
  images. Any batch size works: a batch that does not divide into groups is split into
  groups as equal as can be (a last batch of 7 with groups of 4: one of 4, one of 3), not
  refused as the paper's reshape would (:class:`MinibatchStdDev`).
* **WGAN-GP with the drift term** (appendix A.1): the critic's loss
  D(G(z)) - D(x) + 10 * gradient penalty + 0.001 * D(x)^2, the last keeping its outputs
  from drifting far from zero; one critic step per generator step.
* **Adam(1e-3, betas 0 / 0.99)**, its state reset whenever a fade begins or ends (the
  paper's code: ``reset_opt_for_new_lod``).
* **Fade-in** (figure 2): when the networks grow from resolution r to 2r, the new layers'
  output is blended with the old path's by alpha, which rises linearly from 0 to 1 over
  ``fade_kimg`` thousand images; real images are blended the same way between their 2r and
  r versions, so the critic never sees a mismatch. Then ``stage_kimg`` of training at 2r.
* **An EMA of the generator** (decay 0.999, the paper's G_smoothing) draws every sample and
  preview. zoo's averages warm up as (1 + t) / (10 + t) until that reaches the decay (9,000
  steps), so that a short run's average does not hold on to its first weights: about 0.997
  at the 3,000 steps of a 20-minute CPU run.

The schedule is in thousands of images shown (kimg), as in the paper, and ``Progress``
carries the count. The paper's 800 + 800 kimg per resolution (600 + 600 in its code) is
hours on a GPU; zoo's defaults are sized for minutes on a CPU (``stage_kimg`` and
``fade_kimg``, overridable), and a run given a length with ``--kimg`` shares it equally
between the phases no key fixes, so ``zoo train progan --kimg 300`` grows to full size and
then trains there. A run given no length trains through the schedule once. The schedule is
fixed at a run's first step and kept in its checkpoint: a resumed run asked for more
``--kimg`` or ``--steps`` trains on at the resolution it reached.

Sizes run from 4 up to the data's size, a power of two; other square sizes (28 px digits) are
padded with the background to the next one, as the paper's own data tool pads MNIST to 32,
and samples are cropped back. The stage, alpha and images shown are in the checkpoint, so a
run resumed in the middle of a fade continues exactly where it stopped, and ``zoo sample``
draws at the resolution reached, upsampled to the data's size (previews too: the GIF shows
the model growing).

Against dcgan on Fashion-MNIST at 32 px for the same minutes on a CPU
(benchmarks/progan.py versus; the figures: docs/results/progan.md), progan spends much of a
short budget growing and its full-size images cost more; progressive growing pays at high
resolution, over long training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import zoo
from zoo import losses, tricks
from zoo.config import option
from zoo.plugins.progan.layers import EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm

LATENT_GAIN = math.sqrt(2) / 4
"""The gain of the generator's first layer, a dense layer to 16 times its width (4 x 4
positions): the paper's code divides He's gain by 4 there."""


@dataclass
class ProGANConfig(zoo.Config):
    batch_size: int = option(64, "images per batch up to 32 px, halved per doubling above it "
                                 "(at least 4); batch_sizes overrides any resolution")
    batch_sizes: str = option("", "batch size per resolution, overriding batch_size: '4:128,8:128,16:64'")
    latent_dim: int = option(128, "length of the noise vector z (the paper: 512)")
    fmap_base: int = option(256, "channels at resolution r: min(fmap_max, 2 fmap_base / r), the "
                                 "paper's nf() (the paper: 8192, 512 channels at 32 px)")
    fmap_max: int = option(128, "the most channels of any layer (the paper: 512)")
    stage_kimg: float | None = option(None, "thousands of images trained at each resolution once "
                                            "faded in (the paper: 800, its code 600); default 15, or a "
                                            "share of --kimg")
    fade_kimg: float | None = option(None, "thousands of images over which each new resolution fades "
                                           "in (the paper: 800, its code 600); default 15, or a share of "
                                           "--kimg")
    lr: float = option(1e-3, "Adam learning rate, both networks (the paper: 0.001)")
    beta1: float = option(0.0, "Adam beta1 (the paper: 0)")
    beta2: float = option(0.99, "Adam beta2 (the paper: 0.99)")
    gp_weight: float = option(10.0, "lambda: weight of the WGAN-GP gradient penalty (the paper: 10)")
    drift: float = option(0.001, "epsilon: weight of the drift term E[D(x)^2] (the paper: 0.001)")
    mbstd_group: int = option(4, "images per minibatch-stddev group (the paper: 4); 0 or 1 turns the layer off")
    pixel_norm: bool = option(True, "pixel norm in the generator, and on z (the paper: on)")
    equalized_lr: bool = option(True, "equalized learning rate: weights scaled at run time (the paper: on)")
    ema: float = option(0.999, "decay of the generator's moving average that samples are drawn from; 0 = off")
    reset_optimizers: bool = option(True, "reset Adam's state when a new resolution starts (the paper's code)")
    leaky_slope: float = option(0.2, "negative slope of every LeakyReLU")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.at_least(1, "latent_dim", "fmap_base", "fmap_max")
        self.not_negative("gp_weight", "drift", "mbstd_group")
        for key in ("stage_kimg", "fade_kimg"):
            value = getattr(self, key)
            if value is not None and value < 0:
                raise zoo.UsageError(f"{key} must be 0 or more thousands of images, got {value}")
        if self.stage_kimg == 0 and self.fade_kimg == 0:
            raise zoo.UsageError("stage_kimg and fade_kimg cannot both be 0: the model would never train "
                                 "at a resolution before the next")
        self.positive("lr")
        self.below_one("beta1", "beta2")
        if not 0.0 <= self.ema < 1.0:
            raise zoo.UsageError(f"ema must be within [0, 1) (0 = off, 0.999 the paper's), got {self.ema}")
        parse_batch_sizes(self.batch_sizes)

    def channels(self, resolution: int) -> int:
        """The paper's nf(): min(fmap_max, fmap_base / 2^(log2(r) - 1))."""
        return max(1, min(self.fmap_max, 2 * self.fmap_base // resolution))


def parse_batch_sizes(text: str) -> dict[int, int]:
    """'4:128,8:64' -> {4: 128, 8: 64}; a UsageError says what is wrong."""
    sizes: dict[int, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        resolution, sep, size = item.partition(":")
        try:
            r, n = int(resolution), int(size)
        except ValueError:
            r = n = 0
        if not sep or r < 4 or r & (r - 1) or n < 1:
            raise zoo.UsageError(f"batch_sizes takes RESOLUTION:SIZE pairs such as '4:128,8:64' (resolutions "
                                 f"are powers of two from 4), got {item!r}")
        sizes[r] = n
    return sizes


# -- the schedule -------------------------------------------------------------------------------

DEFAULT_PHASE_KIMG = 15.0
"""The default length of each stage and each fade, in thousands of images: a 32 px run has 4
stages and 3 fades, 105 kimg; on this project's 2-core CPU it reaches full size after 8.5
minutes (benchmarks/progan.py)."""


@dataclass(frozen=True)
class Schedule:
    """Which resolution trains, and how far faded in, after a given number of images.

    Level 0 is 4 x 4 and trains for ``stage`` images; each later level fades in over ``fade``
    images, then trains for ``stage``. After the last level's stage training goes on at full
    size."""

    levels: int
    stage: int
    fade: int

    def __post_init__(self) -> None:
        if self.levels > 1 and self.stage + self.fade <= 0:
            raise zoo.UsageError("progan's schedule rounds to no images per stage and fade; give a longer "
                                 "--kimg or larger stage_kimg / fade_kimg")

    def at(self, images: int) -> tuple[int, float]:
        """(level, alpha) after ``images`` images: alpha < 1 while the level fades in."""
        if images < self.stage or self.levels == 1:
            return 0, 1.0
        per_level = self.fade + self.stage
        level = 1 + (images - self.stage) // per_level
        if level >= self.levels:
            return self.levels - 1, 1.0
        into = images - self.stage - (level - 1) * per_level
        return level, min(1.0, into / self.fade) if self.fade else 1.0

    @property
    def grown(self) -> int:
        """Images shown by the end of the last resolution's stage: one pass through the schedule."""
        return self.stage + (self.levels - 1) * (self.fade + self.stage)

    def to_dict(self) -> dict[str, int]:
        return {"levels": self.levels, "stage": self.stage, "fade": self.fade}


def schedule(config: ProGANConfig, levels: int, total_images: int = 0) -> Schedule:
    """A new run's schedule: the config's keys; the phases they leave unset share what remains
    of ``--kimg`` (``total_images``) equally if it was given, else last
    :data:`DEFAULT_PHASE_KIMG` each."""
    stages, fades = levels, levels - 1
    fixed = (stages * config.stage_kimg if config.stage_kimg is not None else 0.0) + \
            (fades * config.fade_kimg if config.fade_kimg is not None else 0.0)
    unset = (stages if config.stage_kimg is None else 0) + (fades if config.fade_kimg is None else 0)
    share = DEFAULT_PHASE_KIMG
    if total_images and unset:
        share = max(0.0, total_images / 1000 - fixed) / unset
    stage = config.stage_kimg if config.stage_kimg is not None else share
    fade = config.fade_kimg if config.fade_kimg is not None else share
    return Schedule(levels, round(stage * 1000), round(fade * 1000))


# -- the paper's layers -------------------------------------------------------------------------


def _conv(c_in: int, c_out: int, config: ProGANConfig, kernel: int = 3, pixel_norm: bool = False) -> list[nn.Module]:
    layers: list[nn.Module] = [EqualizedConv2d(c_in, c_out, kernel, equalized=config.equalized_lr),
                               nn.LeakyReLU(config.leaky_slope)]
    if pixel_norm and config.pixel_norm:
        layers.append(PixelNorm())
    return layers


def lerp(low: Tensor, high: Tensor, alpha: float) -> Tensor:
    """The fade-in: the old path's ``low`` for alpha 0, the new layers' ``high`` for 1."""
    return high if alpha >= 1.0 else torch.lerp(low, high, alpha)


# -- the networks --------------------------------------------------------------------------------

class Generator(nn.Module):
    """z -> images at the resolution of ``level`` (4 * 2^level), the newest level faded in by
    ``alpha``. Every level's layers exist from the start; only those up to ``level`` run."""

    def __init__(self, config: ProGANConfig, channels: int, levels: int) -> None:
        super().__init__()
        eq = config.equalized_lr
        c = config.channels(4)
        self.latent_norm = PixelNorm() if config.pixel_norm else nn.Identity()
        self.dense = EqualizedLinear(config.latent_dim, c * 16, gain=LATENT_GAIN, equalized=eq)
        self.first = nn.Sequential(nn.LeakyReLU(config.leaky_slope),
                                   PixelNorm() if config.pixel_norm else nn.Identity(),
                                   *_conv(c, c, config, pixel_norm=True))
        self.blocks = nn.ModuleList()
        self.to_rgb = nn.ModuleList([EqualizedConv2d(c, channels, 1, gain=1.0, equalized=eq)])
        for level in range(1, levels):
            c_in, c_out = config.channels(4 * 2 ** (level - 1)), config.channels(4 * 2 ** level)
            self.blocks.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                             *_conv(c_in, c_out, config, pixel_norm=True),
                                             *_conv(c_out, c_out, config, pixel_norm=True)))
            self.to_rgb.append(EqualizedConv2d(c_out, channels, 1, gain=1.0, equalized=eq))

    def forward(self, z: Tensor, level: int, alpha: float = 1.0) -> Tensor:
        x = self.dense(self.latent_norm(z.flatten(1))).view(z.shape[0], -1, 4, 4)
        x = self.first(x)
        for block in self.blocks[:level - 1] if level > 0 else []:
            x = block(x)
        if level == 0:
            return self.to_rgb[0](x)
        image = self.to_rgb[level](self.blocks[level - 1](x))
        if alpha >= 1.0:
            return image
        return lerp(F.interpolate(self.to_rgb[level - 1](x), scale_factor=2, mode="nearest"), image, alpha)


class Discriminator(nn.Module):
    """The generator's mirror: images at the resolution of ``level`` -> one score each, the
    newest level faded in by ``alpha``; minibatch stddev before the last block."""

    def __init__(self, config: ProGANConfig, channels: int, levels: int) -> None:
        super().__init__()
        eq = config.equalized_lr
        c = config.channels(4)
        self.from_rgb = nn.ModuleList([nn.Sequential(*_conv(channels, c, config, kernel=1))])
        self.blocks = nn.ModuleList()
        for level in range(1, levels):
            c_here, c_below = config.channels(4 * 2 ** level), config.channels(4 * 2 ** (level - 1))
            self.from_rgb.append(nn.Sequential(*_conv(channels, c_here, config, kernel=1)))
            self.blocks.append(nn.Sequential(*_conv(c_here, c_here, config), *_conv(c_here, c_below, config),
                                             nn.AvgPool2d(2)))
        self.stddev = MinibatchStdDev(config.mbstd_group) if config.mbstd_group > 1 else None
        extra = 1 if self.stddev is not None else 0
        self.last = nn.Sequential(*_conv(c + extra, c, config), nn.Flatten(),
                                  EqualizedLinear(c * 16, c, equalized=eq), nn.LeakyReLU(config.leaky_slope),
                                  EqualizedLinear(c, 1, gain=1.0, equalized=eq))

    def forward(self, images: Tensor, level: int, alpha: float = 1.0) -> Tensor:
        x = self.from_rgb[level](images)
        if level > 0:
            x = self.blocks[level - 1](x)
            if alpha < 1.0:
                x = lerp(self.from_rgb[level - 1](F.avg_pool2d(images, 2)), x, alpha)
            for block in reversed(self.blocks[:level - 1]):
                x = block(x)
        if self.stddev is not None:
            x = self.stddev(x)
        return self.last(x)


def real_at(images: Tensor, level: int, levels: int, alpha: float) -> Tensor:
    """Full-size real images as the critic sees them at ``level``: averaged down to its
    resolution and, while it fades in, blended with their half-resolution version shown
    blocky, just as the generator's old path is upsampled (the paper's code does the same)."""
    image = F.avg_pool2d(images, 2 ** (levels - 1 - level)) if level < levels - 1 else images
    if alpha >= 1.0 or level == 0:
        return image
    coarse = F.interpolate(F.avg_pool2d(image, 2), scale_factor=2, mode="nearest")
    return lerp(coarse, image, alpha)


def critic_loss(real_scores: Tensor, fake_scores: Tensor, penalty: Tensor, gp_weight: float,
                drift: float) -> tuple[Tensor, dict[str, Tensor]]:
    """The paper's critic loss, E[D(G(z))] - E[D(x)] + lambda * penalty + epsilon * E[D(x)^2],
    and its parts for the logs: the Wasserstein estimate E[D(x)] - E[D(G(z))], the penalty
    and the drift E[D(x)^2] (the term that keeps the critic's outputs near zero, which a
    Wasserstein loss alone leaves free to wander)."""
    real_scores, fake_scores = real_scores.float(), fake_scores.float()
    wasserstein = real_scores.mean() - fake_scores.mean()
    drift_term = real_scores.pow(2).mean()
    loss = -wasserstein + gp_weight * penalty + drift * drift_term
    return loss, {"wasserstein": wasserstein.detach(), "gradient_penalty": penalty.detach(),
                  "drift": drift_term.detach()}


# -- the model ------------------------------------------------------------------------------------

class ProGAN(zoo.Model):
    name = "progan"
    summary = "Progressive growing: 4x4 up to the data's size, each level faded in; WGAN-GP, equalized lr"
    paper = "Karras et al. 2018, arXiv:1710.10196"
    family = "GAN"
    version = "1"
    Config = ProGANConfig
    capabilities = frozenset({zoo.Capability.LATENT})
    tiny_config = {"fmap_base": 32, "fmap_max": 8, "latent_dim": 8, "batch_size": 8,
                   "stage_kimg": 0.016, "fade_kimg": 0.016}
    state_metrics = ("resolution", "alpha")

    config: ProGANConfig

    def __init__(self, config: ProGANConfig, spec: zoo.DataSpec) -> None:
        super().__init__(config, spec)
        self.size = padded_size(spec)
        self.levels = int(math.log2(self.size)) - 1
        self.pad = (self.size - spec.height) // 2
        """Rows and columns of background before the image; one more after it when the
        difference is odd (27 px in 32)."""
        self.pad_after = self.size - spec.height - self.pad
        self.generator = Generator(config, spec.channels, self.levels)
        self.discriminator = Discriminator(config, spec.channels, self.levels)
        self.generator_ema = tricks.ema_copy(self.generator) if config.ema else None
        self.level, self.alpha = 0, 1.0
        """Where the schedule stood at the last step: samples are drawn there."""
        self.images_shown = 0
        self.run_schedule: Schedule | None = None
        """The schedule, fixed at the run's first step and checkpointed."""

    @classmethod
    def check_data(cls, config: ProGANConfig, spec: zoo.DataSpec) -> None:
        padded_size(spec)

    @classmethod
    def default_kimg(cls, config: ProGANConfig, spec: zoo.DataSpec) -> float:
        """A run given no length goes through the schedule once."""
        return schedule(config, int(math.log2(padded_size(spec))) - 1).grown / 1000

    def schedule(self, total_images: int = 0) -> Schedule:
        """The run's schedule: fixed at its first step from the config and the length asked
        for then, and kept: a resumed run given another length trains on where it was."""
        if self.run_schedule is None:
            self.run_schedule = schedule(self.config, self.levels, total_images)
        return self.run_schedule

    def batch_size(self, level: int) -> int:
        resolution = 4 * 2 ** level
        default = max(4, self.config.batch_size // max(1, resolution // 32))
        return parse_batch_sizes(self.config.batch_sizes).get(resolution, default)

    def batch_sizes(self) -> set[int]:
        return {self.batch_size(level) for level in range(self.levels)}

    def uncompiled(self) -> dict[str, str]:
        if self.config.gp_weight:
            return {"discriminator": losses.PENALTY_UNCOMPILED}
        return {}

    def training_only(self) -> tuple[str, ...]:
        return ("discriminator",) + (("generator",) if self.generator_ema is not None else ())

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = (self.config.beta1, self.config.beta2)
        return {"generator": torch.optim.Adam(self.generator.parameters(), self.config.lr, betas=betas, eps=1e-8),
                "discriminator": torch.optim.Adam(self.discriminator.parameters(), self.config.lr, betas=betas,
                                                  eps=1e-8)}

    # -- training ---------------------------------------------------------------------------------

    def train_step(self, batches: zoo.Batches, progress: zoo.Progress) -> zoo.Metrics:
        cfg = self.config
        level, alpha = self.schedule(progress.total_images).at(progress.images)
        if cfg.reset_optimizers and progress.step and (level, alpha < 1) != (self.level, self.alpha < 1):
            for optimizer in self.optimizers.values():
                optimizer.state.clear()  # Adam starts afresh when a fade begins and when it ends
        self.level, self.alpha = level, alpha
        real = real_at(self.padded(batches.next(self.batch_size(level)).images), level, self.levels, alpha)

        def critic(images: Tensor) -> Tensor:
            return self.discriminator(images, level, alpha)

        with torch.no_grad():
            fake = self.generator(self.sample_latent(real.shape[0]), level, alpha)
        real_scores, fake_scores = critic(real), critic(fake)
        penalty = losses.gradient_penalty(critic, real, fake) if cfg.gp_weight else real.new_zeros(())
        loss_d, parts = critic_loss(real_scores, fake_scores, penalty, cfg.gp_weight, cfg.drift)
        self.update("discriminator", loss_d)

        with zoo.frozen(self.discriminator):
            loss_g = -critic(self.generator(self.sample_latent(real.shape[0]), level, alpha)).mean()
            self.update("generator", loss_g)
        if self.generator_ema is not None:
            tricks.ema_update(self.generator_ema, self.generator, tricks.ema_decay(cfg.ema, progress.step))
        self.images_shown = progress.images + real.shape[0]
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), **parts,
                "resolution": float(4 * 2 ** level), "alpha": alpha}

    def padded(self, images: Tensor) -> Tensor:
        """Images at the networks' size: padded with the background (-1) when the data is not a
        power of two, as the paper's data tool pads 28 px MNIST to 32."""
        if not self.pad and not self.pad_after:
            return images
        return F.pad(images, [self.pad, self.pad_after, self.pad, self.pad_after], value=-1.0)

    # -- sampling -----------------------------------------------------------------------------------

    def generate(self, z: Tensor, conditions: zoo.Conditions | None = None) -> Tensor:
        """Images at the resolution reached, shown at the data's size: an earlier stage's
        are upsampled (nearest), padding is cropped away."""
        generator = self.generator_ema if self.generator_ema is not None else self.generator
        images = generator(z, self.level, self.alpha)
        if images.shape[-1] != self.size:
            images = F.interpolate(images, size=(self.size, self.size), mode="nearest")
        if self.pad or self.pad_after:
            end = self.size - self.pad_after
            images = images[..., self.pad:end, self.pad:end]
        return images.clamp(-1, 1)

    # -- state beyond the weights ---------------------------------------------------------------

    def extra_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"level": self.level, "resolution": 4 * 2 ** self.level, "alpha": self.alpha,
                                 "images": self.images_shown}
        if self.run_schedule is not None:
            state["schedule"] = self.run_schedule.to_dict()
        return state

    def load_extra_state(self, state: Any) -> None:
        if state:
            self.level, self.alpha = int(state["level"]), float(state["alpha"])
            self.images_shown = int(state.get("images", 0))
            if "schedule" in state:
                saved = state["schedule"]
                self.run_schedule = Schedule(int(saved["levels"]), int(saved["stage"]), int(saved["fade"]))


def padded_size(spec: zoo.DataSpec) -> int:
    """The networks' size for the data: its side if a power of two, else the next one up;
    a UsageError for data ProGAN cannot grow to."""
    if spec.height != spec.width:
        raise zoo.UsageError(f"progan grows square images, the data is {spec.height}x{spec.width}; "
                             "prep it with --size 32 (or 64, 128, ...)")
    size = 2 ** math.ceil(math.log2(max(spec.height, 4)))
    if spec.height < 8:
        raise zoo.UsageError(f"progan needs images of at least 8 px to grow from 4, the data is "
                             f"{spec.height} px; prep it with --size 32")
    return size
