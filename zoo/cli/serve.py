"""zoo serve: every trained model on a local web page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zoo.cli.base import USE, Device, command, console, handles_errors


@command(USE, "zoo serve                                   # every run under runs/, at http://127.0.0.1:7860",
         "zoo serve runs/pix2pix-facades --port 8000",
         "zoo serve --host 0.0.0.0 --auth me:secret    # on a lab machine, for the class",
         "zoo serve ~/experiments/runs --cache-mb 512")
@handles_errors
def serve(
    folder: Annotated[Path | None, typer.Argument(
        metavar="FOLDER", show_default=False,
        help="A runs folder, or one run's folder (default $ZOO_RUNS_DIR, else ./runs).")] = None,
    host: Annotated[str, typer.Option("--host", metavar="ADDRESS",
                                      help="Where to listen; another than 127.0.0.1 needs --auth or --no-auth.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT", help="The port.")] = 7860,
    auth: Annotated[str | None, typer.Option("--auth", metavar="USER:PASSWORD",
                                             help="Ask for this user name and password.")] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Serve another --host with no password (warns).")]
    = False,
    cache_mb: Annotated[int, typer.Option("--cache-mb", metavar="MB",
                                          help="Memory for loaded models; the least recently used go first.")]
    = 2048,
    queue: Annotated[int, typer.Option("--queue", metavar="N",
                                       help="Requests that may wait their turn; more are told to try again.")] = 64,
    max_upload_mb: Annotated[int, typer.Option("--max-upload-mb", metavar="MB", help="The largest upload.")] = 20,
    max_upload_pixels: Annotated[int, typer.Option("--max-upload-pixels", metavar="N",
                                                   help="The most pixels an uploaded image may have.")]
    = 4096 * 4096,
    device: Device = "auto",
) -> None:
    """Show every trained model on a local web page, to see and to play with.

    A tab per thing a model can do: the runs with their loss curves, latest preview and
    progress GIF (a run still training shows its newest checkpoint); a sample grid (a class
    picker, a text box, seed, truncation, prior); latent sliders and walks between seeds,
    classes or prompts; inversion of an uploaded image; translation from a drawing pad or an
    upload; upscaling; reconstruction; and zoo eval's figures, the report and runs side by
    side. Needs the serve extra: pip install 'zoo-gan\\[serve]'."""
    import zoo.serve as serving
    from zoo.config import within
    from zoo.records.paths import runs_dir
    from zoo.serve.catalog import Catalog

    within("--port", port, 1, 65_535)
    within("--cache-mb", cache_mb, 1, 2**30)
    within("--queue", queue, 1, 100_000)
    within("--max-upload-mb", max_upload_mb, 1, 100_000)
    within("--max-upload-pixels", max_upload_pixels, 1, 2**40)
    warnings = serving.check(host, serving.parse_auth(auth), no_auth)
    root = folder if folder is not None else runs_dir()
    settings = serving.Settings(root, host, port, serving.parse_auth(auth), cache_mb, queue,
                                max_upload_mb=max_upload_mb, max_upload_pixels=max_upload_pixels, device=device)
    serving.require_gradio()
    Catalog(root)  # the folder and the address checked before Gradio starts
    serving.check_port(host, port)
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    console.print(f"zoo serve: the runs in {root} at http://{shown}:{port} (Ctrl+C stops)", highlight=False)
    serving.launch(settings, block=True, quiet=True)
