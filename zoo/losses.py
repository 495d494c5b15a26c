"""Adversarial losses and the regularisers around them, shared by every GAN plugin.

A plugin's config inherits :class:`AdversarialConfig`, so a user picks the loss and the
training aids of seed 004's lecture with ``--set`` on any GAN, and compares them on the
same data:

=============  ==========================================  ==================================
``loss``       discriminator / critic minimises             generator minimises
=============  ==========================================  ==================================
minimax        -log D(x) - log(1 - D(G(z)))                 log(1 - D(G(z)))  (saturates)
bce            the same                                     -log D(G(z))  (non-saturating)
cross_entropy  bce with two logits (fake, real): the lab's  -log D(G(z))
lsgan          ((D(x) - 1)^2 + D(G(z))^2) / 2               (D(G(z)) - 1)^2 / 2
hinge          relu(1 - D(x)) + relu(1 + D(G(z)))           -D(G(z))
wasserstein    D(G(z)) - D(x)  (a 1-Lipschitz critic)       -D(G(z))
rpgan          softplus(D(G(z)) - D(x)), paired             softplus(D(x) - D(G(z))), paired
=============  ==========================================  ==================================

(means over the batch; D is the logit for the first three). ``rpgan`` is the relativistic
pairing GAN (Jolicoeur-Martineau 2018): D judges whether a real image looks more real than a
generated one, image i of the real batch against image i of the generated one. With both
zero-centred penalties, R1 on real images and R2 on generated ones (``r1_weight`` and
``r2_weight``, the same gamma), it is R3GAN's loss (Huang et al., NeurIPS 2024), shown there
to converge locally where the others need tricks. The targets 1 and 0 of the
label-based losses can be smoothed (``real_label``, ``fake_label``), drawn from ranges
(``label_noise``) or swapped for a fraction of the batch (``label_flip``). With
``label_noise`` w, real targets come from [real_label - w, real_label + 2w/3] and fake ones
from [fake_label, fake_label + w]: seed 004's [0.7, 1.2] and [0, 0.3] for w = 0.3. Those
ranges are cut to [0, 1] for minimax, bce and cross_entropy, whose targets are
probabilities: past 1, D would be rewarded for ever larger logits without bound (and the
two-logit loss would weigh a negative probability). Least squares is well defined beyond
1, so lsgan keeps the whole range. The regularisers:
Gulrajani et al.'s gradient penalty, Mescheder et al.'s R1, and instance noise (Sønderby
et al.) that fades out over training.

A discriminator's output is its *logits*: one per image, two for ``cross_entropy``;
:func:`score` turns either into one number per image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo import augment as diff_augment
from zoo.config import Config, option
from zoo.errors import UsageError

if TYPE_CHECKING:
    from zoo.model import Model

LOSSES = ("minimax", "bce", "cross_entropy", "lsgan", "hinge", "wasserstein", "rpgan")
LABELLED = ("minimax", "bce", "cross_entropy", "lsgan")
"""Losses that aim D's outputs at target labels, which can be smoothed and made noisy."""
PROBABILISTIC = ("minimax", "bce", "cross_entropy")
"""Losses whose D outputs a belief that an image is real, reported as D(x) and D(G(z))."""

NOISY_REAL_TOP = 2 / 3
"""With ``label_noise`` w, real targets come from [real_label - w, real_label + w * 2/3]:
seed 004's [0.7, 1.2] for w = 0.3 (and fake ones from [fake_label, fake_label + w]), cut to
[0, 1] for the probabilistic losses."""

LossKind = Literal["minimax", "bce", "cross_entropy", "lsgan", "hinge", "wasserstein", "rpgan"]
Critic = Callable[[Tensor], Tensor]


