"""What each part of the page does, without the page: a run chosen by name, what the
user set, and pictures back (PIL images and files in the server's scratch folder).

Every action calls the pipeline functions the commands call (:mod:`zoo.pipelines.sample`,
``interpolate``, ``invert``, ``translate``, ``upscale``, ``reconstruct``), so the page
draws what ``zoo sample`` would draw for the same seed. Bad input raises a
:class:`zoo.errors.ZooError` whose message the page shows; :mod:`zoo.serve.page` wires these
functions to the browser.
"""

from __future__ import annotations

import io
import math
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from zoo.config import check_seed, within
from zoo.data.images import convert_channels, to_float
from zoo.display import figures
from zoo.errors import UsageError
from zoo.serve.catalog import Catalog
from zoo.serve.models import Loaded, Models
from zoo.serve.uploads import MOST_BYTES, MOST_PIXELS, read_upload
from zoo.spec import Capability

MOST_IMAGES = 256
"""The most images one grid on the page draws (``zoo sample`` draws more, into files)."""
MOST_UPSCALE_PIXELS = 1024 * 1024
"""The largest photo the page upscales (x4 of it is 16 megapixels; the command takes any size)."""
MOST_PROMPTS = 8
"""The most prompts (a row each) one grid on the page draws."""
MOST_WALK_STEPS = 32
MOST_INVERT_STEPS = 2000
SLIDERS = 4
"""Latent coordinates the explore tab offers sliders for at once."""
SLIDER_RANGE = 3.0
SCRATCH_SECONDS = 600
"""How long the scratch folder keeps a file (pictures on their way to the browser, GIFs, upscales)."""


@dataclass
class Server:
    """What the page's actions share: the runs, the loaded models, the upload limits and a
    scratch folder for files the browser downloads."""

    catalog: Catalog
    models: Models
    most_bytes: int = MOST_BYTES
    most_pixels: int = MOST_PIXELS
    scratch: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="zoo-serve-")))
    _count: int = 0
    _swept: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self, name: Any, which: str, tab: str) -> Loaded:
        """The model of a run chosen on the page, for ``tab``."""
        return self.models.get(self.catalog.checkpoint(name, which, tab))

    def upload(self, value: Any, channels: int, height: int = 0, width: int = 0,
               what: str = "the upload") -> torch.Tensor:
        """An upload (or a drawing) as uint8 1 x ``channels`` x H x W: at its own size, or
        fitted to ``height`` x ``width``."""
        picture = read_upload(value, what, self.most_bytes, self.most_pixels, height, width)
        return convert_channels(picture.unsqueeze(0), channels)

    def scratch_file(self, suffix: str) -> Path:
        """A new file name in the scratch folder; files older than :data:`SCRATCH_SECONDS` go
        (looked for once a minute)."""
        with self._lock:
            self._count += 1
            name = f"{time.time_ns()}-{self._count}{suffix}"
            now = time.time()
            if now - self._swept > 60:
                self._swept = now
                for old in self.scratch.iterdir():
                    try:
                        if now - old.stat().st_mtime > SCRATCH_SECONDS:
                            shutil.rmtree(old) if old.is_dir() else old.unlink()
                    except OSError:
                        pass
        return self.scratch / name

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)


@dataclass
class ModelFacts:
    """What the page needs to know of a run's model to show the right controls."""

    model: str
    step: Any
    class_names: list[str]
    text: bool
    directions: list[str]
    latent_dim: int
    encoder: bool
    factor: int


def facts(server: Server, name: Any, which: str, tab: str) -> ModelFacts:
    from zoo.data import superres

    loaded = server.load(name, which, tab)
    model = loaded.model
    return ModelFacts(model.name, loaded.step,
                      list(model.spec.class_names) if model.has(Capability.CLASS_CONDITIONAL) else [],
                      model.has(Capability.TEXT_CONDITIONAL), list(model.directions),
                      int(getattr(model, "latent_dim", 0) or 0), model.has(Capability.ENCODER),
                      superres.factor_of(model) if model.has(Capability.IMAGE_TO_IMAGE) else 1)


# -- runs -----------------------------------------------------------------------------------------

RUN_COLUMNS = ["run", "model", "data", "status", "steps", "headline", "created"]


