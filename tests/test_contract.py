"""The wider plugin contract: conditions beyond a class, inputs and outputs of different
sizes, pairs derived on the fly, batches of a size a step asks for, progress in images,
frozen helper networks and warm starts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

import zoo
from zoo.data.memory import TensorBatches
from zoo.plugins.dcgan import DCGAN
from zoo.records import checkpoint as ckpt_io

from .conftest import TINY, FakeEntryPoint, run_cli
from .sheets import label_bands


@pytest.fixture
def toy(extra_plugins):
    extra_plugins(FakeEntryPoint("toy-upscaler", "tests.toy_upscaler:ToyUpscaler", "zoo-toy"))


def test_a_toy_plugin_with_an_image_condition_and_two_sizes_uses_the_generic_pipelines(mnist, toy, tmp_path) -> None:
    """zoo train derives 14 px -> 28 px pairs from MNIST; zoo translate doubles any image."""
    result = run_cli("train", "toy-upscaler", "--data", "mnist", "--subset", "0:64", "--steps", "4",
                     "--no-wandb", "--out", "toy", "--set", "width=4")
    assert result.exit_code == 0, result.output
    assert "1x14x14 -> 1x28x28" in result.output
    spec = ckpt_io.read_meta(Path("toy") / ckpt_io.FILENAME)["data"]
    assert (spec["height"], spec["target_height"], spec["pairing"]) == (14, 28, "derived")
    grid = Image.open(sorted(Path("toy/progress").glob("step-*.png"))[-1])
    # rows of input | output | target, all drawn at 28 px (then enlarged to 56 beside their labels)
    left, top = label_bands(grid, 2 * (3 * 30 + 2), 2 * (8 * 30 + 2))
    assert left == 0 and top > 0

    photo = tmp_path / "big.png"
    Image.new("L", (50, 40), 200).save(photo)
    out = run_cli("translate", "toy", str(photo), "--out", "up")
    assert out.exit_code == 0, out.output
    assert Image.open("up/big.png").size == (28, 28)  # fitted to the 14 px input, then doubled
    assert label_bands(Image.open("up/sheet.png"), 2 * (2 * 30 + 2), 2 * (30 + 2))[1] > 0  # input | output


def test_models_that_derive_pairs_refuse_two_domain_data(mnist, toy) -> None:
    result = run_cli("train", "toy-upscaler", "--data", "paired:edges2fashion", "--subset", "0:64",
                     "--steps", "1", "--no-wandb")
    assert result.exit_code == 2 and "toy-upscaler needs derived data" in result.output


def test_a_derivation_downscales_and_crops() -> None:
    spec = zoo.DataSpec("photos", 3, 64, 48)
    derived = zoo.Derivation(factor=4, crop=32).spec(spec)
    assert (derived.channels, derived.height, derived.width) == (3, 8, 8)
    assert derived.target_shape == (3, 32, 32) and derived.pairing == "derived"
    images = torch.rand(5, 3, 64, 48) * 2 - 1
    torch.manual_seed(0)
    small, large = zoo.Derivation(factor=4, crop=32)(images)
    assert small.shape == (5, 3, 8, 8) and large.shape == (5, 3, 32, 32)
    torch.manual_seed(0)  # each crop is the window at the corner drawn for it, the top corners drawn first
    top, left = torch.randint(0, 33, (5,)), torch.randint(0, 17, (5,))
    assert all(torch.equal(large[i], images[i, :, t:t + 32, s:s + 32])
               for i, (t, s) in enumerate(zip(top.tolist(), left.tolist(), strict=True)))
    assert small.min() >= -1 and small.max() <= 1
    flat = torch.zeros(2, 1, 8, 8)
    assert torch.allclose(zoo.Derivation(factor=2)(flat)[0], torch.zeros(2, 1, 4, 4))
    with pytest.raises(zoo.UsageError, match="do not divide by the factor 5"):
        zoo.Derivation(factor=5).spec(spec)
    with pytest.raises(zoo.UsageError, match="do not fit"):
        zoo.Derivation(factor=2, crop=96).spec(spec)


def test_image_rows_puts_images_of_different_sizes_side_by_side() -> None:
    rows = zoo.image_rows(torch.zeros(2, 1, 8, 8), torch.ones(2, 3, 32, 32))
    assert rows.shape == (2, 2, 3, 32, 32)


def test_a_step_may_ask_for_a_batch_of_its_own_size_and_resume_exactly() -> None:
    images = torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1).expand(100, 1, 2, 2).contiguous()
    sizes = [16, 16, 4, 4, 4, 64, 8, 32, 2]
    batches = TensorBatches(images, torch.arange(100) % 3, 16, seed=1)
    drawn = [batches.next(size) for size in sizes]
    assert [len(b) for b in drawn] == sizes
    assert batches.drawn == sum(sizes)
    assert drawn[5].labels.shape == (64,)
    # A pass never repeats an image; it ends when fewer are left than the batch asks for.
    first_pass = torch.cat([b.images[:, 0, 0, 0] for b in drawn[:5]])
    assert len(set(first_pass.tolist())) == 44

    resumed = TensorBatches(images, torch.arange(100) % 3, 16, seed=1)
    replay = TensorBatches(images, torch.arange(100) % 3, 16, seed=1)
    for size in sizes[:4]:
        replay.next(size)
    resumed.load_state(replay.state())
    for size in sizes[4:]:
        assert torch.equal(resumed.next(size).images, replay.next(size).images)
    with pytest.raises(zoo.UsageError, match="a batch of 101 images"):
        batches.next(101)


def test_progress_counts_images_and_kimg_drives_the_schedule() -> None:
    p = zoo.Progress(step=10, total_steps=2 ** 62, epoch=0, images=1500, total_images=6000)
    assert p.kimg == 1.5 and p.fraction == 0.25
    assert zoo.Progress(step=1, total_steps=10, epoch=0, images=64).fraction == 0.1


def test_kimg_trains_until_that_many_images_are_seen(mnist) -> None:
    result = run_cli("train", "dcgan", "--no-wandb", *TINY, "--data", "mnist", "--kimg", "0.1", "--out", "run")
    assert result.exit_code == 0, result.output
    meta = ckpt_io.read_meta(Path("run") / ckpt_io.FILENAME)["train"]
    assert meta["images"] == 112 and meta["step"] == 7  # 7 batches of 16: the first past 100 images
    assert meta["total_images"] == 100


class WithHelper(DCGAN):
    """DCGAN with a frozen feature network, as a perceptual loss would use."""

    def __init__(self, config, spec) -> None:
        super().__init__(config, spec)
        self.add_helper("features", torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)),
                        source="features.safetensors sha256:abc")


def test_frozen_helpers_are_used_but_never_trained_or_checkpointed() -> None:
    config = DCGAN.Config(g_width=4, d_width=4, latent_dim=8, batch_size=8)
    model = WithHelper(config, zoo.DataSpec("gray28", 1, 28, 28))
    model.optimizers = model.configure_optimizers()
    helper = model.helper("features")
    assert not any(k.startswith("features") or "_helpers" in k for k in model.state_dict())
    assert all(not p.requires_grad for p in helper.parameters())
    optimised = {id(p) for p in zoo.optimised_parameters(model.optimizers.values())}
    assert not any(id(p) in optimised for p in helper.parameters())
    model.train()
    assert not helper.training, "a helper's batch norm stays in eval mode while the model trains"
    model.to(torch.float64)
    assert next(helper.parameters()).dtype == torch.float64, "helpers move with the model"
    assert model.helper_sources() == {"features": "features.safetensors sha256:abc"}


def test_init_from_starts_a_new_run_from_another_runs_weights(mnist) -> None:
    first = run_cli("train", "dcgan", "--no-wandb", *TINY, "--data", "mnist", "--subset", "0:64",
                    "--steps", "2", "--out", "first")
    assert first.exit_code == 0, first.output
    captured = {}
    real_step = DCGAN.train_step

    def spy(self, batches, progress):
        captured.setdefault("weights", {k: v.clone() for k, v in self.state_dict().items()})
        return real_step(self, batches, progress)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DCGAN, "train_step", spy)
        warm = run_cli("train", "dcgan", "--no-wandb", *TINY, "--data", "mnist", "--subset", "64:128",
                       "--steps", "1", "--out", "warm", "--init-from", "first")
    assert warm.exit_code == 0, warm.output
    assert "warm start from" in warm.output
    source = ckpt_io.load(Path("first") / ckpt_io.FILENAME).state["model"]
    for key, value in source.items():
        assert torch.equal(captured["weights"][key], value), key
    info = json.loads(Path("warm/run.json").read_text())
    assert info["init_from"].endswith("first/checkpoint.safetensors")
    assert ckpt_io.read_meta(Path("warm") / ckpt_io.FILENAME)["train"]["step"] == 1  # a new run, not a resume

    both = run_cli("train", "dcgan", "--no-wandb", "--resume", "warm", "--init-from", "first")
    assert both.exit_code == 2 and "give one of them" in both.output


def test_init_from_a_run_whose_weights_fit_nothing_is_refused(mnist, toy) -> None:
    assert run_cli("train", "dcgan", "--no-wandb", *TINY, "--data", "mnist", "--subset", "0:64",
                   "--steps", "1", "--out", "first").exit_code == 0
    misfit = run_cli("train", "toy-upscaler", "--no-wandb", "--data", "mnist", "--subset", "0:64",
                     "--steps", "1", "--init-from", "first")
    assert misfit.exit_code == 2 and "none of its weights fit toy-upscaler" in misfit.output


def test_a_checkpoint_from_before_this_contract_samples_and_says_how_to_go_on(mnist) -> None:
    assert run_cli("train", "dcgan", "--no-wandb", *TINY, "--data", "mnist", "--subset", "0:64",
                   "--steps", "1", "--out", "old").exit_code == 0
    path = Path("old") / ckpt_io.FILENAME
    checkpoint = ckpt_io.load(path)
    for key in ("images", "total_images", "seconds", "minutes", "helpers"):  # what zoo 0.1 wrote
        checkpoint.train.pop(key)
    checkpoint.train["batches"] = {"epoch": 0, "position": 1}
    checkpoint.train["data"] = {k: checkpoint.train["data"][k]
                                for k in ("source", "size", "channels", "classes", "subset")}
    checkpoint.state.pop("engine")
    ckpt_io.save(path, checkpoint)
    assert run_cli("sample", "old", "--n", "4", "--out", "samples").exit_code == 0
    resumed = run_cli("train", "dcgan", "--no-wandb", "--resume", "old", "--steps", "3")
    assert resumed.exit_code == 2
    assert "before training counted images" in resumed.output and "--init-from old" in resumed.output
    assert len(resumed.output.strip().splitlines()) == 1


class ToyCaptioned(zoo.Model):
    """A text-conditional toy: the brightness of its images follows the text's embedding."""

    name = "toy-captioned"
    summary = "Draws a grey square as bright as its description's embedding says"
    family = "test"
    capabilities = frozenset({zoo.Capability.LATENT, zoo.Capability.TEXT_CONDITIONAL})

    def __init__(self, config, spec) -> None:
        super().__init__(config, spec)
        self.scale = torch.nn.Parameter(torch.ones(()))

    @property
    def latent_dim(self) -> int:
        return 2

    def generate(self, z, conditions=None):
        embedding = conditions["text"]  # always embeddings by now: zoo encodes prompts first
        level = (self.scale * embedding[:, 0]).clamp(-1, 1)
        return level.view(-1, 1, 1, 1).expand(-1, self.spec.channels, self.spec.height, self.spec.width)


