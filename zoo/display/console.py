"""What zoo says as it works, on a terminal or in a log: consoles, progress, the command to type.

On a terminal, rich draws as it likes: colour, a live progress bar. Written to a file or a
pipe (a log, CI, ``nohup``), rich would lay every line out for 80 columns, breaking long
lines and table cells mid-word, and draw a progress bar once, at the end, wrapped. So a
console whose output is not a terminal is made wide (:func:`make_console`), and a progress
bar there is plain lines instead (:class:`LogProgress`): one every :data:`LOG_EVERY` seconds
while a task runs, and one when it ends.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import Progress, ProgressColumn, TaskID

LOG_WIDTH = 1000
"""Columns of a console that is not a terminal: wide enough that no line is broken."""
LOG_EVERY = 30.0
"""Seconds between two lines of a progress bar in a log."""


def make_console(stderr: bool = False, **options: Any) -> Console:
    """A rich Console as on a terminal; one whose output is not a terminal (and that is not
    given a width, by ``width=`` or ``$COLUMNS``) lays out lines :data:`LOG_WIDTH` wide."""
    console = Console(stderr=stderr, **options)
    wide_already = "width" in options or os.environ.get("COLUMNS", "").isdigit()
    if not console.is_terminal and not console.is_jupyter and not wide_already:
        console.width = LOG_WIDTH
    return console


def is_live(console: Console) -> bool:
    """Whether a console can redraw a line in place (a terminal that is not dumb)."""
    return console.is_terminal and not console.is_dumb_terminal


def progress_bar(console: Console, *columns: str | ProgressColumn, transient: bool = False,
                 disable: bool = False) -> Progress | LogProgress:
    """rich's live bar (with ``columns``, or rich's own) on a terminal; :class:`LogProgress`
    lines elsewhere. Both take the same calls: ``add_task``, ``advance``, ``update``,
    ``remove_task``, ``console``, and ``with``."""
    if is_live(console) or disable:
        return Progress(*columns, console=console, transient=transient, disable=disable)
    return LogProgress(console, transient=transient)


T = TypeVar("T")


def track(items: Sequence[T], description: str, console: Console, *, transient: bool = False,
          disable: bool = False) -> Iterator[T]:
    """``items``, one by one, with a :func:`progress_bar` of them (rich's ``track``, but plain
    lines in a log)."""
    with progress_bar(console, transient=transient, disable=disable) as bar:
        task = bar.add_task(description, total=len(items))
        for item in items:
            yield item
            bar.advance(task)


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float
    fields: dict[str, Any]
    started: float = field(default_factory=time.monotonic)
    said: float = field(default_factory=time.monotonic)
    ended: bool = False
    news: bool = False
    """Whether it moved on since its last line."""
    spoken: bool = False
    """Whether it has said a line yet."""


class LogProgress:
    """A progress bar's news as plain lines, for output that is not a terminal: a task's
    description, how far it is (``done/total``, percent) and for how long, and its text
    fields (the training losses). Said every :data:`LOG_EVERY` seconds while the task runs
    (a task done sooner says nothing before its end, so a quick one, or one cut short by an
    error, leaves no line of its start), and once when it completes: always, as a terminal
    keeps a bar's last state; for a ``transient`` bar, which a terminal clears, only after
    lines while it ran."""

    def __init__(self, console: Console, every: float | None = None, transient: bool = False) -> None:
        self.console = console
        self.every = LOG_EVERY if every is None else every
        self.transient = transient
        self._tasks: dict[TaskID, _Task] = {}

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        if kind is None:  # the last word on a task that ran without completing (no total, or stopped early)
            for task in self._tasks.values():
                if task.news and not task.ended and (task.spoken or not self.transient):
                    self._say(task)

    def add_task(self, description: str, total: float | None = 100.0, completed: float = 0,
                 **fields: Any) -> TaskID:
        task_id = TaskID(len(self._tasks))
        self._tasks[task_id] = _Task(description, total, completed, fields)
        return task_id

    def update(self, task_id: TaskID, *, total: float | None = None, completed: float | None = None,
               advance: float | None = None, description: str | None = None, **fields: Any) -> None:
        task = self._tasks[task_id]
        if description is not None and description != task.description:
            task.description, task.ended = description, False
        if total is not None:
            task.total = total
        if completed is not None:
            task.completed = completed
        if advance is not None:
            task.completed += advance
        task.fields.update(fields)
        task.news = True
        if task.total is not None and task.completed >= task.total:
            if not task.ended and (task.spoken or not self.transient):
                self._say(task)
            task.ended = True
        elif time.monotonic() - task.said >= self.every:
            self._say(task)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def remove_task(self, task_id: TaskID) -> None:
        self._tasks.pop(task_id, None)

    def _say(self, task: _Task) -> None:
        task.said, task.news, task.spoken = time.monotonic(), False, True
        done = f"{task.completed:,.0f}"
        if task.total:
            done += f"/{task.total:,.0f} ({min(100, 100 * task.completed / task.total):.0f}%)"
        seconds = int(task.said - task.started)
        extras = "  ".join(str(v) for v in task.fields.values() if str(v))
        line = f"{task.description.strip()}: {done} in {seconds // 60}:{seconds % 60:02d}"
        self.console.print(f"{line}  {extras}" if extras else line, highlight=False, markup=False)


def zoo_command() -> str:
    """How to type zoo in the commands zoo suggests (``zoo sample RUN``), so that they work as
    printed: ``zoo`` where the shell finds this installation's ``zoo``; else the path of its
    script, relative to here when it is below (``.venv/bin/zoo`` after ``make demo``, whose
    venv is not activated); else ``python -m zoo``."""
    script = Path(sys.executable).parent / ("zoo.exe" if os.name == "nt" else "zoo")
    found = shutil.which("zoo")
    if not script.is_file():
        return "zoo" if found else f"{Path(sys.executable).name} -m zoo"
    if found and Path(found).resolve() == script.resolve():
        return "zoo"
    try:
        here = script.absolute().relative_to(Path.cwd())
    except ValueError:
        return str(script.absolute())
    return str(here) if len(here.parts) > 1 else f".{os.sep}{here}"  # with a slash, the shell takes it as a path
