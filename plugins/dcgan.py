"""DCGAN: Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks", ICLR 2016 (arXiv:1511.06434).

Two network families, chosen by the data's size:

* **lab** (28 x 28): the networks of the Romanian GAN lab (seed 000) for MNIST-sized
  digits: a generator of four transposed convolutions (128-64-32-1 channels) and a
  discriminator of four strided convolutions (16-32-64-128) with a linear head. The lab
  ends its generator with a sigmoid on data in [0, 1]; zoo's images live in [-1, 1], so a
  tanh takes its place (tanh(x) = 2 sigmoid(2x) - 1: the same family of functions).
* **radford** (16, 32, 64, 128, 256 square): the paper's all-convolutional networks, batch
  norm everywhere but the generator's output and the discriminator's input, ReLU in the
  generator, LeakyReLU(0.2) in the discriminator.

Both start from N(0, 0.02) weights and train with Adam(2e-4, betas 0.5 / 0.999). The loss
is the paper's one-logit binary cross-entropy by default; every loss and training aid of
:mod:`zoo.losses` is a ``--set`` away (``loss=hinge``, ``label_noise=0.3``, ``ema=0.999``,
...), and seed 002's real label of 0.9 or seed 003's 0.8 / 0.1 smooth the targets.

The network builders and the training step here are the shared building blocks of the
other convolutional GANs: cgan, wgan and wgan-gp subclass :class:`DCGAN` and change its
networks, its defaults, or how the critic sees a label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

import zoo
from zoo import augment, losses, priors, tricks
from zoo.config import option

LAB_SIZE = 28
LAB_WIDTHS = {"generator": 32, "discriminator": 16}
RADFORD_WIDTH = 64
Norm = Literal["batch", "layer", "none"]
EMA_CALIBRATION_SEED, EMA_CALIBRATION_SIZE, EMA_CALIBRATION_BATCHES = 0, 128, 4


@dataclass
class DCGANConfig(losses.AdversarialConfig):
    batch_size: int = option(128, "images per training batch (the paper: 128)")
    latent_dim: int = option(100, "length of the noise vector z")
    noise: str = option("normal", "the prior z is drawn from: normal:MEAN,STD, uniform:LOW,HIGH, "
                                  "gamma:SHAPE,SCALE or laplace:LOC,SCALE")
    architecture: Literal["auto", "lab", "radford"] = option(
        "auto", "auto: lab networks for 28x28 data, Radford et al.'s for 16..256 powers of two")
    g_width: int | None = option(
        None, "generator width: channels of its last hidden layer (default 32 lab, 64 radford)")
    d_width: int | None = option(
        None, "discriminator width: channels of its first layer (default 16 lab, 64 radford)")
    d_norm: Norm = option("batch", "normalisation in the discriminator: batch (the paper), layer "
                                   "or none (gp_weight, r1_weight and r2_weight refuse batch norm: it mixes images)")
    optimizer: Literal["adam", "rmsprop"] = option("adam", "adam (lr, beta1, beta2) or rmsprop (lr)")
    lr: float = option(2e-4, "learning rate, both networks")
    beta1: float = option(0.5, "Adam beta1")
    beta2: float = option(0.999, "Adam beta2")
    leaky_slope: float = option(0.2, "negative slope of the discriminator's LeakyReLU")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.at_least(1, "latent_dim", "g_width", "d_width")
        priors.parse(self.noise)
        self.positive("lr")
        self.below_one("beta1", "beta2")


# -- networks ---------------------------------------------------------------------------------

def pick_architecture(requested: str, spec: zoo.DataSpec) -> str:
    """The network family for data of this shape, or a UsageError saying what fits."""
    square = spec.height == spec.width
    size = spec.height
    radford_ok = square and 16 <= size <= 256 and size & (size - 1) == 0
    lab_ok = square and size == LAB_SIZE
    if requested == "auto":
        requested = "lab" if lab_ok else "radford"
    if requested == "lab" and not lab_ok:
        raise zoo.UsageError(f"the lab networks need 28x28 images, the data is "
                             f"{spec.height}x{spec.width}; prep it with --size 28")
    if requested == "radford" and not radford_ok:
        raise zoo.UsageError(f"DCGAN needs square images of 28 (lab) or 16, 32, 64, 128 or 256 "
                             f"pixels, the data is {spec.height}x{spec.width}; "
                             "prep it with --size 32 or --size 64")
    return requested


def _up(c_in: int, c_out: int, stride: int, padding: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(c_in, c_out, 4, stride, padding, bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def _down(c_in: int, c_out: int, stride: int, padding: int, slope: float, norm: str = "batch",
          bias: bool | None = None) -> list[nn.Module]:
    bias = norm == "none" if bias is None else bias  # a norm's own shift makes a bias redundant
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, stride, padding, bias=bias)]
    if norm == "batch":
        layers.append(nn.BatchNorm2d(c_out))
    elif norm == "layer":
        # Layer norm over each image's channels and positions: Gulrajani et al.'s drop-in for
        # batch norm in a critic, which must score each image on its own.
        layers.append(nn.GroupNorm(1, c_out))
    layers.append(nn.LeakyReLU(slope, inplace=True))
    return layers


class Generator(nn.Module):
    """z (N x latent_dim) -> images in [-1, 1]."""

    def __init__(self, body: nn.Sequential) -> None:
        super().__init__()
        self.body = body

    def forward(self, z: Tensor) -> Tensor:
        return self.body(z.view(z.shape[0], -1, 1, 1))


def lab_generator(latent_dim: int, width: int, channels: int) -> Generator:
    """The lab's 28x28 generator: 4x4 -> 8x8 -> 16x16 -> 28x28."""
    return Generator(nn.Sequential(
        *_up(latent_dim, 4 * width, 1, 0),
        *_up(4 * width, 2 * width, 2, 1),
        *_up(2 * width, width, 2, 1),
        nn.ConvTranspose2d(width, channels, 4, 2, 3, bias=False),  # 16 -> 28
        nn.Tanh(),
    ))


