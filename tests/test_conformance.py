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
from zoo import config as config_io
from zoo.data.memory import TensorBatches
from zoo.records import checkpoint as ckpt_io
from zoo.records import runs
from zoo.registry import registry
from zoo.training.engine import Engine, EngineOptions

NAMES = registry().names()
SPECS = [zoo.DataSpec("gray28", 1, 28, 28, tuple("0123456789")),
         zoo.DataSpec("rgb32", 3, 32, 32, tuple("0123456789"))]


TEXT_DIM = 16
PROMPT_WORDS = "a small large test image"


def tiny_text_encoder():
    """A text encoder (untrained) that knows the test prompts' words."""
    from zoo.data import text

    torch.manual_seed(0)
    return text.TextEncoder(text.Vocabulary(PROMPT_WORDS.split()), text.EncoderConfig(width=8, dim=TEXT_DIM))


def specs_for(cls, config) -> list[zoo.DataSpec]:
    """The test shapes; two-domain versions of them for models that translate, the derived
    pairs' shapes for models that make their pairs from one set of images, and captioned
    versions for text-conditional models."""
    if cls.has(zoo.Capability.TEXT_CONDITIONAL):
        return [replace(s, conditions=("text",), text_dim=TEXT_DIM) for s in SPECS]
    if not cls.data_pairing:
        return SPECS
    if cls.data_pairing[0] == "derived":
        return [cls.derivation(config).spec(replace(s, class_names=())) for s in SPECS]
    return [replace(s, class_names=(), pairing=cls.data_pairing[0], target_channels=s.channels,
                    domains=("A", "B")) for s in SPECS]


def build(name: str, spec: zoo.DataSpec | None = None):
    cls = registry().get(name)
    config = config_io.from_dict(cls.Config, cls.tiny_config, source=f"{name}.tiny_config")
    for candidate in ([spec] if spec else specs_for(cls, config)):
        try:
            cls.check_data(config, candidate)
        except zoo.UsageError:
            continue
        torch.manual_seed(0)
        model = cls(config, candidate)
        if model.has(zoo.Capability.TEXT_CONDITIONAL):
            model.attach_text_encoder(tiny_text_encoder(), "the conformance tests")
        return model
    pytest.fail(f"{name} accepts none of the test data shapes {[s.name for s in SPECS]}")


def batches_for(model: zoo.Model, n: int = 64) -> TensorBatches:
    spec = model.spec
    labels = torch.arange(n) % max(1, spec.num_classes)
    if spec.pairing == "derived":  # one set of images at the output's size; pairs made on the fly
        images = torch.randint(0, 256, (n, *spec.target_shape), dtype=torch.uint8)
        return TensorBatches(images, labels, model.config.batch_size, seed=0, derive=model.derivation(model.config))
    images = torch.randint(0, 256, (n, spec.channels, spec.height, spec.width), dtype=torch.uint8)
    targets = None
    if spec.pairing:
        targets = torch.randint(0, 256, (n, *spec.target_shape), dtype=torch.uint8)
    conditions = None
    if spec.text_dim:  # three captions' embeddings per image, as prep writes them
        conditions = {"text": torch.nn.functional.normalize(torch.randn(n, 3, spec.text_dim), dim=-1).half()}
    return TensorBatches(images, labels, model.config.batch_size, seed=0, targets=targets,
                         paired=spec.pairing != "unpaired", conditions=conditions)


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


