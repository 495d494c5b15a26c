"""A trained model's drawing network as ONNX, checked against torch with onnxruntime.

What each kind of model exports (the inputs named as onnxruntime sees them; images are
float in [-1, 1], N x C x H x W):

- a sampler (DCGAN, WGAN, cgan, ProGAN, VAE decoders): ``z`` (N x latent_dim), and
  ``labels`` (N, int64) for class-conditional models, ``text`` (N x text_dim sentence
  embeddings) for text-conditional ones, to ``images``;
- a translator (pix2pix, CycleGAN, one file per direction) and an upscaler (SRResNet,
  SRGAN): ``images`` to ``output``; an upscaler takes any height and width;
- an autoencoder without a prior: ``images`` to their reconstructions.

Every graph has a dynamic batch axis. pix2pix's paper keeps dropout on when it draws (noise
for its outputs); ``zoo translate`` and the default export switch it off (one output per
input, as zoo's figures are measured); ``dropout="on"`` exports the paper's, a fresh draw
each run.

The export is refused when onnxruntime's output differs from torch's by more than
:data:`TOLERANCE` on fixed inputs, at the batch it was traced with and at another.
"""

from __future__ import annotations

import contextlib
import functools
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.data import superres
from zoo.errors import UsageError, ZooError
from zoo.model import Model
from zoo.spec import Capability, Condition
from zoo.training.engine import evaluating

TOLERANCE = 1e-3
"""The largest difference allowed between onnxruntime's output and torch's (images in
[-1, 1]; one 8-bit grey level is 2/255, about 0.008)."""
OPSET = 18
DROPOUT = ("off", "on")


@dataclass
class Graph:
    """One network to export: its file's stem, the module, example inputs by name and which of
    their axes are dynamic."""

    stem: str
    module: nn.Module
    inputs: dict[str, torch.Tensor]
    dynamic: dict[str, dict[int, str]]
    output: str = "images"
    other_inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    """A second set of inputs of other sizes, to check the dynamic axes."""