def test_a_text_condition_goes_from_the_command_line_to_the_model(mnist, extra_plugins) -> None:
    from zoo.data import text

    extra_plugins(FakeEntryPoint("toy-captioned", "tests.test_contract:ToyCaptioned", "zoo-toy"))
    torch.manual_seed(0)
    encoder = text.TextEncoder(text.Vocabulary(["a", "bird", "small", "red", "on", "branch"]),
                               text.EncoderConfig(width=4, dim=4))
    model = ToyCaptioned(ToyCaptioned.Config(), zoo.DataSpec("captions", 1, 8, 8, conditions=("text",), text_dim=4))
    ckpt_io.save(Path("toy.safetensors"), ckpt_io.Checkpoint(
        "toy-captioned", "1", {"batch_size": 4}, model.spec.to_dict(), {"step": 0},
        {"model": model.state_dict(), "text_encoder": encoder.to_state()}))
    short = run_cli("sample", "toy.safetensors", "--n", "2", "--text", "a bird", "--out", "short")
    long = run_cli("sample", "toy.safetensors", "--n", "2", "--text", "a small red bird on a branch", "--out", "long")
    assert short.exit_code == 0 and long.exit_code == 0, short.output + long.output
    levels = encoder.encode(["a bird", "a small red bird on a branch"])[:, 0].clamp(-1, 1)
    expected = [round((float(v) + 1) * 127.5) for v in levels]
    got = [Image.open(f"{name}/0000.png").getpixel((0, 0)) for name in ("short", "long")]
    assert got == expected and got[0] != got[1]
    missing = run_cli("sample", "toy.safetensors", "--n", "2")
    assert missing.exit_code == 2 and 'give one with --text "..."' in missing.output
    refused = run_cli("train", "toy-captioned", "--data", "mnist", "--steps", "1", "--no-wandb")
    assert refused.exit_code == 2 and "needs captioned data; mnist has no captions" in refused.output
    ckpt_io.save(Path("bare.safetensors"), ckpt_io.Checkpoint(
        "toy-captioned", "1", {"batch_size": 4}, model.spec.to_dict(), {"step": 0}, {"model": model.state_dict()}))
    bare = run_cli("sample", "bare.safetensors", "--text", "a bird")
    assert bare.exit_code != 0 and "holds no text encoder" in bare.output


