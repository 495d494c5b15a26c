"""Measuring models: the metrics, the feature extractors, zoo eval and --eval-every."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from zoo import features as features_io
from zoo.errors import UsageError, ZooError
from zoo.measure import metrics

from .conftest import TINY, run_cli
from .test_translation import side_by_side

SMALL_CLASSIFIER = {"images_seen": 8000, "train_limit": 2000, "width": 8}
"""A classifier of MNIST trained on 2,000 digits for 4 passes: most of the held-out digits right."""
TINY_CLASSIFIER = {"images_seen": 1000, "train_limit": 500, "width": 8, "epochs": 2}

# -- the metrics ------------------------------------------------------------------------------------


def gaussian(n: int, d: int, mean: float, std: float, seed: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * std + mean


def test_a_set_against_itself() -> None:
    x = gaussian(400, 8, 0, 1, 0)
    assert metrics.frechet_distance(x, x) == pytest.approx(0, abs=1e-6)
    assert metrics.precision_recall(x, x) == (1.0, 1.0)
    assert metrics.density_coverage(x, x)[1] == 1.0


def test_frechet_distance_matches_the_closed_form() -> None:
    # N(0, I) against N(0.5, 1.5^2 I) in 16 dimensions: |mu|^2 + tr(1 + 2.25 - 2 * 1.5) per dimension.
    a, b = gaussian(20_000, 16, 0, 1, 0), gaussian(20_000, 16, 0.5, 1.5, 1)
    closed = 16 * 0.25 + 16 * (1 + 2.25 - 3.0)
    assert metrics.frechet_distance(a, b) == pytest.approx(closed, rel=0.03)


def test_frechet_distance_of_the_sample_moments() -> None:
    """Against the formula on the samples' own mean and covariance (scipy's matrix root)."""
    from scipy import linalg

    a, b = gaussian(300, 5, 0, 1, 2), gaussian(300, 5, 0.3, 0.8, 3) @ gaussian(5, 5, 0, 0.5, 4)
    mu_a, mu_b = a.mean(0).numpy(), b.mean(0).numpy()
    s_a, s_b = torch.cov(a.T).numpy(), torch.cov(b.T).numpy()
    root = linalg.sqrtm(s_a @ s_b).real
    expected = ((mu_a - mu_b) ** 2).sum() + (s_a + s_b - 2 * root).trace()
    assert metrics.frechet_distance(a, b) == pytest.approx(float(expected), rel=1e-6)


def test_kid_of_two_draws_of_one_distribution_is_about_zero() -> None:
    a, b, c = gaussian(2000, 16, 0, 1, 0), gaussian(2000, 16, 0, 1, 1), gaussian(2000, 16, 0.5, 1, 2)
    same, spread = metrics.kernel_distance(a, b, subsets=20, subset_size=500)
    assert abs(same) < 3 * spread + 1e-3
    assert metrics.kernel_distance(a, c, subsets=20, subset_size=500)[0] > 10 * abs(same)
    assert metrics.kernel_distance(a, b, subsets=20, subset_size=500) == (same, spread)  # seeded


def brute_force_prdc(real: torch.Tensor, fake: torch.Tensor, k_pr: int, k_dc: int) -> tuple[float, ...]:
    """The textbook definitions, with whole N x M matrices."""
    rr, ff, rf = torch.cdist(real, real), torch.cdist(fake, fake), torch.cdist(real, fake)
    r_pr = rr.sort(1).values[:, k_pr]  # column 0 is the point itself
    f_pr = ff.sort(1).values[:, k_pr]
    r_dc = rr.sort(1).values[:, k_dc]
    precision = (rf <= r_pr[:, None]).any(0).double().mean()
    recall = (rf <= f_pr[None, :]).any(1).double().mean()
    density = (rf <= r_dc[:, None]).sum() / (k_dc * len(fake))
    coverage = (rf.min(1).values <= r_dc).double().mean()
    return float(precision), float(recall), float(density), float(coverage)


def test_chunked_prdc_matches_the_whole_matrix_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "CHUNK", 7)  # many chunks, a ragged last one
    real, fake = gaussian(60, 4, 0, 1, 0), gaussian(45, 4, 0.4, 1.2, 1)
    got = (*metrics.precision_recall(real, fake, 3), *metrics.density_coverage(real, fake, 5))
    assert got == pytest.approx(brute_force_prdc(real, fake, 3, 5))
    assert 0 < got[0] < 1 and 0 < got[1] < 1


def test_precision_falls_for_samples_off_the_data_and_recall_for_a_collapse() -> None:
    real = gaussian(500, 4, 0, 1, 0)
    assert metrics.precision_recall(real, gaussian(500, 4, 6, 1, 1))[0] < 0.05
    collapsed = gaussian(500, 4, 0, 0.05, 2)
    precision, recall = metrics.precision_recall(real, collapsed)
    assert precision > 0.9 and recall < 0.2


def test_memorisation_finds_copies_of_training_images() -> None:
    train, heldout = gaussian(2000, 8, 0, 1, 0), gaussian(400, 8, 0, 1, 1)
    fresh = metrics.memorisation(gaussian(300, 8, 0, 1, 2), train, heldout)
    copies = metrics.memorisation(torch.cat([train[:150], gaussian(150, 8, 0, 1, 3)]), train, heldout)
    assert fresh.share < 0.05 and fresh.reference < 0.05
    assert copies.share == pytest.approx(0.5, abs=0.05)
    assert copies.distance[:150].max() < 1e-6


def test_classifier_score_and_class_accuracy() -> None:
    confident = torch.eye(10).repeat(3, 1) * 30
    assert metrics.classifier_score(confident) == pytest.approx(10, rel=1e-3)
    assert metrics.classifier_score(torch.zeros(30, 10)) == pytest.approx(1)
    assert metrics.classifier_score(torch.eye(10)[[3] * 30] * 30) == pytest.approx(1, rel=1e-3)  # one class only
    overall, per_class = metrics.class_accuracy(torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 1, 2]), 4)
    assert overall == 0.75 and per_class == [1.0, 0.5, 1.0, None]


def test_metrics_refuse_sets_they_cannot_measure() -> None:
    with pytest.raises(ValueError, match="at least 4"):
        metrics.precision_recall(gaussian(3, 2, 0, 1, 0), gaussian(10, 2, 0, 1, 1))
    with pytest.raises(ValueError, match="N x D"):
        metrics.frechet_distance(gaussian(10, 2, 0, 1, 0), gaussian(10, 3, 0, 1, 1))


# -- the feature extractors ----------------------------------------------------------------------------


def reference(prepared, **options) -> features_io.Reference:
    from zoo.data.memory import load_prepared

    return features_io.Reference("mnist", prepared, load_prepared(prepared.path, "heldout"), options=options)


def test_random_features_are_fixed_and_do_not_depend_on_the_batch_size(mnist) -> None:
    one = features_io.load("random", reference(mnist))
    two = features_io.load("random", reference(mnist))
    assert one.weights_hash == two.weights_hash and one.tag.startswith("random:mnist@")
    images = mnist.images[:50]
    assert torch.allclose(one.extract(images, batch_size=7), two.extract(images, batch_size=50), atol=1e-5)
    fd_small = metrics.frechet_distance(one.extract(mnist.images[:300], 13), one.extract(mnist.images[300:600], 13))
    fd_large = metrics.frechet_distance(one.extract(mnist.images[:300], 300), one.extract(mnist.images[300:600], 300))
    assert fd_small == pytest.approx(fd_large, rel=1e-4)


def test_unknown_extractor_names_the_known_ones(mnist) -> None:
    with pytest.raises(UsageError, match="unknown feature extractor 'clasifier'; did you mean classifier"):
        features_io.load("clasifier", reference(mnist))


def test_a_third_party_extractor_loads_through_its_entry_point(mnist, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(features_io.BUILTINS, "mine", "tests.test_eval:my_extractor")
    extractor = features_io.load("mine:42", reference(mnist))
    assert extractor.tag.startswith("random:mnist") and extractor.data == "mnist"
    monkeypatch.setitem(features_io.BUILTINS, "broken", "tests.test_eval:nothing_here")
    with pytest.raises(ZooError, match="'broken'.*failed to load"):
        features_io.load("broken", reference(mnist))


def my_extractor(ref: features_io.Reference) -> features_io.FeatureExtractor:
    assert ref.argument == "42"
    return features_io.RandomFeatures(ref.data, ref.spec.channels)


def test_inception_needs_weights_on_disk(mnist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(features_io.INCEPTION_ENV, raising=False)
    with pytest.raises(UsageError, match="need Inception-v3 weights on disk.*never downloads"):
        features_io.load("inception", reference(mnist))
    with pytest.raises(UsageError, match="not found"):
        features_io.load(f"inception:{tmp_path / 'nope.safetensors'}", reference(mnist))
    pickle = tmp_path / "inception.pth"
    pickle.write_bytes(b"\x80\x04not read")
    with pytest.raises(UsageError, match="not a .safetensors file"):
        features_io.load(f"inception:{pickle}", reference(mnist))
    wrong = tmp_path / "wrong.safetensors"
    save_file({"conv.weight": torch.zeros(2, 2)}, str(wrong))
    with pytest.raises(UsageError, match="does not hold torchvision's Inception-v3 weights"):
        features_io.load(f"inception:{wrong}", reference(mnist))


def test_inception_from_a_safetensors_file(mnist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.models import inception_v3

    weights = tmp_path / "inception_v3.safetensors"
    save_file(inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict(), str(weights))
    monkeypatch.setenv(features_io.INCEPTION_ENV, str(weights))
    extractor = features_io.load("inception", reference(mnist))
    out = extractor.extract(mnist.images[:3], batch_size=2)
    assert out.shape == (3, 2048) and torch.isfinite(out).all()
    assert "299x299" in extractor.resize and extractor.tag.startswith("inception:mnist@")


def test_classifier_is_trained_once_cached_and_checked_on_heldout_images(mnist, cache_dir: Path) -> None:
    # Two passes over 500 digits: what is tested is the cache; how well it reads, in the cgan test below.
    first = features_io.load("classifier", reference(mnist, **TINY_CLASSIFIER))
    assert 0 <= first.accuracy <= 1 and first.classes == 10
    cached = sorted((cache_dir / "features").glob("classifier-mnist-*.safetensors"))
    assert cached
    again = features_io.load("classifier", reference(mnist, **TINY_CLASSIFIER))
    assert again.weights_hash == first.weights_hash and again.accuracy == pytest.approx(first.accuracy)
    for path in cached:  # a damaged cache is rebuilt, not trusted
        path.write_bytes(path.read_bytes()[:100])
    rebuilt = features_io.load("classifier", reference(mnist, **TINY_CLASSIFIER))
    assert rebuilt.weights_hash == first.weights_hash  # seeded: the same network again


def test_a_splits_reference_features_are_computed_once_then_read_back(mnist, cache_dir: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    shutil.rmtree(cache_dir / "features" / features_io.REFERENCE_CACHE, ignore_errors=True)  # earlier tests' evals
    held = reference(mnist).heldout
    extractor = features_io.load("random", reference(mnist))
    seen: list[int] = []
    extract = type(extractor).extract
    monkeypatch.setattr(type(extractor), "extract", lambda self, images, *a, **k: seen.append(len(images))
                        or extract(self, images, *a, **k))
    first = features_io.reference_features(extractor, held)
    assert torch.equal(features_io.reference_features(extractor, held), first) and seen == [len(held)]
    assert torch.equal(first, extract(extractor, held.images))
    other = features_io.reference_features(features_io.load("classifier", reference(mnist, **TINY_CLASSIFIER)), held)
    cached = list((cache_dir / "features" / features_io.REFERENCE_CACHE).glob("*.safetensors"))
    assert other.shape == (len(held), 128) and len(cached) >= 2  # another extractor: features of its own
    for path in cached:  # damaged on disk: computed again, never trusted
        path.write_bytes(path.read_bytes()[:-8] + bytes(8))
    count = len(seen)
    assert torch.equal(features_io.reference_features(extractor, held), first) and len(seen) == count + 1


def test_training_the_classifier_says_how_far_it_is_in_a_log(mnist, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from zoo.data.memory import load_prepared
    from zoo.display import console as zoo_console
    from zoo.display.console import make_console

    monkeypatch.setattr(zoo_console, "LOG_EVERY", 0.0)  # a line at every step, not every half minute

    log = io.StringIO()
    said = features_io.Reference("mnist", mnist, load_prepared(mnist.path, "heldout"), console=make_console(file=log),
                                 options={"images_seen": 1000, "train_limit": 500, "seed": 7, "width": 8})
    features_io.load("classifier", said)
    lines = log.getvalue().splitlines()
    progress = [line for line in lines if line.startswith("training the classifier features on 500 mnist images")]
    assert len(progress) == 8 and "1/8 (12%)" in progress[0] and "8/8 (100%)" in progress[-1], lines
    assert lines[-1].startswith("classifier features: ")  # then how well it reads the held-out digits


def test_classifier_needs_labels(image_folder: Path) -> None:
    from zoo.pipelines.prep import prepare

    unlabelled = prepare(f"folder:{image_folder / 'circle'}", size=28, channels=1)
    with pytest.raises(UsageError, match="need a labelled data set"):
        features_io.load("classifier", features_io.Reference("circles", unlabelled))
    with pytest.raises(UsageError, match="no labels to train zoo's classifier"):
        features_io.default_for(unlabelled.spec)


# -- zoo eval ----------------------------------------------------------------------------------------------

@pytest.fixture
def dcgan_run(mnist, trained) -> Path:
    return trained("train", "dcgan", *TINY, "--data", "mnist", "--steps", "2", dest="dc")


def test_eval_writes_every_figure_with_its_protocol(dcgan_run: Path) -> None:
    result = run_cli("eval", str(dcgan_run), "--features", "random", "--n", "300", "--wandb", "off")
    assert result.exit_code == 0, result.output
    saved = json.loads((dcgan_run / "eval.json").read_text())
    for key in ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "diversity",
                "memorisation", "memorisation_reference", "swd", "swd_reference", "ms_ssim", "ms_ssim_reference"):
        assert math.isfinite(saved[key]), key
    assert list(saved["swd_per_level"]) == ["28px"]  # 28 px: one level (the coarsest is 16 px or more)
    assert saved["karras"]["swd"]["images"] == 300 and saved["karras"]["ms_ssim"]["scales"] == 3
    assert saved["swd"] > saved["swd_reference"]  # two steps of training are far from the data
    assert "class_accuracy" not in saved and "classifier_score" not in saved  # random features have no classes
    assert saved["protocol"].startswith("fid300+prdc300/random:mnist@") and saved["protocol"].endswith("/heldout")
    detail = saved["protocol_detail"]
    assert detail["generated"] == 300 and detail["reference"] == 1000 and detail["split"] == "heldout"
    assert saved["checkpoint"]["which"] == "latest" and saved["checkpoint"]["step"] == 2
    assert json.loads((dcgan_run / "run.json").read_text())["eval"]["fid"] == saved["fid"]
    assert (dcgan_run / "eval" / "samples.png").is_file() and (dcgan_run / "eval" / "nearest.png").is_file()
    assert "fid300+prdc300/random:mnist@" in result.output and "precision" in result.output

    again = run_cli("eval", str(dcgan_run), "--features", "random", "--n", "300", "--split", "train",
                    "--wandb", "off")
    assert again.exit_code == 0, again.output
    history = [json.loads(line) for line in (dcgan_run / "evals.jsonl").read_text().splitlines()]
    assert [h["protocol_detail"]["split"] for h in history] == ["heldout", "train"]
    assert history[0]["fid"] == saved["fid"]  # the first evaluation is kept


def test_eval_is_reproducible(dcgan_run: Path, small_karras: None) -> None:
    from zoo.pipelines.evaluate import evaluate

    one = evaluate(str(dcgan_run), n=200, features="random", wandb="off")
    two = evaluate(str(dcgan_run), n=200, features="random", batch_size=33, wandb="off")
    for key in ("fid", "kid", "precision", "recall", "density", "coverage", "swd", "ms_ssim"):
        assert one[key] == pytest.approx(two[key], rel=1e-4, abs=1e-6), key


def test_precision_recall_density_and_coverage_compare_sets_of_one_size(dcgan_run: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      small_karras: None) -> None:
    """Their papers measure equal sets: with 10 samples to each real image, the real images'
    neighbourhoods each hold several, and coverage climbs to 1 whatever the model. The
    Frechet distance takes every sample; these four take as many of each set as the smaller
    holds, and the protocol says so (so that zoo compare does not set them beside figures
    measured otherwise)."""
    from zoo.pipelines.evaluate import evaluate

    sizes: list[tuple[int, int]] = []

    def recorded(measure):
        def recording(real: torch.Tensor, fake: torch.Tensor, k: int):
            sizes.append((len(real), len(fake)))
            return measure(real, fake, k)
        return recording

    for name in ("precision_recall", "density_coverage"):
        monkeypatch.setattr(metrics, name, recorded(getattr(metrics, name)))
    more = evaluate(str(dcgan_run), n=1200, features="random", wandb="off")  # 1,000 held-out digits
    assert sizes == [(1000, 1000)] * 2
    assert more["protocol"].startswith("fid1200+prdc1k/random:mnist@")
    detail = more["protocol_detail"]
    assert (detail["generated"], detail["reference"]) == (1200, 1000)
    assert (detail["prdc"]["generated"], detail["prdc"]["reference"]) == (1000, 1000)
    assert json.loads((dcgan_run / "run.json").read_text())["eval"]["protocol"] == more["protocol"]
    fewer = evaluate(str(dcgan_run), n=300, features="random", wandb="off")
    assert sizes[2:] == [(300, 300)] * 2 and fewer["protocol"].startswith("fid300+prdc300/")


def test_the_larger_set_is_cut_to_the_size_of_the_smaller() -> None:
    from zoo.pipelines.evaluate.samplers import equal_sets

    real, fake = torch.arange(10.0).view(10, 1), torch.arange(100.0, 130.0).view(30, 1)
    cut_real, cut_fake = equal_sets(real, fake, None, 0)
    assert torch.equal(cut_real, real) and torch.equal(cut_fake, fake[:10])  # the first samples drawn
    # Fewer samples: the real images their conditions came from, or a seeded random subset.
    assert equal_sets(real, fake[:3], torch.tensor([7, 2, 5, 7]), 0)[0].flatten().tolist() == [7.0, 2.0, 5.0]
    subset = equal_sets(real, fake[:3], None, 0)[0]
    assert len(set(subset.flatten().tolist())) == 3 and torch.equal(subset, equal_sets(real, fake[:3], None, 0)[0])
    assert not torch.equal(subset, equal_sets(real, fake[:3], None, 1)[0])


@pytest.mark.parametrize(("args", "message"), [
    (["--features", "nope"], "unknown feature extractor 'nope'"),
    (["--split", "validation"], "--split must be heldout"),
    (["--n", "5"], "--n must be a whole number from 6 to 1,000,000, got 5"),  # KID, density need more
    (["--n", str(2**64)], "--n must be a whole number from 6 to 1,000,000"),
    (["--seed", "-1"], "--seed must be a whole number from 0 to 4,294,967,295, got -1"),
    (["--checkpoint", "best"], "has no best.safetensors: a run keeps one when it trains with --eval-every"),
    (["--checkpoint", "newest"], "'newest' is not one of 'latest', 'best'"),
])
def test_eval_refuses_bad_input_in_one_line(dcgan_run: Path, args: list[str], message: str) -> None:
    result = run_cli("eval", str(dcgan_run), *args)
    assert result.exit_code != 0 and message in " ".join(result.output.split())


def test_eval_of_a_folder_without_a_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "empty-run").mkdir()
    result = run_cli("eval", str(tmp_path / "empty-run"))
    assert result.exit_code == 1 and "holds no checkpoint.safetensors" in result.output


def test_eval_of_data_without_held_out_images(image_folder: Path) -> None:
    result = run_cli("train", "dcgan", *TINY, "--data", f"folder:{image_folder}", "--size", "28", "--steps", "1",
                     "--no-wandb", "--out", "small")
    assert result.exit_code == 0, result.output
    run = Path("small")
    result = run_cli("eval", str(run), "--features", "random", "--n", "50")
    assert result.exit_code != 0 and "has no held-out images" in " ".join(result.output.split())
    assert run_cli("eval", str(run), "--features", "random", "--n", "50", "--split", "train").exit_code == 0


def test_eval_of_a_class_conditional_model_reads_each_class(mnist, trained, small_karras: None) -> None:
    from zoo.pipelines.evaluate import evaluate

    run = trained("train", "cgan", *TINY, "--set", "embed_dim=4", "--data", "mnist", "--steps", "2", dest="cg")
    result = evaluate(str(run), n=200, features="classifier", wandb="off",
                      extractor_options=SMALL_CLASSIFIER)
    per_class = result["class_accuracy_per_class"]
    assert list(per_class) == [str(d) for d in range(10)] and all(0 <= v <= 1 for v in per_class.values())
    assert 0 <= result["class_accuracy"] <= 1 and 1 <= result["classifier_score"] <= 10
    assert result["protocol_detail"]["extractor_accuracy"] > 0.3
    assert (run / "eval" / "classes.png").is_file()
    assert len(list((run / "eval" / "classes").glob("*.png"))) == 10  # a strip per digit, for W&B
    # Any features: class accuracy still comes from the classifier.
    other = evaluate(str(run), n=200, features="random", wandb="off",
                     extractor_options=SMALL_CLASSIFIER)
    assert other["protocol"].startswith("fid200+prdc200/random") and "class_accuracy" in other


def test_eval_of_a_translator_against_its_targets(trained, tmp_path_factory: pytest.TempPathFactory) -> None:
    pairs = side_by_side(tmp_path_factory.mktemp("evalpairs") / "pairs", n=220)
    run = trained("train", "pix2pix", "--data", f"paired:{pairs}", "--size", "32", "--set", "g_width=4",
                  "--set", "d_width=4", "--batch-size", "4", "--steps", "2", dest="p2p")
    result = run_cli("eval", str(run), "--split", "test", "--wandb", "off")
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "eval.json").read_text())
    assert 0 <= saved["l1"] <= 1 and saved["psnr"] > 0 and -1 <= saved["ssim"] <= 1
    assert saved["protocol"] == "pairs/heldout" and "fid_skipped" in saved  # no labels: no classifier features
    with_fid = run_cli("eval", str(run), "--features", "random", "--wandb", "off")
    assert with_fid.exit_code == 0, with_fid.output
    assert math.isfinite(json.loads((run / "eval.json").read_text())["fid"])


# -- during training -----------------------------------------------------------------------------------------

def test_eval_every_logs_figures_and_keeps_the_best_checkpoint(mnist, trained) -> None:
    run = trained("train", "dcgan", *TINY, "--data", "mnist", "--steps", "4", "--eval-every", "2",
                  "--eval-features", "random", dest="ev")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "fd" in r]
    assert [r["step"] for r in evals] == [2, 4]
    assert all(r["fd"] > 0 and -1 <= r["ssim_train"] <= 1 for r in evals)
    info = json.loads((run / "run.json").read_text())
    best = min(evals, key=lambda r: r["fd"])
    assert info["best"]["step"] == best["step"] and info["best"]["fd"] == best["fd"]
    assert info["best"]["protocol"].startswith("fd1k/random:mnist@")
    from zoo.records import checkpoint as ckpt_io

    assert ckpt_io.read_meta(run / "best.safetensors")["train"]["step"] == best["step"]
    result = run_cli("sample", str(run), "--checkpoint", "best", "--n", "4", "--out", "best-samples")
    assert result.exit_code == 0 and f"(step {best['step']})" in result.output
    assert (run / "losses.png").is_file()


def test_an_evaluation_of_a_run_still_training_outlives_its_next_save(mnist, monkeypatch: pytest.MonkeyPatch) -> None:
    """zoo eval beside a training: both write run.json, each its own fields, and the
    trainer's next save keeps the eval entry (it once wrote its own copy over the file)."""
    from rich.console import Console

    from zoo.pipelines import loop
    from zoo.pipelines.evaluate import evaluate

    save = loop.Loop.save
    evaluated: list[dict] = []

    def save_then_evaluate(self: loop.Loop, status: str, cadence: bool = True) -> Path:
        path = save(self, status, cadence)
        if not evaluated:  # after the first checkpoint, as zoo eval in another shell would
            evaluated.append(evaluate(str(self.run_dir), n=50, features="random", wandb="off",
                                      console=Console(quiet=True)))
        return path

    monkeypatch.setattr(loop.Loop, "save", save_then_evaluate)
    result = run_cli("train", "dcgan", *TINY, "--data", "mnist", "--steps", "4", "--no-wandb", "--out", "run")
    assert result.exit_code == 0, result.output
    info = json.loads(Path("run/run.json").read_text())
    assert info["status"] == "finished" and info["step"] == 4  # the trainer's fields, saved last
    assert evaluated[0]["checkpoint"]["step"] < 4  # zoo eval's, of an earlier checkpoint, kept
    assert info["eval"]["step"] == evaluated[0]["checkpoint"]["step"] and info["eval"]["fid"] == evaluated[0]["fid"]


