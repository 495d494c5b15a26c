"""Sample a trained model: N images as PNG files plus one grid of them.

The target is a run folder, a checkpoint file, or a model name (its latest run). The
latents come from a CPU generator seeded with ``--seed``, so the same seed gives the same
images on every device. A class-conditional model makes the class asked for, or, when
none is, a grid with one row per class; file names carry the class.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from rich.console import Console

from zoo import priors, registry
from zoo.config import check_seed, within
from zoo.display import figures
from zoo.display.console import make_console
from zoo.errors import UsageError
from zoo.model import Model
from zoo.pipelines.classes import chosen_class, class_index
from zoo.previews import class_rows
from zoo.records import runs
from zoo.records.paths import safe_name
from zoo.spec import Capability, Condition, class_condition

CHUNK = 256
GRID_LIMIT = 1024
MOST_SAMPLES = 1_000_000
"""The most images one ``zoo sample`` (or ``zoo eval``) draws."""


def sample(target: str, *, n: int = 64, seed: int = 0, out: Path | None = None, force: bool = False,
           device: str = "auto", class_: str | None = None, digit: str | None = None,
           noise: str | None = None, truncation: float | None = None, text: str | list[str] | None = None,
           which: str = "latest", text_encoder: Path | None = None, console: Console | None = None) -> Path:
    """Write ``n`` samples and ``grid.png`` into a folder; returns it. Text-conditional models
    draw ``n`` for each prompt of ``text``, a row each, the same latents in every row (read by
    the installed encoder in ``text_encoder`` when the model was trained with one)."""
    console = console or make_console()
    within("--n", n, 1, MOST_SAMPLES)
    check_seed(seed)
    within("--truncation", truncation, 0, 1e6, above=True)  # finite; each prior's own range is checked below
    model, checkpoint, path = runs.load_latent_model(target, device, "sample from noise", takes_text=True,
                                                       which=which, text_encoder=text_encoder)
    wanted = chosen_class(model, class_, digit)
    prompts = [text] if isinstance(text, str) else list(text or [])
    if prompts:
        registry.registry().require(type(model), Capability.TEXT_CONDITIONAL, "draw from a --text")
        model.encode_text(prompts)  # every prompt readable, before anything is written
    elif model.has(Capability.TEXT_CONDITIONAL):
        raise UsageError(f"{model.name} draws from a description: give one with --text \"...\" "
                         f"(several --text for a row each)")
    prior = priors.parse(noise) if noise is not None else model.prior
    if truncation is not None:
        priors.check_truncation(prior, truncation)
    condition = _text_name(prompts) if prompts else (
        model.spec.class_names[class_index(model.spec, wanted)] if wanted is not None else None)
    out = runs.output_dir(out or runs.default_out(
        "samples", checkpoint, path, condition, noise and str(prior),
        f"trunc{truncation:g}" if truncation is not None else None, f"seed{seed}"), force)
    if prompts:
        return _sample_prompts(model, checkpoint, prompts, n=n, seed=seed, out=out, prior=prior,
                               truncation=truncation, console=console)

    labels, nrow = _labels(model, n, wanted)
    generator = torch.Generator().manual_seed(seed)
    images = torch.cat([
        model.sample(min(CHUNK, n - start), generator=generator, prior=prior, truncation=truncation,
                     conditions=class_condition(None if labels is None else labels[start:start + CHUNK])).cpu()
        for start in range(0, n, CHUNK)
    ])
    width = max(4, len(str(n - 1)))
    names = [f"{i:0{width}d}" for i in range(n)]
    if labels is not None:
        names = [f"{_safe(model.spec.class_names[c])}-{name}" for c, name in zip(labels.tolist(), names, strict=True)]
    figures.save_images(images, out, names)
    figures.save_grid(images[:GRID_LIMIT], out / "grid.png", nrow=nrow, row_labels=_row_names(model, labels, nrow))
    note = f" (grid shows the first {GRID_LIMIT})" if n > GRID_LIMIT else ""
    what = f" of class {model.spec.class_names[int(labels[0])]}" if wanted is not None and labels is not None else ""
    if noise is not None or truncation is not None:
        what += f" (z ~ {prior}{f', truncated at {truncation:g}' if truncation is not None else ''})"
    console.print(f"{n} samples{what} of {model.name} (step {checkpoint.train.get('step', '?')}) "
                  f"-> {out}/ and {out / 'grid.png'}{note}")
    return out


def _sample_prompts(model: Model, checkpoint, prompts: list[str], *, n: int, seed: int, out: Path,
                    prior: priors.Prior, truncation: float | None, console: Console) -> Path:
    """``n`` images for each prompt, a row each: the same seed, so the same latents, in every
    row (what changes down a column is the text alone)."""
    rows = []
    for prompt in prompts:
        generator = torch.Generator().manual_seed(seed)
        rows.append(torch.cat([
            model.sample(min(CHUNK, n - start), generator=generator, prior=prior, truncation=truncation,
                         conditions={Condition.TEXT.value: [prompt] * min(CHUNK, n - start)}).cpu()
            for start in range(0, n, CHUNK)]))
    images = torch.stack(rows)  # prompts x n x C x H x W
    width = max(4, len(str(n - 1)))
    for j, row in enumerate(rows):
        stem = f"text{j}-" if len(prompts) > 1 else ""
        figures.save_images(row, out, [f"{stem}{i:0{width}d}" for i in range(n)])
    shown = max(1, min(n, GRID_LIMIT // len(prompts)))
    figures.save_grid(images[:, :shown], out / "grid.png", row_labels=prompts)
    (out / "prompts.txt").write_text("".join(f"text{j}: {p}\n" for j, p in enumerate(prompts)), encoding="utf-8")
    what = f"{n} samples" + (f" for each of {len(prompts)} prompts" if len(prompts) > 1 else f" of \"{prompts[0]}\"")
    console.print(f"{what} of {model.name} (step {checkpoint.train.get('step', '?')}) -> {out}/ and "
                  f"{out / 'grid.png'}", highlight=False)
    return out


def _labels(model: Model, n: int, wanted: str | None) -> tuple[torch.Tensor | None, int | None]:
    """Labels for each image and the grid width: one class, or a row per class."""
    if not model.has(Capability.CLASS_CONDITIONAL):
        return None, None
    if wanted is not None:
        return torch.full((n,), class_index(model.spec, wanted), dtype=torch.long), None
    per_class = math.ceil(n / model.spec.num_classes)
    return class_rows(model.spec.num_classes, per_class)[:n], per_class


def _row_names(model: Model, labels: torch.Tensor | None, per_row: int | None) -> list[str] | None:
    """The class of each row of a grid with a row per class, to write beside it."""
    if labels is None or per_row is None:
        return None
    return [model.spec.class_names[c] for c in labels[:GRID_LIMIT:per_row].tolist()]


def _safe(name: str) -> str:
    return safe_name(name, "class")


def _text_name(prompts: list[str], longest: int = 40) -> str:
    """The prompts as part of a folder's name: their words, or when that is long, its start
    and a hash of them all (two sets of prompts never share a folder)."""
    import hashlib

    words = "--".join("_".join(prompt.lower().split()) for prompt in prompts)
    if len(words) <= longest:
        return words
    return f"{words[:longest - 9]}-{hashlib.sha1(chr(0).join(prompts).encode()).hexdigest()[:8]}"
