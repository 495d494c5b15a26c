"""Measure a trained model: ``zoo eval``, and the quick figure ``--eval-every`` logs in training.

What is measured follows the model's capabilities, never its name:

* a model with a latent prior draws ``n`` samples (conditions, a class or a text, taken
  from the reference images, so the classes come in the data's proportions) and is
  compared with the real images of the reference split in an extractor's features:
  Frechet distance, KID, precision/recall, density/coverage (these four on sets of one
  size: :func:`_equal_sets`); plus pixel diversity, the memorisation check against the
  training images, the classifier score, and for class-conditional models the share of
  samples the classifier reads as their class;
* an image-to-image model translates the reference split's inputs: L1, PSNR and SSIM
  against their targets where the data has them, and a Frechet distance to the real
  targets when an extractor fits that domain; a super-resolution model (one trained on
  pairs derived by downscaling, or on paired low- and high-resolution photos) upscales each
  reference image's bicubic downsample whole (tiled; paired photos: their own low-resolution
  half) and is measured as the field does: PSNR and SSIM on the Y channel with ``scale``
  pixels cropped from the border, beside bicubic upsampling of the same inputs, and the
  Laplacian energy of both (:mod:`zoo.data.superres`);
* an encoder reconstructs the reference images: L1, PSNR and SSIM, the reconstructions'
  sharpness and the latent dimensions in use; a model that estimates its likelihood (a VAE)
  adds the held-out negative log-likelihood (:mod:`zoo.pipelines.reconstruct`).

Every sampler's samples are also measured for sharpness against the real images (the mean
Laplacian energy's ratio: below 1 is blurrier than the data), which makes the lecture's
"VAE images are blurry" a number beside a GAN's.

The reference split is the held-out one by default: images the model never trained on.
Every figure carries its protocol (extractor and hash, counts, split, resize), and the
result lands in ``RUN/eval.json``, ``RUN/evals.jsonl`` (every evaluation, in order),
``run.json``, the W&B run's summary and pictures in ``RUN/eval/``.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import Tensor

import zoo
from zoo import features as features_io
from zoo.config import check_seed, within
from zoo.data import superres
from zoo.data.images import as_uint8, to_float
from zoo.data.memory import PreparedData, check_pairs, load_prepared, one_caption
from zoo.display import figures
from zoo.display.console import make_console, progress_bar
from zoo.errors import UsageError, ZooError
from zoo.measure import metrics, swd
from zoo.model import Model
from zoo.pipelines.prep import prepare
from zoo.pipelines.reconstruct import NLL_IMAGES, NLL_SAMPLES, encoder_figures
from zoo.pipelines.sample import MOST_SAMPLES
from zoo.previews import PREVIEW_CLASSES
from zoo.records import files, runs
from zoo.records.paths import safe_name
from zoo.records.run_info import EVAL_FILE, EVAL_METRICS
from zoo.spec import Capability, Condition
from zoo.training import distributed
from zoo.training.devices import resolve_device

SPLITS = {"heldout": "heldout", "test": "heldout", "train": "train"}
"""--split: the held-out images (the data set's test split; ``test`` is the same), or the
training images (to see how much better the model does on what it learnt from)."""
CHUNK = 500
PR_K, DC_K = 3, 5
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000
NEAREST_SHOWN, NEAREST_K = 8, 4
TRAINING_EVAL_SAMPLES = 1000
"""--eval-every draws this many fixed samples for its quick Frechet distance."""
SWD_IMAGES = 4096
"""Images of each set whose patches the sliced Wasserstein distance compares (Karras et al.:
16,384 x 128 patches; 4,096 x 32 keeps it to seconds on a CPU: :data:`zoo.measure.swd.DESCRIPTORS`)."""
MS_SSIM_IMAGES, MS_SSIM_PAIRS = 2000, 2000
SSIM_SAMPLES, SSIM_POOL = 64, 5000


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


def _check_fits(model: Model, reference: Reference, data: str) -> None:
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


def _domain(data: PreparedData, targets: bool) -> PreparedData:
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
    train = _domain(reference.train, targets)
    heldout = _domain(reference.heldout, targets) if reference.heldout is not None else None
    name = spec or features_io.default_for(train.spec)
    return features_io.load(name, features_io.Reference(str(train.meta.get("name", "data")), train, heldout,
                                                        console=console, options=options or {}))


def _count(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def protocol(figure: str, extractor: features_io.FeatureExtractor, generated: int, reference: Reference,
             reference_count: int, prdc: int | None = None) -> dict[str, Any]:
    """A figure's protocol: its name (``fid10k+prdc1k/classifier:mnist@1a2b3c4d/heldout``:
    10,000 samples for the Frechet distance, precision, recall, density and coverage on
    1,000 of each set) and what the name abbreviates."""
    counts = _count(generated) + (f"+prdc{_count(prdc)}" if prdc is not None else "")
    return {"name": f"{figure}{counts}/{extractor.tag}/{reference.split_name}",
            "extractor": extractor.name, "extractor_hash": extractor.weights_hash,
            "extractor_accuracy": extractor.accuracy, "generated": generated, "reference": reference_count,
            "split": reference.split_name, "resize": extractor.resize if extractor.resize != "none" else
            f"none ({reference.split.spec.height}x{reference.split.spec.width})",
            "data": reference.name, "images": "8-bit, as saved"}


# -- drawing samples ---------------------------------------------------------------------------------

def reference_order(reference: PreparedData, n: int, generator: torch.Generator) -> torch.Tensor:
    """Which reference image each of ``n`` samples takes its conditions from: a shuffled cycle."""
    return torch.randperm(len(reference), generator=generator).repeat(math.ceil(n / max(1, len(reference))))[:n]


def conditions_for(model: Model, reference: PreparedData, n: int, generator: torch.Generator,
                   order: torch.Tensor | None = None) -> dict[str, Any]:
    """Each sample's conditions, drawn from the reference images' own (a shuffled cycle), so
    a class-conditional model makes the classes in the data's proportions, and a
    text-conditional one draws from the reference images' captions (one of each at random)."""
    needs = model.needs()
    if not needs:
        return {}
    order = reference_order(reference, n, generator) if order is None else order
    out: dict[str, Any] = {}
    for condition in needs:
        if condition is Condition.CLASS:
            if reference.labels is None:
                raise UsageError(f"{model.name} is class-conditional, and the reference images have no labels")
            out[condition.value] = reference.labels[order]
        else:
            values = reference.conditions.get(condition.value)
            if values is None:
                raise UsageError(f"{model.name} needs a {condition.value} for each image, and the reference "
                                 f"images have none")
            out[condition.value] = one_caption(values[order], generator) if condition is Condition.TEXT \
                else values[order]
    return out


