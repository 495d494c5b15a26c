"""Feature extractors: the networks in whose features ``zoo eval`` compares images.

A Frechet distance, a KID or a precision figure is only as meaningful as the features it
is computed in, so the extractor is part of every figure's protocol (its name, the data it
was made for, and a hash of its weights). Three come with zoo:

* ``classifier``: a small CNN that zoo trains once on the labelled data set's training
  split and caches (zoo.measure.classifier); the default for labelled data, where a domain
  classifier's features are what the field uses for MNIST-like images.
* ``inception``: the Inception-v3 network, from a safetensors file of its weights that the
  user has (never downloaded, never unpickled).
* ``random``: a fixed, randomly initialised CNN; for tests and smoke checks only.

Others come from installed packages, through the entry-point group ``zoo.features``::

    [project.entry-points."zoo.features"]
    dino = "zoo_dino:load"          # load(reference: zoo.features.Reference) -> FeatureExtractor
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.metadata as md
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.errors import UsageError, ZooError

if TYPE_CHECKING:
    from rich.console import Console

    from zoo.data.memory import PreparedData
    from zoo.spec import DataSpec

GROUP = "zoo.features"
BUILTINS = {
    "classifier": "zoo.measure.classifier:load",
    "inception": "zoo.features:load_inception",
    "random": "zoo.features:load_random",
}
NO_ARGUMENT = frozenset({"classifier", "random"})
"""Built-ins that take nothing after their name (``inception:PATH`` takes a path)."""
INCEPTION_ENV = "ZOO_INCEPTION_WEIGHTS"


@dataclass
class Reference:
    """What an extractor is made for: the data set (its training and held-out splits)."""

    data: str
    """The data set's name as zoo prepared it (mnist, folder:..., ...)."""
    train: PreparedData
    heldout: PreparedData | None = None
    argument: str | None = None
    """What followed the extractor's name and a colon: ``inception:PATH`` gives PATH."""
    console: Console | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    """Extra settings from code (tests train a smaller classifier)."""

    @property
    def spec(self) -> DataSpec:
        return self.train.spec


class FeatureExtractor(nn.Module):
    """A frozen network from images in [-1, 1] (N x C x H x W at the data's size) to
    features (N x D). ``logits`` is for classifiers: class accuracy and classifier score
    need it."""

    name: str = ""
    resize: str = "none"
    """How images reach the network, as the protocol states it."""

    def __init__(self, data: str, num_features: int) -> None:
        super().__init__()
        self.data = data
        self.num_features = num_features
        self.accuracy: float | None = None
        """A classifier's accuracy on real held-out images (None for other extractors)."""
        self.weights_hash = ""
        """Hex sha256 of the weights, so two figures in 'the same' features can be told apart."""

    @property
    def tag(self) -> str:
        """The extractor as a protocol names it: ``classifier:mnist@1a2b3c4d``."""
        return f"{self.name}:{self.data}@{self.weights_hash[:8]}"

    @property
    def classes(self) -> int:
        return 0

    def features(self, images: Tensor) -> Tensor:
        raise NotImplementedError

    def logits(self, images: Tensor) -> Tensor:
        raise ZooError(f"the {self.name} features have no classes; class accuracy needs --features classifier")

    @torch.no_grad()
    def extract(self, images: Tensor, batch_size: int = 500, logits: bool = False) -> Tensor:
        """Features (or logits) of many images, uint8 or float in [-1, 1], in batches on the
        extractor's device; returned on the CPU. The result does not depend on ``batch_size``:
        the network is in eval mode, so each image is computed on its own."""
        device = next(self.parameters()).device
        self.eval()
        out = []
        for chunk in images.split(batch_size):
            x = chunk.to(device)
            x = x.float().div(127.5).sub(1) if x.dtype == torch.uint8 else x.float()
            out.append((self.logits(x) if logits else self.features(x)).float().cpu())
        return torch.cat(out) if out else torch.empty(0, self.num_features)


REFERENCE_CACHE = "reference-features"
"""Under ``$ZOO_CACHE_DIR/features/``: the features of prepared splits, by extractor and data."""


