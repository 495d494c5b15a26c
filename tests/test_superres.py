"""Super-resolution: photos at full size, derived pairs with crops and flips, srresnet and
srgan, tiled upscaling, ``zoo upscale`` and ``zoo eval``'s Y-channel measurement."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

import zoo
from zoo.data import superres
from zoo.data.images import to_float
from zoo.data.memory import Photos, TensorBatches
from zoo.pipelines.prep import prepare
from zoo.plugins.srgan import SRResNet, SRResNetConfig, generator_context
from zoo.records import checkpoint as ckpt_io
from zoo.records import runs

from .conftest import run_cli

TINY_SR = ["--set", "blocks=1", "--set", "width=4", "--set", "crop=16", "--set", "scale=2", "--batch-size", "4",
           "--no-wandb"]


def photo(i: int, size: tuple[int, int]) -> Image.Image:
    """A textured 'photo' (width, height): smooth colour ramps and a few shapes."""
    from PIL import ImageDraw

    w, h = size
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    rgb = torch.stack([(x * 255 // max(1, w - 1)), (y * 255 // max(1, h - 1)), ((x + y + 40 * i) % 256)], -1)
    img = Image.fromarray(rgb.to(torch.uint8).numpy())
    draw = ImageDraw.Draw(img)
    for k in range(3):
        box = (5 + 7 * k + i, 4 + 5 * k, 5 + 7 * k + i + w // 4, 4 + 5 * k + h // 4)
        draw.ellipse(box, fill=(250 - 60 * k, 30 * k, 120))
    return img


def photo_folder(root: Path, sizes: list[tuple[int, int]]) -> Path:
    root.mkdir(parents=True)
    for i, size in enumerate(sizes):
        photo(i, size).save(root / f"p{i:02d}.png")
    return root


SIZES = [(40, 30), (64, 48), (37, 53), (90, 41), (48, 48), (33, 70)]


@pytest.fixture(scope="module")
def photos_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return photo_folder(tmp_path_factory.mktemp("sr") / "photos", SIZES)


@pytest.fixture
def srresnet_run(trained, photos_dir: Path) -> Path:
    return trained("train", "srresnet", "--data", f"folder:{photos_dir}", "--steps", "3", *TINY_SR)


# -- photos and derived pairs ---------------------------------------------------------------------

def test_photos_keep_each_image_whole_and_round_trip() -> None:
    images = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for h, w in ((5, 7), (9, 4), (6, 6))]
    photos = Photos.of(images)
    assert len(photos) == 3 and photos.smallest == (5, 4)
    assert all(torch.equal(photos[i], im) for i, im in enumerate(images))
    again = Photos(**{"pixels": photos.pixels, "shapes": photos.shapes})
    assert torch.equal(again.take([2, 0])[1], images[0])
    centres = photos.centre_crops()
    assert centres.shape == (3, 3, 5, 4)
    assert torch.equal(centres[1], images[1][:, 2:7, 0:4])  # 9 rows -> the middle 5
    with pytest.raises(ValueError, match="do not account"):
        Photos(photos.pixels[:-1], photos.shapes)


def test_prep_full_size_keeps_every_photo_at_its_own_size(photos_dir: Path) -> None:
    prepared = prepare(f"folder:{photos_dir}", size="full")
    assert prepared.photos is not None and len(prepared.photos) == len(SIZES)
    assert sorted(tuple(s[1:]) for s in prepared.photos.shapes.tolist()) == sorted((h, w) for w, h in SIZES)
    assert prepared.images.shape == (len(SIZES), 3, 30, 33)  # centres at the smallest height and width
    assert prepared.meta["full_size"] and "fewer than 10 photos" in prepared.meta["notes"][-1]


def test_full_size_photos_hold_out_a_part_from_ten_on(tmp_path: Path) -> None:
    folder = photo_folder(tmp_path / "many", [(30 + i, 40) for i in range(12)])
    prepared = prepare(f"folder:{folder}", size="full")
    held = prepare(f"folder:{folder}", size="full", split="heldout")
    assert held.photos is not None and prepared.photos is not None
    assert len(held.photos) == 1 and len(prepared.photos) == 11
    widths = {int(s[2]) for s in prepared.photos.shapes} | {int(s[2]) for s in held.photos.shapes}
    assert len(widths) == 12  # every photo in one part or the other, none in both


def test_full_size_is_refused_where_photos_cannot_keep_their_sizes(tmp_path: Path) -> None:
    for sub in ("trainA", "trainB"):
        photo_folder(tmp_path / "cycle" / sub, [(20, 20)])
    with pytest.raises(zoo.UsageError, match="--size full keeps photos at their own sizes, for folder: and paired"):
        prepare(f"unpaired:{tmp_path / 'cycle'}", size="full")
    photo_folder(tmp_path / "side", [(40, 20)])
    with pytest.raises(zoo.UsageError, match="in the A/ and B/ layout; .* holds side-by-side images"):
        prepare(f"paired:{tmp_path / 'side'}", size="full")


def test_a_selection_that_empties_the_held_out_photos_is_fine(tmp_path: Path) -> None:
    for name, count in (("a", 9), ("b", 2)):
        photo_folder(tmp_path / "classes" / name, [(30 + i, 40) for i in range(count)])
    prepared = prepare(f"folder:{tmp_path / 'classes'}", size="full", classes="b")
    assert prepared.photos is not None and len(prepared.photos) + int(prepared.meta["heldout"]["count"]) == 2


def test_derived_pairs_are_crops_and_their_bicubic_downsample() -> None:
    derive = zoo.Derivation(factor=4, crop=16, flips=True)
    photos = Photos.of([torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for h, w in ((20, 31), (40, 17))])
    torch.manual_seed(0)
    crops = photos.random_crops(torch.tensor([0, 1, 1, 0]), 16)
    assert crops.shape == (4, 3, 16, 16)
    # Each crop is a window of its photo.
    for crop, i in zip(crops, (0, 1, 1, 0), strict=True):
        im = photos[i]
        found = any(torch.equal(im[:, t:t + 16, s:s + 16], crop)
                    for t in range(im.shape[1] - 15) for s in range(im.shape[2] - 15))
        assert found
    small, large = derive(to_float(crops))
    assert small.shape == (4, 3, 4, 4) and large.shape == (4, 3, 16, 16)
    # The input is the target's downsample, flips and all.
    assert torch.allclose(small, derive.downsample(large), atol=1e-6)
    flipped = sum(not torch.equal(large[i], to_float(crops[i])) for i in range(4))
    assert flipped > 0  # with 4 pairs and two coin flips each, seed 0 flips some
    with pytest.raises(zoo.UsageError, match="multiple of the factor"):
        zoo.Derivation(factor=4, crop=18)


def test_photo_crops_are_the_windows_at_their_corners_and_the_corners_cover_each_photo() -> None:
    photos = Photos.of([torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for h, w in ((18, 17), (40, 23), (16, 31))])
    index = torch.tensor([1, 0, 2, 1, 0, 2, 2])
    torch.manual_seed(0)
    top, left = photos.corners(index, 16)
    crops = photos.crops(index, top, left, 16)
    for crop, i, t, s in zip(crops, index.tolist(), top.tolist(), left.tolist(), strict=True):
        assert torch.equal(crop, photos[i][:, t:t + 16, s:s + 16])
    torch.manual_seed(0)
    assert torch.equal(photos.random_crops(index, 16), crops)  # the same draws, made the same way
    many = torch.zeros(3000, dtype=torch.long)  # photo 0 has 3 x 2 places for a 16 px window
    assert set(zip(*(c.tolist() for c in photos.corners(many, 16)), strict=True)) == {(t, s) for t in range(3)
                                                                                     for s in range(2)}


def test_a_batch_of_photo_crops_reads_nothing_back_from_its_device() -> None:
    """On the meta device, whose tensors hold no values, anything that reads a value back to
    the host fails: drawing a batch must not, or each batch would wait for a GPU's work."""
    photos = Photos.of([torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for h, w in ((20, 31), (40, 17), (24, 24))])
    derive = zoo.Derivation(factor=4, crop=16, flips=True)
    labels = torch.arange(3)
    batches = TensorBatches(photos.centre_crops(), labels, 4, seed=0, device="meta", derive=derive, photos=photos)
    batch = batches.next()
    assert batch.images.device.type == "meta" and batch.images.shape == (4, 3, 4, 4)
    assert batch.targets is not None and batch.targets.shape == (4, 3, 16, 16) and batch.labels.device.type == "meta"
    high = photos.map(lambda im: im.repeat_interleave(2, -1).repeat_interleave(2, -2))
    paired = TensorBatches(photos.centre_crops(), None, 4, seed=0, device="meta", derive=zoo.Derivation(2, 16),
                           photos=photos, target_photos=high)
    assert paired.next().targets.shape == (4, 3, 16, 16)