def draw(model: Model, n: int, conditions: dict[str, Any], seed: int, progress: Any = None,
         cluster: distributed.Cluster | None = None) -> Tensor:
    """``n`` samples as 8-bit images (as saved to PNG), on the CPU, in chunks of ``CHUNK``,
    each drawn from a seeded generator of its own: the same samples however many processes
    draw them. Under torchrun each process draws every world-th chunk and returns its own
    (see :func:`gathered`)."""
    cluster = cluster or distributed.Cluster()
    out = [torch.zeros((0, *model.spec.target_shape), dtype=torch.uint8)]  # a process may draw no chunk
    for chunk, start in enumerate(range(0, n, CHUNK)):
        if chunk % cluster.world != cluster.rank:
            continue
        count = min(CHUNK, n - start)
        generator = torch.Generator().manual_seed(seed if chunk == 0 else seed * 1_000_003 + chunk)
        given = {k: v[start:start + count] for k, v in conditions.items()}
        out.append(as_uint8(model.sample(count, generator=generator, conditions=given).cpu()))
        if progress is not None:
            progress(count * cluster.world)
    return torch.cat(out)


def gathered(mine: Tensor, n: int, cluster: distributed.Cluster) -> Tensor:
    """Every process's part of :func:`draw`'s ``n`` rows (samples, or their features), in the
    order one process would have drawn them."""
    if not cluster.distributed:
        return mine
    every = cluster.gather(mine)
    owner = torch.cat([torch.full((min(CHUNK, n - start),), chunk, dtype=torch.int64)
                       for chunk, start in enumerate(range(0, n, CHUNK))])
    rank_of = owner % cluster.world
    # gather() puts rank 0's rows first, then rank 1's...: the position of each row there
    order = torch.cat([torch.nonzero(rank_of == r).flatten() for r in range(cluster.world)])
    out = torch.empty_like(every)
    out[order] = every
    return out


# -- zoo eval -----------------------------------------------------------------------------------------

