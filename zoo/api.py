"""zoo from Python: a trained model outside its run folder's commands.

    import zoo
    model = zoo.load("runs/cgan-mnist-0001")             # a run, an export, a checkpoint, a model name
    sevens = model.sample(16, seed=0, classes=[7] * 16)  # PIL images (tensors: as_tensor=True)
    photo = zoo.load("runs/pix2pix-facades").translate(Image.open("labels.png"))
    big = zoo.load("runs/srgan-photos").upscale(Image.open("cat.jpg"))

Each method calls the pipeline function its command calls (:mod:`zoo.pipelines.sample`,
``interpolate``, ``invert``, ``translate``, ``upscale``, ``reconstruct``), so a seed gives
the same pixels as ``zoo sample`` does; a method the model cannot do is refused with the
message its command gives. Images go in as PIL images, file paths or tensors (float in
[-1, 1], C x H x W, or N x C x H x W for several), one or a list; they come out as PIL
images, or as tensors (float in [-1, 1]) with ``as_tensor=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from PIL import Image

from zoo.errors import UsageError
from zoo.spec import Capability, Condition, class_condition

Picture = Image.Image | str | Path | torch.Tensor
"""An image given to a method: a PIL image, a file's path, or a float tensor in [-1, 1]."""
Pictures = Picture | Sequence[Picture]
Classes = int | str | Sequence[int | str] | None


@dataclass
class Inversion:
    """What :meth:`TrainedModel.invert` found: the latent of each image (N x latent_dim), the
    images it draws, and how near they came (PSNR in dB and SSIM, per image)."""

    latents: torch.Tensor
    images: list[Image.Image] | torch.Tensor
    psnr: list[float]
    ssim: list[float]