def lab_features(width: int, channels: int, slope: float, norm: str = "batch") -> tuple[nn.Sequential, int]:
    """The lab's 28x28 discriminator body: 14x14 -> 7x7 -> 4x4 -> 1x1, flattened."""
    body = nn.Sequential(
        *_down(channels, width, 2, 1, slope, norm="none", bias=norm == "none"),  # the lab's: no bias
        *_down(width, 2 * width, 2, 1, slope, norm),
        *_down(2 * width, 4 * width, 1, 0, slope, norm),
        *_down(4 * width, 8 * width, 1, 0, slope, norm),
        nn.Flatten(),
    )
    return body, 8 * width


def radford_generator(latent_dim: int, width: int, channels: int, size: int) -> Generator:
    """The paper's generator: project to 4x4, then double the size until ``size``."""
    doublings = int(math.log2(size)) - 2
    c = width * 2 ** (doublings - 1)
    layers = _up(latent_dim, c, 1, 0)
    for _ in range(doublings - 1):
        layers += _up(c, c // 2, 2, 1)
        c //= 2
    layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1, bias=False), nn.Tanh()]
    return Generator(nn.Sequential(*layers))


def radford_features(width: int, channels: int, size: int, slope: float,
                     norm: str = "batch") -> tuple[nn.Sequential, int]:
    """The paper's discriminator body: halve the size down to 4x4, flattened. The paper's
    last 4x4 convolution over it is the same function as a linear head on these features."""
    layers = _down(channels, width, 2, 1, slope, norm="none", bias=norm == "none")  # the paper's: no bias
    c, s = width, size // 2
    while s > 4:
        layers += _down(c, 2 * c, 2, 1, slope, norm)
        c, s = 2 * c, s // 2
    layers.append(nn.Flatten())
    return nn.Sequential(*layers), c * 4 * 4


class Discriminator(nn.Module):
    """A convolutional body and a linear head: images -> logits."""

    def __init__(self, features: nn.Sequential, feature_dim: int, logits: int) -> None:
        super().__init__()
        self.features = features
        self.head = nn.Linear(feature_dim, logits)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def build_generator(config: DCGANConfig, spec: zoo.DataSpec, input_dim: int) -> Generator:
    """The generator for ``spec``, taking vectors of ``input_dim`` (z, or z with a label code)."""
    if pick_architecture(config.architecture, spec) == "lab":
        return lab_generator(input_dim, config.g_width or LAB_WIDTHS["generator"], spec.channels)
    return radford_generator(input_dim, config.g_width or RADFORD_WIDTH, spec.channels, spec.height)


def build_features(config: DCGANConfig, spec: zoo.DataSpec) -> tuple[nn.Sequential, int]:
    """The discriminator body for ``spec`` and the length of its feature vector."""
    if pick_architecture(config.architecture, spec) == "lab":
        return lab_features(config.d_width or LAB_WIDTHS["discriminator"], spec.channels,
                            config.leaky_slope, config.d_norm)
    return radford_features(config.d_width or RADFORD_WIDTH, spec.channels, spec.height,
                            config.leaky_slope, config.d_norm)


def optimisers(generator: nn.Module, discriminator: nn.Module, config: DCGANConfig) -> dict[str, torch.optim.Optimizer]:
    """One optimiser per network: Adam(lr, betas (beta1, beta2)), or RMSprop(lr) (WGAN)."""
    if config.optimizer == "rmsprop":
        return {"generator": torch.optim.RMSprop(generator.parameters(), config.lr),
                "discriminator": torch.optim.RMSprop(discriminator.parameters(), config.lr)}
    betas = (config.beta1, config.beta2)
    return {"generator": torch.optim.Adam(generator.parameters(), config.lr, betas=betas),
            "discriminator": torch.optim.Adam(discriminator.parameters(), config.lr, betas=betas)}


