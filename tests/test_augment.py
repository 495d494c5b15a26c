"""Differentiable augmentation (zoo.augment), the small-data defaults that turn it on, and
the conditional generator's class-conditional batch norm."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import zoo
from zoo import augment, registry
from zoo.data.images import to_float
from zoo.records import checkpoint as ckpt_io

from .conftest import TINY, run_cli


def dot_images(n: int = 64, size: int = 28) -> torch.Tensor:
    """Black images, each with one white pixel in the middle."""
    images = -torch.ones(n, 1, size, size)
    images[:, :, size // 2, size // 2] = 1.0
    return images


def test_translation_shifts_each_image_by_whole_pixels_within_an_eighth() -> None:
    torch.manual_seed(0)
    moved = augment.translation(dot_images())
    assert torch.equal(torch.sort(moved.flatten())[0], torch.sort(dot_images().flatten())[0])
    where = (moved[:, 0] == 1).nonzero()[:, 1:] - 14  # (dy, dx) of each image's dot
    assert where.abs().max() == 4 and len({tuple(d) for d in where.tolist()}) > 10
    edges = torch.arange(16.0).view(1, 1, 4, 4).repeat(200, 1, 1, 1)  # values come from the edge
    assert set(augment.translation(edges).unique().tolist()) <= set(range(16))


def test_cutout_blanks_a_square_of_half_the_size_and_nothing_else() -> None:
    torch.manual_seed(0)
    images = torch.full((200, 3, 28, 28), 0.7)
    cut = augment.cutout(images)
    blank = cut[:, 0] == 0
    assert torch.equal(blank, (cut == 0).all(dim=1))  # the same square in every channel
    assert blank.flatten(1).sum(1).max() == 14 * 14 and blank.flatten(1).sum(1).min() > 0
    assert torch.all(cut[~blank.unsqueeze(1).expand_as(cut)] == 0.7)


def test_color_changes_brightness_and_contrast_per_image() -> None:
    torch.manual_seed(0)
    images = dot_images(32)
    changed = augment.color(images)
    spans = changed.amax(dim=(1, 2, 3)) - changed.amin(dim=(1, 2, 3))
    assert changed.shape == images.shape and spans.std() > 0.1 and (changed.mean((1, 2, 3)).std() > 0.1)


def test_the_generator_learns_through_every_operation() -> None:
    x = torch.randn(8, 3, 16, 16, requires_grad=True)
    augment.augment(x, "translation,cutout,color").square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_an_unknown_operation_is_a_one_line_error() -> None:
    with pytest.raises(zoo.UsageError, match="unknown operation 'flip'.*translation, cutout, color"):
        registry.get("dcgan").Config(augment="translation,flip")


def test_the_discriminator_sees_augmented_real_and_fake_images(mnist) -> None:
    torch.manual_seed(0)
    cls = registry.get("dcgan")
    model = cls(cls.Config(**cls.tiny_config, augment="cutout"), mnist.spec)
    model.optimizers = model.configure_optimizers()
    seen: list[torch.Tensor] = []
    critic = model.critic

    def watched(images: torch.Tensor, labels: torch.Tensor | None):
        seen.append(images.detach())
        return critic(images, labels)

    model.critic = watched
    real = to_float(mnist.images[:8])

    class One:
        def next(self) -> zoo.Batch:
            return zoo.Batch(real)

    model.train_step(One(), zoo.Progress(1, 10, 0))
    assert len(seen) == 3  # real and fake for D, fake for G
    for images in seen:  # a 14 x 14 square of exact zeros in every image: cutout
        zeros = (images[:, 0] == 0).flatten(1).sum(1)
        assert torch.all(zeros >= 49)
    assert not torch.any((real[:, 0] == 0).flatten(1).sum(1) >= 49)


def test_small_data_turns_augmentation_on_and_says_so(mnist) -> None:
    result = run_cli("train", "dcgan", "--no-wandb", *TINY, "--data", "mnist", "--subset", "0:64",
                     "--steps", "1", "--out", "small")
    assert result.exit_code == 0, result.output
    assert "small data set; using augment=translation,cutout" in " ".join(result.output.split())
    assert json.loads(Path("small/run.json").read_text())["config"]["augment"] == "translation,cutout"
    meta = ckpt_io.read_meta(Path("small") / ckpt_io.FILENAME)
    assert meta["config"]["augment"] == "translation,cutout"


def test_a_users_choice_wins_over_the_small_data_values(mnist) -> None:
    result = run_cli("train", "dcgan", "--no-wandb", *TINY, "--data", "mnist", "--subset", "0:64",
                     "--steps", "1", "--set", "augment=", "--out", "mine")
    assert result.exit_code == 0, result.output
    assert "small data set" not in result.output
    assert json.loads(Path("mine/run.json").read_text())["config"]["augment"] == ""


def test_enough_data_keeps_the_papers_defaults(mnist) -> None:
    result = run_cli("train", "dcgan", "--no-wandb", *TINY, "--data", "mnist", "--subset", "0:2000",
                     "--steps", "1", "--out", "big")
    assert result.exit_code == 0, result.output
    assert "small data set" not in result.output
    assert json.loads(Path("big/run.json").read_text())["config"]["augment"] == ""


def test_class_norms_give_each_class_its_own_scale_and_shift(mnist) -> None:
    cls = registry.get("cgan")
    torch.manual_seed(0)
    model = cls(cls.Config(**cls.tiny_config, g_conditioning="batchnorm", ema=0.0), mnist.spec).eval()
    norms = [m for m in model.generator.modules() if type(m).__name__ == "ClassBatchNorm"]
    assert len(norms) == 3  # every batch norm of the lab generator
    z = torch.randn(4, cls.tiny_config["latent_dim"])
    sevens = model.generate(z, {"class": torch.full((4,), 7)})
    threes = model.generate(z, {"class": torch.full((4,), 3)})
    with torch.no_grad():
        norms[-1].shift.weight[7] += 1.0  # only class 7's shift in the last norm moves
    assert not torch.allclose(model.generate(z, {"class": torch.full((4,), 7)}), sevens)
    assert torch.allclose(model.generate(z, {"class": torch.full((4,), 3)}), threes)
    plain = cls(cls.Config(**cls.tiny_config, g_conditioning="input"), mnist.spec)  # the code joins z only
    assert not any(type(m).__name__ == "ClassBatchNorm" for m in plain.modules())
    assert cls.Config().g_conditioning == "batchnorm"  # the default since issue 12