def evaluate(target: str, *, n: int = 10_000, features: str | None = None, split: str = "heldout",
             checkpoint: str = "latest", seed: int = 0, batch_size: int = CHUNK, device: str = "auto",
             data: str | None = None, wandb: str = "auto", console: Console | None = None,
             extractor_options: dict[str, Any] | None = None, nll_samples: int = NLL_SAMPLES,
             nll_images: int = NLL_IMAGES, text_encoder: Path | None = None) -> dict[str, Any]:
    """Evaluate a run's checkpoint; returns what was written to ``RUN/eval.json``. ``data``
    judges it against another data set than its own (at the run's size and channels): a
    model trained on one class against every class, say."""
    within("--n", n, DC_K + 1, MOST_SAMPLES)  # the most any figure needs: density and coverage's k + 1
    within("--batch-size", batch_size, 1, 100_000)
    within("--nll-samples", nll_samples, 1, 100_000)
    within("--nll-images", nll_images, 1, MOST_SAMPLES)
    check_seed(seed)
    started = time.perf_counter()
    path = runs.find_checkpoint(target, checkpoint)
    cluster, device = distributed.join(device)
    try:
        console = (console or make_console()) if cluster.writer else Console(quiet=True)
        model, ckpt = runs.load_model(path, resolve_device(device), text_encoder=text_encoder)
        model.eval()
        if cluster.distributed and not (model.has(Capability.LATENT) and not model.has(Capability.IMAGE_TO_IMAGE)):
            console.print(f"note: {model.name}'s figures are measured by process 0 alone (under torchrun, "
                          "sampling models share the drawing)")
            if not cluster.writer:
                return {}
            cluster = distributed.Cluster()
        return _evaluate(model, ckpt, path, cluster, target, n=n, features=features, split=split,
                         checkpoint=checkpoint, seed=seed, batch_size=batch_size, data=data, wandb=wandb,
                         console=console, extractor_options=extractor_options, nll_samples=nll_samples,
                         nll_images=nll_images, started=started)
    finally:
        distributed.leave()


def _evaluate(model: Model, ckpt: Any, path: Path, cluster: distributed.Cluster, target: str, *, n: int,
              features: str | None, split: str, checkpoint: str, seed: int, batch_size: int, data: str | None,
              wandb: str, console: Console, extractor_options: dict[str, Any] | None, nll_samples: int,
              nll_images: int, started: float) -> dict[str, Any]:
    if not (model.has(Capability.LATENT) or model.has(Capability.IMAGE_TO_IMAGE) or model.has(Capability.ENCODER)):
        raise UsageError(f"{model.name} neither samples, translates nor encodes images: nothing to measure")
    record = ckpt.train["data"]
    if data is not None:
        record = {"source": data, "size": record.get("size"), "channels": record.get("channels"),
                  "data_dir": record.get("data_dir")}
    with cluster.rank_zero_first():  # under torchrun rank 0 prepares the data; the others read it
        reference = reference_data(record, split, console)
    if data is not None:
        _check_fits(model, reference, data)
    run_dir = path.parent
    pictures = run_dir / "eval"  # made by the first picture written: a refusal before it leaves none
    result: dict[str, Any] = {}
    details: dict[str, Any] = {}
    if model.has(Capability.LATENT) and not model.has(Capability.IMAGE_TO_IMAGE):
        _generation(model, reference, n, features, seed, batch_size, console, pictures, result, details,
                    extractor_options, cluster)
        if not cluster.writer:
            return {}
    if model.has(Capability.IMAGE_TO_IMAGE) and superres.factor_of(model) > 1:
        _super_resolution(model, reference, n, batch_size, console, pictures, result, details)
    elif model.has(Capability.IMAGE_TO_IMAGE):
        _translation(model, reference, features, batch_size, console, pictures, result, details,
                     extractor_options)
    elif model.has(Capability.ENCODER):  # a VAE is also measured as a sampler above
        encoder_figures(model, reference.split, pictures, result, details, nll_samples=nll_samples,
                        nll_images=nll_images, seed=seed, console=console)
        if "protocol" not in details:
            details["protocol"] = {"name": f"reconstruction{_count(len(reference.split))}/{reference.split_name}",
                                   "split": reference.split_name, "data": reference.name,
                                   "reference": len(reference.split), "images": "8-bit, as saved"}
    result.update({
        "protocol": details.get("protocol", {}).get("name", f"pairs/{reference.split_name}"),
        "protocol_detail": details.get("protocol", {"split": reference.split_name, "data": reference.name,
                                                    "reference": len(reference.split)}),
        "checkpoint": {"which": "file" if Path(target).expanduser().is_file() else checkpoint, "path": str(path),
                       "step": ckpt.train.get("step"), "images": ckpt.train.get("images")},
        "model": model.name, "data": ckpt.train["data"]["source"], "reference_data": record["source"],
        "seconds": round(time.perf_counter() - started, 2),
        "evaluated": time.strftime("%Y-%m-%dT%H:%M:%S"), "zoo_version": zoo.__version__,
    })
    result.update({k: v for k, v in details.items() if k not in ("protocol",)})
    _record(run_dir, result, wandb, console, pictures)
    _report(result, console)
    return result


