"""Text to image: captioned data, zoo's own text encoder, StackGAN's two stages, --text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from zoo.data import sentence_encoder, text
from zoo.data.sources import captions
from zoo.errors import UsageError
from zoo.plugins.stackgan import ConditioningAugmentation, MatchingDiscriminator, kl_divergence, mismatched
from zoo.records import checkpoint as ckpt_io

from .conftest import run_cli

TINY_STACKGAN = ["--set", "g_width=4", "--set", "d_width=4", "--set", "latent_dim=8", "--set", "condition_dim=8",
                 "--set", "text_dim=8", "--batch-size", "16"]
SHAPES = ("circle", "square")
TONES = {"dark": 90, "light": 250}


def draw_item(shape: str, tone: str, i: int, side: int = 32):
    from PIL import Image, ImageDraw

    img = Image.new("L", (side, side), 0)
    box = (4 + i % 3, 4, side - 5, side - 5 - i % 2)
    (ImageDraw.Draw(img).ellipse if shape == "circle" else ImageDraw.Draw(img).rectangle)(box, fill=TONES[tone])
    return img


def make_captioned_folder(root: Path, per_kind: int = 6, layout: str = "beside") -> Path:
    """Images of dark and light circles and squares, a class folder per shape, each with a
    .txt of two captions: beside it, or (``cub``) in a parallel text/ tree."""
    for shape in SHAPES:
        for tone in TONES:
            for i in range(per_kind):
                name = f"{tone}-{i:02d}"
                image_dir = root / ("images" if layout == "cub" else "") / shape
                text_dir = root / ("text" if layout == "cub" else "") / shape
                image_dir.mkdir(parents=True, exist_ok=True)
                text_dir.mkdir(parents=True, exist_ok=True)
                draw_item(shape, tone, i).save(image_dir / f"{name}.png")
                (text_dir / f"{name}.txt").write_text(f"a {tone} {shape}\nthis {shape} is {tone}\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def captioned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """240 captioned images (24 of them held out by prep), made once for the module."""
    return make_captioned_folder(tmp_path_factory.mktemp("captioned") / "shapes", per_kind=60)


# -- captioned folders -----------------------------------------------------------------------

def test_a_folder_of_images_with_captions_beside_them_or_in_a_parallel_tree(tmp_path: Path) -> None:
    from rich.console import Console

    for layout in ("beside", "cub"):
        root = make_captioned_folder(tmp_path / layout, per_kind=2, layout=layout)
        raw = captions.read_folder(root, (32, 32), None, Console(quiet=True))
        assert raw.class_names == ["circle", "square"] and len(raw.images) == 8
        assert raw.captions is not None and all(len(c) == 2 for c in raw.captions)
        shape = raw.class_names[int(raw.labels[0])]
        assert all(shape in c for c in raw.captions[0])
        assert raw.images.shape == (8, 1, 32, 32)  # gray images stay gray


def test_images_without_usable_captions_are_skipped_and_counted(tmp_path: Path) -> None:
    from rich.console import Console

    root = make_captioned_folder(tmp_path / "mixed", per_kind=3)
    (root / "circle" / "dark-00.txt").unlink()  # an image without captions
    (root / "circle" / "dark-01.txt").write_text("\n  \n...\n", encoding="utf-8")  # lines without words
    (root / "square" / "dark-00.txt").write_bytes(b"a dark \xff\xfe square\n")  # not UTF-8
    (root / "square" / "light-00.txt").write_bytes("\ufeffa light square, with a BOM\n\nthis square is light".encode())
    raw = captions.read_folder(root, (32, 32), None, Console(quiet=True))
    assert len(raw.images) == 12 - 3
    notes = " ".join(raw.notes)
    assert "1 image(s) with no captions" in notes and "1 image(s) with captions without words" in notes
    assert "1 image(s) with not UTF-8" in notes and "byte 7" in notes
    assert ["a light square, with a BOM", "this square is light"] in raw.captions  # empty lines dropped


@pytest.mark.parametrize(("make", "message"), [
    (lambda root: None, "does not exist"),
    (lambda root: root.write_text("x"), "is not a folder"),
    (lambda root: (root.mkdir(), (root / "a.txt").write_text("a dark circle")), "holds no images"),
    (lambda root: (root.mkdir(), draw_item("circle", "dark", 0).save(root / "a.png")), "no .txt captions"),
    (lambda root: (root.mkdir(), draw_item("circle", "dark", 0).save(root / "a.png"),
                   (root / "b.txt").write_text("a dark circle")), "no image in"),
])
def test_bad_caption_layouts_are_one_clear_error(tmp_path: Path, make, message: str) -> None:
    from rich.console import Console

    root = tmp_path / "data"
    make(root)
    with pytest.raises(UsageError, match=message):
        captions.read_folder(root, (32, 32), None, Console(quiet=True))


def test_prep_writes_tokens_embeddings_the_encoder_and_a_caption_sheet(captioned: Path) -> None:
    result = run_cli("prep", f"captions:{captioned}")
    assert result.exit_code == 0, result.output
    assert "text encoder: 7 words" in " ".join(result.output.split())
    from zoo.pipelines.prep import prepare

    data = prepare(f"captions:{captioned}")
    held = prepare(f"captions:{captioned}", split="heldout")
    assert len(data) == 216 and len(held) == 24
    meta = data.meta["text"]
    assert set(meta["vocabulary"]) == {"a", "this", "is", "dark", "light", "circle", "square"}
    assert data.tokens is not None and data.tokens.shape == (216, 2, 4)
    embeddings = data.conditions["text"]
    assert embeddings.shape == (216, 2, text.EncoderConfig().dim) and embeddings.dtype == torch.float16
    assert held.conditions["text"].shape[:2] == (24, 2)
    assert data.spec.text_dim == text.EncoderConfig().dim and data.spec.has(__import__("zoo").Condition.TEXT)
    encoder, source = data.text_encoder()
    assert str(data.path) in source
    first = data.caption(0)
    assert torch.allclose(encoder.encode([first])[0], embeddings[0, 0].float(), atol=2e-3)
    assert (data.path / "captions.png").is_file()
    assert meta["encoder"]["heldout_top1_of_100"] is None  # 24 held out: too few to measure in groups of 100


# -- the built-in captions:fashion -------------------------------------------------------------

def test_measured_attributes_follow_what_the_picture_shows() -> None:
    import numpy as np

    items = [draw_item("square", "dark", 0), draw_item("square", "light", 0), draw_item("circle", "light", 0)]
    small = np.zeros((32, 32), np.uint8)
    small[12:18, 12:18] = 250
    striped = np.zeros((32, 32), np.uint8)
    striped[4:28, 4:28] = 250
    striped[4:28:2, 4:28] = 120
    images = torch.stack([torch.from_numpy(np.array(im)) for im in items] + [torch.from_numpy(small),
                                                                             torch.from_numpy(striped)])[:, None]
    values = captions.measure(images)
    assert values["tone"][0] < values["tone"][1]  # dark below light
    assert values["size"][3] < values["size"][2] < values["size"][1]  # small dot < circle < square
    assert values["pattern"][4] > 5 * values["pattern"][1]  # stripes against a plain square


def test_sentences_name_the_class_and_never_a_withheld_combination() -> None:
    import random

    rng = random.Random(0)
    for _ in range(50):
        said = captions.sentences("sandal", ["dark", "large"], 5, rng)
        assert len(said) == 5 and all("sandal" in s for s in said)
        assert not any("dark" in text.words(s) for s in said)  # (sandal, dark) is withheld
    said = [s for _ in range(20) for s in captions.sentences("ankle-boot", ["dark"], 5, rng)]
    assert any("dark" in s for s in said) and all("boot" in s for s in said)
    assert len(set(said)) > 5, "several different sentences"


def test_captions_fashion_says_what_each_image_shows(fashion) -> None:
    from zoo.data.sources import named

    raw = named.load_named("fashion-mnist", None, None, lambda s: None)
    part = raw.take(torch.arange(600))
    part.heldout = None
    made, cuts = captions.caption_fashion(part)
    assert made.images.shape == (600, 1, 32, 32) and made.captions is not None
    values = captions.measure(part.images)
    for i in range(600):
        name = part.class_names[int(part.labels[i])]
        said = " ".join(made.captions[i])
        assert any(noun in said for noun in captions.NOUNS[name])
        low, high = cuts["tone"][int(part.labels[i])]
        if "dark" in text.words(said):
            assert values["tone"][i] <= low
        if "light" in text.words(said):
            assert values["tone"][i] >= high


# -- the text encoder --------------------------------------------------------------------------

def test_words_and_unknown_words_in_a_prompt() -> None:
    assert text.words("This T-shirt's DARK, isn't it?") == ["this", "t-shirt's", "dark", "isn't", "it"]
    vocabulary = text.Vocabulary.build(["a dark sandal", "a light sneaker", "this sandal is dark"])
    assert vocabulary.words[:4] == ["<pad>", "<unk>", "a", "dark"]
    with pytest.raises(UsageError, match=r"'sandl' \(close: sandal\)"):
        vocabulary.check("a dark sandl")
    with pytest.raises(UsageError, match="has no words"):
        vocabulary.check("  ...  ")
    with pytest.raises(UsageError, match="at most"):
        vocabulary.check(" ".join(["dark"] * (text.MAX_WORDS + 1)))
    assert vocabulary.encode(["a zebra sandal"]).tolist() == [[2, text.UNKNOWN, vocabulary.index["sandal"]]]


def test_an_embedding_does_not_depend_on_the_batch_or_its_padding() -> None:
    torch.manual_seed(0)
    encoder = text.TextEncoder(text.Vocabulary(["a", "dark", "light", "sandal", "that", "is", "very"]))
    alone = encoder.encode(["a dark sandal"])
    together = encoder.encode(["a dark sandal", "a sandal that is very very light"])
    assert torch.allclose(alone[0], together[0], atol=1e-6)
    assert torch.allclose(together.norm(dim=1), torch.ones(2))


def test_the_encoder_is_kept_by_value(tmp_path: Path) -> None:
    torch.manual_seed(0)
    encoder = text.TextEncoder(text.Vocabulary(["a", "dark", "sandal"], "a dark sandal"),
                               text.EncoderConfig(width=8, dim=16))
    again = text.TextEncoder.from_state(encoder.to_state())
    assert torch.equal(encoder.encode(["a dark sandal"]), again.encode(["a dark sandal"]))
    assert again.fingerprint() == encoder.fingerprint() and again.vocabulary.example == "a dark sandal"
    text.save_encoder(encoder, tmp_path / text.FILENAME, {"steps": 3})
    loaded, record = text.load_encoder(tmp_path / text.FILENAME)
    assert record == {"steps": 3} and loaded.fingerprint() == encoder.fingerprint()
    (tmp_path / "bad.safetensors").write_bytes(b"not a file zoo wrote")
    with pytest.raises(Exception, match="text encoder .* is unreadable"):
        text.load_encoder(tmp_path / "bad.safetensors")


def test_the_encoder_learns_which_caption_goes_with_which_image() -> None:
    torch.manual_seed(0)
    items = [(s, t) for s in SHAPES for t in TONES]
    images, captions_of = [], []
    import numpy as np

    for i in range(400):
        shape, tone = items[i % 4]
        images.append(torch.from_numpy(np.array(draw_item(shape, tone, i))))
        captions_of.append([f"a {tone} {shape}", f"this {shape} is {tone}"])
    images_t = torch.stack(images)[:, None]
    vocabulary = text.Vocabulary.build(c for own in captions_of for c in own)
    from zoo.pipelines.captioned import token_table

    tokens = token_table(captions_of, vocabulary, 2, 4)
    encoder, record = text.train_encoder(images_t[:300], tokens[:300], vocabulary,
                                         config=text.EncoderConfig(width=16, dim=16),
                                         schedule=text.MatchingSchedule(epochs=15, batch_size=60),
                                         heldout=(images_t[300:], tokens[300:]))
    assert record["heldout_top1_of_100"] > 0.9, record  # chance: a quarter of the captions match
    same = encoder.encode(["a dark circle", "this circle is dark", "a light square"])
    assert same[0] @ same[1] > same[0] @ same[2]


def test_matching_loss_counts_identical_captions_as_right() -> None:
    together = torch.eye(3)[[0, 0, 2]]  # the first two captions' embeddings coincide
    apart = torch.eye(3)
    twins, distinct = torch.tensor([[2, 3], [2, 3], [2, 4]]), torch.tensor([[2, 3], [2, 5], [2, 4]])
    scale = torch.tensor(20.0)

    def loss(embeddings: torch.Tensor, tokens: torch.Tensor) -> float:
        return float(text.matching_loss(embeddings, embeddings, tokens, scale))

    assert loss(together, twins) < loss(apart, twins)  # twin captions may share their images' place
    assert loss(apart, distinct) < loss(together, distinct)  # different captions are told apart


# -- conditioning augmentation and the mismatched text -------------------------------------------

def test_kl_divergence_is_the_closed_form() -> None:
    mean, log_var = torch.randn(5, 7), torch.randn(5, 7)
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, (0.5 * log_var).exp()), torch.distributions.Normal(0.0, 1.0)).sum(1).mean()
    assert torch.allclose(kl_divergence(mean, log_var), expected, atol=1e-5)
    assert float(kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4))) == 0.0


def test_conditioning_augmentation_draws_around_the_sentence() -> None:
    torch.manual_seed(0)
    ca = ConditioningAugmentation(6, 4)
    embedding = torch.randn(2, 6, requires_grad=True)
    c, mean, log_var = ca(embedding, torch.zeros(2, 4))
    assert torch.equal(c, mean)  # zero noise: the mean
    c, mean, log_var = ca(embedding, torch.ones(2, 4))
    assert torch.allclose(c, mean + (0.5 * log_var).exp())
    (c.sum() + kl_divergence(mean, log_var)).backward()
    assert embedding.grad is not None and ca.fc.weight.grad is not None


def test_mismatched_text_never_says_the_same_thing() -> None:
    groups = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    embedding = groups[torch.arange(32) % 4] + 0.01 * torch.randn(32, 8)  # four contents, eight wordings each
    for seed in range(5):
        wrong = mismatched(embedding, 0.7, torch.Generator().manual_seed(seed))
        assert (torch.arange(32) % 4 != wrong % 4).all()
    alike = torch.ones(4, 8) + 0.001 * torch.randn(4, 8)  # nothing unlike: the least similar other
    wrong = mismatched(alike, 0.7)
    assert (wrong != torch.arange(4)).all()


def test_mismatched_text_reads_nothing_back_from_the_device() -> None:
    """On the meta device, whose tensors hold no values, asking whether any image lacks an
    unlike sentence would fail: the choice must not wait for the device each step."""
    assert mismatched(torch.randn(8, 5, device="meta"), 0.7).shape == (8,)


def test_the_projection_term_is_the_features_times_the_projected_sentence() -> None:
    torch.manual_seed(0)
    d = MatchingDiscriminator(1, 16, 4, 6, 5, projection=True).eval()
    images, embedding = torch.randn(3, 1, 16, 16), torch.randn(3, 6)
    with torch.no_grad():
        logit = d(images, embedding)
        features = d.image(images).sum(dim=(2, 3))
        expected = (d.project(embedding) * features).sum(dim=1)
        d.project.weight.zero_()
        assert torch.allclose(logit - d(images, embedding), expected, atol=1e-5)
        assert not torch.allclose(expected, torch.zeros(3))
    plain = MatchingDiscriminator(1, 16, 4, 6, 5, projection=False)
    assert plain.project is None and not any("project" in name for name, _ in plain.named_parameters())


# -- stackgan from the command line ---------------------------------------------------------------

@pytest.fixture
def stage1(trained, captioned: Path) -> Path:
    return trained("train", "stackgan", "--data", f"captions:{captioned}", "--steps", "6", *TINY_STACKGAN,
                   dest="stage1")


def test_stage_one_trains_and_its_checkpoint_holds_the_text_encoder(stage1: Path) -> None:
    state = ckpt_io.load(stage1 / ckpt_io.FILENAME).state
    assert set(state["text_encoder"]["vocabulary"]) >= {"dark", "light", "circle", "square"}
    assert not any(k.startswith("text") for k in state["model"])  # not one of the model's own networks
    assert "d1.project.weight" in state["model"]  # the projection discriminator, by default
    assert (stage1 / "progress").is_dir()
    info = json.loads((stage1 / "run.json").read_text())
    assert info["status"] == "finished"


def test_a_run_from_before_the_projection_term_samples_and_resumes_without_it(stage1: Path, tmp_path: Path) -> None:
    import shutil

    old = tmp_path / "old"
    shutil.copytree(stage1, old)
    ckpt = ckpt_io.load(old / ckpt_io.FILENAME)  # as stackgan wrote it before d_projection: no term, no key
    del ckpt.state["model"]["d1.project.weight"]
    adam = ckpt.state["optimizers"]["discriminator"]
    last = adam["param_groups"][0]["params"].pop()  # the term is D's last parameter
    adam["state"].pop(last, None)
    del ckpt.config["d_projection"]
    ckpt_io.save(old / ckpt_io.FILENAME, ckpt)
    sampled = run_cli("sample", str(old), "--text", "a dark circle", "-n", "2", "--out", str(tmp_path / "drawn"))
    assert sampled.exit_code == 0, sampled.output
    resumed = run_cli("train", "stackgan", "--resume", str(old), "--steps", "8", "--no-wandb")
    assert resumed.exit_code == 0, resumed.output
    again = ckpt_io.load(old / ckpt_io.FILENAME)
    assert "d1.project.weight" not in again.state["model"]
    assert again.config["d_projection"] is False and again.train["step"] == 8


def test_sample_draws_a_row_for_each_prompt(stage1: Path) -> None:
    result = run_cli("sample", str(stage1), "--text", "a dark circle", "--text", "a light square", "-n", "5",
                     "--out", "out")
    assert result.exit_code == 0, result.output
    out = Path("out")
    assert len(list(out.glob("text0-*.png"))) == 5 and len(list(out.glob("text1-*.png"))) == 5
    assert (out / "grid.png").is_file()
    assert (out / "prompts.txt").read_text().splitlines() == ["text0: a dark circle", "text1: a light square"]
    one = run_cli("sample", str(stage1), "--text", "a dark circle", "-n", "3", "--out", "one")
    assert one.exit_code == 0 and len(list(Path("one").glob("0*.png"))) == 3
    from PIL import Image

    assert Image.open("one/0000.png").tobytes() == Image.open("out/text0-0000.png").tobytes()  # same seed, same z


def test_the_default_folder_carries_the_text(stage1: Path) -> None:
    for prompts in (["a dark circle"], ["a light square"], ["a dark circle", "a light square"]):
        result = run_cli("sample", str(stage1), *[a for p in prompts for a in ("--text", p)], "-n", "1")
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in Path("samples").iterdir()) == [
        "run-a_dark_circle--a_light_square-seed0", "run-a_dark_circle-seed0", "run-a_light_square-seed0"]


@pytest.mark.parametrize(("args", "message"), [
    (["--text", "a drak circle"], "'drak' (close: dark)"),
    (["--text", "a purple circle"], "never saw in its captions: 'purple'"),
    (["--text", "!!!"], "has no words"),
    (["--text", "a dark circle", "--text", ""], "has no words"),
    ([], "draws from a description"),
])
def test_each_bad_text_is_one_clear_error(stage1: Path, args: list[str], message: str) -> None:
    result = run_cli("sample", str(stage1), *args, "--out", "bad")
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output and not Path("bad").exists()


def test_text_is_refused_by_models_that_do_not_read_it(trained, captioned: Path) -> None:
    run = trained("train", "dcgan", "--data", f"captions:{captioned}", "--steps", "2", "--set", "g_width=4",
                  "--set", "d_width=4", "--set", "latent_dim=8", "--batch-size", "16", dest="dcgan")
    result = run_cli("sample", str(run), "--text", "a dark circle")
    assert result.exit_code != 0 and "text-conditional" in result.output and "stackgan" in result.output
    result = run_cli("interpolate", str(run), "--from-text", "a", "--to-text", "b", "--from-seed", "1",
                     "--to-seed", "2")
    assert result.exit_code != 0 and "text-conditional" in result.output


def test_stackgan_needs_captioned_data(trained, mnist) -> None:
    result = run_cli("train", "stackgan", "--data", "mnist", "--steps", "1", "--no-wandb")
    assert result.exit_code != 0 and "needs captioned data" in result.output and "captions:fashion" in result.output


def test_interpolate_walks_from_one_text_to_another(stage1: Path) -> None:
    result = run_cli("interpolate", str(stage1), "--from-text", "a dark circle", "--to-text", "a light square",
                     "--steps", "4", "--out", "walk")
    assert result.exit_code == 0, result.output
    latents = load_file("walk/latents.safetensors")
    assert latents["text"].shape[:2] == (4, 4) and latents["z"].shape[:2] == (4, 4)
    assert torch.equal(latents["z"][:, 0], latents["z"][:, -1])  # the same z along a row: the text alone walks
    assert (Path("walk") / "strip.png").is_file() and (Path("walk") / "interpolation.gif").is_file()
    half = run_cli("interpolate", str(stage1), "--from-text", "a dark circle", "--out", "half")
    assert half.exit_code != 0 and "--from-text and --to-text" in half.output
    bad = run_cli("interpolate", str(stage1), "--from-text", "a dark circle", "--to-text", "a dark hexagon",
                  "--out", "bad")
    assert bad.exit_code != 0 and "'hexagon'" in bad.output and not Path("bad").exists()


def test_stage_two_refines_a_trained_stage_one(stage1: Path, captioned: Path) -> None:
    refused = run_cli("train", "stackgan", "--data", f"captions:{captioned}", "--steps", "2", *TINY_STACKGAN,
                      "--set", "stage=2", "--no-wandb", "--out", "refused")
    assert refused.exit_code != 0 and "--init-from" in refused.output and not Path("refused").exists()
    result = run_cli("train", "stackgan", "--data", f"captions:{captioned}", "--steps", "4", *TINY_STACKGAN,
                     "--set", "stage=2", "--init-from", str(stage1), "--no-wandb", "--out", "stage2")
    assert result.exit_code == 0, result.output
    one = ckpt_io.load(stage1 / ckpt_io.FILENAME).state["model"]
    two = ckpt_io.load(Path("stage2") / ckpt_io.FILENAME).state["model"]
    frozen = [k for k in one if k.startswith(("g1.", "ca1."))]
    assert frozen and all(torch.equal(one[k], two[k]) for k in frozen), "stage I stays as it was trained"
    assert any(k.startswith("g2.") for k in two) and not any(k.startswith("d1.") for k in two)
    sampled = run_cli("sample", "stage2", "--text", "a dark circle", "-n", "2", "--out", "s2")
    assert sampled.exit_code == 0, sampled.output
    from zoo.pipelines.report import train_command as _command

    info = json.loads(Path("stage2/run.json").read_text())
    again = _command(info, ckpt_io.load(Path("stage2") / ckpt_io.FILENAME).train)
    assert f"--init-from {stage1}" in again and "stage=2" in again  # the report's command makes the run again


def test_a_run_keeps_its_own_encoder_when_the_data_was_prepared_again(stage1: Path, captioned: Path) -> None:
    path = stage1 / ckpt_io.FILENAME
    checkpoint = ckpt_io.load(path)
    weights = checkpoint.state["text_encoder"]["weights"]
    weights["out.bias"] = weights["out.bias"] + 1.0  # as if the data had been prepared again since
    ckpt_io.save(path, checkpoint)
    theirs = text.TextEncoder.from_state(checkpoint.state["text_encoder"]).fingerprint()
    for args in (["--resume", str(stage1), "--steps", "8"],
                 ["--data", f"captions:{captioned}", "--steps", "2", *TINY_STACKGAN, "--set", "stage=2",
                  "--init-from", str(stage1), "--out", "stage2"]):
        result = run_cli("train", "stackgan", *args, "--no-wandb")
        assert result.exit_code == 0, result.output
        assert "own encoder (not the encoder they were prepared with)" in " ".join(result.output.split())
    for run in (stage1, Path("stage2")):
        kept = ckpt_io.load(run / ckpt_io.FILENAME).state["text_encoder"]
        assert text.TextEncoder.from_state(kept).fingerprint() == theirs


def test_captions_are_embedded_again_by_another_encoder(captioned: Path) -> None:
    from zoo.pipelines.captioned import embedded_by
    from zoo.pipelines.prep import prepare

    data = prepare(f"captions:{captioned}")
    own, _ = data.text_encoder()
    same, again = embedded_by(data, own)
    assert same is data and not again
    torch.manual_seed(1)
    other = text.TextEncoder(text.Vocabulary(["square", "a", "dark", "circle"]), text.EncoderConfig(width=4, dim=8))
    changed, again = embedded_by(data, other)
    assert again and changed.conditions["text"].shape == (len(data), 2, 8)
    expected = other(other.vocabulary.encode([data.caption(0)]))[0]  # "light", unknown to it, reads as <unk>
    assert torch.allclose(changed.conditions["text"][0, 0].float(), expected, atol=2e-3)


@pytest.fixture
def installed(monkeypatch, tmp_path: Path) -> Path:
    """A sentence-transformers model the user has (the package faked: see fake_sentence_transformers)."""
    import sys

    from . import fake_sentence_transformers as fake

    monkeypatch.setitem(sys.modules, "sentence_transformers", fake)
    fake.LOADED.clear()
    fake.ENCODED.clear()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return fake.make_model(tmp_path / "my-encoder", dim=24)


def test_an_installed_encoder_reads_words_never_padding_or_unknown_ones(installed: Path) -> None:
    import os

    from . import fake_sentence_transformers as fake

    encoder = sentence_encoder.InstalledEncoder.load(installed)
    assert "HF_HUB_OFFLINE" not in os.environ  # set while loading only
    words = [*text.SPECIALS, "dark", "circle"]
    embedded = encoder.embed_tokens(torch.tensor([[[2, 1, 3, 0], [3, 0, 0, 0]]]), words)
    assert embedded.shape == (1, 2, 24) and sorted(fake.ENCODED) == ["circle", "dark circle"]
    assert torch.allclose(embedded[0, 0], encoder.encode(["Dark, CIRCLE!"])[0])  # prompts read as captions are
    (installed / ".git").mkdir()
    (installed / ".git" / "index").write_bytes(b"changes with every git status")
    assert sentence_encoder.InstalledEncoder.load(installed).fingerprint() == encoder.fingerprint()


def test_an_installed_sentence_encoder_reads_the_text_instead(installed: Path, captioned: Path) -> None:
    from . import fake_sentence_transformers as fake

    result = run_cli("train", "stackgan", "--data", f"captions:{captioned}", "--steps", "3", *TINY_STACKGAN,
                     "--text-encoder", str(installed), "--out", "st", "--no-wandb")
    assert result.exit_code == 0, result.output
    assert "embedded by the model in" in " ".join(result.output.split())
    assert fake.LOADED and all(load["local_files_only"] and load["offline"] == "1" for load in fake.LOADED)
    state = ckpt_io.load(Path("st") / ckpt_io.FILENAME).state
    assert state["text_encoder"]["installed"] == "sentence-transformers"  # by reference, not its weights
    assert state["text_encoder"]["folder"] == str(installed.resolve()) and "weights" not in state["text_encoder"]
    assert json.loads((Path("st") / "run.json").read_text())["config"]["text_dim"] == 8
    named = ["--text-encoder", str(installed)]  # the folder a checkpoint records is read only when named
    sampled = run_cli("sample", "st", "--text", "a dark circle", "--text", "a word it never saw", "-n", "2",
                      "--out", "drawn", *named)
    assert sampled.exit_code == 0, sampled.output  # any words read: its tokenizer splits what it does not know
    assert len(list(Path("drawn").glob("text1-*.png"))) == 2
    resumed = run_cli("train", "stackgan", "--resume", "st", "--steps", "4", "--no-wandb", *named)
    assert resumed.exit_code == 0, resumed.output
    other = fake.make_model(installed.with_name("another"), dim=16)
    refused = run_cli("train", "stackgan", "--resume", "st", "--steps", "5", "--text-encoder", str(other), "--no-wandb")
    assert refused.exit_code == 2 and "is not the sentence-transformers model this model trained with" in refused.output
    warm = ["train", "stackgan", "--data", f"captions:{captioned}", "--steps", "2", *TINY_STACKGAN, "--set", "stage=2",
            "--init-from", "st", "--no-wandb"]
    mixed = run_cli(*warm, "--text-encoder", str(other), "--out", "mixed")
    assert mixed.exit_code == 2 and "is not the sentence-transformers model this model trained with" in mixed.output
    assert run_cli(*warm, *named, "--out", "st2").exit_code == 0  # its encoder, kept by the new run for a --resume
    kept = ckpt_io.read_meta(Path("st2") / ckpt_io.FILENAME)["train"]["data"]["text_encoder"]
    assert kept == str(installed.resolve())
    (installed / "config.json").write_text(json.dumps({"dim": 24, "changed": True}))
    changed = run_cli("sample", "st", "--text", "a dark circle", "--out", "changed", *named)
    assert changed.exit_code == 2 and "fingerprint" in changed.output and "its files as they were" in changed.output
    (installed / "config.json").write_text(json.dumps({"dim": 24}))
    moved = installed.rename(installed.with_name("moved"))
    gone = run_cli("sample", "st", "--text", "a dark circle", "--out", "gone", *named)
    assert gone.exit_code == 2 and "is not a folder" in gone.output
    elsewhere = run_cli("sample", "st", "--text", "a dark circle", "--out", "elsewhere", "--text-encoder", str(moved))
    assert elsewhere.exit_code == 0, elsewhere.output  # the same files in another folder: the same encoder
    assert "Traceback" not in changed.output + gone.output


def test_a_folder_a_checkpoint_names_is_read_only_when_the_user_names_it(installed: Path, captioned: Path,
                                                                        tmp_path: Path, monkeypatch) -> None:
    result = run_cli("train", "stackgan", "--data", f"captions:{captioned}", "--steps", "1", *TINY_STACKGAN,
                     "--text-encoder", str(installed), "--out", "st", "--no-wandb")
    assert result.exit_code == 0, result.output
    theirs = tmp_path / "theirs"  # a folder of files, as a stranger's checkpoint may name (or / itself)
    (theirs / "deep").mkdir(parents=True)
    (theirs / "deep" / "weights.bin").write_bytes(bytes(1000))
    for recorded in ("/", str(theirs)):
        checkpoint = ckpt_io.load(Path("st") / ckpt_io.FILENAME)
        checkpoint.state["text_encoder"]["folder"] = recorded
        checkpoint.train["data"]["text_encoder"] = recorded
        stranger = tmp_path / "stranger" / ckpt_io.FILENAME
        stranger.parent.mkdir(exist_ok=True)
        ckpt_io.save(stranger, checkpoint)

        def read(folder: Path) -> str:
            raise AssertionError(f"zoo read {folder}, which only the checkpoint named")

        with monkeypatch.context() as patched:
            patched.setattr(sentence_encoder, "folder_fingerprint", read)
            for args in (["sample", str(stranger), "--text", "a dark circle", "--out", "drawn"],
                         ["eval", str(stranger), "--n", "8", "--features", "random"],
                         ["interpolate", str(stranger), "--from-text", "a dark circle", "--to-text", "a light square",
                          "--out", "walk"],
                         ["train", "stackgan", "--resume", str(stranger), "--steps", "2", "--no-wandb"],
                         ["train", "stackgan", "--data", f"captions:{captioned}", "--steps", "1", *TINY_STACKGAN,
                          "--init-from", str(stranger), "--out", "warm", "--no-wandb"]):
                refused = run_cli(*args)
                lines = refused.output.strip().splitlines()
                assert refused.exit_code == 2 and len(lines) == 1, refused.output
                assert "give --text-encoder FOLDER" in lines[0], refused.output
            assert not any(Path(name).exists() for name in ("drawn", "walk", "warm"))
            assert not (stranger.parent / "eval.json").exists()
    drawn = run_cli("sample", str(stranger), "--text", "a dark circle", "--out", "drawn",
                    "--text-encoder", str(installed))
    assert drawn.exit_code == 0, drawn.output  # named by the user, and its fingerprint the checkpoint's


def test_an_installed_encoders_embeddings_are_cached_by_what_it_embedded(installed: Path, captioned: Path) -> None:
    import shutil

    from zoo.pipelines.captioned import EMBEDDINGS, embedded_by
    from zoo.pipelines.prep import prepare
    from zoo.records.paths import cache_dir

    from . import fake_sentence_transformers as fake

    shutil.rmtree(cache_dir() / EMBEDDINGS, ignore_errors=True)  # another test's run may have cached these
    data = prepare(f"captions:{captioned}")
    encoder = sentence_encoder.InstalledEncoder.load(installed)
    first, again = embedded_by(data, encoder)
    assert again and fake.ENCODED and first.conditions["text"].shape == (len(data), 2, 24)
    fake.ENCODED.clear()
    second, _ = embedded_by(data, encoder)
    assert not fake.ENCODED and torch.equal(second.conditions["text"], first.conditions["text"])  # read, not embedded
    (cached,) = (cache_dir() / EMBEDDINGS).glob("*.safetensors")
    raw = bytearray(cached.read_bytes())
    raw[-64:] = bytes(64)
    cached.write_bytes(bytes(raw))
    third, _ = embedded_by(data, encoder)  # damaged: embedded again, and written whole again
    assert fake.ENCODED and torch.equal(third.conditions["text"], first.conditions["text"])
    fake.ENCODED.clear()
    copy = fake.make_model(installed.with_name("copy"), dim=24)  # the same files elsewhere: the same encoder
    embedded_by(data, sentence_encoder.InstalledEncoder.load(copy))
    assert not fake.ENCODED
    other = fake.make_model(installed.with_name("other"), dim=16)
    embedded_by(data, sentence_encoder.InstalledEncoder.load(other))  # another encoder: its own embeddings
    assert fake.ENCODED and len(list((cache_dir() / EMBEDDINGS).glob("*.safetensors"))) == 2


def test_an_installed_encoder_is_refused_clearly(installed: Path, captioned: Path, monkeypatch, mnist) -> None:
    import sys

    base = ["train", "stackgan", "--data", f"captions:{captioned}", "--steps", "1", *TINY_STACKGAN, "--no-wandb"]
    missing = run_cli(*base, "--text-encoder", str(installed.with_name("nowhere")), "--out", "a")
    assert missing.exit_code != 0 and "is not a folder" in missing.output
    other = run_cli("train", "dcgan", "--data", "mnist", "--text-encoder", str(installed), "--out", "b")
    assert other.exit_code != 0 and "dcgan reads none" in other.output
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # the package not installed
    absent = run_cli(*base, "--text-encoder", str(installed), "--out", "c")
    assert absent.exit_code != 0 and "pip install 'zoo-gan[text]'" in absent.output
    assert not any(Path(name).exists() for name in "abc")


def test_each_pass_picks_the_same_captions_in_every_process() -> None:
    from zoo.data.memory import TensorBatches

    images = torch.zeros(16, 1, 8, 8, dtype=torch.uint8)
    captions_ = torch.arange(16 * 3 * 2, dtype=torch.float32).view(16, 3, 2)
    whole = TensorBatches(images, None, 8, seed=3, conditions={"text": captions_})
    halves = [TensorBatches(images, None, 8, seed=3, conditions={"text": captions_}, share=(r, 2)) for r in (0, 1)]
    for _ in range(5):  # across passes
        torch.manual_seed(_)  # the global stream plays no part
        batch = whole.next().conditions["text"]
        parts = torch.cat([h.next().conditions["text"] for h in halves])
        assert torch.equal(batch, parts) and batch.dtype == torch.float32
    every = captions_.view(-1, 2)
    assert all((every == row).all(1).any() for row in batch), "each row is one of the images' captions"
    assert len({int(row[0]) % 6 for row in torch.cat([whole.next().conditions["text"] for _ in range(6)])}) > 1, \
        "not always the same caption of each image"


def test_each_image_comes_with_one_of_its_own_captions() -> None:
    from zoo.data.memory import TensorBatches

    images = torch.arange(16, dtype=torch.uint8).view(16, 1, 1, 1).expand(16, 1, 4, 4).contiguous()
    own = torch.arange(16).view(16, 1, 1) * 10 + torch.arange(3).view(1, 3, 1)  # image i's caption k: 10 i + k
    batches = TensorBatches(images, None, 8, seed=0, conditions={"text": own.expand(16, 3, 2).to(torch.float16)})
    for _ in range(6):
        batch = batches.next()
        image = ((batch.images[:, 0, 0, 0] + 1) * 127.5).round().long()
        assert torch.equal(batch.conditions["text"][:, 0].long() // 10, image)


def test_eval_reads_the_class_each_caption_names(stage1: Path, monkeypatch: pytest.MonkeyPatch,
                                                 small_karras: None) -> None:
    from zoo.measure import classifier

    monkeypatch.setattr(classifier, "IMAGES_SEEN", 1)  # two passes over the shapes: what it reads is not tested here
    monkeypatch.setattr(classifier, "WIDTH", 8)
    result = run_cli("eval", str(stage1), "--n", "200", "--split", "train")
    assert result.exit_code == 0, result.output
    figures = json.loads((stage1 / "eval.json").read_text())
    found = figures.get("metrics", figures)
    assert set(found["class_accuracy_per_class"]) == {"circle", "square"}
    assert 0 <= found["class_accuracy"] <= 1


def test_the_papers_sizes_64_then_256_build_and_draw() -> None:
    import zoo
    from zoo import config as config_io
    from zoo.plugins.stackgan import StackGAN

    spec = zoo.DataSpec("birds", 3, 256, 256, conditions=("text",), text_dim=16)
    config = config_io.from_dict(StackGAN.Config, {**StackGAN.tiny_config, "stage": 2, "factor": 4}, source="test")
    model = StackGAN(config, spec)
    assert model.low_side == 64
    with torch.no_grad(), zoo.evaluating(model):
        low, _, _ = model.draw(torch.zeros(2, model.latent_dim), torch.zeros(2, 16))
    assert low.shape == (2, 3, 256, 256)
    with pytest.raises(UsageError, match="power of two"):
        StackGAN(config, zoo.DataSpec("odd", 3, 96, 96, conditions=("text",), text_dim=16))