def test_eval_features_needs_eval_every(mnist, trained) -> None:
    result = run_cli("train", "dcgan", *TINY, "--data", "mnist", "--steps", "1", "--eval-features", "random",
                     "--no-wandb", "--out", "lone")
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "--eval-features chooses the features of --eval-every's figures" in said
    assert len(result.output.strip().splitlines()) == 1 and not Path("lone").exists()
    run = trained("train", "dcgan", *TINY, "--data", "mnist", "--steps", "2", dest="plain")  # no --eval-every
    before = (run / "run.json").read_bytes()
    result = run_cli("train", "dcgan", "--resume", str(run), "--steps", "3", "--eval-features", "random")
    assert result.exit_code == 2 and "give --eval-every N too" in " ".join(result.output.split())
    assert (run / "run.json").read_bytes() == before


def test_a_resumed_run_measures_in_its_own_features_and_compares_only_its_own(tmp_path: Path) -> None:
    """Unlabelled images have no default features (no classifier without labels), so a
    resume that forgot the run's --eval-features could not measure at all. It measures in
    them again; others are refused; and a best measured under another protocol is never
    compared with (nor replaced by) the run's figures."""
    from .conftest import make_image_folder

    circles = f"folder:{make_image_folder(tmp_path / 'shapes', per_class=24, classes=('circle',)) / 'circle'}"
    result = run_cli("train", "dcgan", *TINY, "--data", circles, "--size", "28", "--channels", "1", "--steps", "2",
                     "--eval-every", "1", "--eval-features", "random", "--no-wandb", "--out", "run")
    assert result.exit_code == 0, result.output
    run = Path("run")
    result = run_cli("train", "dcgan", "--resume", str(run), "--steps", "4")
    assert result.exit_code == 0, result.output
    info = json.loads((run / "run.json").read_text())
    assert info["step"] == 4 and info["eval_features"] == "random"
    assert info["best"]["protocol"].startswith("fd1k/random:")
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"fd"' in line]
    assert [row["step"] for row in evals] == [1, 2, 3, 4]

    before = (run / "run.json").read_bytes(), (run / "checkpoint.safetensors").read_bytes()
    result = run_cli("train", "dcgan", "--resume", str(run), "--steps", "5", "--eval-features", "inception")
    assert result.exit_code == 2, result.output
    assert "that run measures --eval-every's figures in --eval-features random, not inception" in \
        " ".join(result.output.split())
    assert ((run / "run.json").read_bytes(), (run / "checkpoint.safetensors").read_bytes()) == before

    # A best from another protocol (another extractor, or its weights since changed) stays.
    other = {"step": 1, "fd": 1e9, "protocol": "fd1k/inception:circle@00000000/train"}
    (run / "run.json").write_text(json.dumps({**info, "best": other}))
    best_before = (run / "best.safetensors").read_bytes()
    result = run_cli("train", "dcgan", "--resume", str(run), "--steps", "6")
    assert result.exit_code == 0, result.output
    assert "cannot be compared with it, so best.safetensors stays as it is" in " ".join(result.output.split())
    assert json.loads((run / "run.json").read_text())["best"] == other
    assert (run / "best.safetensors").read_bytes() == best_before