def _generation(model: Model, reference: Reference, n: int, features: str | None, seed: int, batch_size: int,
                console: Console, pictures: Path, result: dict[str, Any], details: dict[str, Any],
                extractor_options: dict[str, Any] | None, cluster: distributed.Cluster) -> None:
    with cluster.rank_zero_first():  # a feature extractor zoo trains is trained once, by rank 0
        extractor = load_extractor(features, reference, console, options=extractor_options).to(model.device)
    real = reference.split
    if model.text_encoder is not None:  # the captions as the model's own encoder embeds them
        from zoo.pipelines.captioned import embedded_by

        real, again = embedded_by(real, model.text_encoder)
        if again and console is not None:
            console.print(f"[cyan]note:[/] the reference captions were embedded again by {model.name}'s own text "
                          "encoder (the data was prepared with another)")
    generator = torch.Generator().manual_seed(seed)
    order = reference_order(real, n, generator) if model.needs() else None  # which image each sample asks after
    conditions = conditions_for(model, real, n, generator, order)
    timings: dict[str, float] = {}
    with progress_bar(console, transient=True) as bar:
        task = bar.add_task(f"drawing {n:,} samples of {model.name}", total=n)
        t = time.perf_counter()
        mine = draw(model, n, conditions, seed, lambda k: bar.advance(task, k), cluster)
        timings["sampling"] = time.perf_counter() - t
        bar.update(task, description=f"features ({extractor.tag})", completed=0,
                   total=n + len(real) + len(reference.train))
        t = time.perf_counter()
        # Under torchrun each process extracts its own samples' features; process 0 gathers them.
        fake_f = gathered(extractor.extract(mine, batch_size).to(model.device), n, cluster).cpu()
        samples = gathered(mine.to(model.device), n, cluster).cpu()
        if not cluster.writer:
            return
        bar.advance(task, n)
        real_f = extractor.extract(real.images, batch_size)
        bar.advance(task, len(real))
        train_f = extractor.extract(reference.train.images, batch_size)
        bar.advance(task, len(reference.train))
        timings["features"] = time.perf_counter() - t
        bar.update(task, description="metrics", completed=0, total=None)
        t = time.perf_counter()
        result["fid"] = metrics.frechet_distance(real_f, fake_f)
        result["kid"], result["kid_std"] = metrics.kernel_distance(real_f, fake_f, KID_SUBSETS, KID_SUBSET_SIZE, seed)
        real_prdc, fake_prdc = _equal_sets(real_f, fake_f, order, seed)
        result["precision"], result["recall"] = metrics.precision_recall(real_prdc, fake_prdc, PR_K)
        result["density"], result["coverage"] = metrics.density_coverage(real_prdc, fake_prdc, DC_K)
        result["diversity"] = metrics.diversity(to_float(samples[:2000]), to_float(real.images[:2000]))
        result["sharpness"] = metrics.sharpness(to_float(samples[:2000]), to_float(real.images[:2000]))
        _karras_figures(samples, reference, seed, result, details)
        held = reference.heldout if reference.heldout is not None else None
        copies = None
        if held is not None and len(held) >= 2:
            held_f = real_f if reference.split is held else extractor.extract(held.images, batch_size)
            copies = metrics.memorisation(fake_f, train_f, held_f)
            result["memorisation"], result["memorisation_reference"] = copies.share, copies.reference
        classifier = extractor if extractor.classes else None
        # A text-conditional model on labelled data is asked, in words, for the class of the
        # image whose caption it draws from: the classifier checks that it drew one.
        asked = conditions.get(Condition.CLASS.value)
        if asked is None and model.has(Capability.TEXT_CONDITIONAL) and real.labels is not None and order is not None:
            asked = real.labels[order]
            details["class_accuracy_of"] = "the class of the reference image whose caption each sample was drawn from"
        if asked is not None and classifier is None:
            classifier = load_extractor("classifier", reference, console, options=extractor_options).to(model.device)
        if classifier is not None:
            logits = classifier.extract(samples, batch_size, logits=True)
            result["classifier_score"] = metrics.classifier_score(logits)
            names = (list(model.spec.class_names) if model.has(Capability.CLASS_CONDITIONAL)
                     else list(real.meta.get("class_names", ())))
            if asked is not None and names:
                overall, per_class = metrics.class_accuracy(logits.argmax(1), asked, len(names))
                result["class_accuracy"] = overall
                result["class_accuracy_per_class"] = {names[c]: v for c, v in enumerate(per_class)}
                details["class_accuracy_classifier"] = {"tag": classifier.tag, "accuracy": classifier.accuracy}
        timings["metrics"] = time.perf_counter() - t
    equal = min(n, len(real))
    details["protocol"] = protocol("fid", extractor, n, reference, len(real), prdc=equal)
    details["protocol"].update(kid={"subsets": KID_SUBSETS,
                                    "subset_size": min(KID_SUBSET_SIZE, n // 2, len(real) // 2)},
                               precision_recall_k=PR_K, density_coverage_k=DC_K,
                               prdc={"generated": equal, "reference": equal, "chosen": PRDC_CHOSEN})
    details["timings"] = {k: round(v, 2) for k, v in timings.items()}
    _generation_pictures(model, samples, conditions, reference, copies, fake_f, train_f, pictures, result)


PRDC_CHOSEN = ("sets of one size, the larger cut to the smaller's: the first samples drawn; the reference images "
               "whose conditions they drew from (conditional models), else a random subset (seeded)")


def _equal_sets(real: Tensor, fake: Tensor, order: Tensor | None, seed: int) -> tuple[Tensor, Tensor]:
    """The real and generated features that precision, recall, density and coverage compare:
    sets of one size, as Kynkaanniemi et al. and Naeem et al. measure them. With more samples
    than real images (10,000 against 1,000 held-out digits), each real image's neighbourhood
    holds several samples, and coverage (and recall) climb towards 1 whatever the model.
    The larger set is cut to the smaller's size: the first samples (each drawn on its own;
    a conditional model's first ones ask after distinct reference images, ``order``), and
    of the real images, the ones those samples drew their conditions from, or without
    conditions a seeded random subset."""
    equal = min(len(real), len(fake))
    if len(real) > equal:
        chosen = order[:equal] if order is not None else \
            torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))[:equal]
        real = real[chosen]
    return real, fake[:equal]


