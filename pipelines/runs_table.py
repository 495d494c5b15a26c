"""What the runs folder holds (``zoo runs``) and a few runs side by side (``zoo compare``):
the tables, the best run of each figure, the protocols that differ, and which curves to chart.

What each run says comes from its own files, read by :mod:`zoo.records.run_info` (nothing is loaded
onto a device); the chart of runs compared is :func:`zoo.display.figures.compare_chart`.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from zoo.display.console import make_console, zoo_command
from zoo.display.figures import compare_chart, number
from zoo.errors import UsageError
from zoo.records.paths import runs_dir
from zoo.records.run_info import EVAL_METRICS, METRICS_FILE, RunSummary, find_runs, read_metrics, read_run
from zoo.records.runs import resolve_run

STATUS_STYLES = {"finished": "green", "running": "cyan", "stopped": "magenta", "interrupted": "yellow",
                 "time limit": "yellow", "unreadable": "red"}


# -- zoo runs -----------------------------------------------------------------------------------

def show_runs(folder: Path | None, model: str | None, as_json: bool, console: Console) -> list[RunSummary]:
    """Print every run in ``folder`` (default: the runs folder) as a table, or as JSON."""
    root = folder if folder is not None else runs_dir()
    if folder is not None and not folder.is_dir():
        raise UsageError(f"--dir {folder} is not a folder")
    found = find_runs(root, model) if root.is_dir() else []
    if as_json:
        console.out(json.dumps([run.to_json() for run in found], indent=2), highlight=False)
        return found
    if not found:
        which = f"{model} runs" if model else "runs"
        console.print(escape(f"no {which} in {root}; train one: {zoo_command()} train {model or 'dcgan'} "
                             "--data mnist"),
                      highlight=False)
        return found
    console.print(runs_table(found, root, console.width))
    return found


NARROW = 120
"""Below this many columns, ``zoo runs`` leaves out the images, the training time and the year."""


def runs_table(found: Sequence[RunSummary], root: Path, width: int = 200) -> Table:
    """The runs as a table; each distinct protocol is written once, under it, and its number
    put beside the figures measured under it."""
    protocols = list(dict.fromkeys(run.protocol for run in found if run.protocol))
    wide = width >= NARROW
    table = Table(title=f"{len(found)} run{'s' if len(found) != 1 else ''} in {root}", title_justify="left",
                  caption=escape("\n".join(f"({i}) {p}" for i, p in enumerate(protocols, 1))) or None,
                  caption_justify="left")
    # Narrow terminals: no images, time trained or creation time (run folders are named by it).
    columns = ["run", "model", "data", "steps", *(["images"] if wide else []), "status",
               *(["created", "trained"] if wide else []), "eval", "best in training"]
    least = {"model": 5, "data": 5, "eval": 6, "best in training": 8}  # never squeezed to nothing
    for column in columns:
        table.add_column(column, justify="left" if column in ("run", "model", "data", "status", "created") else "right",
                         no_wrap=column in ("steps", "status", "created") or (wide and column == "run"),
                         overflow="fold", min_width=least.get(column))
    for run in found:
        fid_text = headline(run.evaluation)
        if run.protocol:
            fid_text += f" ({protocols.index(run.protocol) + 1})"
        created = (run.created or "")[0 if wide else 5:16].replace("T", " ")  # narrow: no year
        cells = {"run": escape(run.name), "model": escape(run.model or ""), "data": escape(run.data or ""),
                 "steps": steps_text(run), "images": _count(run.images),
                 "status": f"[{STATUS_STYLES.get(run.status, 'red')}]{escape(run.status)}[/]",
                 "created": created, "trained": duration(run.seconds),
                 "eval": fid_text, "best in training": best_text(run.best)}
        table.add_row(*(cells[c] for c in columns))
    return table


HEADLINES = (("fid", "FID {}"), ("psnr_y", "PSNR-Y {} dB"), ("psnr", "PSNR {} dB"), ("nll", "NLL {}"))
"""The figure ``zoo runs`` shows of an evaluation: the first of these it holds."""


def headline(evaluation: dict[str, Any]) -> str:
    """A run's evaluation in one figure: its FID, or for what is not sampled (an upscaler,
    a translator, an autoencoder) its PSNR or likelihood."""
    for key, form in HEADLINES:
        value = evaluation.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return form.format(number(value))
    return ""


def steps_text(run: RunSummary) -> str:
    if run.step is None:
        return ""
    return f"{run.step:,}/{run.total_steps:,}" if run.total_steps else f"{run.step:,}"


def best_text(best: dict[str, Any]) -> str:
    """run.json's best in-training figure as "fd 15.2 @ 1,200"."""
    keys = [k for k, v in best.items() if k not in ("step", "protocol") and isinstance(v, (int, float))]
    if not keys:
        return ""
    at = f" @ {best['step']:,}" if isinstance(best.get("step"), int) else ""
    return f"{keys[0]} {number(best[keys[0]])}{at}"