@dataclass
class AdversarialConfig(Config):
    """The loss and training aids every GAN plugin offers; subclass it with the paper's
    defaults."""

    loss: LossKind = option("bce", "minimax, bce (non-saturating), cross_entropy (the lab's two "
                                   "logits), lsgan, hinge, wasserstein (needs clip, gp_weight or "
                                   "spectral_norm) or rpgan (relativistic pairs; R3GAN's with r1_weight "
                                   "and r2_weight)")
    real_label: float = option(1.0, "target for real images; 0.9 smooths it (one-sided smoothing)")
    fake_label: float = option(0.0, "target for generated images; seed 003 uses 0.1")
    label_noise: float = option(0.0, "draw targets from ranges this wide: 0.3 gives seed 004's "
                                     "[0.7, 1.2] for real, [0, 0.3] for fake; minimax, bce and "
                                     "cross_entropy cut them to [0, 1] (real [0.7, 1])")
    label_flip: float = option(0.0, "fraction of D's examples whose real/fake targets are swapped")
    instance_noise: float = option(0.0, "std of Gaussian noise added to every image D sees, "
                                        "fading linearly to 0 by the end of training")
    gp_weight: float = option(0.0, "gradient penalty on real/fake interpolates (WGAN-GP: 10); "
                                   "per image, so not with a batch-normalised critic")
    r1_weight: float = option(0.0, "R1 penalty gamma on real images (Mescheder et al.: 10); "
                                   "per image, so not with a batch-normalised critic")
    r2_weight: float = option(0.0, "R2 penalty gamma on generated images (R3GAN: r1_weight's gamma); "
                                   "per image, so not with a batch-normalised critic")
    penalty_every: int = option(1, "compute gp, R1 and R2 every this many steps, weighted as many times "
                                   "(lazy regularisation, Karras et al. 2020: 4 to 16 save most of their cost)")
    spectral_norm: bool = option(False, "spectral normalisation of every discriminator layer")
    clip: float = option(0.0, "clip every critic weight to [-clip, clip] after each update (WGAN: 0.01)")
    n_critic: int = option(1, "discriminator updates per generator update (WGAN: 5)")
    ema: float = option(0.0, "sample from a moving average of the generator's weights "
                             "with this decay (0.999); 0 turns it off")
    augment: str = option("", "augmentation of every image D sees, for small data sets: ada (adaptive, "
                              "Karras et al.) or a comma list of translation, cutout, color (DiffAugment)")
    ada_target: float = option(0.6, "augment=ada: the overfitting r_t (the mean sign of D's scores of real "
                                    "images) that p is steered to (the paper: 0.6)")
    ada_kimg: float = option(100.0, "augment=ada: how fast p moves, in thousands of images for 0 to 1 "
                                    "(the paper: 500; shorter CPU runs need it faster)")
    mirror: bool = option(False, "flip each real image left to right half the time (x-flips: twice the "
                                 "data for images with no left or right; not for digits or text)")

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("real_label", "fake_label"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise UsageError(f"{key} must be within [0, 1], got {getattr(self, key)}")
        if self.fake_label >= self.real_label:
            raise UsageError("fake_label must be below real_label")
        self.not_negative("label_noise", "instance_noise", "gp_weight", "r1_weight", "r2_weight", "clip")
        if not 0.0 <= self.label_noise <= 0.5:
            raise UsageError(f"label_noise must be within [0, 0.5], got {self.label_noise}")
        if not 0.0 <= self.label_flip < 0.5:
            raise UsageError(f"label_flip must be within [0, 0.5), got {self.label_flip}")
        self.at_least(1, "n_critic", "penalty_every")
        diff_augment.parse(self.augment)
        if not 0.0 < self.ada_target < 1.0:
            raise UsageError(f"ada_target must be within (0, 1) (the paper: 0.6), got {self.ada_target}")
        self.positive("ada_kimg")
        if not 0.0 <= self.ema < 1.0:
            raise UsageError(f"ema must be within [0, 1) (0 = off, 0.999 typical), got {self.ema}")
        labels_changed = (self.real_label != 1.0 or self.fake_label != 0.0 or self.label_noise
                          or self.label_flip)
        if labels_changed and self.loss not in LABELLED:
            raise UsageError(f"loss={self.loss} has no target labels to smooth, noise or flip; "
                             f"real_label, fake_label, label_noise and label_flip work with "
                             f"{', '.join(LABELLED)}")


# -- the losses --------------------------------------------------------------------------------

def logits_per_image(kind: str) -> int:
    """How many numbers a discriminator outputs per image for this loss."""
    return 2 if kind == "cross_entropy" else 1


def score(kind: str, logits: Tensor) -> Tensor:
    """One number per image: the logit (log-odds of "real"), or the critic's value."""
    if kind == "cross_entropy":
        return logits[:, 1] - logits[:, 0]
    return logits.reshape(-1)


def _against(kind: str, logits: Tensor, target: Tensor) -> Tensor:
    """Mean loss of aiming each image's output at its target (label-based losses)."""
    if kind in ("bce", "minimax"):
        return F.binary_cross_entropy_with_logits(score(kind, logits), target)
    if kind == "cross_entropy":
        return F.cross_entropy(logits, torch.stack([1 - target, target], dim=1))
    if kind == "lsgan":
        return 0.5 * ((score(kind, logits) - target) ** 2).mean()
    raise ValueError(f"loss {kind!r} has no targets")


def _full(logits: Tensor, value: float | Tensor) -> Tensor:
    if isinstance(value, Tensor):
        return value.to(logits.dtype)
    return torch.full((logits.shape[0],), value, dtype=logits.dtype, device=logits.device)


def discriminator_loss(kind: str, real_logits: Tensor, fake_logits: Tensor, *,
                       real_label: float | Tensor = 1.0, fake_label: float | Tensor = 0.0) -> Tensor:
    """What D minimises. Labels are numbers or one target per image (see :func:`targets`)."""
    if kind in LABELLED:
        return (_against(kind, real_logits, _full(real_logits, real_label))
                + _against(kind, fake_logits, _full(fake_logits, fake_label)))
    real, fake = score(kind, real_logits), score(kind, fake_logits)
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "wasserstein":
        return fake.mean() - real.mean()
    if kind == "rpgan":
        return F.softplus(fake - _paired(real, fake)).mean()
    raise UsageError(f"unknown loss {kind!r}; known: {', '.join(LOSSES)}")


def generator_loss(kind: str, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """What G minimises: make D call its images real (for ``rpgan``, more real than the real
    images of ``real_logits``, which only it reads)."""
    if kind == "minimax":
        # log(1 - D(G(z))) = -softplus(logit): flat where D is sure, so it saturates.
        return -F.softplus(score(kind, fake_logits)).mean()
    if kind in LABELLED:
        return _against(kind, fake_logits, _full(fake_logits, 1.0))
    if kind in ("hinge", "wasserstein"):
        return -score(kind, fake_logits).mean()
    if kind == "rpgan":
        if real_logits is None:
            raise ValueError("rpgan's generator loss compares with D's logits on real images: pass real_logits")
        fake = score(kind, fake_logits)
        return F.softplus(_paired(score(kind, real_logits), fake) - fake).mean()
    raise UsageError(f"unknown loss {kind!r}; known: {', '.join(LOSSES)}")


def _paired(real: Tensor, fake: Tensor) -> Tensor:
    """The real scores, one for each generated image: pairs need batches of one size."""
    if real.shape != fake.shape:
        raise ValueError(f"rpgan pairs real and generated images one to one: {real.shape[0]} real, "
                         f"{fake.shape[0]} generated")
    return real


def targets(n: int, config: AdversarialConfig, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """Per-image targets for a real and a fake batch of ``n``: the config's labels, drawn
    from ranges with ``label_noise``, swapped for a ``label_flip`` fraction."""
    real = torch.full((n,), config.real_label, device=device)
    fake = torch.full((n,), config.fake_label, device=device)
    if config.label_noise:
        w = config.label_noise
        real = _uniform(n, config.real_label - w, config.real_label + NOISY_REAL_TOP * w, config.loss, device)
        fake = _uniform(n, config.fake_label, config.fake_label + w, config.loss, device)
    if config.label_flip:
        swap = torch.rand(n, device=device) < config.label_flip
        real, fake = torch.where(swap, fake, real), torch.where(swap, real, fake)
    return real, fake


def _uniform(n: int, low: float, high: float, kind: str, device: torch.device | str) -> Tensor:
    """Targets uniform in [low, high], cut to [0, 1] where they are probabilities."""
    if kind in PROBABILISTIC:
        low, high = max(low, 0.0), min(high, 1.0)
    return low + (high - low) * torch.rand(n, device=device)


# -- regularisers ------------------------------------------------------------------------------

PENALTY_UNCOMPILED = ("its gradient penalty needs a double backward, which torch.compile does not support")
"""Why ``--compile`` leaves a penalised critic eager (see :meth:`zoo.Model.uncompiled`)."""


def gradient_penalty(critic: Critic, real: Tensor, fake: Tensor, kind: str = "wasserstein") -> Tensor:
    """Gulrajani et al.'s penalty: E[(||grad_x D(x_hat)|| - 1)^2] at random points x_hat on
    lines between real and generated images. The gradient is built with ``create_graph``,
    so the penalty's own gradient reaches the critic's weights."""
    real, fake = _full_precision(real.detach()), _full_precision(fake.detach())
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    between = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    with torch.autocast(real.device.type, enabled=False):  # a gradient norm needs full precision
        (grad,) = torch.autograd.grad(score(kind, critic(between)).sum(), between, create_graph=True)
        return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def penalty_across_images(model: Model) -> str | None:
    """Why ``model``'s gradient penalty would not be the penalty asked for, or None.

    The penalties hold each image's own gradient to a norm, but batch norm in a critic mixes
    the images of a batch: each image's score, and so its gradient, depends on the others
    (Gulrajani et al. 2017 replace it by layer norm for that reason). The critics a penalty
    differentiates are those a model leaves uncompiled for its double backward
    (:data:`PENALTY_UNCOMPILED` in :meth:`zoo.Model.uncompiled`); the message names the fix."""
    for name, reason in model.uncompiled().items():
        network = getattr(model, name, None)
        if reason != PENALTY_UNCOMPILED or not isinstance(network, nn.Module):
            continue
        norms = sorted({type(m).__name__ for m in network.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)})
        if not norms:
            continue
        asked = " and ".join(f"{key}={getattr(model.config, key):g}" for key in ("gp_weight", "r1_weight", "r2_weight")
                             if getattr(model.config, key, 0)) or "its gradient penalty"
        fix = ("--set d_norm=layer (Gulrajani et al.'s choice) or --set d_norm=none" if hasattr(model.config, "d_norm")
               else "a critic without batch norm (layer norm, or none)")
        return (f"{model.name}'s {name} uses batch norm ({', '.join(norms)}), which mixes the images of a batch, "
                f"but {asked} penalises each image's own gradient: train with {fix}")
    return None


def _full_precision(images: Tensor) -> Tensor:
    """Images in float32 (or float64, kept) whatever autocast made of them."""
    return images if images.dtype in (torch.float32, torch.float64) else images.float()


def r1_penalty(critic: Critic, real: Tensor, kind: str = "bce") -> Tensor:
    """Mescheder et al.'s R1: E[||grad_x D(x)||^2] on real images (weight it by gamma / 2)."""
    return _squared_gradient(critic, real, kind)


def r2_penalty(critic: Critic, fake: Tensor, kind: str = "rpgan") -> Tensor:
    """R2, R1's twin on generated images: E[||grad_x D(G(z))||^2] (weight it by gamma / 2).
    Both together keep D flat where either distribution lies (R3GAN's regularised RpGAN)."""
    return _squared_gradient(critic, fake, kind)


def _squared_gradient(critic: Critic, images: Tensor, kind: str) -> Tensor:
    images = _full_precision(images.detach()).requires_grad_(True)
    with torch.autocast(images.device.type, enabled=False):  # a gradient norm needs full precision
        (grad,) = torch.autograd.grad(score(kind, critic(images)).sum(), images, create_graph=True)
        return grad.flatten(1).pow(2).sum(dim=1).mean()


def instance_noise(images: Tensor, std: float, fraction: float) -> Tensor:
    """Images with Gaussian noise whose std falls linearly from ``std`` at the start of
    training (``fraction`` 0) to nothing at the end."""
    sigma = std * max(0.0, 1.0 - fraction)
    return images + sigma * torch.randn_like(images) if sigma > 0 else images


def seen_by_critic(images: Tensor, config: AdversarialConfig, fraction: float,
                   adaptive: diff_augment.AdaptiveAugment | None = None) -> Tensor:
    """Images as the discriminator sees them, real or generated alike: through the
    ``augment`` policy (or ``adaptive``, the model's ADA pipeline, for augment=ada), then with
    the instance noise of this point in training."""
    images = adaptive(images) if adaptive is not None else diff_augment.augment(images, config.augment)
    return instance_noise(images, config.instance_noise, fraction)


def adaptive_augment(config: AdversarialConfig) -> diff_augment.AdaptiveAugment | None:
    """The ADA pipeline a model keeps for augment=ada (None otherwise)."""
    if not diff_augment.is_adaptive(config.augment):
        return None
    return diff_augment.AdaptiveAugment(config.ada_target, kimg=config.ada_kimg)


def mirrored(images: Tensor, config: AdversarialConfig) -> Tensor:
    """Real images each flipped left to right with probability 1/2 when ``mirror`` is on."""
    if not config.mirror:
        return images
    flip = torch.rand(images.shape[0], 1, 1, 1, device=images.device) < 0.5
    return torch.where(flip, images.flip(3), images)


# -- reporting ---------------------------------------------------------------------------------

def real_probability(kind: str, logits: Tensor) -> Tensor:
    """D's belief that each image is real, in [0, 1]: D(x) and D(G(z)) in the logs."""
    return torch.sigmoid(score(kind, logits))


def step_metrics(kind: str, loss_d: Tensor, loss_g: Tensor, real_logits: Tensor,
                 fake_logits: Tensor) -> dict[str, Tensor]:
    """What a GAN step reports: both losses, then D(x) and D(G(z)) (mean beliefs that images
    are real) for probabilistic losses, or the critic's mean outputs; for ``wasserstein``
    also its estimate of the distance, E[D(x)] - E[D(G(z))]."""
    metrics = {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}
    real, fake = score(kind, real_logits.detach()), score(kind, fake_logits.detach())
    if kind in PROBABILISTIC:
        metrics.update(d_real=torch.sigmoid(real).mean(), d_fake=torch.sigmoid(fake).mean())
    else:
        metrics.update(critic_real=real.mean(), critic_fake=fake.mean())
    if kind == "wasserstein":
        metrics["wasserstein"] = real.mean() - fake.mean()
    return metrics
