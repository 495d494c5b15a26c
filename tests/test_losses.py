"""The shared losses and training aids: each against numbers worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

import zoo
from zoo import config as config_io
from zoo import losses, tricks
from zoo.data.memory import TensorBatches
from zoo.plugins.dcgan import DCGAN, DCGANConfig
from zoo.plugins.wgan import WGAN, WGANGP

from .conftest import TINY as CLI_TINY
from .conftest import run_cli

SPEC = zoo.DataSpec("gray28", 1, 28, 28)
TINY = {"g_width": 4, "d_width": 4, "latent_dim": 8, "batch_size": 8}

REAL = torch.tensor([[2.0], [-1.0]])   # D's logits for two real images
FAKE = torch.tensor([[0.5], [-3.0]])   # and for two generated ones


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


# -- each loss, by hand ----------------------------------------------------------------------
# -log sigmoid(x) = softplus(-x); -log(1 - sigmoid(x)) = softplus(x).

D_LOSS = {
    "bce": mean(softplus(-r) for r in (2.0, -1.0)) + mean(softplus(f) for f in (0.5, -3.0)),
    "minimax": mean(softplus(-r) for r in (2.0, -1.0)) + mean(softplus(f) for f in (0.5, -3.0)),
    "lsgan": 0.5 * mean((r - 1) ** 2 for r in (2.0, -1.0)) + 0.5 * mean(f ** 2 for f in (0.5, -3.0)),
    "hinge": mean(max(0, 1 - r) for r in (2.0, -1.0)) + mean(max(0, 1 + f) for f in (0.5, -3.0)),
    "wasserstein": mean((0.5, -3.0)) - mean((2.0, -1.0)),
    "rpgan": mean(softplus(f - r) for r, f in ((2.0, 0.5), (-1.0, -3.0))),  # image i against image i
}
G_LOSS = {
    "bce": mean(softplus(-f) for f in (0.5, -3.0)),
    "minimax": -mean(softplus(f) for f in (0.5, -3.0)),
    "lsgan": 0.5 * mean((f - 1) ** 2 for f in (0.5, -3.0)),
    "hinge": -mean((0.5, -3.0)),
    "wasserstein": -mean((0.5, -3.0)),
    "rpgan": mean(softplus(r - f) for r, f in ((2.0, 0.5), (-1.0, -3.0))),
}


@pytest.mark.parametrize("kind", sorted(D_LOSS))
def test_each_loss_matches_its_formula(kind: str) -> None:
    assert losses.discriminator_loss(kind, REAL, FAKE).item() == pytest.approx(D_LOSS[kind], rel=1e-6)
    assert losses.generator_loss(kind, FAKE, REAL).item() == pytest.approx(G_LOSS[kind], rel=1e-6)


def test_rpgan_pairs_images_and_its_generator_needs_the_real_scores() -> None:
    # Swapping which real image meets which generated one changes the loss: pairs, not means.
    swapped = losses.discriminator_loss("rpgan", REAL.flip(0), FAKE).item()
    assert swapped == pytest.approx(mean(softplus(f - r) for r, f in ((-1.0, 0.5), (2.0, -3.0))), rel=1e-6)
    assert swapped != pytest.approx(D_LOSS["rpgan"])
    with pytest.raises(ValueError, match="pass real_logits"):
        losses.generator_loss("rpgan", FAKE)
    with pytest.raises(ValueError, match="one to one: 2 real, 1 generated"):
        losses.discriminator_loss("rpgan", REAL, FAKE[:1])


def test_the_labs_two_logit_cross_entropy_is_bce_on_the_logit_difference() -> None:
    # Two logits (fake, real) = (0, x) are one logit x.
    two = lambda t: torch.cat([torch.zeros_like(t), t], dim=1)  # noqa: E731
    assert losses.discriminator_loss("cross_entropy", two(REAL), two(FAKE)).item() == pytest.approx(D_LOSS["bce"])
    assert losses.generator_loss("cross_entropy", two(FAKE)).item() == pytest.approx(G_LOSS["bce"])
    smoothed = losses.discriminator_loss("cross_entropy", two(REAL), two(FAKE), real_label=0.9, fake_label=0.1)
    assert smoothed.item() == pytest.approx(
        losses.discriminator_loss("bce", REAL, FAKE, real_label=0.9, fake_label=0.1).item())


def test_smoothed_targets_enter_the_formula() -> None:
    want = (mean(0.9 * softplus(-r) + 0.1 * softplus(r) for r in (2.0, -1.0))
            + mean(0.8 * softplus(f) + 0.2 * softplus(-f) for f in (0.5, -3.0)))
    got = losses.discriminator_loss("bce", REAL, FAKE, real_label=0.9, fake_label=0.2)
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_minimax_saturates_where_the_non_saturating_loss_does_not() -> None:
    # A discriminator sure that a generated image is fake (logit -8): the minimax loss gives
    # the generator almost no gradient, the non-saturating one nearly a full unit.
    grads = {}
    for kind in ("minimax", "bce"):
        logit = torch.tensor([[-8.0]], requires_grad=True)
        losses.generator_loss(kind, logit).backward()
        grads[kind] = abs(logit.grad.item())
    assert grads["minimax"] < 1e-3 and grads["bce"] > 0.99


def test_probabilities_are_reported_only_for_losses_that_have_them() -> None:
    zero = torch.tensor(0.0)
    assert set(losses.step_metrics("bce", zero, zero, REAL, FAKE)) == {"loss_d", "loss_g", "d_real", "d_fake"}
    wasserstein = losses.step_metrics("wasserstein", zero, zero, REAL, FAKE)
    assert set(wasserstein) == {"loss_d", "loss_g", "critic_real", "critic_fake", "wasserstein"}
    assert wasserstein["wasserstein"].item() == pytest.approx(0.5 - (-1.25))
    assert "d_real" not in losses.step_metrics("hinge", zero, zero, REAL, FAKE)


# -- noisy and flipped labels ----------------------------------------------------------------

def test_label_noise_draws_seed_004s_ranges() -> None:
    torch.manual_seed(0)
    real, fake = losses.targets(20_000, DCGANConfig(loss="lsgan", label_noise=0.3))
    assert 0.7 <= real.min() < 0.71 and 1.19 < real.max() <= 1.2
    assert 0.0 <= fake.min() < 0.01 and 0.29 < fake.max() <= 0.3
    assert real.std() > 0.1  # a range, not a constant


@pytest.mark.parametrize("kind", losses.PROBABILISTIC)
def test_label_noise_keeps_probabilistic_targets_within_0_and_1(kind: str) -> None:
    torch.manual_seed(0)
    real, fake = losses.targets(20_000, DCGANConfig(loss=kind, label_noise=0.3))
    assert 0.7 <= real.min() < 0.71 and 0.99 < real.max() <= 1.0
    assert (real == 1.0).float().mean() < 0.01  # drawn from [0.7, 1], not piled up at 1
    _, fake = losses.targets(20_000, DCGANConfig(loss=kind, real_label=0.9, fake_label=0.8, label_noise=0.5))
    assert 0.8 <= fake.min() < 0.81 and 0.99 < fake.max() <= 1.0
    sure = torch.tensor([[-10.0, 10.0]])[:, -losses.logits_per_image(kind):]  # D is sure the image is real
    real, fake = losses.targets(20_000, DCGANConfig(loss=kind, label_noise=0.5))
    loss = losses.discriminator_loss(kind, sure, -sure, real_label=real.max()[None], fake_label=fake.min()[None])
    assert loss >= 0  # a target above 1 would reward ever surer logits without bound


def test_label_flip_swaps_that_fraction() -> None:
    torch.manual_seed(0)
    real, fake = losses.targets(20_000, DCGANConfig(real_label=0.9, label_flip=0.1))
    flipped = real == 0.0
    assert flipped.float().mean().item() == pytest.approx(0.1, abs=0.01)
    assert torch.all(fake[flipped] == 0.9) and torch.all(real[~flipped] == 0.9) and torch.all(fake[~flipped] == 0)


# -- regularisers -----------------------------------------------------------------------------

class Linear(nn.Module):
    """D(x) = w . x + b: its gradient in x is w everywhere."""

    def __init__(self, w: list[float]) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w, dtype=torch.float64))
        self.b = nn.Parameter(torch.tensor(0.5, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) @ self.w + self.b)[:, None]


def test_gradient_penalty_and_r1_by_hand() -> None:
    critic = Linear([3.0, 4.0])  # ||w|| = 5
    real, fake = torch.randn(6, 2, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    assert losses.gradient_penalty(critic, real, fake).item() == pytest.approx((5 - 1) ** 2)
    assert losses.r1_penalty(critic, real).item() == pytest.approx(25.0)
    assert losses.r2_penalty(critic, fake).item() == pytest.approx(25.0)
    square = lambda x: (x.flatten(1) ** 2).sum(1, keepdim=True)  # noqa: E731 - gradient 2x: ||2x||^2 = 4 ||x||^2
    assert losses.r2_penalty(square, fake).item() == pytest.approx(4 * fake.pow(2).sum(1).mean().item())


def test_the_gradient_penalty_trains_the_critics_weights() -> None:
    # The penalty's own gradient must reach the critic's weights (it needs create_graph):
    # check it against a finite difference on every weight of a small non-linear critic.
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Conv2d(1, 3, 3), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 4 * 4, 1)).double()
    real = torch.randn(4, 1, 6, 6, dtype=torch.float64)
    fake = torch.randn(4, 1, 6, 6, dtype=torch.float64)

    def penalty() -> torch.Tensor:
        torch.manual_seed(1)  # the same interpolation points each time
        return losses.gradient_penalty(critic, real, fake)

    critic.zero_grad()
    penalty().backward()
    for name, p in critic.named_parameters():
        if name == "3.bias":  # the output's offset leaves grad_x D unchanged
            assert p.grad is None or p.grad.abs().max() == 0
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no penalty gradient reaches {name}"
        flat, grad = p.data.view(-1), p.grad.view(-1)
        for i in (0, flat.numel() // 2, flat.numel() - 1):
            eps, old = 1e-6, flat[i].item()
            flat[i] = old + eps
            up = penalty().item()
            flat[i] = old - eps
            down = penalty().item()
            flat[i] = old
            assert grad[i].item() == pytest.approx((up - down) / (2 * eps), rel=1e-4, abs=1e-8), name


def test_instance_noise_fades_to_nothing() -> None:
    images = torch.zeros(4000, 1, 4, 4)
    assert losses.instance_noise(images, 0.2, 0.0).std().item() == pytest.approx(0.2, rel=0.02)
    assert losses.instance_noise(images, 0.2, 0.75).std().item() == pytest.approx(0.05, rel=0.02)
    assert torch.equal(losses.instance_noise(images, 0.2, 1.0), images)


def test_spectral_norm_makes_every_layers_largest_singular_value_one() -> None:
    torch.manual_seed(0)
    critic = tricks.spectral_normalise(nn.Sequential(nn.Conv2d(1, 8, 3), nn.Flatten(), nn.Linear(8 * 4 * 4, 1)))
    for _ in range(30):  # power iterations, one per forward pass in training mode
        critic(torch.randn(2, 1, 6, 6))
    critic.eval()
    for layer in (critic[0], critic[2]):
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2).item()
        assert sigma == pytest.approx(1.0, abs=0.02)


# -- the models use them -------------------------------------------------------------------------

def build(cls, **overrides):
    config = config_io.from_dict(cls.Config, {**TINY, **overrides}, source="test")
    torch.manual_seed(0)
    model = cls(config, SPEC)
    model.optimizers = model.configure_optimizers()
    return model


def batches(n: int = 64) -> TensorBatches:
    return TensorBatches(torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8), None, 8, seed=0)


def test_wgan_clipping_bounds_every_critic_weight() -> None:
    model = build(WGAN, lr=0.5)  # a huge step, so unclipped weights would leave the box
    model.train_step(batches(), zoo.Progress(0, 10, 0))
    weights = torch.cat([p.detach().view(-1) for p in model.discriminator.parameters()])
    assert weights.abs().max().item() <= 0.01 + 1e-9
    assert (weights.abs() > 0.0099).float().mean() > 0.3  # and clipping really acted


def test_the_critic_steps_n_critic_times_per_generator_step() -> None:
    model = build(WGANGP, n_critic=3)
    assert model.batches_per_step() == 3
    source = batches()
    drawn = []
    original = source.next
    source.next = lambda: drawn.append(1) or original()  # type: ignore[method-assign]
    g_before = [p.detach().clone() for p in model.generator.parameters()]
    metrics = model.train_step(source, zoo.Progress(0, 10, 0))
    assert len(drawn) == 3
    assert model.optimizers["discriminator"].state_dict()["state"][0]["step"].item() == 3
    assert model.optimizers["generator"].state_dict()["state"][0]["step"].item() == 1
    assert any(not torch.equal(a, b) for a, b in zip(g_before, model.generator.parameters(), strict=True))
    assert {"wasserstein", "gradient_penalty"} <= set(metrics)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.discriminator.modules())


def test_the_ema_generator_trails_the_live_one_and_is_sampled() -> None:
    model = build(DCGAN, ema=0.9)
    assert all(not p.requires_grad for p in model.generator_ema.parameters())
    source = batches()
    for step in range(3):
        before = [p.detach().clone() for p in model.generator_ema.parameters()]
        model.train_step(source, zoo.Progress(step, 10, 0))
        decay = tricks.ema_decay(0.9, step)
        for old, average, live in zip(before, model.generator_ema.parameters(), model.generator.parameters(),
                                      strict=True):
            assert torch.allclose(average, decay * old + (1 - decay) * live, atol=1e-6)
    live = torch.cat([p.detach().view(-1) for p in model.generator.parameters()])
    average = torch.cat([p.detach().view(-1) for p in model.generator_ema.parameters()])
    assert not torch.equal(live, average)
    z = torch.randn(4, 8)
    with zoo.evaluating(model):
        assert torch.equal(model.generate(z), model.generator_ema(z))
        assert not torch.equal(model.generate(z), model.generator(z))


def test_ema_decay_warms_up_then_holds() -> None:
    assert tricks.ema_decay(0.999, 0) == pytest.approx(0.1)
    assert tricks.ema_decay(0.999, 90) == pytest.approx(0.91)
    assert tricks.ema_decay(0.999, 10 ** 6) == 0.999


@pytest.mark.parametrize("overrides", [
    {"loss": "hinge"}, {"loss": "lsgan", "label_noise": 0.3}, {"loss": "minimax", "label_flip": 0.1},
    {"r1_weight": 10.0}, {"spectral_norm": True, "d_norm": "none"}, {"instance_noise": 0.1},
    {"loss": "wasserstein", "gp_weight": 10.0, "d_norm": "layer"},
    {"loss": "rpgan", "r1_weight": 0.1, "r2_weight": 0.1, "d_norm": "none"},
])
def test_every_option_trains(overrides) -> None:
    model = build(DCGAN, **overrides)
    metrics = model.train_step(batches(), zoo.Progress(0, 10, 0))
    assert all(math.isfinite(float(v)) for v in metrics.values())
    assert {f"{key[:2]}_penalty" for key in ("r1_weight", "r2_weight") if overrides.get(key)} <= set(metrics)


def test_a_penalty_is_refused_on_a_batch_normalised_critic_and_the_fix_named(mnist) -> None:
    """The penalties are per image; batch norm mixes a batch's images. Refused before any
    run folder is made, naming the key that fixes it; with that key the run trains."""
    for penalty in ("gp_weight=10", "r1_weight=10", "r2_weight=10"):
        refused = run_cli("train", "dcgan", "--no-wandb", *CLI_TINY, "--data", "mnist", "--subset", "0:64",
                          "--steps", "1", "--set", penalty, "--out", "run")
        assert refused.exit_code == 2, refused.output
        assert "discriminator uses batch norm (BatchNorm2d)" in refused.output and penalty in refused.output
        assert "--set d_norm=layer" in refused.output and "d_norm=none" in refused.output
        assert not Path("run").exists() and not Path("runs").exists()
    fixed = run_cli("train", "dcgan", "--no-wandb", *CLI_TINY, "--data", "mnist", "--subset", "0:64",
                    "--steps", "1", "--set", "gp_weight=10", "--set", "d_norm=layer", "--out", "run")
    assert fixed.exit_code == 0, fixed.output


def test_only_penalised_critics_with_batch_norm_are_found() -> None:
    assert losses.penalty_across_images(build(DCGAN)) is None  # batch norm, no penalty
    assert losses.penalty_across_images(build(DCGAN, r1_weight=10.0, d_norm="none")) is None
    assert losses.penalty_across_images(build(WGANGP)) is None  # the penalty, no norm
    assert "r1_weight=10" in (losses.penalty_across_images(build(DCGAN, r1_weight=10.0)) or "")
    assert "r2_weight=10" in (losses.penalty_across_images(build(DCGAN, r2_weight=10.0)) or "")


@pytest.mark.parametrize("overrides, message", [
    ({"loss": "focal"}, "expected one of"),
    ({"ema": 1.0}, "ema must be within [0, 1)"),
    ({"n_critic": 0}, "n_critic must be at least 1"),
    ({"clip": -0.01}, "clip must not be negative"),
    ({"gp_weight": -1.0}, "gp_weight must not be negative"),
    ({"label_noise": 0.7}, "label_noise must be within [0, 0.5]"),
    ({"label_flip": 0.5}, "label_flip must be within [0, 0.5)"),
    ({"loss": "hinge", "label_noise": 0.3}, "loss=hinge has no target labels"),
    ({"loss": "wasserstein", "real_label": 0.9}, "loss=wasserstein has no target labels"),
    ({"d_norm": "group"}, "expected one of"),
    ({"optimizer": "sgd"}, "expected one of"),
    ({"beta1": 1.0}, "beta1 must be within [0, 1)"),
])
def test_bad_option_values_say_what_is_wrong(overrides, message: str) -> None:
    with pytest.raises(zoo.UsageError) as caught:
        config_io.from_dict(DCGANConfig, overrides, source="test")
    assert message in str(caught.value)


def test_standing_statistics_are_those_of_the_network_as_it_is() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    net[1].running_mean.fill_(5.0)  # stale statistics, as a weight average inherits them
    inputs = [torch.randn(32, 3) for _ in range(4)]
    feed = iter(inputs)
    net.eval()
    tricks.recalibrate_batch_norm(net, lambda: net(next(feed)), batches=4)
    with torch.no_grad():
        hidden = net[0](torch.cat(inputs))
    assert torch.allclose(net[1].running_mean, hidden.mean(0), atol=1e-5)
    assert not net.training and net[1].momentum == 0.1  # mode and momentum restored


def test_the_averaged_generator_samples_reproducibly_without_touching_the_random_stream() -> None:
    model = build(DCGAN, ema=0.999)
    model.train_step(batches(), zoo.Progress(0, 10, 0))
    state = torch.get_rng_state()
    first = model.sample(4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first, model.sample(4, generator=torch.Generator().manual_seed(3)))
    model.train_step(batches(), zoo.Progress(1, 10, 0))  # the average moved: measured again
    assert not torch.equal(first, model.sample(4, generator=torch.Generator().manual_seed(3)))
