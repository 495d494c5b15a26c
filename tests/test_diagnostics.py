"""Training diagnostics: vanishing gradients, a fooled discriminator, mode collapse."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from zoo.plugins.dcgan import DCGAN
from zoo.training.diagnostics import COLLAPSE_CHECKS, COLLAPSED, WINDOW, Watch, reference_images

from .conftest import TINY, run_cli


def feed(watch: Watch, steps: range, d_real: float, d_fake: float) -> list:
    found = []
    for step in steps:
        found += watch.after_step(step, {"loss_d": 0.1, "d_real": d_real, "d_fake": d_fake})
    return found


def test_a_winning_discriminator_is_reported_once_until_it_recovers() -> None:
    watch = Watch()
    assert feed(watch, range(WINDOW), 0.7, 0.3) == []
    found = feed(watch, range(WINDOW, 3 * WINDOW), 0.999, 0.001)
    assert [a.kind for a in found] == ["saturated"]
    assert "D(x) 0.98" in found[0].message and "vanish" in found[0].message
    assert feed(watch, range(3 * WINDOW, 5 * WINDOW), 0.7, 0.3) == []  # recovered
    assert [a.kind for a in feed(watch, range(5 * WINDOW, 7 * WINDOW), 0.999, 0.001)] == ["saturated"]


def test_a_fooled_discriminator_is_reported() -> None:
    found = feed(Watch(), range(2 * WINDOW), 0.99, 0.99)
    assert [a.kind for a in found] == ["fooled"]


def test_models_without_beliefs_are_not_judged() -> None:
    watch = Watch()
    for step in range(3 * WINDOW):
        assert watch.after_step(step, {"loss_d": -5.0, "wasserstein": 3.0}) == []


def blend(amount: float, seed: int) -> torch.Tensor:
    """64 previews that are one blob, mixed ``amount`` of the way to varied noise."""
    g = torch.Generator().manual_seed(seed)
    one = torch.rand(1, 1, 8, 8, generator=g).expand(64, 1, 8, 8)
    return (1 - amount) * one + amount * (torch.rand(64, 1, 8, 8, generator=g) * 2 - 1)


def test_collapse_is_judged_against_real_variety_once_training_settles() -> None:
    torch.manual_seed(0)
    real = torch.rand(64, 1, 8, 8) * 2 - 1
    watch = Watch(reference=real)
    varied, found = watch.after_preview(500, 0.5, torch.rand(64, 1, 8, 8) * 2 - 1)
    assert 0.9 < varied < 1.1 and found == []
    one = torch.rand(1, 1, 8, 8).expand(64, 1, 8, 8) + 0.01 * torch.randn(64, 1, 8, 8)
    early, found = watch.after_preview(50, 0.05, one)
    assert early < COLLAPSED and found == []  # every generator starts as one blob
    said = []
    for k in range(COLLAPSE_CHECKS + 3):  # a collapse: too little varied at previews in a row, and staying so
        late, found = watch.after_preview(600 + 10 * k, 0.6, one)
        said += [(k, a) for a in found]
    assert [(k, a.kind) for k, a in said] == [(COLLAPSE_CHECKS - 1, "collapse")]  # said once, at the third
    assert f"{late:.2f} as varied" in said[0][1].message


def test_a_start_in_noise_is_not_a_collapse() -> None:
    """The DCGAN's start on MNIST: its previews' variety climbs from one blob through the
    threshold, and is just under it at the first check after training settles in."""
    real = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    watch = Watch(reference=real)
    climbing = []
    for k, amount in enumerate([0.05, 0.1, 0.15, 0.2, 0.25, 0.28, 0.3, 0.35, 0.45, 0.6, 0.8, 1.0]):
        ratio, found = watch.after_preview(100 + 39 * k, 0.2 + 0.02 * k, blend(amount, k))
        climbing.append(ratio)
        assert found == [], (k, ratio)
    assert climbing[0] < COLLAPSED and climbing[-1] > 0.9  # it started as one blob, and ended as varied as real
    settled_low = [r for k, r in enumerate(climbing) if r < COLLAPSED]
    assert len(settled_low) >= COLLAPSE_CHECKS  # low at several checks after settling, and still not said


def test_a_collapse_after_a_good_start_is_said_and_said_again_only_after_recovering() -> None:
    real = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    watch = Watch(reference=real)
    kinds = []
    for k, amount in enumerate([1.0, 1.0, 0.02, 0.03, 0.02, 0.02, 1.0, 0.02, 0.02, 0.02]):
        _, found = watch.after_preview(500 + 10 * k, 0.5, blend(amount, k))
        kinds.append([a.kind for a in found])
    assert kinds == [[], [], [], [], ["collapse"], [], [], [], [], ["collapse"]]


def test_class_rows_are_compared_with_real_images_of_their_class() -> None:
    torch.manual_seed(0)
    images = torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8)
    labels = torch.arange(40) % 4
    preview = torch.zeros(4, 8, 1, 8, 8)
    reference = reference_images(images, labels, preview, seed=0)
    assert reference.shape == (4, 10, 1, 8, 8)
    for k in range(4):
        members = images[labels == k].float() / 127.5 - 1
        assert all(any(torch.allclose(r, m) for m in members) for r in reference[k])


def test_training_warns_of_collapse_and_keeps_the_warning(mnist, monkeypatch) -> None:
    def one_image(self, z, conditions=None):
        return torch.zeros(z.shape[0], 1, 28, 28, device=z.device)

    monkeypatch.setattr(DCGAN, "generate", one_image)
    result = run_cli("train", "dcgan", "--no-wandb", *TINY, "--data", "mnist", "--subset", "0:160",
                     "--steps", "120", "--out", "run")
    assert result.exit_code == 0, result.output
    assert "warning at step" in result.output and "mode collapse" in result.output
    info = json.loads(Path("run/run.json").read_text())
    assert [w["kind"] for w in info["warnings"]] == ["collapse"]
    assert "diversity 0.000" in result.output


def test_wgan_logs_its_wasserstein_estimate(mnist) -> None:
    result = run_cli("train", "wgan-gp", "--no-wandb", *TINY, "--set", "n_critic=2", "--data", "mnist",
                     "--subset", "0:64", "--steps", "3", "--out", "run")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in Path("run/metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all("wasserstein" in r and "gradient_penalty" in r for r in rows)
    assert "Wasserstein estimate" in result.output
    assert Path("run/losses.png").is_file()


def test_a_bad_loss_option_is_one_line(mnist) -> None:
    result = run_cli("train", "dcgan", "--no-wandb", "--data", "mnist", "--set", "loss=hinge",
                     "--set", "label_noise=0.3")
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "loss=hinge has no target labels" in result.output


def test_posterior_collapse_is_named_once_the_kl_stays_near_zero() -> None:
    from zoo.training.diagnostics import Watch

    watch = Watch(window=10)
    healthy = [a for step in range(200) for a in watch.after_step(step, {"kl": 18.0})]
    assert healthy == []
    early = Watch(window=10)
    assert [a for step in range(50) for a in early.after_step(step, {"kl": 0.01})] == []  # not settled yet
    assert [a for step in range(200, 260) for a in Watch(window=10).after_step(step, {"kl": 0.02}, 0.1)] == []
    alerts = [a for step in range(200, 260) for a in watch.after_step(step, {"kl": 0.02}, 0.5)]
    assert len(alerts) == 1 and alerts[0].kind == "posterior" and "kl_warmup=0.2" in alerts[0].message