class CountingEngine(Engine):
    """The loop's engine, counting the optimisers each update steps through the seam."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stepped: list[torch.optim.Optimizer] = []
        self.backward_passes = 0

    def backward(self, loss):
        self.backward_passes += 1
        return super().backward(loss)

    def step(self, optimizer):
        self.stepped.append(optimizer)
        return super().step(optimizer)


@pytest.mark.parametrize("name", NAMES)
def test_one_training_step_updates_every_optimiser_through_the_seam(name: str) -> None:
    model = build(name)
    model.optimizers = model.configure_optimizers()
    model.engine = CountingEngine()
    before = {name: [p.detach().clone() for p in zoo.optimised_parameters([opt])]
              for name, opt in model.optimizers.items()}
    metrics = model.train_step(batches_for(model), zoo.Progress(step=0, total_steps=10, epoch=0))
    assert metrics and all(torch.isfinite(torch.as_tensor(float(v))) for v in metrics.values())
    for opt_name, optimizer in model.optimizers.items():
        after = zoo.optimised_parameters([optimizer])
        assert any(not torch.equal(a, b) for a, b in zip(before[opt_name], after, strict=True)), \
            f"optimiser {opt_name!r} changed none of its weights"
        assert any(o is optimizer for o in model.engine.stepped), \
            f"optimiser {opt_name!r} stepped outside the seam (call self.update or self.optimizer_step)"
    assert model.engine.backward_passes >= len(model.optimizers), \
        "backward passes outside the seam (call self.update or self.manual_backward, not loss.backward())"


@pytest.mark.parametrize("name", NAMES)
def test_mixed_precision_and_clipping_need_no_plugin_code(name: str) -> None:
    """bf16 autocast on the CPU and gradient clipping, through the loop's engine alone."""
    model = build(name)
    model.optimizers = model.configure_optimizers()
    model.engine = CountingEngine(EngineOptions(precision="bf16", clip_grad=1e-3))
    norms = []
    real_step = Engine.step

    def clipped(engine, optimizer):
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        before = torch.nn.utils.get_total_norm([p.grad for p in params]) if params else None
        norm = real_step(engine, optimizer)
        if params:
            after = torch.nn.utils.get_total_norm([p.grad for p in params])
            norms.append((float(before), float(after)))
            assert norm is not None and torch.isclose(norm, before)
        return norm

    computed: set[torch.dtype] = set()
    hooks = [m.register_forward_hook(lambda m, i, out: computed.add(out.dtype))
             for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear))]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Engine, "step", clipped)
        with model.engine.autocast():
            metrics = model.train_step(batches_for(model), zoo.Progress(step=0, total_steps=10, epoch=0))
        model.engine.end_step()
    for hook in hooks:
        hook.remove()
    assert torch.bfloat16 in computed, "the plugin's own layers did not run in bf16 under the loop's autocast"
    assert all(torch.isfinite(torch.as_tensor(float(v))) for v in metrics.values())
    assert norms and all(after <= 1e-3 * 1.01 for _, after in norms), norms
    assert any(before > 1e-3 for before, _ in norms), "clipping was never needed: the test proves nothing"
    images = model.sample(2, conditions=conditions_for(model, 2)) if model.has(zoo.Capability.LATENT) else None
    assert images is None or images.dtype == torch.float32, "samples are drawn in full precision"


@pytest.mark.parametrize("name", NAMES)
def test_sampling_matches_the_capabilities(name: str) -> None:
    model = build(name)
    spec = model.spec
    if not model.has(zoo.Capability.LATENT):
        with pytest.raises(zoo.UsageError):
            model.sample(2)
        return
    assert not model.data_pairing, "a model that trains on two-domain data translates; it has no prior"
    images = model.sample(5, generator=torch.Generator().manual_seed(1), conditions=conditions_for(model, 5))
    assert images.shape == (5, spec.channels, spec.height, spec.width)
    assert images.min() >= -1 and images.max() <= 1
    again = model.sample(5, generator=torch.Generator().manual_seed(1), conditions=conditions_for(model, 5))
    assert torch.equal(images, again), "the same seed must give the same samples"
    assert model.training, "sampling must leave the model in the mode it found it"
    inputs = model.preview_inputs(4, torch.Generator().manual_seed(0), batches_for(model).next())
    preview = model.preview(inputs)
    assert preview.shape[-3:] == (spec.channels, spec.height, spec.width)
    samples = model.preview_samples(inputs, preview)  # what the train loop watches for mode collapse
    assert samples is not None and samples.shape[-3:] == (spec.channels, spec.height, spec.width)
    if model.has(zoo.Capability.CLASS_CONDITIONAL):
        assert preview.shape[0] == spec.num_classes, "conditional previews have a row per class"
        assert samples.dim() == 5 and samples.shape[0] == spec.num_classes
        with pytest.raises(zoo.UsageError):
            model.sample(2)  # a conditional model needs to be told the classes
        ones = model.sample(3, generator=torch.Generator().manual_seed(1),
                            conditions={"class": torch.ones(3, dtype=torch.long)})
        twos = model.sample(3, generator=torch.Generator().manual_seed(1), conditions={"class": torch.full((3,), 2)})
        assert not torch.equal(ones, twos), "the class must change the image"
    if model.has(zoo.Capability.TEXT_CONDITIONAL):
        assert preview.dim() == 5, "text-conditional previews have a row per caption"
        with pytest.raises(zoo.UsageError):
            model.sample(2)  # a text-conditional model needs to be told what to draw
        small = model.sample(3, generator=torch.Generator().manual_seed(1), conditions={"text": ["a small image"] * 3})
        large = model.sample(3, generator=torch.Generator().manual_seed(1), conditions={"text": ["a large image"] * 3})
        assert not torch.equal(small, large), "the text must change the image"
        with pytest.raises(zoo.UsageError, match="never saw"):
            model.sample(1, conditions={"text": ["a purple image"]})


