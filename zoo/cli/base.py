"""What every command shares: the Typer app and its help panels, the consoles, error handling,
and the options several commands take, each spelt and explained once here.

Expected errors end as one line and a non-zero exit (2 for bad usage); ``--verbose`` shows
the traceback. Heavy imports (torch, wandb, matplotlib) happen inside the commands, so
``zoo --help`` is instant.
"""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
import typer.core
from rich.markup import escape

from zoo import __version__
from zoo.display.console import make_console
from zoo.errors import ZooError


def _what_to_type(command: Any, ctx: Any) -> None:
    """Help shows what to type, never a Python type: a flag takes no value, so it shows none
    (Typer would write ``<bool>``), and an argument's metavar (RUN, IMAGES) says it all
    (Typer would add ``<str>``)."""
    for param in [*command.params, command.get_help_option(ctx)]:
        if param is None:
            continue
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        elif param.param_type_name == "argument" and param.metavar is not None:
            setattr(param, "display_type_rich", lambda ctx: None)  # noqa: B010  (on this one parameter)


class Command(typer.core.TyperCommand):
    def format_help(self, ctx: Any, formatter: Any) -> None:
        _what_to_type(self, ctx)
        super().format_help(ctx, formatter)


class Group(typer.core.TyperGroup):
    def format_help(self, ctx: Any, formatter: Any) -> None:
        _what_to_type(self, ctx)
        super().format_help(ctx, formatter)


app = typer.Typer(
    name="zoo",
    cls=Group,
    help="A zoo of GANs and their relatives: prepare data, train, sample.\n\n"
         "Start with [bold]zoo list[/], then [bold]zoo train dcgan --data mnist[/].",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# The panels of `zoo --help`, in the order a newcomer needs them.
START, USE, LATENT, MEASURE, SHARE = ("Start: models, data, training", "Use a trained model", "The latent space",
                                      "Measure and compare runs", "Hand a model on")


def command(panel: str, *lines: str, name: str | None = None) -> Callable[[Callable[..., Any]], Any]:
    """Register a command under a panel of ``zoo --help``, with ``lines`` as its examples."""
    return app.command(name, cls=Command, rich_help_panel=panel, epilog=examples(*lines))


console = make_console()
err_console = make_console(stderr=True)
_state = {"verbose": False}


def _version(value: bool) -> None:
    if value:
        console.print(f"zoo {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks on errors.")] = False,
    version: Annotated[bool | None, typer.Option("--version", callback=_version, is_eager=True,
                                                 help="Print the version and exit.")] = None,
) -> None:
    _state["verbose"] = verbose


FILE_ERRORS = {errno.ENAMETOOLONG, errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR,
               errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.ELOOP, errno.EEXIST, errno.ENXIO}
"""What the system says of a path the user gave (too long, not there, not allowed, ...):
one line naming the path, not a traceback."""