def reference_features(extractor: FeatureExtractor, data: PreparedData, batch_size: int = 500) -> Tensor:
    """:meth:`FeatureExtractor.extract` of a prepared split's images, computed once per
    extractor (its weights' hash) and prepared data (its folder, split and time of making)
    and cached: every later ``zoo eval`` against the same data reads them back, which for
    Inception on a large set saves minutes. An extractor without a weights hash is not
    cached; a cache file damaged on disk is computed again."""
    from zoo.records import files
    from zoo.records.paths import cache_dir

    if not extractor.weights_hash:
        return extractor.extract(data.images, batch_size)
    identity = "|".join(str(part) for part in (
        extractor.name, extractor.data, extractor.weights_hash, extractor.resize, Path(data.path).resolve(),
        data.meta.get("split"), data.meta.get("created"), len(data)))
    name = hashlib.sha256(identity.encode()).hexdigest()[:24]
    path = cache_dir() / "features" / REFERENCE_CACHE / f"{name}.safetensors"
    if path.is_file():
        try:
            tensors, _ = files.load_tensors(path, "cached features", "it is computed again")
            if tensors["features"].shape[0] == len(data):
                return tensors["features"]
        except (files.Damaged, KeyError):
            pass
    features = extractor.extract(data.images, batch_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    files.save_tensors(path, {"features": features}, {"identity": identity}, what="cached features")
    return features


def weights_hash(module: nn.Module) -> str:
    digest = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def file_hash(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- finding extractors --------------------------------------------------------------------------

def available() -> dict[str, str]:
    """Every extractor's name and where it loads from: the built-ins, then installed packages."""
    found = dict(BUILTINS)
    for ep in md.entry_points(group=GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def check_spec(spec: str) -> tuple[str, str | None]:
    """(name, argument) of ``spec`` (``NAME`` or ``NAME:ARGUMENT``), refused now, before any
    work, when no extractor has that name, or when a built-in that takes no argument gets one."""
    name, _, argument = spec.partition(":")
    known = available()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=2, cutoff=0.5)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise UsageError(f"unknown feature extractor {name!r}; {hint}known: {', '.join(sorted(known))}")
    if argument and name in NO_ARGUMENT:
        raise UsageError(f"the {name} features take nothing after their name; got {spec[:80]}")
    return name, argument or None


def load(spec: str, reference: Reference) -> FeatureExtractor:
    """The extractor named by ``spec`` (``NAME`` or ``NAME:ARGUMENT``), made for ``reference``."""
    name, reference.argument = check_spec(spec)
    known = available()
    try:
        factory: Callable[[Reference], FeatureExtractor] = md.EntryPoint(name, known[name], GROUP).load()
    except Exception as exc:  # a broken third-party extractor names itself
        raise ZooError(f"feature extractor {name!r} ({known[name]}) failed to load: {exc}") from None
    extractor = factory(reference)
    if not isinstance(extractor, FeatureExtractor):
        raise ZooError(f"feature extractor {name!r} returned {type(extractor).__name__}, not a FeatureExtractor")
    return extractor.requires_grad_(False).eval()


def default_for(spec: DataSpec) -> str:
    """The classifier for labelled data; for unlabelled data Inception when its weights are
    set, else a one-line error saying how to choose."""
    if spec.labelled:
        return "classifier"
    if os.environ.get(INCEPTION_ENV):
        return "inception"
    raise UsageError(f"{spec.name} has no labels to train zoo's classifier features on; choose --features "
                     f"inception:WEIGHTS.safetensors (or set ${INCEPTION_ENV}), or --features random (fixed "
                     "random features: a rough figure, only comparable between runs on this data)")


# -- random features ------------------------------------------------------------------------------

class RandomFeatures(FeatureExtractor):
    """A CNN with fixed random weights (seed 0): features that respond to local structure
    but were never taught what matters. Fast and download-free: for tests only."""

    name = "random"

    def __init__(self, data: str, channels: int) -> None:
        super().__init__(data, 256)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.body = nn.Sequential(
                nn.Conv2d(channels, 32, 3, 2, 1), nn.LeakyReLU(0.2),
                nn.Conv2d(32, 64, 3, 2, 1), nn.LeakyReLU(0.2),
                nn.Conv2d(64, 64, 3, 1, 1), nn.LeakyReLU(0.2),
                nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.weights_hash = weights_hash(self)

    def features(self, images: Tensor) -> Tensor:
        return self.body(images)


def load_random(reference: Reference) -> FeatureExtractor:
    return RandomFeatures(reference.data, reference.spec.channels)


# -- Inception-v3 -----------------------------------------------------------------------------------

class Inception(FeatureExtractor):
    """Inception-v3's 2,048 pool features (torchvision's network) from a safetensors file."""

    name = "inception"
    resize = "bilinear to 299x299, gray repeated to RGB, ImageNet mean/std"

    def __init__(self, data: str, path: Path) -> None:
        from safetensors.torch import load_file
        from torchvision.models import inception_v3

        super().__init__(data, 2048)
        self.net = inception_v3(weights=None, aux_logits=False, init_weights=False)
        self.net.fc = nn.Identity()
        try:
            state = load_file(str(path))
        except Exception as exc:
            raise UsageError(f"{path} is not a readable safetensors file ({exc})") from None
        state = {k: v for k, v in state.items() if not k.startswith(("fc.", "AuxLogits."))}
        try:
            self.net.load_state_dict(state)
        except RuntimeError as exc:
            raise UsageError(f"{path} does not hold torchvision's Inception-v3 weights: "
                             f"{str(exc).splitlines()[0]}") from None
        self.weights_hash = file_hash(path)
        self.mean: Tensor
        self.std: Tensor
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def features(self, images: Tensor) -> Tensor:
        x = (images + 1) / 2
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return self.net((x - self.mean) / self.std)


HOW_TO_GET_INCEPTION = (
    "zoo never downloads weights nor unpickles them; make a safetensors file once from torchvision's "
    "weights: python -c \"import torchvision, safetensors.torch as s; s.save_file(torchvision.models."
    "inception_v3(weights='DEFAULT').state_dict(), 'inception_v3.safetensors')\" and pass --features "
    f"inception:inception_v3.safetensors (or set ${INCEPTION_ENV})")


def load_inception(reference: Reference) -> FeatureExtractor:
    given = reference.argument or os.environ.get(INCEPTION_ENV)
    if not given:
        raise UsageError(f"the inception features need Inception-v3 weights on disk. {HOW_TO_GET_INCEPTION}")
    path = Path(given).expanduser()
    if not path.is_file():
        raise UsageError(f"Inception weights {path} not found. {HOW_TO_GET_INCEPTION}")
    if path.suffix != ".safetensors":
        raise UsageError(f"{path} is not a .safetensors file. {HOW_TO_GET_INCEPTION}")
    return Inception(reference.data, path)