def _karras_figures(samples: Tensor, reference: Reference, seed: int, result: dict[str, Any],
                    details: dict[str, Any]) -> None:
    """The figures of Karras et al. (2018), which need no network: the sliced Wasserstein
    distance on Laplacian pyramid patches (with the same between real training and held-out
    images, the floor) and MS-SSIM among samples (with the same among real images). Each set
    is a seeded random subset (a folder's images come class by class)."""
    real, train = reference.split.images, reference.train.images
    count = min(SWD_IMAGES, len(samples), len(real))
    if min(samples.shape[-2:]) < swd.PATCH or count < 2:
        return

    def subset(images: Tensor, k: int) -> Tensor:
        return images[torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:k]]

    chosen_real = subset(real, count)
    levels = swd.swd(chosen_real, subset(samples, count), seed=seed)
    result["swd"] = sum(levels.values()) / len(levels)
    result["swd_per_level"] = {f"{side}px": v for side, v in levels.items()}
    protocol_swd: dict[str, Any] = {
        "images": count, "patches_per_image": swd.patches_per_image(count), "patch": swd.PATCH,
        "directions": swd.DIRECTIONS * swd.REPEATS, "levels": list(result["swd_per_level"]), "scale": "x1000"}
    floor_count = min(count, len(train))
    if reference.split is not reference.train and floor_count >= 2:
        floor = swd.swd(chosen_real[:floor_count], subset(train, floor_count), seed=seed)
        result["swd_reference"] = sum(floor.values()) / len(floor)
        protocol_swd["reference"] = f"{floor_count} real training images against the split's"
    result["ms_ssim"] = metrics.pairwise_ms_ssim(to_float(subset(samples, MS_SSIM_IMAGES)), MS_SSIM_PAIRS, seed)
    result["ms_ssim_reference"] = metrics.pairwise_ms_ssim(to_float(subset(real, MS_SSIM_IMAGES)), MS_SSIM_PAIRS,
                                                           seed)
    scales, window = metrics.ms_ssim_scales(min(samples.shape[-2:]))
    details["karras"] = {"swd": protocol_swd,
                         "ms_ssim": {"pairs": MS_SSIM_PAIRS, "scales": scales, "window": window,
                                     "reference": "random pairs of the split's real images"}}


def _generation_pictures(model: Model, samples: Tensor, conditions: dict[str, Any], reference: Reference,
                         copies: metrics.Memorisation | None, fake_f: Tensor, train_f: Tensor, pictures: Path,
                         result: dict[str, Any]) -> None:
    if model.has(Capability.CLASS_CONDITIONAL):
        labels = conditions[Condition.CLASS.value]
        per = 8
        rows, names = [], []
        for c, name in enumerate(model.spec.class_names[:PREVIEW_CLASSES]):
            chosen = samples[labels == c][:per]
            if len(chosen):  # one strip per class too, for W&B's table of samples per class
                figures.save_grid(to_float(chosen), pictures / "classes" / f"{safe_name(name, 'class')}.png", nrow=per)
            if len(chosen) == per:
                rows.append(chosen)
                names.append(name)
        if rows:
            _sheet(torch.cat(rows), pictures / "samples.png", per, rows=names)
    else:
        _sheet(samples[:64], pictures / "samples.png", 8)
    if copies is not None:
        shown = fake_f[:NEAREST_SHOWN]
        index = metrics.nearest(shown, train_f, NEAREST_K)[1]
        cells = torch.cat([torch.cat([samples[i:i + 1], reference.train.images[index[i]]]) for i in range(len(shown))])
        _sheet(cells, pictures / "nearest.png", 1 + NEAREST_K,
               columns=["sample"] + [f"nearest {k + 1}" for k in range(NEAREST_K)])
    per_class = result.get("class_accuracy_per_class")
    if per_class:
        figures.bar_chart(per_class, pictures / "classes.png", title="class accuracy of the samples",
                          ylabel="read as the class asked", limit=(0, 1))


