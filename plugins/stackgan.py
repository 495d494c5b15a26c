"""StackGAN: Zhang et al., "StackGAN: Text to Photo-realistic Image Synthesis with Stacked
Generative Adversarial Networks", ICCV 2017 (arXiv:1612.03242).

Images from sentences in two stages, each its own run:

* **Conditioning augmentation.** A sentence embedding (zoo's own frozen text encoder,
  :mod:`zoo.data.text`, stands in for the paper's char-CNN-RNN) gives the mean and log-variance
  of a Gaussian; the generator is fed a draw c from it (reparameterised), and the KL
  divergence from N(0, I) joins the generator's loss (``kl_weight``). Many c per sentence
  smooth the conditioning manifold the few captions of each image leave sparse.
* **Stage I** draws a low-resolution image (the data's side / ``factor``: 16 px for
  Fashion-MNIST padded to 32, 64 px for the paper's 256) from c and noise z.
* **Stage II** (``--set stage=2 --init-from STAGE_I_RUN``) keeps stage I frozen and refines
  its image with the sentence, by a fresh draw of conditioning augmentation: the image is
  encoded down, joined with c, passed through residual blocks and drawn up to the data's
  full size, ``factor`` (2 or 4) times stage I's side.
* **Matching-aware discriminators** (Reed et al., "Generative Adversarial Text to Image
  Synthesis", ICML 2016): each stage's discriminator scores (image, sentence) pairs, and
  learns to call three things apart: real images with their own text (real), generated
  images with their text (fake), and real images with *mismatched* text (fake). The
  mismatched sentence for an image is another image's of the batch, chosen by content:
  one whose embedding is not close to its own (cosine below ``mismatch_below``), so a
  caption that says the same thing in other words is never the "wrong" one.

The networks are the paper's shapes at the data's size: up-sampling blocks (nearest
neighbour, 3x3 convolution, batch norm, ReLU) from 4x4, discriminators of strided 4x4
convolutions down to 4x4 with the compressed sentence replicated over those cells, and
``residual_blocks`` residual blocks in stage II (paper: 2 at 256 px; Adam at 2e-4, beta1
0.5; c of 128). A stage I model gives its images at the data's size (bilinear), so that
every command, and ``zoo eval`` comparing the two stages, sees one size; its own
resolution is ``factor`` times smaller.

Two defaults depart from the paper, chosen by measurement (benchmarks/text_to_image.py: a
judge reads the class each held-out caption names; the figures, once measured again with a
judge that never saw the generators' images: docs/results/stackgan.md):

* ``kl_weight=0.01``, not 1. With the paper's weight, conditioning augmentation keeps a few
  nats of the sentence and z decides the garment, so the class asked is drawn far less often;
  a weight much smaller again raised FID and lowered recall: not a better model.
* ``d_projection``: the discriminators also score the sentence by a projection term (Miyato
  & Koyama 2018) beside the paper's concatenation; it buys the class asked, not a lower FID.

Conditional batch norm in stage I (``g_conditioning=batchnorm``) did worse at KL 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import zoo
from zoo.config import option


@dataclass
class StackGANConfig(zoo.Config):
    stage: int = option(1, "1: draw low-resolution images from text and noise; 2: refine a trained "
                           "stage I's images (give it with --init-from) to the data's size")
    factor: int = option(2, "the data's side over stage I's: 2 (16 -> 32 px) or 4 (the paper's 64 -> 256)")
    latent_dim: int = option(100, "length of the noise vector z (paper: 100)")
    condition_dim: int = option(128, "length of c, conditioning augmentation's draw (paper: 128)")
    kl_weight: float = option(0.01, "weight of conditioning augmentation's KL term in G's loss (paper: 1, which "
                                    "here leaves c too little of the text: see the module's docstring)")
    g_conditioning: Literal["input", "batchnorm"] = option(
        "input", "input: c joins z at stage I's input (the paper); batchnorm: c also sets every "
                 "up-sampling block's batch-norm scale and shift")
    text_dim: int = option(64, "length the discriminators compress a sentence embedding to")
    d_projection: bool = option(True, "the discriminators also add a projection term (Miyato & Koyama 2018): the "
                                      "image's features times a linear map of the sentence, summed; off: the "
                                      "paper's concatenation alone")
    g_width: int = option(32, "channels of the generators' last layer; doubled at each halving of the side")
    d_width: int = option(32, "channels of the discriminators' first layer; doubled at each halving")
    residual_blocks: int = option(2, "stage II's residual blocks (paper: 2)")
    mismatch_below: float = option(0.7, "a mismatched sentence's embedding has cosine similarity below this "
                                        "with the image's own (else the least similar of the batch)")
    mismatch_weight: float = option(0.5, "share of D's fake loss given to real images with mismatched text "
                                         "(paper: half, the other half to generated images)")
    batch_size: int = option(64, "images per training batch (paper: 64)")
    lr_g: float = option(2e-4, "generator learning rate (paper: 2e-4)")
    lr_d: float = option(2e-4, "discriminator learning rate (paper: 2e-4)")
    beta1: float = option(0.5, "Adam beta1 (paper: 0.5)")
    beta2: float = option(0.999, "Adam beta2")

    def __post_init__(self) -> None:
        if self.stage not in (1, 2):
            raise zoo.UsageError(f"stage must be 1 or 2, got {self.stage}")
        if self.factor not in (2, 4):
            raise zoo.UsageError(f"factor must be 2 or 4, got {self.factor}")
        for key in ("latent_dim", "condition_dim", "text_dim", "g_width", "d_width", "batch_size"):
            self.at_least(1, key)
        self.not_negative("residual_blocks")
        self.not_negative("kl_weight")
        self.positive("lr_g")
        self.positive("lr_d")
        self.below_one("beta1")
        self.below_one("beta2")
        if not 0 <= self.mismatch_weight <= 1:
            raise zoo.UsageError(f"mismatch_weight must be between 0 and 1, got {self.mismatch_weight}")


# -- conditioning augmentation ---------------------------------------------------------------

class ConditioningAugmentation(nn.Module):
    """A sentence embedding -> (c, mean, log-variance): c ~ N(mean, diag(exp(log-variance)))."""

    def __init__(self, text_dim: int, condition_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(text_dim, 2 * condition_dim)

    def forward(self, embedding: Tensor, noise: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``noise``: N(0, I) draws, N x condition_dim (part of the model's latent vector)."""
        mean, log_var = F.leaky_relu(self.fc(embedding), 0.2).chunk(2, dim=1)
        c = mean + noise * torch.exp(0.5 * log_var)
        return c, mean, log_var


