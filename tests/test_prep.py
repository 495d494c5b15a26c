from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import zoo
from zoo.data.sources import named as datasets
from zoo.pipelines.prep import prepare

from .conftest import run_cli


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def fake_mnist(folder: Path, n: int = 20) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    images = np.arange(n * 28 * 28).reshape(n, 28, 28) % 256
    write_idx(folder / "train-images-idx3-ubyte.gz", images)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return folder


def test_offline_mnist_uses_the_test_split_and_holds_a_seeded_tenth_out(mnist) -> None:
    assert len(mnist) == 9_000 and mnist.meta["split"] == "test"
    assert mnist.images.dtype == torch.uint8 and mnist.images.shape == (9_000, 1, 28, 28)
    assert sum(mnist.meta["class_counts"]) == 9_000
    assert any("only the test split" in note for note in mnist.meta["notes"])
    assert any("held out 1,000 of 10,000 images (10%, seed 0)" in note for note in mnist.meta["notes"])
    assert mnist.spec.class_names == tuple("0123456789")
    heldout = prepare("mnist", split="heldout")
    assert len(heldout) == 1_000 and heldout.meta["split"] == "heldout"
    from zoo.data.sources.named import read_idx_pair

    everything, labels = read_idx_pair(Path(os.environ["ZOO_DATA_DIR"]) / "mnist",
                                       ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))
    together = torch.cat([mnist.images, heldout.images]).flatten(1)
    assert len({bytes(row.numpy()) for row in together}) == len({bytes(r.numpy()) for r in everything.flatten(1)})
    assert torch.bincount(torch.cat([mnist.labels, heldout.labels])).tolist() == torch.bincount(labels).tolist()
    assert set(heldout.labels.tolist()) == set(range(10)), "a random tenth mixes every class"


def test_exploration_pictures_lie_beside_the_prepared_file(mnist) -> None:
    names = {p.name for p in mnist.path.iterdir()}
    assert {"data.safetensors", "meta.json", "stats.png", "histogram.png", "class_counts.png",
            "samples.png"} <= names
    from PIL import Image

    assert Image.open(mnist.path / "samples.png").size[0] > 200


def test_prepared_data_is_cached_and_not_read_again(mnist, capsys) -> None:
    stamp = (mnist.path / "data.safetensors").stat().st_mtime_ns
    again = prepare("mnist")
    assert again.path == mnist.path and (again.path / "data.safetensors").stat().st_mtime_ns == stamp
    assert "only the test split" not in capsys.readouterr().err  # said once, at preparation


def test_resize_and_channels(mnist) -> None:
    rgb = prepare("mnist", size=32, channels=3)
    assert rgb.images.shape == (9_000, 3, 32, 32) and rgb.path != mnist.path
    assert torch.equal(rgb.images[:, 0], rgb.images[:, 2])


def test_fashion_mnist_comes_from_debians_package() -> None:
    debian = Path("/usr/share/datasets/fashion-mnist")
    if not debian.is_dir():
        pytest.fail("Debian's Fashion-MNIST is not installed here: apt-get install dataset-fashion-mnist",
                    pytrace=False)
    data = prepare("fashion-mnist")
    assert len(data) == 60_000 and data.meta["origin"] == str(debian)
    assert data.spec.class_names[7] == "sneaker"


def test_data_dir_comes_before_zoo_data_dir(tmp_path: Path) -> None:
    data = prepare("mnist", data_dir=fake_mnist(tmp_path / "mine"))
    assert len(data) == 20 and data.meta["split"] == "train"
    assert data.meta["origin"] == str(tmp_path / "mine")


def test_offline_and_not_found_lists_the_places_searched(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "empty"))

    def offline(root: Path) -> None:
        raise OSError("network is unreachable")

    source = datasets.DATASETS["svhn"]
    monkeypatch.setitem(datasets.DATASETS, "svhn", datasets.Dataset(
        **{**source.__dict__, "download": offline}))
    with pytest.raises(zoo.ZooError) as err:
        prepare("svhn")
    message = str(err.value)
    assert "could not be found or downloaded" in message and "network is unreachable" in message
    assert str(tmp_path / "empty" / "svhn") in message and "--data-dir" in message


