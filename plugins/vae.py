"""Variational autoencoders: Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014
(arXiv:1312.6114), and the conditional VAE of Sohn, Lee & Yan, "Learning Structured Output
Representation using Deep Conditional Generative Models", NeurIPS 2015.

The autoencoder's networks (:mod:`zoo.plugins.autoencoder`, DCGAN's blocks) with a Gaussian
posterior q(z|x) = N(mu(x), diag sigma(x)^2): the encoder gives a mean and a log-variance, z is
drawn by the reparameterisation z = mu + sigma * eps, and a N(0, I) prior makes the model
sample (``zoo sample vae``). Training maximises the evidence lower bound (ELBO),

    log p(x) >= E_q[log p(x|z)] - KL(q(z|x) || p(z)),

whose two terms are logged apart (``reconstruction``, ``kl``, in nats per image) beside the
``elbo`` itself. The decoder's likelihood p(x|z) is ``bernoulli`` (each pixel on with the
probability sigmoid(logit): digits, Fashion-MNIST) or ``gaussian`` (a mean squashed into
[-1, 1] and a standard deviation, learnt per channel unless ``sigma`` fixes it: Rybkin et
al.'s calibrated decoder, which lets the data set the balance a fixed sigma would hide).

The classic mistakes users report, and what this file does instead:

* **Sum versus mean.** log p(x|z) is summed over every pixel and the KL over every latent
  dimension, each per image, then averaged over the batch: the ELBO in nats per image,
  whatever the batch size. Averaging the reconstruction over pixels while summing the KL
  (a framework's default ``mean`` reduction) weighs the KL 784 times too much on MNIST, a
  silent beta of 784: blurred or collapsed models. ``beta`` (Higgins et al., ICLR 2017)
  reweights it on purpose, and says so in the config.
* **An output activation that does not match the data.** zoo's images live in [-1, 1]. A
  Bernoulli decoder's target is each pixel's intensity (x + 1) / 2 in [0, 1], against a logit
  (never a sigmoid fed to a loss that expects [0, 1] data on [-1, 1] data); its image is the
  probability rescaled, 2 sigmoid(l) - 1. A Gaussian decoder's mean is tanh'd into [-1, 1].
  Training on the intensities is the exact expectation of training on dynamically binarised
  images (each pixel on with its intensity as probability), so the Bernoulli model *is* a
  model of binarised digits, and is measured as one.
* **Posterior collapse.** The KL per image is logged at every step, ``zoo eval`` counts the
  active units (Burda et al.: latent dimensions whose posterior mean varies across images,
  Cov > 0.01), and two remedies are keys: ``kl_warmup`` (the KL weight rises from 0 over a
  share of training; Bowman et al. 2016, Sonderby et al. 2016) and ``free_bits`` (Kingma et
  al. 2016: no pressure below that many nats per dimension).

``zoo eval`` adds an importance-weighted estimate of the held-out log-likelihood (Burda,
Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016): log (1/k) sum_i
p(x, z_i) / q(z_i|x) over k draws from the posterior, a lower bound that tightens as k grows,
reported as a negative log-likelihood in nats and bits per dimension (:meth:`VAE.log_likelihood`).

The conditional VAE is told the class three times: label maps join the encoder's input, the
decoder takes a class code beside z and a class's own scale and shift in each batch norm
(``decoder_conditioning=batchnorm``, as cgan's generator), and the prior is a learnt Gaussian
per class (``prior=learnt``: Sohn et al.'s prior network, for a class), which ``encode`` and
``generate`` standardise, so the latent space the pipelines see stays N(0, I). Each of the
three, and a longer training (the README's ``--epochs 80``), made more of the sevens read as 7
in the screening of its defaults (benchmarks/autoencoders.py cvae); what they reach is on
docs/results/autoencoders.md once measured again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import zoo
from zoo.config import option
from zoo.plugins.autoencoder import CodecConfig, EncoderDecoder, decoder_body, intensities
from zoo.plugins.cgan import ConditionalGenerator, per_class
from zoo.previews import PREVIEW_CLASSES, PREVIEW_EXAMPLES, PREVIEW_PER_CLASS
from zoo.training.engine import full_precision

PREVIEW_SAMPLES = 6
"""Samples beside each previewed example and its reconstruction."""
LOG_2PI = math.log(2 * math.pi)
SIGMA_FLOOR = 1 / 255
"""The least standard deviation a learnt Gaussian decoder may reach: half an 8-bit step in
[-1, 1] units. Below it the density of dequantised 8-bit data would reward memorising."""
BIN = 2 / 255
"""The width of one 8-bit step in [-1, 1] units: dequantisation noise spans one."""
DECODES = 4096
"""Decoder passes per batch when estimating a likelihood with many posterior samples."""


@dataclass
class VAEConfig(CodecConfig):
    likelihood: Literal["bernoulli", "gaussian"] = option(
        "bernoulli", "p(x|z): bernoulli (each pixel on with its intensity as probability: digits, "
                     "clothes) or gaussian (8-bit pixels, dequantised: photos)")
    sigma: float = option(0.0, "the Gaussian decoder's std in [-1, 1] units; 0 learns one per channel "
                               f"(never below {SIGMA_FLOOR:.4f}, half an 8-bit step)")
    beta: float = option(1.0, "weight of the KL term: 1 is the ELBO; >1 Higgins et al.'s beta-VAE "
                              "(smoother, blurrier), <1 sharper but a worse prior")
    kl_warmup: float = option(0.0, "share of training over which the KL weight rises from 0 to beta "
                                   "(0: none; 0.2: the first fifth)")
    free_bits: float = option(0.0, "nats per latent dimension below which the KL is not pushed "
                                   "(Kingma et al. 2016; against posterior collapse)")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.not_negative("sigma", "beta", "kl_warmup", "free_bits")
        if self.kl_warmup > 1:
            raise zoo.UsageError(f"kl_warmup is a share of training, within [0, 1], got {self.kl_warmup}")
        if self.sigma and self.sigma < SIGMA_FLOOR:
            raise zoo.UsageError(f"sigma must be 0 (learnt) or at least {SIGMA_FLOOR:.4f}, got {self.sigma}")


def gaussian_kl(mu: Tensor, logvar: Tensor, prior_mu: Tensor | float = 0.0,
                prior_logvar: Tensor | float = 0.0) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(prior_mu, exp(prior_logvar))) for each dimension, in nats:
    N x d; the prior is N(0, 1) unless given."""
    prior_logvar = torch.as_tensor(prior_logvar, dtype=mu.dtype, device=mu.device)
    return 0.5 * (prior_logvar - logvar + (logvar.exp() + (mu - prior_mu).pow(2)) / prior_logvar.exp() - 1)


