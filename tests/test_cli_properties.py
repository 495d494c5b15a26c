"""Every command, every option, hostile values: a clean exit and one line, nothing written
on a refusal, and no line that runs long (a property test: Hypothesis draws the lines).

Each option has values of its own kind: a few that fit it, small enough that a valid line
ends in about a second, and hostile ones: inf, nan, huge, negative, zero, empty, odd text;
for paths, one that is missing, a file where a folder belongs, a folder where a file
belongs, a config file of deeply nested JSON or of NaN, a checkpoint whose header nests
deeply. A line takes values that fit for all its options but one (most of the time), which
takes a hostile value, so that each hostile value meets the check meant for it rather than
another option's refusal. Lines are then filled in where the draw left something out (a tiny config, a
64-image subset and three steps for ``zoo train``; ``--features random`` and 16 samples for
``zoo eval``; two optimisation steps for ``zoo invert``), so that a valid line is quick,
never stopped: a line that runs past :data:`LIMIT` seconds fails the test, whatever it was
doing. Only the values that fit are kept small; a hostile value too large to run (an --n of
2**64) must be refused, not run.

Every draw runs in a scratch folder of its own, with copies of the trained runs, images and
files, so a line may write over anything it is given. A usage error (exit 2) must leave that
folder exactly as it was.

``ZOO_PROPERTY_EXAMPLES=N`` draws N lines per command instead of the few CI draws, and
``ZOO_PROPERTY_RANDOM=1`` new ones each time (CI draws the same ones every run);
``ZOO_PROPERTY_LOG=FILE`` appends each line, its exit code and seconds to FILE."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
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
LIMIT = 30.0
"""Seconds a line may run. A valid line here ends in about one; one that runs this long is a
failure (a length, a count or a size that should have been refused)."""
EXAMPLES = {"train": 30, "sample": 15, "interpolate": 12, "explore": 12, "invert": 10, "prep": 12}
"""Lines drawn per command in CI (8 for the rest)."""

TINY_AE = ["--set", "encoder_width=4", "--set", "decoder_width=4", "--set", "latent_dim=4"]
TINY_SR = ["--set", "blocks=1", "--set", "width=4", "--set", "crop=16", "--set", "scale=2"]
TINY_CONFIGS = {"dcgan": TINY[:6], "cgan": [*TINY[:6], "--set", "embed_dim=4"], "ae": TINY_AE}


@dataclass(frozen=True)
class Place:
    """A path in the draw's own scratch folder, filled in when the line runs: ``prefix``
    then the place ``name`` then ``tail``."""

    name: str
    tail: str = ""
    prefix: str = ""


# -- values ------------------------------------------------------------------------------------

ODD = ["", " ", "x", "💥", "a\nb", "x" * 300, "--", "-h", "%s", "{}", "\x00"]
BAD_INTS = ["-1", "0", "-0", "2147483648", "9223372036854775808", "18446744073709551616",
            "-9223372036854775809", "9" * 30, "9" * 5000, "1.5", "1e3", "nan", "inf", "0x10"]
"""Zero and below, huge (past every bound zoo sets), and what is not an integer."""
BAD_FLOATS = ["nan", "-nan", "NaN", "inf", "-inf", "Infinity", "1e309", "-1e309", "1e308", "-1", "0", "-0",
              "5e-324", "1e-300", "9" * 400, "1e12"]
"""Not numbers, infinities, overflow to infinity, huge, negative, zero, tiny."""
MISSING, NEW = Place("scratch", "/missing/deeper"), Place("scratch", "/new")


@dataclass(frozen=True)
class Values:
    """An option's (or argument's) values: some that fit it, and hostile ones for it."""

    good: tuple = ()
    bad: tuple = ()

    def fitting(self) -> st.SearchStrategy:
        return st.sampled_from(self.good) if self.good else self.hostile()

    def hostile(self) -> st.SearchStrategy:
        """One of its own hostile values, odd text, or any short text."""
        return st.one_of(st.sampled_from(self.bad) if self.bad else st.nothing(), st.sampled_from(ODD),
                         st.text(max_size=8))


def texts(*good: str | Place, bad: tuple = ()) -> Values:
    return Values(good, bad)


def ints(*good: str) -> Values:
    return Values(good, tuple(BAD_INTS))


def floats(*good: str) -> Values:
    return Values(good, tuple(BAD_FLOATS))


def paths(*good: str | Place) -> Values:
    """Paths: ones that fit, then a missing one, a file, a folder, one below a file, a device."""
    return Values(good, (MISSING, Place("file"), Place("folder"), Place("image", "/below"), "", "/dev/null",
                         "x" * 300))


SEEDS = texts("0", "7", "4294967295", bad=tuple([*BAD_INTS, "4294967296"]))
RUNS = (Place("runs", "/dcgan"), "dcgan", Place("runs", "/dcgan/checkpoint.safetensors"))
CLASSES = texts(bad=("7", "0", "-1", "10", "99999999999999999999999", "nan", ",", "circle"))
"""The pool's models are not class-conditional: any class is refused."""
DATA = texts("mnist", Place("folder", prefix="folder:"),
             bad=("nosuch", "folder:/nonexistent", "folder:", "paired:", "unpaired:x", "captions:",
                  "mnist:", "folder:/dev/null"))