def test_photo_batches_repeat_photos_to_fill_a_batch_and_resume_exactly() -> None:
    photos = Photos.of([torch.randint(0, 256, (1, 20 + i, 24), dtype=torch.uint8) for i in range(3)])
    derive = zoo.Derivation(factor=2, crop=8)
    images = photos.centre_crops()

    def batches() -> TensorBatches:
        return TensorBatches(images, None, 8, seed=3, derive=derive, photos=photos)

    torch.manual_seed(1)
    first = batches()
    batch = first.next()
    assert batch.images.shape == (8, 1, 4, 4) and batch.targets is not None and batch.targets.shape == (8, 1, 8, 8)
    assert first.epoch == 2 and first.position == 2 and first.drawn == 8  # 8 crops of 3 photos: passes 0, 1, 2
    state, rng = first.state(), torch.get_rng_state()
    expected = first.next()
    resumed = batches()
    resumed.load_state(state)
    torch.set_rng_state(rng)
    again = resumed.next()
    assert torch.equal(again.targets, expected.targets)


# -- the models ---------------------------------------------------------------------------------------

def small_model(skip: str = "bicubic", blocks: int = 2) -> SRResNet:
    config = SRResNetConfig(blocks=blocks, width=4, crop=16, scale=2, skip=skip)  # type: ignore[arg-type]
    spec = zoo.Derivation(2, 16).spec(zoo.DataSpec("rgb", 3, 32, 32))
    torch.manual_seed(0)
    model = SRResNet(config, spec)
    for module in model.modules():  # non-trivial batch norm statistics and a non-zero last layer
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    torch.nn.init.normal_(model.generator.tail.weight, 0, 0.05)
    return model.eval()