def test_a_model_without_text_refuses_a_text(mnist, trained, extra_plugins) -> None:
    extra_plugins(FakeEntryPoint("toy-captioned", "tests.test_contract:ToyCaptioned", "zoo-toy"))
    run = trained("train", "dcgan", *TINY, "--data", "mnist", "--subset", "0:64", "--steps", "1")
    result = run_cli("sample", str(run), "--text", "a seven", "--n", "2")
    assert result.exit_code == 2
    assert "dcgan cannot draw from a --text" in result.output and "toy-captioned" in result.output


class KnownGradients(zoo.Model):
    """Two one-weight networks whose losses are ``k * weight``: each update's gradient is k."""

    name = "known-gradients"

    def __init__(self) -> None:
        super().__init__(zoo.Config(), zoo.DataSpec("none", 1, 1, 1))
        self.critic = torch.nn.Parameter(torch.zeros(()))
        self.generator = torch.nn.Parameter(torch.zeros(()))
        self.seen: list[tuple[str, float]] = []
        """(optimiser, the gradient its step was given), for every update that was made."""

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        optimizers = {name: torch.optim.SGD([getattr(self, name)], lr=1.0) for name in ("critic", "generator")}
        for name, optimizer in optimizers.items():
            weight = getattr(self, name)
            optimizer.register_step_pre_hook(
                lambda opt, args, kwargs, name=name, weight=weight: self.seen.append((name, weight.grad.item())))
        return optimizers


