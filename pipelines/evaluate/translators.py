"""Image-to-image models: the reference inputs translated, against their targets (L1, PSNR, SSIM) and
in an extractor's features where one fits the target domain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import Tensor

import zoo
from zoo.data import superres
from zoo.data.images import as_uint8, to_float
from zoo.data.mapped import whole_or_first
from zoo.data.memory import PreparedData
from zoo.display import figures
from zoo.errors import UsageError
from zoo.measure import metrics
from zoo.model import Model
from zoo.pipelines.evaluate.reference import Reference, load_extractor, protocol
from zoo.pipelines.evaluate.samplers import PR_K


def fixed_pairs(model: Model, data: PreparedData) -> tuple[Tensor, Tensor | None]:
    """The inputs to translate, and their targets where the data has them."""
    if data.targets is not None and model.spec.pairing == "paired":
        return data.images, data.targets
    derivation = superres.derivation_of(type(model), model.config)
    if derivation is not None and data.targets is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # a derivation's random crops
            inputs, targets = derivation(to_float(whole_or_first(data.images)))
        return as_uint8(inputs), as_uint8(targets)
    return data.images, None


def translator_figures(model: Model, reference: Reference, features: str | None, batch_size: int, console: Console,
                 pictures: Path, result: dict[str, Any], details: dict[str, Any],
                 extractor_options: dict[str, Any] | None) -> None:
    inputs, targets = fixed_pairs(model, reference.split)
    direction = model.directions[0] if model.directions else "AtoB"
    outputs = []
    with torch.no_grad():
        for chunk in inputs.split(batch_size):
            outputs.append(as_uint8(model.translate(to_float(chunk).to(model.device), direction).cpu()))
    out = torch.cat(outputs)
    if targets is not None:
        a, b = to_float(out), to_float(targets)
        result.update(metrics.paired_scores(a, b))
        shown = min(8, len(out))
        columns = [to_float(inputs[:shown]), a[:shown], b[:shown]]
        figures.save_grid(zoo.image_rows(*columns), pictures / "samples.png",
                          column_labels=["input", "output", "target"],
                          title=f"{model.name} on held-out pairs" if reference.split_name == "heldout" else None)
    # A Frechet distance to the real images of the output domain, when an extractor fits it.
    real = reference.split.targets if reference.split.targets is not None else targets
    if real is None or len(real) < PR_K + 2:
        return
    try:
        extractor = load_extractor(features, reference, console, targets=reference.split.targets is not None,
                                   options=extractor_options).to(model.device)
    except UsageError as exc:
        if features is not None:
            raise
        details["fid_skipped"] = str(exc)
        return
    real_f, fake_f = extractor.extract(real, batch_size), extractor.extract(out, batch_size)
    result["fid"] = metrics.frechet_distance(real_f, fake_f)
    details["protocol"] = protocol("fid", extractor, len(out), reference, len(real))