OUT = paths(NEW, Place("scratch", "/new/deeper"), Place("runs", "/dcgan"), Place("image"), Place("folder"))
CONFIG_FILES = ("good.toml", "good.json", "deep.json", "nan.json", "inf.toml", "huge.toml", "list.json", "bad.txt")
CONFIGS = Values((Place("config-good.toml"), Place("config-good.json")),
                 (*(Place(f"config-{name}") for name in CONFIG_FILES[2:]), *paths().bad))
LATENTS = Values((Place("latent"),), (Place("deep"), Place("runs", "/dcgan/checkpoint.safetensors"), *paths().bad))
RESUMABLE = Values(RUNS, (Place("deep"), Place("runs", "/dcgan/run.json"), Place("runs"), "ae", "nosuch",
                          *paths().bad))

OPTIONS: dict[str, Values] = {
    "--seed": SEEDS, "--device": texts("cpu", "auto", bad=("cuda:99", "mps", "tpu", "cpu:x", "cuda:-1")),
    "--out": OUT, "--checkpoint": texts("latest", bad=("best",)), "--class": CLASSES, "--digit": CLASSES,
    "--from-class": CLASSES, "--to-class": CLASSES, "--n": ints("1", "3"), "--truncation": floats("0.5", "1"),
    "--noise": texts("normal:0,1", "uniform:-1,1", bad=("normal:0,-1", "normal:nan,1", "uniform:1e309,1",
                                                          "gamma:0,0", "laplace", "x:1,2", "normal:0,inf")),
    "--text": texts(bad=("a dark circle",)), "--batch-size": ints("16", "2"), "--data": DATA,
    "--size": texts("16", "28", bad=("0", "-1", "7", "1025", "99999999999999999999", "3x", "16x", "x16", "nan",
                                        "inf", "16x99999", "1e309", "full")),
    "--channels": ints("1", "3"), "--data-dir": paths(Place("folder")), "--classes": CLASSES,
    "--subset": texts("0:64", "::200", "10:40", bad=("0:0", "::", "1:2:0", "1:2:-1", "1e309:",
                                                     "99999999999999999999:", "a:b", "0:18446744073709551616")),
    "--direction": texts(bad=("AtoB", "BtoA")), "--epochs": ints("1"), "--steps": ints("1", "3"),
    "--kimg": floats("0.016", "0.03"), "--minutes": floats("0.001"),
    "--set": texts("lr=0.001", "g_width=4", "beta1=0.9", "ema=0.5",
                   bad=("lr=nan", "lr=inf", "lr=1e309", "lr=-1", "g_width=99999999999999", "g_width=2147483647",
                        "g_width=100000", "batch_size=0", "latent_dim=-1", "beta1=nan", "a=b", "=", "lr=", "lr",
                        "noise=normal:0,nan", "leaky_slope=inf", "ema=nan", "label_noise=nan", "beta1=1e309")),
    "--config": CONFIGS, "--resume": RESUMABLE, "--init-from": RESUMABLE,
    "--precision": texts("fp32", "bf16", bad=("fp16", "fp8")), "--clip-grad": floats("1", "0"),
    "--preview-every": ints("1", "2"), "--eval-every": ints("1"), "--checkpoint-every": ints("1"),
    "--eval-features": texts("random", bad=("classifier:x", "inception:", "nosuch",
                                            Place("image", prefix="inception:"))),
    "--text-encoder": Values((), ("/", Place("folder"), *paths().bad)),  # the pool's models read no text
    "--wandb": texts("auto", "offline", "off", "online"),
    "--features": texts("random", bad=("inception:", "nosuch", "classifier:x", Place("image", prefix="inception:"))),
    "--split": texts("heldout", "test", "train"), "--nll-samples": ints("2"), "--nll-images": ints("2"),
    "--from-seed": texts("1", "1,2", bad=("-1", "18446744073709551616", "1,,2", "1,-2", "99999999999999999999")),
    "--to-seed": texts("2", "2,3", bad=("-1", "18446744073709551616", "4294967296")),
    "--from-latent": LATENTS, "--to-latent": LATENTS, "--latent": LATENTS,
    "--from-image": paths(Place("image")), "--to-image": paths(Place("image")),
    "--method": texts("lerp", "slerp"), "--from-text": texts(bad=("a dark circle",)),
    "--to-text": texts(bad=("a light square",)), "--invert-steps": ints("1", "2"), "--restarts": ints("1", "2"),
    "--lr": floats("0.05"), "--ssim-weight": floats("0.1", "0"), "--prior-weight": floats("0.001", "0"),
    "--dim": ints("0", "3"), "--dims": ints("2"),
    "--range": texts("-3,3", "0,1", bad=("3,-3", "nan,1", "-inf,inf", "1e309,1e310", "1", "a,b", "1,1")),
    "--scale": ints("2"), "--tile": ints("16", "128"), "--dir": paths(Place("runs"), "/"),
    "--model": texts("dcgan", "nosuch"), "--metric": texts("loss_g", "fd", "nosuch"),
    "--host": texts("127.0.0.1", "localhost", "::1", bad=("0.0.0.0", "::", "example.com", "10.0.0.1")),
    "--port": ints("7860"), "--auth": texts("me:secret", bad=("me", ":", "me:", ":secret")),
    "--cache-mb": ints("64"), "--queue": ints("8"), "--max-upload-mb": ints("1"), "--max-upload-pixels": ints("1000"),
}
"""Each option's values, by its name; one zoo adds later draws from :data:`ANY`."""
PER_COMMAND: dict[tuple[str, str], Values] = {
    ("interpolate", "--steps"): ints("2", "3"), ("explore", "--steps"): ints("2", "3"),
    ("eval", "--data"): texts(Place("folder", prefix="folder:"), bad=("mnist", *DATA.bad)),  # mnist: 10,000 to read
    ("invert", "--steps"): ints("1", "2"), ("eval", "--n"): ints("6", "16"), ("eval", "--batch-size"): ints("8"),
}
ARGUMENTS: dict[tuple[str, str], Values] = {
    ("train", "model"): texts("dcgan", "dcgan", "cgan", "ae", bad=("pix2pix", "stackgan", "nosuch")),
    ("prep", "data"): DATA, ("info", "model"): texts("dcgan", "stackgan", bad=("nosuch",)),
    ("invert", "model"): texts(*RUNS, bad=("ae", "nosuch")),
    ("invert", "target"): paths(Place("image")),
    ("upscale", "target"): texts(Place("runs", "/sr"), "srresnet", bad=("dcgan",)),
    ("translate", "target"): texts(Place("runs", "/sr"), bad=RUNS),
    ("reconstruct", "target"): texts(Place("runs", "/ae"), "ae", bad=("dcgan",)),
    ("compare", "targets"): texts(Place("runs", "/dcgan"), Place("runs", "/ae"), "ae", Place("runs", "/sr")),
}
"""Each command's arguments; the rest take a run (:data:`RESUMABLE`), and ``inputs`` images."""
ANY = Values((), tuple(dict.fromkeys([*BAD_INTS, *BAD_FLOATS])))
"""An option no table names: any of the hostile values."""