def scaled(growth_interval: int) -> KnownGradients:
    """The model, stepping through an engine with fp16's dynamic loss scaler: CUDA's
    GradScaler, made for the CPU (the same bookkeeping; Engine refuses fp16 off CUDA)."""
    from zoo.training.engine import Engine

    model = KnownGradients()
    model.optimizers = model.configure_optimizers()
    model.engine = Engine()
    model.engine.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=growth_interval)
    return model


def test_a_loss_scaler_unscales_each_critic_update_by_the_scale_it_was_scaled_by() -> None:
    """A critic that updates three times in a step, then the generator: each update sees its
    own gradient, and the scale grows once per step (growth_interval 1), not between updates."""
    model = scaled(growth_interval=1)
    for step in range(2):
        for k in (1.0, 2.0, 3.0):
            model.update("critic", k * model.critic)
        model.update("generator", 5.0 * model.generator)
        model.engine.end_step()
        assert model.seen == [("critic", 1.0), ("critic", 2.0), ("critic", 3.0), ("generator", 5.0)], step
        assert model.engine.scaler.get_scale() == 1024.0 * 2 ** (step + 1)
        model.seen.clear()
    assert model.critic.item() == -12.0 and model.generator.item() == -10.0


def test_a_loss_scaler_keeps_gradients_made_before_another_optimiser_steps_twice() -> None:
    """Two losses backpropagated before either optimiser steps, and the first optimiser
    stepping again before the second steps: every gradient is unscaled by its own scale."""
    model = scaled(growth_interval=1)
    model.manual_backward(2.0 * model.critic)
    model.manual_backward(7.0 * model.generator)
    model.optimizer_step("critic")
    model.manual_backward(3.0 * model.critic)
    model.optimizer_step("critic")
    model.optimizer_step("generator")
    model.engine.end_step()
    assert model.seen == [("critic", 2.0), ("critic", 3.0), ("generator", 7.0)]


