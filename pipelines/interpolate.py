"""Walk through a model's latent space: interpolate between two points, or vary one
coordinate (seed 001, figures 10 and 11; seed 004).

Endpoints are seeds, latent files (from ``zoo invert`` or an earlier interpolation) or
images: encoded by models with an encoder (autoencoders and VAEs, no optimisation; an
autoencoder, which has no prior, takes no seeds), inverted first by the others. Several
pairs make several rows. Paths are straight (lerp) or along the great circle (slerp, the
default for Gaussian priors, where most of the probability lies near a sphere).
Class-conditional models walk at a fixed class, or from one class to another by blending
the two labels; text-conditional models from one text's embedding to another's
(``--from-text``/``--to-text``), at fixed latents (a row per seed) unless endpoints are
given. Outputs: a strip PNG (a row per pair, its columns labelled by t), a GIF that goes
there and back, and the latents as safetensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from safetensors.torch import load_file, save_file

from zoo import registry
from zoo.config import check_seed, within
from zoo.display import figures
from zoo.display.console import make_console
from zoo.errors import UsageError, ZooError
from zoo.measure import metrics
from zoo.model import Model
from zoo.pipelines.classes import chosen_class, class_index
from zoo.pipelines.invert import check_fit, fit_latents, load_targets
from zoo.pipelines.reconstruct import reconstructions
from zoo.records.runs import default_out, load_latent_model, output_dir
from zoo.spec import Capability, Condition, class_condition
from zoo.training.engine import evaluating

MOST_STEPS = 1_000
"""The most images along a path (and values of a coordinate): a strip wider is unreadable."""
TEXT_ROWS = (0, 1, 2, 3)
"""Seeds of the rows of a walk between two texts given no other endpoints."""


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Straight lines from rows of ``a`` to rows of ``b``: pairs x steps x d."""
    return a[:, None] + (b - a)[:, None] * t[None, :, None]


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Great-circle paths (Shoemake 1985) from rows of ``a`` to rows of ``b``: pairs x steps x d.
    Nearly parallel endpoints fall back to a straight line."""
    cos = F.cosine_similarity(a, b, dim=1).clamp(-1 + 1e-7, 1 - 1e-7)
    omega = torch.arccos(cos)[:, None, None]
    t = t[None, :, None]
    sin = torch.sin(omega)
    curved = (torch.sin((1 - t) * omega) * a[:, None] + torch.sin(t * omega) * b[:, None]) / sin
    return torch.where(sin.abs() < 1e-4, lerp(a, b, t[0, :, 0]), curved)


def frame_changes(frames: torch.Tensor) -> torch.Tensor:
    """Mean absolute pixel change between neighbouring frames: pairs x (steps - 1)."""
    return (frames[:, 1:] - frames[:, :-1]).abs().flatten(2).mean(2)


def interpolate(target: str, *, from_seed: list[int] | None = None, to_seed: list[int] | None = None,
                from_latent: Path | None = None, to_latent: Path | None = None,
                from_image: Path | None = None, to_image: Path | None = None,
                steps: int = 10, method: str | None = None, class_: str | None = None,
                digit: str | None = None, from_class: str | None = None, to_class: str | None = None,
                invert_steps: int = 300, restarts: int = 4, out: Path | None = None,
                force: bool = False, device: str = "auto", from_text: str | None = None,
                to_text: str | None = None, which: str = "latest", text_encoder: Path | None = None,
                console: Console | None = None) -> Path:
    console = console or make_console()
    within("--steps", steps, 2, MOST_STEPS)
    for flag, seeds in (("--from-seed", from_seed), ("--to-seed", to_seed)):
        for seed in seeds or ():
            check_seed(seed, flag)
    if from_image or to_image:
        check_fit(invert_steps, restarts, flags=("--invert-steps", "--restarts"))
    model, checkpoint, checkpoint_path = load_latent_model(target, device, "interpolate", or_encoder=True,
                                                           takes_text=True, which=which, text_encoder=text_encoder)
    texts = _texts(model, from_text, to_text)
    if texts is not None and (from_image or to_image):
        raise UsageError(f"{model.name}: walks between images are for models without text; walk between seeds "
                         "or latent files with --from-text/--to-text")
    if texts is not None and not (from_seed or to_seed or from_latent or to_latent or from_image or to_image):
        from_seed, to_seed = list(TEXT_ROWS), list(TEXT_ROWS)  # the same z along each row: the text alone walks
    method = method or default_method(model)
    if method not in ("lerp", "slerp"):
        raise UsageError(f"--method must be lerp or slerp, got {method!r}")
    start_labels, end_labels = _labels(model, class_, digit, from_class, to_class)

    kinds = [k for k, v in (("seeds", from_seed or to_seed), ("latent files", from_latent or to_latent),
                            ("images", from_image or to_image)) if v]
    if len(kinds) != 1:
        raise UsageError("give one kind of endpoints: --from-seed/--to-seed, --from-latent/--to-latent "
                         "or --from-image/--to-image")
    if (from_seed or to_seed) and not model.has(Capability.LATENT):
        raise UsageError(f"{model.name} has no prior to draw seeds from (it encodes images, it does not sample); "
                         "walk between two images with --from-image/--to-image, or two latent files")
    if from_seed or to_seed:
        if not from_seed or not to_seed or len(from_seed) != len(to_seed):
            raise UsageError("--from-seed and --to-seed take the same number of seeds (1,2,3 for three rows)")
        a, b = seed_latents(model, from_seed), seed_latents(model, to_seed)
        ends = [f"seed {s} -> {e}" for s, e in zip(from_seed, to_seed, strict=True)]
    elif from_latent or to_latent:
        if not (from_latent and to_latent):
            raise UsageError("give both --from-latent and --to-latent")
        a, b = _read_latent(from_latent, model), _read_latent(to_latent, model)
        if len(a) != len(b):
            raise UsageError(f"{from_latent} holds {len(a)} latents but {to_latent} holds {len(b)}")
        ends = _numbered(f"{_latent_name(from_latent)} -> {_latent_name(to_latent)}", len(a))
    else:
        if not (from_image and to_image):
            raise UsageError("give both --from-image and --to-image")
        (a, b), (names_a, names_b) = _invert(model, from_image, to_image, start_labels, end_labels,
                                             invert_steps, restarts, console)
        ends = [f"{s} -> {e}" for s, e in zip(names_a, names_b, strict=True)]
    walked = walk(model, a, b, steps, method, start_labels, end_labels, texts)
    frames, t = walked.frames, walked.t

    out = output_dir(out or default_out("interpolations", checkpoint, checkpoint_path, method), force)
    figures.save_grid(frames, out / "strip.png", scale=2, column_labels=[f"t={v:.2g}" for v in t.tolist()],
                      row_labels=ends, title=_title(model, method, start_labels, end_labels, texts))
    frame_paths = []
    for i, v in enumerate(t.tolist()):  # t as a title, which never changes a frame's size: the GIF's frames match
        frame_paths.append(figures.save_grid(frames[:, i], out / "frames" / f"{i:03d}.png", nrow=1, scale=2,
                                             row_labels=ends, title=f"t={v:.2f}"))
    there_and_back = frame_paths + frame_paths[-2:0:-1]
    figures.save_gif(there_and_back, out / "interpolation.gif", frame_ms=150, hold_last_ms=150)
    tensors = {"z": walked.z.contiguous(), "t": t}
    if walked.labels is not None:
        tensors["labels"] = walked.labels.contiguous()
    if walked.text is not None:
        tensors["text"] = walked.text.contiguous()
    save_file(tensors, str(out / "latents.safetensors"), metadata={"model": model.name, "method": method})
    change = frame_changes(frames)
    console.print(f"{len(a)} interpolation(s) of {steps} steps by {method} -> {out}/strip.png, "
                  f"interpolation.gif, latents.safetensors; frame-to-frame change: mean "
                  f"{float(change.mean()):.4f}, largest {float(change.max()):.4f}")
    return out


@dataclass
class Walk:
    """A walk's frames (pairs x steps x C x H x W), its positions ``t``, and on the CPU what
    the model was given at each frame: latents, blended class labels, text embeddings."""

    frames: torch.Tensor
    t: torch.Tensor
    z: torch.Tensor
    labels: torch.Tensor | None
    text: torch.Tensor | None


def default_method(model: Model) -> str:
    """Great circles suit a Gaussian prior's shell; a model without a prior walks straight."""
    return "slerp" if model.has(Capability.LATENT) and model.prior.gaussian else "lerp"


