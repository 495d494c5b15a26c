"""What every command shares: the Typer app, the consoles, error handling, common options.

Expected errors end as one line and a non-zero exit (2 for bad usage); ``--verbose`` shows
the traceback. Heavy imports (torch, wandb, matplotlib) happen inside the commands, so
``zoo --help`` is instant.
"""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from .. import __version__
from ..console import make_console
from ..errors import ZooError

app = typer.Typer(
    name="zoo",
    help="A zoo of GANs and their relatives: prepare data, train, sample.\n\n"
         "Start with [bold]zoo list[/], then [bold]zoo train dcgan --data mnist[/].",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

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


# -- options several commands take ---------------------------------------------------------

DataDir = Annotated[Path | None, typer.Option(
    "--data-dir", help="Look here first for the raw files (then $ZOO_DATA_DIR, the cache, system "
                       "folders; then download).")]
Size = Annotated[str | None, typer.Option(
    "--size", help="Resize (and centre-crop) to SIZE x SIZE, or HEIGHTxWIDTH (64x128) where the model allows; "
                   "full keeps photos at their own sizes (super-resolution's default: it trains on crops).")]
Channels = Annotated[int | None, typer.Option("--channels", help="1 (grayscale) or 3 (RGB).")]
Classes = Annotated[str | None, typer.Option(
    "--classes", help="Keep only these classes, by name or index: 7, or sneaker,sandal.")]
Subset = Annotated[str | None, typer.Option(
    "--subset", help="Keep part of the data set, START:STOP[:STEP] in its order: 0:8000, 8000:, "
                    "0::2 (every other image).")]
DataDirection = Annotated[str | None, typer.Option(
    "--direction", help="Two-domain data: AtoB (as stored, the default) or BtoA (domains A and B swapped, "
                        "e.g. facades' labels -> photo).")]
