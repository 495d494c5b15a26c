from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from zoo.records import checkpoint as ckpt_io

from .conftest import TINY, run_cli


@pytest.fixture
def run(mnist, trained) -> Path:
    """A dcgan run in this test's runs folder, where `zoo sample dcgan` looks."""
    return trained("train", "dcgan", *TINY, "--data", "mnist", "--steps", "2", dest="runs/run")


def pixels(folder: Path) -> list[bytes]:
    return [Image.open(p).tobytes() for p in sorted(folder.glob("0*.png"))]


def test_sample_a_run_folder(run: Path) -> None:
    result = run_cli("sample", str(run), "--n", "10", "--out", "out")
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in Path("out").iterdir())
    assert files == [f"{i:04d}.png" for i in range(10)] + ["grid.png"]
    image = Image.open("out/0003.png")
    assert image.size == (28, 28) and image.mode == "L"
    # no labels to draw, but enlarged as a grid with a row per class is: 28 px digits at 56 px
    assert Image.open("out/grid.png").size == (2 * (4 * 30 + 2), 2 * (3 * 30 + 2))


def test_a_checkpoint_file_and_a_model_name_mean_the_same_run(run: Path) -> None:
    assert run_cli("sample", str(run / ckpt_io.FILENAME), "--n", "4", "--out", "by-file").exit_code == 0
    assert run_cli("sample", "dcgan", "--n", "4", "--out", "by-name").exit_code == 0
    assert pixels(Path("by-file")) == pixels(Path("by-name"))


def test_the_model_name_picks_the_latest_run(run: Path) -> None:
    again = run_cli("train", "dcgan", "--no-wandb", *TINY, "--data", "mnist", "--steps", "1", "--seed", "9")
    assert again.exit_code == 0
    result = run_cli("sample", "dcgan", "--n", "2")
    latest = max(Path("runs").iterdir(), key=lambda p: p.stat().st_mtime)
    assert latest != run and f"samples/{latest.name}-seed0" in result.output.replace("\n", "")


def test_seeds_are_reproducible(run: Path) -> None:
    for out, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        assert run_cli("sample", str(run), "--n", "3", "--seed", seed, "--out", out).exit_code == 0
    assert pixels(Path("a")) == pixels(Path("b")) != pixels(Path("c"))


def test_default_output_folder_is_named_after_the_run(run: Path) -> None:
    assert run_cli("sample", str(run), "--n", "2").exit_code == 0
    assert (Path("samples") / f"{run.name}-seed0" / "grid.png").is_file()


def test_the_default_folder_names_what_sets_the_samples_apart(run: Path) -> None:
    for args in ([], ["--truncation", "0.7"], ["--noise", "normal:0,2"], ["--seed", "3"]):
        result = run_cli("sample", str(run), "--n", "2", *args)
        assert result.exit_code == 0, (args, result.output)  # never refused for the folder of another
    assert sorted(p.name for p in Path("samples").iterdir()) == [
        f"{run.name}-normal_0_2-seed0", f"{run.name}-seed0", f"{run.name}-seed3", f"{run.name}-trunc0.7-seed0"]


def test_samples_are_never_written_over_without_force(run: Path) -> None:
    assert run_cli("sample", str(run), "--n", "2", "--out", "out").exit_code == 0
    refused = run_cli("sample", str(run), "--n", "2", "--out", "out", "--seed", "3")
    assert refused.exit_code == 2 and "already holds files" in refused.output
    assert run_cli("sample", str(run), "--n", "2", "--out", "out", "--force").exit_code == 0


def test_no_run_of_that_model_gives_the_train_command() -> None:
    result = run_cli("sample", "dcgan")
    assert result.exit_code == 1
    assert "no dcgan run found" in result.output and "zoo train dcgan --data mnist" in result.output


@pytest.mark.parametrize("args, code, message", [
    (["nowhere/run"], 2, "nowhere/run does not exist; `zoo runs` lists the runs in"),
    (["dcgan-mnist-20261122-101500"], 2, "`zoo runs` lists the runs in"),
    (["dcgn"], 2, "did you mean dcgan"),
    (["dcgan", "--n", "0"], 2, "--n must be a whole number from 1 to 1,000,000, got 0"),
])
def test_bad_targets(args: list[str], code: int, message: str) -> None:
    result = run_cli("sample", *args)
    assert result.exit_code == code and message in result.output


def test_a_damaged_checkpoint_is_one_clear_line(run: Path) -> None:
    path = run / ckpt_io.FILENAME
    path.write_bytes(path.read_bytes()[:100])
    result = run_cli("sample", str(run))
    assert result.exit_code == 1 and "truncated" in result.output and "Traceback" not in result.output
    assert result.output.count("\n") == 1 and "cut off" in result.output
    assert "use another checkpoint" in result.output and "--checkpoint best" in result.output


def test_a_run_folder_without_checkpoint(tmp_path: Path) -> None:
    Path("empty-run").mkdir()
    result = run_cli("sample", "empty-run")
    assert result.exit_code == 1 and "holds no checkpoint.safetensors" in result.output


def test_samples_are_in_range_and_use_eval_mode(run: Path) -> None:
    from zoo.records import runs

    model, _ = runs.load_model(run / ckpt_io.FILENAME)
    images = model.sample(8, generator=torch.Generator().manual_seed(0))
    assert images.min() >= -1 and images.max() <= 1 and model.training
