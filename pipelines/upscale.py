"""``zoo upscale``: a super-resolution model over images of any size.

Each input (a file, a folder, a glob; any format) is read at its own size, converted to the
model's channels, upscaled whole (in overlapping tiles, which join with no seams: see
:func:`zoo.data.superres.upscale`) and written as ``NAME.png`` at ``scale`` times its size.
``sheet.png`` shows bicubic | the model, close up (each image's centre).

``--compare`` takes the inputs as high-resolution originals instead: each is shrunk by the
scale first (bicubic, as training derived its pairs), upscaled back, and shown beside the
original with the PSNR and SSIM of both upscales (Y channel, border cropped).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from zoo.config import within
from zoo.data import superres
from zoo.data.images import FORMATS, UNREADABLE, as_uint8, convert_channels, read_image, to_float
from zoo.display import figures
from zoo.display.console import make_console, progress_bar
from zoo.errors import UsageError
from zoo.pipelines.inputs import check_named, collect, unique
from zoo.previews import image_rows
from zoo.records import runs
from zoo.training.engine import evaluating

SHEET_WINDOW = 192
"""Side of each close-up on the sheet, in output pixels (whole images when smaller)."""
SHEET_LIMIT = 16


def upscale(target: str, inputs: Sequence[str], *, out: Path | None = None, scale: int | None = None,
            compare: bool = False, tile: int = superres.TILE, force: bool = False, device: str = "auto",
            which: str = "latest", console: Console | None = None) -> Path:
    """Upscale every input image with the run's ``which`` checkpoint (latest or best);
    returns the output folder."""
    console = console or make_console()
    model, checkpoint, path = runs.load_translator(target, device, which)
    factor = superres.factor_of(model)
    if factor <= 1:
        raise UsageError(f"{model.name} does not upscale (it translates at one size); use zoo translate {target}")
    if scale is not None and scale != factor:
        raise UsageError(f"--scale {scale}: {path.parent.name} was trained for x{factor}; upscale with --scale "
                         f"{factor}, or train a model for x{scale} (--set scale={scale})")
    within("--tile", tile, 1, 65_536)
    files, named = collect(inputs, "upscale")
    check_named(named)  # each image is read when its turn comes: a named one that cannot be, refused now
    out = out or runs.default_out("upscaled", checkpoint, path, "compare" if compare else None)
    made = not out.exists()
    out = runs.output_dir(out, force)

    names: list[str] = []
    rows: list[list[torch.Tensor]] = []
    skipped: list[str] = []
    table: list[tuple[str, str, superres.Scores]] = []
    started = time.perf_counter()
    bar = progress_bar(console, TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn(), transient=True)
    with bar:
        images = bar.add_task(f"upscaling x{factor}", total=len(files))
        for file in files:
            try:
                picture, _, _ = read_image(file, 0, 0)
            except UNREADABLE as exc:
                if file in named:
                    raise UsageError(f"{file} is not a readable image ({type(exc).__name__})") from None
                skipped.append(file.name)
                continue
            picture = convert_channels(picture.unsqueeze(0), model.spec.channels)
            high = None
            if compare:
                high, low = superres.shrink(picture, factor, file.name)
            else:
                low = picture
            pieces = bar.add_task(f"  {file.name}: tiles", total=superres.tiles(low, model, tile))
            output, baseline = upscaled(model, low, tile, functools.partial(bar.advance, pieces))
            bar.remove_task(pieces)
            bar.advance(images)
            name = unique([*names, file.stem])[-1]
            names.append(name)
            figures.save_images(to_float(output), out, [name])
            columns = [baseline, output] + ([high] if high is not None else [])
            if len(rows) < SHEET_LIMIT:
                rows.append([to_float(superres.centre_window(c, SHEET_WINDOW)) for c in columns])
            if high is not None:
                scores = superres.Scores()
                superres.measure(output, baseline, high, factor, scores)
                table.append((name, f"{low.shape[-1]}x{low.shape[-2]}", scores))
    if not names:
        if made:
            out.rmdir()  # nothing written: the folder this made goes too
        raise UsageError(f"none of the {len(files)} file(s) could be read as an image (e.g. {skipped[0]}); zoo "
                         f"reads {FORMATS} files")
    _sheet(rows, out / "sheet.png", model.name, factor, compare)
    if table:
        _report(table, factor, console)
    if skipped:
        console.print(f"[yellow]warning:[/] skipped {len(skipped)} unreadable file(s): {', '.join(skipped[:5])}"
                      + (" ..." if len(skipped) > 5 else ""))
    step = checkpoint.train.get("step", "?")
    console.print(f"{len(names)} image(s) upscaled x{factor} by {model.name} (step {step}) "
                  f"in {time.perf_counter() - started:.1f}s -> {out}/ and {out / 'sheet.png'}")
    return out


@torch.no_grad()
def upscaled(model, picture: torch.Tensor, tile: int = superres.TILE,
             done: Callable[[], None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(the model's, bicubic's) upscales of one picture (uint8 1 x C x h x w, the model's
    channels), uint8 on the CPU; ``done`` is called after each tile."""
    factor = superres.factor_of(model)
    low = to_float(picture).to(model.device)
    with evaluating(model):
        output = as_uint8(superres.upscale(model, low, factor, tile, done).cpu())
    return output, as_uint8(superres.bicubic(low, factor).cpu())


def _sheet(rows: list[list[torch.Tensor]], path: Path, model: str, factor: int, compare: bool) -> None:
    """Close-ups side by side, one input per row (rows of one size share a grid)."""
    labels = ["bicubic", model] + (["original"] if compare else [])
    title = f"x{factor}: {'each input shrunk, then upscaled' if compare else 'each input upscaled'} (centres)"
    # Close-ups of different sizes (inputs smaller than the window): each padded to the largest, on black.
    height = max(r[0].shape[-2] for r in rows)
    width = max(r[0].shape[-1] for r in rows)
    padded = [[torch.nn.functional.pad(c, (0, width - c.shape[-1], 0, height - c.shape[-2]), value=-1)
               for c in row] for row in rows]
    figures.save_grid(image_rows(*[torch.cat([row[i] for row in padded]) for i in range(len(labels))]), path,
                      column_labels=labels, title=title)


def _report(table: list[tuple[str, str, superres.Scores]], factor: int, console: Console) -> None:
    out = Table(title=f"x{factor} against the originals: Y channel, {factor} px border cropped")
    for column in ("image", "input", "PSNR bicubic", "PSNR model", "SSIM bicubic", "SSIM model"):
        out.add_column(column, justify="left" if column in ("image", "input") else "right")
    for name, size, s in table:
        out.add_row(name, size, f"{s.bicubic_psnr[0]:.2f} dB", f"{s.psnr[0]:.2f} dB",
                    f"{s.bicubic_ssim[0]:.4f}", f"{s.ssim[0]:.4f}")
    console.print(out)
