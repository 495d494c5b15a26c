"""What zoo prints where the output is not a terminal (a log, CI), and the commands it suggests."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from zoo.display import console as zoo_console
from zoo.display.console import LOG_WIDTH, LogProgress, make_console, progress_bar, zoo_command

from .conftest import TINY, run_cli


def test_a_console_that_is_not_a_terminal_does_not_break_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    log = io.StringIO()
    console = make_console(file=log)
    assert not console.is_terminal and console.width == LOG_WIDTH
    line = "step 1,560/1,560 (epoch 22.3, 199,680 images)  " + "  ".join(f"loss_{i} 0.{i}23" for i in range(20))
    console.print(line)
    assert log.getvalue() == line + "\n"  # one line, as long as it is, however rich would lay it out
    assert make_console(file=io.StringIO(), width=60).width == 60  # a width asked for is kept


def test_zoo_list_in_a_log_keeps_each_summary_whole() -> None:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    result = subprocess.run([sys.executable, "-m", "zoo", "list"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    from zoo.registry import registry

    for name in ("dcgan", "pix2pix", "stackgan"):
        summary = registry().get(name).summary
        assert summary in result.stdout, f"{name}'s summary is broken across lines:\n{result.stdout}"


def test_progress_in_a_log_is_plain_lines_now_and_then_and_at_the_end() -> None:
    log = io.StringIO()
    console = make_console(file=log)
    bar = progress_bar(console)
    assert isinstance(bar, LogProgress)
    with bar:  # a quick task: no line of its start, one of its end
        task = bar.add_task("upscaling x4", total=300)
        for _ in range(300):
            bar.advance(task)
    assert log.getvalue().splitlines() == ["upscaling x4: 300/300 (100%) in 0:00"]
    log.truncate(0)
    log.seek(0)
    with progress_bar(console, transient=True) as quiet:  # a quick transient one leaves nothing, as on a terminal
        quiet.advance(quiet.add_task("drawing 64 samples", total=2), 2)
    assert log.getvalue() == ""
    with LogProgress(console, every=0, transient=True) as often:  # a line each time the interval has passed
        task = often.add_task("epoch 1/1", total=3, metrics="")
        for step in range(1, 4):
            often.update(task, completed=step, metrics=f"loss_d 0.{step}")
    assert log.getvalue().splitlines() == ["epoch 1/1: 1/3 (33%) in 0:00  loss_d 0.1",
                                           "epoch 1/1: 2/3 (67%) in 0:00  loss_d 0.2",
                                           "epoch 1/1: 3/3 (100%) in 0:00  loss_d 0.3"]


def test_training_in_a_log_ends_on_a_clean_progress_line(mnist) -> None:
    result = run_cli("train", "dcgan", "--no-wandb", *TINY, "--data", "mnist", "--subset", "0:64", "--steps", "4",
                     "--out", "run")
    assert result.exit_code == 0, result.output
    assert "━" not in result.output and "…" not in result.output  # no bar drawn, nor cut short
    assert re.search(r"^epoch 1/1: 4/4 \(100%\) in \d+:\d\d  loss_d \d", result.output, re.MULTILINE), result.output


def test_suggested_commands_work_as_printed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "zoo"
    assert script.is_file()  # the test venv has zoo's console script
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # the venv not activated, as after make demo
    where = zoo_command()
    assert where == str(script.absolute())  # this test runs below the venv's folder: the whole path
    monkeypatch.chdir(script.parent.parent.parent)
    assert zoo_command() == str(Path(script.parent.parent.name) / "bin" / "zoo")  # .venv/bin/zoo from the clone
    assert subprocess.run([*zoo_command().split(), "--version"], capture_output=True).returncode == 0
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}/usr/bin:/bin")  # activated
    assert zoo_command() == "zoo"


def test_the_end_of_training_suggests_a_command_that_works(mnist, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    result = run_cli("train", "dcgan", "--no-wandb", *TINY, "--data", "mnist", "--subset", "0:64", "--steps", "1",
                     "--out", "run")
    assert result.exit_code == 0, result.output
    assert f"Samples: {zoo_console.zoo_command()} sample run" in result.output