def runs_rows(server: Server) -> list[list[str]]:
    """The runs as ``zoo runs`` lists them: one row each, the newest last."""
    from zoo.pipelines.runs_table import headline, steps_text

    return [[run.name, run.model or "?", run.data or "?", run.status, steps_text(run), headline(run.evaluation),
             (run.created or "")[:16].replace("T", " ")] for run in server.catalog.runs()]


@dataclass
class RunView:
    losses: Image.Image | None
    preview: Image.Image | None
    progress: Path | None
    text: str
    checkpoint_mtime: float


def run_view(server: Server, name: Any) -> RunView:
    """A run's loss curves (drawn from metrics.jsonl now, so a run still training shows its
    latest), its newest preview and its progress GIF, and a line about where it stands."""
    from zoo.records import checkpoint as ckpt_io
    from zoo.records.run_info import METRICS_FILE, read_metrics, read_run

    run = server.catalog.resolve(name, any_run=True)
    summary = read_run(run)
    losses = None
    records = read_metrics(run / METRICS_FILE)
    if records:
        drawn = figures.loss_curves(records, server.scratch_file(".png"), title=f"{summary.model if summary else ''}")
        losses = _picture(drawn) if drawn is not None else None
    previews = sorted((run / "progress").glob("step-*.png"))
    preview = _picture(previews[-1]) if previews else None
    gif = run / "progress.gif"
    progress = None
    if gif.is_file() and gif.resolve().is_relative_to(server.catalog.root):
        progress = server.scratch_file(".gif")
        shutil.copyfile(gif, progress)
    checkpoint = run / ckpt_io.FILENAME
    mtime = checkpoint.stat().st_mtime if checkpoint.is_file() else 0.0
    if summary is None:
        text = f"{name}: no run.json yet"
    else:
        from zoo.pipelines.runs_table import headline, steps_text

        text = (f"**{summary.name}**: {summary.model} on {summary.data}, {summary.status}, "
                f"{steps_text(summary)} steps" + (f", {headline(summary.evaluation)}" if summary.evaluation else "")
                + (f"; newest preview: {previews[-1].stem}" if previews else ""))
    return RunView(losses, preview, progress, text, mtime)


def _picture(path: Path) -> Image.Image | None:
    """A picture zoo wrote, read whole into memory (None if it is not readable now: a run may
    be writing it)."""
    try:
        with Image.open(path) as img:
            img.load()
            return img.copy()
    except (OSError, ValueError):
        return None


# -- sample ---------------------------------------------------------------------------------------

@dataclass
class Grid:
    """A grid of samples, each image at its own size, a zip of them as PNG files (named as
    ``zoo sample`` names its files), and what they are."""

    grid: Image.Image
    images: list[Image.Image]
    caption: str
    archive: Path


def sample(server: Server, name: Any, which: str = "latest", *, n: int = 16, seed: int = 0,
           class_: str | None = None, noise: str | None = None, truncation: float | None = None,
           text: str | None = None) -> Grid:
    """A grid of ``n`` samples, as ``zoo sample`` draws them for the same settings."""
    from zoo.pipelines import sample as sampling

    within("images", n, 1, MOST_IMAGES)
    loaded = server.load(name, which, "sample")
    model = loaded.model
    prompts = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if len(prompts) > MOST_PROMPTS:
        raise UsageError(f"{len(prompts)} prompts; the page draws up to {MOST_PROMPTS} at once (a row each)")
    within("images", n * max(1, len(prompts)), 1, MOST_IMAGES)
    asked = sampling.request(model, n=n, seed=seed, class_=class_ or None, noise=noise or None,
                             truncation=truncation, text=prompts or None)
    drawn = sampling.draw(model, asked)
    images = drawn.images
    flat = images.flatten(0, 1) if images.dim() == 5 else images
    grid = figures.labelled_grid(images, drawn.nrow, row_labels=drawn.row_labels)
    caption = (f"{n} samples{sampling.describe(model, asked)} of {model.name}, step {loaded.step}, seed {seed}"
               + (f", for {len(prompts)} prompt(s)" if prompts else ""))
    pictures = [figures.to_pil(image) for image in flat]
    names = sampling.file_names(model, asked, drawn)
    folder = server.scratch_file("")
    folder.mkdir()
    archive = folder / f"{model.name}-seed{seed}.zip"
    with zipfile.ZipFile(archive, "w") as packed:
        for name, picture in zip(names, pictures, strict=True):
            data = io.BytesIO()
            picture.save(data, format="PNG")
            packed.writestr(f"{name}.png", data.getvalue())
    return Grid(grid, pictures, caption, archive)


