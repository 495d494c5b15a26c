"""zoo runs, zoo compare and zoo report, over run folders written by hand (and one real run)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from zoo.cli.base import app
from zoo.records import runs

from .conftest import TINY

PROTOCOL = "fid10k/classifier:mnist@ab12cd34/heldout"
DETAIL = {"extractor": "classifier", "extractor_hash": "ab12cd34ef", "generated": 10000, "reference": 1000,
          "split": "heldout", "resize": "none (28x28)", "data": "mnist"}


def cli(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def fake_run(name: str, *, status: str = "finished", created: str = "2026-11-20T10:00:00", step: int = 1560,
             evaluation: dict[str, Any] | None = None, best: dict[str, Any] | None = None,
             metrics: list[dict[str, Any]] | None = None, root: Path = Path("runs"), **info: Any) -> Path:
    """A run folder as training and zoo eval leave it, written by hand: run.json, metrics.jsonl,
    losses.png and eval.json (each only when asked for)."""
    run = root / name
    run.mkdir(parents=True)
    record = {"model": "dcgan", "plugin_version": "1", "data": "mnist", "seed": 0, "device": "cpu",
              "precision": "fp32", "clip_grad": 0.0, "total_steps": 1560, "total_images": 0, "status": status,
              "created": created, "step": step, "images": step * 128, "warnings": [],
              "config": {"batch_size": 128, "latent_dim": 100, "loss": "bce", "real_label": 0.9}, **info}
    if best:
        record["best"] = best
    (run / "run.json").write_text(json.dumps(record), encoding="utf-8")
    if metrics is not None:
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in metrics), encoding="utf-8")
        Image.new("RGB", (40, 30), (200, 60, 60)).save(run / "losses.png")
    if evaluation is not None:
        (run / "eval.json").write_text(json.dumps(evaluation), encoding="utf-8")
    return run


def losses(steps: int, scale: float = 1.0, fd_every: int = 0) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for step in range(1, steps + 1):
        rows.append({"step": step, "epoch": step // 10, "loss_d": scale / step, "loss_g": scale * step / 100})
        if fd_every and step % fd_every == 0:
            rows.append({"step": step, "fd": 100.0 / step, "ssim_train": 0.01 * step})
    return rows


def evaluation(fid: float, protocol: str = PROTOCOL, **figures: Any) -> dict[str, Any]:
    return {"fid": fid, "kid": 0.004, "kid_std": 0.001, "precision": 0.8, "recall": 0.7, **figures,
            "protocol": protocol, "protocol_detail": {"name": protocol, **DETAIL},
            "checkpoint": {"which": "latest", "step": 1560, "path": "runs/x/checkpoint.safetensors"},
            "seconds": 12.3, "evaluated": "2026-11-23T22:00:00", "zoo_version": "0.1.0"}


# -- zoo runs -------------------------------------------------------------------------------------

def test_runs_lists_status_and_best_figures_and_skips_what_is_not_a_run() -> None:
    fake_run("dcgan-done", evaluation=evaluation(12.34), best={"step": 1200, "fd": 15.2, "protocol": "fd1k"},
             metrics=losses(5))
    fake_run("dcgan-killed", status="running", created="2026-11-21T10:00:00", step=300)
    live = fake_run("dcgan-live", status="running", created="2026-11-22T10:00:00", step=40)
    fake_run("wgan-failed", status="failed: RuntimeError", created="2026-11-19T10:00:00", model="wgan")
    (Path("runs") / "notes").mkdir()  # not a run
    (Path("runs") / "notes" / "todo.txt").write_text("x")
    (Path("runs") / "README.txt").write_text("a stray file")

    with runs.RunLock(live):  # a training process holds the lock of the live run only
        result = cli("runs")
    assert result.exit_code == 0, result.output
    lines = {line.split()[1]: line for line in result.output.splitlines() if line.startswith("│")}
    assert set(lines) == {"dcgan-done", "dcgan-killed", "dcgan-live", "wgan-failed"}
    assert "finished" in lines["dcgan-done"] and "12.34 (1)" in lines["dcgan-done"]
    assert "fd 15.2 @ 1,200" in lines["dcgan-done"] and "1,560/1,560" in lines["dcgan-done"]
    assert "stopped" in lines["dcgan-killed"] and "running" in lines["dcgan-live"]
    assert "failed: RuntimeError" in lines["wgan-failed"]
    assert f"(1) {PROTOCOL}" in result.output
    order = [name for name in lines]
    assert order == ["wgan-failed", "dcgan-done", "dcgan-killed", "dcgan-live"]  # newest last


def test_runs_survives_an_unreadable_run_json() -> None:
    fake_run("good")
    (fake_run("broken") / "run.json").write_text('{"model": "dcg', encoding="utf-8")
    result = cli("runs")
    assert result.exit_code == 0, result.output
    broken = next(line for line in result.output.splitlines() if "broken" in line)
    assert "unreadable" in broken
    assert "good" in result.output


def test_runs_json_parses_and_model_filters() -> None:
    fake_run("a", evaluation=evaluation(20.0), best={"step": 1200, "fd": 15.2, "protocol": "fd1k"})
    fake_run("b", model="cgan", created="2026-11-21T00:00:00")
    listed = json.loads(cli("runs", "--json").stdout)
    assert [r["run"] for r in listed] == ["a", "b"]
    first = listed[0]
    assert first["status"] == "finished" and first["fid"] == 20.0 and first["protocol"] == PROTOCOL
    assert first["best"]["fd"] == 15.2 and first["eval"]["precision"] == 0.8 and first["step"] == 1560
    assert [r["run"] for r in json.loads(cli("runs", "--json", "--model", "cgan").stdout)] == ["b"]


def test_runs_dir_option_and_an_empty_folder(tmp_path: Path) -> None:
    fake_run("elsewhere", root=tmp_path / "other")
    result = cli("runs", "--dir", str(tmp_path / "other"))
    assert result.exit_code == 0 and "elsewhere" in result.output
    assert "no runs in" in cli("runs").output  # the default runs folder does not exist yet
    missing = cli("runs", "--dir", "nowhere")
    assert missing.exit_code == 2 and "--dir nowhere is not a folder" in missing.output


# -- zoo compare ----------------------------------------------------------------------------------

def test_compare_writes_a_figure_and_marks_the_best() -> None:
    a = fake_run("a", evaluation=evaluation(20.0), metrics=losses(30, fd_every=10))
    b = fake_run("b", evaluation=evaluation(12.0, precision=0.6), metrics=losses(20, scale=2.0))
    c = fake_run("c", metrics=losses(10))  # never evaluated: still a row, with empty cells
    result = cli("compare", str(a), str(b), str(c), "--out", "cmp.png")
    assert result.exit_code == 0, result.output
    assert Image.open("cmp.png").format == "PNG"
    assert "not comparable" not in result.output
    rows = {line.split()[1]: line for line in result.output.splitlines() if line.startswith("│")}
    assert "fid" in result.output and "precision" in result.output
    assert "not evaluated" in rows["c"]
    assert "fd against step" in result.output  # one run logged fd during training: that is drawn

    report = json.loads(cli("compare", str(a), str(b), str(c), "--json", "--out", "again.png").stdout)
    assert report["best"]["fid"] == "b" and report["best"]["precision"] == "a"
    assert report["plotted"] == ["fd"] and report["warning"] is None
    assert [r["protocol"] for r in report["runs"]] == [PROTOCOL, PROTOCOL, None]


def test_compare_draws_the_common_losses_without_fd_and_takes_metric() -> None:
    a = fake_run("a", metrics=losses(30))
    b = fake_run("b", metrics=[{**r, "gp": 1.0} for r in losses(20)])
    report = json.loads(cli("compare", str(a), str(b), "--json", "--out", "l.png").stdout)
    assert report["plotted"] == ["loss_d", "loss_g"] and Path("l.png").is_file()
    chosen = json.loads(cli("compare", str(a), str(b), "--json", "--metric", "gp", "--out", "gp.png").stdout)
    assert chosen["plotted"] == ["gp"]
    unknown = cli("compare", str(a), str(b), "--metric", "nope")
    assert unknown.exit_code == 2 and "--metric takes one of gp, loss_d, loss_g" in unknown.output


def test_compare_warns_when_protocols_differ() -> None:
    a = fake_run("a", evaluation=evaluation(20.0))
    other = evaluation(12.0, protocol="fid1k/classifier:mnist@ab12cd34/train")
    other["protocol_detail"].update(generated=1000, split="train")
    b = fake_run("b", evaluation=other)
    result = cli("compare", str(a), str(b), "--out", "cmp.png")
    assert result.exit_code == 0
    warning = " ".join(result.stderr.split())
    assert "not comparable" in warning and "generated (10000 vs 1000)" in warning
    assert "split (heldout vs train)" in warning and PROTOCOL in warning
    assert json.loads(cli("compare", str(a), str(b), "--json", "--out", "j.png").stdout)["warning"]


def test_compare_never_overwrites_without_force() -> None:
    a, b = fake_run("a", metrics=losses(5)), fake_run("b", metrics=losses(5))
    Path("cmp.png").write_bytes(b"mine")
    refused = cli("compare", str(a), str(b), "--out", "cmp.png")
    assert refused.exit_code == 2 and "--force" in refused.output
    assert Path("cmp.png").read_bytes() == b"mine"
    assert cli("compare", str(a), str(b), "--out", "cmp.png", "--force").exit_code == 0
    assert Image.open("cmp.png").format == "PNG"
    default = cli("compare", str(a), str(b))
    assert default.exit_code == 0 and len(list(Path().glob("compare-*.png"))) == 1
    assert cli("compare", str(a), str(a)).exit_code == 2  # one run is not a comparison


# -- zoo report -----------------------------------------------------------------------------------

def page_of(result, path: Path) -> str:
    assert result.exit_code == 0, result.output
    assert str(path) in result.output.replace("\n", "")
    return path.read_text(encoding="utf-8")


def assert_self_contained(page: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "@import" not in page and "url(" not in page


def test_report_holds_config_figures_pictures_and_warnings() -> None:
    run = fake_run("r", evaluation=evaluation(12.34, class_accuracy=0.97,
                                               class_accuracy_per_class={"0": 0.99, "1": 0.95}),
                   best={"step": 20, "fd": 15.2, "protocol": "fd1k/classifier:mnist@ab12cd34/heldout"},
                   metrics=losses(30, fd_every=10),
                   warnings=[{"step": 400, "kind": "mode collapse", "message": "samples <b>alike</b>"}])
    (run / "eval").mkdir()
    Image.new("L", (20, 20), 128).save(run / "eval" / "samples.png")
    (run / "progress").mkdir()
    for step in (10, 20):
        Image.new("L", (24, 24), step).save(run / "progress" / f"step-{step:07d}.png")
    page = page_of(cli("report", str(run)), run / "report.html")
    assert page.startswith("<!DOCTYPE html>")
    assert "real_label" in page and "0.9" in page and "zoo train dcgan --data mnist --steps 1560" in page
    assert "12.34" in page and PROTOCOL in page and "ab12cd34ef" in page
    assert "95.0%" in page  # the per-class accuracies
    assert page.count("data:image/png;base64,") >= 4  # losses, preview, eval samples, the fd curve
    assert "the latest preview (step 20)" in page
    assert "mode collapse" in page and "samples &lt;b&gt;alike&lt;/b&gt;" in page
    assert "No progress.gif" in page  # a missing part is a note
    assert_self_contained(page)


def test_report_of_a_run_with_nothing_but_run_json() -> None:
    run = Path("runs/bare")
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"model": "dcgan", "data": "folder:/nowhere/at/all"}))
    page = page_of(cli("report", str(run), "--out", "bare.html"), Path("bare.html"))
    for note in ("No data pictures", "No losses.png", "No progress.gif", "without --eval-every",
                 "Not evaluated yet", "training raised no warnings"):
        assert note in page
    assert_self_contained(page)


def test_report_writes_over_its_own_report_only() -> None:
    run = fake_run("r")
    assert cli("report", str(run)).exit_code == 0
    assert cli("report", str(run)).exit_code == 0  # an earlier report of ours is replaced
    Path("notes.html").write_text("<html>my notes</html>")
    refused = cli("report", str(run), "--out", "notes.html")
    assert refused.exit_code == 2 and "not a zoo report" in refused.output
    assert Path("notes.html").read_text() == "<html>my notes</html>"
    assert cli("report", str(run), "--out", "notes.html", "--force").exit_code == 0


# -- with a real run ---------------------------------------------------------------------------------

@pytest.fixture
def real_run(mnist, trained) -> Path:
    return trained("train", "dcgan", *TINY, "--data", "mnist", "--steps", "2", dest="runs/real")


def test_a_real_run_everywhere(real_run: Path) -> None:
    listed = json.loads(cli("runs", "--json").stdout)
    assert listed[0]["run"] == "real" and listed[0]["status"] == "finished" and listed[0]["seconds"] > 0
    other = fake_run("other", metrics=losses(5))
    by_name = json.loads(cli("compare", "dcgan", str(other), "--json", "--out", "c.png").stdout)
    by_file = json.loads(cli("compare", str(real_run / "checkpoint.safetensors"), str(other), "--json",
                             "--out", "d.png").stdout)
    assert by_name["runs"][0]["run"] == by_file["runs"][0]["run"] == "real"
    assert by_name["plotted"] == ["loss_d", "loss_g"]

    page = page_of(cli("report", "dcgan"), real_run / "report.html")
    assert "data:image/gif;base64," in page  # the progress GIF
    assert "per-pixel statistics" in page and "images per class" in page  # the prepared data's pictures
    assert "No data pictures" not in page and "No losses.png" not in page
    assert "trained for" in page and "plugin version 1" in page
    assert_self_contained(page)


def test_nonsense_in_run_json_is_shown_as_unknown_not_a_crash() -> None:
    run = fake_run("odd", step="many", total_steps=None, best=[1, 2], warnings=7, status="failed: [Errno 2] gone",
                   config="?")
    (run / "eval.json").write_text(json.dumps({"fid": "low", "protocol": 3, "checkpoint": "?"}))
    listed = cli("runs")
    assert listed.exit_code == 0 and "failed: [Errno 2] gone" in listed.output
    assert json.loads(cli("runs", "--json").stdout)[0]["step"] is None
    page = page_of(cli("report", str(run)), run / "report.html")
    assert "failed: [Errno 2] gone" in page


@pytest.mark.parametrize("command", ["runs", "compare", "report"])
def test_each_command_has_help_with_examples(command: str) -> None:
    result = cli(command, "--help")
    assert result.exit_code == 0 and "Examples" in result.output and f"zoo {command}" in result.output
