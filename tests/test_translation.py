"""Image-to-image: paired and unpaired data, pix2pix, CycleGAN and ``zoo translate``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

import zoo
from zoo import augment
from zoo.data.memory import TensorBatches
from zoo.data.sources.pairs import edge_map
from zoo.pipelines.prep import prepare
from zoo.records import checkpoint as ckpt_io

from .conftest import run_cli
from .sheets import label_bands

TINY_P2P = ["--set", "g_width=4", "--set", "d_width=4", "--batch-size", "4", "--no-wandb"]
TINY_CYCLE = ["--set", "g_width=4", "--set", "d_width=4", "--set", "res_blocks=1", "--batch-size", "4", "--no-wandb"]


def shape(i: int, size: tuple[int, int], colour: bool, square: bool) -> Image.Image:
    from PIL import ImageDraw

    img = Image.new("RGB" if colour else "L", size, (10 * i % 255, 40, 90) if colour else 20)
    box = (4 + i % 5, 4, size[0] - 4, size[1] - 4 - i % 3)
    fill = (240, 200, 30 * i % 255) if colour else 230
    (ImageDraw.Draw(img).rectangle if square else ImageDraw.Draw(img).ellipse)(box, fill=fill)
    return img


def side_by_side(root: Path, n: int = 8) -> Path:
    """pix2pix's layout: each file holds A (gray outline) | B (colour fill), 2:1 wide."""
    root.mkdir(parents=True)
    for i in range(n):
        a, b = shape(i, (48, 48), False, True), shape(i, (48, 48), True, True)
        both = Image.new("RGB", (96, 48))
        both.paste(a.convert("RGB"), (0, 0))
        both.paste(b, (48, 0))
        both.save(root / f"{i:02d}.jpg" if i % 2 else root / f"{i:02d}.png")
    return root


def two_folders(root: Path, n: int = 8, colour_b: bool = True) -> Path:
    for sub, colour in (("A", False), ("B", colour_b)):
        (root / sub).mkdir(parents=True)
        for i in range(n):
            shape(i, (40, 36), colour, sub == "A").save(root / sub / f"{i:02d}.png")
    return root


def cyclegan_layout(root: Path, n_a: int = 8, n_b: int = 12, colour_b: bool = False) -> Path:
    for sub, count, square, colour in (("trainA", n_a, True, False), ("trainB", n_b, False, colour_b)):
        (root / sub).mkdir(parents=True)
        for i in range(count):
            shape(i, (36, 40), colour, square).save(root / sub / f"{i:02d}.png")
    (root / "testA").mkdir()
    return root


# -- data ---------------------------------------------------------------------------------------

def test_edges2fashion_pairs_each_item_with_its_edges(fashion) -> None:
    data = prepare("paired:edges2fashion", subset="0:300")
    assert data.meta["pairing"] == "paired" and data.meta["domains"] == ["edges", "fashion"]
    assert data.images.shape == data.targets.shape == (300, 1, 32, 32)
    assert torch.equal(data.images, edge_map(data.targets))
    assert set(data.images.unique().tolist()) == {0, 255}   # white lines on black
    assert 0.05 < (data.images > 0).float().mean() < 0.5
    assert (data.path / "pairs.png").is_file()
    spec = data.spec
    assert spec.pairing == "paired" and spec.target_channels == 1 and spec.class_names[7] == "sneaker"


def test_edges_are_a_fixed_operator() -> None:
    square = torch.zeros(1, 1, 9, 9, dtype=torch.uint8)
    square[..., 3:6, 3:6] = 255
    edges = edge_map(square)
    assert torch.equal(edges, edge_map(square.clone()))
    assert edges[0, 0, 4, 4] == 0 and edges[0, 0, 4, 2] == 255 and edges[0, 0, 0, 0] == 0


def test_two_classes_of_a_labelled_set_make_two_domains(fashion) -> None:
    data = prepare("unpaired:fashion:sneaker,ankle-boot", subset="0:3000")
    assert data.meta["pairing"] == "unpaired" and data.meta["domains"] == ["sneaker", "ankle-boot"]
    assert len(data.images) > 200 and len(data.targets) > 200
    assert data.labels is None


