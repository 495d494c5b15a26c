"""A trained model outside its run folder: the Python API (zoo.load), zoo export and its model
card, ONNX, and presets.

One runs folder of a small trained run of every built-in (zoo serve's six, shared with its
tests, and the rest trained here once) serves the module. The API is held to the commands:
for each capability, the same seed or input gives the same pixels, read back from the files
the command wrote.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import zoo
from zoo.registry import registry

from .conftest import TINY, run_cli
from .serving import TINY_AE
from .test_progan import TINY_KEYS
from .test_stackgan import TINY_STACKGAN, make_captioned_folder
from .test_superres import photo_folder
from .test_translation import cyclegan_layout

PROMPT = "a dark circle"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def every_run(served_runs: Path, tmp_path_factory: pytest.TempPathFactory, mnist) -> dict[str, Path]:
    """A run of each built-in, and of the third-party plugin: name -> run folder."""
    root = tmp_path_factory.mktemp("every")
    captioned = make_captioned_folder(root / "shapes", per_kind=6)
    unpaired = cyclegan_layout(root / "h2z")
    photos = photo_folder(root / "photos", [(40, 32), (48, 48)])
    more = {
        "wgan-gp": ["wgan-gp", *TINY, "--set", "n_critic=1", "--data", "mnist", "--subset", "0:64"],
        "wgan": ["wgan", *TINY, "--set", "n_critic=1", "--data", "mnist", "--subset", "0:64"],
        "r3gan": ["r3gan", "--set", "width=8", "--set", "max_width=16", "--set", "latent_dim=8", "--batch-size", "8",
                  "--data", "mnist", "--subset", "0:64", "--augment", "ada"],
        "progan": ["progan", *TINY_KEYS, "--data", "mnist", "--subset", "0:64"],
        "ae": ["ae", *TINY_AE, "--data", "mnist", "--subset", "0:64"],
        "cvae": ["cvae", *TINY_AE, "--set", "embed_dim=4", "--data", "mnist", "--subset", "0:64"],
        "stackgan": ["stackgan", *TINY_STACKGAN, "--data", f"captions:{captioned}"],
        "cyclegan": ["cyclegan", "--data", f"unpaired:{unpaired}", "--size", "32", "--set", "g_width=4",
                     "--set", "d_width=4", "--set", "res_blocks=1", "--batch-size", "2"],
        "srgan": ["srgan", "--data", f"folder:{photos}", "--set", "blocks=1", "--set", "width=4", "--set",
                  "d_width=4", "--set", "crop=16", "--set", "scale=2", "--set", "content=pixel", "--batch-size", "4"],
    }
    for name, args in more.items():
        result = run_cli("train", *args, "--steps", "2", "--no-wandb", "--out", str(root / name))
        assert result.exit_code == 0, (name, result.output)
    runs = {name: served_runs / name for name in ("dcgan", "cgan", "vae", "tiny", "pix2pix", "srresnet")}
    runs.update({name: root / name for name in more})
    missing = set(registry().names()) - set(runs)
    assert not missing, f"no run for {missing}: a built-in without an API test"
    return runs


def pixels(image: Image.Image | Path) -> np.ndarray:
    return np.asarray(image if isinstance(image, Image.Image) else Image.open(image))


def same(a: Image.Image | Path, b: Image.Image | Path) -> bool:
    return np.array_equal(pixels(a), pixels(b))


# -- the API draws what the commands draw --------------------------------------------------------

SAMPLED = {"dcgan": [], "wgan": [], "wgan-gp": [], "r3gan": [], "progan": [], "vae": [], "tiny": [],
           "cgan": ["--digit", "7"], "cvae": ["--class", "3"], "stackgan": ["--text", PROMPT]}


@pytest.mark.parametrize("name", sorted(SAMPLED))
def test_sample_gives_the_commands_pixels(every_run: dict[str, Path], name: str, tmp_path: Path) -> None:
    extra = SAMPLED[name]
    result = run_cli("sample", str(every_run[name]), "--n", "4", "--seed", "3", *extra, "--out", str(tmp_path / "s"))
    assert result.exit_code == 0, result.output
    files = sorted(p for p in (tmp_path / "s").glob("*.png") if p.name != "grid.png")
    model = zoo.load(every_run[name])
    kwargs = {"--digit": {"classes": 7}, "--class": {"classes": "3"}, "--text": {"text": PROMPT}}.get(
        extra[0] if extra else "", {})
    images = model.sample(4, seed=3, **kwargs)
    assert len(images) == len(files) == 4
    assert all(same(image, file) for image, file in zip(images, files, strict=True))
    tensors = model.sample(4, seed=3, as_tensor=True, **kwargs)
    assert tensors.shape == (4, *model.image_size) and tensors.min() >= -1 and tensors.max() <= 1


def test_classes_one_each_and_generate(every_run: dict[str, Path], tmp_path: Path) -> None:
    cgan = zoo.load(every_run["cgan"])
    mixed = cgan.sample(4, seed=0, classes=[7, 7, 1, 1], as_tensor=True)
    sevens = cgan.sample(4, seed=0, classes=[7] * 4, as_tensor=True)
    assert torch.equal(sevens, cgan.sample(4, seed=0, classes=7, as_tensor=True))
    assert torch.equal(mixed[:2], sevens[:2]) and not torch.equal(mixed[2:], sevens[2:])
    assert cgan.classes == [str(d) for d in range(10)]
    # generate() draws a latent's image as sample() does for the seed's latent.
    z = cgan.network.sample_latent(4, torch.Generator().manual_seed(0))
    assert torch.equal(cgan.generate(z, classes=7, as_tensor=True), sevens)
    stack = zoo.load(every_run["stackgan"])
    assert torch.allclose(stack.generate(stack.network.sample_latent(4, torch.Generator().manual_seed(3)), text=PROMPT,
                                         as_tensor=True), stack.sample(4, seed=3, text=PROMPT, as_tensor=True),
                          atol=1e-6)  # the sampler embeds the prompt once for the row: the same up to rounding


def test_interpolate_and_invert_as_the_commands(every_run: dict[str, Path], tmp_path: Path) -> None:
    from safetensors.torch import load_file

    run = every_run["dcgan"]
    result = run_cli("interpolate", str(run), "--from-seed", "2", "--to-seed", "5", "--steps", "6",
                     "--out", str(tmp_path / "walk"))
    assert result.exit_code == 0, result.output
    model = zoo.load(run)
    frames = model.interpolate(2, 5, 6, as_tensor=True)
    written = load_file(str(tmp_path / "walk" / "latents.safetensors"))["z"][0]
    assert torch.equal(frames, model.generate(written, as_tensor=True))
    assert len(model.interpolate(2, 5, 6)) == 6

    target = tmp_path / "target.png"
    model.sample(1, seed=9)[0].save(target)
    result = run_cli("invert", str(run), str(target), "--steps", "4", "--restarts", "2", "--out", str(tmp_path / "inv"))
    assert result.exit_code == 0, result.output
    found = model.invert(target, steps=4, restarts=2)
    assert torch.equal(found.latents, load_file(str(tmp_path / "inv" / "target.latent.safetensors"))["z"])
    assert same(found.images[0], tmp_path / "inv" / "target.reconstruction.png")
    assert json.loads((tmp_path / "inv" / "metrics.json").read_text())["targets"][0]["psnr"] == pytest.approx(
        found.psnr[0], abs=1e-4)


def test_translate_upscale_and_reconstruct_as_the_commands(every_run: dict[str, Path], tmp_path: Path) -> None:
    photo = photo_folder(tmp_path / "in", [(44, 36)]) / "p00.png"
    for name, command, extra, call in (
            ("pix2pix", "translate", [], lambda m: m.translate(photo)),
            ("cyclegan", "translate", ["--direction", "BtoA"], lambda m: m.translate(photo, "BtoA")),
            ("srresnet", "upscale", [], lambda m: m.upscale(photo)),
            ("srgan", "upscale", [], lambda m: m.upscale(Image.open(photo))),
            ("vae", "reconstruct", [], lambda m: m.reconstruct(photo)),
            ("ae", "reconstruct", [], lambda m: m.reconstruct(str(photo))),
            ("cvae", "reconstruct", ["--class", "4"], lambda m: m.reconstruct(photo, classes=4))):
        out = tmp_path / name
        result = run_cli(command, str(every_run[name]), str(photo), *extra, "--out", str(out))
        assert result.exit_code == 0, (name, result.output)
        assert same(call(zoo.load(every_run[name])), out / "p00.png"), name
    # Several images in, a list out; a PIL image, a path and a tensor are read alike.
    pix = zoo.load(every_run["pix2pix"])
    as_tensor = pix.translate(photo, as_tensor=True)
    outputs = pix.translate([photo, Image.open(photo)], as_tensor=True)
    assert torch.equal(outputs[0], as_tensor) and torch.equal(outputs[1], as_tensor)
    vae = zoo.load(every_run["vae"])
    codes = vae.encode([photo, photo])
    assert codes.shape == (2, vae.latent_dim) and torch.allclose(codes[0], vae.encode(photo), atol=1e-6)


@pytest.mark.parametrize(("name", "call", "command"), [
    ("pix2pix", lambda m: m.sample(4), ["sample", "{run}"]),
    ("dcgan", lambda m: m.translate(torch.zeros(1, 28, 28)), ["translate", "{run}", "{image}"]),
    ("dcgan", lambda m: m.reconstruct(torch.zeros(1, 28, 28)), ["reconstruct", "{run}", "{image}"]),
    ("pix2pix", lambda m: m.upscale(torch.zeros(3, 32, 32)), ["upscale", "{run}", "{image}"]),
])
def test_a_method_the_model_cannot_do_says_what_the_command_says(every_run: dict[str, Path], tmp_path: Path,
                                                                name: str, call, command: list[str]) -> None:
    image = photo_folder(tmp_path / "in", [(32, 32)]) / "p00.png"
    run = str(every_run[name])
    said = run_cli(*[c.format(run=run, image=image) for c in command])
    assert said.exit_code == 2
    with pytest.raises(zoo.UsageError) as refused:
        call(zoo.load(run))
    first = " ".join(said.output.split())
    assert " ".join(str(refused.value).split())[:60] in first.replace("error: ", "")


def test_bad_input_to_the_api_is_one_clear_error(every_run: dict[str, Path], tmp_path: Path) -> None:
    cgan = zoo.load(every_run["cgan"])
    for call, message in ((lambda: cgan.sample(4, classes=[7, 7]), "2 classes for 4 images"),
                          (lambda: cgan.sample(4, classes=11), "11"),
                          (lambda: cgan.generate(torch.zeros(2, cgan.latent_dim)), "class-conditional"),
                          (lambda: zoo.load(every_run["vae"]).reconstruct(torch.zeros(5, 9, 9)), "1 or 3 channels"),
                          (lambda: zoo.load(every_run["pix2pix"]).translate(tmp_path / "nope.png"), "nope.png"),
                          (lambda: zoo.load(every_run["pix2pix"]).translate(42), "not int"),
                          (lambda: zoo.load(every_run["pix2pix"]).translate(torch.zeros(3, 0, 5)), "not \\(3, 0, 5\\)"),
                          (lambda: zoo.load(every_run["pix2pix"]).translate(torch.full((3, 8, 8), 9.0)), "\\[-1, 1\\]"),
                          (lambda: zoo.load(every_run["pix2pix"]).latent_dim, "no latent space"),
                          (lambda: cgan.generate(torch.zeros(2, cgan.latent_dim + 1), classes=1), "latent vectors"),
                          (lambda: cgan.generate(torch.zeros(0, cgan.latent_dim), classes=1), "latent vectors")):
        with pytest.raises(zoo.UsageError, match=message):
            call()
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.txt").write_text("hello")
    with pytest.raises(zoo.ZooError, match="a zoo export"):
        zoo.load(tmp_path / "plain")
    assert "cgan" in repr(cgan) and "class-conditional" in repr(cgan)
    # torchvision reads files as uint8 tensors: read alike; a NumPy or torch integer is a class.
    pix, photo = zoo.load(every_run["pix2pix"]), Image.new("RGB", (32, 32), (200, 30, 90))
    as_uint8 = torch.from_numpy(np.asarray(photo).copy()).permute(2, 0, 1)
    assert torch.equal(pix.translate(as_uint8, as_tensor=True), pix.translate(photo, as_tensor=True))
    assert torch.equal(cgan.sample(2, classes=np.int64(7), as_tensor=True), cgan.sample(2, classes=7, as_tensor=True))


# -- zoo export ------------------------------------------------------------------------------------

def exported(run: Path, out: Path, *args: str) -> Path:
    result = run_cli("export", str(run), str(out), *args)
    assert result.exit_code == 0, result.output
    return out


def test_an_export_draws_what_its_run_draws_and_holds_nothing_else(every_run: dict[str, Path],
                                                                   tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from zoo.records import checkpoint as ckpt_io
    from zoo.records import runs

    for name in ("cgan", "dcgan", "pix2pix", "cyclegan", "vae", "stackgan", "progan", "srresnet"):
        run = every_run[name]
        out = exported(run, tmp_path / name)
        assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors",
                                                         "samples.png"]
        weights = ckpt_io.load(out / "model.safetensors").state["model"]
        assert not [k for k in load_file(str(out / "model.safetensors")) if not k.startswith(("model.", "extra.",
                                                                                             "text_encoder."))]
        model, checkpoint = runs.load_model(run / "checkpoint.safetensors")
        left_out = model.training_only()
        assert bool(left_out) == (name not in ("vae", "srresnet")), name
        assert not any(k.split(".")[0] in left_out for k in weights), name
        assert set(weights) == {k for k in model.state_dict() if k.split(".")[0] not in left_out}
        # No optimiser state, no discriminator (stackgan keeps its text encoder, large beside tiny networks).
        share = 0.9 if name == "stackgan" else 0.55
        assert (out / "model.safetensors").stat().st_size < share * (run / "checkpoint.safetensors").stat().st_size
        config = json.loads((out / "config.json").read_text())
        assert config["model_type"] == name and config["weights"]["dtype"] == "float32"
        source, copy = zoo.load(run), zoo.load(out)
        if name == "stackgan":
            assert torch.equal(source.sample(3, seed=1, text=PROMPT, as_tensor=True),
                               copy.sample(3, seed=1, text=PROMPT, as_tensor=True))
        elif "latent" in source.capabilities:
            kwargs = {"classes": 2} if source.classes else {}
            assert torch.equal(source.sample(3, seed=1, as_tensor=True, **kwargs),
                               copy.sample(3, seed=1, as_tensor=True, **kwargs)), name
        elif name == "srresnet":
            image = torch.rand(3, 20, 26) * 2 - 1
            assert torch.equal(source.upscale(image, as_tensor=True), copy.upscale(image, as_tensor=True))
        else:
            image = torch.rand(3, 32, 32) * 2 - 1
            for way in source.network.directions:
                assert torch.equal(source.translate(image, way, as_tensor=True),
                                   copy.translate(image, way, as_tensor=True)), (name, way)
    # CycleGAN's pools of generated images are training state, not part of its export.
    assert not {"pool_a", "pool_b"} & set(ckpt_io.load(tmp_path / "cyclegan" / "model.safetensors").state["extra"])
    # Every command that takes a run takes the export.
    result = run_cli("sample", str(tmp_path / "cgan"), "--digit", "7", "--n", "4", "--seed", "3",
                     "--out", str(tmp_path / "s-export"))
    assert result.exit_code == 0, result.output
    result = run_cli("sample", str(every_run["cgan"]), "--digit", "7", "--n", "4", "--seed", "3",
                     "--out", str(tmp_path / "s-run"))
    assert same(tmp_path / "s-export" / "7-0003.png", tmp_path / "s-run" / "7-0003.png")
    # Half precision halves the weights; the images stay within a few grey levels.
    half = exported(every_run["cgan"], tmp_path / "half", "--dtype", "float16")
    full_bytes = (tmp_path / "cgan" / "model.safetensors").stat().st_size
    assert (half / "model.safetensors").stat().st_size < 0.6 * full_bytes
    a = zoo.load(tmp_path / "cgan").sample(8, seed=0, classes=7, as_tensor=True)
    b = zoo.load(half).sample(8, seed=0, classes=7, as_tensor=True)
    assert 0 < float((a - b).abs().max()) < 0.03  # under four 8-bit grey levels
    # An export is not a run to resume, nor to warm-start from; zoo eval takes it.
    result = run_cli("train", "cgan", "--resume", str(tmp_path / "cgan"), "--steps", "4", "--no-wandb")
    assert result.exit_code == 2 and "is an export" in result.output
    result = run_cli("train", "cgan", "--init-from", str(tmp_path / "cgan"), "--data", "mnist", "--no-wandb")
    assert result.exit_code == 2 and "is an export" in result.output
    result = run_cli("eval", str(tmp_path / "cgan"), "--features", "random", "-n", "16", "--wandb", "off")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "cgan" / "eval.json").read_text())["checkpoint"]["step"] == 2


def test_export_refuses_bad_input_in_one_line_before_writing(every_run: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    run = str(every_run["dcgan"])
    (tmp_path / "empty-run").mkdir()
    (tmp_path / "empty-run" / "run.json").write_text("{}")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep me")
    exported(every_run["dcgan"], tmp_path / "done")
    # Another library's model folder, and an export with a file of the user's in it: never deleted.
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "hub" / "config.json").write_text('{"model_type": "bert"}')
    shutil.copytree(tmp_path / "done", tmp_path / "mixed")
    (tmp_path / "mixed" / "notes.md").write_text("keep me")
    for args, message in (
            ([str(tmp_path / "empty-run"), str(tmp_path / "a")], "holds no checkpoint.safetensors"),
            ([run, str(tmp_path / "b"), "--format", "tflite"], "--format must be one of safetensors, onnx"),
            ([run, str(tmp_path / "c"), "--dtype", "int8"], "--dtype must be one of"),
            ([run, str(tmp_path / "d"), "--format", "onnx", "--dropout", "on"], "has no dropout"),
            ([run, str(tmp_path / "done")], "already exists; pick another folder, or pass --force"),
            ([run, str(tmp_path / "taken"), "--force"], "not a zoo export"),
            ([run, str(tmp_path / "e"), "--license", "x: y"], "--license"),
            ([run, str(tmp_path / "hub"), "--force"], "is not a zoo export"),
            ([run, str(tmp_path / "mixed"), "--force"], "holds files zoo export did not write (notes.md)"),
            ([run, ".", "--force"], "is this folder or holds it")):
        result = run_cli("export", *args)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) <= 2, result.output
    assert not any((tmp_path / n).exists() for n in "abcde")
    assert (tmp_path / "taken" / "mine.txt").read_text() == "keep me"
    assert (tmp_path / "mixed" / "notes.md").is_file() and (tmp_path / "hub" / "model.safetensors").is_file()
    before = (tmp_path / "done" / "model.safetensors").stat().st_mtime_ns
    exported(every_run["dcgan"], tmp_path / "done", "--force", "--license", "mit")
    assert (tmp_path / "done" / "model.safetensors").stat().st_mtime_ns != before
    assert "license: mit" in (tmp_path / "done" / "README.md").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no half export left behind


def test_the_card_says_what_the_model_is_and_how_it_was_made(every_run: dict[str, Path], tmp_path: Path) -> None:
    import yaml

    out = exported(every_run["cgan"], tmp_path / "cgan", "--license", "cc-by-4.0")
    text = (out / "README.md").read_text()
    _, front, body = text.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["license"] == "cc-by-4.0" and meta["library_name"] == "zoo" and "cgan" in meta["tags"]
    assert meta["pipeline_tag"] == "unconditional-image-generation" and meta["datasets"] == ["ylecun/mnist"]
    for part in ("# cgan trained on mnist", "Mirza & Osindero", "## Training data", "Held out",
                 "zoo train cgan --data mnist --subset 0:64 --steps 2", "## Evaluation", "Not evaluated",
                 "zoo.load(", "## Intended use and limits", "![Samples (seed 0)](samples.png)",
                 "left out: discriminator"):
        assert part in body, part
    printed = run_cli("card", str(every_run["cgan"]), "--license", "mit")
    assert printed.exit_code == 0 and printed.output.startswith("---\nlicense: mit\n")
    assert "## Evaluation" in printed.output
    assert run_cli("card", str(out)).output == text  # an export's card is its README


def test_the_cards_figures_are_a_table_of_three_columns() -> None:
    import re

    from zoo.pipelines.export import _evaluation_lines

    lines = _evaluation_lines({"protocol": "fid10k", "fid": 66.99, "l1": 0.1268, "psnr": 15.1}, 55)
    rows = [line for line in lines if line.startswith("| ") and "figure" not in line]
    assert [row.split(" | ")[0] for row in rows] == ["| fid", "| l1", "| psnr"]
    assert all(len(re.split(r"(?<!\\)\|", row)) == 5 for row in rows), rows  # l1's "|output - target|" escaped


# -- ONNX -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["stackgan", "pix2pix", "srresnet", "ae"])
def test_onnx_matches_torch(every_run: dict[str, Path], name: str, tmp_path: Path) -> None:
    """One model of each kind of graph: a text-conditional sampler, a translator, an upscaler
    at any size, an autoencoder; the class-conditional sampler (a cgan, `z` and `labels`) is
    exported and compared the same way by the tour notebook's test below."""
    import onnxruntime

    from zoo.pipelines.onnx_export import TOLERANCE

    out = exported(every_run[name], tmp_path / name, "--format", "onnx")
    written = json.loads((out / "config.json").read_text())["onnx"]
    assert written and all(0 <= w["max_abs_diff"] <= TOLERANCE for w in written)
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    model = zoo.load(every_run[name])
    if name == "stackgan":
        z = model.network.sample_latent(2, torch.Generator().manual_seed(4))
        text = model.network.encode_text([PROMPT, PROMPT]).cpu()
        got = session.run(None, {"z": z.numpy(), "text": text.numpy()})[0]
        want = model.generate(z, text=PROMPT, as_tensor=True)
    else:
        side = (19, 23) if name == "srresnet" else (28, 28) if name == "ae" else (32, 32)
        channels = model.image_size[0]
        images = torch.rand(2, channels, *side, generator=torch.Generator().manual_seed(1)) * 2 - 1
        got = session.run(None, {"images": images.numpy()})[0]
        with torch.no_grad():
            want = (model.network.generate(model.network.encode(images)) if name == "ae"
                    else model.network.translate(images))
    assert got.shape == tuple(want.shape)
    assert float(np.abs(got - want.numpy()).max()) <= TOLERANCE