def handles_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a ZooError, or the system's refusal of a path, into one red line and its exit
    code (a traceback with --verbose)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ZooError as exc:
            if _state["verbose"]:
                raise
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:
            if _state["verbose"] or exc.errno not in FILE_ERRORS:
                raise
            name = exc.filename if exc.filename is not None else ""
            where = f": {str(name)[:120]}{'...' if len(str(name)) > 120 else ''}" if name != "" else ""
            err_console.print(f"[bold red]error:[/] {escape(exc.strerror or str(exc))}{escape(where)}",
                              highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


def examples(*lines: str) -> str:
    return "[bold]Examples[/]\n\n" + "\n\n".join(f"  [cyan]{line}[/]" for line in lines)


# -- what several commands take: each spelt, and explained, once ------------------------------

Run = Annotated[str, typer.Argument(
    metavar="RUN", help="A run folder, a checkpoint file, or a model name (its latest run); `zoo runs` lists them.",
    show_default=False)]
ModelName = Annotated[str, typer.Argument(metavar="MODEL", help="Model name, as in `zoo list`.", show_default=False)]
Images = Annotated[list[str], typer.Argument(
    metavar="IMAGES", help="Images, folders of images, or globs (quote them), any size and format.",
    show_default=False)]


# Options that a command may show in a panel of its own are made by a function of the panel
# (Typer takes one Option per parameter); the Annotated types are for the rest.

def device_option(panel: str | None = None) -> Any:
    return typer.Option("--device", metavar="DEVICE", help="auto, cpu, cuda, cuda:N or mps.", rich_help_panel=panel)


def wandb_option(panel: str | None = None) -> Any:
    return typer.Option("--wandb", metavar="auto|online|offline|off", rich_help_panel=panel,
                        help="Weights & Biases: auto (online if logged in, else offline), online, offline, or off.")


def no_wandb_option(panel: str | None = None) -> Any:
    return typer.Option("--no-wandb", help="The same as --wandb off.", rich_help_panel=panel)


WandbMode = Literal["auto", "online", "offline", "off"]
Device = Annotated[str, device_option()]
Wandb = Annotated[WandbMode, wandb_option()]
NoWandb = Annotated[bool, no_wandb_option()]
Force = Annotated[bool, typer.Option("--force", help="Write over files already at --out (nothing else is deleted).")]
Checkpoint = Annotated[Literal["latest", "best"], typer.Option(
    "--checkpoint", metavar="latest|best",
    help="latest, or best: the run's best.safetensors, kept by zoo train --eval-every N.")]
Class = Annotated[str | None, typer.Option(
    "--class", metavar="CLASS", help="Class-conditional models: the class, by name or index.")]
Digit = Annotated[str | None, typer.Option("--digit", metavar="DIGIT",
                                           help="--class for digit data sets (mnist, svhn).")]
TextEncoder = Annotated[Path | None, typer.Option(
    "--text-encoder", metavar="DIR",
    help="Text-conditional models trained with --text-encoder: that sentence-transformers model's folder (zoo "
         "reads no folder a checkpoint names unless you name it here).")]


def out_option(default: str, panel: str | None = None) -> Any:
    """``--out``: where a command writes, ``default`` when not given (said in its help)."""
    return typer.Option("--out", "-o", metavar="PATH", help=f"Where to write (default {default}).",
                        rich_help_panel=panel)


def wandb_mode(wandb: str, no_wandb: bool) -> str:
    """The W&B mode of --wandb and --no-wandb together; refuses the two saying different things."""
    if no_wandb and wandb not in ("auto", "off"):
        raise typer.BadParameter(f"--no-wandb and --wandb {wandb} contradict each other; give one",
                                 param_hint="--wandb")
    return "off" if no_wandb else wandb


DATA = "Data"
"""The panel of the options that choose and shape a data set."""
DataDir = Annotated[Path | None, typer.Option(
    "--data-dir", metavar="DIR", rich_help_panel=DATA,
    help="Look here first for the raw files (then $ZOO_DATA_DIR, the cache, system folders; then download).")]
Size = Annotated[str | None, typer.Option(
    "--size", metavar="SIZE", rich_help_panel=DATA,
    help="Resize (and centre-crop) to SIZE x SIZE, or HEIGHTxWIDTH (64x128) where the model allows; full keeps "
         "photos at their own sizes (super-resolution's default: it trains on crops).")]
Channels = Annotated[int | None, typer.Option("--channels", metavar="1|3", rich_help_panel=DATA,
                                              help="1 (grayscale) or 3 (RGB).")]
Classes = Annotated[str | None, typer.Option(
    "--classes", metavar="CLASSES", rich_help_panel=DATA,
    help="Keep only these classes, by name or index: 7, or sneaker,sandal.")]
Subset = Annotated[str | None, typer.Option(
    "--subset", metavar="START:STOP[:STEP]", rich_help_panel=DATA,
    help="Keep part of the data set, in its order: 0:8000, 8000:, 0::2 (every other image).")]
DataDirection = Annotated[str | None, typer.Option(
    "--direction", metavar="AtoB|BtoA", rich_help_panel=DATA,
    help="Two-domain data: AtoB (as stored, the default) or BtoA (domains A and B swapped, e.g. facades' "
         "labels -> photo).")]