def test_paired_side_by_side_and_a_b_folders(tmp_path: Path) -> None:
    sbs = prepare(f"paired:{side_by_side(tmp_path / 'facades')}", size=32)
    assert sbs.images.shape == (8, 3, 32, 32) and sbs.targets.shape == (8, 3, 32, 32)  # one RGB file per pair
    assert sbs.images.float().mean() != sbs.targets.float().mean()
    folders = prepare(f"paired:{two_folders(tmp_path / 'ab')}", size=32)
    assert folders.images.shape == (8, 1, 32, 32) and folders.targets.shape == (8, 3, 32, 32)


def test_a_train_split_inside_the_folder_is_used(tmp_path: Path) -> None:
    side_by_side(tmp_path / "facades" / "train", n=6)
    side_by_side(tmp_path / "facades" / "test", n=3)
    data = prepare(f"paired:{tmp_path / 'facades'}", size=32)
    assert len(data) == 6


def test_unpaired_folders(tmp_path: Path) -> None:
    data = prepare(f"unpaired:{cyclegan_layout(tmp_path / 'h2z')}", size=32)
    assert data.images.shape == (8, 1, 32, 32) and data.targets.shape == (12, 1, 32, 32)


@pytest.mark.parametrize("make, data, message", [
    (lambda r: two_folders(r), "paired:{}/nowhere", "is not a folder"),
    (lambda r: (two_folders(r), (r / "B" / "03.png").unlink()), "paired:{}", "no partner in the other folder"),
    (lambda r: (two_folders(r), [p.unlink() for p in (r / "B").iterdir()], (r / "B").rmdir()), "paired:{}",
     "found one of A/ and B/ but not B/"),
    (lambda r: cyclegan_layout(r), "paired:{}", "has the CycleGAN layout (trainA/, trainB/)"),
    (lambda r: r.mkdir(), "paired:{}", "holds no images"),
    (lambda r: (cyclegan_layout(r), [p.unlink() for p in (r / "trainB").iterdir()], (r / "trainB").rmdir()),
     "unpaired:{}", "has no trainB/ (found: testA/, trainA/)"),
    (lambda r: cyclegan_layout(r, colour_b=True), "unpaired:{}", "trainA/ is grayscale and trainB/ colour"),
])
def test_bad_layouts_say_what_is_expected(tmp_path: Path, make, data: str, message: str) -> None:
    root = tmp_path / "d"
    make(root)
    result = run_cli("prep", data.format(root), "--size", "32")
    assert result.exit_code == 2, result.output
    assert message in result.output and result.output.count("\n") == 1


@pytest.mark.parametrize("data, message", [
    ("unpaired:fashion:sneaker", "name two classes"),
    ("unpaired:fashion:sneaker,sneaker", "must be different classes"),
    ("unpaired:fashion:sneaker,boot", "has no class 'boot'; its classes are: 0 t-shirt"),
])
def test_bad_class_domains(fashion, data: str, message: str) -> None:
    result = run_cli("prep", data)
    assert result.exit_code == 2 and message in result.output


def test_mixed_channels_convert_with_channels(tmp_path: Path) -> None:
    data = prepare(f"unpaired:{cyclegan_layout(tmp_path / 'h2z', colour_b=True)}", size=32, channels=3)
    assert data.images.shape[1] == data.targets.shape[1] == 3


def test_unpaired_batches_draw_each_domain_in_its_own_order() -> None:
    images = torch.arange(8, dtype=torch.uint8).view(8, 1, 1, 1).expand(8, 1, 2, 2)
    targets = (100 + torch.arange(12, dtype=torch.uint8)).view(12, 1, 1, 1).expand(12, 1, 2, 2)
    batches = TensorBatches(images, None, 4, seed=0, targets=targets, paired=False)
    drawn = [batches.next() for _ in range(2)]
    state = batches.state()
    drawn.append(batches.next())  # three batches of B: one full pass over its 12 images
    seen = torch.cat([b.targets[:, 0, 0, 0] for b in drawn])
    assert sorted(((seen + 1) * 127.5).round().int().tolist()) == list(range(100, 112))
    again = TensorBatches(images, None, 4, seed=0, targets=targets, paired=False)
    again.load_state(state)  # a resumed run draws the same batch of B
    assert torch.equal(again.next().targets, drawn[2].targets)
    paired = TensorBatches(images, None, 4, seed=0, targets=images.clone())
    batch = paired.next()
    assert torch.equal(batch.images, batch.targets)


