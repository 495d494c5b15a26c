"""The images a model is judged against (the held-out split by default, or another data set's), in which
features, and the protocol every figure carries."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from zoo import features as features_io
from zoo.data import superres
from zoo.data.memory import PreparedData, load_prepared
from zoo.errors import UsageError
from zoo.model import Model
from zoo.pipelines.prep import prepare
from zoo.spec import Capability

SPLITS = {"heldout": "heldout", "test": "heldout", "train": "train"}
"""--split: the held-out images (the data set's test split; ``test`` is the same), or the
training images (to see how much better the model does on what it learnt from)."""


@dataclass
class Reference:
    """The data a model is judged against, as it was prepared for its training."""

    train: PreparedData
    split: PreparedData
    split_name: str
    heldout: PreparedData | None

    @property
    def name(self) -> str:
        return str(self.train.meta.get("name", "data"))


def reference_data(record: dict[str, Any], split: str, console: Console | None = None) -> Reference:
    """The run's data (``record``: the checkpoint's ``train.data``), its training images, and
    the split asked for."""
    if split not in SPLITS:
        raise UsageError(f"--split must be heldout (or test, the same) or train, not {split!r}")
    train = prepare(record["source"], size=record.get("size"), channels=record.get("channels"),
                    data_dir=Path(record["data_dir"]) if record.get("data_dir") else None,
                    classes=record.get("classes"), subset=record.get("subset"),
                    direction=record.get("direction"), console=console or Console(quiet=True))
    heldout = load_prepared(train.path, "heldout") if train.meta.get("heldout") else None
    if SPLITS[split] == "heldout" and heldout is None:
        load_prepared(train.path, "heldout")  # raises the message that says why there is none
    chosen = heldout if SPLITS[split] == "heldout" and heldout is not None else train
    return Reference(train, chosen, SPLITS[split], heldout)


def check_fits(model: Model, reference: Reference, data: str) -> None:
    """--data: the other data set must be what the model makes (shape, classes)."""
    have = reference.split.spec
    if superres.factor_of(model) > 1:  # super-resolution takes images of any size
        if have.channels != model.spec.channels:
            raise UsageError(f"--data {data}: its images have {have.channels} channel(s), and {model.name} "
                             f"takes {model.spec.channels}")
        return
    if (have.channels, have.height, have.width) != model.spec.target_shape:
        raise UsageError(f"--data {data}: its images are {have.channels}x{have.height}x{have.width}, and "
                         f"{model.name} makes {'x'.join(map(str, model.spec.target_shape))}")
    if model.has(Capability.CLASS_CONDITIONAL) and have.class_names != model.spec.class_names:
        raise UsageError(f"--data {data}: its classes differ from the ones {model.name} was trained on")


def domain_of(data: PreparedData, targets: bool) -> PreparedData:
    """One domain of two-domain data as a data set of its own (B: the targets)."""
    if not targets or data.targets is None:
        return data
    labels = data.labels if data.labels is not None and len(data.labels) == len(data.targets) else None
    meta = {**data.meta, "name": f"{data.meta.get('name', 'data')}-B"}
    if labels is None:
        meta["class_names"] = []
    return PreparedData(data.path, data.targets, labels, meta)


def load_extractor(spec: str | None, reference: Reference, console: Console | None, *, targets: bool = False,
                   options: dict[str, Any] | None = None) -> features_io.FeatureExtractor:
    """The extractor ``spec`` names (default: the one that suits the data), made for the
    training images (of domain B with ``targets``)."""
    train = domain_of(reference.train, targets)
    heldout = domain_of(reference.heldout, targets) if reference.heldout is not None else None
    name = spec or features_io.default_for(train.spec)
    return features_io.load(name, features_io.Reference(str(train.meta.get("name", "data")), train, heldout,
                                                        console=console, options=options or {}))


def counted(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def protocol(figure: str, extractor: features_io.FeatureExtractor, generated: int, reference: Reference,
             reference_count: int, prdc: int | None = None) -> dict[str, Any]:
    """A figure's protocol: its name (``fid10k+prdc1k/classifier:mnist@1a2b3c4d/heldout``:
    10,000 samples for the Frechet distance, precision, recall, density and coverage on
    1,000 of each set) and what the name abbreviates."""
    counts = counted(generated) + (f"+prdc{counted(prdc)}" if prdc is not None else "")
    return {"name": f"{figure}{counts}/{extractor.tag}/{reference.split_name}",
            "extractor": extractor.name, "extractor_hash": extractor.weights_hash,
            "extractor_accuracy": extractor.accuracy, "generated": generated, "reference": reference_count,
            "split": reference.split_name, "resize": extractor.resize if extractor.resize != "none" else
            f"none ({reference.split.spec.height}x{reference.split.spec.width})",
            "data": reference.name, "images": "8-bit, as saved"}
