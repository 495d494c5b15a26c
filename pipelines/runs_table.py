"""What the runs folder holds (``zoo runs``) and a few runs side by side (``zoo compare``).

A run folder is one holding ``run.json`` or a checkpoint. What is shown comes from the run's
own files: ``run.json`` (what was trained, how far, its status, the best in-training figure),
the checkpoint's header (the training time), ``eval.json`` (``zoo eval``'s figures and their
protocol) and ``metrics.jsonl`` (the curves). Nothing is loaded onto a device.
"""

from __future__ import annotations

import io
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from zoo import checkpoint as ckpt_io
from zoo import figures, runs
from zoo.errors import UsageError, ZooError
from zoo.paths import runs_dir

EVAL_FILE = "eval.json"
METRICS_FILE = "metrics.jsonl"

EVAL_METRICS: dict[str, tuple[str | None, str]] = {
    "fid": ("lower", "Frechet distance, lower is better"),
    "kid": ("lower", "kernel inception distance, lower is better"),
    "precision": ("higher", "fidelity, 0-1"),
    "recall": ("higher", "variety, 0-1"),
    "density": ("one", "about 1 like the data"),
    "coverage": ("higher", "0-1"),
    "diversity": ("one", "pixel spread / the data's"),
    "memorisation": ("lower", "samples nearer a training image than held-out images come"),
    "memorisation_reference": (None, "the same for real held-out images"),
    "classifier_score": ("higher", "at most the number of classes"),
    "class_accuracy": ("higher", "samples read as the class asked"),
    "l1": ("lower", "mean |output - target|, 0-1"),
    "psnr": ("higher", "dB"),
    "ssim": ("higher", "0-1"),
}
"""eval.json's figures in the order they are shown: which way is better (None: a reference,
not a figure of the model; "one": nearest 1) and what they mean."""
NOT_FIGURES = {"seconds", "kid_std"}
"""Numbers in eval.json that are not figures to compare."""

STATUS_STYLES = {"finished": "green", "running": "cyan", "stopped": "magenta", "interrupted": "yellow",
                 "time limit": "yellow", "unreadable": "red"}


@dataclass
class RunSummary:
    """One run as ``zoo runs`` shows it; None where the run's files do not say."""

    path: Path
    status: str
    model: str | None = None
    data: str | None = None
    step: int | None = None
    total_steps: int | None = None
    images: int | None = None
    created: str | None = None
    seconds: float | None = None
    best: dict[str, Any] = field(default_factory=dict)
    """run.json's best in-training figure: {"step": 1200, "fd": 15.2, "protocol": ...}."""
    evaluation: dict[str, Any] = field(default_factory=dict)
    """eval.json, as ``zoo eval`` wrote it."""

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def protocol(self) -> str | None:
        protocol = self.evaluation.get("protocol")
        return str(protocol) if protocol else None

    def figures(self) -> dict[str, float]:
        """The eval.json numbers that are figures of the model."""
        return {k: float(v) for k, v in self.evaluation.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in NOT_FIGURES}

    def to_json(self) -> dict[str, Any]:
        return {"run": self.name, "path": str(self.path), "model": self.model, "data": self.data,
                "status": self.status, "step": self.step, "total_steps": self.total_steps, "images": self.images,
                "created": self.created, "seconds": self.seconds, "fid": self.evaluation.get("fid"),
                "protocol": self.protocol, "eval": self.figures(), "best": self.best or None}


# -- reading runs -------------------------------------------------------------------------------

def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from a file; None when it is missing, unreadable or not an object."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def read_run(run_dir: Path) -> RunSummary | None:
    """What a run folder says about itself; None for a folder that is not a run."""
    info_file, checkpoint = run_dir / runs.RUN_FILE, run_dir / ckpt_io.FILENAME
    if not info_file.is_file() and not checkpoint.is_file():
        return None
    info = read_json(info_file) if info_file.is_file() else {}
    if info is None:
        return RunSummary(run_dir, "unreadable", created=_mtime(run_dir))
    train = train_state(run_dir) or {}

    def known(key: str, kind: type | tuple[type, ...]) -> Any:
        """run.json's value, else the checkpoint's; None where neither says, or says nonsense."""
        value = info.get(key, train.get(key))
        return value if isinstance(value, kind) and not isinstance(value, bool) else None

    data = info.get("data") or (train.get("data") or {}).get("source")
    return RunSummary(
        run_dir, run_status(run_dir, info), model=known("model", str), data=str(data) if data else None,
        step=known("step", int), total_steps=known("total_steps", int), images=known("images", int),
        created=known("created", str) or _mtime(run_dir), seconds=known("seconds", (int, float)),
        best=known("best", dict) or {}, evaluation=read_json(run_dir / EVAL_FILE) or {})


def train_state(run_dir: Path) -> dict[str, Any] | None:
    """Where training stood at the last checkpoint (its header's "train"), if it has one."""
    path = run_dir / ckpt_io.FILENAME
    if not path.is_file():
        return None
    try:
        meta = ckpt_io.read_meta(path)
    except ZooError:
        return None
    return {"model": meta.get("plugin"), **meta.get("train", {})}


