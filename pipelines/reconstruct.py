"""Through the encoder and back: ``zoo reconstruct``, and what ``zoo eval`` measures of a model
that encodes.

``zoo reconstruct RUN IMAGES...`` reads images, folders or globs in any format and size,
fits them to the model's size and channels, encodes and decodes them, and writes one PNG per
input (its reconstruction), ``sheet.png`` (input | reconstruction, labelled) and the PSNR,
SSIM and MSE of each in ``metrics.json``. A class-conditional encoder is told the images'
class with ``--class``.

For ``zoo eval`` (:func:`encoder_figures`): the held-out images' reconstruction error (L1,
PSNR, SSIM), how sharp the reconstructions are beside their inputs, how many latent
dimensions the codes use (active units: a collapsed posterior uses none), and for models with
the ``likelihood`` capability the held-out negative log-likelihood, by the model's own
estimate with k samples, in nats per image and bits per dimension, beside the ELBO's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import Tensor

from zoo.config import within
from zoo.data.images import as_uint8, to_float
from zoo.data.memory import PreparedData
from zoo.display import figures
from zoo.display.console import make_console, progress_bar
from zoo.errors import UsageError
from zoo.measure import metrics
from zoo.model import Model
from zoo.pipelines.classes import chosen_class, class_index
from zoo.pipelines.inputs import collect, read_inputs, unique
from zoo.previews import image_rows
from zoo.records import runs
from zoo.spec import Capability, class_condition
from zoo.training.engine import evaluating

CHUNK = 256
SHEET_LIMIT = 64
NLL_SAMPLES, NLL_IMAGES = 100, 1000
"""zoo eval's defaults: importance samples per image, and held-out images the NLL is averaged over."""
NLL_CHUNK = 50


def reconstruct(target: str, inputs: Sequence[str], *, out: Path | None = None, class_: str | None = None,
                digit: str | None = None, force: bool = False, device: str = "auto", which: str = "latest",
                console: Console | None = None) -> Path:
    """Reconstruct every input image with the run's ``which`` checkpoint (latest or best);
    returns the output folder."""
    console = console or make_console()
    model, checkpoint, path = runs.load_encoder(target, device, which=which)
    wanted = chosen_class(model, class_, digit)
    if model.has(Capability.CLASS_CONDITIONAL) and wanted is None:
        raise UsageError(f"{model.name} is class-conditional: say which class the images are with --class "
                         "(or --digit)")
    files, named = collect(inputs, "reconstruct")
    spec = model.spec
    read = read_inputs(files, named, spec.height, spec.width, spec.channels)
    labels = (torch.full((len(read.names),), class_index(spec, wanted), dtype=torch.long)
              if wanted is not None else None)

    told = spec.class_names[class_index(spec, wanted)] if wanted is not None else None
    out = runs.output_dir(out or runs.default_out("reconstructions", checkpoint, path, told), force)
    outputs = to_float(as_uint8(reconstructions(model, read.images, labels)[1]))  # scored as saved
    names = unique(read.names, reserved=("sheet", "metrics"))
    figures.save_images(outputs, out, names)
    scores = {"mse": metrics.mse(outputs, read.images), "psnr": metrics.psnr(outputs, read.images),
              "ssim": metrics.ssim(outputs, read.images)}
    mean = {k: float(v.mean()) for k, v in scores.items()}
    title = f"{model.name}: PSNR {mean['psnr']:.1f} dB, SSIM {mean['ssim']:.3f}"
    if wanted is not None:
        title += f", class {spec.class_names[class_index(spec, wanted)]}"
    figures.save_grid(image_rows(read.images[:SHEET_LIMIT], outputs[:SHEET_LIMIT]), out / "sheet.png", scale=2,
                      column_labels=["input", "reconstruction"], title=title)
    summary = {"model": model.name, "checkpoint": str(path), "checkpoint_step": checkpoint.train.get("step"),
               "mean": mean, "images": [{"input": str(f), "output": f"{n}.png", **{k: float(v[i]) for k, v in
                                                                               scores.items()}}
                                        for i, (f, n) in enumerate(zip(read.files, names, strict=True))]}
    (out / "metrics.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    read.report(console, spec.height, spec.width)
    console.print(f"{len(outputs)} image(s) reconstructed by {model.name} (step {checkpoint.train.get('step', '?')}):"
                  f" PSNR {mean['psnr']:.2f} dB, SSIM {mean['ssim']:.3f} -> {out}/, sheet.png, metrics.json",
                  highlight=False)
    return out


@torch.no_grad()
def reconstructions(model: Model, images: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(codes, reconstructions) of float images in [-1, 1], in chunks, on the CPU."""
    codes, outputs = [], []
    with evaluating(model):
        for start in range(0, len(images), CHUNK):
            x = images[start:start + CHUNK].to(model.device)
            given = class_condition(labels[start:start + CHUNK].to(model.device) if labels is not None else None)
            z = model.encode(x, given)
            codes.append(z.cpu())
            outputs.append(model.generate(z, given).cpu())
    return torch.cat(codes), torch.cat(outputs)


# -- zoo eval's figures for a model that encodes ------------------------------------------------------

def encoder_figures(model: Model, split: PreparedData, pictures: Path, result: dict[str, Any],
                    details: dict[str, Any], *, nll_samples: int = NLL_SAMPLES, nll_images: int = NLL_IMAGES,
                    seed: int = 0, console: Console | None = None) -> None:
    """Reconstruction error, sharpness and active units on ``split``'s images; and the
    negative log-likelihood for models that estimate one. Adds to ``result`` and ``details``."""
    labels = split.labels if model.has(Capability.CLASS_CONDITIONAL) else None
    if model.has(Capability.CLASS_CONDITIONAL) and labels is None:
        raise UsageError(f"{model.name} is class-conditional, and the reference images have no labels")
    real = to_float(split.images)
    codes, outputs = reconstructions(model, real, labels)
    outputs = to_float(as_uint8(outputs))  # as they would be saved
    result.update(metrics.paired_scores(outputs, real))
    result["reconstruction_sharpness"] = metrics.sharpness(outputs, real)
    result["active_units"] = metrics.active_units(codes)
    details["latent_dim"] = int(codes.shape[1])
    figures.save_grid(image_rows(real[:8], outputs[:8]), pictures / "reconstructions.png",
                      column_labels=["input", "reconstruction"])
    if model.has(Capability.LIKELIHOOD):
        _likelihood(model, real, labels, nll_samples, nll_images, seed, result, details, console)


def _likelihood(model: Model, real: Tensor, labels: Tensor | None, samples: int, count: int, seed: int,
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