def seed_latents(model: Model, seeds: list[int]) -> torch.Tensor:
    """One latent per seed (len(seeds) x d), each from a CPU generator seeded with it."""
    return torch.cat([model.sample_latent(1, torch.Generator().manual_seed(s)) for s in seeds])


@torch.no_grad()
def walk(model: Model, a: torch.Tensor, b: torch.Tensor, steps: int, method: str,
         start_labels: torch.Tensor | None = None, end_labels: torch.Tensor | None = None,
         texts: tuple[str, str] | None = None) -> Walk:
    """From each latent of ``a`` to its row of ``b`` in ``steps`` frames, by ``method`` (lerp or
    slerp); class labels blend from ``start_labels`` to ``end_labels``, text embeddings from
    one of ``texts`` to the other, in straight lines (as in StackGAN's figures)."""
    pairs = len(a)
    t = torch.linspace(0, 1, steps, device=model.device)
    path = (slerp if method == "slerp" else lerp)(a, b, t)  # pairs x steps x d
    labels = None
    if start_labels is not None and end_labels is not None:
        k = model.spec.num_classes
        one_a = F.one_hot(start_labels, k).float().to(model.device)
        one_b = F.one_hot(end_labels, k).float().to(model.device)
        labels = lerp(one_a.expand(pairs, k), one_b.expand(pairs, k), t)  # pairs x steps x k
    conditions = class_condition(labels.flatten(0, 1) if labels is not None else None)
    embeddings = None
    if texts is not None:
        a_text, b_text = model.encode_text(list(texts), "--from-text/--to-text")
        embeddings = lerp(a_text[None].expand(pairs, -1), b_text[None].expand(pairs, -1), t)
        conditions[Condition.TEXT.value] = embeddings.flatten(0, 1)
    with evaluating(model):
        frames = model.generate(path.flatten(0, 1), conditions)
    return Walk(frames.view(pairs, steps, *frames.shape[1:]).cpu(), t.cpu(), path.cpu(),
                None if labels is None else labels.cpu(), None if embeddings is None else embeddings.cpu())


