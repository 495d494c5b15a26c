"""zoo export and zoo card: a trained model to hand on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zoo.cli.base import SHARE, Checkpoint, Run, command, console, handles_errors

License = Annotated[str | None, typer.Option(
    "--license", metavar="ID", help="The license the card states (mit, apache-2.0, cc-by-4.0, ...); "
                                    "default: unknown.")]


@command(SHARE, "zoo export runs/cgan-mnist-20261122-101500 exported/cgan-mnist",
         "zoo export runs/pix2pix-facades exported/p2p --format onnx      # and model.onnx, checked against torch",
         "zoo export cgan exported/cgan-half --dtype float16              # the latest cgan run, half the size",
         "zoo export pix2pix exported/p2p-paper --format onnx --dropout on  # pix2pix's noise as in the paper",
         "zoo export cgan exported/cgan --license mit --force             # replace an export",
         "hf upload YOUR_NAME/cgan-mnist exported/cgan-mnist               # then on the Hugging Face hub")
@handles_errors
def export(
    target: Run,
    out: Annotated[Path, typer.Argument(metavar="OUT", help="A new folder for the export.", show_default=False)],
    fmt: Annotated[str, typer.Option(
        "--format", metavar="safetensors|onnx",
        help="safetensors: the weights zoo loads; onnx: also model.onnx for onnxruntime and the web, checked "
             "against torch (pip install 'zoo-gan[onnx]').")] = "safetensors",
    dtype: Annotated[str, typer.Option(
        "--dtype", metavar="float32|float16", help="The weights' precision; float16 halves the file.")] = "float32",
    dropout: Annotated[str, typer.Option(
        "--dropout", metavar="off|on",
        help="ONNX of a model with dropout (pix2pix): off draws one output per input, as zoo translate does; on "
             "keeps the paper's noise, a new draw each run.")] = "off",
    license: License = None,
    checkpoint: Checkpoint = "latest",
    force: Annotated[bool, typer.Option("--force", help="Replace the export already in OUT.")] = False,
) -> None:
    """Export what drawing needs (no discriminator, no optimiser state) with a model card.

    OUT holds model.safetensors, config.json and README.md (the card), as the Hugging Face hub
    lays a model out; every zoo command that takes a run takes OUT, and so does zoo.load(OUT)."""
    from zoo.pipelines.export import export as run

    run(target, out, which=checkpoint, fmt=fmt, dtype=dtype, dropout=dropout, license=license, force=force,
        console=console)


@command(SHARE, "zoo card runs/cgan-mnist-20261122-101500",
         "zoo card cgan --license mit > MODEL_CARD.md")
@handles_errors
def card(
    target: Run,
    license: License = None,
    checkpoint: Checkpoint = "latest",
) -> None:
    """Print a run's model card (Markdown): model, data, training, zoo eval's figures, use and limits."""
    import sys

    from zoo.pipelines.export import card as write

    sys.stdout.write(write(target, which=checkpoint, license=license))
