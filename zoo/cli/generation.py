"""zoo sample, zoo translate, zoo upscale and zoo reconstruct: images from a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .base import app, console, examples, handles_errors

# -- zoo sample --------------------------------------------------------------------------------

@app.command(epilog=examples("zoo sample dcgan --n 64 --out samples/",
                             "zoo sample cgan --digit 7 --n 100 --out sevens/",
                             "zoo sample cgan --n 100                      # a row per class",
                             "zoo sample cgan --class sneaker",
                             "zoo sample dcgan --truncation 0.7",
                             "zoo sample runs/dcgan-mnist-20261122-101500 --n 16 --seed 3",
                             "zoo sample dcgan --checkpoint best     # kept by zoo train --eval-every",
                             "zoo sample runs/dcgan-mnist-20261122-101500/checkpoint.safetensors"))
@handles_errors
def sample(
    target: Annotated[str, typer.Argument(help="A run folder, a checkpoint file, or a model name (its latest run).")],
    n: Annotated[int, typer.Option("--n", "-n", help="How many images.")] = 64,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the latent vectors.")] = 0,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for the PNGs (default samples/RUN-seedS).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Write into a folder that already holds files.")] = False,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    class_: Annotated[str | None, typer.Option("--class", help="Class-conditional models: the class to make, by name or index.")] = None,
    digit: Annotated[str | None, typer.Option("--digit", help="--class for digit data sets (mnist, svhn).")] = None,
    noise: Annotated[str | None, typer.Option("--noise", help="Draw z from another prior than the model was trained with (an experiment).")] = None,
    truncation: Annotated[float | None, typer.Option("--truncation", help="Keep z likely: normal within T std devs, uniform the middle fraction T.")] = None,
    text: Annotated[list[str] | None, typer.Option("--text", help="Text-conditional models: the description to draw; several --text give a row each.")] = None,
    checkpoint: Annotated[str, typer.Option("--checkpoint", help="latest, or best (kept by zoo train --eval-every).")] = "latest",
    text_encoder: Annotated[Path | None, typer.Option("--text-encoder", help="Text-conditional models trained with --text-encoder: that sentence-transformers model's folder (zoo reads no folder a checkpoint names unless you name it here).")] = None,
) -> None:
    """Generate N images from a trained model: one PNG each plus grid.png.

    Class-conditional models make --class (or --digit) only, or else a grid with one row
    per class; each file name starts with its class. Text-conditional models draw --n
    images for each --text, a row each, the same latents in every row."""
    from ..pipelines.sample import sample as run_sampling

    run_sampling(target, n=n, seed=seed, out=out, force=force, device=device, class_=class_,
                 digit=digit, noise=noise, truncation=truncation, text=text, which=checkpoint,
                 text_encoder=text_encoder, console=console)


# -- zoo translate -----------------------------------------------------------------------------

@app.command(epilog=examples("zoo translate pix2pix edges.png --out out/",
                             "zoo translate pix2pix my-sketches/ --out out/",
                             "zoo translate pix2pix 'photos/*.jpg' --out out/",
                             "zoo translate cyclegan boots/ --direction BtoA --out sneakers/",
                             "zoo translate runs/pix2pix-paired-edges2fashion-XXXX edges.png"))
@handles_errors
def translate(
    target: Annotated[str, typer.Argument(help="A run folder, a checkpoint file, or a model name (its latest run).")],
    inputs: Annotated[list[str], typer.Argument(help="Images, folders of images, or globs (quote them).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for the results (default translations/RUN-DIRECTION).")] = None,
    direction: Annotated[str | None, typer.Option("--direction", help="AtoB (default) or BtoA, for models that go both ways.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Write into a folder that already holds files.")] = False,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
) -> None:
    """Translate images with an image-to-image model: one PNG per input and sheet.png (input | output)."""
    from ..pipelines.translate import translate as run

    run(target, inputs, out=out, direction=direction, force=force, device=device, console=console)


# -- zoo upscale -------------------------------------------------------------------------------

@app.command(epilog=examples("zoo upscale srgan photo.jpg --out big/              # any size, tiled",
                             "zoo upscale srresnet photos/ --out big/",
                             "zoo upscale srgan 'shots/*.png' --scale 4",
                             "zoo upscale srgan originals/ --compare --out check/   # shrink, upscale back, measure",
                             "zoo upscale runs/srgan-folder-photos-XXXX photo.jpg"))
@handles_errors
def upscale(
    target: Annotated[str, typer.Argument(help="A run folder, a checkpoint file, or a model name (its latest run) of a super-resolution model.")],
    inputs: Annotated[list[str], typer.Argument(help="Images, folders of images, or globs (quote them), of any size.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for the results (default upscaled/RUN).")] = None,
    scale: Annotated[int | None, typer.Option("--scale", help="The factor you expect (2, 4 or 8); refused unless the model was trained for it.")] = None,
    compare: Annotated[bool, typer.Option("--compare", help="Take the inputs as high-resolution originals: shrink each by the scale, upscale it back, and show and measure it beside the original.")] = False,
    tile: Annotated[int, typer.Option("--tile", help="Tile side in input pixels for large images (tiles overlap by the model's reach, so they join with no seams).")] = 128,
    force: Annotated[bool, typer.Option("--force", help="Write into a folder that already holds files.")] = False,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
) -> None:
    """Make images SCALE times larger with a super-resolution model (srresnet, srgan): one PNG per
    input and sheet.png (bicubic | model, | original with --compare)."""
    from ..pipelines.upscale import upscale as run

    run(target, inputs, out=out, scale=scale, compare=compare, tile=tile, force=force, device=device,
        console=console)


# -- zoo reconstruct ---------------------------------------------------------------------------

@app.command(epilog=examples("zoo reconstruct ae digits/ --out recon/",
                             "zoo reconstruct vae seven.png",
                             "zoo reconstruct vae 'photos/*.jpg' --out recon/",
                             "zoo reconstruct cvae sevens/ --digit 7    # a conditional encoder is told the class",
                             "zoo reconstruct runs/ae-mnist-20261122-101500 digits/"))
@handles_errors
def reconstruct(
    target: Annotated[str, typer.Argument(help="A run folder, a checkpoint file, or a model name (its latest run) of a model with an encoder.")],
    inputs: Annotated[list[str], typer.Argument(help="Images, folders of images, or globs (quote them).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for the results (default reconstructions/RUN).")] = None,
    class_: Annotated[str | None, typer.Option("--class", help="Class-conditional models: the images' class, by name or index.")] = None,
    digit: Annotated[str | None, typer.Option("--digit", help="--class for digit data sets (mnist, svhn).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Write into a folder that already holds files.")] = False,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    checkpoint: Annotated[str, typer.Option("--checkpoint", help="latest, or best (kept by zoo train --eval-every).")] = "latest",
) -> None:
    """Encode and decode images: one PNG per input, sheet.png (input | reconstruction) and
    PSNR / SSIM / MSE per image in metrics.json.

    Inputs of any size and format are fitted to the model's size and channels first."""
    from ..pipelines.reconstruct import reconstruct as run

    run(target, inputs, out=out, class_=class_, digit=digit, force=force, device=device, which=checkpoint,
        console=console)