class TrainedModel:
    """A trained zoo model, loaded by :func:`load`, with a method for each thing it can do.

    ``model.capabilities`` says which: ``latent`` (sample, generate, interpolate, invert),
    ``class-conditional`` (``classes=``), ``text-conditional`` (``text=``), ``image-to-image``
    (translate, upscale) and ``encoder`` (reconstruct, encode). ``model.network`` is the
    plugin's ``torch.nn.Module`` itself, for what the methods do not cover."""

    def __init__(self, network: Any, checkpoint: Any, path: Path) -> None:
        self.network, self.checkpoint, self.path = network, checkpoint, path

    def __repr__(self) -> str:
        return (f"<zoo model {self.name} from {self.path} (step {self.step}): "
                f"{', '.join(self.capabilities) or 'no capabilities'}>")

    @property
    def name(self) -> str:
        """The plugin's name: dcgan, cgan, pix2pix, ..."""
        return str(self.network.name)

    @property
    def step(self) -> int | None:
        """The training step the weights are from."""
        return self.checkpoint.train.get("step")

    @property
    def capabilities(self) -> list[str]:
        return sorted(str(c) for c in type(self.network).capabilities)

    @property
    def classes(self) -> list[str]:
        """The class names of a class-conditional model (empty for others)."""
        return list(self.network.spec.class_names) if self.network.has(Capability.CLASS_CONDITIONAL) else []

    @property
    def latent_dim(self) -> int:
        """The length of a latent vector (models with a prior or an encoder)."""
        if not (self.network.has(Capability.LATENT) or self.network.has(Capability.ENCODER)):
            raise UsageError(f"{self.name} has no latent space (it translates images)")
        return int(self.network.latent_dim)

    @property
    def image_size(self) -> tuple[int, int, int]:
        """(channels, height, width) of the images it draws or takes."""
        spec = self.network.spec
        return spec.channels, spec.height, spec.width

    # -- drawing -------------------------------------------------------------------------------

    def sample(self, n: int = 16, *, seed: int = 0, classes: Classes = None, text: str | Sequence[str] | None = None,
               noise: str | None = None, truncation: float | None = None, as_tensor: bool = False) -> Any:
        """``n`` images from the prior, the same as ``zoo sample`` draws for the seed: of one
        class (``classes=7`` or ``"sneaker"``), of a class each (``classes=[7] * n``), or, for a
        class-conditional model given none, a row per class. A text-conditional model draws
        ``n`` images for each description of ``text``. ``noise`` and ``truncation``: as
        ``zoo sample --noise --truncation``."""
        from zoo.pipelines import sample as sampling
        from zoo.records.runs import require_latent

        require_latent(type(self.network), str(self.path), "sample from noise", takes_text=True)
        classes = _plain(classes)
        labels = None
        one = classes
        if classes is not None and not isinstance(classes, (int, str)):
            labels = self._labels(classes, n)
            one = None
        asked = sampling.request(self.network, n=n, seed=seed, class_=None if one is None else str(one),
                                 noise=noise, truncation=truncation, text=text)
        if labels is not None and not self.network.has(Capability.CLASS_CONDITIONAL):
            raise UsageError(f"{self.name} is not class-conditional: leave out classes=")
        images = sampling.draw(self.network, asked, labels).images
        images = images.flatten(0, 1) if images.dim() == 5 else images
        return images if as_tensor else _pictures(images)

    def generate(self, z: torch.Tensor, *, classes: Classes = None, text: str | Sequence[str] | None = None,
                 as_tensor: bool = False) -> Any:
        """The images of latent vectors ``z`` (N x latent_dim), of a class (or a class each),
        or for a description (one, or one per latent)."""
        from zoo.records.runs import require_latent

        require_latent(type(self.network), str(self.path), "generate from latents", takes_text=True,
                       or_encoder=True)
        z = torch.as_tensor(z, dtype=torch.float32)
        z = z.unsqueeze(0) if z.dim() == 1 else z
        if z.dim() != 2 or z.shape[1] != self.latent_dim or len(z) == 0:
            raise UsageError(f"z is N x {self.latent_dim} latent vectors (or one of {self.latent_dim}), "
                             f"not {tuple(z.shape)}")
        conditions = self._conditions(classes, text, len(z))
        with torch.no_grad(), _evaluating(self.network):
            images = torch.cat([self.network.generate(chunk.to(self.network.device),
                                                      {k: v[i:i + len(chunk)] for k, v in conditions.items()}).cpu()
                                for i, chunk in zip(range(0, len(z), 256), z.split(256), strict=True)])
        return images if as_tensor else _pictures(images)

    def interpolate(self, from_seed: int = 0, to_seed: int = 1, steps: int = 10, *, method: str | None = None,
                    classes: int | str | None = None, text: str | None = None, as_tensor: bool = False) -> Any:
        """A walk from one seed's latent to another's in ``steps`` frames, as ``zoo interpolate
        --from-seed --to-seed`` walks (slerp for a Gaussian prior, else lerp)."""
        from zoo.config import check_seed, within
        from zoo.pipelines.interpolate import MOST_STEPS, default_method, seed_latents, walk
        from zoo.records.runs import require_latent

        require_latent(type(self.network), str(self.path), "interpolate", takes_text=True)
        within("steps", steps, 2, MOST_STEPS)
        check_seed(from_seed, "from_seed")
        check_seed(to_seed, "to_seed")
        method = method or default_method(self.network)
        if method not in ("lerp", "slerp"):
            raise UsageError(f"method must be lerp or slerp, got {method!r}")
        labels = self._one_class(classes)
        texts = (text, text) if text is not None else None
        if texts is None and self.network.has(Capability.TEXT_CONDITIONAL):
            raise UsageError(f"{self.name} draws from a description: give text=\"...\"")
        walked = walk(self.network, seed_latents(self.network, [from_seed]), seed_latents(self.network, [to_seed]),
                      steps, method, labels, labels, texts)
        return walked.frames[0] if as_tensor else _pictures(walked.frames[0])

    def invert(self, images: Pictures, *, steps: int = 500, restarts: int = 8, seed: int = 0,
               classes: int | str | None = None, as_tensor: bool = False) -> Inversion:
        """Latents whose images are nearest the given ones, found by optimisation as ``zoo
        invert`` finds them (with its defaults)."""
        from zoo.pipelines.invert import check_fit, fit_latents
        from zoo.records.runs import require_latent

        require_latent(type(self.network), str(self.path), "be inverted", or_encoder=True)
        check_fit(steps, restarts, seed=seed)
        labels = self._one_class(classes)
        if labels is None and self.network.has(Capability.CLASS_CONDITIONAL):
            raise UsageError(f"{self.name} is class-conditional: say which class the images are with classes=")
        spec = self.network.spec
        targets = _batch(images, spec.channels, spec.height, spec.width)
        fit = fit_latents(self.network, targets.to(self.network.device),
                          labels=labels.expand(len(targets)) if labels is not None else None, steps=steps,
                          restarts=restarts, seed=seed, prior_weight=0.001 if self.network.has(Capability.LATENT)
                          else 0.0)
        drawn = fit.images.cpu()
        return Inversion(fit.z.cpu(), drawn if as_tensor else _pictures(drawn), fit.psnr.cpu().tolist(),
                         fit.ssim.cpu().tolist())

    # -- images in -----------------------------------------------------------------------------

    def translate(self, images: Pictures, direction: str | None = None, *, as_tensor: bool = False) -> Any:
        """Images translated by an image-to-image model, each fitted to its size first as
        ``zoo translate`` fits them; ``direction``: AtoB (the default) or BtoA (CycleGAN)."""
        from zoo.pipelines.translate import pick_direction, refuse_upscaler, translated
        from zoo.records.runs import require_translator

        require_translator(type(self.network), str(self.path))
        refuse_upscaler(self.network, f"zoo upscale {self.path.parent} IMAGE (in Python: .upscale)")
        way = pick_direction(self.network, direction)
        spec = self.network.spec
        channels = spec.channels if way == "AtoB" else (spec.target_channels or spec.channels)
        out = translated(self.network, _batch(images, channels, spec.height, spec.width), way)
        return _shaped(images, out, as_tensor)

    def upscale(self, images: Pictures, *, as_tensor: bool = False) -> Any:
        """Photos made larger by a super-resolution model, each whole at its own size (in
        tiles where it is large), as ``zoo upscale`` makes them."""
        from zoo.data.images import to_float
        from zoo.data.superres import factor_of
        from zoo.pipelines.upscale import upscaled
        from zoo.records.runs import require_translator

        require_translator(type(self.network), str(self.path))
        if factor_of(self.network) <= 1:
            raise UsageError(f"{self.name} does not upscale (it translates at one size); use zoo translate "
                             f"{self.path.parent} (in Python: .translate)")
        many = _is_many(images)
        if many and not len(images):  # type: ignore[arg-type]
            raise UsageError("no images given")
        outs = [to_float(upscaled(self.network, _batch(one, self.network.spec.channels, 0, 0, as_uint8=True))[0])[0]
                for one in (cast(Sequence[Picture], images) if many else [images])]
        if as_tensor:
            return outs if many else outs[0]
        pictures = [_pictures(o.unsqueeze(0))[0] for o in outs]
        return pictures if many else pictures[0]

    def reconstruct(self, images: Pictures, *, classes: int | str | None = None, as_tensor: bool = False) -> Any:
        """Images through the encoder and back, as ``zoo reconstruct`` makes them."""
        _, out = self._encoded(images, classes)
        return _shaped(images, out, as_tensor)

    def encode(self, images: Pictures, *, classes: int | str | None = None) -> torch.Tensor:
        """The latent code of each image (N x latent_dim; latent_dim for one image)."""
        codes, _ = self._encoded(images, classes)
        return codes if _is_many(images) else codes[0]

    def _encoded(self, images: Pictures, classes: int | str | None) -> tuple[torch.Tensor, torch.Tensor]:
        from zoo.pipelines.reconstruct import reconstructions
        from zoo.records.runs import require_encoder

        require_encoder(type(self.network), str(self.path))
        labels = self._one_class(classes)
        if labels is None and self.network.has(Capability.CLASS_CONDITIONAL):
            raise UsageError(f"{self.name} is class-conditional: say which class the images are with classes=")
        spec = self.network.spec
        batch = _batch(images, spec.channels, spec.height, spec.width)
        return reconstructions(self.network, batch, labels.expand(len(batch)) if labels is not None else None)

    # -- conditions ----------------------------------------------------------------------------

    def _one_class(self, classes: int | str | None) -> torch.Tensor | None:
        """One class as a 1-element label tensor (None when not given)."""
        from zoo.pipelines.classes import chosen_class, class_index

        classes = _plain(classes)
        if classes is not None and not isinstance(classes, (int, str)):
            raise UsageError("give one class here (classes=7)")
        wanted = chosen_class(self.network, None if classes is None else str(classes), None)
        return None if wanted is None else torch.tensor([class_index(self.network.spec, wanted)])

    def _labels(self, classes: Sequence[int | str], n: int) -> torch.Tensor:
        from zoo.pipelines.classes import chosen_class, class_index

        given = [_plain(c) for c in classes]
        if len(given) != n:
            raise UsageError(f"classes holds {len(given)} classes for {n} images; give one each, or one for all")
        return torch.tensor([class_index(self.network.spec, cast(str, chosen_class(self.network, str(c), None)))
                             for c in given])

    def _conditions(self, classes: Classes, text: str | Sequence[str] | None, n: int) -> dict[str, Any]:
        network = self.network
        if network.has(Capability.TEXT_CONDITIONAL):
            prompts = [text] if isinstance(text, str) else list(text or [])
            if not prompts:
                raise UsageError(f"{self.name} draws from a description: give text=\"...\"")
            if len(prompts) not in (1, n):
                raise UsageError(f"text holds {len(prompts)} descriptions for {n} latents; give one, or one each")
            if classes is not None:
                raise UsageError(f"{self.name} draws from a description, not a class: leave out classes=")
            embedded = network.encode_text(prompts, "text")
            return {Condition.TEXT.value: embedded.expand(n, -1) if len(prompts) == 1 else embedded}
        if text is not None:
            raise UsageError(f"{self.name} does not read text: leave out text=")
        classes = _plain(classes)
        if classes is None:
            if network.has(Capability.CLASS_CONDITIONAL):
                raise UsageError(f"{self.name} is class-conditional: give classes=, one of {', '.join(self.classes)}")
            return {}
        if not network.has(Capability.CLASS_CONDITIONAL):
            raise UsageError(f"{self.name} is not class-conditional: leave out classes=")
        labels = self._labels([classes] * n, n) if isinstance(classes, (int, str)) else self._labels(classes, n)
        return class_condition(labels.to(network.device))