def values_of(name: str, param) -> Values:
    if param.param_type_name == "argument":
        if (name, param.name) in ARGUMENTS:
            return ARGUMENTS[name, param.name]
        return paths(Place("image"), Place("folder")) if param.name == "inputs" else RESUMABLE
    return PER_COMMAND.get((name, param.opts[0])) or OPTIONS.get(param.opts[0]) or ANY


def given_flags(args: list) -> set[str]:
    return {a for a in args if isinstance(a, str) and a.startswith("--")}


def fill_in(name: str, args: list, draw) -> list:
    """What makes a valid line quick, where the draw left it out: a tiny run, few samples."""
    flags = given_flags(args)

    def unless(wanted: set[str], *extra: str | Place) -> list:
        return [] if flags & wanted else list(extra)

    if name == "train":
        if "--compile" in flags and "--dry-run" not in flags:  # minutes of compiling: only planned
            args = [a for a in args if a != "--compile"]
        extra: list = unless({"--steps", "--epochs", "--kimg", "--minutes"}, "--steps", "3")
        extra += unless({"--wandb", "--no-wandb"}, "--no-wandb")
        if "--eval-every" in flags:
            extra += unless({"--eval-features"}, "--eval-features", "random")
        if "--resume" not in flags:  # a resumed run keeps its data and config: those would be refused
            extra += TINY_CONFIGS.get(str(args[1]), [])
            extra += unless({"--batch-size"}, "--batch-size", "16") + unless({"--subset"}, "--subset", "0:64")
            if draw(st.integers(0, 9)):  # now and then no --data at all
                extra += unless({"--data"}, "--data", "mnist")
        return [*args, *extra]
    if name == "eval":
        return [*args, *unless({"--features"}, "--features", "random"), *unless({"--n"}, "--n", "16")]
    if name == "invert":
        return [*args, *unless({"--steps"}, "--steps", "2"), *unless({"--restarts"}, "--restarts", "1")]
    if name == "interpolate":
        ends = {f"--{side}-{kind}" for side in ("from", "to") for kind in ("seed", "latent", "image", "text")}
        return [*args, *unless({"--invert-steps"}, "--invert-steps", "2"), *unless({"--restarts"}, "--restarts", "1"),
                *unless(ends, "--from-seed", "1", "--to-seed", "2")]
    if name == "explore":
        return [*args, *unless({"--dim", "--dims"}, "--dim", "0")]
    return args


