"""Training aids that change networks rather than losses: a moving average of the
generator's weights for sampling, spectral normalisation of a discriminator, DCGAN's
initialisation, and a network frozen for a block (no weight gradients where a step needs none).

Losses, penalties, label smoothing and instance noise live in :mod:`zoo.losses`.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

import torch
from torch import nn

EMA_WARMUP = 10


def ema_decay(decay: float, step: int) -> float:
    """The average's decay at a step: (1 + t) / (10 + t) until that reaches ``decay``, so a
    short run's average is not stuck near the random initial weights."""
    return min(decay, (1 + step) / (EMA_WARMUP + step))


def ema_copy(module: nn.Module) -> nn.Module:
    """A frozen copy of a network to hold its moving average (Yazici et al. 2019: averaged
    generators sample better than the live one, for the price of one forward copy)."""
    average = copy.deepcopy(module)
    average.requires_grad_(False)
    return average


@torch.no_grad()
def ema_update(average: nn.Module, live: nn.Module, decay: float) -> None:
    """average <- decay * average + (1 - decay) * live, for weights and for float buffers
    (batch-norm statistics, so they match the averaged weights); counters are copied."""
    for a, p in zip(average.parameters(), live.parameters(), strict=True):
        a.lerp_(p, 1.0 - decay)
    for kept, seen in zip(average.buffers(), live.buffers(), strict=True):
        if kept.is_floating_point():
            kept.lerp_(seen, 1.0 - decay)
        else:
            kept.copy_(seen)


def spectral_normalise(module: nn.Module) -> nn.Module:
    """Miyato et al.'s spectral normalisation on every convolution and linear layer: each
    weight divided by its largest singular value (one power iteration per forward pass).
    Apply it after initialising the weights."""
    for child in list(module.modules()):
        if isinstance(child, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.utils.parametrizations.spectral_norm(child)
    return module


@torch.no_grad()
def recalibrate_batch_norm(module: nn.Module, forward, batches: int) -> None:
    """Batch-norm statistics measured afresh ("standing statistics", Brock et al. 2019):
    reset every batch-norm layer of ``module``, run ``forward()`` ``batches`` times in
    training mode with a cumulative average, then restore each layer's mode and momentum.
    A moving average of weights needs this: averaging the live network's running statistics
    does not give the statistics of the averaged network."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    saved = [(m, m.momentum, m.training) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative: every batch counts the same
        m.train()
    try:
        for _ in range(batches):
            forward()
    finally:
        for m, momentum, training in saved:
            m.momentum = momentum
            m.training = training


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No weight gradients for a module within a block (a GAN's generator step needs none
    for the discriminator's weights: a third of its backward pass saved)."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def init_normal(module: nn.Module, std: float = 0.02) -> None:
    """DCGAN's initialisation: conv and linear weights N(0, std), norm scales N(1, std)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)) and m.affine:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
