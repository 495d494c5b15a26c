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


# -- adaptive discriminator augmentation ----------------------------------------------------------

def test_ada_at_p_zero_changes_nothing_and_at_p_one_changes_every_image() -> None:
    torch.manual_seed(0)
    pipeline = augment.AdaptiveAugment()
    images = torch.rand(32, 3, 16, 16) * 2 - 1
    assert torch.equal(pipeline(images), images)
    pipeline.p.fill_(1.0)
    changed = (pipeline(images) - images).flatten(1).abs().amax(1)
    assert (changed > 1e-3).all()


@pytest.mark.parametrize("channels", [1, 3])
def test_ada_operations_are_differentiable(channels: int) -> None:
    """The generator learns through the augmentations, as through DiffAugment's."""
    torch.manual_seed(0)
    p = torch.tensor(1.0)
    images = (torch.rand(8, channels, 16, 16) * 2 - 1).requires_grad_(True)
    for operation in (augment.ada_geometric, augment.ada_color):
        (grad,) = torch.autograd.grad(operation(images, p).square().sum(), images)
        assert torch.isfinite(grad).all() and (grad.flatten(1).abs().sum(1) > 0).all()


def test_ada_geometry_moves_pixels_and_never_invents_values() -> None:
    """Bilinear resampling with reflected borders: every output is a blend of the image's own
    pixels, within its range; at p = 1 a dot lands away from the centre in most images."""
    torch.manual_seed(0)
    dots = dot_images(400, 32)
    moved = augment.ada_geometric(dots, torch.tensor(1.0))
    assert moved.min() >= -1 - 1e-5 and moved.max() <= 1 + 1e-5
    brightest = moved.flatten(1).argmax(1)
    assert (brightest != 16 * 32 + 16).float().mean() > 0.8


def test_ada_brightness_and_contrast_are_as_stated() -> None:
    """On black-at-zero images only brightness acts: each image's shift is N(0, 0.2). On images
    of mean 0 and std 1, contrast multiplies each image's std by 2^N(0, 0.5)."""
    torch.manual_seed(0)
    p = torch.tensor(1.0)
    for channels in (1, 3):
        shifted = augment.ada_color(torch.zeros(4000, channels, 4, 4), p)
        per_image = shifted.mean(dim=(1, 2, 3))
        assert torch.allclose(shifted, per_image.view(-1, 1, 1, 1).expand_as(shifted), atol=1e-5)
        assert abs(per_image.mean().item()) < 0.02 and 0.18 < per_image.std().item() < 0.22
    signs = torch.where(torch.rand(4000, 1, 8, 8) < 0.5, -1.0, 1.0)
    signs = signs - signs.mean(dim=(1, 2, 3), keepdim=True)
    signs = signs / signs.std(dim=(1, 2, 3), keepdim=True)
    spread = augment.ada_color(signs, p).std(dim=(1, 2, 3)).log2()
    assert abs(spread.mean().item()) < 0.05 and 0.45 < spread.std().item() < 0.55


def test_the_controller_raises_p_while_d_overfits_lowers_it_otherwise_and_keeps_it_in_bounds() -> None:
    pipeline = augment.AdaptiveAugment(target=0.6, interval=4, kimg=1.0)  # 1,000 images from 0 to 1
    confident = torch.ones(50)  # sign(D(x)) = 1 for every real image: r_t = 1 > 0.6
    for _ in range(3):
        pipeline.observe(confident)
    assert pipeline.p.item() == 0  # p moves every 4th observation, not before
    pipeline.observe(confident)
    assert pipeline.p.item() == pytest.approx(200 / 1000)  # 4 x 50 images of 1,000
    assert pipeline.overfitting.item() == 1.0
    for _ in range(40):
        pipeline.observe(confident)
    assert pipeline.p.item() == 1.0  # bounded above
    unsure = torch.tensor([1.0, -1.0] * 25)  # r_t = 0 < 0.6: D cannot tell, p falls
    for _ in range(4):
        pipeline.observe(unsure)
    assert pipeline.p.item() == pytest.approx(0.8)
    for _ in range(60):
        pipeline.observe(unsure)
    assert pipeline.p.item() == 0.0  # bounded below


def test_the_controller_resumes_exactly_from_its_saved_state() -> None:
    torch.manual_seed(0)
    scores = [torch.randn(16) + (2.0 if i < 20 else 0.2) for i in range(30)]  # p rises, then falls
    whole = augment.AdaptiveAugment(kimg=0.5)
    for s in scores:
        whole.observe(s)
    first = augment.AdaptiveAugment(kimg=0.5)
    for s in scores[:13]:  # stop mid-interval: the running sums must travel too
        first.observe(s)
    resumed = augment.AdaptiveAugment(kimg=0.5)
    resumed.load_state_dict({k: v.clone() for k, v in first.state_dict().items()})
    for s in scores[13:]:
        resumed.observe(s)
    assert whole.p.item() > 0
    for key, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_ada_is_given_alone() -> None:
    with pytest.raises(zoo.UsageError, match="alone"):
        augment.parse("ada,cutout")


def test_augment_ada_trains_keeps_p_in_the_checkpoint_and_charts_it(mnist) -> None:
    result = run_cli("train", "dcgan", "--no-wandb", *TINY, "--data", "mnist", "--subset", "0:64",
                     "--steps", "8", "--augment", "ada", "--mirror", "--set", "ada_kimg=0.01", "--out", "ada")
    assert result.exit_code == 0, result.output
    config = json.loads(Path("ada/run.json").read_text())["config"]
    assert (config["augment"], config["mirror"]) == ("ada", True)
    records = [json.loads(line) for line in Path("ada/metrics.jsonl").read_text().splitlines()]
    p = [r["augment_p"] for r in records if "augment_p" in r]
    assert len(p) == 8 and all(0 <= v <= 1 for v in p)
    assert all(-1 <= r["overfitting"] <= 1 for r in records if "overfitting" in r)
    weights = ckpt_io.load(Path("ada") / ckpt_io.FILENAME).state["model"]
    assert weights["adaptive.p"].item() == pytest.approx(p[-1])
    assert weights["adaptive.observed"].item() == 8  # the controller's state travels with the weights
    refused = run_cli("train", "progan", "--no-wandb", "--data", "mnist", "--augment", "ada", "--out", "no")
    assert refused.exit_code == 2 and "--augment: progan has no augment key" in refused.output
    assert not Path("no").exists()