def _sheet(images: Tensor, path: Path, nrow: int, rows: list[str] | None = None,
           columns: list[str] | None = None, title: str | None = None) -> None:
    images = to_float(images) if images.dtype == torch.uint8 else images
    figures.save_grid(images, path, nrow=nrow, scale=2 if images.shape[-1] <= 32 else 1,
                      row_labels=rows, column_labels=columns, title=title)


def _pairs(model: Model, data: PreparedData) -> tuple[Tensor, Tensor | None]:
    """The inputs to translate, and their targets where the data has them."""
    if data.targets is not None and model.spec.pairing == "paired":
        return data.images, data.targets
    derivation = superres.derivation_of(type(model), model.config)
    if derivation is not None and data.targets is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # a derivation's random crops
            inputs, targets = derivation(to_float(data.images))
        return as_uint8(inputs), as_uint8(targets)
    return data.images, None


def _translation(model: Model, reference: Reference, features: str | None, batch_size: int, console: Console,
                 pictures: Path, result: dict[str, Any], details: dict[str, Any],
                 extractor_options: dict[str, Any] | None) -> None:
    inputs, targets = _pairs(model, reference.split)
    direction = model.directions[0] if model.directions else "AtoB"
    outputs = []
    with torch.no_grad():
        for chunk in inputs.split(batch_size):
            outputs.append(as_uint8(model.translate(to_float(chunk).to(model.device), direction).cpu()))
    out = torch.cat(outputs)
    if targets is not None:
        a, b = to_float(out), to_float(targets)
        result.update(metrics.paired_scores(a, b))
        shown = min(8, len(out))
        columns = [to_float(inputs[:shown]), a[:shown], b[:shown]]
        figures.save_grid(zoo.image_rows(*columns), pictures / "samples.png",
                          column_labels=["input", "output", "target"],
                          title=f"{model.name} on held-out pairs" if reference.split_name == "heldout" else None)
    # A Frechet distance to the real images of the output domain, when an extractor fits it.
    real = reference.split.targets if reference.split.targets is not None else targets
    if real is None or len(real) < PR_K + 2:
        return
    try:
        extractor = load_extractor(features, reference, console, targets=reference.split.targets is not None,
                                   options=extractor_options).to(model.device)
    except UsageError as exc:
        if features is not None:
            raise
        details["fid_skipped"] = str(exc)
        return
    real_f, fake_f = extractor.extract(real, batch_size), extractor.extract(out, batch_size)
    result["fid"] = metrics.frechet_distance(real_f, fake_f)
    details["protocol"] = protocol("fid", extractor, len(out), reference, len(real))


SR_SHOWN, SR_WINDOW = 4, 128


def _super_resolution(model: Model, reference: Reference, n: int, batch_size: int, console: Console,
                      pictures: Path, result: dict[str, Any], details: dict[str, Any]) -> None:
    """Each reference image whole (the photos at full size): its bicubic downsample upscaled
    by the model and by bicubic, both measured against it (Y channel, border cropped)."""
    from zoo.display.console import track

    factor = superres.factor_of(model)
    data = reference.split
    items: list[Tensor] = ([p.unsqueeze(0) for p in data.photos] if data.photos is not None
                           else list(data.images[:n].split(batch_size)))[:n]
    given = data.target_photos  # paired low- and high-resolution photos: the data's own low ones
    if given is not None and data.photos is not None:
        check_pairs(data.photos, given, factor, reference.name, model.name)
    scores = superres.Scores()
    shown: list[list[Tensor]] = [[], [], [], []]
    with torch.no_grad():
        for k, item in enumerate(track(items, description="upscaling", console=console, transient=True,
                                       disable=len(items) < 2)):
            if given is not None:
                low, high = item, given[k].unsqueeze(0)
            else:
                high, low = superres.shrink(item, factor)
            lowf = to_float(low).to(model.device)
            out = as_uint8(torch.cat([superres.upscale(model, im.unsqueeze(0), factor) for im in lowf]).cpu())
            base = as_uint8(superres.bicubic(lowf, factor).cpu())
            for i in range(len(high)):
                superres.measure(out[i:i + 1], base[i:i + 1], high[i:i + 1], factor, scores)
                if len(shown[0]) < SR_SHOWN:
                    window = SR_WINDOW if data.photos is not None else max(high.shape[-2:])
                    for column, images in zip(shown, (low, base, out, high), strict=True):
                        column.append(to_float(superres.centre_window(images[i], window // factor if
                                                                     images is low else window)))
    def mean(values: list[float]) -> float:
        return round(statistics.fmean(values), 4)

    result.update({"psnr_y": mean(scores.psnr), "ssim_y": mean(scores.ssim),
                   "bicubic_psnr_y": mean(scores.bicubic_psnr), "bicubic_ssim_y": mean(scores.bicubic_ssim),
                   "laplacian_energy": mean(scores.energy), "bicubic_laplacian_energy": mean(scores.bicubic_energy),
                   "original_laplacian_energy": mean(scores.original_energy),
                   "grid_artefact": mean(scores.grid), "original_grid_artefact": mean(scores.original_grid)})
    result["sharpness"] = round(result["laplacian_energy"] / max(result["original_laplacian_energy"], 1e-12), 4)
    details["per_image"] = {"psnr_y": [round(v, 3) for v in scores.psnr],
                            "bicubic_psnr_y": [round(v, 3) for v in scores.bicubic_psnr]}
    inputs = ("the data's own low-resolution photos (A)" if given is not None
              else "each image's bicubic (antialiased) downsample")
    convention = (f"x{factor}: PSNR and SSIM on the Y channel (BT.601) with {factor} px cropped from each border, "
                  f"8-bit images; inputs are {inputs}")
    details["protocol"] = {"name": f"sr-x{factor}-y-border{factor}/{reference.split_name}",
                           "split": reference.split_name, "data": reference.name, "reference": len(scores.psnr),
                           "convention": convention}
    columns = [torch.stack(column) if len({c.shape for c in column}) == 1 else None for column in shown]
    if all(c is not None for c in columns):
        figures.save_grid(zoo.image_rows(*[c for c in columns if c is not None]), pictures / "sheet.png",
                          column_labels=["input", "bicubic", model.name, "original"],
                          title=f"{model.name} x{factor}, {reference.split_name} images of "
                                f"{reference.name.rstrip('/').rsplit('/', 1)[-1]} (centre crops)")
    else:  # windows of different sizes (small photos): one sheet each
        for i in range(len(shown[0])):
            figures.save_grid(zoo.image_rows(*[column[i].unsqueeze(0) for column in shown]),
                              pictures / f"sheet-{i + 1}.png",
                              column_labels=["input", "bicubic", model.name, "original"])
    console.print(f"[cyan]note:[/] {convention}", highlight=False)