def run_status(run_dir: Path, info: dict[str, Any]) -> str:
    """run.json's status, except that a run "running" with no process holding its lock was
    stopped (killed, or its machine went down): it says "stopped"."""
    status = str(info.get("status") or "unknown")
    if status == "running" and not is_training(run_dir):
        return "stopped"
    return status


def is_training(run_dir: Path) -> bool:
    """Whether a process holds the run's lock (:class:`zoo.runs.RunLock`) now. A shared,
    non-blocking ``flock`` taken and let go at once: it never waits and writes nothing."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no locks, believe run.json
        return True
    try:
        fd = os.open(run_dir / runs.LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing lets go of the lock, if we got it
    return False


def _mtime(path: Path) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(path.stat().st_mtime))


def find_runs(root: Path, model: str | None = None) -> list[RunSummary]:
    """Every run in ``root`` (of ``model`` only, if given), the oldest first."""
    found = []
    for path in root.iterdir():
        if not path.is_dir() or path.name.startswith("."):
            continue
        run = read_run(path)
        if run is not None and (model is None or run.model == model):
            found.append(run)
    return sorted(found, key=lambda r: (r.created or "", r.name))


def resolve_run(target: str) -> Path:
    """The run folder meant by a folder, a checkpoint file or a model name (its latest run).
    A folder with a run.json counts even before its first checkpoint."""
    path = Path(target).expanduser()
    if path.is_dir() and (path / runs.RUN_FILE).is_file():
        return path
    return runs.find_checkpoint(target).parent


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
        console.print(escape(f"no {which} in {root}; train one: zoo train {model or 'dcgan'} --data mnist"),
                      highlight=False)
        return found
    console.print(runs_table(found, root, console.width))
    return found


NARROW = 120
"""Below this many columns, ``zoo runs`` leaves out the images, the training time and the year."""


def runs_table(found: Sequence[RunSummary], root: Path, width: int = 200) -> Table:
    """The runs as a table; each distinct protocol is written once, under it, and its number
    put beside the FIDs measured under it."""
    protocols = list(dict.fromkeys(run.protocol for run in found if run.protocol))
    wide = width >= NARROW
    table = Table(title=f"{len(found)} run{'s' if len(found) != 1 else ''} in {root}", title_justify="left",
                  caption=escape("\n".join(f"({i}) {p}" for i, p in enumerate(protocols, 1))) or None,
                  caption_justify="left")
    columns = ["run", "model", "data", "steps", *(["images"] if wide else []), "status", "created",
               *(["trained"] if wide else []), "FID", "best in training"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("run", "model", "data", "status", "created") else "right",
                         no_wrap=column in ("run", "steps", "status", "created"))
    for run in found:
        fid = run.evaluation.get("fid")
        fid_text = number(fid) if isinstance(fid, (int, float)) and not isinstance(fid, bool) else ""
        if run.protocol:
            fid_text += f" ({protocols.index(run.protocol) + 1})"
        created = (run.created or "")[0 if wide else 5:16].replace("T", " ")  # narrow: no year
        cells = {"run": escape(run.name), "model": escape(run.model or ""), "data": escape(run.data or ""),
                 "steps": steps_text(run), "images": _count(run.images),
                 "status": f"[{STATUS_STYLES.get(run.status, 'red')}]{escape(run.status)}[/]",
                 "created": created, "trained": duration(run.seconds),
                 "FID": fid_text, "best in training": best_text(run.best)}
        table.add_row(*(cells[c] for c in columns))
    return table


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


def number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


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
    console = console or Console()
    err_console = err_console or Console(stderr=True)
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
    records = {run.name: figures.read_metrics(run.path / METRICS_FILE) for run in found}
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


def compare_chart(records: dict[str, list[dict]], metrics: Sequence[str], path: Path,
                  labels: dict[str, str] | None = None) -> Path:
    """One panel per metric, one line per run against the step: in-training evaluations as
    points joined by lines, per-step values faint with a smoothed line over them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = labels or {}
    fig, axes = plt.subplots(len(metrics), 1, figsize=(8, 3.4 * len(metrics)), squeeze=False)
    for ax, key in zip(axes[:, 0], metrics, strict=True):
        for name, rows in records.items():
            points = [(r["step"], float(r[key])) for r in rows if key in r and "step" in r]
            if not points:
                continue
            steps, values = [p[0] for p in points], [p[1] for p in points]
            label = labels.get(name, name)
            if key in figures.EVAL_KEYS or len(points) <= 20:
                ax.plot(steps, values, marker="o", markersize=3, label=label)
            else:
                line, = ax.plot(steps, values, alpha=0.2, linewidth=0.8)
                ax.plot(steps, _smoothed(values), color=line.get_color(), linewidth=1.6, label=label)
        ax.set_title(figures.EVAL_LABELS.get(key, figures.metric_label(key)), fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel(figures.metric_label(key))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _smoothed(values: Sequence[float]) -> list[float]:
    """An exponential moving average, heavier for longer runs (as the loss curves')."""
    weight = min(0.98, 1 - 10 / max(10, len(values)))
    out: list[float] = []
    for v in values:
        out.append(v if not out or not math.isfinite(out[-1]) else weight * out[-1] + (1 - weight) * v)
    return out
