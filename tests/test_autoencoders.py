"""The autoencoders (ae, vae, cvae): each loss term, the likelihood estimate, and the commands
that use an encoder (zoo reconstruct, interpolation between images, zoo eval's figures)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import zoo
from zoo import config as config_io
from zoo.data.memory import TensorBatches
from zoo.measure import metrics
from zoo.plugins.autoencoder import Autoencoder
from zoo.plugins.vae import CVAE, VAE, gaussian_kl
from zoo.records import checkpoint as ckpt_io

from .conftest import run_cli

TINY_AE = ["--set", "encoder_width=4", "--set", "decoder_width=4", "--set", "latent_dim=4", "--batch-size", "16"]
SPEC = zoo.DataSpec("gray28", 1, 28, 28, tuple("0123456789"))


def vae(**overrides) -> VAE:
    config = config_io.from_dict(VAE.Config, {**VAE.tiny_config, **overrides}, source="test")
    torch.manual_seed(0)
    return VAE(config, SPEC)


def digits(n: int = 8) -> torch.Tensor:
    """Images with 8-bit values in [-1, 1]: what the data gives a model."""
    return torch.randint(0, 256, (n, 1, 28, 28), generator=torch.Generator().manual_seed(3)).float() / 127.5 - 1


# -- the loss terms ---------------------------------------------------------------------------------------------

def test_the_kl_term_is_the_closed_form_per_dimension() -> None:
    mu, logvar = torch.randn(5, 3), torch.randn(5, 3)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    expected = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0))
    assert torch.allclose(gaussian_kl(mu, logvar), expected, atol=1e-6)


def test_the_bernoulli_likelihood_is_summed_over_every_pixel() -> None:
    model = vae()
    # A logit of 0 gives every pixel probability 1/2, whatever it is: log p(x|z) = -784 ln 2 per image,
    # not the mean's -ln 2 (which would weigh the KL 784 times too much).
    log_px = model.log_px(torch.zeros(3, 1, 28, 28), torch.rand(3, 1, 28, 28))
    assert torch.allclose(log_px, torch.full((3,), -784 * math.log(2)))


def test_the_gaussian_likelihood_is_the_normal_density_summed() -> None:
    model = vae(likelihood="gaussian", sigma=0.2)
    raw, x = torch.randn(2, 1, 28, 28), torch.rand(2, 1, 28, 28) * 2 - 1
    expected = torch.distributions.Normal(torch.tanh(raw), 0.2).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(model.log_px(raw, x), expected, rtol=1e-5)


def test_a_gaussian_decoder_learns_its_sigma_and_a_fixed_one_stays() -> None:
    learnt, fixed, bernoulli = vae(likelihood="gaussian"), vae(likelihood="gaussian", sigma=0.1), vae()
    assert learnt.sigma_raw.requires_grad and not fixed.sigma_raw.requires_grad
    assert not bernoulli.sigma_raw.requires_grad  # a Bernoulli decoder has no sigma to learn
    assert float(fixed.sigma()[0]) == pytest.approx(0.1) and float(learnt.sigma().detach()[0]) == pytest.approx(0.1)
    with torch.no_grad():
        learnt.sigma_raw.fill_(-10.0)
    learnt.log_px(torch.zeros(1, 1, 28, 28), torch.full((1, 1, 28, 28), 0.5)).sum().backward()
    assert float(learnt.sigma().detach()[0]) >= 1 / 255 and float(learnt.sigma_raw.grad.abs().sum()) > 0  # never stuck


def test_the_outputs_are_in_the_datas_range_and_mean_what_the_likelihood_says() -> None:
    for model in (vae(), vae(likelihood="gaussian")):
        z = torch.randn(4, 4) * 10  # far out: the output must still be an image in [-1, 1]
        with zoo.evaluating(model), torch.no_grad():
            raw, images = model.decode(z), model.generate(z)
        assert images.min() >= -1 and images.max() <= 1
        expected = 2 * torch.sigmoid(raw) - 1 if model.outputs_logits else torch.tanh(raw)
        assert torch.allclose(images, expected, atol=1e-6)


def step_metrics(model: VAE, fraction: float = 0.5) -> dict[str, float]:
    model.optimizers = model.configure_optimizers()
    batches = TensorBatches(((digits(16) + 1) * 127.5).round().to(torch.uint8), torch.arange(16) % 10, 8, seed=0)
    torch.manual_seed(1)
    out = model.train_step(batches, zoo.Progress(step=1, total_steps=100, epoch=0, time_fraction=fraction))
    return {k: float(v) for k, v in out.items()}


def test_the_elbo_is_logged_with_its_terms_apart() -> None:
    m = step_metrics(vae())
    assert m["elbo"] == pytest.approx(-(m["reconstruction"] + m["kl"]), rel=1e-5)
    assert m["loss"] == pytest.approx(m["reconstruction"] + m["kl"], rel=1e-5)  # beta 1: the loss is -ELBO
    assert m["reconstruction"] > 100 and m["kl"] >= 0  # nats per image, summed over 784 pixels


def test_beta_weighs_the_kl_and_warms_up_over_its_share_of_training() -> None:
    m = step_metrics(vae(beta=4.0))
    assert m["beta"] == 4.0 and m["loss"] == pytest.approx(m["reconstruction"] + 4 * m["kl"], rel=1e-5)
    warm = vae(beta=4.0, kl_warmup=0.2)
    weights = [warm.kl_weight(zoo.Progress(0, 100, 0, time_fraction=f)) for f in (0.0, 0.1, 0.2, 0.9)]
    assert weights == [0.0, 2.0, 4.0, 4.0]
    m = step_metrics(warm, fraction=0.05)
    assert m["beta"] == pytest.approx(1.0) and m["loss"] == pytest.approx(m["reconstruction"] + m["kl"], rel=1e-5)


def test_free_bits_stop_pushing_the_kl_below_their_floor() -> None:
    m = step_metrics(vae(free_bits=50.0))
    # An untrained posterior's KL is far below 50 nats per dimension: the term is the floor, 4 x 50.
    assert m["kl"] < 50 and m["loss"] == pytest.approx(m["reconstruction"] + 4 * 50.0, rel=1e-5)


@pytest.mark.parametrize("overrides, message", [
    ({"kl_warmup": 1.5}, "kl_warmup is a share of training"),
    ({"beta": -1.0}, "beta must not be negative"),
    ({"sigma": 0.001}, "sigma must be 0 (learnt) or at least"),
    ({"likelihood": "poisson"}, "likelihood"),
])
def test_bad_vae_settings_are_refused(overrides: dict, message: str) -> None:
    with pytest.raises(zoo.UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config_io.from_dict(VAE.Config, overrides, source="test")


def test_the_ae_loss_is_mse_or_bce_of_the_reconstruction() -> None:
    for loss in ("mse", "bce"):
        config = config_io.from_dict(Autoencoder.Config, {**Autoencoder.tiny_config, "loss": loss}, source="t")
        model = Autoencoder(config, SPEC)
        x = digits(4)
        raw = model.decode(model.encode(x))
        expected = (torch.nn.functional.mse_loss(torch.tanh(raw), x) if loss == "mse" else
                    torch.nn.functional.binary_cross_entropy_with_logits(raw, (x + 1) / 2))
        assert torch.allclose(model.reconstruction_loss(x), expected)
        assert torch.allclose(model.generate(model.encode(x)), torch.tanh(raw / 2 if loss == "bce" else raw))


def test_the_cvae_encoder_and_decoder_hear_the_class() -> None:
    config = config_io.from_dict(CVAE.Config, CVAE.tiny_config, source="test")
    model = CVAE(config, SPEC)
    x = digits(3)
    with zoo.evaluating(model), torch.no_grad():
        ones, twos = ({"class": torch.full((3,), c)} for c in (1, 2))
        assert not torch.equal(model.encode(x, ones), model.encode(x, twos))
        z = torch.randn(3, 4)
        assert not torch.equal(model.generate(z, ones), model.generate(z, twos))
    with pytest.raises(zoo.UsageError, match="class"):
        model.encode(x)


# -- the likelihood ----------------------------------------------------------------------------------------

def test_more_importance_samples_tighten_the_bound_and_a_seed_repeats_it() -> None:
    model = vae()
    with torch.no_grad():  # a posterior unlike the prior, and a decoder that listens to z
        model.encoder.head.weight.normal_(0, 0.5)
        model.encoder.head.bias[4:] = -2.0
        for p in model.decoder.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.3)
    x = digits(6)
    elbo = model.log_likelihood(x, samples=1, generator=torch.Generator().manual_seed(0))
    iwae = model.log_likelihood(x, samples=200, generator=torch.Generator().manual_seed(0))
    again = model.log_likelihood(x, samples=200, generator=torch.Generator().manual_seed(0))
    assert torch.equal(iwae, again)
    assert float(iwae.mean()) > float(elbo.mean())  # log mean exp >= mean log: a tighter bound
    assert (iwae < 0).all() and (iwae > -784 * math.log(2) * 3).all()  # nats of 784 binary pixels


def test_the_likelihood_matches_an_exact_one_when_the_posterior_is_the_prior() -> None:
    # A decoder that ignores z (its weights zeroed, bias 0) gives p(x) = p(x|z) = 2^-784 for any
    # binary image, and an encoder that says N(0, 1) makes every importance weight exactly 1.
    model = vae()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    estimate = model.log_likelihood(digits(2), samples=7)
    assert torch.allclose(estimate, torch.full((2,), -784 * math.log(2)), atol=1e-3)
    gaussian = vae(likelihood="gaussian", sigma=0.5)
    with torch.no_grad():
        for p in gaussian.parameters():
            p.zero_()  # sigma is fixed at 0.5 by the config
    x = torch.zeros(1, 1, 28, 28)  # at the decoder's mean, dequantised by at most half a bin
    exact = 784 * (torch.distributions.Normal(0.0, 0.5).log_prob(torch.tensor(0.0)) + math.log(2 / 255))
    assert float(gaussian.log_likelihood(x, samples=3)) == pytest.approx(float(exact), abs=0.05)


def test_sharpness_falls_with_blur_and_active_units_count_the_used_dimensions() -> None:
    x = digits(16)
    blurred = torch.nn.functional.avg_pool2d(x, 3, 1, 1)
    assert metrics.sharpness(x, x) == pytest.approx(1.0)
    assert metrics.sharpness(blurred, x) < 0.3
    codes = torch.cat([torch.randn(100, 3), torch.full((100, 2), 0.5) + 0.001 * torch.randn(100, 2)], dim=1)
    assert metrics.active_units(codes) == 3


# -- the commands ---------------------------------------------------------------------------------------------

@pytest.fixture
def ae_run(mnist, trained) -> Path:
    return trained("train", "ae", *TINY_AE, "--data", "mnist", "--steps", "6", dest="ae")


def write_digits(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        picture = Image.new("L", (40, 40), 0)
        picture.paste(255, (10 + i, 5, 22 + i, 35))  # a stroke of a one
        picture.save(folder / f"d{i}.png")
    return folder


def test_the_vae_preview_shows_reconstructions_and_samples_and_only_samples_are_watched() -> None:
    model = vae()
    examples = zoo.Batch(digits(8), conditions={"class": torch.arange(8)})
    inputs = model.preview_inputs(8, torch.Generator().manual_seed(0), examples)
    preview = model.preview(inputs)
    assert preview.shape == (8, 8, 1, 28, 28) and torch.equal(preview[:, 0], digits(8))
    assert model.preview_labels(inputs)[0][:3] == ["input", "reconstruction", "samples"]
    assert model.preview_samples(inputs, preview).shape == (8 * 6, 1, 28, 28)  # not the inputs
    ae = Autoencoder(config_io.from_dict(Autoencoder.Config, Autoencoder.tiny_config, source="t"), SPEC)
    ae_inputs = ae.preview_inputs(8, torch.Generator().manual_seed(0), examples)
    assert ae.preview_samples(ae_inputs, ae.preview(ae_inputs)) is None  # reconstructions, no samples


def test_ae_trains_with_input_and_reconstruction_previews(ae_run: Path) -> None:
    rows = [json.loads(line) for line in (ae_run / "metrics.jsonl").read_text().splitlines()]
    assert rows and all(r["loss"] > 0 for r in rows if "loss" in r)
    preview = Image.open(sorted((ae_run / "progress").glob("step-*.png"))[-1])
    assert preview.width < preview.height  # eight rows of input | reconstruction


def test_reconstruct_one_image_a_folder_and_a_glob(ae_run: Path, tmp_path: Path) -> None:
    inputs = write_digits(tmp_path / "digits")
    (inputs / "notes.txt").write_text("not an image")
    Image.new("RGB", (10, 10)).save(inputs / "tiny.jpg")
    one = run_cli("reconstruct", str(ae_run), str(inputs / "d0.png"), "--out", "one")
    assert one.exit_code == 0, one.output
    assert Image.open("one/d0.png").size == (28, 28) and Path("one/sheet.png").is_file()
    saved = json.loads(Path("one/metrics.json").read_text())
    assert saved["model"] == "ae" and len(saved["images"]) == 1 and saved["images"][0]["output"] == "d0.png"
    assert saved["mean"]["psnr"] == pytest.approx(saved["images"][0]["psnr"]) and saved["mean"]["psnr"] > 0
    many = run_cli("reconstruct", str(ae_run), str(inputs), "--out", "many")
    assert many.exit_code == 0, many.output
    assert sorted(p.name for p in Path("many").glob("*.png")) == ["d0.png", "d1.png", "d2.png", "sheet.png",
                                                                  "tiny.png"]
    assert "fitted to the model's 28x28" in many.output
    globbed = run_cli("reconstruct", str(ae_run), str(inputs / "d[12].png"), "--out", "glob")
    assert globbed.exit_code == 0 and len(json.loads(Path("glob/metrics.json").read_text())["images"]) == 2
    again = run_cli("reconstruct", str(ae_run), str(inputs), "--out", "many")
    assert again.exit_code == 2 and "already holds files" in again.output


def test_reconstruct_takes_the_runs_best_checkpoint_when_asked(ae_run: Path, trained, tmp_path: Path) -> None:
    inputs = write_digits(tmp_path / "digits", n=1)
    refused = run_cli("reconstruct", str(ae_run), str(inputs), "--checkpoint", "best")
    assert refused.exit_code == 1 and "has no best.safetensors" in refused.output
    assert refused.output.count("\n") == 1
    earlier = trained("train", "ae", *TINY_AE, "--data", "mnist", "--steps", "2", dest="early")
    shutil.copyfile(earlier / ckpt_io.FILENAME, ae_run / "best.safetensors")
    best = run_cli("reconstruct", str(ae_run), str(inputs), "--checkpoint", "best")
    assert best.exit_code == 0 and "(step 2)" in best.output, best.output
    assert json.loads(Path("reconstructions/run-best/metrics.json").read_text())["checkpoint_step"] == 2
    latest = run_cli("reconstruct", str(ae_run), str(inputs))
    assert latest.exit_code == 0 and "(step 6)" in latest.output
    assert json.loads(Path("reconstructions/run/metrics.json").read_text())["checkpoint_step"] == 6


def test_a_model_that_cannot_sample_says_so_before_looking_for_its_runs() -> None:
    result = run_cli("sample", "ae")  # no run of ae anywhere: what it cannot do comes first
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "ae cannot sample from noise" in result.output and "models that can: " in result.output
    assert "zoo reconstruct ae" in result.output and "train one first" not in result.output


def test_reconstruct_skips_unreadable_files_in_a_folder_and_refuses_a_named_one(ae_run: Path,
                                                                                 tmp_path: Path) -> None:
    inputs = write_digits(tmp_path / "digits", n=2)
    (inputs / "broken.png").write_bytes(b"\x89PNG not really")
    skipped = run_cli("reconstruct", str(ae_run), str(inputs), "--out", "out")
    assert skipped.exit_code == 0 and "skipped 1 unreadable file(s): broken.png" in skipped.output
    named = run_cli("reconstruct", str(ae_run), str(inputs / "broken.png"), "--out", "out2")
    assert named.exit_code == 2 and "is not a readable image" in named.output and named.output.count("\n") == 1


def test_reconstruct_refuses_a_model_without_an_encoder(mnist) -> None:
    made = run_cli("train", "dcgan", "--data", "mnist", "--steps", "1", "--set", "g_width=4", "--set",
                   "d_width=4", "--batch-size", "8", "--no-wandb", "--out", "dc")
    assert made.exit_code == 0
    write_digits(Path("in"), n=1)
    result = run_cli("reconstruct", "dc", "in/d0.png")
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "dcgan cannot reconstruct images: it lacks the 'encoder' capability; models that can: ae, cvae, vae" \
        in result.output and "zoo invert dc IMAGE" in result.output


def test_an_autoencoder_does_not_sample_but_interpolates_between_images(ae_run: Path, tmp_path: Path) -> None:
    write_digits(tmp_path / "digits", n=2)
    sample = run_cli("sample", str(ae_run))
    assert sample.exit_code == 2 and "ae cannot sample from noise" in sample.output
    assert "zoo reconstruct" in sample.output
    seeds = run_cli("interpolate", str(ae_run), "--from-seed", "1", "--to-seed", "2")
    assert seeds.exit_code == 2 and "has no prior to draw seeds from" in seeds.output
    walk = run_cli("interpolate", str(ae_run), "--from-image", str(tmp_path / "digits/d0.png"),
                   "--to-image", str(tmp_path / "digits/d1.png"), "--steps", "4", "--out", "walk")
    assert walk.exit_code == 0, walk.output
    assert "encoded" in walk.output and "by lerp" in walk.output  # through the encoder, straight: no prior
    z = load_file("walk/latents.safetensors")["z"]
    assert z.shape == (1, 4, 4) and torch.allclose(z[0, 1], z[0, 0] + (z[0, 3] - z[0, 0]) / 3, atol=1e-5)
    inverted = run_cli("invert", str(ae_run), str(tmp_path / "digits/d0.png"), "--steps", "3", "--restarts", "2",
                       "--out", "inv")
    assert inverted.exit_code == 0, inverted.output
    assert json.loads(Path("inv/metrics.json").read_text())["prior_weight"] == 0.0


def test_eval_of_an_autoencoder_measures_its_reconstructions(ae_run: Path) -> None:
    result = run_cli("eval", str(ae_run), "--wandb", "off")
    assert result.exit_code == 0, result.output
    saved = json.loads((ae_run / "eval.json").read_text())
    assert saved["protocol"] == "reconstruction1k/heldout"
    assert 0 <= saved["l1"] <= 1 and saved["psnr"] > 0 and saved["reconstruction_sharpness"] > 0
    assert 0 <= saved["active_units"] <= 4 and "fid" not in saved and "nll" not in saved
    assert (ae_run / "eval" / "reconstructions.png").is_file()


def test_a_vae_samples_interpolates_and_is_measured_with_its_likelihood(mnist, trained, tmp_path: Path) -> None:
    run = trained("train", "vae", *TINY_AE, "--data", "mnist", "--steps", "6", dest="vae")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"loss", "elbo", "reconstruction", "kl", "beta"} <= set(rows[0])
    assert run_cli("sample", str(run), "--n", "4", "--out", "s").exit_code == 0
    write_digits(tmp_path / "digits", n=2)
    walk = run_cli("interpolate", str(run), "--from-image", str(tmp_path / "digits/d0.png"),
                   "--to-image", str(tmp_path / "digits/d1.png"), "--steps", "3", "--out", "walk")
    assert walk.exit_code == 0 and "encoded" in walk.output and "by slerp" in walk.output
    result = run_cli("eval", str(run), "--n", "200", "--features", "random", "--wandb", "off",
                     "--nll-samples", "20", "--nll-images", "30")
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "eval.json").read_text())
    assert saved["protocol"].startswith("fid200+prdc200/random")
    assert saved["nll"] > 0 and saved["nll_elbo"] >= saved["nll"] - 0.5  # a bound in expectation: near it here
    assert saved["bits_per_dim"] == pytest.approx(saved["nll"] / (784 * math.log(2)))
    assert saved["likelihood"]["samples"] == 20 and saved["likelihood"]["images"] == 30
    assert "binarised" in saved["likelihood"]["of"]
    assert saved["sharpness"] >= 0 and "psnr" in saved and "memorisation" in saved
    assert "held-out NLL" in result.output


def test_a_cvae_samples_the_class_asked_for_and_reconstructs_with_one(mnist, trained, tmp_path: Path) -> None:
    run = trained("train", "cvae", *TINY_AE, "--set", "embed_dim=4", "--data", "mnist", "--steps", "4", dest="cv")
    sevens = run_cli("sample", str(run), "--digit", "7", "--n", "3", "--out", "sevens")
    assert sevens.exit_code == 0 and sorted(p.name for p in Path("sevens").glob("7-*.png")) == \
        ["7-0000.png", "7-0001.png", "7-0002.png"]
    write_digits(tmp_path / "digits", n=1)
    unsaid = run_cli("reconstruct", str(run), str(tmp_path / "digits"))
    assert unsaid.exit_code == 2 and "cvae is class-conditional: say which class" in unsaid.output
    said = run_cli("reconstruct", str(run), str(tmp_path / "digits"), "--digit", "1", "--out", "r")
    assert said.exit_code == 0, said.output


def test_the_cvae_prior_is_the_classs_own_and_its_codes_stay_standard_normal() -> None:
    config = config_io.from_dict(CVAE.Config, CVAE.tiny_config, source="test")
    model = CVAE(config, SPEC)
    with torch.no_grad():
        model.prior_mean.weight[7] = 2.0
        model.prior_logvar.weight[7] = math.log(4.0)  # p(z | 7) = N(2, 2^2)
    x, sevens = digits(3), {"class": torch.full((3,), 7)}
    with zoo.evaluating(model), torch.no_grad():
        mu = model.posterior(x, sevens)[0]
        code = model.encode(x, sevens)
        assert torch.allclose(code, (mu - 2.0) / 2.0, atol=1e-6)  # standardised under the class's prior
        assert torch.allclose(model.generate(code, sevens), torch.tanh(model.decode(mu, sevens) / 2), atol=1e-6)
    kl = gaussian_kl(torch.full((1, 4), 2.0), torch.full((1, 4), math.log(4.0)), 2.0, math.log(4.0))
    assert torch.allclose(kl, torch.zeros(1, 4), atol=1e-6)  # the posterior equal to the prior costs nothing
    assert model.prior_mean.weight.requires_grad
    standard = CVAE(config_io.from_dict(CVAE.Config, {**CVAE.tiny_config, "prior": "standard"}, source="t"), SPEC)
    assert not standard.prior_mean.weight.requires_grad and not standard.prior_logvar.weight.requires_grad
