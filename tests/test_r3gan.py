"""R3GAN: its schedules, its initialisation, the sizes it takes, and lazy penalties (shared with
every GAN through the dcgan step). Conformance (build, step, sample, checkpoint) is in
test_conformance.py, as for every plugin."""

from __future__ import annotations

import math

import pytest
import torch

import zoo
from zoo import config as config_io
from zoo.data.memory import TensorBatches
from zoo.plugins.dcgan import DCGAN
from zoo.plugins.r3gan import R3GAN, ResidualBlock, basis_size, cosine, stage_widths

SPEC = zoo.DataSpec("gray28", 1, 28, 28)
TINY = {"width": 8, "max_width": 16, "batch_size": 8, "latent_dim": 8}


def build(cls=R3GAN, spec: zoo.DataSpec = SPEC, **overrides):
    config = config_io.from_dict(cls.Config, {**(TINY if cls is R3GAN else {"g_width": 4, "d_width": 4,
                                                                          "batch_size": 8, "latent_dim": 8}),
                                              **overrides}, source="test")
    torch.manual_seed(0)
    model = cls(config, spec)
    model.optimizers = model.configure_optimizers()
    return model


def batches(n: int = 64, size: int = 28) -> TensorBatches:
    return TensorBatches(torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8), None, 8, seed=0)


def test_the_schedules_run_from_start_to_end_along_a_cosine() -> None:
    assert cosine(2e-4, 5e-5, 0.0) == pytest.approx(2e-4)
    assert cosine(2e-4, 5e-5, 0.5) == pytest.approx((2e-4 + 5e-5) / 2)
    assert cosine(2e-4, 5e-5, 1.0) == pytest.approx(5e-5)
    assert cosine(0.9, 0.99, 0.25) == pytest.approx(0.99 - 0.09 * (1 + math.cos(math.pi / 4)) / 2)
    assert cosine(1.0, 0.1, 7.0) == pytest.approx(0.1)  # past the end: held


def test_the_optimisers_follow_the_schedules_and_gamma_is_reported() -> None:
    model = build()
    metrics = model.train_step(batches(), zoo.Progress(step=4, total_steps=8, epoch=0))  # a penalised step
    for optimiser in model.optimizers.values():
        group = optimiser.param_groups[0]
        assert group["lr"] == pytest.approx(cosine(2e-4, 5e-5, 0.5))
        assert group["betas"] == (0.0, pytest.approx(cosine(0.9, 0.99, 0.5)))
    assert float(metrics["gamma"]) == pytest.approx(0.05 * cosine(1.0, 0.1, 0.5))
    assert {"r1_penalty", "r2_penalty"} <= set(metrics)


@pytest.mark.parametrize(("size", "side", "doublings"), [(28, 7, 2), (32, 4, 3), (64, 4, 4), (48, 6, 3),
                                                          (256, 4, 6), (16, 4, 2)])
def test_the_basis_halves_down_to_a_few_pixels(size: int, side: int, doublings: int) -> None:
    assert basis_size(size) == (side, doublings)
    assert side * 2 ** doublings == size


def test_widths_double_towards_the_coarse_stages_up_to_the_cap() -> None:
    config = config_io.from_dict(R3GAN.Config, {"width": 96, "max_width": 768}, source="test")
    assert stage_widths(config, 7) == [768, 768, 768, 768, 384, 192, 96]  # the paper's FFHQ 256


@pytest.mark.parametrize("size", [27, 36, 100])
def test_sizes_that_do_not_halve_to_a_small_basis_are_refused_with_the_fix(size: int) -> None:
    spec = zoo.DataSpec("gray", 1, size, size)
    with pytest.raises(zoo.UsageError, match="--size 32"):
        R3GAN.check_data(R3GAN.Config(), spec)


def test_every_block_starts_as_the_identity_and_the_signal_keeps_its_scale() -> None:
    """The paper's initialisation: no normalisation, so a residual branch's last layer starts
    at zero and each layer keeps its input's variance."""
    model = build(width=32, max_width=64)
    blocks = [m for m in model.modules() if isinstance(m, ResidualBlock)]
    assert blocks and all(torch.count_nonzero(block.narrow.weight) == 0 for block in blocks)
    x = torch.randn(16, 32, 14, 14)
    assert torch.equal(blocks[-1](x), x)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    with torch.no_grad():
        out = model.generator(torch.randn(256, 8))
    assert 0.3 < out.std().item() < 3.0  # neither vanishing nor exploding through the stages


def test_generated_images_are_clamped_only_when_drawn() -> None:
    model = build()
    with torch.no_grad():
        for p in model.generator.to_image.parameters():
            p.mul_(100)  # raw outputs far outside [-1, 1]
        raw = model.generator(torch.randn(8, 8))
    assert raw.abs().max() > 1
    images = model.sample(8, generator=torch.Generator().manual_seed(0))
    assert images.min() >= -1 and images.max() <= 1


def discriminator_losses(model) -> list[torch.Tensor]:
    """The losses the model's discriminator updates would minimise (the updates are skipped)."""
    seen: list[torch.Tensor] = []
    model.update = lambda name, loss: seen.append(loss.detach()) if name == "discriminator" else None
    return seen


def test_lazy_penalties_are_computed_one_step_in_k_and_weighted_k_times() -> None:
    """penalty_every=k: the step's loss carries k x gamma/2 x R1 on steps divisible by k and no
    penalty otherwise (any GAN of the dcgan family; here a penalised dcgan without batch norm)."""
    seen = []
    for step in range(4):
        progress = zoo.Progress(step=step, total_steps=10, epoch=0)
        model = build(DCGAN, loss="rpgan", r1_weight=0.4, d_norm="none", penalty_every=2)
        penalised = discriminator_losses(model)
        metrics = model.train_step(batches(), progress)
        seen.append(metrics.get("r1_penalty"))
        if step % 2 == 0:
            plain = build(DCGAN, loss="rpgan", d_norm="none")
            unpenalised = discriminator_losses(plain)
            plain.train_step(batches(), progress)
            expected = unpenalised[0].item() + 2 * 0.4 / 2 * metrics["r1_penalty"].item()
            assert penalised[0].item() == pytest.approx(expected, rel=1e-5)
    assert seen[0] is not None and seen[2] is not None and seen[1] is None and seen[3] is None


def test_r3gan_trains_on_32px_colour_images() -> None:
    spec = zoo.DataSpec("rgb32", 3, 32, 32)
    model = build(spec=spec)
    data = TensorBatches(torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8), None, 8, seed=0)
    before = [p.detach().clone() for p in model.discriminator.parameters()]
    metrics = model.train_step(data, zoo.Progress(0, 10, 0))
    assert all(math.isfinite(float(v)) for v in metrics.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.discriminator.parameters(), strict=True))
    assert model.sample(4).shape == (4, 3, 32, 32)