def explore(target: str, *, dim: int | None = None, dims: int | None = None,
            span: tuple[float, float] = (-3.0, 3.0), steps: int = 9, seed: int = 0,
            latent: Path | None = None, class_: str | None = None, digit: str | None = None,
            out: Path | None = None, force: bool = False, device: str = "auto", which: str = "latest",
            console: Console | None = None) -> Path:
    """Vary one latent coordinate (a row), or each of the first ``dims`` (a grid of rows)."""
    console = console or make_console()
    within("--steps", steps, 2, MOST_STEPS)
    check_seed(seed)
    if not all(math.isfinite(end) for end in span):
        raise UsageError(f"--range LOW,HIGH takes finite numbers, got {span[0]:g},{span[1]:g}")
    model, checkpoint, checkpoint_path = load_latent_model(target, device, "explore a latent space", which=which)
    if (dim is None) == (dims is None):
        raise UsageError("give --dim D (one coordinate) or --dims K (the first K, one row each)")
    chosen = [dim] if dim is not None else list(range(dims or 0))
    bad = [d for d in chosen if not 0 <= d < model.latent_dim]
    if bad or not chosen:
        raise UsageError(f"latent coordinates run from 0 to {model.latent_dim - 1}; got {bad or dims}")
    if steps < 2:
        raise UsageError(f"--steps must be at least 2, got {steps}")
    if span[0] >= span[1]:
        raise UsageError(f"--range LOW,HIGH needs LOW < HIGH, got {span[0]:g},{span[1]:g}")
    wanted = chosen_class(model, class_, digit)
    if model.has(Capability.CLASS_CONDITIONAL) and wanted is None:
        raise UsageError(f"{model.name} is class-conditional: pick the class to explore with --class")
    base = _read_latent(latent, model)[:1] if latent else seed_latents(model, [seed])
    values = torch.linspace(span[0], span[1], steps, device=model.device)
    z = base.repeat(len(chosen) * steps, 1).view(len(chosen), steps, -1).clone()
    for row, d in enumerate(chosen):
        z[row, :, d] = values
    images = decoded(model, z.flatten(0, 1), wanted)
    grid = images.view(len(chosen), steps, *images.shape[1:])
    out = output_dir(out or default_out("explorations", checkpoint, checkpoint_path,
                                        latent.name.split(".")[0] if latent else f"seed{seed}"),
                     force)
    title = f"{model.name}: each row's coordinate from {span[0]:g} to {span[1]:g}"
    if wanted is not None:
        title += f", class {model.spec.class_names[class_index(model.spec, wanted)]}"
    picture = figures.save_grid(grid, out / "explore.png", scale=2, title=title,
                                column_labels=[f"{v:.3g}" for v in values.tolist()],
                                row_labels=[f"z[{d}]" for d in chosen])
    save_file({"z": z.cpu().contiguous(), "values": values.cpu()}, str(out / "latents.safetensors"),
              metadata={"model": model.name, "dims": ",".join(map(str, chosen))})
    console.print(f"latent coordinate{'s' if len(chosen) > 1 else ''} {', '.join(map(str, chosen))} of "
                  f"{model.name} from {span[0]:g} to {span[1]:g} in {steps} steps -> {picture}")
    return out


