"""Sample a trained model: N images as PNG files plus one grid of them.

The target is a run folder, a checkpoint file, or a model name (its latest run). The
latents come from a CPU generator seeded with ``--seed``, so the same seed gives the same
images on every device. A class-conditional model makes the class asked for, or, when
none is, a grid with one row per class; file names carry the class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Request:
    """What to draw, checked against a model: ``n`` images from ``seed``, of class ``wanted``
    (a row per class when a class-conditional model is given none), or for each prompt
    of ``prompts`` (text-conditional models), from ``prior`` truncated at ``truncation``."""

    n: int
    seed: int
    wanted: str | None
    prompts: tuple[str, ...]
    prior: priors.Prior
    truncation: float | None
    noise: str | None = None


@dataclass
class Drawn:
    """The images drawn (N x C x H x W, or prompts x N x C x H x W for text), the class of
    each (or None), the grid's row width and what each row of the grid shows."""

    images: torch.Tensor
    labels: torch.Tensor | None
    nrow: int | None
    row_labels: list[str] | None


def request(model: Model, *, n: int = 64, seed: int = 0, class_: str | None = None, digit: str | None = None,
            noise: str | None = None, truncation: float | None = None,
            text: str | Sequence[str] | None = None) -> Request:
    """Check what a user asked of a model before anything is drawn or written: the same
    checks for the command, the web page and the Python API."""
    _check_numbers(n, seed, truncation)
    wanted = chosen_class(model, class_, digit)
    prompts = (text,) if isinstance(text, str) else tuple(text or ())
    if prompts:
        registry.registry().require(type(model), Capability.TEXT_CONDITIONAL, "draw from a --text")
        model.encode_text(list(prompts))  # every prompt readable, before anything is written
    elif model.has(Capability.TEXT_CONDITIONAL):
        raise UsageError(f"{model.name} draws from a description: give one with --text \"...\" "
                         f"(several --text for a row each)")
    prior = priors.parse(noise) if noise is not None else model.prior
    if truncation is not None:
        priors.check_truncation(prior, truncation)
    return Request(n, seed, wanted, prompts, prior, truncation, noise)


def _check_numbers(n: int, seed: int, truncation: float | None) -> None:
    within("--n", n, 1, MOST_SAMPLES)
    check_seed(seed)
    within("--truncation", truncation, 0, 1e6, above=True)  # finite; each prior's own range is checked later


def draw(model: Model, asked: Request, labels: torch.Tensor | None = None) -> Drawn:
    """The images of a checked request, on the CPU: the latents from a CPU generator seeded
    with its seed, so a seed gives the same images on every device. ``labels``: a class for
    each image (class-conditional models; the Python API's ``classes=[...]``), in place of
    the request's one class or a row per class."""
    if asked.prompts:
        return _draw_prompts(model, asked)
    labels, nrow = (labels, None) if labels is not None else _labels(model, asked.n, asked.wanted)
    generator = torch.Generator().manual_seed(asked.seed)
    images = torch.cat([
        model.sample(min(CHUNK, asked.n - start), generator=generator, prior=asked.prior,
                     truncation=asked.truncation,
                     conditions=class_condition(None if labels is None else labels[start:start + CHUNK])).cpu()
        for start in range(0, asked.n, CHUNK)
    ])
    return Drawn(images, labels, nrow, _row_names(model, labels, nrow))