def kl_divergence(mean: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(mean, exp(log_var)) || N(0, I)), summed over dimensions, averaged over the batch."""
    return 0.5 * torch.sum(mean.pow(2) + log_var.exp() - 1 - log_var, dim=1).mean()


# -- networks ----------------------------------------------------------------------------------

def up_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                         nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class TextBatchNorm(nn.Module):
    """Batch norm whose scale and shift are linear in c: conditional batch norm (de Vries et
    al. 2017) on the sentence, so every layer hears the text, not only the first."""

    def __init__(self, channels: int, condition_dim: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.scale = nn.Linear(condition_dim, channels)
        self.shift = nn.Linear(condition_dim, channels)

    def reset_parameters(self) -> None:  # the identity at the start, as a plain batch norm's
        for layer, bias in ((self.scale, 1.0), (self.shift, 0.0)):
            nn.init.zeros_(layer.weight)
            nn.init.constant_(layer.bias, bias)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        return self.norm(x) * self.scale(c)[:, :, None, None] + self.shift(c)[:, :, None, None]


class TextUpBlock(nn.Module):
    """An up-sampling block whose batch norm takes its scale and shift from c."""

    def __init__(self, in_channels: int, out_channels: int, condition_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False)
        self.norm = TextBatchNorm(out_channels, condition_dim)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        return F.relu(self.norm(self.conv(F.interpolate(x, scale_factor=2, mode="nearest")), c))


def _halvings(side: int, to: int = 4) -> int:
    return int(math.log2(side // to))


class StageIGenerator(nn.Module):
    """(z, c) -> a side x side image: c joins z at the input (the paper), and with
    ``text_norms`` also sets every up-sampling block's batch-norm scale and shift."""

    def __init__(self, latent_dim: int, condition_dim: int, channels: int, side: int, width: int,
                 text_norms: bool = False) -> None:
        super().__init__()
        ups = _halvings(side)
        top = width * 2 ** ups
        self.fc = nn.Sequential(nn.Linear(latent_dim + condition_dim, top * 16, bias=False),
                                nn.BatchNorm1d(top * 16), nn.ReLU(inplace=True))
        self.top = top
        block = (lambda i, o: TextUpBlock(i, o, condition_dim)) if text_norms else up_block
        self.ups = nn.ModuleList(block(top // 2 ** i, top // 2 ** (i + 1)) for i in range(ups))
        self.out = nn.Sequential(nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh())

    def forward(self, z: Tensor, c: Tensor) -> Tensor:
        x = self.fc(torch.cat([z, c], dim=1)).view(-1, self.top, 4, 4)
        for block in self.ups:
            x = block(x, c) if isinstance(block, TextUpBlock) else block(x)
        return self.out(x)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels),
                                  nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(channels))

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x + self.body(x))


