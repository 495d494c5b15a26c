from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from PIL import Image

from zoo.plugins.dcgan import DCGAN
from zoo.records import checkpoint as ckpt_io

from .conftest import TINY, checkpoint_tensors, make_image_folder, run_cli
from .wandb_files import summarise


def train(*args: str):
    return run_cli("train", "dcgan", "--no-wandb", *TINY, *args)


@pytest.fixture
def shapes(tmp_path: Path) -> str:
    """24 images at 28x28 in batches of 8: three steps make an epoch."""
    return f"folder:{make_image_folder(tmp_path / 'shapes', per_class=12)}"


def test_a_run_folder_holds_everything(mnist) -> None:
    result = train("--data", "mnist", "--steps", "4", "--out", "run")
    assert result.exit_code == 0, result.output
    run = Path("run")
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and info["step"] == 4 and info["model"] == "dcgan"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert {"loss_d", "loss_g", "d_real", "d_fake"} <= set(rows[0])
    meta = ckpt_io.read_meta(run / ckpt_io.FILENAME)
    assert meta["plugin"] == "dcgan" and meta["config"]["g_width"] == 4 and meta["train"]["step"] == 4
    assert meta["data"]["height"] == 28 and meta["train"]["data"]["source"] == "mnist"
    assert "rng.cpu" in checkpoint_tensors(run) and "optimizers.generator.state.0.exp_avg" in checkpoint_tensors(run)
    for picture in ("losses.png", "progress.gif", "progress/step-0000004.png"):
        assert (run / picture).is_file(), picture
    assert "D(G(z))" in result.output


def test_previews_come_on_a_step_cadence_then_a_gif_of_them(shapes: str) -> None:
    result = run_cli("train", "dcgan", "--no-wandb", "--data", shapes, "--size", "28", "--epochs", "3",
                     "--batch-size", "8", "--set", "g_width=4", "--set", "d_width=4", "--out", "run",
                     "--preview-every", "4")
    assert result.exit_code == 0, result.output
    grids = sorted(p.name for p in Path("run/progress").iterdir())
    assert grids == ["step-0000004.png", "step-0000008.png", "step-0000009.png"]  # the last step too
    # 64 previews, their 28 px cells drawn at 56 px, as every grid is
    assert Image.open("run/progress/step-0000004.png").size == (2 * (8 * 30 + 2), 2 * (8 * 30 + 2))
    assert Image.open("run/progress.gif").n_frames == 3


def test_an_epoch_is_counted_in_whole_batches(mnist) -> None:
    """20 images in batches of 8: an epoch is 2 steps (16 images, the rest waits for the next
    shuffle), so 4 steps are 2 epochs, though 32 images are fewer than 2 x 20."""
    result = train("--data", "mnist", "--subset", "0:20", "--batch-size", "8", "--epochs", "2", "--out", "run")
    assert result.exit_code == 0, result.output
    meta = ckpt_io.read_meta(Path("run") / ckpt_io.FILENAME)
    assert meta["train"]["step"] == 4 and meta["train"]["images"] == 32 and meta["train"]["epoch"] == 2


def test_a_tiny_data_set_is_not_previewed_every_few_steps(shapes: str) -> None:
    """24 images in batches of 8 make 3-step epochs; 80 steps still draw about 40 previews."""
    result = run_cli("train", "dcgan", "--no-wandb", "--data", shapes, "--size", "28", "--steps", "80",
                     "--batch-size", "8", "--set", "g_width=4", "--set", "d_width=4", "--out", "run")
    assert result.exit_code == 0, result.output
    frames = sorted(Path("run/progress").glob("step-*.png"))
    assert len(frames) == 40 and frames[0].name == "step-0000002.png"


