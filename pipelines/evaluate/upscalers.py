"""Super-resolution models, measured as the field does: PSNR and SSIM on the Y channel with ``scale``
pixels cropped from the border, beside bicubic upsampling of the same 8-bit inputs, the Laplacian
energy of both and the grid artefact."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import Tensor

import zoo
from zoo.data import superres
from zoo.data.images import as_uint8, to_float
from zoo.data.memory import check_pairs
from zoo.display import figures
from zoo.model import Model
from zoo.pipelines.evaluate.reference import Reference

SR_SHOWN, SR_WINDOW = 4, 128


def upscaler_figures(model: Model, reference: Reference, n: int, batch_size: int, console: Console,
                      pictures: Path, result: dict[str, Any], details: dict[str, Any]) -> None:
    """Each reference image whole (the photos at full size): its bicubic downsample upscaled
    by the model and by bicubic, both measured against it (Y channel, border cropped)."""
    from zoo.display.console import track

    factor = superres.factor_of(model)
    data = reference.split
    items: list[Tensor] = ([p.unsqueeze(0) for p in data.photos] if data.photos is not None
                           else list(data.images[:n].split(batch_size)))[:n]
    given = data.target_photos  # paired low- and high-resolution photos: the data's own low ones
    if given is not None and data.photos is not None:
        check_pairs(data.photos, given, factor, reference.name, model.name)
    scores = superres.Scores()
    shown: list[list[Tensor]] = [[], [], [], []]
    with torch.no_grad():
        for k, item in enumerate(track(items, description="upscaling", console=console, transient=True,
                                       disable=len(items) < 2)):
            if given is not None:
                low, high = item, given[k].unsqueeze(0)
            else:
                high, low = superres.shrink(item, factor)
            lowf = to_float(low).to(model.device)
            out = as_uint8(torch.cat([superres.upscale(model, im.unsqueeze(0), factor) for im in lowf]).cpu())
            base = as_uint8(superres.bicubic(lowf, factor).cpu())
            for i in range(len(high)):
                superres.measure(out[i:i + 1], base[i:i + 1], high[i:i + 1], factor, scores)
                if len(shown[0]) < SR_SHOWN:
                    window = SR_WINDOW if data.photos is not None else max(high.shape[-2:])
                    for column, images in zip(shown, (low, base, out, high), strict=True):
                        column.append(to_float(superres.centre_window(images[i], window // factor if
                                                                     images is low else window)))
    def mean(values: list[float]) -> float:
        return round(statistics.fmean(values), 4)

    result.update({"psnr_y": mean(scores.psnr), "ssim_y": mean(scores.ssim),
                   "bicubic_psnr_y": mean(scores.bicubic_psnr), "bicubic_ssim_y": mean(scores.bicubic_ssim),
                   "laplacian_energy": mean(scores.energy), "bicubic_laplacian_energy": mean(scores.bicubic_energy),
                   "original_laplacian_energy": mean(scores.original_energy),
                   "grid_artefact": mean(scores.grid), "original_grid_artefact": mean(scores.original_grid)})
    result["sharpness"] = round(result["laplacian_energy"] / max(result["original_laplacian_energy"], 1e-12), 4)
    details["per_image"] = {"psnr_y": [round(v, 3) for v in scores.psnr],
                            "bicubic_psnr_y": [round(v, 3) for v in scores.bicubic_psnr]}
    inputs = ("the data's own low-resolution photos (A)" if given is not None
              else "each image's bicubic (antialiased) downsample")
    convention = (f"x{factor}: PSNR and SSIM on the Y channel (BT.601) with {factor} px cropped from each border, "
                  f"8-bit images; inputs are {inputs}")
    details["protocol"] = {"name": f"sr-x{factor}-y-border{factor}/{reference.split_name}",
                           "split": reference.split_name, "data": reference.name, "reference": len(scores.psnr),
                           "convention": convention}
    columns = [torch.stack(column) if len({c.shape for c in column}) == 1 else None for column in shown]
    if all(c is not None for c in columns):
        figures.save_grid(zoo.image_rows(*[c for c in columns if c is not None]), pictures / "sheet.png",
                          column_labels=["input", "bicubic", model.name, "original"],
                          title=f"{model.name} x{factor}, {reference.split_name} images of "
                                f"{reference.name.rstrip('/').rsplit('/', 1)[-1]} (centre crops)")
    else:  # windows of different sizes (small photos): one sheet each
        for i in range(len(shown[0])):
            figures.save_grid(zoo.image_rows(*[column[i].unsqueeze(0) for column in shown]),
                              pictures / f"sheet-{i + 1}.png",
                              column_labels=["input", "bicubic", model.name, "original"])
    console.print(f"[cyan]note:[/] {convention}", highlight=False)