def standard_normal_log_density(z: Tensor) -> Tensor:
    """log N(z; 0, I), summed over the last dimension."""
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


class VAE(EncoderDecoder):
    name = "vae"
    summary = "Variational autoencoder: Gaussian posterior, ELBO, beta, KL warm-up, importance-weighted NLL"
    paper = "Kingma & Welling 2014, arXiv:1312.6114"
    version = "1"
    Config = VAEConfig
    capabilities = frozenset({zoo.Capability.LATENT, zoo.Capability.ENCODER, zoo.Capability.LIKELIHOOD})
    tiny_config = {"encoder_width": 4, "decoder_width": 4, "batch_size": 8, "latent_dim": 4}

    config: VAEConfig

    def __init__(self, config: VAEConfig, spec: zoo.DataSpec) -> None:
        super().__init__(config, spec)
        # The Gaussian decoder's standard deviation per channel, learnt unless fixed: the floor plus
        # a softplus, so that it never sticks at the floor (a clamp there would stop its gradient).
        start = math.log(math.expm1(0.1 - SIGMA_FLOOR))  # softplus(start) + floor = 0.1
        self.sigma_raw = nn.Parameter(torch.full((spec.channels,), start),
                                      requires_grad=config.likelihood == "gaussian" and not config.sigma)

    def code_length(self) -> int:
        return 2 * self.config.latent_dim

    @property
    def outputs_logits(self) -> bool:
        return self.config.likelihood == "bernoulli"

    # -- the posterior and the likelihood ----------------------------------------------------------

    def posterior(self, images: Tensor, conditions: zoo.Conditions | None = None) -> tuple[Tensor, Tensor]:
        """The mean and log-variance of q(z|x), N x latent_dim each."""
        mu, logvar = self.encoder(images, (conditions or {}).get("class")).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)  # exp() stays finite in float32, whatever the encoder says

    def prior_params(self, conditions: zoo.Conditions | None = None) -> tuple[Tensor, Tensor]:
        """The mean and log-variance of the prior p(z): N(0, I) here; a conditional VAE learns
        one per class. Broadcastable against N x latent_dim."""
        zero = torch.zeros(1, self.config.latent_dim, device=self.device)
        return zero, zero

    def encode(self, images: Tensor, conditions: zoo.Conditions | None = None) -> Tensor:
        """The posterior mean, standardised under the prior: the code an image is
        reconstructed and interpolated from, in the N(0, I) space ``generate`` takes."""
        mu_p, logvar_p = self.prior_params(conditions)
        return (self.posterior(images, conditions)[0] - mu_p) * (-0.5 * logvar_p).exp()

    def generate(self, z: Tensor, conditions: zoo.Conditions | None = None) -> Tensor:
        """Images for standard-normal ``z``, moved into the prior's place first (the identity for N(0, I))."""
        mu_p, logvar_p = self.prior_params(conditions)
        return super().generate(mu_p + (0.5 * logvar_p).exp() * z, conditions)

    def sigma(self) -> Tensor:
        """The Gaussian decoder's standard deviation per channel."""
        if self.config.sigma:
            return torch.full_like(self.sigma_raw, self.config.sigma)
        return SIGMA_FLOOR + F.softplus(self.sigma_raw)

    def log_px(self, raw: Tensor, targets: Tensor) -> Tensor:
        """log p(x|z) of each image, summed over its pixels (nats): ``targets`` are intensities
        in [0, 1] (or binary pixels) for a Bernoulli decoder, images in [-1, 1] for a Gaussian."""
        if self.config.likelihood == "bernoulli":
            return -F.binary_cross_entropy_with_logits(raw, targets, reduction="none").flatten(1).sum(1)
        sigma = self.sigma().view(1, -1, 1, 1)
        mean = torch.tanh(raw)
        log_density = -0.5 * ((targets - mean) / sigma).pow(2) - sigma.log() - 0.5 * LOG_2PI
        return log_density.flatten(1).sum(1)

    def likelihood_targets(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """What p(x|z) scores for a batch in training: each pixel's intensity for a Bernoulli
        decoder (the expectation over binarisations), the dequantised image for a Gaussian."""
        if self.config.likelihood == "bernoulli":
            return intensities(images)
        noise = torch.rand(images.shape, generator=generator).to(images.device) if generator is not None \
            else torch.rand_like(images)
        return images + (noise - 0.5) * BIN

    def kl_weight(self, progress: zoo.Progress) -> float:
        """beta, ramped up from 0 over the first ``kl_warmup`` of training."""
        cfg = self.config
        if not cfg.kl_warmup:
            return cfg.beta
        return cfg.beta * min(1.0, progress.fraction / cfg.kl_warmup)

    def train_step(self, batches: zoo.Batches, progress: zoo.Progress) -> zoo.Metrics:
        batch = batches.next()
        targets = self.likelihood_targets(batch.images)
        seen = targets if self.config.likelihood == "gaussian" else batch.images
        mu, logvar = self.posterior(seen, batch.conditions)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)  # the reparameterisation
        reconstruction = -self.log_px(self.decode(z, batch.conditions), targets)  # N, nats
        kl = gaussian_kl(mu, logvar, *self.prior_params(batch.conditions))  # N x d, nats
        kl_term = kl.mean(0).clamp(min=self.config.free_bits).sum() if self.config.free_bits else kl.sum(1).mean()
        beta = self.kl_weight(progress)
        loss = reconstruction.mean() + beta * kl_term
        self.update("autoencoder", loss)
        elbo = -(reconstruction.detach() + kl.detach().sum(1)).mean()
        return {"loss": loss.detach(), "elbo": elbo, "reconstruction": reconstruction.detach().mean(),
                "kl": kl.detach().sum(1).mean(), "beta": beta}

    # -- measuring it ----------------------------------------------------------------------------------

    def likelihood_data(self) -> str:
        """What the likelihood is of, for the protocol ``zoo eval`` records."""
        given = ", given each image's class" if self.has(zoo.Capability.CLASS_CONDITIONAL) else ""
        if self.config.likelihood == "bernoulli":
            return f"binarised pixels (each on with its intensity as probability, seeded){given}"
        return f"8-bit pixels (uniformly dequantised, seeded){given}"

    @torch.no_grad()
    def log_likelihood(self, images: Tensor, conditions: zoo.Conditions | None = None, *, samples: int = 1,
                       generator: torch.Generator | None = None) -> Tensor:
        """An estimate of log P(x) in nats for each image (float, [-1, 1], 8-bit values): Burda
        et al.'s importance-weighted bound with ``samples`` draws from q(z|x) (1: the ELBO).
        Of binarised images for a Bernoulli decoder (each pixel drawn on with its intensity as
        probability), of the 8-bit images for a Gaussian one (dequantised, one bin's log-width
        added per pixel). Random numbers come from ``generator`` (CPU), so it is reproducible."""
        if samples < 1:
            raise zoo.UsageError(f"the likelihood needs at least one posterior sample, got {samples}")
        generator = generator or torch.Generator().manual_seed(0)
        device = images.device
        if self.config.likelihood == "bernoulli":
            targets = (torch.rand(images.shape, generator=generator).to(device) < intensities(images)).float()
            seen = images  # q(z|x) of the 8-bit image the pixels were drawn from: any proposal gives a bound
        else:
            targets = seen = self.likelihood_targets(images, generator)
        labels = (conditions or {}).get("class")
        with zoo.evaluating(self), full_precision():
            mu, logvar = self.posterior(seen, conditions)
            std = (0.5 * logvar).exp()
            mu_p, logvar_p = self.prior_params(conditions)
            mu_p, std_p = mu_p.expand_as(mu)[:, None], (0.5 * logvar_p).exp().expand_as(mu)[:, None]
            per_pass = max(1, DECODES // len(images))
            log_w = []
            for start in range(0, samples, per_pass):
                s = min(per_pass, samples - start)
                eps = torch.randn((len(images), s, mu.shape[1]), generator=generator).to(device)
                z = mu[:, None] + std[:, None] * eps  # N x s x d
                given = {} if labels is None else {"class": labels.repeat_interleave(s)}
                raw = self.decode(z.flatten(0, 1), given)
                log_px = self.log_px(raw, targets.repeat_interleave(s, 0)).view(len(images), s)
                log_q = (-0.5 * (eps.pow(2) + LOG_2PI) - std.log()[:, None]).sum(-1)
                log_w.append(log_px + standard_normal_log_density((z - mu_p) / std_p) - std_p.log().sum(-1) - log_q)
            weights = torch.cat(log_w, dim=1)
        estimate = torch.logsumexp(weights, dim=1) - math.log(samples)
        if self.config.likelihood == "gaussian":
            estimate = estimate + images[0].numel() * math.log(BIN)
        return estimate

    # -- the pictures shown during training -----------------------------------------------------------

    def preview_inputs(self, n: int, generator: torch.Generator, examples: zoo.Batch) -> dict[str, Any]:
        """A row per example: the image, its reconstruction and fixed samples; for a
        class-conditional model a row of samples per class instead."""
        if self.has(zoo.Capability.CLASS_CONDITIONAL):
            labels = zoo.class_rows(min(self.spec.num_classes, PREVIEW_CLASSES), PREVIEW_PER_CLASS)
            return {"z": self.sample_latent(len(labels), generator), "conditions": {"class": labels.to(self.device)}}
        images = examples.images[:PREVIEW_EXAMPLES]
        return {"images": images, "z": self.sample_latent(len(images) * PREVIEW_SAMPLES, generator)}

    @torch.no_grad()
    def preview(self, inputs: dict[str, Any]) -> Tensor:  # type: ignore[override]
        with zoo.evaluating(self), full_precision():
            if "images" not in inputs:
                samples = self.generate(inputs["z"], inputs["conditions"])
                return samples.view(-1, PREVIEW_PER_CLASS, *samples.shape[1:])
            images = inputs["images"]
            reconstructions = self.generate(self.encode(images))
            samples = self.generate(inputs["z"]).view(len(images), PREVIEW_SAMPLES, *images.shape[1:])
        return torch.cat([zoo.image_rows(images, reconstructions), samples], dim=1)

    def preview_labels(self, inputs: dict[str, Any]) -> tuple[list[str] | None, list[str] | None]:  # type: ignore[override]
        if "images" not in inputs:
            labels = inputs["conditions"]["class"][::PREVIEW_PER_CLASS]
            return None, [self.spec.class_names[int(c)] for c in labels]
        return ["input", "reconstruction", "samples", *[""] * (PREVIEW_SAMPLES - 1)], None


    def preview_samples(self, inputs: dict[str, Any], preview: Tensor) -> Tensor | None:  # type: ignore[override]
        """The samples of the preview: every row of a class-conditional one, else the columns
        after each example's input and reconstruction."""
        return preview if "images" not in inputs else preview[:, 2:].flatten(0, 1)


@dataclass
class CVAEConfig(VAEConfig):
    prior: Literal["learnt", "standard"] = option(
        "learnt", "p(z|class): learnt, a Gaussian of each class's own (Sohn et al.'s prior network, "
                  "here for a class), or standard, N(0, I) for every class")
    embed_dim: int = option(16, "length of the class code joined to z in the decoder")
    decoder_conditioning: Literal["input", "batchnorm"] = option(
        "batchnorm", "input: the class code joins z (Sohn et al.); batchnorm: also a class's own scale "
                     "and shift in every batch norm of the decoder (as cgan's generator)")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.at_least(1, "embed_dim")


class CVAE(VAE):
    name = "cvae"
    summary = "Conditional VAE: encoder and decoder told the class, so it draws the class asked for"
    paper = "Sohn, Lee & Yan 2015, NeurIPS (CVAE); Kingma & Welling 2014, arXiv:1312.6114"
    version = "1"
    Config = CVAEConfig
    capabilities = VAE.capabilities | {zoo.Capability.CLASS_CONDITIONAL}
    tiny_config = {**VAE.tiny_config, "embed_dim": 4}

    config: CVAEConfig

    def __init__(self, config: CVAEConfig, spec: zoo.DataSpec) -> None:
        super().__init__(config, spec)
        # Each class's prior mean and log-variance, starting as N(0, I); with prior=standard, fixed there.
        learnt = config.prior == "learnt"
        self.prior_mean = nn.Embedding(spec.num_classes, config.latent_dim)
        self.prior_logvar = nn.Embedding(spec.num_classes, config.latent_dim)
        for table in (self.prior_mean, self.prior_logvar):
            nn.init.zeros_(table.weight)
            table.weight.requires_grad_(learnt)

    def prior_params(self, conditions: zoo.Conditions | None = None) -> tuple[Tensor, Tensor]:
        labels = (conditions or {}).get("class")
        if labels is None:
            raise zoo.UsageError(f"{self.name} needs a class for every image: its prior is the class's own")
        return per_class(self.prior_mean, labels), per_class(self.prior_logvar, labels).clamp(-10.0, 10.0)

    def build_decoder(self, config: CodecConfig, spec: zoo.DataSpec, classes: int) -> nn.Module:
        assert isinstance(config, CVAEConfig)
        return ConditionalGenerator(decoder_body(config, spec, config.latent_dim + config.embed_dim), classes,
                                    config.embed_dim, class_norms=config.decoder_conditioning == "batchnorm")

    def decode(self, z: Tensor, conditions: zoo.Conditions | None = None) -> Tensor:
        labels = (conditions or {}).get("class")
        if labels is None:
            raise zoo.UsageError(f"{self.name} needs a class for every image it decodes")
        return self.decoder(z, labels)
