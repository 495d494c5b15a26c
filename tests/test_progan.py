"""ProGAN: each of the paper's parts on its own, then growth, previews and exact resumption
through the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import zoo
from zoo.plugins.progan import ProGAN, ProGANConfig, Schedule, critic_loss, parse_batch_sizes, real_at, schedule
from zoo.plugins.progan.layers import EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm
from zoo.records import checkpoint as ckpt_io

from .conftest import checkpoint_tensors, run_cli

SPEC = zoo.DataSpec("test", 1, 32, 32)
TINY_KEYS = ["--set", "fmap_base=32", "--set", "fmap_max=8", "--set", "latent_dim=8", "--batch-size", "8"]


def tiny(**changes) -> ProGAN:
    torch.manual_seed(0)
    config = ProGANConfig(**{**ProGAN.tiny_config, **changes})
    return ProGAN(config, SPEC)


# -- equalized learning rate -----------------------------------------------------------------------

def test_equalized_weights_are_unit_normal_and_scaled_by_he_constant_at_run_time() -> None:
    torch.manual_seed(0)
    conv = EqualizedConv2d(64, 32, 3)
    assert conv.weight.std().item() == pytest.approx(1.0, abs=0.02)
    assert conv.scale == pytest.approx(math.sqrt(2) / math.sqrt(64 * 9))
    x = torch.randn(2, 64, 8, 8)
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight * conv.scale, conv.bias, padding=1))
    dense = EqualizedLinear(512, 10, gain=1.0)
    assert dense.scale == pytest.approx(1 / math.sqrt(512))


def _relative_step(layer: EqualizedConv2d, x: torch.Tensor, lr: float = 1e-3) -> float:
    """How far one Adam step moves a layer's effective weights, relative to their scale
    (He's standard deviation for its fan-in)."""
    before = (layer.weight * layer.scale).detach().clone()
    optimizer = torch.optim.Adam(layer.parameters(), lr, betas=(0.0, 0.99))
    layer(x).square().mean().backward()
    optimizer.step()
    after = (layer.weight * layer.scale).detach()
    return float((after - before).abs().mean() / (math.sqrt(2) / math.sqrt(layer.weight[0].numel())))


def test_adam_trains_every_layer_at_the_same_speed_only_with_equalized_learning_rate() -> None:
    torch.manual_seed(0)
    narrow, wide = torch.randn(4, 4, 8, 8), torch.randn(4, 256, 8, 8)
    equal = [_relative_step(EqualizedConv2d(c.shape[1], 8, 3), c) for c in (narrow, wide)]
    plain = [_relative_step(EqualizedConv2d(c.shape[1], 8, 3, equalized=False), c) for c in (narrow, wide)]
    assert equal[0] / equal[1] == pytest.approx(1.0, rel=0.05)  # a fan-in 64 times larger: the same speed
    assert plain[1] / plain[0] > 5  # He's init alone: the wide layer moves ~8x faster


# -- pixel norm --------------------------------------------------------------------------------------

def test_pixel_norm_gives_each_pixel_a_unit_feature_vector_whatever_its_scale() -> None:
    x = torch.randn(3, 16, 5, 5) * torch.rand(3, 1, 5, 5) * 10
    y = PixelNorm()(x)
    assert torch.allclose(y.pow(2).mean(dim=1), torch.ones(3, 5, 5), atol=1e-4)
    assert torch.allclose(PixelNorm()(7 * x), y, atol=1e-5)


def test_the_generator_normalises_after_every_convolution() -> None:
    model = tiny()
    kinds = [type(m).__name__ for m in model.generator.blocks[0]]
    assert kinds == ["Upsample", "EqualizedConv2d", "LeakyReLU", "PixelNorm", "EqualizedConv2d", "LeakyReLU",
                     "PixelNorm"]
    assert not any(isinstance(m, PixelNorm) for m in model.discriminator.modules())


# -- minibatch standard deviation ------------------------------------------------------------------

def _paper_stddev(x: torch.Tensor, group: int) -> torch.Tensor:
    """The paper's code: reshape into groups of ``group`` (image i in group i mod N/group)."""
    n, c, h, w = x.shape
    y = x.view(group, n // group, c, h, w)
    y = (y - y.mean(0)).pow(2).mean(0)
    y = torch.sqrt(y + 1e-8).mean(dim=(1, 2, 3))
    return torch.cat([x, y.repeat(group).view(n, 1, 1, 1).expand(n, 1, h, w)], dim=1)


def test_minibatch_stddev_matches_the_paper_when_the_batch_divides() -> None:
    x = torch.randn(8, 5, 4, 4)
    assert torch.allclose(MinibatchStdDev(4)(x), _paper_stddev(x, 4), atol=1e-6)


@pytest.mark.parametrize("n", [1, 3, 7])
def test_minibatch_stddev_takes_a_batch_smaller_than_or_not_dividing_into_its_groups(n: int) -> None:
    x = torch.randn(n, 5, 4, 4, requires_grad=True)
    y = MinibatchStdDev(4)(x)
    assert y.shape == (n, 6, 4, 4)
    groups = math.ceil(n / min(4, n))
    for g in range(groups):
        members = x[g::groups].detach()
        expected = torch.sqrt(members.var(0, unbiased=False) + 1e-8).mean()
        assert torch.allclose(y[g::groups, 5], expected.expand(len(members), 4, 4), atol=1e-6)
    # a gradient penalty differentiates through it twice
    (grad,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    grad.square().sum().backward()


def test_the_discriminator_scores_a_last_batch_of_any_size() -> None:
    model = tiny()
    for n in (1, 3, 5):
        assert model.discriminator(torch.randn(n, 1, 32, 32), 3).shape == (n, 1)


# -- the loss ----------------------------------------------------------------------------------------

def test_critic_loss_is_wgan_gp_with_the_drift_term() -> None:
    real = torch.tensor([[2.0], [4.0]], requires_grad=True)
    fake = torch.tensor([[1.0], [-1.0]])
    loss, parts = critic_loss(real, fake, torch.tensor(0.5), gp_weight=10.0, drift=0.001)
    assert parts["wasserstein"].item() == pytest.approx(3.0)
    assert parts["drift"].item() == pytest.approx((4 + 16) / 2)
    assert loss.item() == pytest.approx(-3.0 + 10 * 0.5 + 0.001 * 10)
    loss.backward()  # the drift pulls each real score toward zero: d/dD(x) = -1/N + 2 eps D(x) / N
    assert torch.allclose(real.grad, torch.tensor([[-0.5 + 0.002], [-0.5 + 0.004]]))


def test_a_step_reports_its_parts_and_they_add_up() -> None:
    model = tiny()
    model.optimizers = model.configure_optimizers()
    values = model.train_step(FixedBatches(), zoo.Progress(step=0, total_steps=0, epoch=0))
    assert values["loss_d"].item() == pytest.approx(
        -values["wasserstein"].item() + 10 * values["gradient_penalty"].item() + 0.001 * values["drift"].item(),
        rel=1e-5, abs=1e-6)
    assert (values["resolution"], values["alpha"]) == (4.0, 1.0)


class FixedBatches:
    batch_size = 8

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def next(self, size: int | None = None) -> zoo.Batch:
        self.sizes.append(size or self.batch_size)
        return zoo.Batch(torch.rand(size or self.batch_size, 1, 32, 32) * 2 - 1)


# -- the schedule and the fade -----------------------------------------------------------------------

def test_alpha_rises_linearly_through_each_fade_then_holds() -> None:
    s = Schedule(levels=3, stage=100, fade=50)
    assert [s.at(i) for i in (0, 99)] == [(0, 1.0), (0, 1.0)]
    assert [s.at(i) for i in (100, 125, 149, 150, 249)] == [(1, 0.0), (1, 0.5), (1, 0.98), (1, 1.0), (1, 1.0)]
    assert s.at(250) == (2, 0.0) and s.at(275) == (2, 0.5)
    assert s.grown == 100 + 2 * 150 and s.at(10_000) == (2, 1.0)


def test_an_unset_schedule_shares_kimg_equally_between_phases() -> None:
    s = schedule(ProGANConfig(), levels=4, total_images=70_000)  # 4 stages and 3 fades
    assert (s.stage, s.fade) == (10_000, 10_000) and s.grown == 70_000
    fixed = schedule(ProGANConfig(stage_kimg=5, fade_kimg=2), levels=4, total_images=70_000)
    assert (fixed.stage, fixed.fade) == (5000, 2000)
    half = schedule(ProGANConfig(stage_kimg=10), levels=4, total_images=85_000)  # the fades share the rest
    assert (half.stage, half.fade) == (10_000, 15_000) and half.grown == 85_000
    assert ProGAN.default_kimg(ProGANConfig(stage_kimg=10), SPEC) == 85  # and the default length agrees
    with pytest.raises(zoo.UsageError, match="rounds to no images"):
        schedule(ProGANConfig(), levels=4, total_images=3)


def test_the_schedule_is_fixed_at_the_first_step_and_kept_through_a_resume() -> None:
    model = tiny(stage_kimg=None, fade_kimg=None)
    model.optimizers = model.configure_optimizers()
    model.train_step(FixedBatches(), zoo.Progress(step=0, total_steps=0, epoch=0, total_images=70_000))
    state = model.extra_state()
    assert state["schedule"] == {"levels": 4, "stage": 10_000, "fade": 10_000}
    resumed = tiny(stage_kimg=None, fade_kimg=None)
    resumed.load_extra_state(state)
    # asked for more (--resume --kimg 300, or --steps): the growth it was on goes on as it was
    assert resumed.schedule(300_000) == resumed.schedule(0) == model.schedule(70_000)


def test_at_alpha_zero_each_network_is_the_one_before_growth() -> None:
    model = tiny()
    z = torch.randn(4, 8)
    for level in (1, 2, 3):
        grown = model.generator(z, level, 0.0)
        before = F.interpolate(model.generator(z, level - 1, 1.0), scale_factor=2, mode="nearest")
        assert torch.allclose(grown, before, atol=1e-6)
        images = torch.randn(4, 1, 4 * 2 ** level, 4 * 2 ** level)
        assert torch.allclose(model.discriminator(images, level, 0.0),
                              model.discriminator(F.avg_pool2d(images, 2), level - 1, 1.0), atol=1e-5)
    half = model.generator(z, 2, 0.5)
    assert torch.allclose(half, torch.lerp(model.generator(z, 2, 0.0), model.generator(z, 2, 1.0), 0.5), atol=1e-6)


def test_real_images_are_shown_at_the_stage_resolution_and_blended_in_a_fade() -> None:
    images = torch.rand(2, 1, 32, 32)
    assert real_at(images, 3, 4, 1.0) is images
    assert torch.allclose(real_at(images, 1, 4, 1.0), F.avg_pool2d(images, 4))
    faded = real_at(images, 2, 4, 0.0)
    assert torch.allclose(faded, F.interpolate(F.avg_pool2d(images, 4), scale_factor=2, mode="nearest"))


def test_batches_shrink_with_resolution_and_keys_override_them() -> None:
    model = ProGAN(ProGANConfig(batch_size=64, batch_sizes="4:128"), zoo.DataSpec("t", 3, 128, 128))
    assert [model.batch_size(level) for level in range(6)] == [128, 64, 64, 64, 32, 16]
    batches = FixedBatches()
    small = tiny(batch_sizes="4:5")
    small.optimizers = small.configure_optimizers()
    small.train_step(batches, zoo.Progress(step=0, total_steps=0, epoch=0))
    assert batches.sizes == [5]
    with pytest.raises(zoo.UsageError, match="RESOLUTION:SIZE"):
        parse_batch_sizes("4=128")


def test_adam_starts_afresh_when_a_fade_begins_and_when_it_ends() -> None:
    model = tiny()  # 16 images a stage and a fade: 2 steps of 8 each

    def steps(*images: int) -> list[int]:
        for i, seen in enumerate(images):
            model.train_step(FixedBatches(), zoo.Progress(step=len(done) + i, total_steps=0, epoch=0, images=seen))
        done.extend(images)
        return sorted({int(s["step"]) for s in model.optimizers["generator"].state.values()})

    done: list[int] = []
    model.optimizers = model.configure_optimizers()
    assert steps(0, 8) == [2]
    assert steps(16, 24) == [2]  # the fade to 8 px began at 16 images: counted from there
    assert steps(32) == [1]  # it ended: afresh again
    assert steps(40) == [2]


# -- data sizes ----------------------------------------------------------------------------------------

def test_28_pixel_data_is_padded_to_32_and_samples_cropped_back() -> None:
    model = ProGAN(ProGANConfig(**ProGAN.tiny_config), zoo.DataSpec("mnist", 1, 28, 28))
    assert (model.size, model.levels, model.pad) == (32, 4, 2)
    padded = model.padded(torch.zeros(1, 1, 28, 28))
    assert padded.shape == (1, 1, 32, 32) and padded[0, 0, 0, 0] == -1 and padded[0, 0, 16, 16] == 0
    assert model.sample(3).shape == (3, 1, 28, 28)


def test_odd_sizes_are_padded_unevenly_and_train() -> None:
    model = ProGAN(ProGANConfig(**ProGAN.tiny_config), zoo.DataSpec("odd", 1, 27, 27))
    assert (model.pad, model.pad_after) == (2, 3)
    model.optimizers = model.configure_optimizers()

    class OddBatches(FixedBatches):
        def next(self, size: int | None = None) -> zoo.Batch:
            return zoo.Batch(torch.rand(size or 8, 1, 27, 27) * 2 - 1)

    model.load_extra_state({"level": 3, "alpha": 1.0, "images": 0})
    model.train_step(OddBatches(), zoo.Progress(step=0, total_steps=0, epoch=0, images=10**6))
    assert model.sample(2).shape == (2, 1, 27, 27)


@pytest.mark.parametrize("shape,said", [((20, 30), "square"), ((4, 4), "at least 8")])
def test_sizes_it_cannot_grow_to_are_refused(shape, said) -> None:
    with pytest.raises(zoo.UsageError, match=said):
        ProGAN.check_data(ProGANConfig(), zoo.DataSpec("t", 1, *shape))


def test_samples_are_drawn_at_the_resolution_reached_and_upsampled() -> None:
    model = tiny()
    model.load_extra_state({"level": 1, "alpha": 1.0, "resolution": 8, "images": 0})
    images = model.sample(2)
    assert images.shape == (2, 1, 32, 32)
    blocks = images.unfold(2, 4, 4).unfold(3, 4, 4)  # 8 x 8 cells of 4 x 4 equal pixels
    assert torch.equal(blocks, blocks[..., :1, :1].expand_as(blocks))


# -- through the CLI ---------------------------------------------------------------------------------

def train(*args: str):
    return run_cli("train", "progan", "--no-wandb", "--data", "mnist", "--seed", "3", *TINY_KEYS, *args)


def test_a_run_resumed_in_the_middle_of_a_fade_matches_an_uninterrupted_one(mnist) -> None:
    keys = ["--set", "stage_kimg=0.024", "--set", "fade_kimg=0.032"]  # 3 steps a stage, 4 a fade
    straight = train(*keys, "--steps", "12", "--out", "straight")
    assert straight.exit_code == 0, straight.output
    first = train(*keys, "--steps", "5", "--out", "split")  # 40 images: the last step 8 into level 1's fade
    assert first.exit_code == 0, first.output
    extra = ckpt_io.load(Path("split") / ckpt_io.FILENAME).state["extra"]
    assert (extra["resolution"], extra["alpha"], extra["images"]) == (8, 0.25, 40)
    second = run_cli("train", "progan", "--no-wandb", "--resume", "split", "--steps", "12")
    assert second.exit_code == 0, second.output
    a, b = checkpoint_tensors(Path("straight")), checkpoint_tensors(Path("split"))
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:5]
    records = [json.loads(line) for line in Path("split/metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 13))
    assert [(r["resolution"], r["alpha"]) for r in records[3:8]] == [
        (8, 0.0), (8, 0.25), (8, 0.5), (8, 0.75), (8, 1.0)]


def test_a_run_with_no_length_grows_to_full_size_and_shows_it(mnist) -> None:
    result = train("--set", "stage_kimg=0.008", "--set", "fade_kimg=0.008", "--out", "run")
    assert result.exit_code == 0, result.output
    assert "56 images" in result.output  # 4 stages and 3 fades of 8 images
    records = [json.loads(line) for line in Path("run/metrics.jsonl").read_text().splitlines()]
    assert [r["resolution"] for r in records] == [4, 8, 8, 16, 16, 32, 32]
    said = " ".join(result.output.split())
    assert "images) resolution 32 alpha 1 loss_d" in said  # where it stands first, then the losses
    frame = Image.open(sorted(Path("run/progress").glob("step-*.png"))[0])
    last = Image.open(sorted(Path("run/progress").glob("step-*.png"))[-1])
    assert frame.size == last.size  # every preview at the data's size, early ones upsampled
    assert Image.open("run/progress.gif").n_frames == 7
    sampled = run_cli("sample", "run", "--n", "4", "--out", "samples")
    assert sampled.exit_code == 0, sampled.output
    assert Image.open(sorted(Path("samples").glob("0*.png"))[0]).size == (28, 28)
