"""zoo prep: prepare a data set once, and draw what is in it."""

from __future__ import annotations

from typing import Annotated

import typer

from zoo.cli.base import (
    DATA,
    START,
    Channels,
    Classes,
    DataDir,
    DataDirection,
    Size,
    Subset,
    command,
    console,
    err_console,
    handles_errors,
)


@command(START, "zoo prep mnist", "zoo prep fashion-mnist --size 32",
                             "zoo prep mnist --classes 7", "zoo prep fashion-mnist --classes sneaker,sandal",
                             "zoo prep folder:~/pictures/cats --size 64 --channels 3",
                             'zoo prep "shards:/data/faces/{0000..0099}.tar" --size 128   # tar shards, any size',
                             "zoo prep mnist --data-dir ~/datasets/mnist",
                             "zoo prep paired:edges2fashion                  # Fashion-MNIST items and their edges",
                             "zoo prep paired:~/datasets/facades --size 64    # A|B side by side, or A/ and B/",
                             "zoo prep paired:~/datasets/facades --direction BtoA   # photo|labels: learn labels -> photo",
                             "zoo prep unpaired:~/datasets/horse2zebra --size 64   # trainA/ and trainB/",
                             "zoo prep unpaired:fashion:sneaker,ankle-boot    # two classes as two domains")
@handles_errors
def prep(
    data: Annotated[str, typer.Argument(metavar="DATA", rich_help_panel=DATA, show_default=False, help="mnist, fashion-mnist, cifar10, svhn, folder:PATH, shards:PATTERN (tar files); for image-to-image models paired:edges2fashion, paired:PATH, unpaired:PATH or unpaired:DATASET:CLASS_A,CLASS_B.")],
    size: Size = None,
    channels: Channels = None,
    data_dir: DataDir = None,
    classes: Classes = None,
    subset: Subset = None,
    direction: DataDirection = None,
    force: Annotated[bool, typer.Option("--force", help="Prepare again, writing over the cached copy.")] = False,
) -> None:
    """Prepare a data set once (train does this on demand) and draw what is in it."""
    from rich.table import Table

    from zoo.pipelines.prep import prepare
    from zoo.pipelines.prep_summary import describe

    prepared = prepare(data, size=size, channels=channels, data_dir=data_dir, classes=classes,
                       subset=subset, direction=direction, force=force, console=err_console)
    table = Table(show_header=False, title=f"prepared {data}")
    for key, value in describe(prepared).items():
        table.add_row(key, str(value))
    for note in prepared.meta.get("notes", []):
        table.add_row("note", note)
    pictures = ", ".join(p.name for p in sorted(prepared.path.glob("*.png")))
    table.add_row("pictures", pictures)
    console.print(table)
