"""What ``zoo prep`` says about a prepared data set: the facts of its summary table."""

from __future__ import annotations

from zoo.data.memory import PreparedData
from zoo.pipelines.prep import HOLDOUT_FRACTION, _photo_shapes


def _heldout_text(heldout: dict | None) -> str:
    if not heldout:
        return "none"
    where = (f"a seeded {HOLDOUT_FRACTION:.0%}, kept apart" if heldout["split"] == "heldout"
             else f"its {heldout['split']} split")
    return f"{heldout['count']:,} images for evaluation ({where})"


MOST_CLASSES_LISTED = 50  # past this (Stacked MNIST's 1,000), the summary gives the range


def _classes_text(names: list[str], counts: list[int]) -> str:
    """Each class with its count; for many classes, how many, and the fewest and most images."""
    if len(names) <= MOST_CLASSES_LISTED:
        return ", ".join(f"{n} ({c})" for n, c in zip(names, counts, strict=True)) or "unlabelled"
    low, high = min(range(len(counts)), key=counts.__getitem__), max(range(len(counts)), key=counts.__getitem__)
    return (f"{len(names):,} classes, {names[0]} to {names[-1]}; fewest images {names[low]} ({counts[low]}), "
            f"most {names[high]} ({counts[high]}); class_counts.png shows them all")


def describe(prepared: PreparedData) -> dict[str, object]:
    """The facts about a prepared data set, for ``zoo prep``'s summary table."""
    meta = prepared.meta
    return {
        "data": meta["name"],
        "images": f"{len(prepared):,}",
        "split": meta.get("split", "train"),
        "held out": _heldout_text(meta.get("heldout")),
        "shape": _photo_shapes(prepared.photos) if prepared.photos is not None
        else f"{prepared.spec.channels} x {prepared.spec.height} x {prepared.spec.width}",
        "classes": _classes_text(meta["class_names"], meta["class_counts"]),
        **({"pairing": f"{meta['pairing']}: A = {meta['domains'][0]}, B = {meta['domains'][1]} "
                       f"({meta['target_count']:,} images, {prepared.spec.target_channels} channel(s))"}
           if meta.get("pairing") else {}),
        **({"captions": _captions_text(meta["text"])} if meta.get("text") else {}),
        "from": meta["origin"],
        "folder": str(prepared.path),
    }


def _captions_text(text: dict) -> str:
    record = text["encoder"]
    top1 = record.get("heldout_top1_of_100")
    matched = f"; held out, {top1:.1%} of images pick their own caption of 100" if top1 is not None else ""
    return (f"up to {text['per_image']} per image, {len(text['vocabulary'])} words; text encoder trained "
            f"{record['steps']} steps{matched} (captions.png)")