def load(path: str | Path, checkpoint: str = "latest", device: str | torch.device = "auto",
         text_encoder: str | Path | None = None) -> TrainedModel:
    """A trained model from a run folder, an export (``zoo export``), a checkpoint file, or a
    model name (its latest run in the runs folder); ``checkpoint="best"`` takes the run's best
    checkpoint; ``device``: auto (a GPU when there is one), cpu, cuda, cuda:1, mps.
    ``text_encoder``: the sentence-transformers folder a text model was trained with, when it
    was (``zoo train --text-encoder``)."""
    from zoo.records import runs
    from zoo.training.devices import resolve_device

    found = runs.find_checkpoint(str(path), checkpoint)
    network, record = runs.load_model(found, resolve_device(str(device)),
                                      text_encoder=Path(text_encoder).expanduser() if text_encoder else None)
    network.eval()
    return TrainedModel(network, record, found)


# -- images in and out ---------------------------------------------------------------------------

def _is_many(images: Pictures) -> bool:
    return (isinstance(images, torch.Tensor) and images.dim() == 4) or (
        isinstance(images, Sequence) and not isinstance(images, str))


def _batch(images: Pictures, channels: int, height: int, width: int, as_uint8: bool = False) -> torch.Tensor:
    """Images as one N x channels x H x W tensor, each fitted to height x width as the commands
    fit a file (0 x 0: its own size, one image): float in [-1, 1], or uint8 with ``as_uint8``."""
    from zoo.data.images import UNREADABLE, convert_channels, fit_image, read_image, to_float

    if isinstance(images, torch.Tensor) and images.dim() == 4:
        items: list[Picture] = list(images)
    elif _is_many(images):
        items = list(cast(Sequence[Picture], images))
    else:
        items = [images]  # type: ignore[list-item]
    if not items:
        raise UsageError("no images given")
    read = []
    for item in items:
        if isinstance(item, torch.Tensor):
            picture = _tensor_picture(item)
        elif isinstance(item, Image.Image):
            picture = item
        elif isinstance(item, (str, Path)):
            try:
                one, _, _ = read_image(Path(item), height, width)
            except UNREADABLE as exc:
                raise UsageError(f"{item} is not a readable image ({type(exc).__name__}: {exc})") from None
            read.append(convert_channels(one.unsqueeze(0), channels))
            continue
        else:
            raise UsageError(f"an image is a PIL image, a file path or a tensor, not {type(item).__name__}")
        read.append(convert_channels(fit_image(picture, height, width).unsqueeze(0), channels))
    batch = torch.cat(read)
    return batch if as_uint8 else to_float(batch)