def test_resuming_matches_an_uninterrupted_run_exactly(shapes: str) -> None:
    common = ["--data", shapes, "--size", "28", "--batch-size", "8", "--seed", "5",
              "--set", "g_width=4", "--set", "d_width=4"]
    straight = run_cli("train", "dcgan", "--no-wandb", *common, "--steps", "7", "--out", "straight")
    assert straight.exit_code == 0, straight.output
    first = run_cli("train", "dcgan", "--no-wandb", *common, "--steps", "4", "--out", "split")
    assert first.exit_code == 0, first.output
    second = run_cli("train", "dcgan", "--no-wandb", "--resume", "split", "--steps", "7")
    assert second.exit_code == 0, second.output
    a, b = checkpoint_tensors(Path("straight")), checkpoint_tensors(Path("split"))
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:5]
    steps = [json.loads(line)["step"] for line in Path("split/metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 8))


def test_ctrl_c_saves_a_checkpoint_that_resumes(mnist, monkeypatch) -> None:
    real_step = DCGAN.train_step
    calls = {"n": 0}

    def interrupted_on_third(self, batches, progress):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C
        return real_step(self, batches, progress)

    monkeypatch.setattr(DCGAN, "train_step", interrupted_on_third)
    result = train("--data", "mnist", "--steps", "5", "--out", "run")
    assert result.exit_code == 130
    assert "interrupted at step 3/5" in result.output and "--resume run" in result.output
    assert ckpt_io.read_meta(Path("run") / ckpt_io.FILENAME)["train"]["step"] == 3
    assert json.loads(Path("run/run.json").read_text())["status"] == "interrupted"
    assert Path("run/losses.png").is_file()

    monkeypatch.setattr(DCGAN, "train_step", real_step)
    resumed = run_cli("train", "dcgan", "--no-wandb", "--resume", "run")
    assert resumed.exit_code == 0, resumed.output
    assert ckpt_io.read_meta(Path("run") / ckpt_io.FILENAME)["train"]["step"] == 5


def test_an_existing_run_is_never_overwritten_without_force(mnist) -> None:
    assert train("--data", "mnist", "--steps", "1", "--out", "run").exit_code == 0
    before = (Path("run") / ckpt_io.FILENAME).read_bytes()
    refused = train("--data", "mnist", "--steps", "1", "--out", "run")
    assert refused.exit_code == 2 and "already holds a run" in refused.output
    assert "--resume run" in refused.output and "--replace" in refused.output
    assert (Path("run") / ckpt_io.FILENAME).read_bytes() == before
    replaced = train("--data", "mnist", "--steps", "2", "--out", "run", "--replace")
    assert replaced.exit_code == 0 and ckpt_io.read_meta(Path("run") / ckpt_io.FILENAME)["train"]["step"] == 2
    said = [line for line in replaced.output.splitlines() if line.startswith("--replace: deleting the run in run")]
    assert len(said) == 1 and "(dcgan on mnist, step 1)" in said[0]  # never lost without a word
    assert all(name in said[0] for name in ("checkpoint.safetensors", "run.json", "metrics.jsonl", "progress/"))
    forced = train("--data", "mnist", "--steps", "3", "--out", "run", "--force")  # its old name still works
    assert forced.exit_code == 0 and ckpt_io.read_meta(Path("run") / ckpt_io.FILENAME)["train"]["step"] == 3


def test_force_never_deletes_a_folder_that_is_not_a_run(mnist) -> None:
    Path("mine").mkdir()
    Path("mine/thesis.tex").write_text("precious")
    for force in ([], ["--force"], ["--replace"]):
        result = train("--data", "mnist", "--steps", "1", "--out", "mine", *force)
        assert result.exit_code == 2 and "not a zoo run" in result.output
        assert "--resume" not in result.output
    assert Path("mine/thesis.tex").read_text() == "precious"


def test_a_nan_loss_stops_training_and_keeps_the_last_checkpoint(mnist, monkeypatch) -> None:
    real_step = DCGAN.train_step
    calls = {"n": 0}

    def nan_on_second(self, batches, progress):
        calls["n"] += 1
        metrics = dict(real_step(self, batches, progress))
        if calls["n"] == 2:
            metrics["loss_d"] = float("nan")
        return metrics

    monkeypatch.setattr(DCGAN, "train_step", nan_on_second)
    result = run_cli("train", "dcgan", "--no-wandb", "--data", "mnist", "--steps", "3", "--out", "run",
                     "--batch-size", "6000", "--set", "g_width=4", "--set", "d_width=4")
    assert result.exit_code == 1 and "loss_d became nan at step 2" in result.output
    assert ckpt_io.read_meta(Path("run") / ckpt_io.FILENAME)["train"]["step"] == 1
    assert json.loads(Path("run/run.json").read_text())["status"].startswith("failed")


def test_wandb_offline_writes_a_real_run(mnist, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    result = run_cli("train", "dcgan", *TINY, "--data", "mnist", "--steps", "2", "--out", "run")
    assert result.exit_code == 0, result.output
    info = json.loads(Path("run/run.json").read_text())
    assert info["wandb"] == "offline"
    run_files = list(Path("run/wandb").glob("offline-run-*/run-*.wandb"))
    assert len(run_files) == 1
    logged = summarise(run_files[0])
    assert {"loss_d", "loss_g", "d_real", "d_fake", "samples", "progress", "losses"} <= logged["history"]
    assert logged["config"]["model"] == "dcgan" and logged["config"]["g_width"] == 4
    assert any(kind == "model" and "checkpoint.safetensors" in files for kind, files in logged["artifacts"])
    media = list(Path("run/wandb").glob("offline-run-*/files/media/images/samples_*.png"))
    assert media


def test_an_unreachable_wandb_server_never_stops_training(mnist, monkeypatch, unreachable_wandb) -> None:
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "3")
    result = run_cli("train", "dcgan", *TINY, "--data", "mnist", "--steps", "2", "--out", "run")
    assert result.exit_code == 0, result.output
    assert "W&B server unreachable; logging offline" in result.output
    assert json.loads(Path("run/run.json").read_text())["wandb"] == "offline"
    assert list(Path("run/wandb").glob("offline-run-*/run-*.wandb"))


def test_dry_run_prints_the_resolved_config_and_does_nothing() -> None:
    result = run_cli("train", "dcgan", "--data", "mnist", "--set", "real_label=0.9", "-b", "32", "--dry-run")
    assert result.exit_code == 0
    assert '"real_label": 0.9' in result.output and '"batch_size": 32' in result.output
    assert not Path("runs").exists()


@pytest.mark.parametrize("args, code, message", [
    (["dcgn", "--data", "mnist"], 2, "did you mean dcgan"),
    (["dcgan", "--data", "mnist", "--set", "widht=3"], 2, "valid keys: batch_size, loss"),
    (["dcgan", "--data", "mnist", "--set", "lr=fast"], 2, "--set lr=fast: expected a number"),
    (["dcgan", "--data", "mnist", "--set", "real_label=2"], 2, "real_label must be within [0, 1]"),
    (["dcgan", "--data", "imagenet"], 2, "unknown data set 'imagenet'"),
    (["dcgan"], 2, "--data is required"),
    (["dcgan", "--data", "mnist", "--epochs", "2", "--steps", "3"], 2, "give one of --epochs, --steps and --kimg"),
    (["dcgan", "--data", "mnist", "--device", "cuda"], 2, "no CUDA GPU is available"),
    (["dcgan", "--data", "mnist", "--device", "tpu"], 2, "--device must be one of"),
    (["dcgan", "--data", "mnist", "--size", "20"], 2, "prep it with --size 32 or --size 64"),
    (["dcgan", "--data", "mnist", "--batch-size", "20000"], 2, "larger than the data set"),
    (["dcgan", "--resume", "nowhere/run"], 2, "nowhere/run does not exist"),
    (["dcgan", "--resume", "dcgan"], 1, "no dcgan run found"),
])
def test_bad_input_is_one_clear_line(mnist, args: list[str], code: int, message: str) -> None:
    if "--device" in args and "cuda" in args and torch.cuda.is_available():
        pytest.skip("this check needs a machine without a GPU")
    result = run_cli("train", "--no-wandb", *args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 3


def test_resume_refuses_a_run_of_another_model(mnist) -> None:
    assert run_cli("train", "tiny", "--no-wandb", "--data", "mnist", "--steps", "1", "--out", "t").exit_code == 0
    result = run_cli("train", "dcgan", "--no-wandb", "--resume", "t")
    assert result.exit_code == 2 and "that checkpoint is from tiny, not dcgan" in result.output


def test_resume_refuses_config_changes(mnist) -> None:
    assert train("--data", "mnist", "--steps", "1", "--out", "run").exit_code == 0
    result = run_cli("train", "dcgan", "--no-wandb", "--resume", "run", "--set", "lr=0.1")
    assert result.exit_code == 2 and "keeps its config" in result.output


def test_the_third_party_plugin_trains_and_samples_with_no_core_change(mnist) -> None:
    trained = run_cli("train", "tiny", "--no-wandb", "--data", "mnist", "--steps", "3")
    assert trained.exit_code == 0, trained.output
    sampled = run_cli("sample", "tiny", "--n", "5", "--out", "tiny-samples")
    assert sampled.exit_code == 0, sampled.output
    assert len(list(Path("tiny-samples").glob("0*.png"))) == 5


def test_minutes_stops_training_on_time_and_can_resume(mnist) -> None:
    result = train("--data", "mnist", "--steps", "100000", "--minutes", "0.002", "--out", "run")
    assert result.exit_code == 0, result.output
    assert "--minutes 0.002: time is up after" in result.output
    meta = ckpt_io.read_meta(Path("run") / ckpt_io.FILENAME)
    assert 1 <= meta["train"]["step"] < 100000
    assert json.loads(Path("run/run.json").read_text())["status"] == "time limit"
    assert Path("run/progress.gif").is_file()
    assert "--resume run" in result.output
    bad = train("--data", "mnist", "--minutes", "0")
    assert bad.exit_code == 2 and "--minutes must be a number more than 0" in bad.output


def test_minutes_alone_is_the_runs_length_however_many_epochs_that_is(mnist) -> None:
    # 16 images in batches of 16: the default 5 epochs would be 5 steps (a machine busy with other work
    # trained 9 in the 6 s). Previews are kept out of the way (on a busy machine 40 of them would fill a
    # budget this short); their clock is checked below.
    result = train("--data", "mnist", "--subset", "0:16", "--minutes", "0.1", "--preview-every", "1000000",
                   "--out", "run")
    assert result.exit_code == 0, result.output
    meta = ckpt_io.read_meta(Path("run") / ckpt_io.FILENAME)
    assert meta["train"]["step"] > 5 and meta["train"]["total_steps"] == 0
    assert meta["train"]["seconds"] >= 0.1 * 60
    assert json.loads(Path("run/run.json").read_text())["status"] == "finished"
    assert "0.1 minutes" in result.output
    spent = run_cli("train", "dcgan", "--no-wandb", "--resume", "run")
    assert spent.exit_code == 2 and "has used its --minutes 0.1 budget" in spent.output


def test_a_length_in_time_alone_schedules_by_the_clock() -> None:
    from types import SimpleNamespace

    import zoo
    from zoo.pipelines.loop import PREVIEW_FRAMES, Loop

    timed = SimpleNamespace(preview_every=None, total_images=0, timed=True, budget=300.0)
    due = [Loop._preview_index(SimpleNamespace(**vars(timed), seconds=float(s))) for s in range(0, 301, 15)]
    assert due == sorted(due) and due[0] == 0 and due[-1] == PREVIEW_FRAMES and due[2] == 4  # 40 over the budget
    assert zoo.Progress(step=500, total_steps=0, epoch=3, time_fraction=0.25).fraction == 0.25
    assert zoo.Progress(step=5, total_steps=10, epoch=0, time_fraction=0.25).fraction == 0.5


def test_a_slow_stretch_between_previews_still_shows_a_recent_one(mnist, monkeypatch) -> None:
    from zoo.display import figures
    from zoo.pipelines import loop

    drawn: list[str] = []
    real_save = figures.save_grid

    def recording(images, path, *args, **kwargs):
        if Path(path).parent.name == "progress":
            drawn.append(Path(path).name)
        return real_save(images, path, *args, **kwargs)

    monkeypatch.setattr(loop, "PREVIEW_EVERY_SECONDS", 0)
    monkeypatch.setattr(figures, "save_grid", recording)
    result = train("--data", "mnist", "--subset", "0:160", "--steps", "3", "--preview-every", "3", "--out", "run")
    assert result.exit_code == 0, result.output
    assert drawn == ["latest.png", "latest.png", "step-0000003.png"]
    assert not Path("run/progress/latest.png").exists()  # the preview's own frame replaced it


def test_schedules_follow_whichever_ends_training_first() -> None:
    import zoo

    assert zoo.Progress(step=50, total_steps=100, epoch=0).fraction == 0.5
    assert zoo.Progress(step=50, total_steps=10 ** 7, epoch=0, time_fraction=0.75).fraction == 0.75
    assert zoo.Progress(step=90, total_steps=100, epoch=0, time_fraction=0.2).fraction == 0.9
    assert zoo.Progress(step=1, total_steps=100, epoch=0, time_fraction=1.3).fraction == 1.0


# -- bugs found in review, each with its regression test -------------------------------------------

def test_ctrl_c_in_the_middle_of_a_step_waits_for_the_step_to_end(mnist, monkeypatch) -> None:
    """The checkpoint must never hold half an update: SIGINT between the two halves of a step
    stops training after that step, with the whole step saved."""
    real_step = DCGAN.train_step
    calls = {"n": 0}

    def interrupted_half_way(self, batches, progress):
        calls["n"] += 1
        metrics = real_step(self, batches, progress)
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGINT)
            with torch.no_grad():  # the "second half" of this step: an unmistakable change
                self.generator.body[0].weight.add_(1000.0)
        return metrics

    monkeypatch.setattr(DCGAN, "train_step", interrupted_half_way)
    result = train("--data", "mnist", "--subset", "0:64", "--steps", "5", "--out", "run")
    assert result.exit_code == 130, result.output
    assert "interrupted at step 3/5" in result.output
    saved = checkpoint_tensors(Path("run"))
    assert ckpt_io.read_meta(Path("run") / ckpt_io.FILENAME)["train"]["step"] == 3
    assert saved["model.generator.body.0.weight"].mean() > 500, "the step's second half is in the checkpoint"


def test_two_runs_started_in_the_same_second_get_their_own_folders(monkeypatch) -> None:
    import time as time_module

    from zoo.records import runs

    monkeypatch.setattr(time_module, "strftime", lambda *args: "20261123-120000")
    first, lock_a = runs.new_run_dir("dcgan", "mnist", None, False)
    second, lock_b = runs.new_run_dir("dcgan", "mnist", None, False)
    assert first != second and first.name == "dcgan-mnist-20261123-120000" and second.name.endswith("-2")
    lock_a.release()
    lock_b.release()


def test_a_run_that_is_training_cannot_be_trained_into_or_resumed_twice(mnist) -> None:
    from zoo.records import runs

    assert train("--data", "mnist", "--subset", "0:64", "--steps", "1", "--out", "run").exit_code == 0
    with runs.RunLock(Path("run")):  # as if another zoo train held it
        again = run_cli("train", "dcgan", "--no-wandb", "--resume", "run", "--steps", "2")
        assert again.exit_code == 2 and "is being trained right now" in again.output
        forced = train("--data", "mnist", "--subset", "0:64", "--steps", "1", "--out", "run", "--force")
        assert forced.exit_code == 2 and "is being trained right now" in forced.output
    assert ckpt_io.read_meta(Path("run") / ckpt_io.FILENAME)["train"]["step"] == 1
    assert run_cli("train", "dcgan", "--no-wandb", "--resume", "run", "--steps", "2").exit_code == 0


def test_a_minutes_schedule_goes_on_where_it_stopped_after_a_resume(mnist, monkeypatch) -> None:
    seen: list[float] = []
    real_step = DCGAN.train_step

    def spy(self, batches, progress):
        seen.append(progress.time_fraction)
        return real_step(self, batches, progress)

    monkeypatch.setattr(DCGAN, "train_step", spy)
    first = train("--data", "mnist", "--subset", "0:64", "--steps", "100000", "--minutes", "0.002", "--out", "run")
    assert first.exit_code == 0, first.output
    trained = ckpt_io.read_meta(Path("run") / ckpt_io.FILENAME)["train"]["seconds"]
    assert trained >= 0.12
    spent = run_cli("train", "dcgan", "--no-wandb", "--resume", "run")
    assert spent.exit_code == 2 and "has used its --minutes 0.002 budget" in spent.output
    seen.clear()
    total = (trained + 0.12) / 60  # room for more steps however long the first run's took (a busy machine)
    more = run_cli("train", "dcgan", "--no-wandb", "--resume", "run", "--minutes", f"{total:.6f}")
    assert more.exit_code == 0, more.output
    assert seen[0] >= trained / (float(f"{total:.6f}") * 60) - 1e-6, "the schedule restarted from 0 on resume"


def test_wandb_charts_use_the_training_step_so_a_resume_loses_nothing(monkeypatch) -> None:
    """W&B drops anything logged at a step below its own counter, which is what a resume
    does for the steps since the checkpoint; zoo logs the step as a metric instead."""
    from zoo.records.tracking import Tracker

    class FakeRun:
        def __init__(self) -> None:
            self.calls: list[tuple[dict, dict]] = []

        def log(self, data, **kwargs):
            self.calls.append((dict(data), kwargs))

    run = FakeRun()
    tracker = Tracker(run)
    tracker.log({"loss_g": 1.0}, 7)
    tracker.log({"loss_g": 0.9}, 5)  # a resumed run logs step 5 again after step 7
    assert [c[0] for c in run.calls] == [{"loss_g": 1.0, "step": 7}, {"loss_g": 0.9, "step": 5}]
    assert all("step" not in kwargs for _, kwargs in run.calls)


def test_resume_survives_a_half_written_metrics_line(mnist) -> None:
    assert train("--data", "mnist", "--subset", "0:64", "--steps", "2", "--out", "run").exit_code == 0
    with open("run/metrics.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"step": 3, "epoch": 0, "loss_d": 1.3')  # the process died mid-write
    resumed = run_cli("train", "dcgan", "--no-wandb", "--resume", "run", "--steps", "4")
    assert resumed.exit_code == 0, resumed.output
    rows = [json.loads(line) for line in Path("run/metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]


@pytest.mark.parametrize("flag, value", [("--size", "32"), ("--channels", "3"), ("--data-dir", ".")])
def test_resume_refuses_data_flags_it_would_ignore(mnist, flag: str, value: str) -> None:
    assert train("--data", "mnist", "--subset", "0:64", "--steps", "1", "--out", "run").exit_code == 0
    result = run_cli("train", "dcgan", "--no-wandb", "--resume", "run", "--steps", "2", flag, value)
    assert result.exit_code == 2 and f"that run trained with {flag}" in result.output


def test_resume_refuses_a_checkpoint_of_another_plugin_version(mnist, monkeypatch) -> None:
    assert train("--data", "mnist", "--subset", "0:64", "--steps", "1", "--out", "run").exit_code == 0
    monkeypatch.setattr(DCGAN, "version", "2")
    result = run_cli("train", "dcgan", "--no-wandb", "--resume", "run", "--steps", "2")
    assert result.exit_code == 2
    assert "written by dcgan version 1; the installed plugin is version 2" in result.output
    assert "--init-from run" in result.output


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_whole_checkpoint(mnist, monkeypatch) -> None:
    real_step = DCGAN.train_step
    calls = {"n": 0}

    def insisting(self, batches, progress):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)  # the user presses again: stop now, mid-step
        return real_step(self, batches, progress)

    monkeypatch.setattr(DCGAN, "train_step", insisting)
    result = train("--data", "mnist", "--subset", "0:64", "--steps", "5", "--preview-every", "2", "--out", "run")
    assert result.exit_code == 130, result.output
    assert ckpt_io.read_meta(Path("run") / ckpt_io.FILENAME)["train"]["step"] == 2  # not the half step 3
    assert "stopped during step 3; the last checkpoint holds step 2/5" in result.output
    assert json.loads(Path("run/run.json").read_text())["status"] == "interrupted"


def test_wandb_charts_are_defined_against_the_step(monkeypatch, tmp_path) -> None:
    import wandb

    from zoo.records.tracking import open_tracker

    defined: list[tuple] = []

    class FakeRun:
        id = "abc"

        def define_metric(self, name, **kwargs):
            defined.append((name, kwargs))

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setattr(wandb, "init", lambda **kwargs: FakeRun())
    open_tracker("offline", tmp_path, "run", {"model": "dcgan", "data": "mnist"}, console=None)
    assert ("*", {"step_metric": "step"}) in defined and ("step", {}) in defined
