"""Every command, every option, any value: a clean exit code and a one-line message, never a
traceback (a property test: Hypothesis draws the command lines).

Values come from one pool for every option, good ones (a trained run, an image, a data set's
name) among bad ones (negative, huge, not a number, empty, odd characters, paths that are not
there, too long for the file system), so a draw is often valid for some options and not for
others. Work a valid command line starts is cut short after a moment: that it started is
what this test asks."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from zoo.cli import app

from .conftest import TINY, make_image_folder, run_cli

COMMAND = typer.main.get_command(app)
COMMANDS = sorted(name for name, command in COMMAND.commands.items()  # type: ignore[attr-defined]
                  if not hasattr(command, "commands"))
LAUNCHERS = {"--nproc", "--nnodes", "--rdzv-endpoint"}
"""Options that start other processes (torchrun): left out, as their work could outlive the draw."""
SECONDS = 2.0


class TookLong(BaseException):
    """A valid command line's work, stopped: not an Exception, so no handler swallows it."""


@pytest.fixture(scope="module")
def made(tmp_path_factory, cache_dir, mnist) -> tuple[list[str], dict[str, str]]:
    """(the pool of values, a fitting value for each kind of argument)."""
    root = tmp_path_factory.mktemp("pool")
    run = root / "run"
    result = run_cli("train", "dcgan", "--data", "mnist", *TINY, "--steps", "2", "--no-wandb", "--out", str(run))
    assert result.exit_code == 0, result.output
    folder = make_image_folder(root / "shapes", per_class=3)
    image = next(folder.rglob("*.png"))
    good = [str(run), str(image), str(folder), f"folder:{folder}", "mnist", "dcgan", "cgan", "2", "1", "0", "7",
            "cpu", "g_width=4", "16", "0.5", "normal:0,1"]
    bad = ["-1", "-0", "1e309", "nan", "inf", "-inf", "99999999999999999999999", "", " ", "x", "nosuch", "..",
           "/", "/dev/null", "folder:/nonexistent", "folder:", "a=b", "=", "g_width=-1", "batch_size=0",
           "lr=nan", "a\nb", "💥", "x" * 300, str(run / "missing"), str(image) + "/below", "cuda:99", "3x",
           "0:0", "::", "normal:0,-1", "-" * 3, "--", "-h"]
    fitting = {"target": str(run), "model": "dcgan", "data": "mnist", "inputs": str(image), "targets": str(run)}
    return good + bad, fitting


def command_lines(name: str, pool: list[str], fitting: dict[str, str]) -> st.SearchStrategy[list[str]]:
    """zoo NAME, its arguments (mostly ones that fit, so the options are reached) and up
    to six of its options, each with a value from the pool (or any short text)."""
    command = COMMAND.commands[name]  # type: ignore[attr-defined]
    options = [p for p in command.params if p.param_type_name == "option" and p.opts[0] not in LAUNCHERS]
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    value = st.sampled_from(pool) | st.text(max_size=12)

    @st.composite
    def line(draw) -> list[str]:
        args = []
        for argument in arguments:
            good = fitting.get(argument.name or "", fitting["target"])
            args.append(draw(st.sampled_from([good, good, good]) | value))
        if draw(st.integers(0, 9)) == 0:  # now and then one too few, or one too many
            args = args[:-1] if args and draw(st.booleans()) else [*args, draw(value)]
        for option in draw(st.lists(st.sampled_from(options), max_size=6, unique_by=lambda o: o.name)
                           if options else st.just([])):
            flag = draw(st.sampled_from(option.opts + option.secondary_opts))
            args += [flag] if option.is_flag else [flag, draw(value)]
        return [name, *args]

    return line()


@pytest.fixture
def time_limit() -> Iterator[None]:
    def stop(signum, frame):
        raise TookLong

    previous = signal.signal(signal.SIGALRM, stop)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def invoke(args: list[str]) -> tuple[int | None, str, BaseException | None]:
    signal.setitimer(signal.ITIMER_REAL, SECONDS, 0.25)  # again and again, if a handler swallows one
    try:
        result = CliRunner().invoke(app, args, catch_exceptions=True)
    except TookLong:
        return None, "", None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return result.exit_code, result.output, result.exception


@pytest.mark.parametrize("name", COMMANDS)
def test_any_command_line_ends_cleanly(name: str, made, time_limit, tmp_path: Path) -> None:
    pool, fitting = made
    if name == "invert":  # a run, then an image
        fitting = {**fitting, "model": fitting["target"], "target": fitting["inputs"]}
    @settings(max_examples=8, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(command_lines(name, pool, fitting))
    def check(args: list[str]) -> None:
        code, output, exception = invoke(args)
        if os.environ.get("ZOO_PROPERTY_LOG"):
            with open(os.environ["ZOO_PROPERTY_LOG"], "a") as log:
                log.write(f"{code} {args!r} {output.strip().splitlines()[-1:]!r}\n")
        if code is None or isinstance(exception, TookLong):
            return  # valid enough to start working
        assert "Traceback" not in output, f"zoo {args!r}:\n{output}"
        assert exception is None or isinstance(exception, SystemExit), f"zoo {args!r}: {exception!r}\n{output}"
        assert code in (0, 1, 2), f"zoo {args!r} exited {code}:\n{output}"
        if code == 1:
            errors = [line for line in output.splitlines() if line.startswith("error:")]
            assert len(errors) == 1, f"zoo {args!r}: not one error line:\n{output}"
        elif code == 2:  # bad usage: zoo's one line, or click's panel naming the problem
            assert "error:" in output or "Error" in output or "Invalid" in output or "Missing" in output \
                or "No such" in output, f"zoo {args!r}:\n{output}"

    check()