class _Sampler(nn.Module):
    def __init__(self, model: Model, condition: str | None) -> None:
        super().__init__()
        self.model, self.condition = model, condition

    def forward(self, z: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        conditions = {self.condition: condition} if self.condition is not None else {}
        return self.model.generate(z, conditions)


class _Translator(nn.Module):
    def __init__(self, model: Model, direction: str) -> None:
        super().__init__()
        self.model, self.direction = model, direction

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.translate(images, self.direction)


class _Reconstructor(nn.Module):
    def __init__(self, model: Model) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.generate(self.model.encode(images))


def exportable(model: Model) -> str | None:
    """Why a model cannot be exported to ONNX, or None when it can."""
    if model.has(Capability.LATENT) or model.has(Capability.IMAGE_TO_IMAGE):
        return None
    if model.has(Capability.ENCODER) and not model.has(Capability.CLASS_CONDITIONAL):
        return None
    return (f"{model.name} has no network zoo exports to ONNX (a sampler, a translator, an upscaler or an "
            "autoencoder's reconstruction); export it without --format onnx")


def graphs(model: Model, dropout: str = "off") -> list[Graph]:
    """The networks of ``model`` to export, with example inputs (seeded: the same every time)."""
    if dropout not in DROPOUT:
        raise UsageError(f"--dropout must be off or on, not {dropout!r}")
    if dropout == "on" and not any(isinstance(m, nn.Dropout) for m in model.modules()):
        raise UsageError(f"--dropout on: {model.name} has no dropout to keep on")
    if (why := exportable(model)) is not None:
        raise UsageError(why)
    g = torch.Generator().manual_seed(0)
    spec = model.spec
    if model.has(Capability.LATENT):
        inputs = {"z": model.sample_latent(4, g).cpu()}
        other = {"z": model.sample_latent(3, g).cpu()}
        condition = None
        if model.has(Capability.TEXT_CONDITIONAL):
            condition = Condition.TEXT.value
            inputs["text"], other["text"] = torch.randn(4, spec.text_dim, generator=g), torch.randn(
                3, spec.text_dim, generator=g)
        elif model.has(Capability.CLASS_CONDITIONAL):
            condition = Condition.CLASS.value
            inputs["labels"] = torch.arange(4) % spec.num_classes
            other["labels"] = torch.arange(3, 0, -1) % spec.num_classes
        dynamic = {name: {0: "batch"} for name in inputs}
        return [Graph("model", _Sampler(model, condition), inputs, dynamic, other_inputs=other)]
    if model.has(Capability.IMAGE_TO_IMAGE):
        upscaler = superres.factor_of(model) > 1
        channels = {"AtoB": spec.channels, "BtoA": spec.target_channels or spec.channels}
        found = []
        for i, direction in enumerate(model.directions):
            h, w = (24, 20) if upscaler else (spec.height, spec.width)
            c = channels.get(direction, spec.channels)
            images = torch.rand(4, c, h, w, generator=g) * 2 - 1
            second = torch.rand(3, c, *((16, 28) if upscaler else (h, w)), generator=g) * 2 - 1
            axes = {0: "batch", 2: "height", 3: "width"} if upscaler else {0: "batch"}
            stem = "model" if i == 0 else f"model-{direction}"
            found.append(Graph(stem, _Translator(model, direction), {"images": images}, {"images": axes},
                               output="output", other_inputs={"images": second}))
        return found
    images = torch.rand(4, spec.channels, spec.height, spec.width, generator=g) * 2 - 1
    second = torch.rand(3, spec.channels, spec.height, spec.width, generator=g) * 2 - 1
    return [Graph("model", _Reconstructor(model), {"images": images}, {"images": {0: "batch"}},
                  output="reconstructions", other_inputs={"images": second})]


@contextlib.contextmanager
def _dropout(model: Model, on: bool):
    """The model in eval mode; with ``on``, its dropout layers drawing a fresh mask at every
    call (the paper's pix2pix), written out as a uniform draw and a comparison, which ONNX
    keeps (its Dropout operator is an identity outside training)."""
    with evaluating(model):
        layers = [m for m in model.modules() if isinstance(m, nn.Dropout)] if on else []
        for layer in layers:
            layer.forward = functools.partial(_drawn_dropout, p=layer.p)  # type: ignore[method-assign]
        try:
            yield
        finally:
            for layer in layers:
                del layer.forward


def _drawn_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    return x * (torch.rand_like(x) >= p).to(x.dtype) / (1.0 - p)


def export(model: Model, folder: Path, dropout: str = "off") -> list[dict[str, Any]]:
    """Write each graph of ``model`` as ``STEM.onnx`` into ``folder``, check it with
    onnxruntime, and return what was written and measured. Refuses (ZooError) an export
    whose output differs from torch's by more than :data:`TOLERANCE`."""
    try:
        import onnxruntime
    except ImportError:
        raise UsageError("--format onnx needs onnx, onnxscript and onnxruntime: pip install 'zoo-gan[onnx]'") from None
    model = model.cpu()
    written = []
    for graph in graphs(model, dropout):
        path = folder / f"{graph.stem}.onnx"
        names = list(graph.inputs)
        args = tuple(graph.inputs.values())
        with torch.no_grad(), _dropout(model, dropout == "on"):
            graph.module(*args)  # a first call settles what a model computes once (EMA batch-norm statistics)
            expected = [graph.module(*args), graph.module(*graph.other_inputs.values())]
            dims = {name: {axis: torch.export.Dim(f"{label}_{name}" if label != "batch" else "batch", min=1,
                                                   max=1 << 16) for axis, label in axes.items()}
                    for name, axes in graph.dynamic.items()}
            forward_names = _forward_names(graph.module)
            shapes = {forward_names[i]: dims[name] for i, name in enumerate(names)}
            try:
                with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                    warnings.simplefilter("ignore")
                    torch.onnx.export(graph.module, args, str(path), input_names=names,
                                      output_names=[graph.output], dynamic_shapes=shapes, dynamo=True,
                                      opset_version=OPSET, external_data=False, verbose=False)
            except Exception as exc:  # torch.export's own errors are many kinds, and long
                raise ZooError(f"{model.name} could not be exported to ONNX: {str(exc).splitlines()[0][:300]}") \
                    from None
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        checks: list[dict[str, Any]] = []
        for inputs, want in zip((graph.inputs, graph.other_inputs), expected, strict=True):
            got = session.run(None, {k: v.numpy() for k, v in inputs.items()})[0]
            if dropout == "on":  # draws differ run to run: the shape is what can be checked
                checks.append({"shape": list(got.shape), "max_abs_diff": None})
                if tuple(got.shape) != tuple(want.shape):
                    raise ZooError(f"{path.name}: onnxruntime drew {tuple(got.shape)}, torch {tuple(want.shape)}")
                continue
            diff = float((torch.from_numpy(got) - want).abs().max())
            checks.append({"shape": list(got.shape), "max_abs_diff": diff})
            if not diff <= TOLERANCE:
                path.unlink()
                raise ZooError(f"{model.name}'s ONNX graph differs from torch by {diff:.2g} (more than {TOLERANCE:g}) "
                               f"on inputs of shape {[list(v.shape) for v in inputs.values()]}; not exported")
        written.append({"file": path.name, "inputs": {k: _shape_text(v, graph.dynamic[k])
                                                      for k, v in graph.inputs.items()},
                        "output": graph.output, "dropout": dropout, "opset": OPSET, "bytes": path.stat().st_size,
                        "checked": checks,
                        "max_abs_diff": max((c["max_abs_diff"] for c in checks if c["max_abs_diff"] is not None),
                                            default=None)})
    return written


def _forward_names(module: nn.Module) -> list[str]:
    import inspect

    return list(inspect.signature(module.forward).parameters)


def _shape_text(example: torch.Tensor, axes: dict[int, str]) -> str:
    dims = [axes.get(i, str(n)) for i, n in enumerate(example.shape)]
    return f"{str(example.dtype).removeprefix('torch.')}[{', '.join(dims)}]"

