"""Models that sample: ``n`` samples against the reference images in an extractor's features (Frechet
distance, KID, precision/recall and density/coverage on sets of one size), sharpness, diversity, the
memorisation check, the classifier score, the class read, Karras et al.'s SWD and MS-SSIM, and the
sample sheets."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import Tensor

from zoo.data.images import as_uint8, to_float
from zoo.data.memory import PreparedData, one_caption
from zoo.display import figures
from zoo.display.console import progress_bar
from zoo.errors import UsageError
from zoo.features import reference_features
from zoo.measure import metrics, swd
from zoo.model import Model
from zoo.pipelines.evaluate.reference import Reference, load_extractor, protocol
from zoo.previews import PREVIEW_CLASSES
from zoo.records.paths import safe_name
from zoo.spec import Capability, Condition
from zoo.training import distributed

CHUNK = 500


PR_K, DC_K = 3, 5


KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000


NEAREST_SHOWN, NEAREST_K = 8, 4


SWD_IMAGES = 4096
"""Images of each set whose patches the sliced Wasserstein distance compares (Karras et al.:
16,384 x 128 patches; 4,096 x 32 keeps it to seconds on a CPU: :data:`zoo.measure.swd.DESCRIPTORS`)."""


MS_SSIM_IMAGES, MS_SSIM_PAIRS = 2000, 2000


SSIM_SAMPLES, SSIM_POOL = 64, 5000


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


def sampler_figures(model: Model, reference: Reference, n: int, features: str | None, seed: int, batch_size: int,
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
        real_f = reference_features(extractor, real, batch_size)
        bar.advance(task, len(real))
        train_f = reference_features(extractor, reference.train, batch_size)
        bar.advance(task, len(reference.train))
        timings["features"] = time.perf_counter() - t
        bar.update(task, description="metrics", completed=0, total=None)
        t = time.perf_counter()
        result["fid"] = metrics.frechet_distance(real_f, fake_f)
        result["kid"], result["kid_std"] = metrics.kernel_distance(real_f, fake_f, KID_SUBSETS, KID_SUBSET_SIZE, seed)
        real_prdc, fake_prdc = equal_sets(real_f, fake_f, order, seed)
        result["precision"], result["recall"] = metrics.precision_recall(real_prdc, fake_prdc, PR_K)
        result["density"], result["coverage"] = metrics.density_coverage(real_prdc, fake_prdc, DC_K)
        result["diversity"] = metrics.diversity(to_float(samples[:2000]), to_float(real.images[:2000]))
        result["sharpness"] = metrics.sharpness(to_float(samples[:2000]), to_float(real.images[:2000]))
        _karras_figures(samples, reference, seed, result, details)
        held = reference.heldout if reference.heldout is not None else None
        copies = None
        if held is not None and len(held) >= 2:
            held_f = real_f if reference.split is held else reference_features(extractor, held, batch_size)
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


def equal_sets(real: Tensor, fake: Tensor, order: Tensor | None, seed: int) -> tuple[Tensor, Tensor]:
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
