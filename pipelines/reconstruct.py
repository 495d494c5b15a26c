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
from collections.abc import Sequence
from pathlib import Path

import torch
from rich.console import Console
from torch import Tensor

from zoo.data.images import as_uint8, to_float
from zoo.display import figures
from zoo.display.console import make_console
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