@pytest.mark.parametrize("name", NAMES)
def test_translation_matches_the_capabilities(name: str) -> None:
    model = build(name)
    spec = model.spec
    translates = model.has(zoo.Capability.IMAGE_TO_IMAGE)
    assert bool(model.directions) == translates and bool(model.data_pairing) == translates
    if not translates:
        return
    assert set(model.data_pairing) <= {"paired", "unpaired", "derived"}
    assert ("derived" in model.data_pairing) == (model.derivation(model.config) is not None)
    assert set(model.directions) <= {"AtoB", "BtoA"} and "AtoB" in model.directions
    images = torch.rand(3, spec.channels, spec.height, spec.width) * 2 - 1
    with zoo.evaluating(model), torch.no_grad():
        for direction in model.directions:
            out = model.translate(images, direction)
            assert out.shape == (3, *spec.target_shape)
            assert out.min() >= -1 and out.max() <= 1
    example = batches_for(model).next()
    preview = model.preview(model.preview_inputs(4, torch.Generator().manual_seed(0), example))
    assert preview.dim() == 5 and preview.shape[1] >= 2, "a row per example: input | output | ..."
    assert preview.shape[-2:] == (max(spec.height, spec.target_shape[1]), max(spec.width, spec.target_shape[2]))


@pytest.mark.parametrize("name", NAMES)
def test_preview_labels_name_the_previews_columns_and_rows(name: str) -> None:
    from zoo.display import figures

    model = build(name)
    examples = batches_for(model).next()
    if model.has(zoo.Capability.TEXT_CONDITIONAL):  # the train pipeline's examples carry their captions' words
        examples.captions = [f"a small test image {i}" for i in range(len(examples))]
    inputs = model.preview_inputs(4, torch.Generator().manual_seed(0), examples)
    preview = model.preview(inputs)
    columns, rows = model.preview_labels(inputs)
    if columns is not None or rows is not None:
        assert preview.dim() == 5, "labels name the rows and columns of a rows x columns preview"
        assert columns is None or len(columns) == preview.shape[1]
        assert rows is None or len(rows) == preview.shape[0]
        figures.labelled_grid(preview, column_labels=columns, row_labels=rows)
    if model.has(zoo.Capability.IMAGE_TO_IMAGE) or model.has(zoo.Capability.CLASS_CONDITIONAL):
        assert columns or rows, "previews of inputs and outputs, or of classes, say which is which"
    if model.has(zoo.Capability.TEXT_CONDITIONAL):
        assert rows == examples.captions[:preview.shape[0]], "each row is labelled with its caption"


def conditions_for(model: zoo.Model, n: int) -> dict:
    """What a user would give this model for n images: a class, a text, or nothing."""
    conditions = zoo.class_condition(labels_for(model, n))
    if model.has(zoo.Capability.TEXT_CONDITIONAL):
        conditions["text"] = ["a small test image"] * n  # strings: the model's text encoder reads them
    return conditions


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
        {"step": 1, "run": "test"},
        {"model": model.state_dict(), "extra": model.extra_state(),
         **({"text_encoder": model.text_encoder.to_state()} if model.text_encoder else {})}))
    loaded, _ = runs.load_model(path)
    assert type(loaded) is type(model) and loaded.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    if model.has(zoo.Capability.LATENT):
        conditions = conditions_for(model, 3)
        a = model.sample(3, generator=torch.Generator().manual_seed(2), conditions=conditions)
        b = loaded.sample(3, generator=torch.Generator().manual_seed(2), conditions=conditions)
        assert torch.equal(a, b)


def test_frozen_restores_each_parameters_own_flag() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    net[1].weight.requires_grad_(False)
    with zoo.frozen(net):
        assert not any(p.requires_grad for p in net.parameters())
    assert [p.requires_grad for p in net.parameters()] == [True, True, False, True]


@pytest.mark.parametrize("name", NAMES)
def test_compile_compiles_every_network_or_says_why_not(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # aot_eager: torch.compile's graph capture and autograd, as inductor has them, without its
    # code generation (minutes); what fails here (a double backward) fails with inductor too.
    from zoo.training import engine as engine_module

    monkeypatch.setattr(engine_module, "COMPILE_BACKEND", "aot_eager")
    torch._dynamo.reset()
    model = build(name)
    model.engine = Engine(EngineOptions(compile=True), torch.device("cpu"))
    model.engine.prepare(model)
    eager = model.uncompiled()
    networks = [n for n, child in model.named_children() if any(True for _ in child.parameters())]
    assert set(eager) <= set(networks) and all(eager.values())
    compiled = [n for n in networks if n not in eager]
    assert model.engine.applied[-1].endswith(", ".join(compiled) or "none")
    assert len(model.engine.notes) == len(eager)
    model.optimizers = model.configure_optimizers()
    batches = batches_for(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    metrics = model.train_step(batches, zoo.Progress(0, 10, 0))
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in metrics.values())
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert set(before) == set(model.state_dict())  # compiling keeps the checkpoint's names
