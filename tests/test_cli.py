from __future__ import annotations

import pytest

import zoo

from .conftest import run_cli

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