# -- where the figures go -------------------------------------------------------------------------------

HEADLINE = tuple(EVAL_METRICS)


def _record(run_dir: Path, result: dict[str, Any], wandb: str, console: Console, pictures: Path) -> None:
    """eval.json (this evaluation), evals.jsonl (all of them), run.json and W&B's summary."""
    text = json.dumps(result, indent=2)
    files.write_text(run_dir / EVAL_FILE, text, "eval.json")
    with (run_dir / "evals.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(result) + "\n")
    # Only run.json's eval entry is ours: a training that is still running writes the rest.
    info = runs.update_run_info(run_dir, {runs.EVAL_ENTRY: {
        **{k: result[k] for k in HEADLINE if k in result}, "protocol": result["protocol"],
        "step": result["checkpoint"]["step"], "checkpoint": result["checkpoint"]["which"]}}, create=False) or {}
    if info.get("wandb_id") and info.get("wandb", "off") != "off" and wandb != "off":
        from zoo.records.tracking import open_tracker

        tracker = open_tracker(wandb, run_dir, run_dir.name, {"model": result["model"], "data": result["data"]},
                               console, run_id=info["wandb_id"])
        tracker.summary({f"eval/{k}": result[k] for k in HEADLINE if k in result} |
                        {"eval/protocol": result["protocol"]})
        per_class = result.get("class_accuracy_per_class") or {}
        strips = {name: pictures / "classes" / f"{safe_name(name, 'class')}.png" for name in per_class}
        tracker.samples_table("eval/samples", sorted(pictures.glob("*.png")), per_class,
                              {k: v for k, v in strips.items() if v.is_file()})
        tracker.finish()


def _report(result: dict[str, Any], console: Console) -> None:
    from rich.table import Table

    table = Table(title=f"{result['model']} on {result['data']} (step {result['checkpoint']['step']}), "
                        f"{result['protocol']}", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("", style="dim")
    for key in HEADLINE:
        if key in result:
            value = result[key]
            shown = f"{value:.4f}" if key == "kid" else str(value) if isinstance(value, int) else f"{value:.3f}"
            if key == "kid":
                shown += f" ± {result['kid_std']:.4f}"
            table.add_row(key, shown, EVAL_METRICS[key][1])
    console.print(table)
    per_class = result.get("class_accuracy_per_class")
    if per_class:
        worst = min((v, k) for k, v in per_class.items() if v is not None)
        console.print("class accuracy per class: " + ", ".join(f"{k} {v:.1%}" for k, v in per_class.items()
                                                                 if v is not None)
                      + f" (worst: {worst[1]} {worst[0]:.1%})", highlight=False)
    acc = result.get("protocol_detail", {}).get("extractor_accuracy")
    if acc is not None:
        console.print(f"the classifier reads {acc:.1%} of the real held-out images right", highlight=False)
    likelihood = result.get("likelihood")
    if likelihood:
        split = "held-out" if result.get("protocol_detail", {}).get("split") == "heldout" else "training-image"
        console.print(f"{split} NLL {result['nll']:.2f} nats per image ({result['bits_per_dim']:.4f} bits/dim; "
                      f"the ELBO's bound: {result['nll_elbo']:.2f}), {likelihood['samples']} importance samples "
                      f"on {likelihood['images']:,} images of {likelihood['of']}", highlight=False)
    if "fid_skipped" in result:
        console.print(f"no Frechet distance: {result['fid_skipped']}", highlight=False)
    console.print(f"-> {result['checkpoint']['path'].rsplit('/', 1)[0]}/eval.json ({result['seconds']:.1f}s)",
                  highlight=False)


# -- during training -------------------------------------------------------------------------------------

@dataclass
class TrainingEval:
    """The quick figures ``--eval-every`` logs: a Frechet distance of fixed samples to the
    reference images (or for translators the L1 of fixed held-out pairs), and seed 000's
    curve, the mean SSIM between fixed samples and their nearest training images."""

    key: str
    protocol: str
    features: str | None = None
    """The extractor's name as ``--eval-features`` gives it (the default resolved): what a
    resumed run measures in again. None for translators, whose L1 needs none."""
    extractor: features_io.FeatureExtractor | None = None
    real_features: Tensor | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    pool: Tensor | None = None

    @staticmethod
    def check(model: Model, prepared: PreparedData, features: str | None) -> None:
        """What :meth:`build` would refuse, without its work: before the run folder is made."""
        if model.has(Capability.IMAGE_TO_IMAGE):
            paired = prepared.targets is not None and model.spec.pairing == "paired"
            derived = prepared.targets is None and superres.derivation_of(type(model), model.config) is not None
            if not (paired or derived):
                raise UsageError(f"--eval-every: {model.name}'s data has no targets to measure its outputs against")
        elif not model.has(Capability.LATENT):
            raise UsageError(f"--eval-every: {model.name} neither samples nor translates")
        else:
            features_io.check_spec(features or features_io.default_for(prepared.spec))

    @classmethod
    def build(cls, model: Model, prepared: PreparedData, features: str | None, seed: int,
              console: Console) -> TrainingEval:
        heldout = load_prepared(prepared.path, "heldout") if prepared.meta.get("heldout") else None
        reference = Reference(prepared, heldout if heldout is not None else prepared,
                              "heldout" if heldout is not None else "train", heldout)
        if model.has(Capability.IMAGE_TO_IMAGE):
            inputs, targets = _pairs(model, reference.split)
            if targets is None:
                raise UsageError(f"--eval-every: {model.name}'s data has no targets to measure its outputs against")
            return cls("l1", f"l1/{reference.split_name}", inputs={"images": inputs[:256], "targets": targets[:256]})
        if not model.has(Capability.LATENT):
            raise UsageError(f"--eval-every: {model.name} neither samples nor translates")
        features = features or features_io.default_for(reference.train.spec)
        extractor = load_extractor(features, reference, console).to(model.device)
        real_features = extractor.extract(reference.split.images)
        generator = torch.Generator().manual_seed(seed + 1)
        n = TRAINING_EVAL_SAMPLES
        conditions = conditions_for(model, reference.split, n, generator)
        pool_index = torch.randperm(len(prepared), generator=generator)[:SSIM_POOL]
        name = protocol("fd", extractor, n, reference, len(reference.split))["name"]
        return cls("fd", name, features, extractor, real_features,
                   {"conditions": conditions, "seed": seed + 1, "n": n}, prepared.images[pool_index])

    @torch.no_grad()
    def __call__(self, model: Model) -> dict[str, float]:
        if self.key == "l1":
            a = torch.cat([model.translate(to_float(x).to(model.device), model.directions[0]
                                           if model.directions else "AtoB").cpu()
                           for x in self.inputs["images"].split(CHUNK)])
            a = to_float(as_uint8(a))
            b = to_float(self.inputs["targets"])
            return {"l1": float(((a - b).abs() / 2).mean()), "psnr": float(metrics.psnr(a, b).mean())}
        assert self.extractor is not None and self.real_features is not None and self.pool is not None
        samples = draw(model, self.inputs["n"], self.inputs["conditions"], self.inputs["seed"])
        fd = metrics.frechet_distance(self.real_features, self.extractor.extract(samples))
        shown = to_float(samples[:SSIM_SAMPLES])
        pool = to_float(self.pool)
        index = metrics.nearest(shown.flatten(1), pool.flatten(1))[1][:, 0]
        return {"fd": fd, "ssim_train": float(metrics.ssim(shown, pool[index]).mean())}


def check_eval_every(value: int | None) -> None:
    if value is not None and value < 1:
        raise UsageError(f"--eval-every must be at least 1, got {value}")


__all__ = ["SPLITS", "TrainingEval", "ZooError", "evaluate", "reference_data"]
