from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import zoo
from zoo.records import checkpoint as ckpt_io
from zoo.records import runs


def adam_state() -> dict:
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.5, 0.999))
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    return {"model": net.state_dict(), "optimizers": {"g": opt.state_dict()}, "extra": {"pool": [torch.ones(2)]}}


def sample_checkpoint(state: dict) -> ckpt_io.Checkpoint:
    return ckpt_io.Checkpoint("dcgan", "1", {"batch_size": 8}, {"name": "x", "channels": 1, "height": 28,
                              "width": 28, "class_names": []}, {"step": 3}, state)


def test_flatten_round_trips_optimizer_state_exactly() -> None:
    state = adam_state()
    tensors: dict = {}
    skeleton = ckpt_io.flatten(state, tensors)
    back = ckpt_io.unflatten(skeleton, tensors)
    opt_state = back["optimizers"]["g"]
    assert set(opt_state["state"]) == {0, 1}  # integer keys survive
    assert opt_state["param_groups"][0]["betas"] == (0.5, 0.999)  # tuples survive
    for key in ("exp_avg", "exp_avg_sq", "step"):
        assert torch.equal(opt_state["state"][0][key], state["optimizers"]["g"]["state"][0][key])
    net = torch.nn.Linear(3, 2)
    torch.optim.Adam(net.parameters()).load_state_dict(opt_state)  # torch accepts it


def test_flatten_refuses_what_it_cannot_store() -> None:
    with pytest.raises(TypeError):
        ckpt_io.flatten({"f": object()}, {})


def test_save_then_load(tmp_path: Path) -> None:
    path = tmp_path / "c.safetensors"
    state = adam_state()
    ckpt_io.save(path, sample_checkpoint(state))
    loaded = ckpt_io.load(path)
    assert loaded.plugin == "dcgan" and loaded.train == {"step": 3}
    assert torch.equal(loaded.state["model"]["weight"], state["model"]["weight"])
    assert ckpt_io.read_meta(path)["config"] == {"batch_size": 8}


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_checkpoint_gets_normal_permissions_without_touching_the_umask(tmp_path: Path, monkeypatch) -> None:
    def umask(mask: int) -> int:
        raise AssertionError("os.umask is process-wide: changing it races other threads")

    path = tmp_path / "c.safetensors"
    mask = os.umask(0o027)
    monkeypatch.setattr(os, "umask", umask)
    try:
        ckpt_io.save(path, sample_checkpoint(adam_state()))
    finally:
        monkeypatch.undo()
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~0o027
    assert ckpt_io.load(path).train == {"step": 3}


def test_a_crash_mid_write_leaves_the_previous_checkpoint_whole(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "checkpoint.safetensors"
    ckpt_io.save(path, sample_checkpoint(adam_state()))
    before = path.read_bytes()

    def crash(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_io, "save_file", crash)
    with pytest.raises(OSError):
        ckpt_io.save(path, sample_checkpoint(adam_state()))
    assert path.read_bytes() == before
    assert ckpt_io.load(path).train == {"step": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.safetensors"]  # no temp left


def test_a_truncated_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "c.safetensors"
    ckpt_io.save(path, sample_checkpoint(adam_state()))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    with pytest.raises(zoo.ZooError, match="truncated"):
        ckpt_io.load(path)
    path.write_bytes(data[:30])
    with pytest.raises(zoo.ZooError, match="truncated or not safetensors"):
        ckpt_io.load(path)


def test_a_file_that_is_not_safetensors_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({"weights": torch.ones(2)}, path)  # a pickle: must be refused, never loaded
    with pytest.raises(zoo.ZooError, match="not a readable zoo checkpoint"):
        ckpt_io.load(path)


def test_a_safetensors_file_without_zoo_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "weights.safetensors"
    save_file({"w": torch.ones(2)}, str(path))
    with pytest.raises(zoo.ZooError, match="not a zoo checkpoint"):
        ckpt_io.load(path)


def test_a_checkpoint_of_another_plugin_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.safetensors"
    ckpt_io.save(path, sample_checkpoint(adam_state()))
    with pytest.raises(zoo.UsageError, match="is a dcgan checkpoint, not tiny"):
        runs.load_model(path, expect="tiny")


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.safetensors"
    ckpt_io.save(path, sample_checkpoint(adam_state()))  # Linear weights, not DCGAN's networks
    with pytest.raises(zoo.ZooError, match="does not fit the dcgan networks"):
        runs.load_model(path)
