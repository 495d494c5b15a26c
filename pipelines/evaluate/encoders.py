"""Encoders (autoencoders, VAEs): the reference images reconstructed (L1, PSNR, SSIM, sharpness, the
latent dimensions in use), and for models that estimate their likelihood the held-out negative
log-likelihood by the importance-weighted bound."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import Tensor

from zoo.config import within
from zoo.data.images import as_uint8, to_float
from zoo.data.mapped import whole_or_first
from zoo.data.memory import PreparedData
from zoo.display import figures
from zoo.display.console import progress_bar
from zoo.errors import UsageError
from zoo.measure import metrics
from zoo.model import Model
from zoo.pipelines.reconstruct import reconstructions
from zoo.previews import image_rows
from zoo.spec import Capability, class_condition

NLL_SAMPLES, NLL_IMAGES = 100, 1000
"""zoo eval's defaults: importance samples per image, and held-out images the NLL is averaged over."""


NLL_CHUNK = 50


def encoder_figures(model: Model, split: PreparedData, pictures: Path, result: dict[str, Any],
                    details: dict[str, Any], *, nll_samples: int = NLL_SAMPLES, nll_images: int = NLL_IMAGES,
                    seed: int = 0, console: Console | None = None) -> None:
    """Reconstruction error, sharpness and active units on ``split``'s images; and the
    negative log-likelihood for models that estimate one. Adds to ``result`` and ``details``."""
    labels = split.labels if model.has(Capability.CLASS_CONDITIONAL) else None
    if model.has(Capability.CLASS_CONDITIONAL) and labels is None:
        raise UsageError(f"{model.name} is class-conditional, and the reference images have no labels")
    real = to_float(whole_or_first(split.images))
    if len(real) < len(split):
        details["reconstruction_images"] = f"the first {len(real):,} of {len(split):,} (read from disk)"
    codes, outputs = reconstructions(model, real, labels)
    outputs = to_float(as_uint8(outputs))  # as they would be saved
    result.update(metrics.paired_scores(outputs, real))
    result["reconstruction_sharpness"] = metrics.sharpness(outputs, real)
    result["active_units"] = metrics.active_units(codes)
    details["latent_dim"] = int(codes.shape[1])
    figures.save_grid(image_rows(real[:8], outputs[:8]), pictures / "reconstructions.png",
                      column_labels=["input", "reconstruction"])
    if model.has(Capability.LIKELIHOOD):
        likelihood_figures(model, real, labels, nll_samples, nll_images, seed, result, details, console)


def likelihood_figures(model: Model, real: Tensor, labels: Tensor | None, samples: int, count: int, seed: int,
                result: dict[str, Any], details: dict[str, Any], console: Console | None) -> None:
    """The NLL of the first ``count`` images with ``samples`` draws, and with one (the ELBO)."""
    within("--nll-samples", samples, 1, 100_000)
    within("--nll-images", count, 1, 1_000_000)
    images = real[:count]
    chosen = labels[:count] if labels is not None else None
    estimates: dict[int, Tensor] = {}
    with progress_bar(console or Console(quiet=True), transient=True) as bar:
        for k in dict.fromkeys((1, samples)):
            task = bar.add_task(f"log-likelihood of {len(images):,} images, {k} sample(s) each", total=len(images))
            parts = []
            for start in range(0, len(images), NLL_CHUNK):
                # Seeded per chunk, so every k scores the same binarised (or dequantised) images:
                # the model draws that noise first, then as many posterior samples as k asks.
                generator = torch.Generator().manual_seed(seed * 1_000_003 + start)
                x = images[start:start + NLL_CHUNK].to(model.device)
                given = class_condition(chosen[start:start + NLL_CHUNK].to(model.device) if chosen is not None
                                        else None)
                parts.append(model.log_likelihood(x, given, samples=k, generator=generator).double().cpu())
                bar.advance(task, len(x))
            estimates[k] = torch.cat(parts)
    dims = images[0].numel()
    nll = -estimates[samples]
    result["nll"] = float(nll.mean())
    result["bits_per_dim"] = float(nll.mean() / (dims * math.log(2)))
    result["nll_elbo"] = float(-estimates[1].mean())
    details["likelihood"] = {"samples": samples, "images": len(images), "of": model.likelihood_data(),
                             "standard_error": float(nll.std() / math.sqrt(len(nll))) if len(nll) > 1 else None,
                             "dimensions": dims, "estimate": "importance-weighted bound (Burda et al. 2016); "
                                                             "nll_elbo: the same with one sample"}
