"""The Wasserstein GANs: Arjovsky, Chintala & Bottou, "Wasserstein GAN", ICML 2017
(arXiv:1701.07875), and Gulrajani et al., "Improved Training of Wasserstein GANs",
NeurIPS 2017 (arXiv:1704.00028).

Seed 000 names the Wasserstein GAN as the cure for unstable training. The discriminator
becomes a *critic* that scores images without a sigmoid; trained to maximise
E[D(x)] - E[D(G(z))] over 1-Lipschitz functions, that difference estimates the Wasserstein
distance between the real and generated distributions, and it is logged as
``wasserstein``: unlike a GAN's losses, it falls as the samples improve. The critic trains
five times per generator update.

* **wgan** keeps the critic Lipschitz by clipping every weight to [-0.01, 0.01] after each
  update, and trains with RMSprop(5e-5) (momentum made the clipped critic unstable in the
  paper). Batch size 64; the critic keeps DCGAN's batch norm, as in the paper's DCGAN runs.
* **wgan-gp** replaces clipping by a penalty of 10 * (||grad D(x_hat)|| - 1)^2 at random
  points between real and generated images. Batch norm would make each image's score
  depend on the others in its batch, which breaks the per-image penalty; the paper
  recommends layer norm, but its own MNIST code (gan_mnist.py) uses a critic with no
  normalisation and Adam(1e-4, betas 0.5 / 0.9), and so does zoo: no norm, beta1 0.5.
  The learning rate differs from the paper's: 1e-3, not 1e-4. The paper trains for
  200,000 generator steps; zoo's users train for minutes, and at 1e-4 the critic and the
  generator barely move in that time. On the offline MNIST, one CPU core, 2 minutes of
  training each (benchmarks/quality_defaults.py; Frechet distance in a digit CNN's
  features, real digits score 31): layer norm, beta1 0, 1e-4 (the old defaults) 3,919; no
  norm 1,027; and beta1 0.5 993; and lr 2e-4 703, 5e-4 252, 1e-3 187; dcgan 229. Fewer
  critic steps (n_critic 2: 1,011; 1: 1,280), a smaller batch (32: 446 at 2e-4) or a
  wider critic (d_width 32: 978, 2.4 x slower) did worse.

Both are DCGAN with other defaults: the lab's networks at 28x28, the paper's at 16-256 px,
and every option of :mod:`zoo.losses` still a ``--set`` away.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from zoo import losses
from zoo.config import option
from zoo.plugins.dcgan import DCGAN, DCGANConfig, Norm


@dataclass
class WGANConfig(DCGANConfig):
    batch_size: int = option(64, "images per training batch (the paper: 64)")
    loss: losses.LossKind = option("wasserstein", "the critic's loss (see zoo info dcgan)")
    clip: float = option(0.01, "clip every critic weight to [-clip, clip] after each update")
    n_critic: int = option(5, "critic updates per generator update")
    optimizer: Literal["adam", "rmsprop"] = option("rmsprop", "rmsprop (the paper) or adam")
    lr: float = option(5e-5, "learning rate, both networks")


@dataclass
class WGANGPConfig(DCGANConfig):
    batch_size: int = option(64, "images per training batch (the paper: 64)")
    loss: losses.LossKind = option("wasserstein", "the critic's loss (see zoo info dcgan)")
    gp_weight: float = option(10.0, "lambda: weight of the gradient penalty")
    n_critic: int = option(5, "critic updates per generator update")
    d_norm: Norm = option("none", "the critic's normalisation: none (the paper's MNIST code) or layer "
                                  "(the paper's advice); batch norm breaks the per-image penalty")
    lr: float = option(1e-3, "Adam learning rate, both networks (the paper: 1e-4, for 200,000 steps; "
                             "1e-3 learns far more in minutes)")
    beta1: float = option(0.5, "Adam beta1 (the paper's MNIST code: 0.5)")
    beta2: float = option(0.9, "Adam beta2")


class WGAN(DCGAN):
    name = "wgan"
    summary = "Wasserstein GAN: a weight-clipped critic, RMSprop, five critic steps per G step"
    paper = "Arjovsky, Chintala & Bottou 2017, arXiv:1701.07875"
    family = "GAN"
    version = "1"
    Config = WGANConfig
    tiny_config = {"g_width": 4, "d_width": 4, "batch_size": 8, "latent_dim": 8, "n_critic": 2}

    config: WGANConfig


class WGANGP(DCGAN):
    name = "wgan-gp"
    summary = "WGAN with a gradient penalty instead of clipping; Adam(1e-3, 0.5, 0.9), no norm in the critic"
    paper = "Gulrajani et al. 2017, arXiv:1704.00028"
    family = "GAN"
    version = "1"
    Config = WGANGPConfig
    tiny_config = {"g_width": 4, "d_width": 4, "batch_size": 8, "latent_dim": 8, "n_critic": 2}

    config: WGANGPConfig