def command_lines(name: str) -> st.SearchStrategy[list]:
    """zoo NAME, its arguments and up to five of its options, values that fit them but (most
    of the time) one hostile value, so that it meets the check meant for it; now and then an
    argument too few or too many. Then :func:`fill_in`."""
    command = COMMAND.commands[name]  # type: ignore[attr-defined]
    params = [p for p in command.params if p.param_type_name == "argument" or p.opts[0] not in LAUNCHERS]
    arguments = [p for p in params if p.param_type_name == "argument"]

    @st.composite
    def line(draw) -> list:
        chosen = draw(st.lists(st.sampled_from([p for p in params if p.param_type_name == "option"]), max_size=5,
                               unique_by=lambda o: o.name)) if len(params) > len(arguments) else []
        valued = [p for p in [*arguments, *chosen] if not getattr(p, "is_flag", False)]
        hostile = draw(st.sampled_from(valued)) if valued and draw(st.integers(0, 4)) else None
        args: list = []
        for param in [*arguments, *chosen]:
            if getattr(param, "is_flag", False):
                args.append(draw(st.sampled_from(param.opts + param.secondary_opts)))
                continue
            values = values_of(name, param)
            if param is hostile:
                value = draw(values.hostile())
            elif not values.good:  # no value fits it here (a class, for models without classes)
                continue
            elif param.nargs == -1:  # several: two or three of them
                value = draw(st.lists(values.fitting(), min_size=2, max_size=3, unique=True))
            else:
                value = draw(values.fitting())
            if param.param_type_name == "argument":
                args += value if isinstance(value, list) else [value]
            else:
                args += [max(param.opts, key=len), value]
        if draw(st.integers(0, 19)) == 0:  # now and then an argument too few, or one too many
            args = args[1:] if arguments and draw(st.booleans()) else [draw(RESUMABLE.fitting()), *args]
        return fill_in(name, [name, *args], draw)

    return line()