def _enlarged(picture: Image.Image, side: int = 128) -> Image.Image:
    """Small images enlarged by a whole factor, pixels kept sharp, for a browser to show."""
    factor = max(1, side // max(picture.size))
    if factor == 1:
        return picture
    return picture.resize((picture.width * factor, picture.height * factor), Image.Resampling.NEAREST)


# -- explore and interpolate -------------------------------------------------------------------------

def base_values(server: Server, name: Any, which: str, seed: int, dims: Sequence[int]) -> list[float]:
    """The values of latent coordinates ``dims`` in the seed's latent (where sliders start)."""
    from zoo.pipelines.interpolate import seed_latents

    check_seed(seed)
    model = server.load(name, which, "explore").model
    _check_dims(model, dims)
    z = seed_latents(model, [seed])[0].cpu()
    return [float(z[d]) for d in dims]


def explore(server: Server, name: Any, which: str = "latest", *, seed: int = 0, dims: Sequence[int] = (),
            values: Sequence[float] = (), class_: str | None = None,
            latent: Sequence[float] | None = None) -> Image.Image:
    """The image of a seed's latent (or a given ``latent``) with coordinates ``dims`` set to ``values``."""
    from zoo.pipelines.classes import chosen_class
    from zoo.pipelines.interpolate import decoded, seed_latents

    check_seed(seed)
    model = server.load(name, which, "explore").model
    if model.has(Capability.TEXT_CONDITIONAL):
        raise UsageError(f"{model.name} draws from text: the sliders are for models without; walk between two "
                         "prompts below")
    _check_dims(model, dims)
    if len(values) != len(dims) or not all(math.isfinite(v) and abs(v) <= 100 for v in values):
        raise UsageError("each latent coordinate takes a finite value between -100 and 100")
    wanted = _class_for(model, class_)
    if latent is not None:
        z = torch.tensor([list(latent)], dtype=torch.float32)
        if z.shape[1] != model.latent_dim or not torch.isfinite(z).all():
            raise UsageError(f"the latent has {z.shape[1]} values; {model.name}'s have {model.latent_dim}")
    else:
        z = seed_latents(model, [seed]).cpu()
    for d, v in zip(dims, values, strict=True):
        z[0, d] = v
    chosen_class(model, wanted, None)
    return _enlarged(figures.to_pil(decoded(model, z, wanted)[0]), 256)


def _check_dims(model, dims: Sequence[int]) -> None:
    bad = [d for d in dims if not isinstance(d, int) or not 0 <= d < model.latent_dim]
    if bad:
        raise UsageError(f"latent coordinates run from 0 to {model.latent_dim - 1}; got {bad[0]}")


def _class_for(model, class_: str | None) -> str | None:
    """The class asked for; a class-conditional model given none draws its first."""
    from zoo.pipelines.classes import chosen_class

    if not model.has(Capability.CLASS_CONDITIONAL):
        if class_:
            chosen_class(model, class_, None)  # says it is not class-conditional
        return None
    return chosen_class(model, class_ or model.spec.class_names[0], None)


@dataclass
class Walked:
    strip: Image.Image
    animation: Path
    caption: str


def interpolate(server: Server, name: Any, which: str = "latest", *, from_seed: int = 0, to_seed: int = 1,
                steps: int = 8, from_class: str | None = None, to_class: str | None = None,
                from_text: str | None = None, to_text: str | None = None) -> Walked:
    """A walk from one seed (class, prompt) to another: a strip and a there-and-back GIF,
    as ``zoo interpolate`` draws them."""
    from zoo.pipelines.classes import class_index
    from zoo.pipelines.interpolate import default_method, seed_latents, walk

    within("steps", steps, 2, MOST_WALK_STEPS)
    check_seed(from_seed)
    check_seed(to_seed)
    model = server.load(name, which, "explore").model
    texts = None
    if model.has(Capability.TEXT_CONDITIONAL):
        if not (from_text or "").strip() or not (to_text or "").strip():
            raise UsageError(f"{model.name} draws from text: give both prompts")
        texts = (from_text.strip(), to_text.strip())  # type: ignore[union-attr]
        model.encode_text(list(texts), "the prompts")
    start = end = None
    if model.has(Capability.CLASS_CONDITIONAL):
        a_class, b_class = _class_for(model, from_class), _class_for(model, to_class or from_class)
        start = torch.tensor([class_index(model.spec, a_class)])  # type: ignore[arg-type]
        end = torch.tensor([class_index(model.spec, b_class)])  # type: ignore[arg-type]
    method = default_method(model)
    walked = walk(model, seed_latents(model, [from_seed]), seed_latents(model, [to_seed]), steps, method,
                  start, end, texts)
    labels = [f"t={v:.2g}" for v in walked.t.tolist()]
    strip = figures.labelled_grid(walked.frames, column_labels=labels, scale=2)
    frames = [_enlarged(figures.to_pil(frame), 192) for frame in walked.frames[0]]
    there_and_back = frames + frames[-2:0:-1]
    gif = server.scratch_file(".gif")
    there_and_back[0].save(gif, save_all=True, append_images=there_and_back[1:], duration=150, loop=0)
    ends = f"seed {from_seed} -> {to_seed}"
    return Walked(strip, gif, f"{model.name}, {method}, {ends}, {steps} steps")


# -- invert ---------------------------------------------------------------------------------------

@dataclass
class Inverted:
    target: Image.Image
    fitted: Image.Image
    latent: list[float]
    caption: str


def invert(server: Server, name: Any, which: str = "latest", *, image: Any = None, steps: int = 200,
           restarts: int = 4, class_: str | None = None,
           progress: Callable[[int, int], None] | None = None) -> Inverted:
    """The latent whose image is nearest an uploaded one (``zoo invert``'s fit)."""
    from zoo.pipelines.classes import class_index
    from zoo.pipelines.invert import check_fit, fit_latents

    within("steps", steps, 1, MOST_INVERT_STEPS)
    check_fit(steps, restarts)
    loaded = server.load(name, which, "invert")
    model = loaded.model
    spec = model.spec
    target = to_float(server.upload(image, spec.channels, spec.height, spec.width))
    wanted = _class_for(model, class_)
    labels = torch.tensor([class_index(model.spec, wanted)]) if wanted is not None else None
    fit = fit_latents(model, target.to(model.device), labels=labels, steps=steps, restarts=restarts,
                      progress=progress)
    caption = (f"{model.name} (step {loaded.step}): PSNR {float(fit.psnr[0]):.2f} dB, SSIM {float(fit.ssim[0]):.3f}"
               f" after {steps} steps x {restarts} starts")
    return Inverted(_enlarged(figures.to_pil(target[0]), 256), _enlarged(figures.to_pil(fit.images[0].cpu()), 256),
                    fit.z[0].cpu().tolist(), caption)


# -- translate, upscale, reconstruct ---------------------------------------------------------------------

@dataclass
class Pair:
    before: Image.Image
    after: Image.Image
    caption: str
    file: Path | None = None


def translate(server: Server, name: Any, which: str = "latest", *, image: Any = None,
              direction: str | None = None) -> Pair:
    """An image (uploaded or drawn) translated by an image-to-image model, one way."""
    from zoo.pipelines.translate import pick_direction, sheet_title, translated

    loaded = server.load(name, which, "translate")
    model = loaded.model
    direction = pick_direction(model, direction or None)
    spec = model.spec
    channels = spec.channels if direction == "AtoB" else (spec.target_channels or spec.channels)
    source = to_float(server.upload(image, channels, spec.height, spec.width))
    output = translated(model, source, direction)
    return Pair(_enlarged(figures.to_pil(source[0]), 256), _enlarged(figures.to_pil(output[0]), 256),
                f"{sheet_title(model, direction)} (step {loaded.step})")


def upscale(server: Server, name: Any, which: str = "latest", *, image: Any = None,
            progress: Callable[[int, int], None] | None = None) -> Pair:
    """An uploaded photo made larger by a super-resolution model, beside bicubic's; the
    model's picture also as a PNG file to download."""
    from zoo.data import superres
    from zoo.pipelines.upscale import upscaled

    loaded = server.load(name, which, "upscale")
    model = loaded.model
    picture = server.upload(image, model.spec.channels)
    h, w = picture.shape[-2:]
    if h * w > MOST_UPSCALE_PIXELS:
        raise UsageError(f"the upload is {w}x{h}; the page upscales photos of up to {MOST_UPSCALE_PIXELS:,} pixels "
                         f"(1024x1024): zoo upscale {model.name} FILE takes any size")
    total = superres.tiles(picture, model)
    done = [0]

    def tile_done() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    output, baseline = upscaled(model, picture, done=tile_done)
    factor = superres.factor_of(model)
    folder = server.scratch_file("")
    folder.mkdir()
    file = folder / f"{_stem(image)}-x{factor}.png"  # the name the download keeps
    figures.to_pil(output[0]).save(file)
    h, w = picture.shape[-2:]
    return Pair(figures.to_pil(baseline[0]), figures.to_pil(output[0]),
                f"x{factor}: {w}x{h} -> {w * factor}x{h * factor} by {model.name} (step {loaded.step}), "
                f"{total} tile(s); left bicubic, right the model", file)


def _stem(upload: Any) -> str:
    """An upload's file name without its suffix, fit for a file name of ours."""
    from zoo.records.paths import safe_name

    value = upload.get("composite") if isinstance(upload, dict) else upload
    return safe_name(Path(str(value)).stem, "image")[:60] if value else "image"


def reconstruct(server: Server, name: Any, which: str = "latest", *, image: Any = None,
                class_: str | None = None) -> Pair:
    """An image (uploaded or drawn) through the encoder and back, with its PSNR."""
    from zoo.measure import metrics
    from zoo.pipelines.classes import class_index
    from zoo.pipelines.reconstruct import reconstructions

    loaded = server.load(name, which, "reconstruct")
    model = loaded.model
    spec = model.spec
    source = to_float(server.upload(image, spec.channels, spec.height, spec.width))
    wanted = _class_for(model, class_)
    labels = torch.tensor([class_index(spec, wanted)]) if wanted is not None else None
    _, output = reconstructions(model, source, labels)
    psnr = float(metrics.psnr(output.clamp(-1, 1), source)[0])
    return Pair(_enlarged(figures.to_pil(source[0]), 256), _enlarged(figures.to_pil(output[0]), 256),
                f"{model.name} (step {loaded.step}): PSNR {psnr:.2f} dB")


# -- measure --------------------------------------------------------------------------------------

def measured(server: Server, name: Any) -> tuple[list[list[str]], str]:
    """A run's eval.json figures (name, value) and their protocol."""
    from zoo.records.run_info import read_run

    summary = read_run(server.catalog.resolve(name, any_run=True))
    if summary is None or not summary.evaluation:
        return [], f"{name} has not been measured: zoo eval {name}"
    rows = [[key, figures.number(value)] for key, value in summary.figures().items()]
    return rows, f"protocol: {summary.protocol or 'not recorded'}"


def compared(server: Server, names: Sequence[Any]) -> tuple[list[str], list[list[str]], str]:
    """Runs side by side as ``zoo compare`` shows them: a row per run, a column per figure
    any of them has, and a warning when their protocols differ."""
    from zoo.pipelines.runs_table import protocol_warning
    from zoo.records.run_info import read_run

    found = []
    for name in names:
        summary = read_run(server.catalog.resolve(name, any_run=True))
        if summary is not None:
            found.append(summary)
    keys = sorted({key for run in found for key in run.figures()})
    rows = [[run.name, *(figures.number(run.figures()[k]) if k in run.figures() else "" for k in keys)]
            for run in found]
    return ["run", *keys], rows, protocol_warning(found) or ""


def report_html(server: Server, name: Any) -> str:
    """The run's report (``zoo report``'s page), self-contained."""
    from zoo.pipelines.report import render

    return render(server.catalog.resolve(name, any_run=True))
