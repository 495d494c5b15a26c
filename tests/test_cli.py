from __future__ import annotations

import fnmatch
import re

import click
import pytest
import typer.main

import zoo
from zoo.cli import app

from .conftest import REPO, run_cli

COMMANDS = ["list", "info", "prep", "train", "sample"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.exit_code == 0
    assert "Examples" in result.output and f"zoo {command}" in result.output


def test_top_level_help_lists_the_commands() -> None:
    result = run_cli("--help")
    assert result.exit_code == 0
    assert all(command in result.output for command in COMMANDS)


def test_version() -> None:
    assert zoo.__version__ in run_cli("--version").output


def test_list_shows_a_table_of_models() -> None:
    result = run_cli("list")
    assert result.exit_code == 0
    for word in ("dcgan", "tiny", "latent", "GAN", "zoo-gan (built-in)", "zoo-tiny"):
        assert word in result.output


def test_info_shows_config_defaults_and_paper() -> None:
    result = run_cli("info", "dcgan")
    assert result.exit_code == 0
    assert "arXiv:1511.06434" in result.output and "real_label" in result.output and "0.0002" in result.output


def test_errors_are_one_line_and_verbose_shows_the_traceback() -> None:
    quiet = run_cli("info", "nope")
    assert quiet.exit_code == 2 and quiet.output.startswith("error: unknown model 'nope'")
    assert len(quiet.output.strip().splitlines()) == 1
    with pytest.raises(zoo.UsageError):
        run_cli("--verbose", "info", "nope")


def test_usage_errors_from_the_parser_exit_2() -> None:
    assert run_cli("train", "dcgan", "--epochs", "many").exit_code == 2
    assert run_cli("train", "dcgan", "--data", "mnist", "--wandb", "sometimes").exit_code == 2


def test_top_level_help_groups_the_commands_in_the_order_a_newcomer_needs_them() -> None:
    output = run_cli("--help").output
    panels = ["Start: models, data, training", "Use a trained model", "The latent space", "Measure and compare runs"]
    assert [output.index(panel) for panel in panels] == sorted(output.index(panel) for panel in panels)
    start = output[output.index(panels[0]):output.index(panels[1])]
    assert all(f" {command} " in start for command in ("list", "info", "prep", "train"))
    assert output.index(" train ") < output.index(" sample ") < output.index(" eval ")


ALL_COMMANDS = ["list", "info", "prep", "train", "sample", "translate", "upscale", "reconstruct", "interpolate",
                "invert", "explore", "eval", "runs", "compare", "report"]


@pytest.mark.parametrize("command", ALL_COMMANDS)
def test_help_says_what_to_type_never_a_python_type(command: str) -> None:
    output = run_cli(command, "--help").output
    assert "Examples" in output
    found = re.findall(r"<(?:bool|str|int|float|path|list\[\w+\])>", output)
    assert not found, f"zoo {command} --help shows Python types: {found}"


def test_train_help_groups_its_options_with_metavars() -> None:
    output = run_cli("train", "--help").output
    for panel in ("Data", "How long", "Model and config", "The run folder", "Watching it learn", "Device and speed"):
        assert f"─ {panel} ─" in output, panel
    assert re.search(r"--set\s+KEY=VALUE", output) and re.search(r"--steps\s+N\b", output)
    assert re.search(r"--out\s+-o\s+PATH", output) and re.search(r"--subset\s+START:STOP\[:STEP\]", output)


def params(command: str) -> dict[str, click.Parameter]:
    found = typer.main.get_command(app).commands[command].params  # type: ignore[attr-defined]
    return {p.opts[0] if p.param_type_name == "option" else f"argument {p.metavar}": p for p in found}


def test_the_options_commands_share_are_defined_once() -> None:
    """One spelling and one help for each meaning, in every command that takes it."""
    helps: dict[str, set[str]] = {}
    for command in ALL_COMMANDS:
        for name, param in params(command).items():
            if getattr(param, "hidden", False):
                continue  # an old spelling kept working, not offered
            if name in ("--device", "--force", "--checkpoint", "--wandb", "--no-wandb", "--class", "--digit"):
                helps.setdefault(name, set()).add(param.help or "")
            if name == "--out":
                assert (param.help or "").startswith("Where to write (default "), command
    for name, texts in helps.items():
        if name == "--force":  # prep's: the cache is what it writes over
            texts.discard(params("prep")["--force"].help or "")
        assert len(texts) == 1, f"{name} is explained {len(texts)} ways: {texts}"
    runs_taken = [c for c in ALL_COMMANDS if "argument RUN" in params(c)]
    assert set(runs_taken) >= {"sample", "translate", "upscale", "reconstruct", "interpolate", "invert", "explore",
                               "eval", "report"}
    assert len({params(c)["argument RUN"].help for c in runs_taken}) == 1
    assert {c for c in ALL_COMMANDS if "--checkpoint" in params(c)} >= {
        "sample", "translate", "upscale", "reconstruct", "interpolate", "invert", "explore", "eval"}


@pytest.mark.parametrize("command", ["train", "eval"])
def test_every_command_that_logs_takes_the_same_wandb_values(command: str) -> None:
    assert params(command)["--wandb"].metavar == "auto|online|offline|off" and "--no-wandb" in params(command)
    assert run_cli(command, "nowhere", "--wandb", "sometimes").exit_code == 2
    both = run_cli(command, "nowhere", "--wandb", "online", "--no-wandb")
    assert both.exit_code == 2 and "contradict" in both.output
    for same in (["--wandb", "off"], ["--no-wandb"], ["--no-wandb", "--wandb", "off"]):
        result = run_cli(command, "nowhere", *same)  # taken: what is left to refuse is the model
        assert result.exit_code == 2 and "'nowhere'" in result.output and "contradict" not in result.output


def test_wandb_off_is_one_spelling_of_no_wandb(mnist) -> None:
    result = run_cli("train", "dcgan", "--wandb", "off", "--data", "mnist", "--dry-run")
    assert result.exit_code == 0, result.output


def test_force_writes_over_files_and_replacing_a_run_has_its_own_name() -> None:
    train = params("train")
    assert "--replace" in train and "everything in the folder" in (train["--replace"].help or "")
    assert train["--force"].hidden  # the old spelling still works, and is no longer offered
    assert "Delete" not in (params("sample")["--force"].help or "")


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether a path under the repository root matches a .gitignore line (the forms it uses)."""
    parts = path.split("/")
    for pattern in patterns:
        anchored, folder, bare = pattern.startswith("/"), pattern.endswith("/"), pattern.strip("/")
        candidates = parts[:1] if anchored else parts
        for i, part in enumerate(candidates):
            if fnmatch.fnmatch(part, bare) and (not folder or i < len(parts) - 1):
                return True
    return False


def test_what_commands_write_here_by_default_is_ignored_by_git() -> None:
    patterns = [line.strip() for line in (REPO / ".gitignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for path in ("samples/run-seed0/grid.png", "translations/run-AtoB/a.png", "upscaled/run/a.png",
                 "reconstructions/run/sheet.png", "interpolations/run-slerp/strip.png", "inversions/a-run/a.png",
                 "explorations/run-seed0/explore.png", "compare-20261206-101500.png", "runs/x/run.json"):
        assert ignored(path, patterns), path
    assert not ignored("docs/images/dcgan-mnist-samples.png", patterns)