def _count(value: int | None) -> str:
    return f"{value:,}" if value is not None else ""


def duration(seconds: float | None) -> str:
    """1h 02m, 3m 05s, 42s."""
    if seconds is None:
        return ""
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"


# -- zoo compare --------------------------------------------------------------------------------

@dataclass
class Comparison:
    runs: list[RunSummary]
    metrics: list[str]
    """The eval.json figures any of the runs has, in :data:`EVAL_METRICS`' order."""
    best: dict[str, str]
    """For each figure that has a better way, the run that does best."""
    warning: str | None
    figure: Path | None
    plotted: list[str]
    notes: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"runs": [{"run": r.name, "path": str(r.path), "model": r.model, "data": r.data, "step": r.step,
                          "total_steps": r.total_steps, "protocol": r.protocol, "eval": r.figures()}
                         for r in self.runs],
                "metrics": self.metrics, "best": self.best, "warning": self.warning,
                "figure": str(self.figure) if self.figure else None, "plotted": self.plotted, "notes": self.notes}


def compare(targets: Sequence[str], out: Path | None = None, force: bool = False, metric: str | None = None,
            as_json: bool = False, console: Console | None = None, err_console: Console | None = None) -> Comparison:
    """Compare runs: their eval.json figures as one table, best per column marked, and a chart
    of ``metric`` (default: the in-training ``fd`` if any run has it, else their common
    losses) against the step, written to ``out`` (default ``compare-TIME.png``)."""
    console = console or make_console()
    err_console = err_console or make_console(stderr=True)
    folders: list[Path] = []
    for target in targets:
        folder = resolve_run(target)
        if folder.resolve() not in [f.resolve() for f in folders]:
            folders.append(folder)
    if len(folders) < 2:
        raise UsageError(f"zoo compare takes at least two different runs; {', '.join(targets)} "
                         f"{'is' if len(targets) == 1 else 'are'} one run")
    out = out if out is not None else Path(f"compare-{time.strftime('%Y%m%d-%H%M%S')}.png")
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give the file name of the figure (compare.png)")
    if out.exists() and not force:
        raise UsageError(f"{out} already exists; pass --force to write over it, or --out another file")
    found = [read_run(folder) or RunSummary(folder, "unknown") for folder in folders]

    metrics = _metrics_present(found)
    best = {}
    for name in metrics:
        winner = best_run(found, name)
        if winner is not None:
            best[name] = winner.name
    warning = protocol_warning(found)
    records = {run.name: read_metrics(run.path / METRICS_FILE) for run in found}
    plotted, notes = _curves_to_plot(records, metric)
    figure = None
    if plotted:
        labels = {run.name: f"{run.name} ({run.model or '?'} on {run.data or '?'})" for run in found}
        figure = compare_chart(records, plotted, out, labels)
    comparison = Comparison(found, metrics, best, warning, figure, plotted, notes)

    if warning:
        err_console.print(f"[bold yellow]warning:[/] {escape(warning)}", highlight=False)
    if as_json:
        console.out(json.dumps(comparison.to_json(), indent=2), highlight=False)
        return comparison
    console.print(comparison_table(comparison, console.width))
    for note in notes:
        console.print(f"note: {escape(note)}", highlight=False)
    if figure:
        console.print(escape(f"{', '.join(plotted)} against step -> {figure}"), highlight=False)
    return comparison


def _metrics_present(found: Sequence[RunSummary]) -> list[str]:
    present = {k for run in found for k in run.figures()}
    known = [k for k in EVAL_METRICS if k in present]
    return known + sorted(present - set(known))


def best_run(found: Sequence[RunSummary], metric: str) -> RunSummary | None:
    """The run with the best value of ``metric`` (None when that figure has no better way, or
    fewer than two runs have it)."""
    direction = EVAL_METRICS.get(metric, (None, ""))[0]
    having = [(run.figures()[metric], run) for run in found if metric in run.figures()]
    having = [(v, run) for v, run in having if math.isfinite(v)]
    if direction is None or len(having) < 2:
        return None
    score = {"lower": lambda v: v, "higher": lambda v: -v, "one": lambda v: abs(v - 1)}[direction]
    return min(having, key=lambda pair: score(pair[0]))[1]


