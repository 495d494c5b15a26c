"""Training on two processes of this CPU through torchrun (gloo), as users launch it.

Each launch is a real ``torchrun --nproc_per_node 2`` of ``zoo train`` (through
tests/distributed_worker.py, which has every process write its own weights at the end);
one launch (a DCGAN trained, evaluated, then a WGAN-GP trained, in the same two processes)
is shared by the tests of what it wrote: each launch costs seconds of start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import zoo
from zoo.data.memory import TensorBatches
from zoo.errors import UsageError
from zoo.records import checkpoint as ckpt_io

from .conftest import TINY, FakeEntryPoint, checkpoint_tensors, make_image_folder, run_cli

WORKER = Path(__file__).with_name("distributed_worker.py")
STEPS = 12


def torchrun(dump: Path, *args: str, processes: int = 2, env: dict[str, str] | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
    """``torchrun --nproc_per_node N`` of ``zoo ARGS`` (processes=1: a plain process)."""
    dump.mkdir(parents=True, exist_ok=True)
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                 str(processes)] if processes > 1 else [sys.executable])
    done = subprocess.run([*launcher, str(WORKER), str(dump), *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    if check and done.returncode:
        raise AssertionError(f"exit {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def weights(dump: Path, rank: int) -> dict[str, torch.Tensor]:
    return load_file(str(dump / f"rank{rank}.safetensors"))


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    """A tiny DCGAN (batch norm and all) trained on two processes, W&B offline, then
    evaluated on them (into ``eval-two.json``); then a tiny WGAN-GP trained (``gp/``)."""
    root = tmp_path_factory.mktemp("two")
    torchrun(root / "dump", "train", "dcgan", "--data", "mnist", "--subset", "0:600", "--steps", str(STEPS),
             *TINY, "--preview-every", "4", "--eval-every", "6", "--eval-features", "random",
             "--wandb", "offline", "--out", str(root / "run"),
             "--then", str(root / "dump"), "eval", str(root / "run"), "-n", "200", "--features", "random",
             "--wandb", "off",
             "--then", str(root / "gp" / "dump"), "train", "wgan-gp", "--data", "mnist", "--subset", "0:600",
             "--steps", "4", *TINY, "--no-wandb", "--out", str(root / "gp" / "run"),
             env={"ZOO_CACHE_DIR": str(cache_dir), "WANDB_MODE": "offline"})
    (root / "run" / "eval.json").rename(root / "eval-two.json")
    return root


def test_both_processes_hold_the_same_weights_and_batch_norm_statistics(two: Path) -> None:
    zero, one = weights(two / "dump", 0), weights(two / "dump", 1)
    assert zero.keys() == one.keys()
    assert any("running_mean" in k for k in zero)  # batch norm's statistics were averaged too
    for key in zero:
        assert torch.equal(zero[key], one[key]), key
    saved = ckpt_io.load(two / "run" / ckpt_io.FILENAME).state["model"]
    for key in zero:
        assert torch.equal(saved[key].cpu(), zero[key]), key


def test_rank_0_alone_writes_the_run_in_global_terms(two: Path) -> None:
    run = two / "run"
    info = json.loads((run / "run.json").read_text())
    assert info["processes"] == 2 and info["status"] == "finished" and info["step"] == STEPS
    assert info["images"] == STEPS * 16  # the global batch: 2 processes x 8
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "loss_d" in r]
    assert steps == list(range(1, STEPS + 1))  # each step logged once, not once per process
    # --eval-every: rank 0 measures (the others wait), at steps 6 and 12, and keeps the best
    assert [r["step"] for r in records if "fd" in r] == [6, 12]
    assert (run / "best.safetensors").is_file() and info["best"]["step"] in (6, 12)
    assert len(list((run / "wandb").glob("offline-run-*"))) == 1
    assert sorted(p.name for p in (run / "progress").glob("step-*.png")) == \
        [f"step-{s:07d}.png" for s in (4, 8, 12)]


def test_a_run_saved_by_two_processes_resumes_on_one(two: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(two / "run", run)
    result = run_cli("train", "dcgan", "--resume", str(run), "--steps", str(STEPS + 4), "--no-wandb")
    assert result.exit_code == 0, result.output
    train = ckpt_io.read_meta(run / ckpt_io.FILENAME)["train"]
    assert train["step"] == STEPS + 4 and train["images"] == (STEPS + 4) * 16


def test_eval_on_two_processes_measures_what_one_does(two: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(two / "run", run)
    assert run_cli("eval", str(run), "-n", "200", "--features", "random").exit_code == 0
    alone = json.loads((run / "eval.json").read_text())
    shared = json.loads((two / "eval-two.json").read_text())
    assert shared["checkpoint"]["step"] == alone["checkpoint"]["step"] == STEPS
    for key in ("fid", "kid", "precision", "recall", "density", "coverage", "diversity"):
        assert shared[key] == alone[key], key


def test_without_batch_norm_two_processes_train_what_one_does(tmp_path: Path, cache_dir: Path,
                                                             extra_plugins) -> None:
    # The toy (tests/distributed_worker.py) draws no random numbers: the two halves of each
    # batch, their gradients averaged, must give what the whole batch gives on one process.
    # The two processes read the prepared shards through memory maps; the one (this test's
    # own process, on one thread as each of the two) holds them.
    folder = make_image_folder(tmp_path / "shapes", per_class=150)
    args = ("train", "toy", "--data", f"folder:{folder}", "--size", "16", "--steps", "15", "--no-wandb")
    torchrun(tmp_path / "two", *args, "--out", str(tmp_path / "run-two"),
             env={"ZOO_CACHE_DIR": str(cache_dir), "ZOO_IN_MEMORY_MB": "0"})
    extra_plugins(FakeEntryPoint("toy", "tests.distributed_worker:Toy", "zoo-tests"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = run_cli(*args, "--out", str(tmp_path / "run-one"))
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    two = weights(tmp_path / "two", 0)
    one = {k.removeprefix("model."): v for k, v in checkpoint_tensors(tmp_path / "run-one").items()
           if k.startswith("model.")}
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=0, atol=1e-6)


def test_a_gradient_penalty_model_trains_on_two_processes(two: Path) -> None:
    zero, one = weights(two / "gp" / "dump", 0), weights(two / "gp" / "dump", 1)
    assert all(torch.equal(zero[k], one[k]) for k in zero)
    records = [json.loads(line) for line in (two / "gp" / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(r["gradient_penalty"] >= 0 for r in records)


def test_a_killed_process_stops_the_others_and_the_checkpoint_survives(tmp_path: Path) -> None:
    run = tmp_path / "run"
    done = torchrun(tmp_path / "dump", "train", "dcgan", "--data", "mnist", "--subset", "0:600", "--steps", "200",
                    *TINY, "--preview-every", "5", "--no-wandb", "--out", str(run),
                    env={"ZOO_TEST_KILL": "1:7"}, check=False)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "another process of this run stopped" in output and "--resume" in output
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "failed: PeerLost" and info["failed_at_step"] < 200
    assert ckpt_io.read_meta(run / ckpt_io.FILENAME)["train"]["step"] == 5  # the last one, whole
    result = run_cli("train", "dcgan", "--resume", str(run), "--steps", "8", "--no-wandb")
    assert result.exit_code == 0, result.output


def test_each_process_gets_its_slice_of_the_batch_one_process_would_draw() -> None:
    images = torch.arange(40, dtype=torch.uint8).view(40, 1, 1, 1).expand(40, 1, 2, 2).contiguous()
    one = TensorBatches(images, torch.arange(40) % 4, 8, seed=3)
    shares = [TensorBatches(images, torch.arange(40) % 4, 8, seed=3, share=(r, 2)) for r in range(2)]
    for _ in range(12):  # across passes
        whole = one.next()
        halves = [b.next() for b in shares]
        assert torch.equal(torch.cat([h.images for h in halves]), whole.images)
        assert torch.equal(torch.cat([h.labels for h in halves]), whole.labels)
    assert shares[0].drawn == shares[1].drawn == one.drawn == 96  # images counted globally
    assert shares[0].state() == one.state()  # so a run resumes at any number of processes


def test_a_batch_that_does_not_split_over_the_processes_is_refused() -> None:
    images = torch.zeros(40, 1, 2, 2, dtype=torch.uint8)
    with pytest.raises(UsageError, match="a batch of 15 does not split evenly over 2 processes"):
        TensorBatches(images, None, 15, seed=0, share=(0, 2))
    batches = TensorBatches(images, None, 8, seed=0, share=(1, 2))
    with pytest.raises(UsageError, match="a batch of 5 does not split"):
        batches.next(5)


def test_one_process_exchanges_nothing() -> None:
    from zoo.training.distributed import Cluster

    cluster = Cluster()
    t = torch.ones(3)
    assert cluster.agree([1.0, 0.0]) == [1.0, 0.0]
    assert cluster.mean(t) is t and torch.equal(t, torch.ones(3))
    assert cluster.gather(t) is t and cluster.share_text("runs/x") == "runs/x"
    assert cluster.writer and not cluster.distributed


def test_every_batch_size_a_model_asks_for_must_split_over_the_processes() -> None:
    from zoo import config as config_io
    from zoo.pipelines.train import _check_shares
    from zoo.registry import registry

    cls = registry().get("progan")
    config = config_io.from_dict(cls.Config, {**cls.tiny_config, "batch_size": 8, "batch_sizes": "8:6"}, source="test")
    model = cls(config, zoo.DataSpec("gray16", 1, 16, 16))
    assert 6 in model.batch_sizes() and 8 in model.batch_sizes()
    _check_shares(model, 1)
    with pytest.raises(UsageError, match="progan trains with a batch of 6 at some point"):
        _check_shares(model, 4)


def test_one_ctrl_c_delivered_twice_is_one_and_a_later_one_stops_at_once() -> None:
    import signal
    import time

    from zoo.pipelines.loop import SAME_SIGNAL_SECONDS
    from zoo.training.process import deferred_interrupts

    with deferred_interrupts(SAME_SIGNAL_SECONDS) as interrupted:  # as the loop has it under torchrun
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)  # torchrun forwards the terminal's Ctrl-C: the same one
        time.sleep(0.05)
        assert interrupted.is_set()
        time.sleep(SAME_SIGNAL_SECONDS + 0.1)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)  # a second, later: stop at once
            time.sleep(0.5)
