"""The quick figure ``zoo train --eval-every N`` logs: a Frechet distance of fixed samples (translators:
the L1 of fixed held-out pairs), which keeps ``best.safetensors``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from rich.console import Console
from torch import Tensor

from zoo import features as features_io
from zoo.data import superres
from zoo.data.images import as_uint8, to_float
from zoo.data.memory import PreparedData, load_prepared
from zoo.errors import UsageError
from zoo.measure import metrics
from zoo.model import Model
from zoo.pipelines.evaluate.reference import Reference, load_extractor, protocol
from zoo.pipelines.evaluate.samplers import CHUNK, SSIM_POOL, SSIM_SAMPLES, conditions_for, draw
from zoo.pipelines.evaluate.translators import fixed_pairs
from zoo.spec import Capability

TRAINING_EVAL_SAMPLES = 1000
"""--eval-every draws this many fixed samples for its quick Frechet distance."""


@dataclass
class TrainingEval:
    """The quick figures ``--eval-every`` logs: a Frechet distance of fixed samples to the
    reference images (or for translators the L1 of fixed held-out pairs), and seed 000's
    curve, the mean SSIM between fixed samples and their nearest training images."""

    key: str
    protocol: str
    features: str | None = None
    """The extractor's name as ``--eval-features`` gives it (the default resolved): what a
    resumed run measures in again. None for translators, whose L1 needs none."""
    extractor: features_io.FeatureExtractor | None = None
    real_features: Tensor | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    pool: Tensor | None = None

    @staticmethod
    def check(model: Model, prepared: PreparedData, features: str | None) -> None:
        """What :meth:`build` would refuse, without its work: before the run folder is made."""
        if model.has(Capability.IMAGE_TO_IMAGE):
            paired = prepared.targets is not None and model.spec.pairing == "paired"
            derived = prepared.targets is None and superres.derivation_of(type(model), model.config) is not None
            if not (paired or derived):
                raise UsageError(f"--eval-every: {model.name}'s data has no targets to measure its outputs against")
        elif not model.has(Capability.LATENT):
            raise UsageError(f"--eval-every: {model.name} neither samples nor translates")
        else:
            features_io.check_spec(features or features_io.default_for(prepared.spec))

    @classmethod
    def build(cls, model: Model, prepared: PreparedData, features: str | None, seed: int,
              console: Console) -> TrainingEval:
        heldout = load_prepared(prepared.path, "heldout") if prepared.meta.get("heldout") else None
        reference = Reference(prepared, heldout if heldout is not None else prepared,
                              "heldout" if heldout is not None else "train", heldout)
        if model.has(Capability.IMAGE_TO_IMAGE):
            inputs, targets = fixed_pairs(model, reference.split)
            if targets is None:
                raise UsageError(f"--eval-every: {model.name}'s data has no targets to measure its outputs against")
            return cls("l1", f"l1/{reference.split_name}", inputs={"images": inputs[:256], "targets": targets[:256]})
        if not model.has(Capability.LATENT):
            raise UsageError(f"--eval-every: {model.name} neither samples nor translates")
        features = features or features_io.default_for(reference.train.spec)
        extractor = load_extractor(features, reference, console).to(model.device)
        real_features = features_io.reference_features(extractor, reference.split)
        generator = torch.Generator().manual_seed(seed + 1)
        n = TRAINING_EVAL_SAMPLES
        conditions = conditions_for(model, reference.split, n, generator)
        pool_index = torch.randperm(len(prepared), generator=generator)[:SSIM_POOL]
        name = protocol("fd", extractor, n, reference, len(reference.split))["name"]
        return cls("fd", name, features, extractor, real_features,
                   {"conditions": conditions, "seed": seed + 1, "n": n}, prepared.images[pool_index])

    @torch.no_grad()
    def __call__(self, model: Model) -> dict[str, float]:
        if self.key == "l1":
            a = torch.cat([model.translate(to_float(x).to(model.device), model.directions[0]
                                           if model.directions else "AtoB").cpu()
                           for x in self.inputs["images"].split(CHUNK)])
            a = to_float(as_uint8(a))
            b = to_float(self.inputs["targets"])
            return {"l1": float(((a - b).abs() / 2).mean()), "psnr": float(metrics.psnr(a, b).mean())}
        assert self.extractor is not None and self.real_features is not None and self.pool is not None
        samples = draw(model, self.inputs["n"], self.inputs["conditions"], self.inputs["seed"])
        fd = metrics.frechet_distance(self.real_features, self.extractor.extract(samples))
        shown = to_float(samples[:SSIM_SAMPLES])
        pool = to_float(self.pool)
        index = metrics.nearest(shown.flatten(1), pool.flatten(1))[1][:, 0]
        return {"fd": fd, "ssim_train": float(metrics.ssim(shown, pool[index]).mean())}


def check_eval_every(value: int | None) -> None:
    if value is not None and value < 1:
        raise UsageError(f"--eval-every must be at least 1, got {value}")
