"""Issue 3: the conditional GAN, class selection on the command line, and the --classes filter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

import zoo
from zoo.pipelines.prep import prepare
from zoo.records import checkpoint as ckpt_io

from .conftest import make_image_folder, run_cli
from .sheets import label_bands

TINY_CGAN = ["--set", "g_width=4", "--set", "d_width=4", "--set", "latent_dim=8", "--set", "embed_dim=4"]


def train_cgan(*args: str, out: str = "cg"):
    result = run_cli("train", "cgan", "--no-wandb", *TINY_CGAN, "--batch-size", "16", "--out", out, *args)
    assert result.exit_code == 0, result.output
    return Path(out)


@pytest.fixture
def digits_run(mnist, trained) -> Path:
    return trained("train", "cgan", *TINY_CGAN, "--batch-size", "16", "--data", "mnist", "--subset", "0:64",
                   "--steps", "2", dest="cg")


@pytest.fixture
def shapes_run(tmp_path: Path) -> Path:
    folder = make_image_folder(tmp_path / "shapes", per_class=8)
    return train_cgan("--data", f"folder:{folder}", "--size", "28", "--steps", "1", out="shapes-run")


def test_only_sevens(digits_run: Path) -> None:
    result = run_cli("sample", str(digits_run), "--digit", "7", "--n", "6", "--out", "sevens")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in Path("sevens").iterdir())
    assert names == [f"7-{i:04d}.png" for i in range(6)] + ["grid.png"]


def test_without_a_class_a_grid_with_a_row_per_class(digits_run: Path) -> None:
    assert run_cli("sample", str(digits_run), "--n", "30", "--out", "all").exit_code == 0
    files = [p.name for p in Path("all").glob("*-*.png")]
    assert sorted({name.split("-")[0] for name in files}) == list("0123456789")
    assert sum(name.startswith("4-") for name in files) == 3
    # 3 columns, 10 rows, each named by its class on the left; drawn at 56 px to be read beside them
    assert label_bands(Image.open("all/grid.png"), 2 * (3 * 30 + 2), 2 * (10 * 30 + 2))[0] > 0


def test_the_default_folder_carries_the_class(digits_run: Path) -> None:
    sevens = run_cli("sample", str(digits_run), "--digit", "7", "--n", "3")
    assert sevens.exit_code == 0, sevens.output
    every = run_cli("sample", str(digits_run), "--n", "20")  # no longer refused: the sevens are elsewhere
    assert every.exit_code == 0, every.output
    assert sorted(p.name for p in Path("samples").iterdir()) == ["run-7-seed0", "run-seed0"]
    assert len(list(Path("samples/run-7-seed0").glob("7-*.png"))) == 3


def test_the_class_changes_the_image_and_the_seed_does_not_leak(digits_run: Path) -> None:
    for digit in ("1", "8"):
        assert run_cli("sample", str(digits_run), "--digit", digit, "--n", "2", "--out", digit).exit_code == 0
    one = Image.open("1/1-0000.png").tobytes()
    eight = Image.open("8/8-0000.png").tobytes()
    assert one != eight


def test_the_training_preview_has_a_row_per_class(digits_run: Path) -> None:
    preview = Image.open(sorted((digits_run / "progress").glob("step-*.png"))[-1])
    left, top = label_bands(preview, 2 * (8 * 30 + 2), 2 * (10 * 30 + 2))
    assert left > 0 and top == 0  # each row named by its class


def test_class_names_work_and_bad_ones_list_the_valid_ones(shapes_run: Path) -> None:
    assert run_cli("sample", str(shapes_run), "--class", "square", "--n", "2", "--out", "sq").exit_code == 0
    assert sorted(p.name for p in Path("sq").glob("square-*.png")) == ["square-0000.png", "square-0001.png"]
    bad = run_cli("sample", str(shapes_run), "--class", "triangle")
    assert bad.exit_code == 2 and "its classes are: 0 circle, 1 square" in bad.output
    digit = run_cli("sample", str(shapes_run), "--digit", "1")
    assert digit.exit_code == 2 and "--digit is for digit data sets" in digit.output


@pytest.mark.parametrize("args, message", [
    (["--digit", "12"], "its classes are: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9"),
    (["--class", "7", "--digit", "7"], "not both"),
])
def test_bad_classes(digits_run: Path, args: list[str], message: str) -> None:
    result = run_cli("sample", str(digits_run), *args)
    assert result.exit_code == 2 and message in result.output


def test_digit_on_an_unconditional_model_names_the_conditional_ones_and_suggests_classes(mnist) -> None:
    trained = run_cli("train", "dcgan", "--no-wandb", "--data", "mnist", "--subset", "0:64", "--steps", "1",
                      "--set", "g_width=4", "--set", "d_width=4", "-b", "16")
    assert trained.exit_code == 0
    result = run_cli("sample", "dcgan", "--digit", "7")
    assert result.exit_code == 2
    assert "dcgan is not class-conditional" in result.output and "cgan" in result.output
    assert "--classes 7" in result.output


def test_a_conditional_model_on_unlabelled_data_explains_the_layout(tmp_path: Path) -> None:
    folder = tmp_path / "flat"
    folder.mkdir()
    for i in range(4):
        Image.new("L", (28, 28), 60 * i).save(folder / f"{i}.png")
    result = run_cli("train", "cgan", "--no-wandb", "--data", f"folder:{folder}", "--steps", "1")
    assert result.exit_code == 2 and "needs labelled data" in result.output and "sub-folder" in result.output


def test_acgan_variant_trains_its_classifier(mnist) -> None:
    run = train_cgan("--data", "mnist", "--subset", "0:64", "--steps", "2", "--set", "conditioning=acgan")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert "class_acc_real" in rows[-1]
    assert ckpt_io.read_meta(run / ckpt_io.FILENAME)["config"]["conditioning"] == "acgan"


def test_classes_filter_keeps_and_relabels_and_is_cached_apart(mnist) -> None:
    sevens = prepare("mnist", classes="7")
    count = int((mnist.labels == 7).sum())
    assert len(sevens) == count and sevens.spec.class_names == ("7",)
    assert sevens.labels.unique().tolist() == [0] and sevens.path != mnist.path
    both = prepare("mnist", classes="7,1")
    assert both.spec.class_names == ("1", "7") and len(both) == count + int((mnist.labels == 1).sum())
    assert torch.equal(sevens.images, mnist.images[mnist.labels == 7])
    held = prepare("mnist", classes="7", split="heldout")
    assert held.labels.unique().tolist() == [0] and len(held) + count == 1028  # the held-out sevens too


def test_fashion_classes_by_name(fashion) -> None:
    data = prepare("fashion-mnist", classes="sneaker,sandal", subset="0:3000")
    assert data.spec.class_names == ("sandal", "sneaker")
    assert data.meta["selection"] == {"classes": "sneaker,sandal", "subset": "0:3000", "direction": None}


def test_subset_keeps_the_order(mnist) -> None:
    part = prepare("mnist", subset="100:200")
    assert torch.equal(part.images, mnist.images[100:200])
    assert len(prepare("mnist", subset="8990:")) == 10
    assert len(prepare("mnist", subset="0:100", split="heldout")) == 1000  # the held-out part stays whole
    every_other = prepare("mnist", subset="1:200:2")
    assert torch.equal(every_other.images, mnist.images[1:200:2])
    assert every_other.meta["selection"]["subset"] == "1:200:2"


def test_the_selection_is_recorded_in_the_checkpoint_and_kept_on_resume(mnist) -> None:
    result = run_cli("train", "dcgan", "--no-wandb", "--data", "mnist", "--classes", "7", "--steps", "1",
                     "--set", "g_width=4", "--set", "d_width=4", "-b", "16", "--out", "r7")
    assert result.exit_code == 0, result.output
    meta = ckpt_io.read_meta(Path("r7") / ckpt_io.FILENAME)
    assert meta["train"]["data"]["classes"] == "7" and meta["data"]["class_names"] == ["7"]
    refused = run_cli("train", "dcgan", "--no-wandb", "--resume", "r7", "--classes", "1")
    assert refused.exit_code == 2 and "--classes 7" in refused.output
    resumed = run_cli("train", "dcgan", "--no-wandb", "--resume", "r7", "--steps", "2")
    assert resumed.exit_code == 0, resumed.output
    # 1,028 sevens are a small data set: augmentation came on, and the resumed run keeps it.
    assert ckpt_io.read_meta(Path("r7") / ckpt_io.FILENAME)["config"]["augment"] == "translation,cutout"
    assert "small data set" not in resumed.output


@pytest.mark.parametrize("kwargs, error, message", [
    ({"classes": "12"}, zoo.UsageError, "mnist has no class '12'; its classes are: 0, 1"),
    ({"subset": "10"}, zoo.UsageError, "--subset takes START:STOP"),
    ({"subset": "0::0"}, zoo.UsageError, "with a positive step"),
    ({"subset": "0:1:2:3"}, zoo.UsageError, "--subset takes START:STOP"),
    ({"subset": "5:5"}, zoo.UsageError, "the selection left no images"),
])
def test_bad_selections(mnist, kwargs, error, message: str) -> None:
    with pytest.raises(error, match=message):
        prepare("mnist", **kwargs)


def test_classes_on_unlabelled_data_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "flat"
    folder.mkdir()
    Image.new("L", (28, 28)).save(folder / "a.png")
    with pytest.raises(zoo.UsageError, match="--classes needs labelled data"):
        prepare(f"folder:{folder}", classes="1")


@pytest.mark.parametrize("name", ["dcgan", "cgan"])
@pytest.mark.parametrize("channels, size", [(1, 28), (3, 32), (3, 64), (1, 16)])
def test_the_convolutional_models_work_at_every_size(name: str, channels: int, size: int) -> None:
    from zoo import config as config_io
    from zoo.data.memory import TensorBatches
    from zoo.registry import get

    cls = get(name)
    spec = zoo.DataSpec("x", channels, size, size, ("a", "b", "c"))
    model = cls(config_io.from_dict(cls.Config, cls.tiny_config, source="test"), spec)
    model.optimizers = model.configure_optimizers()
    images = torch.randint(0, 256, (16, channels, size, size), dtype=torch.uint8)
    metrics = model.train_step(TensorBatches(images, torch.arange(16) % 3, 8, 0), zoo.Progress(0, 1, 0))
    assert all(torch.isfinite(torch.as_tensor(float(v))) for v in metrics.values())
    labels = torch.tensor([0, 2]) if model.has(zoo.Capability.CLASS_CONDITIONAL) else None
    assert model.sample(2, conditions={"class": labels}).shape == (2, channels, size, size)


def test_sizes_the_networks_cannot_take_are_refused_with_what_fits() -> None:
    from zoo.registry import get

    cls = get("cgan")
    with pytest.raises(zoo.UsageError, match="prep it with --size 32 or --size 64"):
        cls.check_data(cls.Config(), zoo.DataSpec("x", 3, 48, 48, ("a", "b")))


@pytest.mark.parametrize("conditioning", ["concat", "projection", "acgan"])
def test_every_conditioning_trains_and_the_label_reaches_both_networks(conditioning: str) -> None:
    from zoo import config as config_io
    from zoo.data.memory import TensorBatches
    from zoo.registry import get

    cls = get("cgan")
    config = config_io.from_dict(cls.Config, {**cls.tiny_config, "conditioning": conditioning}, source="test")
    spec = zoo.DataSpec("x", 1, 28, 28, ("a", "b", "c"))
    torch.manual_seed(0)
    model = cls(config, spec)
    model.optimizers = model.configure_optimizers()
    images = torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8)
    model.train_step(TensorBatches(images, torch.arange(16) % 3, 8, 0), zoo.Progress(0, 1, 0))
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad(), zoo.evaluating(model):
        a, _ = model.discriminator(x, torch.zeros(4, dtype=torch.long))
        b, _ = model.discriminator(x, torch.full((4,), 2))
    if conditioning != "acgan":  # ACGAN's real/fake head is unconditional by design
        assert not torch.equal(a, b), "the discriminator must see the label"