def test_pix2pix_onnx_with_the_papers_dropout_draws_anew(every_run: dict[str, Path], tmp_path: Path) -> None:
    import onnxruntime

    out = exported(every_run["pix2pix"], tmp_path / "p2p", "--format", "onnx", "--dropout", "on")
    assert json.loads((out / "config.json").read_text())["onnx"][0]["dropout"] == "on"
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    images = (torch.rand(2, 3, 32, 32) * 2 - 1).numpy()
    assert not np.array_equal(session.run(None, {"images": images})[0], session.run(None, {"images": images})[0])


# -- presets ---------------------------------------------------------------------------------------

def test_presets_figures_are_the_committed_results(tmp_path: Path) -> None:
    from zoo import presets

    found = {(cls_name, p.name): p for cls_name in registry().names()
             for p in presets.presets(registry().get(cls_name)).values()}
    assert {("dcgan", "lab"), ("cgan", "lab"), ("pix2pix", "edges2fashion-3min")} <= set(found)
    assert all(p.measured for key, p in found.items() if key != ("r3gan", "paper256"))  # a GPU recipe: unmeasured
    for preset in (p for p in found.values() if p.measured):
        result = json.loads((REPO / preset.measured["result"]).read_text())
        assert preset.measured["commit"] == result["commit"]
        for name, (value, where) in preset.measured["figures"].items():
            at = result
            for part in where.split("."):
                at = at[part]
            assert value == pytest.approx(at, rel=1e-3, abs=1e-4), (preset.model, preset.name, name)


