"""Run a trained image-to-image model on one image, a folder, or a glob.

Each input is read in any format and size, fitted (resized and centre-cropped) to the
model's size and converted to its channels, translated, and written as ``NAME.png``; a
``sheet.png`` shows input | output side by side, labelled, the way it went in its title.
``--direction BtoA`` runs a two-way model (CycleGAN) backwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from rich.console import Console

from zoo.data import superres
from zoo.display import figures
from zoo.display.console import make_console
from zoo.errors import UsageError
from zoo.model import Model
from zoo.pipelines.inputs import collect, read_inputs, unique
from zoo.previews import image_rows
from zoo.records import runs
from zoo.training.engine import evaluating

CHUNK = 64
SHEET_LIMIT = 64


def translate(target: str, inputs: Sequence[str], *, out: Path | None = None, direction: str | None = None,
              force: bool = False, device: str = "auto", which: str = "latest",
              console: Console | None = None) -> Path:
    """Translate every input image with the run's ``which`` checkpoint (latest or best);
    returns the output folder."""
    console = console or make_console()
    model, checkpoint, path = runs.load_translator(target, device, which)
    refuse_upscaler(model, f"zoo upscale {target} {' '.join(inputs) or 'IMAGE'}")
    direction = pick_direction(model, direction)
    files, named = collect(inputs, "translate")
    spec = model.spec
    channels = spec.channels if direction == "AtoB" else (spec.target_channels or spec.channels)
    read = read_inputs(files, named, spec.height, spec.width, channels)

    out = runs.output_dir(out or runs.default_out("translations", checkpoint, path, direction), force)
    images = read.images
    outputs = translated(model, images, direction)
    figures.save_images(outputs, out, unique(read.names))
    figures.save_grid(image_rows(images[:SHEET_LIMIT], outputs[:SHEET_LIMIT]), out / "sheet.png", scale=2,
                      column_labels=["input", "output"], title=sheet_title(model, direction))

    read.report(console, spec.height, spec.width)
    console.print(f"{len(outputs)} image(s) translated {direction} by {model.name} "
                  f"(step {checkpoint.train.get('step', '?')}) -> {out}/ and {out / 'sheet.png'}")
    return out


def refuse_upscaler(model: Model, instead: str) -> None:
    """Refuse to translate with a model trained on crops to upscale: translate would fit each
    input to a crop's size, where upscale takes any size (``instead`` says how)."""
    derivation = superres.derivation_of(type(model), model.config)
    if derivation is not None and derivation.crop and derivation.factor > 1:
        raise UsageError(f"{model.name} makes images {derivation.factor} times larger, whatever their size: {instead}")


@torch.no_grad()
def translated(model: Model, images: torch.Tensor, direction: str) -> torch.Tensor:
    """Images (float in [-1, 1], at the model's size and input channels) translated one way,
    in chunks, on the CPU."""
    with evaluating(model):
        return torch.cat([model.translate(chunk.to(model.device), direction).cpu() for chunk in images.split(CHUNK)])


def pick_direction(model, direction: str | None) -> str:
    if direction is None:
        return model.directions[0]
    for known in model.directions:
        if direction.lower() == known.lower():
            return known
    raise UsageError(f"--direction {direction}: {model.name} translates {' or '.join(model.directions)}")


def sheet_title(model: Model, direction: str) -> str:
    """The model and the way it translated, with the domains' names where the data had them:
    "pix2pix AtoB: edges -> fashion"."""
    domains = model.spec.domains
    if len(domains) != 2 or tuple(domains) == ("A", "B"):
        return f"{model.name} {direction}"
    a, b = domains if direction == "AtoB" else domains[::-1]
    return f"{model.name} {direction}: {a} -> {b}"
