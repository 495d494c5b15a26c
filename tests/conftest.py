"""Shared test set-up: isolated cache and runs folders, offline data, W&B off unless asked."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from zoo import registry

REPO = Path(__file__).resolve().parents[1]


def benchmark_module(name: str) -> Any:
    """benchmarks/NAME.py, loaded from its file (benchmarks/ is scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_configure(config: pytest.Config) -> None:
    # Tests never touch the user's cache, runs or W&B account.
    os.environ.setdefault("WANDB_MODE", "disabled")
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ["COLUMNS"] = "250"  # rich folds table cells at 80 columns; keep messages whole
    if "ZOO_DATA_DIR" not in os.environ and SHARED_DATA.is_dir():
        os.environ["ZOO_DATA_DIR"] = str(SHARED_DATA)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("zoo-cache")


@pytest.fixture(autouse=True)
def isolated(cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own runs folder and working directory; the data cache is shared."""
    monkeypatch.setenv("ZOO_CACHE_DIR", str(cache_dir))
    monkeypatch.setenv("ZOO_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def small_karras(monkeypatch: pytest.MonkeyPatch) -> None:
    """Karras et al.'s figures (SWD, MS-SSIM), which take their own subsets, on 64 images and
    64 pairs: for the tests of eval that are not about them (they are most of its time)."""
    from zoo.pipelines.evaluate import samplers

    monkeypatch.setattr(samplers, "SWD_IMAGES", 64)
    monkeypatch.setattr(samplers, "MS_SSIM_IMAGES", 64)
    monkeypatch.setattr(samplers, "MS_SSIM_PAIRS", 64)


@pytest.fixture
def unreachable_wandb(monkeypatch: pytest.MonkeyPatch):
    """For a test whose W&B server is unreachable or hangs: W&B's service process, which
    outlives a run in this process, is shut down after it, so that the runs of later tests
    start a fresh one (after two such tests a shared one wrote no history for the next)."""
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    yield
    import wandb

    wandb.teardown()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path):
    """Train each distinct command once per test module; every test gets its own copy of the
    run folder (at ``dest``, relative to its working directory), so tests stay independent
    without each paying for a training run."""
    import shutil

    made: dict[tuple[str, ...], Path] = {}

    def copy_of(*args: str, dest: str = "run") -> Path:
        if args not in made:
            out = tmp_path_factory.mktemp("trained") / "run"
            saved = os.environ.get("ZOO_CACHE_DIR")
            os.environ["ZOO_CACHE_DIR"] = str(cache_dir)
            try:
                result = run_cli(*args, "--no-wandb", "--out", str(out))
            finally:
                if saved is None:
                    os.environ.pop("ZOO_CACHE_DIR")
                else:
                    os.environ["ZOO_CACHE_DIR"] = saved
            assert result.exit_code == 0, result.output
            made[args] = out
        target = Path(dest)
        shutil.copytree(made[args], target)
        return target

    return copy_of


@pytest.fixture(scope="session")
def served_runs(tmp_path_factory: pytest.TempPathFactory, mnist, cache_dir: Path) -> Path:
    """A runs folder with a small run of each kind zoo serve's page has a tab for, trained once
    for every test of the page (tests/serving.py)."""
    from .serving import train_runs

    os.environ["ZOO_CACHE_DIR"] = str(cache_dir)
    return train_runs(tmp_path_factory.mktemp("served") / "runs", tmp_path_factory.mktemp("served-data"))


@pytest.fixture(scope="session")
def live_server(served_runs: Path):
    """zoo serve on :func:`served_runs`, started once for the tests of its page (small upload
    limits, so that the tests can cross them)."""
    from .serving import start, stop

    running = start(served_runs, cache_mb=64, queue=32, max_upload_mb=1, max_upload_pixels=512 * 512)
    yield running
    stop(running)


@pytest.fixture(scope="session")
def fashion() -> None:
    """Fashion-MNIST's files, or a failure that says how to get them: a test that needs data
    never passes by skipping where it is missing (make test and CI install them)."""
    from zoo.data.sources import named

    env = os.environ.get("ZOO_DATA_DIR")
    if named.fingerprint("fashion-mnist", None, Path(env) if env else None) is None:
        pytest.fail("Fashion-MNIST is not installed here: apt-get install dataset-fashion-mnist", pytrace=False)


@pytest.fixture(scope="session")
def mnist(cache_dir: Path):
    """The offline MNIST (10k test split), prepared once for the whole session."""
    os.environ["ZOO_CACHE_DIR"] = str(cache_dir)
    if not (Path(os.environ.get("ZOO_DATA_DIR", "")) / "mnist").is_dir():
        pytest.fail("the offline MNIST files are missing: set ZOO_DATA_DIR to a folder with mnist/")
    from zoo.pipelines.prep import prepare

    return prepare("mnist")


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """A small labelled folder of real image files in mixed formats and sizes."""
    return make_image_folder(tmp_path / "shapes", per_class=12)


def make_image_folder(root: Path, per_class: int, classes=("circle", "square")) -> Path:
    from PIL import Image, ImageDraw

    for name in classes:
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            size = (40 + 3 * i, 30 + 2 * i)  # odd, non-square sizes
            img = Image.new("RGB", size, (20 * i % 255, 80, 160))
            draw = ImageDraw.Draw(img)
            box = (5, 5, size[0] - 5, size[1] - 5)
            (draw.ellipse if name == "circle" else draw.rectangle)(box, fill=(250, 250, 250 - 10 * i))
            img.save(folder / f"{i:02d}.{'png' if i % 2 else 'jpg'}")
    return root


def checkpoint_tensors(run: Path) -> dict:
    """Every tensor of a run's checkpoint, by name (to compare two runs bit for bit)."""
    from safetensors.torch import load_file

    from zoo.records import checkpoint as ckpt_io

    return load_file(str(run / ckpt_io.FILENAME))


def run_cli(*args: str):
    """Invoke the CLI in-process (Typer's runner); returns the result."""
    from typer.testing import CliRunner

    from zoo.cli import app

    return CliRunner().invoke(app, list(args), catch_exceptions=False)


TINY = ["--set", "g_width=4", "--set", "d_width=4", "--set", "latent_dim=8", "--batch-size", "16"]


@dataclass
class FakeEntryPoint:
    """What importlib.metadata gives for an installed package's entry point."""

    name: str
    value: str
    package: str
    group: str = registry.GROUP

    @property
    def dist(self) -> Any:
        return SimpleNamespace(name=self.package, version="9.9")

    def load(self) -> Any:
        from importlib.metadata import EntryPoint  # the real loader, on our name and value

        return EntryPoint(self.name, self.value, self.group).load()


@pytest.fixture
def extra_plugins(monkeypatch: pytest.MonkeyPatch):
    """Install fake third-party entry points for one test."""

    def install(*entry_points: FakeEntryPoint) -> registry.Registry:
        monkeypatch.setattr(registry, "entry_point_source",
                            lambda: registry.installed_entry_points() + list(entry_points))
        registry.registry.cache_clear()
        return registry.registry()

    yield install
    registry.registry.cache_clear()
