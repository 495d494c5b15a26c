"""Run a trained image-to-image model on one image, a folder, or a glob.

Each input is read in any format and size, fitted (resized and centre-cropped) to the
model's size and converted to its channels, translated, and written as ``NAME.png``; a
``sheet.png`` shows input | output side by side, labelled, the way it went in its title.
``--direction BtoA`` runs a two-way model (CycleGAN) backwards.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

import torch
from rich.console import Console

from zoo import figures, runs
from zoo.data import convert_channels, to_float
from zoo.errors import UsageError, ZooError
from zoo.images import UNREADABLE, image_files, read_image
from zoo.model import Model, evaluating, image_rows

CHUNK = 64
SHEET_LIMIT = 64


def translate(target: str, inputs: Sequence[str], *, out: Path | None = None, direction: str | None = None,
              force: bool = False, device: str = "auto", console: Console | None = None) -> Path:
    """Translate every input image; returns the output folder."""
    console = console or Console()
    model, checkpoint, path = runs.load_translator(target, device)
    direction = pick_direction(model, direction)
    files, named = collect(inputs)
    spec = model.spec
    channels = spec.channels if direction == "AtoB" else (spec.target_channels or spec.channels)

    pictures, names, skipped, resized = [], [], [], 0
    for file in files:
        try:
            picture, _, size = read_image(file, spec.height, spec.width)
        except UNREADABLE as exc:
            if file in named:
                raise UsageError(f"{file} is not a readable image ({type(exc).__name__})") from None
            skipped.append(file.name)
            continue
        resized += size != (spec.width, spec.height)
        pictures.append(convert_channels(picture.unsqueeze(0), channels)[0])
        names.append(file.stem)
    if not pictures:
        raise ZooError(f"none of the {len(files)} file(s) could be read as an image")

    run_name = checkpoint.train.get("run") or path.parent.name
    out = runs.output_dir(out or Path("translations") / f"{run_name}-{direction}", force)
    images = to_float(torch.stack(pictures))
    with evaluating(model), torch.no_grad():
        outputs = torch.cat([model.translate(chunk.to(model.device), direction).cpu()
                             for chunk in images.split(CHUNK)])
    figures.save_images(outputs, out, unique(names))
    figures.save_grid(image_rows(images[:SHEET_LIMIT], outputs[:SHEET_LIMIT]), out / "sheet.png", scale=2,
                      column_labels=["input", "output"], title=sheet_title(model, direction))

    if resized:
        console.print(f"[cyan]note:[/] {resized} input(s) fitted to the model's {spec.height}x{spec.width}")
    if skipped:
        console.print(f"[yellow]warning:[/] skipped {len(skipped)} unreadable file(s): {', '.join(skipped[:5])}"
                      + (" ..." if len(skipped) > 5 else ""))
    console.print(f"{len(outputs)} image(s) translated {direction} by {model.name} "
                  f"(step {checkpoint.train.get('step', '?')}) -> {out}/ and {out / 'sheet.png'}")
    return out


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


def collect(inputs: Sequence[str]) -> tuple[list[Path], set[Path]]:
    """Image files from paths, folders (every image inside, recursively) and globs; and the
    files that were named one by one (those must be readable)."""
    if not inputs:
        raise UsageError("give an image, a folder or a glob to translate")
    files: list[Path] = []
    named: set[Path] = set()
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_file():
            files.append(path)
            named.add(path)
        elif path.is_dir():
            found = image_files(path)
            if not found:
                raise UsageError(f"folder {path} holds no images")
            files += found
        elif glob.has_magic(item):
            found = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
            if not found:
                raise UsageError(f"{item} matches no files")
            files += found
        else:
            raise UsageError(f"{item} does not exist")
    return list(dict.fromkeys(files)), named


def unique(names: list[str], reserved: tuple[str, ...] = ("sheet",)) -> list[str]:
    """File names made distinct: a second a.png (from another folder) becomes a-2, and an
    input called sheet.png never overwrites the sheet."""
    seen: dict[str, int] = {name: 1 for name in reserved}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out
