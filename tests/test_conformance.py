"""The contract, checked for every registered plugin: built-in and third-party alike.

A new plugin gets these tests by being registered. Each builds its ``tiny_config`` model,
takes one training step on the CPU, samples, and survives a checkpoint round trip.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

import zoo
from zoo import checkpoint as ckpt_io
from zoo import config as config_io
from zoo.data import TensorBatches
from zoo.pipelines import runs
from zoo.registry import registry

NAMES = registry().names()
SPECS = [zoo.DataSpec("gray28", 1, 28, 28, tuple("0123456789")),
         zoo.DataSpec("rgb32", 3, 32, 32, tuple("0123456789"))]


def specs_for(cls) -> list[zoo.DataSpec]:
    """The test shapes; two-domain versions of them for models that translate."""
    if not cls.data_pairing:
        return SPECS
    return [replace(s, class_names=(), pairing=cls.data_pairing[0], target_channels=s.channels,
                    domains=("A", "B")) for s in SPECS]


def build(name: str, spec: zoo.DataSpec | None = None):
    cls = registry().get(name)
    config = config_io.from_dict(cls.Config, cls.tiny_config, source=f"{name}.tiny_config")
    for candidate in ([spec] if spec else specs_for(cls)):
        try:
            cls.check_data(config, candidate)
        except zoo.UsageError:
            continue
        torch.manual_seed(0)
        return cls(config, candidate)
    pytest.fail(f"{name} accepts none of the test data shapes {[s.name for s in SPECS]}")


def batches_for(model: zoo.Model, n: int = 64) -> TensorBatches:
    spec = model.spec
    images = torch.randint(0, 256, (n, spec.channels, spec.height, spec.width), dtype=torch.uint8)
    labels = torch.arange(n) % max(1, spec.num_classes)
    targets = None
    if spec.pairing:
        targets = torch.randint(0, 256, (n, spec.target_channels, spec.height, spec.width), dtype=torch.uint8)
    return TensorBatches(images, labels, model.config.batch_size, seed=0, targets=targets,
                         paired=spec.pairing != "unpaired")


@pytest.mark.parametrize("name", NAMES)
def test_declares_what_it_is(name: str) -> None:
    cls = registry().get(name)
    assert cls.name == name and cls.summary and cls.family
    assert all(isinstance(c, zoo.Capability) for c in cls.capabilities)
    cls.Config()  # the defaults make a valid config


@pytest.mark.parametrize("name", NAMES)
def test_optimisers_cover_every_trainable_parameter(name: str) -> None:
    model = build(name)
    model.optimizers = model.configure_optimizers()
    assert model.optimizers
    optimised = {id(p) for opt in model.optimizers.values() for g in opt.param_groups for p in g["params"]}
    missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in optimised]
    assert not missing, f"parameters no optimiser updates: {missing[:5]}"


@pytest.mark.parametrize("name", NAMES)
def test_one_training_step_updates_the_model_and_reports_finite_metrics(name: str) -> None:
    model = build(name)
    model.optimizers = model.configure_optimizers()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    metrics = model.train_step(batches_for(model), zoo.Progress(step=0, total_steps=10, epoch=0))
    assert metrics and all(torch.isfinite(torch.as_tensor(float(v))) for v in metrics.values())
    changed = [k for k, v in model.state_dict().items() if not torch.equal(before[k], v)]
    assert changed, "a training step changed no weight"


@pytest.mark.parametrize("name", NAMES)
def test_sampling_matches_the_capabilities(name: str) -> None:
    model = build(name)
    spec = model.spec
    if not model.has(zoo.Capability.LATENT):
        with pytest.raises(zoo.UsageError):
            model.sample(2)
        return
    assert not model.data_pairing, "a model that trains on two-domain data translates; it has no prior"
    labels = labels_for(model, 5)
    images = model.sample(5, generator=torch.Generator().manual_seed(1), labels=labels)
    assert images.shape == (5, spec.channels, spec.height, spec.width)
    assert images.min() >= -1 and images.max() <= 1
    again = model.sample(5, generator=torch.Generator().manual_seed(1), labels=labels)
    assert torch.equal(images, again), "the same seed must give the same samples"
    assert model.training, "sampling must leave the model in the mode it found it"
    preview = model.preview(model.preview_inputs(4, torch.Generator().manual_seed(0)))
    assert preview.shape[-3:] == (spec.channels, spec.height, spec.width)
    if model.has(zoo.Capability.CLASS_CONDITIONAL):
        assert preview.shape[0] == spec.num_classes, "conditional previews have a row per class"
        with pytest.raises(zoo.UsageError):
            model.sample(2)  # a conditional model needs to be told the classes
        ones = model.sample(3, generator=torch.Generator().manual_seed(1), labels=torch.ones(3, dtype=torch.long))
        twos = model.sample(3, generator=torch.Generator().manual_seed(1), labels=torch.full((3,), 2))
        assert not torch.equal(ones, twos), "the class must change the image"


@pytest.mark.parametrize("name", NAMES)
def test_translation_matches_the_capabilities(name: str) -> None:
    model = build(name)
    spec = model.spec
    translates = model.has(zoo.Capability.IMAGE_TO_IMAGE)
    assert bool(model.directions) == translates and bool(model.data_pairing) == translates
    if not translates:
        return
    assert set(model.data_pairing) <= {"paired", "unpaired"}
    assert set(model.directions) <= {"AtoB", "BtoA"} and "AtoB" in model.directions
    images = torch.rand(3, spec.channels, spec.height, spec.width) * 2 - 1
    with zoo.evaluating(model), torch.no_grad():
        for direction in model.directions:
            out = model.translate(images, direction)
            assert out.shape == (3, spec.target_channels, spec.height, spec.width)
            assert out.min() >= -1 and out.max() <= 1
    example = batches_for(model).next()
    preview = model.preview(model.preview_inputs(4, torch.Generator().manual_seed(0), example))
    assert preview.dim() == 5 and preview.shape[1] >= 2, "a row per example: input | output | ..."
    assert preview.shape[-2:] == (spec.height, spec.width)


def labels_for(model: zoo.Model, n: int) -> torch.Tensor | None:
    if not model.has(zoo.Capability.CLASS_CONDITIONAL):
        return None
    return torch.arange(n) % model.spec.num_classes


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip_gives_the_same_model(name: str, tmp_path: Path) -> None:
    model = build(name)
    model.optimizers = model.configure_optimizers()
    model.train_step(batches_for(model), zoo.Progress(0, 10, 0))
    path = tmp_path / "checkpoint.safetensors"
    ckpt_io.save(path, ckpt_io.Checkpoint(
        name, str(model.version), config_io.to_dict(model.config), model.spec.to_dict(),
        {"step": 1, "run": "test"}, {"model": model.state_dict(), "extra": model.extra_state()}))
    loaded, _ = runs.load_model(path)
    assert type(loaded) is type(model) and loaded.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    if model.has(zoo.Capability.LATENT):
        a = model.sample(3, generator=torch.Generator().manual_seed(2), labels=labels_for(model, 3))
        b = loaded.sample(3, generator=torch.Generator().manual_seed(2), labels=labels_for(model, 3))
        assert torch.equal(a, b)


def test_frozen_restores_each_parameters_own_flag() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    net[1].weight.requires_grad_(False)
    with zoo.frozen(net):
        assert not any(p.requires_grad for p in net.parameters())
    assert [p.requires_grad for p in net.parameters()] == [True, True, False, True]