@pytest.mark.parametrize("skip", ["bicubic", "none"])
def test_tiled_upscaling_equals_untiled(skip: str) -> None:
    model = small_model(skip)
    image = torch.rand(1, 3, 23, 37) * 2 - 1  # non-square, not a multiple of the tile
    with torch.no_grad():
        whole = model.translate(image)
        tiled = superres.upscale(model, image, 2, tile=8)
    assert tiled.shape == (1, 3, 46, 74)
    assert torch.allclose(tiled, whole, atol=1e-5)


def test_tiles_overlapping_less_than_the_context_show_seams(monkeypatch: pytest.MonkeyPatch) -> None:
    model = small_model()
    image = torch.rand(1, 3, 24, 24) * 2 - 1
    monkeypatch.setattr(type(model), "context", lambda self: 1)
    with torch.no_grad():
        seams = superres.upscale(model, image, 2, tile=8)
        whole = model.translate(image)
    assert not torch.allclose(seams, whole, atol=1e-4)


def test_the_declared_context_is_the_receptive_field() -> None:
    """An input pixel changed just beyond the context leaves the output pixels over input
    pixel 20 alone (every phase of the x2 output); one changed at the context's edge moves one."""
    model = small_model("none", blocks=1)
    reach = generator_context(1, 2)
    assert model.context() == reach
    image = torch.zeros(1, 3, 60, 60)
    with torch.no_grad():
        base = model.translate(image)[0, :, 40:42, 40:42]  # the 2 x 2 output pixels over input pixel 20
        far, edge = image.clone(), image.clone()
        far[0, :, 20, 20 + reach + 1] = 1
        edge[0, :, 20, 20 + reach] = 1
        assert torch.allclose(model.translate(far)[0, :, 40:42, 40:42], base)
        assert not torch.allclose(model.translate(edge)[0, :, 40:42, 40:42], base)


