"""Issue 4, part 1: noise priors chosen at train time, recorded, and overridable when sampling."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import zoo
from zoo import priors
from zoo.records import checkpoint as ckpt_io
from zoo.records import runs

from .conftest import TINY, run_cli

N = 20_000


def draw(spec: str, truncation: float | None = None, seed: int = 0) -> torch.Tensor:
    return priors.parse(spec).sample(N, 4, generator=torch.Generator().manual_seed(seed), truncation=truncation)


@pytest.mark.parametrize("spec, mean, var", [
    ("normal", 0.0, 1.0),
    ("normal:1,1", 1.0, 1.0),
    ("normal:0,10", 0.0, 100.0),
    ("uniform:-1,1", 0.0, 1 / 3),
    ("gamma:2,1", 2.0, 2.0),
    ("gamma:0.5,2", 1.0, 2.0),
    ("laplace:0,1", 0.0, 2.0),
])
def test_each_prior_has_the_moments_of_its_distribution(spec: str, mean: float, var: float) -> None:
    z = draw(spec)
    assert z.shape == (N, 4)
    assert abs(float(z.mean()) - mean) < 0.05 * max(1.0, var ** 0.5)
    assert abs(float(z.var()) / var - 1) < 0.06


def test_seeded_draws_repeat() -> None:
    for spec in priors.KINDS:
        assert torch.equal(draw(spec, seed=3), draw(spec, seed=3))
        assert not torch.equal(draw(spec, seed=3), draw(spec, seed=4))


def test_truncation_keeps_z_in_the_likely_region() -> None:
    z = draw("normal:0,2", truncation=0.7)
    assert float(z.abs().max()) <= 0.7 * 2 + 1e-5 and float(z.std()) > 0.5
    u = draw("uniform:0,10", truncation=0.5)
    assert float(u.min()) >= 2.5 and float(u.max()) <= 7.5


@pytest.mark.parametrize("spec, message", [
    ("cauchy", "unknown noise prior 'cauchy'; choose one of: normal:MEAN,STD"),
    ("normal:0", "normal takes 2 numbers"),
    ("normal:0,zero", "parameters must be numbers"),
    ("normal:0,-1", "std must be positive"),
    ("uniform:1,-1", "low must be below high"),
    ("gamma:0,1", "shape and scale must be positive"),
    ("normal:nan,1", "must be finite"),
])
def test_bad_priors(spec: str, message: str) -> None:
    with pytest.raises(zoo.UsageError, match=message):
        priors.parse(spec)


@pytest.mark.parametrize("spec, t, message", [
    ("gamma:2,1", 0.5, "defined for normal and uniform"),
    ("normal", 0.0, "standard deviations > 0"),
    ("uniform", 1.5, "in \\(0, 1\\]"),
])
def test_bad_truncation(spec: str, t: float, message: str) -> None:
    with pytest.raises(zoo.UsageError, match=message):
        draw(spec, truncation=t)


def test_the_prior_penalty_grows_away_from_the_likely_region() -> None:
    for spec, near, far in (("normal", 0.0, 4.0), ("uniform:-1,1", 0.5, 3.0), ("gamma:2,1", 1.0, 9.0)):
        prior = priors.parse(spec)
        assert prior.log_density_penalty(torch.full((2, 8), far)).shape == (2,)
        assert (prior.log_density_penalty(torch.full((2, 8), far))
                > prior.log_density_penalty(torch.full((2, 8), near))).all()


def test_train_with_a_prior_records_it_and_sampling_uses_it(mnist) -> None:
    result = run_cli("train", "dcgan", "--no-wandb", *TINY, "--data", "mnist", "--steps", "1",
                     "--noise", "uniform:-1,1", "--out", "run")
    assert result.exit_code == 0, result.output
    assert ckpt_io.read_meta(Path("run") / ckpt_io.FILENAME)["config"]["noise"] == "uniform:-1,1"
    model, _ = runs.load_model(Path("run") / ckpt_io.FILENAME)
    assert model.prior == priors.Prior("uniform", (-1.0, 1.0))
    z = model.sample_latent(500, torch.Generator().manual_seed(0))
    assert float(z.abs().max()) <= 1.0


def test_sampling_can_override_the_prior_and_truncate(mnist) -> None:
    result = run_cli("train", "dcgan", "--no-wandb", *TINY, "--data", "mnist", "--steps", "1", "--out", "run")
    assert result.exit_code == 0
    plain = run_cli("sample", "run", "--n", "4", "--out", "a")
    truncated = run_cli("sample", "run", "--n", "4", "--out", "b", "--truncation", "0.5")
    other = run_cli("sample", "run", "--n", "4", "--out", "c", "--noise", "normal:1,1")
    assert plain.exit_code == truncated.exit_code == other.exit_code == 0
    assert "truncated at 0.5" in truncated.output and "z ~ normal:1,1" in other.output
    def bytes_of(folder: str) -> list[bytes]:
        return [p.read_bytes() for p in sorted(Path(folder).glob("0*.png"))]

    assert bytes_of("a") != bytes_of("b") != bytes_of("c")
    bad = run_cli("sample", "run", "--noise", "gamma:2,1", "--truncation", "0.5")
    assert bad.exit_code == 2 and "defined for normal and uniform" in bad.output


@pytest.mark.parametrize("args, message", [
    (["dcgan", "--noise", "cauchy:0,1"], "unknown noise prior 'cauchy'"),
    (["dcgan", "--noise", "uniform:1,0"], "low must be below high"),
    (["tiny", "--noise", "uniform"], "tiny has a fixed N(0, 1) prior"),
])
def test_bad_noise_on_the_command_line(mnist, args: list[str], message: str) -> None:
    result = run_cli("train", *args, "--data", "mnist", "--steps", "1", "--no-wandb")
    assert result.exit_code == 2 and message in result.output
