"""The single-process speed options: channels-last, --compile, fused Adam, data placement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from zoo import data as data_io
from zoo.engine import Engine, EngineOptions

from .conftest import TINY, run_cli


def test_channels_last_is_the_default_and_can_be_turned_off(tmp_path: Path) -> None:
    for flags, expected in (((), ["channels-last"]), (("--no-channels-last",), [])):
        out = tmp_path / f"run{len(flags)}"
        result = run_cli("train", "dcgan", "--data", "mnist", "--subset", "0:600", "--steps", "2", *TINY,
                         *flags, "--no-wandb", "--out", str(out))
        assert result.exit_code == 0, result.output
        info = json.loads((out / "run.json").read_text())
        assert info["speed"] == expected and info["processes"] == 1


def test_compile_is_recorded_and_a_network_that_cannot_compile_is_named(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from zoo import engine

    monkeypatch.setattr(engine, "COMPILE_BACKEND", "eager")  # graph capture without minutes of codegen
    torch._dynamo.reset()
    result = run_cli("train", "wgan-gp", "--data", "mnist", "--subset", "0:600", "--steps", "2", *TINY,
                     "--compile", "--no-wandb", "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert "wgan-gp's discriminator runs eagerly (its gradient penalty needs a double backward" in result.output
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["speed"] == ["channels-last", "compiled (eager): generator"]
    # A compiled run's checkpoint is an ordinary one: it resumes, compiled or not.
    result = run_cli("train", "wgan-gp", "--resume", str(tmp_path / "run"), "--steps", "3", "--no-wandb")
    assert result.exit_code == 0, result.output


def test_channels_last_changes_the_layout_not_the_numbers() -> None:
    from zoo.pipelines.prep import prepare
    from zoo.plugins.dcgan import DCGAN, DCGANConfig

    spec = prepare("mnist").spec
    torch.manual_seed(0)
    plain = DCGAN(DCGANConfig(g_width=4, d_width=4, latent_dim=8), spec)
    fast = DCGAN(DCGANConfig(g_width=4, d_width=4, latent_dim=8), spec)
    fast.load_state_dict(plain.state_dict())
    Engine(EngineOptions(channels_last=True)).prepare(fast)
    conv = fast.discriminator.features[2].weight  # 4 -> 8 channels (one channel is both layouts)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    z = torch.randn(6, 8)
    plain.eval(), fast.eval()
    torch.testing.assert_close(fast.generate(z), plain.generate(z), rtol=1e-5, atol=1e-5)
    assert set(fast.state_dict()) == set(plain.state_dict())


def test_fused_adam_is_for_cuda_weights_only() -> None:
    net = torch.nn.Linear(3, 2)
    optimizers = {"net": torch.optim.Adam(net.parameters()), "sgd": torch.optim.SGD(net.parameters(), 0.1)}
    Engine(EngineOptions()).tune(optimizers)
    assert not optimizers["net"].param_groups[0]["fused"]  # CPU weights: the default kernels


def test_data_lives_on_the_gpu_when_it_fits_else_in_host_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    assert data_io.placement(10**12, torch.device("cpu")) == torch.device("cpu")
    gpu = torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (8 * 2**30, 80 * 2**30))
    assert data_io.placement(2 * 2**30, gpu) == gpu  # a quarter of the free memory, or less
    assert data_io.placement(3 * 2**30, gpu) == torch.device("cpu")
