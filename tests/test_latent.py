"""Issue 4: interpolation, inversion and exploration of a latent space."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from torch import nn

import zoo
from zoo import config as config_io
from zoo.pipelines.interpolate import lerp, slerp
from zoo.pipelines.invert import fit_latents
from zoo.records import checkpoint as ckpt_io

from .conftest import TINY, FakeEntryPoint, run_cli
from .sheets import label_bands


@pytest.fixture
def run(mnist, trained) -> Path:
    return trained("train", "dcgan", *TINY, "--data", "mnist", "--subset", "0:64", "--steps", "3")


@pytest.fixture
def digit_png(mnist) -> Path:
    Image.fromarray(mnist.images[0, 0].numpy()).resize((56, 40)).convert("RGB").save("digit.png")
    return Path("digit.png")


def test_slerp_and_lerp_paths() -> None:
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    t = torch.linspace(0, 1, 5)
    s, line = slerp(a, b, t), lerp(a, b, t)
    assert torch.allclose(s[0, 0], a[0]) and torch.allclose(s[0, -1], b[0], atol=1e-6)
    assert torch.allclose(s[0].norm(dim=1), torch.ones(5), atol=1e-5)  # stays on the circle
    assert torch.allclose(line[0, 2], torch.tensor([0.5, 0.5]))
    same = slerp(a, a, t)  # parallel endpoints fall back to a line
    assert torch.isfinite(same).all() and torch.allclose(same[0, 3], a[0])


def test_interpolate_between_seeds(run: Path) -> None:
    result = run_cli("interpolate", "run", "--from-seed", "1,3", "--to-seed", "2,4", "--steps", "6", "--out", "i")
    assert result.exit_code == 0, result.output
    assert "by slerp" in result.output and "frame-to-frame change" in result.output
    # Columns labelled t=0 .. t=1, a row for each pair of seeds, the method in the title.
    left, top = label_bands(Image.open("i/strip.png"), 2 * (6 * 30 + 2), 2 * (2 * 30 + 2))
    assert left > 0 and top > 0
    assert len({Image.open(p).size for p in Path("i/frames").iterdir()}) == 1  # the GIF's frames match
    gif = Image.open("i/interpolation.gif")
    total = 0
    for frame in range(gif.n_frames):  # PIL merges identical neighbours, adding their durations
        gif.seek(frame)
        total += gif.info["duration"]
    assert total == (2 * 6 - 2) * 150  # there and back
    assert len(list(Path("i/frames").iterdir())) == 6
    latents = load_file("i/latents.safetensors")
    assert latents["z"].shape == (2, 6, 8)
    from zoo.records import runs

    model, _ = runs.load_model(run / ckpt_io.FILENAME)
    assert torch.allclose(latents["z"][0, 0], model.sample_latent(1, torch.Generator().manual_seed(1))[0], atol=1e-5)


def test_interpolate_lerp_and_bad_endpoints(run: Path) -> None:
    result = run_cli("interpolate", "run", "--from-seed", "1", "--to-seed", "2", "--method", "lerp", "--out", "l")
    assert result.exit_code == 0
    for args, message in (
        (["--from-seed", "1,2", "--to-seed", "3"], "same number of seeds"),
        (["--from-seed", "1"], "same number of seeds"),
        ([], "give one kind of endpoints"),
        (["--from-seed", "1", "--to-seed", "2", "--method", "cubic"], "--method must be lerp or slerp"),
        (["--from-seed", "1", "--to-seed", "2", "--steps", "1"], "--steps must be a whole number from 2 to 1,000"),
        (["--from-latent", "nope.safetensors", "--to-latent", "nope.safetensors"], "does not exist"),
    ):
        result = run_cli("interpolate", "run", *args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)


def test_invert_an_image_of_another_size_and_colour(run: Path, digit_png: Path) -> None:
    result = run_cli("invert", "run", str(digit_png), "--steps", "30", "--restarts", "2", "--out", "fit")
    assert result.exit_code == 0, result.output
    assert "converted digit.png: 56x40 RGB -> 28x28 grayscale" in result.output
    for name in ("digit.latent.safetensors", "digit.reconstruction.png", "digit.evolution.png", "metrics.json"):
        assert (Path("fit") / name).is_file(), name
    scores = json.loads(Path("fit/metrics.json").read_text())
    assert scores["steps"] == 30 and {"mse", "psnr", "ssim"} <= set(scores["mean"])
    assert scores["snapshot_steps"][0] == 0 and scores["snapshot_steps"][-1] == 30
    columns = 1 + len(scores["snapshot_steps"])  # the target, then the fit at each snapshot's step
    assert label_bands(Image.open("fit/digit.evolution.png"), 2 * (columns * 30 + 2), 2 * (30 + 2))[1] > 0
    assert load_file("fit/digit.latent.safetensors")["z"].shape == (1, 8)
    # the fitted latent feeds interpolation
    chained = run_cli("interpolate", "run", "--from-latent", "fit/digit.latent.safetensors",
                      "--to-latent", "fit/digit.latent.safetensors", "--steps", "3", "--out", "chain")
    assert chained.exit_code == 0, chained.output


def test_inversion_finds_a_reachable_image() -> None:
    from zoo.registry import get

    cls = get("dcgan")
    torch.manual_seed(0)
    model = cls(config_io.from_dict(cls.Config, cls.tiny_config, source="test"), zoo.DataSpec("x", 1, 28, 28))
    for module in model.modules():  # PyTorch's default init: outputs that vary a lot with z
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            module.reset_parameters()
    target = model.sample(2, generator=torch.Generator().manual_seed(7))
    fit = fit_latents(model, target, steps=150, restarts=4, ssim_weight=0.0, prior_weight=0.0)
    start = fit.snapshots[0][1]
    from zoo.measure import metrics

    assert (fit.psnr > metrics.psnr(start, target) + 3).all(), (fit.psnr, metrics.psnr(start, target))
    assert model.training  # left as found


def test_inversion_leaves_every_weights_requires_grad_as_it_was() -> None:
    from zoo.registry import get

    cls = get("dcgan")
    torch.manual_seed(0)
    model = cls(config_io.from_dict(cls.Config, {**cls.tiny_config, "ema": 0.999}, source="test"),
                zoo.DataSpec("x", 1, 28, 28))
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    assert any(name.startswith("generator_ema.") and not flag for name, flag in flags.items())
    fit_latents(model, model.sample(2, generator=torch.Generator().manual_seed(7)), steps=2, restarts=2)
    assert {name: p.requires_grad for name, p in model.named_parameters()} == flags


def test_invert_a_folder_as_a_batch(run: Path, mnist) -> None:
    Path("targets").mkdir()
    for i in range(3):
        Image.fromarray(mnist.images[i, 0].numpy()).save(f"targets/{i}.png")
    result = run_cli("invert", "run", "targets", "--steps", "5", "--restarts", "1", "--out", "fits")
    assert result.exit_code == 0, result.output
    assert len(json.loads(Path("fits/metrics.json").read_text())["targets"]) == 3


def test_interpolate_between_images_inverts_them_first(run: Path, digit_png: Path) -> None:
    result = run_cli("interpolate", "run", "--from-image", str(digit_png), "--to-image", str(digit_png),
                     "--steps", "3", "--invert-steps", "5", "--restarts", "1", "--out", "ii")
    assert result.exit_code == 0, result.output
    assert "inverted digit.png" in result.output


@pytest.mark.parametrize("make, message", [
    (lambda: Path("missing.png"), "does not exist"),
    (lambda: (Path("bad.png").write_bytes(b"not a png"), Path("bad.png"))[1], "cannot read target"),
    (lambda: (Path("empty").mkdir(), Path("empty"))[1], "holds no images"),
])
def test_bad_targets(run: Path, make, message: str) -> None:
    result = run_cli("invert", "run", str(make()), "--steps", "2")
    assert result.exit_code in (1, 2) and message in result.output


def test_explore_one_and_several_coordinates(run: Path) -> None:
    one = run_cli("explore", "run", "--dim", "5", "--range", "-3,3", "--steps", "9", "--out", "e1")
    assert one.exit_code == 0, one.output
    left, top = label_bands(Image.open("e1/explore.png"), 2 * (9 * 30 + 2), 2 * (30 + 2))
    assert left > 0 and top > 0  # z[5] beside the row, its values over the columns
    z = load_file("e1/latents.safetensors")["z"]
    assert torch.allclose(z[0, :, 5], torch.linspace(-3, 3, 9))
    assert torch.equal(z[0, 0, :5], z[0, -1, :5])  # only coordinate 5 moves
    several = run_cli("explore", "run", "--dims", "3", "--steps", "4", "--out", "e3")
    assert several.exit_code == 0
    assert label_bands(Image.open("e3/explore.png"), 2 * (4 * 30 + 2), 2 * (3 * 30 + 2))[0] > 0


@pytest.mark.parametrize("args, message", [
    (["--dim", "8"], "latent coordinates run from 0 to 7"),
    (["--dim", "1", "--range", "3,-3"], "needs LOW < HIGH"),
    (["--dim", "1", "--range", "wide"], "takes LOW,HIGH"),
    ([], "give --dim D"),
])
def test_bad_explore_options(run: Path, args: list[str], message: str) -> None:
    result = run_cli("explore", "run", *args)
    assert result.exit_code == 2 and message in result.output


def test_conditional_models_walk_between_classes(mnist) -> None:
    trained = run_cli("train", "cgan", "--no-wandb", "--data", "mnist", "--subset", "0:64", "--steps", "1",
                      "--set", "g_width=4", "--set", "d_width=4", "--set", "latent_dim=8", "--set",
                      "embed_dim=4", "-b", "16", "--out", "cg")
    assert trained.exit_code == 0, trained.output
    walk = run_cli("interpolate", "cg", "--from-class", "1", "--to-class", "7", "--from-seed", "0",
                   "--to-seed", "0", "--steps", "4", "--out", "w")
    assert walk.exit_code == 0, walk.output
    labels = load_file("w/latents.safetensors")["labels"][0]
    assert torch.allclose(labels[0, 1], torch.tensor(1.0)) and torch.allclose(labels[-1, 7], torch.tensor(1.0))
    unclassed = run_cli("interpolate", "cg", "--from-seed", "0", "--to-seed", "1")
    assert unclassed.exit_code == 2 and "give --class, or --from-class" in unclassed.output
    assert run_cli("explore", "cg", "--dim", "0", "--digit", "3", "--out", "e").exit_code == 0
    assert run_cli("invert", "cg", "digit.png").exit_code == 2


class Translator(zoo.Model):
    """A stand-in image-to-image plugin: no latent prior."""

    name = "translator"
    summary = "image-to-image stand-in"
    capabilities = frozenset({zoo.Capability.IMAGE_TO_IMAGE})

    def __init__(self, config, spec):
        super().__init__(config, spec)
        self.net = nn.Conv2d(spec.channels, spec.channels, 1)


def test_models_without_a_latent_refuse_and_name_those_that_can(extra_plugins, digit_png: Path) -> None:
    extra_plugins(FakeEntryPoint("translator", "tests.test_latent:Translator", "zoo-translate"))
    spec = zoo.DataSpec("x", 1, 28, 28)
    model = Translator(zoo.Config(), spec)
    ckpt_io.save(Path("t.safetensors"), ckpt_io.Checkpoint(
        "translator", "1", config_io.to_dict(model.config), spec.to_dict(), {}, {"model": model.state_dict()}))
    for args in (["invert", "t.safetensors", str(digit_png)], ["explore", "t.safetensors", "--dim", "0"],
                 ["interpolate", "t.safetensors", "--from-seed", "1", "--to-seed", "2"],
                 ["sample", "t.safetensors"]):
        result = run_cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "translator cannot" in result.output and "models that can: cgan, cvae, dcgan" in result.output


def test_models_with_an_encoder_start_from_its_guess() -> None:
    from zoo.plugins.dcgan import DCGAN

    class Encoded(DCGAN):
        capabilities = DCGAN.capabilities | {zoo.Capability.ENCODER}

        def encode(self, images: torch.Tensor, conditions=None) -> torch.Tensor:
            return self.known.expand(len(images), -1)

    torch.manual_seed(0)
    model = Encoded(config_io.from_dict(Encoded.Config, Encoded.tiny_config, source="test"),
                    zoo.DataSpec("x", 1, 28, 28))
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            module.reset_parameters()
    model.known = torch.randn(1, model.latent_dim)
    with torch.no_grad(), zoo.evaluating(model):
        target = model.generate(model.known)
    fit = fit_latents(model, target, steps=1, restarts=3, lr=1e-6)
    # every restart starts at (or jittered around) the guess: a near-perfect fit at once
    assert float(fit.psnr[0]) > 60 and float((fit.z - model.known).abs().max()) < 0.5
    blind = DCGAN(model.config, model.spec)  # the same weights, no encoder: random starts
    blind.load_state_dict(model.state_dict())
    assert float(fit_latents(blind, target, steps=1, restarts=3, lr=1e-6).psnr[0]) < float(fit.psnr[0]) - 10