def test_eval_every_must_be_positive(mnist) -> None:
    result = run_cli("train", "dcgan", "--data", "mnist", "--eval-every", "0")
    assert result.exit_code == 2
    assert "--eval-every must be a whole number from 1 to 1,000,000,000, got 0" in result.output


def test_wandb_gets_the_curve_the_best_figure_and_the_evaluation(mnist, monkeypatch: pytest.MonkeyPatch,
                                                                  small_karras: None) -> None:
    from .wandb_files import summarise

    monkeypatch.setenv("WANDB_MODE", "offline")
    result = run_cli("train", "dcgan", *TINY, "--data", "mnist", "--steps", "2", "--eval-every", "2",
                     "--eval-features", "random", "--out", "run")
    assert result.exit_code == 0, result.output
    trained_run = summarise(next(Path("run/wandb").glob("offline-run-*/run-*.wandb")))
    assert {"fd", "ssim_train"} <= trained_run["history"] and "best/fd" in trained_run["summary"], result.output
    result = run_cli("eval", "run", "--features", "random", "--n", "100")
    assert result.exit_code == 0, result.output
    files = sorted(Path("run/wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 2 and len({f.stem for f in files}) == 1  # the same W&B run, resumed
    evaluated = summarise(files[-1])
    assert {"eval/fid", "eval/precision", "eval/protocol"} <= evaluated["summary"], result.output
    assert "eval/samples" in evaluated["history"]


def test_the_documented_sweep_drives_zoo_train_over_real_config_keys(tmp_path: Path) -> None:
    import itertools

    import yaml

    from zoo import config as config_io
    from zoo import registry

    repo = Path(__file__).resolve().parents[1]
    sweep = yaml.safe_load((repo / "docs" / "sweeps" / "dcgan-mnist.yaml").read_text())
    command = sweep["command"]
    assert command[:4] == ["${env}", "zoo", "train", "dcgan"] and command[-2:] == ["--config", "${args_json_file}"]
    assert "--eval-every" in command and sweep["metric"] == {"name": "best/fd", "goal": "minimize"}
    cls = registry.get(command[3])
    names = list(sweep["parameters"])
    for values in itertools.product(*(sweep["parameters"][k]["values"] for k in names)):
        point = tmp_path / "point.json"  # what the agent writes for ${args_json_file}
        point.write_text(json.dumps(dict(zip(names, values, strict=True))))
        config = config_io.resolve(cls.Config, config_file=point)
        assert all(getattr(config, k) == v for k, v in zip(names, values, strict=True))


def test_eval_against_another_data_set(mnist, trained) -> None:
    sevens = trained("train", "dcgan", *TINY, "--data", "mnist", "--classes", "7", "--steps", "1", dest="sevens")
    own = run_cli("eval", str(sevens), "--features", "random", "--n", "50", "--wandb", "off")
    assert own.exit_code == 0, own.output
    assert json.loads((sevens / "eval.json").read_text())["protocol_detail"]["reference"] < 200  # held-out 7s
    every = run_cli("eval", str(sevens), "--features", "random", "--n", "50", "--data", "mnist", "--wandb", "off")
    assert every.exit_code == 0, every.output
    saved = json.loads((sevens / "eval.json").read_text())
    assert saved["reference_data"] == "mnist" and saved["protocol_detail"]["reference"] == 1000


# -- modes on Stacked MNIST ------------------------------------------------------------------------

def test_modes_and_kl_of_constructed_histograms() -> None:
    from zoo.pipelines.evaluate.modes import coverage

    assert coverage(torch.arange(1000).repeat(26)) == (1000, pytest.approx(0.0, abs=1e-12))  # every mode alike
    assert coverage(torch.full((26_000,), 307)) == (1, pytest.approx(math.log(1000)))  # one mode
    assert coverage(torch.arange(0, 1000, 2).repeat(3)) == (500, pytest.approx(math.log(2)))  # half, alike
    # 3 modes drawn 1:1:2 -> KL = sum p log(1000 p)
    want = sum(p * math.log(1000 * p) for p in (0.25, 0.25, 0.5))
    assert coverage(torch.tensor([5, 6, 7, 7])) == (3, pytest.approx(want))


def test_each_channel_is_read_as_a_digit_of_the_mode() -> None:
    from zoo.pipelines.evaluate.modes import read_modes

    class Brightness:
        """Reads a grey image's digit as its brightness / 25 (0..9): a judge whose answers are known."""

        def extract(self, images: torch.Tensor, batch_size: int, logits: bool = False) -> torch.Tensor:
            assert images.shape[1:] == (1, 28, 28) and logits
            return torch.nn.functional.one_hot((images.float().mean((1, 2, 3)) / 25).long().clamp(0, 9), 10).float()

    digits = torch.tensor([[3, 0, 7], [9, 9, 9], [0, 4, 1]])
    images = (digits * 25 + 10).to(torch.uint8)[:, :, None, None].expand(3, 3, 28, 28)
    assert read_modes(Brightness(), images, 2).tolist() == [307, 999, 41]  # type: ignore[arg-type]
    # stacks prepared at 32 px (--size 32) are read at the judge's 28 px, digits unchanged
    large = (digits * 25 + 10).float().div(127.5).sub(1)[:, :, None, None].expand(3, 3, 32, 32)

    class InUnits(Brightness):
        def extract(self, images: torch.Tensor, batch_size: int, logits: bool = False) -> torch.Tensor:
            return super().extract(images.add(1).mul(127.5).round(), batch_size, logits)

    assert read_modes(InUnits(), large, 2).tolist() == [307, 999, 41]  # type: ignore[arg-type]


def test_eval_on_stacked_mnist_counts_modes_and_checks_its_judge(mnist, trained, monkeypatch) -> None:
    from zoo.data.memory import load_prepared
    from zoo.data.sources import stacked
    from zoo.pipelines.evaluate import evaluate, modes

    monkeypatch.setattr(stacked, "TRAIN_COUNT", 600)
    monkeypatch.setattr(stacked, "HELDOUT_COUNT", 200)
    monkeypatch.setattr(modes, "MODE_SAMPLES", 400)
    run = trained("train", "dcgan", *TINY, "--data", "stacked-mnist", "--steps", "2", dest="stacked")
    judges = []  # what each classifier was trained on, and checked on

    def spy(spec, reference):
        judges.append(reference)
        return load(spec, reference)

    load = modes.features_io.load
    monkeypatch.setattr(modes.features_io, "load", spy)

    result = evaluate(str(run), n=100, features="random", wandb="off", extractor_options=TINY_CLASSIFIER)
    assert 1 <= result["modes"] <= 400 and 0 <= result["modes_kl"] <= math.log(1000) + 1e-9
    assert 1 <= result["modes_reference"] <= 600  # 600 training stacks (the judge never saw them)
    saved = json.loads((run / "eval.json").read_text())
    assert saved["modes"] == result["modes"] and saved["modes_protocol"]["samples"] == 400
    judge = saved["modes_protocol"]["judge"]  # trained on held-out digits, checked on images it never saw
    assert 0 <= judge["mnist_train_accuracy"] <= 1 and 0 <= judge["stacks_read_right"] <= 1
    assert judge["trained_on"].startswith("MNIST's") and "held-out" in judge["trained_on"]
    assert judge["stacks"] == 600 and "training stacks" in saved["modes_protocol"]["reference"]
    # the judge learnt MNIST's held-out digits only, and was checked on the training digits
    (reference,) = [r for r in judges if r.data == "mnist"]
    assert reference.train.meta["split"] == "heldout"
    assert torch.equal(reference.train.images, load_prepared(mnist.path, "heldout").images)
    assert torch.equal(reference.heldout.images, mnist.images)