def halves(root: Path, sizes: list[tuple[int, int]]) -> Path:
    """Side-by-side files of these (width, height), odd or not: the left half red, the right blue."""
    root.mkdir(parents=True)
    for i, (width, height) in enumerate(sizes):
        img = Image.new("RGB", (width, height), (220, 20, 20))
        img.paste((20, 20, 220), (width // 2, 0, width, height))
        img.save(root / f"{i:02d}.png")
    return root


def test_side_by_side_images_of_any_width_are_split_at_half_like_pix2pix(tmp_path: Path, capsys) -> None:
    root = halves(tmp_path / "facades", [(96, 48), (97, 48), (512, 231), (512, 194), (60, 60)])
    (root / "99.png").write_bytes(b"not an image")
    data = prepare(f"paired:{root}", size=32)
    assert data.images.shape == data.targets.shape == (5, 3, 32, 32)
    for half, colour in ((data.images, [220, 20, 20]), (data.targets, [20, 20, 220])):
        assert torch.equal(half.float().mean((2, 3)), torch.tensor([colour] * 5).float())  # no pixel of the other half
    notes = data.meta["notes"]
    assert any(n.startswith("skipped 1 unreadable file(s)") and "99.png (UnidentifiedImageError)" in n for n in notes)
    assert any(n.startswith("3 of 5 images are not twice as wide as high (e.g. 02.png 512x231") for n in notes)
    assert "warning: skipped 1 unreadable file(s)" in capsys.readouterr().err


def test_a_pair_with_an_unreadable_file_is_skipped_as_a_pair(tmp_path: Path, capsys) -> None:
    clean = prepare(f"paired:{two_folders(tmp_path / 'clean')}", size=32)
    root = two_folders(tmp_path / "broken")
    (root / "B" / "03.png").write_bytes(b"\x89PNG truncated")
    (root / "A" / "05.png").write_text("not an image")
    data = prepare(f"paired:{root}", size=32)
    keep = [0, 1, 2, 4, 6, 7]  # the other six pairs, still in line
    assert torch.equal(data.images, clean.images[keep]) and torch.equal(data.targets, clean.targets[keep])
    note = next(n for n in data.meta["notes"] if n.startswith("skipped"))
    assert note.startswith("skipped 2 pair(s) of") and "A/05.png" in note and "B/03.png" in note
    assert "warning: skipped 2 pair(s)" in capsys.readouterr().err


def test_unpaired_folders_skip_unreadable_files(tmp_path: Path) -> None:
    root = cyclegan_layout(tmp_path / "h2z")
    (root / "trainB" / "zz.png").write_text("not an image")
    data = prepare(f"unpaired:{root}", size=32)
    assert len(data.images) == 8 and len(data.targets) == 12
    assert any("unreadable file(s) in" in n and "zz.png" in n for n in data.meta["notes"])


def test_no_readable_image_at_all_is_a_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "d"
    root.mkdir()
    (root / "a.png").write_bytes(b"not an image")
    (root / "b.jpg").write_text("nor this")
    result = run_cli("prep", f"paired:{root}", "--size", "32")
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "none of the 2 files could be read as an image (e.g. a.png" in result.output
    two_folders(tmp_path / "ab", n=2)
    for path in (tmp_path / "ab" / "B").iterdir():
        path.write_text("not an image")
    result = run_cli("prep", f"paired:{tmp_path / 'ab'}", "--size", "32")
    assert result.exit_code == 1 and "none of the 2 pairs has both files readable" in result.output


def test_direction_btoa_swaps_the_domains_and_is_cached_apart(tmp_path: Path) -> None:
    data = f"paired:{two_folders(tmp_path / 'ab')}"  # A: gray outlines, B: colour fills
    as_stored = prepare(data, size=32)
    swapped = prepare(data, size=32, direction="BtoA")
    assert swapped.path != as_stored.path
    assert torch.equal(swapped.images, as_stored.targets) and torch.equal(swapped.targets, as_stored.images)
    assert swapped.spec.channels == 3 and swapped.spec.target_channels == 1
    assert swapped.meta["domains"] == ["B", "A"] and swapped.meta["selection"]["direction"] == "BtoA"
    assert as_stored.meta["selection"]["direction"] == "AtoB"
    assert any("--direction BtoA: the domains swapped" in n for n in swapped.meta["notes"])
    assert prepare(data, size=32, direction="btoa").path == swapped.path  # any case; cached
    assert prepare(data, size=32, direction="AtoB").path == as_stored.path
    unpaired = prepare(f"unpaired:{cyclegan_layout(tmp_path / 'h2z')}", size=32, direction="BtoA")
    assert len(unpaired.images) == 12 and len(unpaired.targets) == 8  # trainB/ is now domain A
    shown = run_cli("prep", data, "--size", "32", "--direction", "BtoA")
    assert shown.exit_code == 0 and "A = B, B = A" in shown.output


@pytest.mark.parametrize("data, direction, message", [
    ("mnist", "BtoA", "--direction BtoA swaps the two domains of paired: or unpaired: data; mnist is one set"),
    ("paired:edges2fashion", "sideways", "--direction takes AtoB or BtoA, got 'sideways'"),
])
def test_bad_directions_are_one_line(data: str, direction: str, message: str) -> None:
    result = run_cli("prep", data, "--direction", direction)
    assert result.exit_code == 2 and message in result.output and result.output.count("\n") == 1


# -- random jitter and mirroring ------------------------------------------------------------------

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))]