def test_cifar10_binary_records_are_read(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        records = rng.integers(0, 256, (4, datasets.CIFAR_RECORD), dtype=np.uint8)
        records[:, 0] = [3, 1, 4, 1]
        records[0, 1] = 200  # red channel, top-left pixel of the first image
        records.tofile(folder / name)
    data = prepare("cifar10", data_dir=tmp_path)
    assert data.images.shape == (20, 3, 32, 32) and data.labels[:4].tolist() == [3, 1, 4, 1]
    assert data.images[0, 0, 0, 0] == 200 and data.spec.class_names[3] == "cat"


def test_svhn_mat_files_are_read_with_10_meaning_0(tmp_path: Path) -> None:
    from scipy.io import savemat

    folder = tmp_path / "svhn"
    folder.mkdir()
    x = np.zeros((32, 32, 3, 3), dtype=np.uint8)
    x[0, 1, 2, 1] = 99  # row 0, column 1, blue, second image
    savemat(folder / "train_32x32.mat", {"X": x, "y": np.array([[10], [1], [9]])})
    data = prepare("svhn", data_dir=tmp_path)
    assert data.labels.tolist() == [0, 1, 9] and data.images[1, 2, 0, 1] == 99


def test_a_labelled_folder_of_mixed_images(image_folder: Path) -> None:
    data = prepare(f"folder:{image_folder}", size=16)
    assert data.images.shape == (24, 3, 16, 16)
    assert data.spec.class_names == ("circle", "square") and data.meta["class_counts"] == [12, 12]


def test_a_flat_grayscale_folder_is_unlabelled_and_one_channel(tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "flat"
    folder.mkdir()
    for i in range(5):
        Image.new("L", (20 + i, 30), 40 * i).save(folder / f"{i}.png")
    data = prepare(f"folder:{folder}", size=12)
    assert data.images.shape == (5, 1, 12, 12) and data.labels is None and not data.spec.labelled


def test_unreadable_files_are_skipped_and_counted(image_folder: Path) -> None:
    (image_folder / "circle" / "broken.png").write_bytes(b"not an image")
    (image_folder / "square" / "notes.txt").write_text("hello")
    data = prepare(f"folder:{image_folder}", size=16)
    assert len(data) == 24
    assert any("skipped 1 unreadable" in n and "broken.png" in n for n in data.meta["notes"])
    assert any("1 file(s) that are not images" in n and "notes.txt" in n for n in data.meta["notes"])


def test_a_folder_with_nothing_readable_fails(tmp_path: Path) -> None:
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"garbage")
    with pytest.raises(zoo.ZooError, match="none of the 1 files .* could be read"):
        prepare(f"folder:{folder}")
    prepared = Path(os.environ["ZOO_CACHE_DIR"]) / "prepared"
    assert not list(prepared.glob("folder-junk-*.partial"))  # a refusal keeps nothing to resume


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "holds no files"),
    (lambda p: (p / "file.png").write_bytes(b"x") and p / "file.png", "is not a folder"),
])
def test_bad_folder_paths(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(zoo.UsageError, match=message):
        prepare(f"folder:{make(tmp_path)}")


def test_unknown_data_set_suggests_a_name() -> None:
    with pytest.raises(zoo.UsageError, match="did you mean mnist"):
        prepare("mnst")


@pytest.mark.parametrize("kwargs, message", [
    ({"size": 4}, "--size must be between"),
    ({"channels": 2}, "--channels must be 1 or 3"),
    ({"data_dir": Path("/nonexistent")}, "is not a folder"),
])
def test_bad_prep_options(kwargs, message: str) -> None:
    with pytest.raises(zoo.UsageError, match=message):
        prepare("mnist", **kwargs)


def test_prep_command_prints_a_summary(mnist) -> None:
    result = run_cli("prep", "mnist")
    assert result.exit_code == 0
    assert "10,000" in result.output and "stats.png" in result.output and "only the test split" in result.output
    meta = json.loads((mnist.path / "meta.json").read_text())
    assert meta["format"] == "zoo-prepared/3"


def test_fashion_mnist_holds_out_its_own_test_split(fashion) -> None:
    train = prepare("fashion-mnist")
    heldout = prepare("fashion-mnist", split="heldout")
    assert (len(train), len(heldout)) == (60_000, 10_000)
    assert heldout.meta["split"] == "test" and train.meta["heldout"]["split"] == "test"


def test_the_cache_is_keyed_by_the_files_it_was_built_from(tmp_path: Path) -> None:
    """A cache built from MNIST's 10k test split must not be reused once the 60k training
    files appear."""
    shared = Path(os.environ["ZOO_DATA_DIR"]) / "mnist"
    data = tmp_path / "data" / "mnist"
    data.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        source = next(shared.glob(f"{name}*"))
        (data / source.name).write_bytes(source.read_bytes())
    only_test = prepare("mnist", data_dir=tmp_path / "data", subset="0:100")
    assert only_test.meta["split"] == "test"
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):  # "the 60k" (the 10k again will do)
        source = next(data.glob(f"{name.replace('train', 't10k')}*"))
        (data / source.name.replace("t10k", "train")).write_bytes(source.read_bytes())
    with_train = prepare("mnist", data_dir=tmp_path / "data", subset="0:100")
    assert with_train.path != only_test.path and with_train.meta["split"] == "train"
    assert with_train.meta["heldout"]["split"] == "test"


def test_a_small_folder_has_no_held_out_part_and_says_so(image_folder: Path) -> None:
    data = prepare(f"folder:{image_folder}", size=32)
    assert len(data) == 24 and data.meta["heldout"] is None
    with pytest.raises(zoo.UsageError, match="has no held-out images"):
        prepare(f"folder:{image_folder}", size=32, split="heldout")