# -- the scratch folder of each draw -------------------------------------------------------------

@pytest.fixture(scope="module")
def made(tmp_path_factory, cache_dir, mnist) -> Path:
    """Trained runs (dcgan, ae, srresnet), images and files, to copy for each draw."""
    root = tmp_path_factory.mktemp("pool")
    runs = root / "runs"
    for name, args in (("dcgan", ["dcgan", "--data", "mnist", *TINY, "--steps", "2"]),
                       ("ae", ["ae", "--data", "mnist", *TINY_AE, "--batch-size", "16", "--steps", "2"])):
        args += ["--subset", "0:300"]  # a small held-out split: zoo eval's figures in a moment
        result = run_cli("train", *args, "--no-wandb", "--out", str(runs / name))
        assert result.exit_code == 0, result.output
    photos = make_image_folder(root / "photos", per_class=2, classes=("p",))
    result = run_cli("train", "srresnet", "--data", f"folder:{photos}", *TINY_SR, "--batch-size", "2", "--steps", "1",
                     "--no-wandb", "--out", str(runs / "sr"))
    assert result.exit_code == 0, result.output
    shutil.rmtree(photos)
    folder = make_image_folder(root / "folder", per_class=3)
    shutil.copy(next(folder.rglob("*.png")), root / "image.png")
    (root / "file.txt").write_text("not an image, not a folder\n")
    deep = 100_000
    configs = {"good.toml": "lr = 0.001\n", "good.json": json.dumps({"lr": 0.001}), "inf.toml": "lr = inf\n",
               "deep.json": "[" * deep + "]" * deep, "nan.json": '{"lr": NaN}', "huge.toml": f"g_width = {10**30}\n",
               "list.json": "[1, 2]", "bad.txt": "lr = 1\n"}
    for file, body in configs.items():
        (root / f"config-{file}").write_text(body)
    result = run_cli("interpolate", str(runs / "dcgan"), "--from-seed", "1", "--to-seed", "2", "--steps", "2",
                     "--out", str(root / "walk"))
    assert result.exit_code == 0, result.output
    shutil.copy(root / "walk" / "latents.safetensors", root / "latent.safetensors")
    shutil.rmtree(root / "walk")
    deep_header(runs / "dcgan" / "checkpoint.safetensors", root / "deep.safetensors")
    return root


def deep_header(source: Path, out: Path, depth: int = 100_000) -> None:
    """A copy of a checkpoint whose header's config nests ``depth`` lists deep."""
    from safetensors.torch import load_file, save_file

    from zoo.records import checkpoint as ckpt_io

    header = ckpt_io.safe_header(source)
    assert header is not None
    text = header["zoo"].replace('"config": {', '"config": {"deep": ' + "[" * depth + "]" * depth + ", ", 1)
    save_file(load_file(str(source)), str(out), metadata={"zoo": text})


PLACES = {"runs": "runs", "image": "image.png", "folder": "folder", "file": "file.txt", "latent": "latent.safetensors",
          "deep": "deep.safetensors", **{f"config-{name}": f"config-{name}" for name in (
              "good.toml", "good.json", "deep.json", "nan.json", "inf.toml", "huge.toml", "list.json", "bad.txt")}}


def scratch_of(made: Path, under: Path) -> Path:
    scratch = under / f"draw{len(list(under.iterdir()))}"
    shutil.copytree(made, scratch)
    return scratch