@torch.no_grad()
def decoded(model: Model, z: torch.Tensor, wanted: str | None = None) -> torch.Tensor:
    """The images of latents (N x d), of class ``wanted`` for a class-conditional model, on the CPU."""
    labels = (torch.full((len(z),), class_index(model.spec, wanted), device=model.device)
              if wanted is not None else None)
    with evaluating(model):
        return model.generate(z.to(model.device), class_condition(labels)).cpu()


def _labels(model: Model, class_, digit, from_class, to_class):
    """(start labels, end labels) as class indices (1,), or (None, None) when unconditional."""
    fixed = chosen_class(model, class_, digit)
    if (from_class is None) != (to_class is None):
        raise UsageError("give both --from-class and --to-class")
    if from_class is not None:
        if fixed is not None:
            raise UsageError("give --class, or --from-class and --to-class, not both")
        chosen_class(model, from_class, None)
        chosen_class(model, to_class, None)
        return (torch.tensor([class_index(model.spec, from_class)]),
                torch.tensor([class_index(model.spec, to_class)]))
    if model.has(Capability.CLASS_CONDITIONAL):
        if fixed is None:
            raise UsageError(f"{model.name} is class-conditional: give --class, or --from-class and --to-class")
        index = torch.tensor([class_index(model.spec, fixed)])
        return index, index
    return None, None


def _read_latent(path: Path, model: Model) -> torch.Tensor:
    if not path.is_file():
        raise UsageError(f"latent file {path} does not exist")
    try:
        z = load_file(str(path))["z"]
    except Exception as exc:
        raise ZooError(f"{path} is not a zoo latent file (safetensors with a 'z' tensor): {exc}") from None
    z = z.reshape(-1, z.shape[-1])
    if z.shape[-1] != model.latent_dim:
        raise UsageError(f"{path} holds latents of length {z.shape[-1]}; {model.name}'s are {model.latent_dim}")
    return z.to(model.device)


def _texts(model: Model, from_text: str | None, to_text: str | None) -> tuple[str, str] | None:
    """The two prompts a text-conditional model walks between (checked), or None."""
    if from_text is not None or to_text is not None:
        registry.registry().require(type(model), Capability.TEXT_CONDITIONAL, "walk between --from-text and --to-text")
    if not model.has(Capability.TEXT_CONDITIONAL):
        return None
    if from_text is None or to_text is None:
        raise UsageError(f"{model.name} draws from text: give --from-text and --to-text (the same twice to walk "
                         "between seeds at one text)")
    model.encode_text([from_text, to_text], "--from-text/--to-text")  # readable, before any work
    return from_text, to_text


def _title(model: Model, method: str, start_labels: torch.Tensor | None, end_labels: torch.Tensor | None,
           texts: tuple[str, str] | None = None) -> str:
    """What a strip shows: the model, the path, and the class, classes or texts it walks at."""
    if texts is not None:
        return f"{model.name}, {method}, text: {texts[0]!r}" + (f" -> {texts[1]!r}" if texts[1] != texts[0] else "")
    if start_labels is None or end_labels is None:
        return f"{model.name}, {method}"
    start, end = (model.spec.class_names[int(labels[0])] for labels in (start_labels, end_labels))
    return f"{model.name}, {method}, class {start}" + (f" -> {end}" if end != start else "")


def _latent_name(path: Path) -> str:
    """A latent file's name without its suffixes: "seven" for seven.latent.safetensors."""
    return path.name.removesuffix(".safetensors").removesuffix(".latent")


def _numbered(name: str, count: int) -> list[str]:
    return [name] if count == 1 else [f"{name} ({i + 1})" for i in range(count)]


def _invert(model, from_image, to_image, start_labels, end_labels, steps, restarts, console):
    """The latents of the images at either end (their codes, for a model with an encoder;
    else fitted), and the images' names."""
    zs, names = [], []
    for image, labels in ((from_image, start_labels), (to_image, end_labels)):
        found, targets = load_targets(image, model, console)
        names.append(found)
        labels = labels.expand(len(targets)).to(model.device) if labels is not None else None
        if model.has(Capability.ENCODER):
            z, rebuilt = reconstructions(model, targets.cpu(), labels)
            psnr = float(metrics.psnr(rebuilt, targets.cpu()).mean())
            console.print(f"encoded {image}: its reconstruction's PSNR {psnr:.2f} dB")
            zs.append(z.to(model.device))
            continue
        fit = fit_latents(model, targets, labels=labels, steps=steps, restarts=restarts)
        console.print(f"inverted {image}: PSNR {float(fit.psnr.mean()):.2f} dB")
        zs.append(fit.z)
    if len(zs[0]) != len(zs[1]):
        raise UsageError(f"{from_image} and {to_image} hold different numbers of images")
    return zs, names