def protocol_warning(found: Sequence[RunSummary]) -> str | None:
    """A sentence saying which runs were evaluated differently, and in what; None if alike."""
    evaluated = [run for run in found if run.protocol]
    by_protocol: dict[str, list[str]] = {}
    for run in evaluated:
        by_protocol.setdefault(str(run.protocol), []).append(run.name)
    if len(by_protocol) < 2:
        return None
    details = [run.evaluation.get("protocol_detail") or {} for run in evaluated]
    keys = sorted({k for d in details for k in d} - {"name"})
    differ = []
    for key in keys:
        values = [json.dumps(d.get(key), sort_keys=True) for d in details]
        if len(set(values)) > 1:
            shown = [str(d.get(key)) for d in details]
            differ.append(f"{key} ({' vs '.join(dict.fromkeys(shown))})")
    groups = "; ".join(f"{p} for {', '.join(names)}" for p, names in by_protocol.items())
    return (f"the figures are not comparable: the runs were evaluated under different protocols ({groups})"
            + (f"; they differ in {', '.join(differ)}" if differ else "")
            + ". Evaluate them alike (zoo eval RUN with the same --n, --features and --split) to compare.")


def comparison_table(comparison: Comparison, width: int = 200) -> Table:
    """A row per run with a column per figure, best per column in bold green; when that is
    wider than ``width``, the same turned over: a row per figure, a column per run."""
    found, metrics = comparison.runs, comparison.metrics
    protocols = list(dict.fromkeys(run.protocol for run in found if run.protocol))
    title = f"{len(found)} runs compared (best of each figure in bold green)"
    caption = escape("\n".join(f"({i}) {p}" for i, p in enumerate(protocols, 1))) or None

    def cell(run: RunSummary, name: str) -> str:
        values = run.figures()
        text = number(values[name]) if name in values else ""
        return f"[bold green]{text}[/]" if comparison.best.get(name) == run.name else text

    def protocol(run: RunSummary) -> str:
        return f"({protocols.index(run.protocol) + 1})" if run.protocol else "[dim]not evaluated[/]"

    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for column in ("run", "model", "data", "steps"):
        table.add_column(column, justify="right" if column == "steps" else "left", no_wrap=column == "run")
    for name in metrics:
        table.add_column(escape(f"{name}{_arrow(name)}"), justify="right")
    table.add_column("protocol")
    for run in found:
        table.add_row(escape(run.name), escape(run.model or ""), escape(run.data or ""), steps_text(run),
                      *(cell(run, name) for name in metrics), protocol(run))
    measuring = Console(width=10_000, file=io.StringIO())  # the table's natural width, whatever the terminal's
    if Measurement.get(measuring, measuring.options, table).maximum <= width:
        return table

    turned = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    turned.add_column("")
    for run in found:
        turned.add_column(escape(run.name), justify="right")
    for label, values in (("model", [escape(r.model or "") for r in found]),
                          ("data", [escape(r.data or "") for r in found]),
                          ("steps", [steps_text(r) for r in found])):
        turned.add_row(label, *values)
    for name in metrics:
        turned.add_row(escape(f"{name}{_arrow(name)}"), *(cell(run, name) for run in found))
    turned.add_row("protocol", *(protocol(run) for run in found))
    return turned


def _arrow(name: str) -> str:
    return {"lower": " ↓", "higher": " ↑", "one": " →1"}.get(EVAL_METRICS.get(name, (None, ""))[0] or "", "")


def _curves_to_plot(records: dict[str, list[dict]], metric: str | None) -> tuple[list[str], list[str]]:
    """Which metrics to draw against the step, and notes on what could not be."""
    def keys(rows: list[dict]) -> set[str]:
        return {k for r in rows for k, v in r.items()
                if k not in ("step", "epoch", "time") and isinstance(v, (int, float))}

    every = set().union(*(keys(rows) for rows in records.values()))
    notes = [f"{name} has no metrics.jsonl" for name, rows in records.items() if not rows]
    if metric is not None:
        if metric not in every:
            raise UsageError(f"no run logged {metric!r} in its metrics.jsonl; --metric takes one of "
                             f"{', '.join(sorted(every)) or 'nothing: none of them logged metrics'}")
        chosen = [metric]
    elif "fd" in every:
        chosen = ["fd"]
    else:
        logged = [keys(rows) for rows in records.values() if rows]
        common = set.intersection(*logged) if logged else set()
        losses = sorted(k for k in common if "loss" in k)
        chosen = losses or sorted(common)
        if not chosen and logged:
            notes.append("the runs log no metric in common; choose one with --metric")
    for name, rows in records.items():
        for key in chosen:
            if rows and not any(key in r for r in rows):
                notes.append(f"{name} has no {key} in its metrics.jsonl")
    return chosen, notes