def test_a_loss_scaler_skips_an_overflowing_update_then_shrinks_and_grows_again() -> None:
    """An infinite gradient in one critic update skips that update alone and halves the
    scale at the end of the step; the scale doubles after each growth_interval (2) clean steps."""
    model = scaled(growth_interval=2)
    scales = []
    for step in range(5):
        overflow = step == 2
        for k in (1.0, 2.0, 3.0):
            model.update("critic", (math.inf if overflow and k == 2.0 else k) * model.critic)
        model.update("generator", 5.0 * model.generator)
        model.engine.end_step()
        expected = [("critic", 1.0), *([] if overflow else [("critic", 2.0)]), ("critic", 3.0), ("generator", 5.0)]
        assert model.seen == expected, step
        model.seen.clear()
        scales.append(model.engine.scaler.get_scale())
    assert scales == [1024.0, 2048.0, 1024.0, 1024.0, 2048.0]


def test_kimg_runs_draw_previews_as_images_are_seen(mnist) -> None:
    result = run_cli("train", "dcgan", "--no-wandb", *TINY, "--data", "mnist", "--kimg", "0.64", "--out", "run")
    assert result.exit_code == 0, result.output
    frames = sorted(Path("run/progress").glob("step-*.png"))
    assert len(frames) == 40  # one each 16 images: every step of 16
    assert "4611686018427387904" not in result.output and "/640.0" not in result.output


def test_a_run_stopped_by_its_time_budget_trains_on_with_steps(mnist) -> None:
    first = run_cli("train", "dcgan", "--no-wandb", *TINY, "--data", "mnist", "--subset", "0:64",
                    "--steps", "100000", "--minutes", "0.002", "--out", "run")
    assert first.exit_code == 0 and "or --steps N to train without a time limit" in first.output
    step = ckpt_io.read_meta(Path("run") / ckpt_io.FILENAME)["train"]["step"]
    more = run_cli("train", "dcgan", "--no-wandb", "--resume", "run", "--steps", str(step + 2))
    assert more.exit_code == 0, more.output
    assert ckpt_io.read_meta(Path("run") / ckpt_io.FILENAME)["train"]["step"] == step + 2


def test_a_step_may_report_no_metrics(mnist, monkeypatch) -> None:
    real_step = DCGAN.train_step

    def silent(self, batches, progress):  # metrics are optional
        real_step(self, batches, progress)
        return {}

    monkeypatch.setattr(DCGAN, "train_step", silent)
    result = run_cli("train", "dcgan", "--no-wandb", *TINY, "--data", "mnist", "--subset", "0:64",
                     "--steps", "3", "--out", "run")
    assert result.exit_code == 0, result.output