def noise(n: int, channels: int = 3, size: int = 16, device: str = "cpu") -> torch.Tensor:
    return torch.rand(n, channels, size, size, device=device) * 2 - 1


@pytest.mark.parametrize("device", DEVICES)
def test_a_pair_gets_the_same_crop_and_flip(device: str) -> None:
    torch.manual_seed(0)
    x = noise(32, device=device)
    out = augment.jitter_batch(zoo.Batch(images=x, targets=x.clone()), 1.25, True, paired=True)
    assert out.images.shape == out.targets.shape == x.shape and out.images.device == x.device
    assert torch.equal(out.images, out.targets)
    assert not torch.equal(out.images, x) and out.images.abs().max() <= 1
    gray = x[:, :1]  # input and target of different channel counts
    out = augment.jitter_batch(zoo.Batch(images=gray, targets=gray.expand(-1, 3, -1, -1)), 1.25, True, paired=True)
    assert out.images.shape == gray.shape and torch.equal(out.targets, out.images.expand(-1, 3, -1, -1))


def test_unpaired_domains_are_jittered_each_on_its_own() -> None:
    torch.manual_seed(0)
    x = noise(32)
    out = augment.jitter_batch(zoo.Batch(images=x, targets=x.clone()), 1.25, True, paired=False)
    same = (out.images == out.targets).flatten(1).all(1)
    assert out.targets.shape == x.shape and same.float().mean() < 0.5


@pytest.mark.parametrize("device", DEVICES)
def test_jitter_crops_a_window_of_the_enlarged_image_and_mirrors_it(device: str) -> None:
    import torch.nn.functional as F

    torch.manual_seed(0)
    x = noise(40, channels=2, size=8, device=device)
    out = augment.jitter(x, 1.5, True)
    big = F.interpolate(x, size=(12, 12), mode="bilinear", align_corners=False)
    found = set()
    for i in range(len(x)):
        windows = [(top, left, flip) for top in range(5) for left in range(5) for flip in (False, True)
                   if torch.equal(out[i], (lambda w: w.flip(-1) if flip else w)(big[i, :, top:top + 8, left:left + 8]))]
        assert windows, i
        found.add(windows[0])
    assert len({(top, left) for top, left, _ in found}) > 10 and {f for _, _, f in found} == {False, True}