class StageIIGenerator(nn.Module):
    """(stage I's image, c) -> an image ``factor`` times larger: encoded to half stage I's
    side, joined with c, residual blocks, then drawn up."""

    def __init__(self, condition_dim: int, channels: int, low_side: int, factor: int, width: int,
                 blocks: int) -> None:
        super().__init__()
        inner = 4 * width
        self.encode = nn.Sequential(nn.Conv2d(channels, 2 * width, 3, 1, 1), nn.ReLU(inplace=True),
                                    nn.Conv2d(2 * width, inner, 4, 2, 1, bias=False), nn.BatchNorm2d(inner),
                                    nn.ReLU(inplace=True))
        self.joint = nn.Sequential(nn.Conv2d(inner + condition_dim, inner, 3, 1, 1, bias=False),
                                   nn.BatchNorm2d(inner), nn.ReLU(inplace=True))
        self.residual = nn.Sequential(*(ResidualBlock(inner) for _ in range(blocks)))
        ups = int(math.log2(2 * factor))  # from half stage I's side to factor times it
        self.ups = nn.Sequential(*(up_block(max(width, inner // 2 ** i), max(width, inner // 2 ** (i + 1)))
                                   for i in range(ups)))
        self.out = nn.Sequential(nn.Conv2d(max(width, inner // 2 ** ups), channels, 3, 1, 1), nn.Tanh())

    def forward(self, low: Tensor, c: Tensor) -> Tensor:
        x = self.encode(low)
        x = self.joint(torch.cat([x, c[:, :, None, None].expand(-1, -1, *x.shape[2:])], dim=1))
        return self.out(self.ups(self.residual(x)))


class MatchingDiscriminator(nn.Module):
    """(image, sentence embedding) -> one logit: does this image look real, and does the
    sentence describe it? Strided convolutions to 4x4, the compressed sentence replicated
    over those cells, a 1x1 convolution over both, a 4x4 one to the logit. With
    ``projection``, the logit also gets the inner product of the 4x4 features, summed over
    the cells, with a linear map of the sentence (the projection discriminator of Miyato &
    Koyama, "cGANs with Projection Discriminator", ICLR 2018): a direct term for "does the
    text match", which concatenation leaves to the layers after it."""

    def __init__(self, channels: int, side: int, width: int, embedding_dim: int, text_dim: int,
                 projection: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        c = width
        for _ in range(_halvings(side) - 1):
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2, inplace=True)]
            c *= 2
        self.image = nn.Sequential(*layers)
        self.text = nn.Sequential(nn.Linear(embedding_dim, text_dim), nn.LeakyReLU(0.2, inplace=True))
        self.joint = nn.Sequential(nn.Conv2d(c + text_dim, c, 1, bias=False), nn.BatchNorm2d(c),
                                   nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(c, 1, 4))
        self.project = nn.Linear(embedding_dim, c, bias=False) if projection else None

    def forward(self, images: Tensor, embedding: Tensor) -> Tensor:
        x = self.image(images)
        t = self.text(embedding)[:, :, None, None].expand(-1, -1, *x.shape[2:])
        logit = self.joint(torch.cat([x, t], dim=1)).view(-1)
        if self.project is not None:
            logit = logit + (self.project(embedding) * x.sum(dim=(2, 3))).sum(dim=1)
        return logit


def mismatched(embedding: Tensor, below: float, generator: torch.Generator | None = None) -> Tensor:
    """For each sentence of a batch, the index of another whose embedding is not like it
    (cosine similarity below ``below``), at random among those; where none is, the least
    similar one. So the "wrong" text for an image never says the same thing as its own."""
    unit = F.normalize(embedding.float(), dim=1)
    similarity = unit @ unit.T
    n = similarity.shape[0]
    allowed = similarity < below
    allowed.fill_diagonal_(False)
    # Where no sentence is unlike an image's, the least similar one, chosen for every row and
    # kept where needed: asking the device whether any row needs it would wait for it each step.
    least = similarity.masked_fill(torch.eye(n, dtype=torch.bool, device=similarity.device), float("inf"))
    fallback = torch.zeros_like(similarity).scatter_(1, least.argmin(dim=1, keepdim=True), 1.0)
    weights = torch.where(allowed.any(dim=1, keepdim=True), allowed.float(), fallback)
    if n == 1:
        return torch.zeros(1, dtype=torch.long, device=embedding.device)
    return torch.multinomial(weights, 1, generator=generator).view(-1)


# -- the model -----------------------------------------------------------------------------------

class StackGAN(zoo.Model):
    name = "stackgan"
    summary = "Text to image in two stages: conditioning augmentation, matching-aware discriminators"
    paper = "Zhang et al. 2017, arXiv:1612.03242"
    family = "GAN"
    version = "1"  # checkpoints from before the projection term load without it: see load_state_dict
    Config = StackGANConfig
    capabilities = frozenset({zoo.Capability.LATENT, zoo.Capability.TEXT_CONDITIONAL})
    tiny_config = {"g_width": 4, "d_width": 4, "batch_size": 8, "latent_dim": 8, "condition_dim": 8,
                   "text_dim": 8, "residual_blocks": 1}

    config: StackGANConfig

    def __init__(self, config: StackGANConfig, spec: zoo.DataSpec) -> None:
        super().__init__(config, spec)
        self.check_data(config, spec)
        low = spec.height // config.factor
        c, e = spec.channels, spec.text_dim
        self.ca1 = ConditioningAugmentation(e, config.condition_dim)
        self.g1 = StageIGenerator(config.latent_dim, config.condition_dim, c, low, config.g_width,
                                  text_norms=config.g_conditioning == "batchnorm")
        if config.stage == 1:
            self.d1 = MatchingDiscriminator(c, low, config.d_width, e, config.text_dim, config.d_projection)
        else:
            self.ca2 = ConditioningAugmentation(e, config.condition_dim)
            self.g2 = StageIIGenerator(config.condition_dim, c, low, config.factor, config.g_width,
                                       config.residual_blocks)
            self.d2 = MatchingDiscriminator(c, spec.height, config.d_width, e, config.text_dim, config.d_projection)
            self.ca1.requires_grad_(False)
            self.g1.requires_grad_(False)
        zoo.init_normal(self)
        for norm in self.modules():
            if isinstance(norm, TextBatchNorm):
                norm.reset_parameters()
        self.stage1_trained = config.stage == 1
        """Stage II refines a trained stage I: set by a warm start from one (or its checkpoint)."""

    @classmethod
    def check_data(cls, config: StackGANConfig, spec: zoo.DataSpec) -> None:
        if spec.height != spec.width:
            raise zoo.UsageError(f"stackgan draws square images; prepare the data square (--size {spec.height})")
        low = spec.height // config.factor
        if spec.height % config.factor or low < 8 or low & (low - 1):
            raise zoo.UsageError(f"stackgan's stage I draws the data's side / {config.factor}, which must be a power "
                                 f"of two of 8 px or more; {spec.height} px data does not give one (prepare it at "
                                 "32, 64 or 256 px, or set factor)")
        if not spec.text_dim:
            raise zoo.UsageError("stackgan draws images from text and needs captioned data (captions:fashion, "
                                 "captions:PATH)")

    @property
    def low_side(self) -> int:
        return self.spec.height // self.config.factor

    def train(self, mode: bool = True) -> StackGAN:
        super().train(mode)
        if self.config.stage == 2:  # stage I is fixed: its batch norms keep their statistics
            self.ca1.eval()
            self.g1.eval()
        return self

    def warm_start(self, weights: Any) -> tuple[list[str], list[str]]:
        copied, fresh = super().warm_start(weights)
        if self.config.stage == 2:
            stage1 = [k for k in self.state_dict() if k.startswith(("g1.", "ca1."))]
            missing = [k for k in stage1 if k not in copied]
            if missing:
                raise zoo.UsageError(f"--init-from must be a stackgan stage I run of this data's shape: its "
                                     f"weights do not give stage I's {missing[0]} here (set factor, latent_dim, "
                                     "condition_dim, g_width and g_conditioning as that run had them)")
            self.stage1_trained = True
        return copied, fresh

    @property
    def discriminator(self) -> MatchingDiscriminator:
        return self.d1 if self.config.stage == 1 else self.d2

    def extra_state(self) -> dict[str, Any]:
        return {"stage1_trained": int(self.stage1_trained)}

    def load_extra_state(self, state: Any) -> None:
        self.stage1_trained = bool(state.get("stage1_trained", self.config.stage == 1))

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """As nn.Module's; a checkpoint written before the discriminators' projection term
        (its config has no ``d_projection``, so it reads as on) loads without the term."""
        key = f"d{self.config.stage}.project.weight"
        if key not in state_dict and self.discriminator.project is not None:
            self.discriminator.project = None
            self.config.d_projection = False
        return super().load_state_dict(state_dict, strict, assign)

    # -- training -----------------------------------------------------------------------------

    def training_only(self) -> tuple[str, ...]:
        return ("d1",) if self.config.stage == 1 else ("d2",)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        if not self.stage1_trained:
            raise zoo.UsageError("stage 2 refines a trained stage I: give its run with --init-from "
                                 "(zoo train stackgan --data DATA --set stage=2 --init-from runs/stackgan-...)")
        betas = (self.config.beta1, self.config.beta2)
        if self.config.stage == 1:
            g_params = [*self.ca1.parameters(), *self.g1.parameters()]
            d_params = list(self.d1.parameters())
        else:
            g_params = [*self.ca2.parameters(), *self.g2.parameters()]
            d_params = list(self.d2.parameters())
        return {"generator": torch.optim.Adam(g_params, lr=self.config.lr_g, betas=betas),
                "discriminator": torch.optim.Adam(d_params, lr=self.config.lr_d, betas=betas)}

    @property
    def latent_dim(self) -> int:
        """z, then conditioning augmentation's N(0, I) draw for each stage: a seed fixes both,
        and interpolation walks both."""
        return self.config.latent_dim + self.config.stage * self.config.condition_dim

    def draw(self, latent: Tensor, embedding: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(this stage's images at its own side, CA mean, CA log-variance) for latent vectors
        (z and the CA draws) and sentence embeddings."""
        k, m = self.config.latent_dim, self.config.condition_dim
        z = latent[:, :k]
        c1, mean, log_var = self.ca1(embedding, latent[:, k:k + m])
        low = self.g1(z, c1)
        if self.config.stage == 1:
            return low, mean, log_var
        c2, mean, log_var = self.ca2(embedding, latent[:, k + m:k + 2 * m])
        return self.g2(low.detach(), c2), mean, log_var

    def train_step(self, batches: zoo.Batches, progress: zoo.Progress) -> zoo.Metrics:
        batch = batches.next()
        embedding = batch.conditions[zoo.Condition.TEXT.value]
        real = batch.images if self.config.stage == 2 else F.avg_pool2d(batch.images, self.config.factor)
        discriminator = self.discriminator
        n = real.shape[0]
        if n < 2:
            raise zoo.UsageError("stackgan needs at least 2 images per batch (per process under torchrun): the "
                                 "mismatched text for an image is another image's")
        fake, mean, log_var = self.draw(torch.randn(n, self.latent_dim, device=real.device), embedding)
        wrong = embedding[mismatched(embedding, self.config.mismatch_below)]

        ones, zeros = torch.ones(n, device=real.device), torch.zeros(n, device=real.device)
        real_logits = discriminator(real, embedding)
        wrong_logits = discriminator(real, wrong)
        fake_logits = discriminator(fake.detach(), embedding)
        w = self.config.mismatch_weight
        d_loss = (F.binary_cross_entropy_with_logits(real_logits, ones)
                  + w * F.binary_cross_entropy_with_logits(wrong_logits, zeros)
                  + (1 - w) * F.binary_cross_entropy_with_logits(fake_logits, zeros))
        self.update("discriminator", d_loss)

        with zoo.frozen(discriminator):
            g_logits = discriminator(fake, embedding)
        kl = kl_divergence(mean, log_var)
        g_loss = F.binary_cross_entropy_with_logits(g_logits, ones) + self.config.kl_weight * kl
        self.update("generator", g_loss)
        # Named ca_kl, not kl: zoo's diagnostics read "kl" as a VAE's posterior term, whose
        # collapse they warn of; conditioning augmentation's KL is meant to stay small.
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), "ca_kl": kl.detach(),
                "d_real": torch.sigmoid(real_logits).mean().detach(),
                "d_wrong": torch.sigmoid(wrong_logits).mean().detach(),
                "d_fake": torch.sigmoid(fake_logits).mean().detach()}

    # -- generation ---------------------------------------------------------------------------

    def generate(self, z: Tensor, conditions: zoo.Conditions | None = None) -> Tensor:
        """Images at the data's size for latent vectors (z and conditioning augmentation's
        draws) and ``conditions["text"]`` (sentence embeddings)."""
        if not conditions or conditions.get(zoo.Condition.TEXT.value) is None:
            raise zoo.UsageError("stackgan draws from a description: give a text for each image")
        embedding = conditions[zoo.Condition.TEXT.value]  # embeddings: check_conditions encodes prompts
        images, _, _ = self.draw(z, embedding.to(z.device, torch.float32))
        if images.shape[-1] != self.spec.width:
            images = F.interpolate(images, size=(self.spec.height, self.spec.width), mode="bilinear",
                                   align_corners=False).clamp(-1, 1)
        return images
