"""The named data sets (mnist, fashion-mnist, cifar10, svhn): where their files lie, and
how they are read.

Each named data set is searched for, in order: ``--data-dir``, ``$ZOO_DATA_DIR``, the user
cache, then places a system package installs to (Debian's ``dataset-fashion-mnist``), and
only then downloaded with torchvision's own downloader into the user cache. Files are read
by the small format readers below (IDX, the CIFAR binary records, MATLAB) -- never by
unpickling.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from zoo.data.sources.raw import RawData
from zoo.errors import ZooError
from zoo.records.paths import downloads_dir

DEBIAN_DATASETS = Path("/usr/share/datasets")


@dataclass(frozen=True)
class Dataset:
    """A named data set: its files, where they may lie, how to read and download them."""

    name: str
    class_names: tuple[str, ...]
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    subdirs: tuple[str, ...]
    read: Callable[[Path, Sequence[str]], tuple[torch.Tensor, torch.Tensor]]
    download: Callable[[Path], None]
    system_dirs: tuple[Path, ...] = ()


# -- readers ------------------------------------------------------------------------------------

def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format), gzipped or not, as a uint8 array."""
    with _open(path) as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ZooError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ZooError(f"{path} is truncated: expected {int(np.prod(dims))} values, found {body.size}")
    return body.reshape(dims)


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_idx_pair(folder: Path, stems: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    images = read_idx(_find(folder, stems[0]))  # type: ignore[arg-type]
    labels = read_idx(_find(folder, stems[1]))  # type: ignore[arg-type]
    if len(images) != len(labels):
        raise ZooError(f"{folder}: {len(images)} images but {len(labels)} labels")
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


CIFAR_RECORD = 1 + 3 * 32 * 32


def read_cifar_binary(folder: Path, names: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10's binary version: records of one label byte then 3 x 32 x 32 pixel bytes."""
    chunks = []
    for name in names:
        raw = np.fromfile(folder / name, dtype=np.uint8)
        if raw.size % CIFAR_RECORD:
            raise ZooError(f"{folder / name} is truncated (not a whole number of CIFAR records)")
        chunks.append(raw.reshape(-1, CIFAR_RECORD))
    records = np.concatenate(chunks)
    images = records[:, 1:].reshape(-1, 3, 32, 32)
    return torch.from_numpy(images.copy()), torch.from_numpy(records[:, 0].astype(np.int64))


def read_svhn(folder: Path, names: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """SVHN's cropped digits (.mat): X is 32 x 32 x 3 x N, y holds 1-10 with 10 meaning 0."""
    from scipy.io import loadmat

    try:
        mat = loadmat(folder / names[0])
    except Exception as exc:
        raise ZooError(f"{folder / names[0]} could not be read as a MATLAB file: {exc}") from None
    images = np.transpose(mat["X"], (3, 2, 0, 1))
    labels = mat["y"].reshape(-1).astype(np.int64) % 10
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels)


# -- downloads through torchvision ---------------------------------------------------------------

def _torchvision_mnist(cls_name: str) -> Callable[[Path], None]:
    def download(root: Path) -> None:
        import torchvision.datasets as tvd

        cls = getattr(tvd, cls_name)
        cls(str(root), train=True, download=True)
        cls(str(root), train=False, download=True)

    return download


def _download_cifar10(root: Path) -> None:
    from torchvision.datasets.utils import download_and_extract_archive

    # The binary version: the Python version of CIFAR-10 is pickled, and zoo never unpickles.
    download_and_extract_archive("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                                 str(root), md5="c32a1d4ab5d03f1284b67883e8d87530")


def _download_svhn(root: Path) -> None:
    import torchvision.datasets as tvd
    from torchvision.datasets.utils import download_url

    for split in ("train", "test"):
        url, filename, md5 = tvd.SVHN.split_list[split]
        download_url(url, str(root / "svhn"), filename, md5)


DIGITS = tuple(str(d) for d in range(10))
FASHION = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
           "bag", "ankle-boot")
CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MNIST_TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
MNIST_TEST = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

DATASETS: dict[str, Dataset] = {s.name: s for s in [
    Dataset("mnist", DIGITS, MNIST_TRAIN, MNIST_TEST, ("mnist", "MNIST/raw"),
           read_idx_pair, _torchvision_mnist("MNIST")),
    Dataset("fashion-mnist", FASHION, MNIST_TRAIN, MNIST_TEST, ("fashion-mnist", "FashionMNIST/raw"),
           read_idx_pair, _torchvision_mnist("FashionMNIST"),
           system_dirs=(DEBIAN_DATASETS / "fashion-mnist",)),
    Dataset("cifar10", CIFAR10, tuple(f"data_batch_{i}.bin" for i in range(1, 6)), ("test_batch.bin",),
           ("cifar-10-batches-bin", "cifar10/cifar-10-batches-bin"), read_cifar_binary, _download_cifar10),
    Dataset("svhn", DIGITS, ("train_32x32.mat",), ("test_32x32.mat",), ("svhn",), read_svhn, _download_svhn),
]}


# -- the search ----------------------------------------------------------------------------------

def candidate_dirs(source: Dataset, data_dir: Path | None, env_dir: Path | None) -> list[Path]:
    """The folders to look in, in order of precedence."""
    dirs: list[Path] = []
    if data_dir is not None:
        dirs.append(data_dir)  # the user may point straight at the files
        dirs += [data_dir / sub for sub in source.subdirs]
    if env_dir is not None:
        dirs += [env_dir / sub for sub in source.subdirs]
    dirs += [downloads_dir() / sub for sub in source.subdirs]
    dirs += list(source.system_dirs)
    return dirs


def _has(folder: Path, names: Sequence[str], source: Dataset) -> bool:
    if source.read is read_idx_pair:
        return all(_find(folder, n) is not None for n in names)
    return all((folder / n).is_file() for n in names)


def locate(source: Dataset, data_dir: Path | None, env_dir: Path | None) -> tuple[Path | None, Path | None]:
    """The folders holding a named data set's training and test files, as found (or None)."""
    dirs = candidate_dirs(source, data_dir, env_dir)
    train = next((d for d in dirs if _has(d, source.train_files, source)), None)
    test = next((d for d in dirs if _has(d, source.test_files, source)), None)
    return train, test


def fingerprint(name: str, data_dir: Path | None, env_dir: Path | None) -> str | None:
    """A short hash of the files a named data set would be read from (their folders, names,
    sizes and times), or None when none are found: the prepared cache is keyed by it, so a
    cache built from MNIST's 10k test split is not reused once the 60k training files appear."""
    source = DATASETS[name]
    found = []
    splits = zip(locate(source, data_dir, env_dir), (source.train_files, source.test_files), strict=True)
    for folder, names in splits:
        if folder is None:
            continue
        for stem in names:
            path = _find(folder, stem) if source.read is read_idx_pair else folder / stem
            assert path is not None  # locate() found every file
            stat = path.stat()
            found.append(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(found).encode()).hexdigest()[:10] if found else None


def load_named(name: str, data_dir: Path | None, env_dir: Path | None, say: Callable[[str], None]) -> RawData:
    """Find (or download) a named data set and read its training split, with its test split
    as the held-out part. With only the test split present (this project's offline MNIST),
    that is what there is to train on; prep then holds a seeded part of it out."""
    source = DATASETS[name]
    train, test = locate(source, data_dir, env_dir)
    if train is None and test is None:
        download(name, data_dir, env_dir, say)
        train, test = locate(source, data_dir, env_dir)
        if train is None:
            raise ZooError(f"{name} was downloaded into {downloads_dir()} but its files were not where expected")
    names = list(source.class_names)
    if train is None:
        assert test is not None
        images, labels = source.read(test, source.test_files)
        note = (f"only the test split of {name} was found ({len(images):,} images in {test}); "
                "training on it")
        say(note)
        return RawData(images, labels, names, str(test), "test", [note])
    images, labels = source.read(train, source.train_files)
    heldout = None
    if test is not None:
        test_images, test_labels = source.read(test, source.test_files)
        heldout = RawData(test_images, test_labels, names, str(test), "test")
    return RawData(images, labels, names, str(train), heldout=heldout)


def download(name: str, data_dir: Path | None, env_dir: Path | None, say: Callable[[str], None]) -> None:
    """Fetch a named data set with torchvision's downloader into the user cache."""
    source = DATASETS[name]
    root = downloads_dir()
    say(f"{name} not found locally; downloading into {root}")
    try:
        source.download(root)
    except Exception as exc:
        searched = "\n  ".join(str(d) for d in candidate_dirs(source, data_dir, env_dir))
        wanted = ", ".join(source.train_files)
        raise ZooError(
            f"{name} could not be found or downloaded ({type(exc).__name__}: {exc}). Searched:\n  "
            f"{searched}\nPut the files ({wanted}, optionally .gz) in one of these folders, "
            "or pass --data-dir DIR / set ZOO_DATA_DIR"
        ) from None