def test_mirroring_alone_flips_about_half_the_images() -> None:
    torch.manual_seed(0)
    x = noise(200, channels=1, size=8)
    out = augment.jitter(x, 0.0, True)
    flipped, kept = ((out == y).flatten(1).all(1) for y in (x.flip(-1), x))
    assert bool((flipped | kept).all()) and 70 < int(flipped.sum()) < 130


def test_jitter_off_is_the_identity_and_draws_no_random_numbers() -> None:
    x, y = noise(8), noise(8)
    state = torch.get_rng_state()
    for scale, mirror in ((0.0, False), (1.0, False), (None, None)):  # None: automatic, off at 16 px
        for paired in (True, False):
            out = augment.jitter_batch(zoo.Batch(images=x, targets=y), scale, mirror, paired=paired)
            assert torch.equal(out.images, x) and torch.equal(out.targets, y)
    assert torch.equal(torch.get_rng_state(), state)


def test_jitter_follows_the_global_seed() -> None:
    x = noise(8, size=64)
    torch.manual_seed(3)
    first = augment.jitter(x, augment.PAPER_JITTER, True)
    torch.manual_seed(3)
    assert torch.equal(augment.jitter(x, augment.PAPER_JITTER, True), first)


def test_automatic_jitter_is_the_papers_from_64_px_and_off_below() -> None:
    assert augment.resolve(None, None, 28, 28) == augment.resolve(None, None, 32, 64) == (0.0, False)
    assert augment.resolve(None, None, 64, 128) == (286 / 256, True)
    assert augment.resolve(0.0, True, 256, 256) == (0.0, True) and augment.resolve(1.5, None, 32, 32) == (1.5, False)
    assert round(256 * augment.PAPER_JITTER) == 286


@pytest.mark.parametrize("model", ["pix2pix", "cyclegan"])
@pytest.mark.parametrize("setting, message", [
    ("jitter=0.5", "jitter must be 0 (off) or an enlargement factor from 1 to 2 "
                   "(the papers': 286/256 = 1.1171875), got 0.5"),
    ("jitter=286", "jitter must be 0 (off) or an enlargement factor from 1 to 2"),
    ("mirror=sometimes", "--set mirror=sometimes: expected true or false or none"),
])
def test_bad_jitter_settings_are_one_line(tmp_path: Path, model: str, setting: str, message: str) -> None:
    data = f"paired:{side_by_side(tmp_path / 'pairs', n=2)}"
    result = run_cli("train", model, "--data", data, "--size", "32", "--set", setting, "--steps", "1", "--no-wandb")
    assert result.exit_code == 2 and message in result.output and result.output.count("\n") == 1


@pytest.mark.parametrize("model, tiny", [("pix2pix", TINY_P2P), ("cyclegan", TINY_CYCLE)])
def test_both_models_train_with_jitter_and_mirroring(tmp_path: Path, model: str, tiny: list[str]) -> None:
    data = f"paired:{side_by_side(tmp_path / 'pairs')}"
    result = run_cli("train", model, "--data", data, "--size", "32", *tiny, "--set", "jitter=1.125",
                     "--set", "mirror=true", "--steps", "2", "--out", "jittered")
    assert result.exit_code == 0, result.output
    run = json.loads(Path("jittered/run.json").read_text())
    assert run["config"]["jitter"] == 1.125 and run["config"]["mirror"] is True


def straight_and_resumed(model: str, common: list[str]) -> tuple[dict, dict]:
    """The checkpoint states of 4 steps in one go and of 2 steps resumed to 4; their weights
    must be the same."""
    from zoo.records import checkpoint as ckpt_io

    assert run_cli(*common, "--steps", "4", "--out", "straight").exit_code == 0
    assert run_cli(*common, "--steps", "2", "--out", "halves").exit_code == 0
    resumed = run_cli("train", model, "--resume", "halves", "--steps", "4", "--no-wandb")
    assert resumed.exit_code == 0, resumed.output
    a = ckpt_io.load(Path("straight") / ckpt_io.FILENAME).state
    b = ckpt_io.load(Path("halves") / ckpt_io.FILENAME).state
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    return a, b