def test_a_preset_trains_its_recipe_under_what_the_user_gives(mnist, tmp_path: Path) -> None:
    result = run_cli("train", "cgan", "--preset", "lab", "--dry-run", "--set", "g_width=8")
    assert result.exit_code == 0, result.output
    planned = json.loads(result.output)
    assert planned["data"] == "mnist" and planned["config"]["g_width"] == 8 and planned["length"] == {"epochs": 20}
    assert planned["preset"]["values"]["epochs"] == "preset lab"
    result = run_cli("train", "cgan", "--preset", "lab", *TINY, "--subset", "0:64", "--steps", "2", "--no-wandb",
                     "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["preset"]["name"] == "lab" and info["total_steps"] == 2  # --steps replaced the preset's 20 epochs
    assert info["preset"]["values"] == {"data": "preset lab", "steps": "command line", "subset": "command line",
                                        "batch_size": "command line", "g_width": "--set", "d_width": "--set",
                                        "latent_dim": "--set"}
    said = run_cli("train", "cgan", "--preset", "nope")
    assert said.exit_code == 2 and "its presets: lab" in said.output and len(said.output.splitlines()) <= 2
    said = run_cli("info", "cgan")
    assert "zoo train cgan --preset lab" in " ".join(said.output.split())
    said = run_cli("train", "cgan", "--preset", "lab", "--resume", str(tmp_path / "run"))
    assert said.exit_code == 2 and "--preset starts a new run" in said.output


def test_a_presets_length_is_the_runs_length(mnist, tmp_path: Path, monkeypatch) -> None:
    from zoo import presets

    (tmp_path / "cgan.toml").write_text('["quick"]\ndata = "mnist"\nsubset = "0:64"\nsteps = 3\n'
                                        '["quick".config]\ng_width = 4\nd_width = 4\nembed_dim = 4\n')
    monkeypatch.setattr(presets, "file_of", lambda cls: tmp_path / "cgan.toml")
    result = run_cli("train", "cgan", "--preset", "quick", "--no-wandb", "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["total_steps"] == 3 and info["step"] == 3
    # 64 images: the small-data values fill the keys the preset left alone, and only those
    assert info["config"]["g_width"] == 4 and info["config"]["augment"] == "translation,cutout"


@pytest.mark.parametrize(("text", "message"), [
    ('["p"]\nsteps = "1560"', "sets steps to '1560'; it takes int"),
    ('["p"]\nepochs = 2\nlr = 0.1', "config keys go in [p.config]"),
    ('["p"]\nconfig = "x"', "it takes a table"),
    ('["p".measured.figures]\nfid = 1.0', "write it as [value"),
    ('["p"\nsteps = 1', "unreadable")])
def test_a_broken_presets_file_is_one_clear_error(text: str, message: str, tmp_path: Path, monkeypatch) -> None:
    from zoo import presets

    (tmp_path / "cgan.toml").write_text(text)
    monkeypatch.setattr(presets, "file_of", lambda cls: tmp_path / "cgan.toml")
    said = run_cli("train", "cgan", "--preset", "p")
    assert said.exit_code != 0 and message in said.output and len(said.output.strip().splitlines()) <= 2


# -- the docs' Python ----------------------------------------------------------------------------------

def test_the_python_pages_examples_run(every_run: dict[str, Path], tmp_path: Path, monkeypatch) -> None:
    """docs/python.md's code blocks, run in order against small runs named as the page names them."""
    import re
    import shutil

    for name, run in (("cgan-mnist", "cgan"), ("pix2pix-facades", "pix2pix"), ("srresnet-photos", "srresnet"),
                      ("vae-mnist", "vae")):
        shutil.copytree(every_run[run], tmp_path / "runs" / name)
    photo_folder(tmp_path / "pictures", [(40, 30), (64, 64)])
    for source, target in (("p00.png", "labels.png"), ("p01.png", "cat.jpg"), ("p00.png", "digit.png")):
        Image.open(tmp_path / "pictures" / source).convert("RGB").save(tmp_path / target)
    text = (REPO / "docs" / "python.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 4
    scope: dict = {}
    monkeypatch.setattr(sys, "argv", ["python"])
    for block in blocks:
        exec(compile(block, "docs/python.md", "exec"), scope)  # noqa: S102 - the page's own examples


def test_the_tour_notebook_runs_top_to_bottom(mnist, tmp_path: Path, monkeypatch) -> None:
    """docs/tour.ipynb in a Jupyter kernel, cell by cell, with its own tiny runs (ZOO_TOUR_TINY)."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(REPO / "docs" / "tour.ipynb", as_version=4)
    monkeypatch.setenv("ZOO_TOUR_TINY", "1")
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
                   ).execute()
    errors = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    assert any(o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
               for cell in notebook.cells for o in cell.get("outputs", []))