def _tensor_picture(item: torch.Tensor) -> Image.Image:
    """An image tensor as a PIL image: uint8 (0-255, as torchvision reads files) or float in
    [-1, 1] (zoo's), C x H x W with 1 or 3 channels."""
    if item.dim() != 3 or item.shape[0] not in (1, 3) or 0 in item.shape:
        raise UsageError(f"an image tensor is C x H x W with 1 or 3 channels, not {tuple(item.shape)}")
    if item.dtype == torch.uint8:
        item = item.float() / 127.5 - 1
    elif not item.is_floating_point():
        raise UsageError(f"an image tensor is uint8 (0-255) or float in [-1, 1], not {item.dtype}")
    elif not bool(torch.isfinite(item).all()) or float(item.min()) < -1.001 or float(item.max()) > 1.001:
        raise UsageError("a float image tensor holds values in [-1, 1] (x * 2 - 1 for one in [0, 1]); this "
                         "one does not")
    return _pictures(item.unsqueeze(0).float().clamp(-1, 1))[0]


def _plain(value: Any) -> Any:
    """A class given as a NumPy or torch integer (or a 0-d tensor), as a Python int."""
    import numbers

    if isinstance(value, torch.Tensor) and value.dim() == 0:
        return int(value.item())
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, int)):
        return int(value)
    return value


def _shaped(images: Pictures, out: torch.Tensor, as_tensor: bool) -> Any:
    """One output for one image given, a list for several."""
    many = _is_many(images)
    if as_tensor:
        return out if many else out[0]
    pictures = _pictures(out)
    return pictures if many else pictures[0]


def _pictures(images: torch.Tensor) -> list[Image.Image]:
    from zoo.display.figures import to_pil

    return [to_pil(image) for image in images]


def _evaluating(network: Any):
    from zoo.training.engine import evaluating

    return evaluating(network)
