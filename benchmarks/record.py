"""One benchmark run's result file: its figures, with the command, commit, machine and date.

Every figure in docs/results/ is read from one of these files (``python benchmarks/pages.py``
writes the pages from them; a test fails when a page is out of date with its files), so a
figure can always be traced to the run that measured it::

    from record import write_result
    write_result("cgan-digits", {"sevens_read_as_7": 0.968, ...})

writes benchmarks/results/cgan-digits.json, replacing the previous run's (git keeps it). Its
``figures`` are numbers; text passed among them (a command, a protocol's name) is kept apart,
under ``details``, at the same place, and the run's settings are fields of their own.
A benchmark's working files (runs, samples, judges) go to benchmarks/runs/, which git ignores.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
RESULTS = HERE / "results"
"""Committed: one JSON file per benchmark run."""
RUNS = HERE / "runs"
"""Ignored by git: the runs, samples and judges a benchmark makes on the way."""


def machine() -> dict[str, Any]:
    """What ran the benchmark: the CPU and the cores it could use, the GPU if any, the versions."""
    import torch

    from zoo.training import devices

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": devices.cpu_model(), "cores": cores, "gpu": gpu, "torch": torch.__version__,
            "python": platform.python_version(), "system": f"{platform.system()} {platform.release()}"}


def commit() -> str:
    """The commit the benchmark ran on, with ``+changes`` when the working tree differed from it."""
    def git(*args: str) -> str:
        # From the repository's root: the paths below are the root's folders, not benchmarks/'s.
        return subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short=12", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--untracked-files=no", "--", "zoo", "plugins", "pipelines", "benchmarks",
                  ":(exclude)benchmarks/results")
    return f"{head}+changes" if changed else head


def command() -> str:
    """The command line that started this process, as a user would type it again."""
    return " ".join(["python", *(shlex.quote(a) for a in sys.argv)])


_NOTHING = object()


def split_text(value: Any) -> tuple[Any, Any]:
    """``value`` as (its numbers, its text): numbers, booleans and None go to the first, strings
    to the second, dicts and lists are split the same way at every level (a list whose items
    hold both keeps its places in each, None where an item had nothing of that kind). Either
    part is ``_NOTHING`` when there is none."""
    if isinstance(value, str):
        return _NOTHING, value
    if isinstance(value, dict):
        parts = {k: split_text(v) for k, v in value.items()}
        numbers = {k: n for k, (n, _) in parts.items() if n is not _NOTHING}
        text = {k: t for k, (_, t) in parts.items() if t is not _NOTHING}
        return (numbers if numbers or not text else _NOTHING), (text or _NOTHING)
    if isinstance(value, (list, tuple)):
        parts = [split_text(v) for v in value]
        if all(t is _NOTHING for _, t in parts):
            return [n for n, _ in parts], _NOTHING
        if all(n is _NOTHING for n, _ in parts):
            return _NOTHING, [t for _, t in parts]
        return ([None if n is _NOTHING else n for n, _ in parts], [None if t is _NOTHING else t for _, t in parts])
    return value, _NOTHING


def write_result(name: str, figures: dict[str, Any], *, notes: str = "", **fields: Any) -> Path:
    """Write benchmarks/results/NAME.json: ``figures`` (what the docs quote) with the command,
    commit, machine and date of this run; ``fields`` add what else describes the run (its
    settings). The figures are numbers: any text among them (a command, a protocol's name)
    moves to ``details``, at the same place. Returns the path."""
    taken = {"benchmark", "command", "commit", "date", "machine", "figures", "details", "notes"} & set(fields)
    if taken:
        raise ValueError(f"write_result: {', '.join(sorted(taken))} would replace the record's own; name it otherwise")
    RESULTS.mkdir(parents=True, exist_ok=True)
    numbers, text = split_text(figures)
    record = {"benchmark": name, "command": command(), "commit": commit(),
              "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "machine": machine(), **fields, "figures": {} if numbers is _NOTHING else numbers}
    if text is not _NOTHING:
        record["details"] = text
    if notes:
        record["notes"] = notes
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
    print(f"result written: {path.relative_to(HERE.parent)}")
    return path


def read_result(name: str) -> dict[str, Any]:
    return json.loads((RESULTS / f"{name}.json").read_text())