def test_a_second_prep_of_the_same_data_waits_for_the_first(image_folder: Path, tmp_path: Path,
                                                           monkeypatch) -> None:
    import io
    import threading
    import time

    from filelock import FileLock
    from rich.console import Console

    from zoo.pipelines import prep

    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))  # its own: the session's has no 16 px shapes
    data = f"folder:{image_folder}"
    folder = prepare(data, size=16).path
    other = FileLock(folder.with_name(f".{folder.name}.lock"))  # another process preparing it now
    held = threading.Event()
    built_while_held: list[bool] = []
    build = prep._build

    def spy(*args, **kwargs):
        built_while_held.append(held.is_set())
        return build(*args, **kwargs)

    monkeypatch.setattr(prep, "_build", spy)
    said = io.StringIO()
    done: list = []
    second = threading.Thread(target=lambda: done.append(prepare(data, size=16, force=True,
                                                                  console=Console(file=said))))
    other.acquire()
    held.set()
    try:
        second.start()
        deadline = time.monotonic() + 60
        while "waiting for another process preparing" not in said.getvalue() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "waiting for another process preparing" in said.getvalue()
        second.join(1)  # were it not waiting, it would be building within milliseconds
        assert second.is_alive() and not built_while_held
    finally:
        held.clear()
        other.release()
        second.join(60)
    assert built_while_held == [False] and len(done[0]) == 24  # built once, after the other let go


def test_zoo_imports_and_locks_where_there_is_no_fcntl(tmp_path: Path) -> None:
    """fcntl is POSIX's: on Windows there is none, and zoo must import and lock there all the same."""
    import subprocess
    import sys

    code = """if True:
        import sys
        sys.modules["fcntl"] = None  # as on Windows: importing it fails
        import zoo, zoo.records.runs, zoo.pipelines.prep, zoo.pipelines.train
        from pathlib import Path
        from zoo.errors import UsageError
        run = Path(sys.argv[1])
        held = zoo.records.runs.RunLock(run).acquire()
        try:
            zoo.records.runs.RunLock(run).acquire()
        except UsageError as refused:
            print(refused)
        print("training:", zoo.records.runs.is_training(run))
        held.release()
        print("training:", zoo.records.runs.is_training(run))
    """
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "is being trained right now" in result.stdout
    assert "training: True\ntraining: False" in result.stdout


# -- Stacked MNIST ---------------------------------------------------------------------------------

def test_stacked_mnist_is_three_digits_and_holds_out_only_held_out_digits(mnist) -> None:
    from rich.console import Console

    from zoo.data import sources
    from zoo.data.sources import stacked
    from zoo.pipelines.prep import hold_out

    reading = sources.Reading(None, None, None, Console(quiet=True))
    raw = sources.find("stacked-mnist").read("stacked-mnist", reading)
    digits = hold_out(datasets.load_named("mnist", None, reading.env_dir, reading.say))
    assert digits.heldout is not None and digits.labels is not None and digits.heldout.labels is not None
    assert raw.images.shape == (stacked.TRAIN_COUNT, 3, 28, 28) and len(raw.class_names) == 1000
    assert raw.heldout is not None and raw.heldout.images.shape == (stacked.HELDOUT_COUNT, 3, 28, 28)
    train_digits = {bytes(d.numpy()): int(y) for d, y in zip(digits.images, digits.labels, strict=True)}
    held_digits = {bytes(d.numpy()): int(y) for d, y in zip(digits.heldout.images, digits.heldout.labels, strict=True)}
    for part, allowed, other in ((raw, train_digits, held_digits), (raw.heldout, held_digits, train_digits)):
        assert part.labels is not None
        for image, label in zip(part.images[:300], part.labels[:300], strict=True):
            channels = [bytes(image[c:c + 1].numpy()) for c in range(3)]
            assert all(c in allowed and c not in other for c in channels)  # each channel a digit of its own split
            assert int(label) == 100 * allowed[channels[0]] + 10 * allowed[channels[1]] + allowed[channels[2]]
    # 1,000 modes, drawn evenly: every one of them present, none more than twice as common as average
    counts = torch.bincount(raw.labels, minlength=1000)
    assert int((counts > 0).sum()) == 1000 and int(counts.max()) < 2 * stacked.TRAIN_COUNT / 1000
    assert torch.equal(stacked.stack(digits, 50, stacked.SEED).images, raw.images[:50])  # seeded: every prep alike


def test_zoo_prep_stacked_mnist_summarises_its_thousand_classes(mnist, monkeypatch) -> None:
    from zoo.data.sources import stacked

    monkeypatch.setattr(stacked, "TRAIN_COUNT", 2000)
    monkeypatch.setattr(stacked, "HELDOUT_COUNT", 300)
    result = run_cli("prep", "stacked-mnist")  # prepared apart from the whole set: its counts name it
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "images │ 2,000" in text and "held out │ 300 images for evaluation" in text
    assert "shape │ 3 x 28 x 28" in text and "1,000 classes, 000 to 999" in text and "held-out digits" in text
