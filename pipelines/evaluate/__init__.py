"""Measure a trained model: ``zoo eval``, and the quick figure ``--eval-every`` logs in training.

What is measured follows the model's capabilities, never its name, each kind in a module of
its own (:mod:`.samplers`, :mod:`.translators`, :mod:`.upscalers`, :mod:`.encoders`; what they
are judged against and how: :mod:`.reference`; the quick figure of training: :mod:`.training`):

* a model with a latent prior draws ``n`` samples (conditions, a class or a text, taken
  from the reference images, so the classes come in the data's proportions) and is
  compared with the real images of the reference split in an extractor's features:
  Frechet distance, KID, precision/recall, density/coverage (these four on sets of one
  size: :func:`equal_sets`); plus pixel diversity, the memorisation check against the
  training images, the classifier score, and for class-conditional models the share of
  samples the classifier reads as their class; on Stacked MNIST also the modes that 26,000
  samples reach and their KL to uniform (:mod:`.modes`);
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
  adds the held-out negative log-likelihood.

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
import time
from pathlib import Path
from typing import Any

from rich.console import Console

import zoo
from zoo.config import check_seed, within
from zoo.data import superres
from zoo.data.sources import stacked
from zoo.display.console import make_console
from zoo.errors import UsageError, ZooError
from zoo.model import Model
from zoo.pipelines.evaluate.encoders import NLL_IMAGES, NLL_SAMPLES, encoder_figures
from zoo.pipelines.evaluate.modes import mode_figures
from zoo.pipelines.evaluate.reference import SPLITS, check_fits, counted, reference_data
from zoo.pipelines.evaluate.samplers import CHUNK, DC_K, sampler_figures
from zoo.pipelines.evaluate.training import TrainingEval
from zoo.pipelines.evaluate.translators import translator_figures
from zoo.pipelines.evaluate.upscalers import upscaler_figures
from zoo.pipelines.sample import MOST_SAMPLES
from zoo.records import files, runs
from zoo.records.paths import safe_name
from zoo.records.run_info import EVAL_FILE, EVAL_METRICS
from zoo.spec import Capability
from zoo.training import distributed
from zoo.training.devices import resolve_device

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
        check_fits(model, reference, data)
    run_dir = path.parent
    pictures = run_dir / "eval"  # made by the first picture written: a refusal before it leaves none
    result: dict[str, Any] = {}
    details: dict[str, Any] = {}
    if model.has(Capability.LATENT) and not model.has(Capability.IMAGE_TO_IMAGE):
        sampler_figures(model, reference, n, features, seed, batch_size, console, pictures, result, details,
                    extractor_options, cluster)
        if not cluster.writer:
            return {}
        if reference.name == stacked.NAME and not model.needs():  # the papers' count of modes
            mode_figures(model, reference, seed, batch_size, console, result, details,
                         Path(record["data_dir"]) if record.get("data_dir") else None, extractor_options)
    if model.has(Capability.IMAGE_TO_IMAGE) and superres.factor_of(model) > 1:
        upscaler_figures(model, reference, n, batch_size, console, pictures, result, details)
    elif model.has(Capability.IMAGE_TO_IMAGE):
        translator_figures(model, reference, features, batch_size, console, pictures, result, details,
                     extractor_options)
    elif model.has(Capability.ENCODER):  # a VAE is also measured as a sampler above
        encoder_figures(model, reference.split, pictures, result, details, nll_samples=nll_samples,
                        nll_images=nll_images, seed=seed, console=console)
        if "protocol" not in details:
            details["protocol"] = {"name": f"reconstruction{counted(len(reference.split))}/{reference.split_name}",
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
    modes = result.get("modes_protocol")
    if modes:
        judge = modes["judge"]
        console.print(f"modes: {result['modes']:,} of {modes['modes']:,} reached by {modes['samples']:,} samples, KL "
                      f"{result['modes_kl']:.3f} (real training stacks, read alike: {result['modes_reference']:,}, KL "
                      f"{result['modes_kl_reference']:.3f}); the judge, trained on MNIST's held-out digits only, reads "
                      f"{judge['mnist_train_accuracy']:.1%} of the training digits and all three digits of "
                      f"{judge['stacks_read_right']:.1%} of the training stacks right", highlight=False)
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


__all__ = ["SPLITS", "TrainingEval", "ZooError", "evaluate", "reference_data"]
