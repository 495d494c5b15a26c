"""The ``zoo`` command line. Each command parses, then hands off to one pipeline function.

Expected errors end as one line and a non-zero exit (2 for bad usage); ``--verbose`` shows
the traceback. Heavy imports (torch, wandb, matplotlib) happen inside the commands, so
``zoo --help`` is instant. One module per group of commands; ``base`` holds what they share.
"""

from __future__ import annotations

# Each module registers its commands; `zoo --help` lists them in this order.
# isort: off
from zoo.cli import models, data, training, generation, latent, evaluation, runs, export, serve  # noqa: F401
# isort: on
from zoo.cli.base import app


def main() -> None:
    app()


if __name__ == "__main__":
    main()
