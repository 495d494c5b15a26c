"""Watch a model train for the failure modes of seed 004's lecture, and say so as it happens.

* **Vanishing gradients**: the discriminator wins outright, D(x) near 1 and D(G(z)) near 0
  for a stretch of steps, so the generator learns little from it.
* **The discriminator fooled**: D(G(z)) near 1; D has stopped telling real from fake.
* **Mode collapse**: the fixed preview samples are far less varied than real images of
  the same kind (for class-conditional models: than real images of each class) at
  :data:`COLLAPSE_CHECKS` previews in a row, without growing more varied across them, once
  training has settled in. Every generator starts out drawing one blob, and its variety
  then climbs through the threshold (``make demo``'s DCGAN was 0.30 at the first check, and
  1.0 by its end): a start, not a collapse.
* **Posterior collapse** (VAEs): the KL term, in nats per image, near zero for a stretch of
  steps once training has settled in: the codes carry next to nothing about the images and
  the decoder ignores them.

NaN losses are the train loop's own business: it stops at once and keeps the last good
checkpoint. The watch only reads the metrics every step reports (``d_real``, ``d_fake``:
beliefs in [0, 1]; ``kl``: nats per image) and the preview grid; models that report none of
them are not watched.
Each warning is given once, and again only after the condition has cleared.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import torch
from torch import Tensor

from zoo.data.images import to_float
from zoo.measure.metrics import diversity

WINDOW = 50
"""Steps averaged before judging D's outputs."""
SATURATED = 0.98
"""D(x) above this and D(G(z)) below 1 minus it: D wins outright."""
FOOLED = 0.95
"""D(G(z)) above this: D calls generated images real."""
COLLAPSED = 0.3
"""Preview samples this varied, or less, next to real images: mode collapse."""
COLLAPSED_KL = 0.5
"""A KL term this small, in nats per image, over the window: the posterior has collapsed."""
SETTLED = (0.2, 100)
"""Every generator starts from one blob: collapse is judged once training is this far
through (a fraction, and a number of steps)."""
COLLAPSE_CHECKS = 3
"""Previews in a row too little varied, and no more varied at the last than at the first,
before collapse is said: one low preview on the way up from the start is not one."""
GROWING = 1.1
"""Variety more than this many times that of the first of those previews: still growing."""


@dataclass
class Alert:
    step: int
    kind: str
    message: str