def test_unpaired_domains_keep_their_own_passes_for_batches_of_any_size() -> None:
    a = torch.zeros(40, 1, 2, 2, dtype=torch.uint8)
    b = torch.arange(13, dtype=torch.uint8).view(13, 1, 1, 1).expand(13, 1, 2, 2).contiguous()
    batches = TensorBatches(a, None, 4, seed=2, targets=b, paired=False)
    drawn = [batches.next(size) for size in (4, 3, 5, 4, 2, 6)]
    assert [len(x.targets) for x in drawn] == [4, 3, 5, 4, 2, 6]
    first_pass = torch.cat([x.targets[:, 0, 0, 0] for x in drawn[:3]])  # 12 of 13: no repeats
    assert len(set(first_pass.tolist())) == 12
    replay = TensorBatches(a, None, 4, seed=2, targets=b, paired=False)
    for size in (4, 3, 5):
        replay.next(size)
    resumed = TensorBatches(a, None, 4, seed=2, targets=b, paired=False)
    resumed.load_state(replay.state())
    for size in (4, 2, 6):
        assert torch.equal(resumed.next(size).targets, replay.next(size).targets)
    with pytest.raises(zoo.UsageError, match="a batch of 14 images"):
        batches.next(14)


def test_precision_and_clipping_are_kept_on_resume(mnist, monkeypatch: pytest.MonkeyPatch) -> None:
    from zoo.pipelines import run_files

    monkeypatch.setattr(run_files, "native_bf16", lambda device: False)  # as on this CI's CPUs: say it is slow
    first = run_cli("train", "dcgan", "--no-wandb", *TINY, "--data", "mnist", "--subset", "0:64", "--steps", "1",
                    "--precision", "bf16", "--clip-grad", "5", "--out", "run")
    assert first.exit_code == 0, first.output
    assert json.loads(Path("run/run.json").read_text())["precision"] == "bf16"
    assert "has no native bf16" in first.output and "--precision fp32 is the fast choice" in first.output
    changed = run_cli("train", "dcgan", "--no-wandb", "--resume", "run", "--steps", "2", "--clip-grad", "1")
    assert changed.exit_code == 2 and "that run trained with --clip-grad 5.0" in changed.output
    resumed = run_cli("train", "dcgan", "--no-wandb", "--resume", "run", "--steps", "2")
    assert resumed.exit_code == 0 and "bf16 | clip 5" in resumed.output.replace("\n", " ")


def test_a_helper_assigned_as_an_attribute_is_refused() -> None:
    config = DCGAN.Config(g_width=4, d_width=4, latent_dim=8, batch_size=8)
    model = DCGAN(config, zoo.DataSpec("gray28", 1, 28, 28))
    model.features = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="already one of dcgan's networks"):
        model.add_helper("features", model.features, source="x")


def test_latent_commands_without_text_refuse_text_models(extra_plugins) -> None:
    extra_plugins(FakeEntryPoint("toy-captioned", "tests.test_contract:ToyCaptioned", "zoo-toy"))
    from zoo.data import text

    encoder = text.TextEncoder(text.Vocabulary(["a", "bird"]), text.EncoderConfig(width=4, dim=4))
    model = ToyCaptioned(ToyCaptioned.Config(), zoo.DataSpec("captions", 1, 8, 8, conditions=("text",), text_dim=4))
    ckpt_io.save(Path("toy.safetensors"), ckpt_io.Checkpoint(
        "toy-captioned", "1", {"batch_size": 4}, model.spec.to_dict(), {"step": 0},
        {"model": model.state_dict(), "text_encoder": encoder.to_state()}))
    result = run_cli("explore", "toy.safetensors", "--dim", "0")
    assert result.exit_code == 2 and "this command takes none" in result.output
    walk = run_cli("interpolate", "toy.safetensors", "--from-seed", "1", "--to-seed", "2")
    assert walk.exit_code == 2 and "give --from-text and --to-text" in walk.output