def test_icnr_starts_the_subpixel_layers_as_nearest_neighbour() -> None:
    model = small_model("none")
    conv, shuffle = model.generator.up[0], model.generator.up[1]
    x = torch.randn(1, 4, 5, 5)
    out = shuffle(conv(x))
    assert torch.allclose(out[..., 0::2, 0::2], out[..., 1::2, 1::2], atol=1e-6)


def test_bicubic_skip_starts_as_bicubic() -> None:
    config = SRResNetConfig(blocks=1, width=4, crop=16, scale=2)
    model = SRResNet(config, zoo.Derivation(2, 16).spec(zoo.DataSpec("rgb", 3, 32, 32))).eval()
    image = torch.rand(1, 3, 9, 11) * 1.6 - 0.8
    with torch.no_grad():
        assert torch.allclose(model.translate(image), superres.bicubic(image, 2), atol=1e-6)


def test_vgg19_content_loss_needs_weights_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZOO_VGG19_WEIGHTS", raising=False)
    spec = zoo.Derivation(2, 16).spec(zoo.DataSpec("rgb", 3, 32, 32))
    with pytest.raises(zoo.UsageError, match="needs ImageNet VGG19 weights on disk.*never downloads"):
        SRResNet.check_data(SRResNetConfig(content="vgg19", crop=16, scale=2), spec)
    with pytest.raises(zoo.UsageError, match="not found"):
        SRResNet.check_data(SRResNetConfig(content="vgg19", vgg19_weights=str(tmp_path / "nope.safetensors"),
                                           crop=16, scale=2), spec)
    pickle = tmp_path / "vgg19.pth"
    pickle.write_bytes(b"not a safetensors file")
    with pytest.raises(zoo.UsageError, match="not a .safetensors file"):
        SRResNet.check_data(SRResNetConfig(content="vgg19", vgg19_weights=str(pickle), crop=16, scale=2), spec)
    # A model trained with vgg19 loads and upscales without the file (only training needs it).
    model = SRResNet(SRResNetConfig(content="vgg19", vgg19_weights=str(pickle), crop=16, scale=2, blocks=1,
                                    width=4), spec)
    assert model.translate(torch.zeros(1, 3, 5, 6)).shape == (1, 3, 10, 12)


def test_training_refuses_vgg19_without_weights_before_the_run_starts(photos_dir: Path, monkeypatch) -> None:
    """Refused once the data's shape is known (the check is the model's check_data, after the
    data is prepared: the first try may say it prepared the photos), before any run folder."""
    monkeypatch.delenv("ZOO_VGG19_WEIGHTS", raising=False)
    for _ in range(2):
        result = run_cli("train", "srresnet", "--data", f"folder:{photos_dir}", "--steps", "1", *TINY_SR,
                         "--set", "content=vgg19", "--out", "run")
        assert result.exit_code == 2 and "content=vgg19 needs ImageNet VGG19 weights on disk" in result.output
        assert not Path("run").exists()
    assert len(result.output.strip().splitlines()) == 1, result.output  # the data prepared: the refusal alone


def test_vgg19_content_loss_from_a_safetensors_file(tmp_path: Path) -> None:
    from safetensors.torch import save_file
    from torchvision.models import vgg19

    torch.manual_seed(0)
    path = tmp_path / "vgg19.safetensors"
    save_file(vgg19(weights=None).state_dict(), str(path))  # random weights: the file format is what counts
    spec = zoo.Derivation(2, 16).spec(zoo.DataSpec("rgb", 3, 32, 32))
    model = SRResNet(SRResNetConfig(content="vgg19", vgg19_weights=str(path), blocks=1, width=4, crop=16,
                                    scale=2), spec)
    model.configure_optimizers()  # training builds the content network
    assert model.helper_sources()["content"].startswith(f"vgg19: {path.resolve()} (sha256 ")
    assert not any(k.startswith("content") or "net." in k for k in model.state_dict())
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert float(model.content_loss(x, x)) == 0 and float(model.content_loss(x, -x)) > 0


# -- the commands ---------------------------------------------------------------------------------------

