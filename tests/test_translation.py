"""Image-to-image: paired and unpaired data, pix2pix, CycleGAN and ``zoo translate``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from zoo.data import TensorBatches
from zoo.pipelines.pairs import edge_map
from zoo.pipelines.prep import prepare

from .conftest import run_cli

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

def test_edges2fashion_pairs_each_item_with_its_edges() -> None:
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


def test_two_classes_of_a_labelled_set_make_two_domains() -> None:
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
    (lambda r: (r.mkdir(), shape(1, (40, 40), True, True).save(r / "x.png")), "paired:{}",
     "not two images side by side"),
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
def test_bad_class_domains(data: str, message: str) -> None:
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


# -- training and translating -------------------------------------------------------------------

@pytest.fixture
def pix2pix_run(tmp_path: Path) -> Path:
    data = f"paired:{side_by_side(tmp_path / 'pairs')}"
    result = run_cli("train", "pix2pix", "--data", data, "--size", "32", *TINY_P2P, "--steps", "4", "--out", "p2p")
    assert result.exit_code == 0, result.output
    return Path("p2p")


def test_pix2pix_trains_with_input_output_target_previews(pix2pix_run: Path) -> None:
    grid = Image.open(pix2pix_run / "progress" / "epoch-0002.png")
    assert grid.width < grid.height  # eight rows of input | output | target
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
    assert Path("one/sheet.png").is_file() and "fitted to the model's 32x32" in one.output
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
    assert "dcgan does not translate images (models that do: cyclegan, pix2pix)" in result.output


@pytest.mark.parametrize("model, data, message", [
    ("pix2pix", "mnist", "pix2pix translates images and trains on two-domain data (paired:...)"),
    ("dcgan", "paired:edges2fashion", "dcgan learns from one set of images"),
    ("pix2pix", "unpaired:fashion:sneaker,ankle-boot", "pix2pix needs paired data; "
                                                      "unpaired:fashion:sneaker,ankle-boot is unpaired (models for it: cyclegan)"),
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
    grid = Image.open("cg/progress/epoch-0002.png")
    assert grid.height > 4 * grid.width  # 16 rows (both cycles) of three
    back = run_cli("translate", "cg", str(tmp_path / "h2z" / "trainB"), "--direction", "btoa", "--out", "back")
    assert back.exit_code == 0, back.output
    assert len(list(Path("back").glob("[01][0-9].png"))) == 12 and "translated BtoA" in back.output


def test_cyclegan_learning_rate_holds_then_falls_to_zero() -> None:
    from zoo import config as config_io
    from zoo import DataSpec
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


def test_sizes_need_not_be_square_where_the_networks_allow(tmp_path: Path) -> None:
    data = f"paired:{two_folders(tmp_path / 'wide')}"
    assert prepare(data, size="32x64").images.shape == (8, 1, 32, 64)
    result = run_cli("train", "pix2pix", "--data", data, "--size", "32x64", *TINY_P2P, "--steps", "2", "--out", "run-wide")
    assert result.exit_code == 0, result.output
    shape(0, (90, 40), True, True).save("tall.png")
    translated = run_cli("translate", "run-wide", "tall.png", "--out", "t")
    assert translated.exit_code == 0 and Image.open("t/tall.png").size == (64, 32)
    square_only = run_cli("train", "dcgan", "--data", f"folder:{tmp_path / 'wide'}", "--size", "32x64",
                          "--steps", "1", "--no-wandb")
    assert square_only.exit_code == 2 and "DCGAN needs square images" in square_only.output
    bad = run_cli("prep", data, "--size", "32x")
    assert bad.exit_code == 2 and "--size takes SIZE or HEIGHTxWIDTH" in bad.output


def test_a_resumed_cyclegan_matches_an_uninterrupted_one(tmp_path: Path) -> None:
    from zoo import checkpoint as ckpt_io

    data = f"unpaired:{cyclegan_layout(tmp_path / 'h2z')}"
    common = ["train", "cyclegan", "--data", data, "--size", "32", *TINY_CYCLE]
    assert run_cli(*common, "--steps", "4", "--out", "straight").exit_code == 0
    assert run_cli(*common, "--steps", "2", "--out", "halves").exit_code == 0
    resumed = run_cli("train", "cyclegan", "--resume", "halves", "--steps", "4", "--no-wandb")
    assert resumed.exit_code == 0, resumed.output
    a = ckpt_io.load(Path("straight") / ckpt_io.FILENAME).state
    b = ckpt_io.load(Path("halves") / ckpt_io.FILENAME).state
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert torch.equal(a["extra"]["pool_a"], b["extra"]["pool_a"])  # the image pools came back too