@dataclass
class Watch:
    """Fed every step's metrics and every preview; returns new warnings."""

    reference: Tensor | None = None
    """Real images in [-1, 1] to compare the preview's variety with: N x C x H x W, or
    classes x N x C x H x W for previews with a row per class."""
    window: int = WINDOW
    _real: deque = field(default_factory=deque)
    _fake: deque = field(default_factory=deque)
    _kl: deque = field(default_factory=deque)
    _variety: deque = field(default_factory=deque)
    """The last previews' variety, from the first too little varied since training settled."""
    _active: set = field(default_factory=set)

    def after_step(self, step: int, values: dict[str, float], fraction: float = 1.0) -> list[Alert]:
        """Warnings from one step's metrics; ``fraction`` is how far through training it is."""
        found = self._posterior(step, values, fraction)
        if "d_real" not in values or "d_fake" not in values:
            return found
        self._real.append(values["d_real"])
        self._fake.append(values["d_fake"])
        if len(self._real) > self.window:
            self._real.popleft()
            self._fake.popleft()
        if len(self._real) < self.window:
            return found
        d_real = sum(self._real) / len(self._real)
        d_fake = sum(self._fake) / len(self._fake)
        if self._check("saturated", d_real > SATURATED and d_fake < 1 - SATURATED):
            found.append(Alert(step, "saturated", (
                f"the discriminator wins outright (D(x) {d_real:.3f}, D(G(z)) {d_fake:.3f} over the "
                f"last {self.window} steps): the generator's gradients vanish. Try --set "
                "label_noise=0.3, instance_noise=0.1, loss=lsgan or hinge, or zoo train wgan-gp")))
        if self._check("fooled", d_fake > FOOLED):
            found.append(Alert(step, "fooled", (
                f"the discriminator calls generated images real (D(G(z)) {d_fake:.3f} over the last "
                f"{self.window} steps): it has stopped learning. Try a wider discriminator "
                "(--set d_width=...) or n_critic=2")))
        return found

    def _posterior(self, step: int, values: dict[str, float], fraction: float) -> list[Alert]:
        if "kl" not in values:
            return []
        self._kl.append(values["kl"])
        if len(self._kl) > self.window:
            self._kl.popleft()
        if len(self._kl) < self.window or step < SETTLED[1] or fraction < SETTLED[0]:
            return []
        kl = sum(self._kl) / len(self._kl)
        if not self._check("posterior", kl < COLLAPSED_KL):
            return []
        return [Alert(step, "posterior", (
            f"posterior collapse: the KL term is {kl:.3f} nats per image over the last {self.window} steps; "
            "the codes carry next to nothing and the decoder ignores them. Try --set kl_warmup=0.2, "
            "free_bits=0.5 or a smaller beta"))]

    def after_preview(self, step: int, fraction: float, preview: Tensor) -> tuple[float | None, list[Alert]]:
        """The preview's variety next to real images (1: as varied), and any warning;
        ``fraction`` is how far through training the run is."""
        if self.reference is None:
            return None, []
        preview = preview.detach().float().cpu()
        if preview.dim() == 5 and self.reference.dim() == 5:
            ratios = [diversity(row, real) for row, real in zip(preview, self.reference, strict=False)
                      if len(real) > 1]
            ratio = sum(ratios) / len(ratios) if ratios else None
        else:
            ratio = diversity(preview.flatten(0, preview.dim() - 4),
                              self.reference.flatten(0, self.reference.dim() - 4))
        if ratio is None:
            return None, []
        found = []
        settled = fraction >= SETTLED[0] and step >= SETTLED[1]
        low = settled and ratio < COLLAPSED
        if low:
            self._variety.append(ratio)
            if len(self._variety) > COLLAPSE_CHECKS:
                self._variety.popleft()
        else:  # as varied as it should be: a collapse said before is over
            self._variety.clear()
            self._check("collapse", False)
        growing = len(self._variety) < COLLAPSE_CHECKS or self._variety[-1] > GROWING * self._variety[0]
        if low and not growing and self._check("collapse", True):
            found.append(Alert(step, "collapse", (
                f"mode collapse: the preview samples are {ratio:.2f} as varied as real images "
                f"(below {COLLAPSED} at {COLLAPSE_CHECKS} previews in a row, and not growing); the generator "
                "repeats itself. Try --set " + (
                    "augment=translation,cutout (few images), loss=wasserstein with gp_weight=10 and d_norm=layer "
                    "(or zoo train wgan-gp), ema=0.999 or label_flip=0.05" if self._real else
                    "beta=0.5 or a larger latent_dim (a VAE whose samples all look alike)"))))
        return ratio, found

    def _check(self, kind: str, condition: bool) -> bool:
        """True when a condition newly holds; it must clear before it is reported again."""
        if not condition:
            self._active.discard(kind)
            return False
        if kind in self._active:
            return False
        self._active.add(kind)
        return True


def reference_images(images: Tensor, labels: Tensor | None, preview: Tensor, seed: int,
                     per_row: int = 64) -> Tensor:
    """Real images, as float in [-1, 1], laid out like the preview: a random set, or one
    row of each class for a preview with a row per class."""
    g = torch.Generator().manual_seed(seed)
    if preview.dim() == 5 and labels is not None:
        rows = []
        for k in range(preview.shape[0]):
            members = (labels == k).nonzero().view(-1)
            pick = members[torch.randperm(len(members), generator=g)[:per_row]]
            rows.append(to_float(images[pick.to(images.device)].cpu()))
        width = min(len(r) for r in rows)
        if width >= 2:
            return torch.stack([r[:width] for r in rows])
    pick = torch.randperm(len(images), generator=g)[:per_row]
    return to_float(images[pick.to(images.device)].cpu())