def sample(target: str, *, n: int = 64, seed: int = 0, out: Path | None = None, force: bool = False,
           device: str = "auto", class_: str | None = None, digit: str | None = None,
           noise: str | None = None, truncation: float | None = None, text: str | list[str] | None = None,
           which: str = "latest", text_encoder: Path | None = None, console: Console | None = None) -> Path:
    """Write ``n`` samples and ``grid.png`` into a folder; returns it. Text-conditional models
    draw ``n`` for each prompt of ``text``, a row each, the same latents in every row (read by
    the installed encoder in ``text_encoder`` when the model was trained with one)."""
    console = console or make_console()
    _check_numbers(n, seed, truncation)  # before the model is read
    model, checkpoint, path = runs.load_latent_model(target, device, "sample from noise", takes_text=True,
                                                       which=which, text_encoder=text_encoder)
    asked = request(model, n=n, seed=seed, class_=class_, digit=digit, noise=noise, truncation=truncation,
                    text=text)
    condition = _text_name(list(asked.prompts)) if asked.prompts else (
        model.spec.class_names[class_index(model.spec, asked.wanted)] if asked.wanted is not None else None)
    out = runs.output_dir(out or runs.default_out(
        "samples", checkpoint, path, condition, noise and str(asked.prior),
        f"trunc{truncation:g}" if truncation is not None else None, f"seed{seed}"), force)
    drawn = draw(model, asked)
    if asked.prompts:
        return _write_prompts(model, checkpoint, asked, drawn, out, console)

    images = drawn.images
    figures.save_images(images, out, file_names(model, asked, drawn))
    figures.save_grid(images[:GRID_LIMIT], out / "grid.png", nrow=drawn.nrow, row_labels=drawn.row_labels)
    note = f" (grid shows the first {GRID_LIMIT})" if n > GRID_LIMIT else ""
    console.print(f"{n} samples{describe(model, asked)} of {model.name} (step {checkpoint.train.get('step', '?')}) "
                  f"-> {out}/ and {out / 'grid.png'}{note}")
    return out


def file_names(model: Model, asked: Request, drawn: Drawn) -> list[str]:
    """The name of each image drawn, without its suffix: its number, after its class
    (``7-0003``) or its prompt's (``text1-0003``, when there are several prompts)."""
    width = max(4, len(str(asked.n - 1)))
    numbers = [f"{i:0{width}d}" for i in range(asked.n)]
    if asked.prompts:
        stems = [f"text{j}-" if len(asked.prompts) > 1 else "" for j in range(len(asked.prompts))]
        return [f"{stem}{number}" for stem in stems for number in numbers]
    if drawn.labels is not None:
        return [f"{_safe(model.spec.class_names[c])}-{number}"
                for c, number in zip(drawn.labels.tolist(), numbers, strict=True)]
    return numbers


def describe(model: Model, asked: Request) -> str:
    """What was drawn, for a message or a caption: " of class 7 (z ~ normal, truncated at 0.7)"."""
    what = f" of class {model.spec.class_names[class_index(model.spec, asked.wanted)]}" \
        if asked.wanted is not None else ""
    if asked.noise is not None or asked.truncation is not None:
        what += f" (z ~ {asked.prior}{f', truncated at {asked.truncation:g}' if asked.truncation is not None else ''})"
    return what


def _draw_prompts(model: Model, asked: Request) -> Drawn:
    """``n`` images for each prompt, a row each: the same seed, so the same latents, in every
    row (what changes down a column is the text alone)."""
    rows = []
    for prompt in asked.prompts:
        generator = torch.Generator().manual_seed(asked.seed)
        rows.append(torch.cat([
            model.sample(min(CHUNK, asked.n - start), generator=generator, prior=asked.prior,
                         truncation=asked.truncation,
                         conditions={Condition.TEXT.value: [prompt] * min(CHUNK, asked.n - start)}).cpu()
            for start in range(0, asked.n, CHUNK)]))
    return Drawn(torch.stack(rows), None, asked.n, list(asked.prompts))  # prompts x n x C x H x W


def _write_prompts(model: Model, checkpoint, asked: Request, drawn: Drawn, out: Path, console: Console) -> Path:
    prompts, n = asked.prompts, asked.n
    names = file_names(model, asked, drawn)
    for j, row in enumerate(drawn.images):
        figures.save_images(row, out, names[j * n:(j + 1) * n])
    shown = max(1, min(n, GRID_LIMIT // len(prompts)))
    figures.save_grid(drawn.images[:, :shown], out / "grid.png", row_labels=list(prompts))
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
