"""The single-process speed options: channels-last, --compile, fused Adam, data placement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from zoo.data import memory as data_io
from zoo.training.engine import Engine, EngineOptions

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
    from zoo.training import engine

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


def fused_kernel_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of Adam's and AdamW's fused kernels, once per call from now on (they run on
    the CPU too, so a test can see them used without a GPU)."""
    calls: list[str] = []

    def counted(name: str):
        kernel = getattr(torch, name)

        def call(*args, **kwargs):
            calls.append(name)
            return kernel(*args, **kwargs)
        return call

    for name in ("_fused_adam_", "_fused_adamw_"):
        monkeypatch.setattr(torch, name, counted(name))
    return calls


def as_if_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every tensor says it is on a CUDA GPU (while the patch lasts): what Engine.tune reads."""
    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))


def test_fused_adam_is_for_floating_point_cuda_weights_only(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fused_kernel_calls(monkeypatch)
    for on_cuda in (False, True):
        net = torch.nn.Linear(3, 2)
        counts = torch.nn.Parameter(torch.zeros(2, dtype=torch.long), requires_grad=False)
        optimizers = {"adam": torch.optim.Adam(net.parameters()), "adamw": torch.optim.AdamW(net.parameters()),
                      "with integers": torch.optim.Adam([*net.parameters(), counts]),
                      "sgd": torch.optim.SGD(net.parameters(), 0.1)}
        with monkeypatch.context() as patch:
            if on_cuda:
                as_if_on_cuda(patch)
            Engine(EngineOptions()).tune(optimizers)
        for name in ("adam", "adamw"):
            group = optimizers[name].param_groups[0]
            assert bool(group["fused"]) is on_cuda and not (on_cuda and group["foreach"]), name
        assert not optimizers["with integers"].param_groups[0]["fused"]  # the fused kernel takes floats only
        assert not optimizers["sgd"].param_groups[0].get("fused")
        calls.clear()
        net(torch.randn(4, 3)).square().sum().backward()
        optimizers["adam"].step()
        optimizers["adamw"].step()
        assert calls == (["_fused_adam_", "_fused_adamw_"] if on_cuda else [])  # the kernels, not just a flag


def test_training_tunes_the_models_optimisers_new_and_resumed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """zoo train hands its model's optimisers to Engine.tune, for a new run and a resumed one:
    with weights that say they are on CUDA there, its steps run Adam's fused kernel."""
    calls = fused_kernel_calls(monkeypatch)
    tune = Engine.tune

    def tune_on_cuda(self: Engine, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        with pytest.MonkeyPatch.context() as patch:
            as_if_on_cuda(patch)
            tune(self, optimizers)

    run = tmp_path / "run"
    result = run_cli("train", "dcgan", "--data", "mnist", "--subset", "0:600", "--steps", "2", *TINY, "--no-wandb",
                     "--out", str(run))
    assert result.exit_code == 0, result.output
    assert calls == []  # CPU weights: the default kernels
    monkeypatch.setattr(Engine, "tune", tune_on_cuda)
    for args in (("--data", "mnist", "--subset", "0:600", "--steps", "2", *TINY, "--out", str(tmp_path / "new")),
                 ("--resume", str(run), "--steps", "3")):
        calls.clear()
        result = run_cli("train", "dcgan", *args, "--no-wandb")
        assert result.exit_code == 0, result.output
        assert calls.count("_fused_adam_") >= 2, args  # the generator's and the discriminator's, each step


def test_data_lives_on_the_gpu_when_it_fits_else_in_host_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    assert data_io.placement(10**12, torch.device("cpu")) == torch.device("cpu")
    gpu = torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (8 * 2**30, 80 * 2**30))
    assert data_io.placement(2 * 2**30, gpu) == gpu  # a quarter of the free memory, or less
    assert data_io.placement(3 * 2**30, gpu) == torch.device("cpu")
