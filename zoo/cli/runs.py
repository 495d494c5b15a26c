"""zoo runs, zoo compare and zoo report: what the runs folder holds, runs side by side, one run on a page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zoo.cli.base import MEASURE, Force, Run, command, console, err_console, handles_errors, out_option

As_json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]


@command(MEASURE, "zoo runs", "zoo runs --model cgan", "zoo runs --dir ~/experiments/runs",
         "zoo runs --json | jq '.[] | select(.status == \"finished\") | .run'", name="runs")
@handles_errors
def list_runs(
    folder: Annotated[Path | None, typer.Option("--dir", metavar="DIR", help="The runs folder (default $ZOO_RUNS_DIR, else ./runs).")] = None,
    model: Annotated[str | None, typer.Option("--model", metavar="MODEL", help="Only this model's runs.")] = None,
    as_json: As_json = False,
) -> None:
    """List the runs in the runs folder: status, steps, training time and best figures.

    One row per run, the newest last: model, data, steps done, images, status, when it was
    created, how long it trained, zoo eval's FID (its protocol under the table) and the best
    in-training figure (--eval-every) with its step. A run marked running whose training
    process is gone shows as stopped."""
    from zoo.pipelines.runs_table import show_runs

    show_runs(folder, model=model, as_json=as_json, console=console)


@command(
    MEASURE,
    "zoo compare runs/dcgan-mnist-20261122-101500 runs/wgan-gp-mnist-20261122-113000",
    "zoo compare dcgan wgan wgan-gp                # each model's latest run",
    "zoo compare dcgan cgan --metric loss_g --out losses.png",
    "zoo compare dcgan cgan --json")
@handles_errors
def compare(
    targets: Annotated[list[str], typer.Argument(metavar="RUNS", show_default=False, help="Two runs or more: run folders, checkpoint files or model names (their latest run).")],
    out: Annotated[Path | None, out_option("compare-TIME.png here")] = None,
    force: Force = False,
    metric: Annotated[str | None, typer.Option("--metric", metavar="METRIC", help="What to draw against the step from metrics.jsonl (default: the in-training fd if any run has it, else the losses the runs share).")] = None,
    as_json: As_json = False,
) -> None:
    """Compare runs: zoo eval's figures side by side, and a chart against the step.

    One row per run with every figure any of them has, the best of each marked; a figure
    (compare-TIME.png) of the in-training fd, or the losses, against the step for each run.
    Figures measured under different protocols (extractor, counts, split) are not comparable:
    compare says so, and in what they differ."""
    from zoo.pipelines.runs_table import compare as run

    run(targets, out=out, force=force, metric=metric, as_json=as_json, console=console, err_console=err_console)


@command(MEASURE, "zoo report runs/dcgan-mnist-20261122-101500    # -> RUN/report.html",
         "zoo report dcgan                               # its latest run",
         "zoo report cgan --out ~/Desktop/cgan.html")
@handles_errors
def report(
    target: Run,
    out: Annotated[Path | None, out_option("RUN/report.html; an earlier report there is written over")] = None,
    force: Force = False,
) -> None:
    """Write one self-contained HTML page about a run (RUN/report.html).

    Its config and command, the data's pictures, the loss curves, the progress GIF and the
    latest preview, zoo eval's figures with their protocol and pictures, the in-training
    evaluation curve and the warnings. Pictures are embedded: the file opens anywhere, offline."""
    from zoo.pipelines.report import report as run

    run(target, out=out, force=force, console=console)