def test_a_resumed_run_jitters_as_an_uninterrupted_one(tmp_path: Path) -> None:
    data = f"paired:{side_by_side(tmp_path / 'pairs')}"
    common = ["train", "pix2pix", "--data", data, "--size", "32", *TINY_P2P, "--set", "jitter=1.125",
              "--set", "mirror=true"]
    straight_and_resumed("pix2pix", common)


# -- training and translating -------------------------------------------------------------------

@pytest.fixture(scope="module")
def pairs_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return side_by_side(tmp_path_factory.mktemp("pairs") / "pairs")


@pytest.fixture
def pix2pix_run(pairs_folder: Path, trained) -> Path:
    return trained("train", "pix2pix", "--data", f"paired:{pairs_folder}", "--size", "32", *TINY_P2P,
                   "--steps", "4", dest="p2p")


def test_pix2pix_trains_with_input_output_target_previews(pix2pix_run: Path) -> None:
    grid = Image.open(pix2pix_run / "progress" / "step-0000004.png")
    assert grid.width < grid.height  # eight rows of input | output | target
    left, top = label_bands(grid, 2 * (3 * 34 + 2), 2 * (8 * 34 + 2))
    assert left == 0 and top > 0  # "input", "output", "target" over the columns
    rows = [json.loads(line) for line in (pix2pix_run / "metrics.jsonl").read_text().splitlines()]
    assert {"loss_d", "loss_g", "l1", "d_real", "d_fake"} <= set(rows[0])