# -- the model ----------------------------------------------------------------------------------

class DCGAN(zoo.Model):
    name = "dcgan"
    summary = "Deep convolutional GAN; the lab's 28x28 networks or the paper's 16-256 px ones"
    paper = "Radford, Metz & Chintala 2016, arXiv:1511.06434"
    family = "GAN"
    version = "1"
    Config = DCGANConfig
    capabilities = frozenset({zoo.Capability.LATENT})
    tiny_config = {"g_width": 4, "d_width": 4, "batch_size": 8, "latent_dim": 8}
    # On a few hundred images (one digit of the offline MNIST) D learns them by heart and G
    # collapses: 3 of 4 seeds without augmentation, none of 4 with it (benchmarks/cgan_digits.py).
    small_data = {"augment": "translation,cutout"}
    state_metrics = ("augment_p",)

    config: DCGANConfig
    adaptive: augment.AdaptiveAugment | None

    def __init__(self, config: DCGANConfig, spec: zoo.DataSpec) -> None:
        super().__init__(config, spec)
        self.generator, self.discriminator = self.build_networks(config, spec)
        zoo.init_normal(self)
        self.initialise()
        if config.spectral_norm:
            tricks.spectral_normalise(self.discriminator)
        # The moving average of the generator, used for sampling when ``ema`` is on. Its
        # batch-norm statistics are measured afresh before it is next used (see _calibrated).
        self.generator_ema = tricks.ema_copy(self.generator) if config.ema else None
        self._ema_stale = True
        # augment=ada: the augmentation pipeline and its probability p, kept in the checkpoint.
        self.adaptive = losses.adaptive_augment(config)

    # -- what a subclass changes ---------------------------------------------------------------

    def build_networks(self, config: DCGANConfig, spec: zoo.DataSpec) -> tuple[nn.Module, nn.Module]:
        """The generator and the discriminator (or critic)."""
        features, feature_dim = build_features(config, spec)
        return (build_generator(config, spec, config.latent_dim),
                Discriminator(features, feature_dim, losses.logits_per_image(config.loss)))

    def initialise(self) -> None:
        """Weights that DCGAN's N(0, 0.02) initialisation does not cover."""

    def run_generator(self, generator: nn.Module, z: Tensor, labels: Tensor | None) -> Tensor:
        return generator(z)

    def critic(self, images: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """The discriminator's logits for images, and class logits for models that classify."""
        return self.discriminator(images), None

    def penalty_scale(self, progress: zoo.Progress) -> float:
        """What the gradient penalties' weights (gp, R1, R2) are multiplied by at this point
        of training: 1, unless a model schedules them (R3GAN lowers its gamma)."""
        return 1.0

    def class_loss(self, class_logits: Tensor, labels: Tensor) -> Tensor:
        """The auxiliary classifier's loss, for models whose :meth:`critic` classifies."""
        raise NotImplementedError(f"{self.name} has no classifier")

    # -- the contract ----------------------------------------------------------------------------

    @classmethod
    def check_data(cls, config: DCGANConfig, spec: zoo.DataSpec) -> None:
        pick_architecture(config.architecture, spec)

    def uncompiled(self) -> dict[str, str]:
        if self.config.gp_weight or self.config.r1_weight or self.config.r2_weight:
            return {"discriminator": losses.PENALTY_UNCOMPILED}
        return {}

    def training_only(self) -> tuple[str, ...]:
        # Samples come from the moving average when there is one: the live generator trains it.
        return (("discriminator",) + (("generator",) if self.generator_ema is not None else ())
                + (("adaptive",) if self.adaptive is not None else ()))

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return optimisers(self.generator, self.discriminator, self.config)

    def batches_per_step(self) -> int:
        return self.config.n_critic

    def generate(self, z: Tensor, conditions: zoo.Conditions | None = None) -> Tensor:
        labels = (conditions or {}).get("class")
        if self.generator_ema is None:
            return self.run_generator(self.generator, z, labels)
        return self.run_generator(self._calibrated(), z, labels)

    def _calibrated(self) -> nn.Module:
        """The averaged generator, its batch-norm statistics measured on fixed latents (a
        seeded generator of their own: sampling stays reproducible, training's random
        stream untouched) whenever its weights have moved since they were last measured."""
        average = self.generator_ema
        assert average is not None  # only a model that keeps an average calibrates it
        if self._ema_stale:
            g = torch.Generator().manual_seed(EMA_CALIBRATION_SEED)
            k = self.spec.num_classes if self.has(zoo.Capability.CLASS_CONDITIONAL) else 0

            def forward() -> Tensor:
                labels = torch.randint(k, (EMA_CALIBRATION_SIZE,), generator=g).to(self.device) if k else None
                return self.run_generator(average, self.sample_latent(EMA_CALIBRATION_SIZE, g), labels)

            tricks.recalibrate_batch_norm(average, forward, EMA_CALIBRATION_BATCHES)
            self._ema_stale = False
        return average

    def train_step(self, batches: zoo.Batches, progress: zoo.Progress) -> zoo.Metrics:
        cfg = self.config
        # The critic learns on ``n_critic`` fresh batches; the generator then learns from the
        # last batch it made, which the critic has just seen (one forward pass saved).
        for i in range(cfg.n_critic):
            batch = batches.next()
            real, labels = losses.mirrored(batch.images, cfg), batch.labels
            with torch.set_grad_enabled(i == cfg.n_critic - 1):
                fake = self.run_generator(self.generator, self.sample_latent(real.shape[0]), labels)
            loss_d, real_logits, fake_logits, extra = self._discriminator_step(real, fake.detach(), labels, progress)

        # D's weights need no gradient here, which saves a third of its backward pass.
        with zoo.frozen(self.discriminator):
            logits, classes = self.critic(losses.seen_by_critic(fake, cfg, progress.fraction, self.adaptive), labels)
            against = None
            if cfg.loss == "rpgan":  # each generated image against a real one, as D now scores it
                with torch.no_grad():
                    against = self.critic(losses.seen_by_critic(real, cfg, progress.fraction, self.adaptive), labels)[0]
            loss_g = losses.generator_loss(cfg.loss, logits, against)
            if classes is not None:
                assert labels is not None  # a critic that classifies is class-conditional
                loss_g = loss_g + self.class_loss(classes, labels)
            self.update("generator", loss_g)
        if self.generator_ema is not None:
            tricks.ema_update(self.generator_ema, self.generator, tricks.ema_decay(cfg.ema, progress.step))
            self._ema_stale = True
        return {**losses.step_metrics(cfg.loss, loss_d, loss_g, real_logits, fake_logits), **extra}

    def _discriminator_step(self, real: Tensor, fake: Tensor, labels: Tensor | None,
                            progress: zoo.Progress) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
        cfg = self.config
        real = losses.seen_by_critic(real, cfg, progress.fraction, self.adaptive)
        fake = losses.seen_by_critic(fake, cfg, progress.fraction, self.adaptive)
        # Real and generated images as separate batches, so each gets its own batch-norm
        # statistics (the DCGAN paper's and the lab's practice; seed 004's trick).
        real_logits, real_classes = self.critic(real, labels)
        fake_logits, fake_classes = self.critic(fake, labels)
        real_target, fake_target = losses.targets(real.shape[0], cfg, real.device)
        loss = losses.discriminator_loss(cfg.loss, real_logits, fake_logits,
                                         real_label=real_target, fake_label=fake_target)
        extra: dict[str, Tensor] = {}
        if self.adaptive is not None:  # how sure D is of the real images steers p
            self.adaptive.observe(losses.score(cfg.loss, real_logits.detach()))
            extra.update(augment_p=self.adaptive.p.clone(), overfitting=self.adaptive.overfitting.clone())
        if real_classes is not None and fake_classes is not None and labels is not None:
            loss = loss + self.class_loss(real_classes, labels) + self.class_loss(fake_classes, labels)
            extra["class_acc_real"] = (real_classes.argmax(1) == labels).float().mean()

        def critic_only(x: Tensor) -> Tensor:
            return self.critic(x, labels)[0]

        # Lazy regularisation: the penalties on one step in ``penalty_every``, as many times
        # heavier, cost that much less for nearly the same training (StyleGAN2's finding).
        penalised = progress.step % cfg.penalty_every == 0
        scale = cfg.penalty_every * self.penalty_scale(progress) if penalised else 0.0
        if cfg.gp_weight and penalised:
            penalty = losses.gradient_penalty(critic_only, real, fake, cfg.loss)
            loss = loss + scale * cfg.gp_weight * penalty
            extra["gradient_penalty"] = penalty.detach()
        if cfg.r1_weight and penalised:
            penalty = losses.r1_penalty(critic_only, real, cfg.loss)
            loss = loss + scale * cfg.r1_weight / 2 * penalty
            extra["r1_penalty"] = penalty.detach()
        if cfg.r2_weight and penalised:
            penalty = losses.r2_penalty(critic_only, fake, cfg.loss)
            loss = loss + scale * cfg.r2_weight / 2 * penalty
            extra["r2_penalty"] = penalty.detach()
        self.update("discriminator", loss)
        if cfg.clip:
            with torch.no_grad():
                for p in self.discriminator.parameters():
                    p.clamp_(-cfg.clip, cfg.clip)
        return loss.detach(), real_logits, fake_logits, extra