def filled(args: list, scratch: Path) -> list[str]:
    out = []
    for arg in args:
        if isinstance(arg, Place):
            where = scratch if arg.name == "scratch" else scratch / PLACES[arg.name]
            arg = f"{arg.prefix}{where}{arg.tail}"
        out.append(arg)
    return out


def contents(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``folder`` with its size and time of change (a run's lock file left
    out: taking the lock, which a refusal may do, writes the holder's process id into it)."""
    return {str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns) if p.name != ".lock" else (0, 0)
            for p in folder.rglob("*")}


class TookLong(BaseException):
    """A line that ran past LIMIT: not an Exception, so no handler swallows it."""


@pytest.fixture
def time_limit() -> Iterator[None]:
    def stop(signum, frame):
        raise TookLong

    previous = signal.signal(signal.SIGALRM, stop)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def invoke(args: list[str]) -> tuple[int | None, str, BaseException | None]:
    signal.setitimer(signal.ITIMER_REAL, LIMIT, 0.25)  # again and again, if a handler swallows one
    try:
        result = CliRunner().invoke(app, args, catch_exceptions=True)
    except TookLong:
        return None, "", None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    if isinstance(result.exception, TookLong):
        return None, result.output, None
    return result.exit_code, result.output, result.exception


@pytest.mark.parametrize("name", COMMANDS)
def test_any_command_line_ends_cleanly(name: str, made: Path, time_limit, tmp_path: Path, monkeypatch) -> None:
    draws = tmp_path / "draws"
    draws.mkdir()
    examples = int(os.environ.get("ZOO_PROPERTY_EXAMPLES", 0)) or EXAMPLES.get(name, 8)
    if name == "serve":  # a line that passes every check would serve until stopped: it is started, not run
        import zoo.serve as serving

        started: list = []
        monkeypatch.setattr(serving, "launch", lambda settings, block=True, quiet=False: started.append(settings))

    @settings(max_examples=examples, deadline=None, derandomize=not os.environ.get("ZOO_PROPERTY_RANDOM"),
              database=None, suppress_health_check=list(HealthCheck))
    @given(command_lines(name))
    def check(drawn: list) -> None:
        scratch = scratch_of(made, draws)
        monkeypatch.chdir(scratch)
        monkeypatch.setenv("ZOO_RUNS_DIR", str(scratch / "runs"))
        args = filled(drawn, scratch)
        before = contents(scratch)
        started = time.perf_counter()
        code, output, exception = invoke(args)
        seconds = time.perf_counter() - started
        if os.environ.get("ZOO_PROPERTY_LOG"):
            with open(os.environ["ZOO_PROPERTY_LOG"], "a") as log:
                log.write(f"{code} {seconds:.2f}s {args!r} {output.strip().splitlines()[-1:]!r}\n")
        assert code is not None, f"zoo {args!r} ran past {LIMIT:g} s: a valid line here ends in a moment"
        assert "Traceback" not in output, f"zoo {args!r}:\n{output}"
        assert exception is None or isinstance(exception, SystemExit), f"zoo {args!r}: {exception!r}\n{output}"
        assert code in (0, 1, 2), f"zoo {args!r} exited {code}:\n{output}"
        if code == 1:
            errors = [line for line in output.splitlines() if line.startswith("error:")]
            assert len(errors) == 1, f"zoo {args!r}: not one error line:\n{output}"
        elif code == 2:  # bad usage: zoo's one line, or click's panel naming the problem; nothing written
            assert "error:" in output or "Error" in output or "Invalid" in output or "Missing" in output \
                or "No such" in output, f"zoo {args!r}:\n{output}"
            after = contents(scratch)
            assert after == before, f"zoo {args!r} refused ({output.strip().splitlines()[-1:]}) but wrote " \
                f"{sorted(set(after.items()) ^ set(before.items()))[:5]}"
        monkeypatch.chdir(draws)
        shutil.rmtree(scratch, ignore_errors=True)

    check()