def test_translate_one_image_and_a_folder(pix2pix_run: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "sketches"
    inputs.mkdir()
    for i in range(3):
        shape(i, (50, 70), True, True).save(inputs / f"s{i}.png")
    (inputs / "notes.txt").write_text("not an image")
    one = run_cli("translate", str(pix2pix_run), str(inputs / "s0.png"), "--out", "one")
    assert one.exit_code == 0, one.output
    out = Image.open("one/s0.png")
    assert out.size == (32, 32) and out.mode == "RGB"
    assert "fitted to the model's 32x32" in one.output
    assert label_bands(Image.open("one/sheet.png"), 2 * (2 * 34 + 2), 2 * (34 + 2))[1] > 0  # input | output
    many = run_cli("translate", str(pix2pix_run), str(inputs), "--out", "many")
    assert many.exit_code == 0, many.output
    assert sorted(p.name for p in Path("many").glob("s[0-9].png")) == ["s0.png", "s1.png", "s2.png"]
    globbed = run_cli("translate", str(pix2pix_run), str(inputs / "s[12].png"), "--out", "glob")
    assert globbed.exit_code == 0 and len(list(Path("glob").glob("s[0-9].png"))) == 2
    shape(0, (32, 32), True, True).save(inputs / "sheet.png")
    named = run_cli("translate", str(pix2pix_run), str(inputs / "sheet.png"), "--out", "named")
    assert named.exit_code == 0 and Path("named/sheet-2.png").is_file()  # the sheet keeps its name
    again = run_cli("translate", str(pix2pix_run), str(inputs), "--out", "many")
    assert again.exit_code == 2 and "already holds files" in again.output


def test_translate_takes_the_runs_best_checkpoint_when_asked(pix2pix_run: Path, pairs_folder: Path, trained) -> None:
    shape(1, (32, 32), True, True).save("in.png")
    refused = run_cli("translate", str(pix2pix_run), "in.png", "--checkpoint", "best")
    assert refused.exit_code == 1 and refused.output.count("\n") == 1
    assert "has no best.safetensors" in refused.output and "--eval-every" in refused.output
    earlier = trained("train", "pix2pix", "--data", f"paired:{pairs_folder}", "--size", "32", *TINY_P2P,
                      "--steps", "2", dest="early")
    shutil.copyfile(earlier / ckpt_io.FILENAME, pix2pix_run / "best.safetensors")  # as --eval-every keeps one
    best = run_cli("translate", str(pix2pix_run), "in.png", "--checkpoint", "best")
    assert best.exit_code == 0 and "(step 2)" in best.output, best.output
    latest = run_cli("translate", str(pix2pix_run), "in.png")
    assert latest.exit_code == 0 and "(step 4)" in latest.output
    # each into a folder of its own, named after the checkpoint
    assert Path("translations/run-best-AtoB/in.png").is_file() and Path("translations/run-AtoB/in.png").is_file()


def test_an_empty_folder_of_inputs_lists_the_formats_zoo_reads(pix2pix_run: Path) -> None:
    Path("notes").mkdir()
    Path("notes/readme.txt").write_text("no pictures here")
    result = run_cli("translate", str(pix2pix_run), "notes")
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "holds no images" in result.output and ".png" in result.output and ".jpg" in result.output


@pytest.mark.parametrize("args, message", [
    (["p2p", "missing.png"], "missing.png does not exist"),
    (["p2p", "nothing/*.png"], "matches no files"),
    (["p2p", "bad.png"], "is not a readable image"),
    (["p2p", "in.png", "--direction", "BtoA"], "pix2pix translates AtoB"),
])
def test_bad_translate_input_is_one_line(pix2pix_run: Path, args: list[str], message: str) -> None:
    Path("bad.png").write_text("text")
    shape(1, (32, 32), True, True).save("in.png")
    result = run_cli("translate", *args)
    assert result.exit_code == 2 and message in result.output and result.output.count("\n") == 1


def test_latent_commands_send_translators_to_translate(pix2pix_run: Path) -> None:
    shape(1, (32, 32), True, True).save("in.png")
    for args in (["sample", "p2p"], ["interpolate", "p2p"], ["invert", "p2p", "in.png"]):
        result = run_cli(*args)
        assert result.exit_code == 2 and "zoo translate p2p" in result.output, args


def test_translate_refuses_models_that_do_not_translate(mnist) -> None:
    trained = run_cli("train", "dcgan", "--data", "mnist", "--steps", "1", "--set", "g_width=4", "--set",
                      "d_width=4", "--batch-size", "8", "--no-wandb", "--out", "dc")
    assert trained.exit_code == 0
    shape(1, (32, 32), True, True).save("in.png")
    result = run_cli("translate", "dc", "in.png")
    assert result.exit_code == 2
    assert "dcgan does not translate images (models that do: cyclegan, pix2pix, srgan, srresnet)" in result.output


@pytest.mark.parametrize("model, data, message", [
    ("pix2pix", "mnist", "pix2pix translates images and trains on two-domain data (paired:...)"),
    ("dcgan", "paired:edges2fashion", "dcgan learns from one set of images"),
    ("pix2pix", "unpaired:fashion:sneaker,ankle-boot",
     "pix2pix needs paired data; unpaired:fashion:sneaker,ankle-boot is unpaired (models for it: cyclegan)"),
])
def test_models_refuse_the_wrong_kind_of_data(mnist, model: str, data: str, message: str) -> None:
    result = run_cli("train", model, "--data", data, "--subset", "0:64", "--steps", "1", "--no-wandb")
    assert result.exit_code == 2 and message in result.output


def test_cyclegan_trains_both_ways_and_translates_back(tmp_path: Path) -> None:
    data = f"unpaired:{cyclegan_layout(tmp_path / 'h2z')}"
    result = run_cli("train", "cyclegan", "--data", data, "--size", "32", *TINY_CYCLE, "--steps", "3", "--out", "cg")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in Path("cg/metrics.jsonl").read_text().splitlines()]
    assert {"loss_g", "loss_d_a", "loss_d_b", "cycle", "identity", "lr"} <= set(rows[0])
    grid = Image.open("cg/progress/step-0000003.png")
    assert grid.height > 4 * grid.width  # 16 rows (both cycles) of three
    # real | translated | cycled back, each row named by its way round (A -> B, B -> A); enlarged to fit
    left, top = label_bands(grid, 3 * (3 * 34 + 2), 3 * (16 * 34 + 2))
    assert left > 0 and top > 0
    back = run_cli("translate", "cg", str(tmp_path / "h2z" / "trainB"), "--direction", "btoa", "--out", "back")
    assert back.exit_code == 0, back.output
    assert len(list(Path("back").glob("[01][0-9].png"))) == 12 and "translated BtoA" in back.output