def test_train_takes_crops_from_full_size_photos(srresnet_run: Path, photos_dir: Path) -> None:
    meta = ckpt_io.read_meta(srresnet_run / ckpt_io.FILENAME)
    assert meta["train"]["data"]["size"] == "full"
    assert meta["data"]["height"] == 8 and meta["data"]["target_height"] == 16
    assert meta["config"]["content"] == "pixel"


def test_random_content_loss_is_recorded_and_never_checkpointed(trained, photos_dir: Path) -> None:
    run = trained("train", "srresnet", "--data", f"folder:{photos_dir}", "--steps", "2", "--set", "content=random",
                  *TINY_SR, dest="random")
    meta = ckpt_io.read_meta(run / ckpt_io.FILENAME)
    assert "seed 2021" in json.dumps(meta)
    tensors = set(run_tensors(run))
    assert tensors and not any("stages" in k for k in tensors)


def run_tensors(run: Path) -> dict:
    from .conftest import checkpoint_tensors

    return checkpoint_tensors(run)


def test_srgan_starts_from_srresnet(srresnet_run: Path, photos_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--init-from copies srresnet's trained generator into srgan, weight for weight; the
    discriminator, which srresnet has not, starts as initialised."""
    from zoo.plugins.srgan import SRGAN

    started: dict[str, dict[str, torch.Tensor]] = {}
    train_step = SRGAN.train_step

    def spy(self, batches, progress):  # the weights a run starts from: those of its first step
        started.setdefault("weights", {k: v.clone() for k, v in self.state_dict().items()})
        return train_step(self, batches, progress)

    def first_weights(*args: str) -> dict[str, torch.Tensor]:
        started.clear()
        result = run_cli("train", "srgan", "--data", f"folder:{photos_dir}", *TINY_SR, "--set", "d_width=4", *args)
        assert result.exit_code == 0, result.output
        return started["weights"]

    monkeypatch.setattr(SRGAN, "train_step", spy)
    warm = first_weights("--steps", "2", "--init-from", str(srresnet_run), "--out", "gan")
    fresh = first_weights("--steps", "1", "--out", "fresh")
    source = ckpt_io.load(srresnet_run / ckpt_io.FILENAME).state["model"]
    generator = [k for k in source if k.startswith("generator.")]
    assert generator and set(generator) == {k for k in warm if k.startswith("generator.")}
    assert all(torch.equal(warm[k], source[k]) for k in generator)
    assert any(not torch.equal(fresh[k], source[k]) for k in generator)  # so the equality above is the copy's
    discriminator = [k for k in warm if k.startswith("discriminator.")]
    assert discriminator and all(torch.equal(warm[k], fresh[k]) for k in discriminator)


def test_upscale_any_size_writes_scale_times_larger_images_and_a_sheet(srresnet_run: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    photo(1, (150, 61)).save(inputs / "wide.png")  # larger than any training crop, not square
    photo(2, (9, 13)).save(inputs / "tiny.jpg")
    result = run_cli("upscale", str(srresnet_run), str(inputs), "--out", "big", "--tile", "32")
    assert result.exit_code == 0, result.output
    with Image.open("big/wide.png") as img:
        assert img.size == (300, 122)
    with Image.open("big/tiny.png") as img:
        assert img.size == (18, 26)
    assert Path("big/sheet.png").is_file() and "2 image(s) upscaled x2" in result.output
    again = run_cli("upscale", str(srresnet_run), str(inputs), "--out", "big")
    assert again.exit_code == 2 and "already holds files" in again.output


def test_upscale_compare_shrinks_then_measures_against_the_original(srresnet_run: Path, tmp_path: Path) -> None:
    original = tmp_path / "original.png"
    photo(3, (64, 40)).save(original)
    result = run_cli("upscale", str(srresnet_run), str(original), "--compare", "--out", "check")
    assert result.exit_code == 0, result.output
    assert "Y channel, 2 px border cropped" in result.output and "PSNR bicubic" in result.output
    with Image.open("check/original.png") as img:
        assert img.size == (64, 40)  # shrunk to 32 x 20, upscaled back


def test_upscale_takes_the_runs_best_checkpoint_when_asked(srresnet_run: Path, photos_dir: Path, trained,
                                                           tmp_path: Path) -> None:
    original = tmp_path / "small.png"
    photo(4, (20, 16)).save(original)
    refused = run_cli("upscale", str(srresnet_run), str(original), "--checkpoint", "best")
    assert refused.exit_code == 1 and "has no best.safetensors" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    earlier = trained("train", "srresnet", "--data", f"folder:{photos_dir}", "--steps", "1", *TINY_SR, dest="early")
    shutil.copyfile(earlier / ckpt_io.FILENAME, srresnet_run / runs.BEST_FILE)
    best = run_cli("upscale", str(srresnet_run), str(original), "--checkpoint", "best")
    assert best.exit_code == 0 and "(step 1)" in best.output, best.output
    latest = run_cli("upscale", str(srresnet_run), str(original))
    assert latest.exit_code == 0 and "(step 3)" in latest.output, latest.output
    assert Path("upscaled/run-best/small.png").is_file() and Path("upscaled/run/small.png").is_file()


@pytest.mark.parametrize(("args", "message"), [
    (["--scale", "4"], "was trained for x2"),
    (["--compare"], "too small to measure x2 super-resolution on"),
    (["--tile", "0"], "--tile must be a whole number from 1 to 65,536, got 0"),
])
def test_upscale_refuses_bad_input(srresnet_run: Path, tmp_path: Path, args: list[str], message: str) -> None:
    dot = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (9, 9, 9)).save(dot)
    result = run_cli("upscale", str(srresnet_run), str(dot), *args, "--out", "x")
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_upscale_refuses_a_model_that_does_not_upscale(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from zoo.pipelines import upscale as upscale_pipeline
    from zoo.plugins.pix2pix import Pix2Pix, Pix2PixConfig

    spec = zoo.DataSpec("pairs", 3, 32, 32, pairing="paired", target_channels=3, domains=("A", "B"))
    translator = Pix2Pix(Pix2PixConfig(g_width=4, d_width=4), spec)
    checkpoint = type("Checkpoint", (), {"train": {}})()
    monkeypatch.setattr(runs, "load_translator",
                        lambda target, device, which="latest": (translator, checkpoint, tmp_path / "x"))
    with pytest.raises(zoo.UsageError, match="pix2pix does not upscale"):
        upscale_pipeline.upscale("pix2pix", [str(tmp_path)])


def test_eval_measures_psnr_and_ssim_on_y_against_bicubic(srresnet_run: Path, tmp_path: Path) -> None:
    held = photo_folder(tmp_path / "held", [(44, 36), (50, 62)])
    result = run_cli("eval", str(srresnet_run), "--data", f"folder:{held}", "--split", "train")
    assert result.exit_code == 0, result.output
    figures = json.loads((srresnet_run / "eval.json").read_text())
    assert figures["protocol"] == "sr-x2-y-border2/train"
    assert "2 px cropped from each border" in figures["protocol_detail"]["convention"]
    assert len(figures["per_image"]["psnr_y"]) == 2
    for key in ("psnr_y", "ssim_y", "bicubic_psnr_y", "bicubic_ssim_y"):
        assert math.isfinite(figures[key])
    assert 0 < figures["bicubic_ssim_y"] <= 1 and figures["bicubic_psnr_y"] > 15
    assert figures["original_laplacian_energy"] > figures["bicubic_laplacian_energy"] > 0
    assert (srresnet_run / "eval" / "sheet.png").is_file() or any((srresnet_run / "eval").glob("sheet-*.png"))
    # The bicubic baseline is the protocol's own: recompute it for the first photo by hand.
    prepared = prepare(f"folder:{held}", size="full")
    assert prepared.photos is not None
    high, low = superres.shrink(prepared.photos[0].unsqueeze(0), 2)
    base = zoo.data.images.as_uint8(superres.bicubic(to_float(low), 2))
    expected = float(zoo.measure.metrics.psnr_y(to_float(base), to_float(high), 2)[0])
    assert figures["per_image"]["bicubic_psnr_y"][0] == pytest.approx(expected, abs=1e-3)


def test_runs_load_the_upscaler_on_the_cpu(srresnet_run: Path) -> None:
    model, _ = runs.load_model(srresnet_run / ckpt_io.FILENAME, torch.device("cpu"))
    assert superres.factor_of(model) == 2 and model.context() == generator_context(1, 2)


# -- paired low- and high-resolution photos --------------------------------------------------------------

def resolution_pairs(root: Path, factor: int = 2, wrong: bool = False) -> Path:
    """paired:PATH's A/ (low) and B/ (high, factor times larger) layout, from test photos."""
    (root / "A").mkdir(parents=True)
    (root / "B").mkdir()
    for i, (w, h) in enumerate([(64, 48), (50, 70), (80, 40)]):
        high = photo(i, (w, h))
        high.save(root / "B" / f"{i}.png")
        size = (w // factor + (1 if wrong and i == 1 else 0), h // factor)
        high.resize(size, Image.Resampling.BICUBIC).save(root / "A" / f"{i}.png")
    return root


def test_aligned_crops_cut_the_same_place_of_both_photos() -> None:
    low = Photos.of([torch.randint(0, 256, (3, 9, 13), dtype=torch.uint8), torch.randint(0, 256, (3, 12, 7),
                                                                                        dtype=torch.uint8)])
    high = low.map(lambda im: im.repeat_interleave(3, -1).repeat_interleave(3, -2))  # nearest x3
    torch.manual_seed(0)
    small, large = low.aligned_crops(high, torch.tensor([0, 1, 0, 1, 1]), 5, 3)
    assert small.shape == (5, 3, 5, 5) and large.shape == (5, 3, 15, 15)
    assert torch.equal(large, small.repeat_interleave(3, -1).repeat_interleave(3, -2))


def test_paired_photos_train_and_are_measured_on_their_own_low_resolution_half(tmp_path: Path) -> None:
    pairs = resolution_pairs(tmp_path / "lrhr")
    prepared = prepare(f"paired:{pairs}", size="full")
    assert prepared.photos is not None and prepared.target_photos is not None
    assert prepared.target_photos.shapes[0].tolist() == [3, 48, 64]
    assert prepared.photos.shapes[0].tolist() == [3, 24, 32]
    result = run_cli("train", "srresnet", "--data", f"paired:{pairs}", "--steps", "2", *TINY_SR, "--out", "run")
    assert result.exit_code == 0, result.output
    meta = ckpt_io.read_meta(Path("run") / ckpt_io.FILENAME)
    assert meta["train"]["data"]["size"] == "full" and meta["data"]["pairing"] == "paired"
    assert (meta["data"]["height"], meta["data"]["target_height"]) == (8, 16)
    measured = run_cli("eval", "run", "--split", "train")
    assert measured.exit_code == 0, measured.output
    figures = json.loads(Path("run/eval.json").read_text())
    assert "the data's own low-resolution photos" in figures["protocol_detail"]["convention"]
    assert len(figures["per_image"]["psnr_y"]) == 3


def test_paired_photos_of_the_wrong_ratio_are_refused(tmp_path: Path) -> None:
    pairs = resolution_pairs(tmp_path / "bad", wrong=True)
    result = run_cli("train", "srresnet", "--data", f"paired:{pairs}", "--steps", "1", *TINY_SR, "--out", "run")
    assert result.exit_code == 2 and "pair 2's B image is 70x50, not 2 times its A image (35x26)" in result.output


def test_paired_data_of_one_size_is_refused_for_an_upscaler(tmp_path: Path) -> None:
    pairs = resolution_pairs(tmp_path / "fitted")
    result = run_cli("train", "srresnet", "--data", f"paired:{pairs}", "--size", "32", "--steps", "1", *TINY_SR,
                     "--out", "run")
    assert result.exit_code == 2 and "as low- and high-resolution photos at full size" in result.output


def test_translate_points_an_upscaler_to_zoo_upscale(srresnet_run: Path, tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    photo(0, (30, 20)).save(image)
    result = run_cli("translate", str(srresnet_run), str(image))
    assert result.exit_code == 2 and f"whatever their size: zoo upscale {srresnet_run} {image}" in result.output