def test_cyclegan_learning_rate_holds_then_falls_to_zero() -> None:
    from zoo import DataSpec
    from zoo import config as config_io
    from zoo.plugins.cyclegan import CycleGAN, CycleGANConfig

    model = CycleGAN(config_io.from_dict(CycleGANConfig, {**CycleGAN.tiny_config, "lr": 1e-3}, source="test"),
                     DataSpec("d", 1, 32, 32, pairing="unpaired", target_channels=1))
    assert [model.learning_rate(f) for f in (0.0, 0.5)] == [1e-3, 1e-3]
    assert model.learning_rate(0.75) == pytest.approx(5e-4) and model.learning_rate(1.0) == 0.0


def test_the_image_pool_returns_old_images_half_the_time() -> None:
    from zoo.plugins.cyclegan import ImagePool

    torch.manual_seed(0)
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling up: the images themselves
    new = 100 + torch.arange(400.0).view(400, 1, 1, 1)
    out = torch.cat([pool.query(new[i:i + 1]) for i in range(400)])
    older = out < new  # an image generated before the one just queried
    assert 0.4 < older.float().mean().item() < 0.6 and len(pool.images) == 4


def test_cyclegan_trains_without_an_image_pool() -> None:
    from zoo import DataSpec, Progress
    from zoo import config as config_io
    from zoo.plugins.cyclegan import CycleGAN, CycleGANConfig

    torch.manual_seed(0)
    config = config_io.from_dict(CycleGANConfig, {**CycleGAN.tiny_config, "pool_size": 0}, source="test")
    model = CycleGAN(config, DataSpec("d", 1, 32, 32, pairing="unpaired", target_channels=1))
    model.optimizers = model.configure_optimizers()
    images = torch.randint(0, 256, (8, 1, 32, 32), dtype=torch.uint8)
    batches = TensorBatches(images, None, 4, seed=0, targets=images.flip(0), paired=False)
    before = [p.detach().clone() for p in model.discriminator_a.parameters()]
    metrics = model.train_step(batches, Progress(0, 10, 0))
    assert all(torch.isfinite(torch.as_tensor(v)) for v in metrics.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.discriminator_a.parameters(), strict=True))
    assert model.pool_a.images is None


def test_sizes_need_not_be_square_where_the_networks_allow(tmp_path: Path) -> None:
    data = f"paired:{two_folders(tmp_path / 'wide')}"
    assert prepare(data, size="32x64").images.shape == (8, 1, 32, 64)
    result = run_cli("train", "pix2pix", "--data", data, "--size", "32x64", *TINY_P2P, "--steps", "2",
                     "--out", "run-wide")
    assert result.exit_code == 0, result.output
    shape(0, (90, 40), True, True).save("tall.png")
    translated = run_cli("translate", "run-wide", "tall.png", "--out", "t")
    assert translated.exit_code == 0 and Image.open("t/tall.png").size == (64, 32)
    square_only = run_cli("train", "dcgan", "--data", f"folder:{tmp_path / 'wide'}", "--size", "32x64",
                          "--steps", "1", "--no-wandb")
    assert square_only.exit_code == 2 and "DCGAN needs square images" in square_only.output
    bad = run_cli("prep", data, "--size", "32x")
    assert bad.exit_code == 2 and "--size takes SIZE, HEIGHTxWIDTH or full" in bad.output


def test_a_resumed_cyclegan_matches_an_uninterrupted_one(tmp_path: Path) -> None:
    data = f"unpaired:{cyclegan_layout(tmp_path / 'h2z')}"
    common = ["train", "cyclegan", "--data", data, "--size", "32", *TINY_CYCLE]
    a, b = straight_and_resumed("cyclegan", common)
    assert torch.equal(a["extra"]["pool_a"], b["extra"]["pool_a"])  # the image pools came back too
