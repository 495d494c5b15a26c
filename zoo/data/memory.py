"""Prepared data in memory: one uint8 tensor of images (and one of labels), and batches of it.
Photos kept at their own sizes (``--size full``, for super-resolution's crops) are one flat
tensor of pixels beside their shapes (:class:`Photos`).

``zoo prep`` (``zoo.pipelines.prep``) turns a data set into a ``data.safetensors`` file with a
``meta.json`` beside it. Training loads that once, moves it to the training device, and draws
shuffled batches by indexing: no per-item Python, no image files read during training.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch

from zoo.config import parse_json
from zoo.data.images import to_float
from zoo.data.mapped import ShardedImages, read_shards, read_split
from zoo.data.superres import Derivation, flat_windows
from zoo.errors import UsageError
from zoo.records import files
from zoo.spec import Batch, Condition, DataSpec
from zoo.training.devices import to_device

PREPARED_FORMAT = "zoo-prepared/3"
"""3: each tensor file holds a checksum of its tensors (:func:`zoo.records.files.save_tensors`)."""
SPLIT_FILES = {"train": "data.safetensors", "heldout": "heldout.safetensors"}
"""The training images, and the images held out for evaluation (the data set's test split)."""
CONDITION_PREFIX = "condition."
TOKENS_KEY = "text.tokens"
"""Captioned data's token ids in the file (N x K x L); their embeddings are ``condition.text``."""
PHOTOS, TARGET_PHOTOS = "photos", "target_photos"
"""Prefixes of the flat photo tensors in the file: ``photos.pixels``, ``photos.shapes``."""


class Photos:
    """Images each at its own size, as full-size photos come: every image's C x H x W uint8
    pixels end to end in one flat tensor, and their shapes (N x 3). Training cuts random
    crops of them on its device; evaluation takes them whole."""

    def __init__(self, pixels: torch.Tensor, shapes: torch.Tensor) -> None:
        if shapes.ndim != 2 or shapes.shape[1] != 3 or int(shapes.prod(1).sum()) != pixels.numel():
            raise ValueError("photo shapes do not account for the pixels")
        self.pixels, self.shapes = pixels, shapes.to(torch.int64).cpu()
        sizes = self.shapes.prod(1)
        self._start = torch.cumsum(sizes, 0) - sizes
        """Where each photo's pixels begin in ``pixels`` (on the host, as ``shapes``)."""
        self._starts = self._start.tolist()

    @classmethod
    def of(cls, images: Sequence[torch.Tensor]) -> Photos:
        """The photos given (none makes an empty set: a selection may leave none)."""
        if not images:
            return cls(torch.empty(0, dtype=torch.uint8), torch.empty(0, 3, dtype=torch.int64))
        return cls(torch.cat([im.reshape(-1) for im in images]),
                   torch.tensor([list(im.shape) for im in images], dtype=torch.int64))

    def __len__(self) -> int:
        return int(self.shapes.shape[0])

    def __getitem__(self, i: int) -> torch.Tensor:
        c, h, w = self.shapes[i].tolist()
        start = self._starts[i]
        return self.pixels[start:start + c * h * w].view(c, h, w)

    def __iter__(self) -> Iterator[torch.Tensor]:
        return (self[i] for i in range(len(self)))

    @property
    def smallest(self) -> tuple[int, int]:
        """The least height and the least width among the photos (0, 0 for none)."""
        if not len(self):
            return 0, 0
        return int(self.shapes[:, 1].min()), int(self.shapes[:, 2].min())

    def to(self, device: torch.device | str) -> Photos:
        return Photos(self.pixels.to(device), self.shapes)

    def take(self, index: Sequence[int] | torch.Tensor) -> Photos:
        return Photos.of([self[int(i)] for i in index])

    def map(self, change: Any) -> Photos:
        """Each photo through ``change`` (a function of a 1 x C x H x W uint8 batch)."""
        return Photos.of([change(im.unsqueeze(0))[0] for im in self])

    def centre_crops(self, size: tuple[int, int] | None = None, *, scale: int = 1,
                     within: Photos | None = None) -> torch.Tensor:
        """Every photo's centre, cut to ``size`` (default: the smallest height and width):
        one N x C x H x W tensor for what needs images of one size (pictures of the data,
        statistics). With ``within`` (the low-resolution half of pairs, ``scale`` times
        smaller), each window sits ``scale`` times where ``within``'s centre window does, so
        the two stay aligned."""
        height, width = size or self.smallest
        if not len(self):
            return torch.empty(0, 3, height, width, dtype=torch.uint8)
        out = []
        for i, im in enumerate(self):
            if within is not None:
                small_h, small_w = height // scale, width // scale
                top = (within[i].shape[1] - small_h) // 2 * scale
                left = (within[i].shape[2] - small_w) // 2 * scale
            else:
                top, left = (im.shape[1] - height) // 2, (im.shape[2] - width) // 2
            out.append(im[:, top:top + height, left:left + width])
        return torch.stack(out)

    def aligned_crops(self, high: Photos, index: torch.Tensor, size: int,
                      factor: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Random ``size`` x ``size`` patches of these (low-resolution) photos and the same
        places of ``high``, whose photos are ``factor`` times larger: aligned pairs."""
        top, left = self.corners(index, size)
        return self.crops(index, top, left, size), high.crops(index, top * factor, left * factor, size * factor)

    def random_crops(self, index: torch.Tensor, size: int) -> torch.Tensor:
        """A random ``size`` x ``size`` patch of each photo ``index`` names (the global RNG
        picks where, so a seeded run cuts the same ones)."""
        return self.crops(index, *self.corners(index, size), size)

    def corners(self, index: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Random top left corners (top, left) of ``size`` x ``size`` windows of the photos
        ``index`` names (a host tensor), each uniform over its photo: one draw of N x 2
        numbers from the global RNG on the host."""
        room = self.shapes[index, 1:] - size + 1
        corner = (torch.rand(room.shape, dtype=torch.float64) * room).long()
        return corner[:, 0], corner[:, 1]

    def crops(self, index: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: int) -> torch.Tensor:
        """The ``size`` x ``size`` window at (``top``, ``left``) of each photo ``index`` names
        (host tensors): N x C x size x size, cut on the pixels' device with no per-photo
        Python and no wait for the device (:func:`zoo.data.superres.flat_windows`)."""
        shapes = self.shapes[index]
        channels = int(shapes[0, 0])
        if bool((shapes[:, 0] != channels).any()):
            raise ValueError("photos of different channel counts cannot share a batch")
        height, width = shapes[:, 1], shapes[:, 2]
        return flat_windows(self.pixels, self._start[index] + top * width + left, height * width, width, channels, size)

    def tensors(self, prefix: str = PHOTOS) -> dict[str, torch.Tensor]:
        return {f"{prefix}.pixels": self.pixels.contiguous(), f"{prefix}.shapes": self.shapes.contiguous()}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], prefix: str = PHOTOS) -> Photos | None:
        if f"{prefix}.shapes" not in tensors:
            return None
        return cls(tensors[f"{prefix}.pixels"], tensors[f"{prefix}.shapes"])


@dataclass
class PreparedData:
    """A prepared data set: ``images`` uint8 N x C x H x W, ``labels`` int64 N (or None), and
    for two-domain data ``targets`` (domain B; as many as ``images`` when paired)."""

    path: Path
    images: torch.Tensor
    """In memory; past :data:`zoo.data.mapped.IN_MEMORY_MB`, a :class:`ShardedImages` mapped from disk."""
    labels: torch.Tensor | None
    meta: dict[str, Any]
    targets: torch.Tensor | None = None
    conditions: dict[str, torch.Tensor] = field(default_factory=dict)
    """Per-image conditions besides the class (``condition.text`` in the file: encoded captions)."""
    photos: Photos | None = None
    """The images whole, each at its own size (data prepared with ``--size full``); then
    ``images`` holds their centres cut to the smallest height and width."""
    target_photos: Photos | None = None
    """The same for the targets of paired data at full size (high-resolution photos)."""
    tokens: torch.Tensor | None = None
    """Captioned data: each image's captions as token ids, N x K x L (``meta["text"]`` has
    the words); ``conditions["text"]`` holds their embeddings, N x K x D."""

    def caption(self, i: int, k: int = 0) -> str:
        """Caption ``k`` of image ``i`` as the encoder read it (lower case, its words)."""
        if self.tokens is None:
            raise UsageError(f"{self.meta['name']} has no captions")
        from zoo.data.text import Vocabulary

        return Vocabulary(self.meta["text"]["vocabulary"]).decode(self.tokens[i, k])

    def text_encoder(self) -> tuple[Any, str]:
        """The frozen text encoder its captions were embedded with, and where it came from."""
        from zoo.data.text import load_encoder

        path = self.path / self.meta["text"]["encoder_file"]
        encoder, record = load_encoder(path)
        return encoder, f"{path} (fingerprint {record.get('fingerprint', '?')})"

    @property
    def spec(self) -> DataSpec:
        return DataSpec(
            name=self.meta["name"],
            channels=int(self.images.shape[1]),
            height=int(self.images.shape[2]),
            width=int(self.images.shape[3]),
            class_names=tuple(self.meta.get("class_names", ())),
            pairing=self.meta.get("pairing", ""),
            target_channels=int(self.targets.shape[1]) if self.targets is not None else 0,
            domains=tuple(self.meta.get("domains", ())),
            conditions=tuple(sorted(self.conditions)),
            text_dim=int(self.conditions[Condition.TEXT.value].shape[-1]) if Condition.TEXT.value in self.conditions
            else 0,
        )

    def __len__(self) -> int:
        return int(self.images.shape[0])


def load_prepared(folder: Path, split: str = "train") -> PreparedData:
    """Read a prepared data set written by the prep pipeline: its training images, or with
    ``split="heldout"`` the images held out for evaluation. A file changed or cut off since
    prep wrote it is :class:`zoo.records.files.Damaged` (its checksum tells), never trained on."""
    fix = "run `zoo prep` again with --force"
    try:
        meta = parse_json((folder / "meta.json").read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or not str(meta.get("format", "")).startswith("zoo-prepared/"):
            raise ValueError(f"format {meta.get('format') if isinstance(meta, dict) else None!r}")
    except (OSError, ValueError) as exc:
        raise files.Damaged(f"prepared data in {folder} is unreadable ({exc})", fix) from None
    if split == "heldout" and not meta.get("heldout"):
        raise UsageError(f"{meta['name']} has no held-out images ({'; '.join(meta.get('notes', [])[-1:])}); "
                         "evaluate on the training images, or prepare a larger data set")
    if meta.get("shards"):  # written shard by shard: read through memory maps, or whole when small
        images, labels = read_shards(folder, meta["shards"].get(split, []), fix)
        if split == "heldout":
            meta = {**meta, "count": meta["heldout"]["count"], "split": meta["heldout"]["split"]}
        return PreparedData(folder, cast(torch.Tensor, images), labels if meta.get("class_names") else None, meta)
    tensors, _ = read_split(folder / SPLIT_FILES[split], fix, required=meta.get("format") == PREPARED_FORMAT)
    if "images" not in tensors:
        raise files.Damaged(f"prepared data {folder / SPLIT_FILES[split]} holds no images", fix)
    if split == "heldout":
        meta = {**meta, "count": meta["heldout"]["count"], "split": meta["heldout"]["split"]}
    conditions = {k.removeprefix(CONDITION_PREFIX): v for k, v in tensors.items() if k.startswith(CONDITION_PREFIX)}
    return PreparedData(folder, tensors["images"], tensors.get("labels"), meta, tensors.get("targets"), conditions,
                        Photos.from_tensors(tensors), Photos.from_tensors(tensors, TARGET_PHOTOS),
                        tensors.get(TOKENS_KEY))


def one_caption(values: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One of each image's K caption embeddings (N x K x D -> N x D float), at random (from
    ``generator``, else the global stream); N x D values are returned as float."""
    if values.ndim != 3:
        return values.float()
    pick = torch.randint(0, values.shape[1], (values.shape[0],), generator=generator).to(values.device)
    return values[torch.arange(values.shape[0], device=values.device), pick].float()


FIT_SHARE = 0.25
"""Data lives on the GPU when it takes at most this share of its free memory."""


def placement(nbytes: int, device: torch.device) -> torch.device:
    """Where a data set of ``nbytes`` lives for training on ``device``: on the device when it
    fits (a GPU: in a quarter of its free memory), else in the host's memory."""
    if device.type != "cuda":
        return device
    free, _ = torch.cuda.mem_get_info(device)
    return device if nbytes <= FIT_SHARE * free else torch.device("cpu")


class TensorBatches:
    """Endless shuffled batches from tensors on one device; an epoch is one permutation.

    The order depends only on the seed and the epoch number, and the position is part of
    the checkpoint, so a resumed run sees exactly the batches it would have seen. A batch
    may ask for its own size (ProGAN's smaller batches at higher resolution); the position
    is kept in images. A pass ends when fewer images are left than a batch asks for (batch
    norm and GAN losses dislike tiny batches).

    Two-domain data comes with ``targets``: indexed like the images when ``paired``, else
    drawn in an order of their own (unpaired domains may differ in size). ``conditions``
    (per-image tensors, such as encoded captions) are indexed like the images, as are
    ``labels`` (the ``class`` condition). ``derive`` makes pairs on the fly (super-resolution):
    from ``photos`` when given, a random crop of each photo drawn (a batch may hold a photo
    more than once when there are fewer photos than a batch asks for); with ``target_photos``
    too (paired low- and high-resolution photos) the crops are aligned pairs of both.

    ``share`` = (rank, world) under torchrun: sizes and positions stay global (a batch of
    128, the images drawn), and each process receives its slice of every batch (images
    ``rank * 128 / world`` on), so that the processes together see what one would.

    The data lives on ``device`` when it fits in a quarter of a GPU's free memory; a larger
    set stays in the host's memory and each batch is copied over, pinned and asynchronously.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None, batch_size: int,
                 seed: int, device: torch.device | str = "cpu", *, targets: torch.Tensor | None = None,
                 paired: bool = True, conditions: dict[str, torch.Tensor] | None = None,
                 derive: Derivation | None = None, photos: Photos | None = None,
                 target_photos: Photos | None = None, share: tuple[int, int] = (0, 1)) -> None:
        if photos is not None and (derive is None or not derive.crop):
            raise ValueError("batches of photos need a derivation that crops them")
        smallest = min(images.shape[0], images.shape[0] if targets is None else targets.shape[0])
        if smallest < batch_size and photos is None:
            raise UsageError(f"batch size {batch_size} is larger than the data set "
                             f"({smallest} images); pass a smaller --batch-size")
        if targets is not None and paired and targets.shape[0] != images.shape[0]:
            raise ValueError("paired targets must match the images one to one")
        self.rank, self.world = share
        if batch_size % self.world:
            raise UsageError(f"a batch of {batch_size} does not split evenly over {self.world} processes; "
                             f"give a --batch-size that {self.world} divides")
        self.device = torch.device(device)
        sizes = [t.numel() * t.element_size() for t in (images, targets, *(conditions or {}).values()) if t is not None]
        sizes += [p.pixels.numel() for p in (photos, target_photos) if p is not None]
        mapped = isinstance(images, ShardedImages)  # then on the host, labels too: indexed as the images are
        home = torch.device("cpu") if mapped else placement(sum(sizes), self.device)
        self.images = images if mapped else images.to(home)
        self.targets = targets.to(home) if targets is not None else None
        self.conditions = {k: v.to(home) for k, v in (conditions or {}).items()}
        if labels is not None:
            self.conditions[Condition.CLASS.value] = labels.to(home)
        self.paired = paired
        self.derive = derive
        shelf = placement(sum(p.pixels.numel() for p in (photos, target_photos) if p is not None), self.device)
        self.photos, self.target_photos = (p.to(shelf) if p is not None else None for p in (photos, target_photos))
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0
        self.position = 0
        """Images of this pass's permutation already drawn."""
        self.drawn = 0
        """Images drawn since the start of training (the loop's count of images seen)."""
        self._order = self._permutation(0)
        self._ahead: tuple[torch.Tensor, Any] | None = None
        self._pool: Any = None
        self._picks: torch.Tensor | None = None
        self._picks_epoch = -1
        # Unpaired domain B: a pass and a position of its own (the domains differ in size).
        self.epoch_b = 0
        self.position_b = 0
        self._order_b = self._permutation_b(0) if self.targets is not None and not paired else None

    @property
    def labels(self) -> torch.Tensor | None:
        return self.conditions.get(Condition.CLASS.value)

    @property
    def order(self) -> torch.Tensor:
        """This pass's order of the images (their indices), of which ``position`` are drawn."""
        return self._order

    @property
    def batches_per_epoch(self) -> int:
        """Batches of the configured size in one pass (at least one, for a few photos)."""
        return max(1, self.images.shape[0] // self.batch_size) if self.photos is not None \
            else self.images.shape[0] // self.batch_size

    def next(self, size: int | None = None) -> Batch:
        """The next batch of ``size`` (default the batch size) images, or under torchrun this
        process's share of it."""
        size = self.batch_size if size is None else size
        if size % self.world:
            raise UsageError(f"a batch of {size} does not split evenly over {self.world} processes")
        if self.photos is not None:
            return self._photo_batch(size)
        smallest = min(self.images.shape[0], self.targets.shape[0] if self.targets is not None else size)
        if not 1 <= size <= smallest:
            raise UsageError(f"a batch of {size} images was asked of a data set of {smallest}")
        if self.position + size > self.images.shape[0]:
            self.epoch += 1
            self.position = 0
            self._order = self._permutation(self.epoch)
        index = self._mine(self._order[self.position:self.position + size])
        self.position += size
        self.drawn += size
        conditions = {k: self._drawn(k, v, index) for k, v in self.conditions.items()}
        images = to_float(self._gathered(index, size))
        targets = None
        if self.targets is not None:
            b = index if self.paired else self._mine(self._unpaired_index(size))
            targets = to_float(self._take(self.targets, b))
        elif self.derive is not None:
            images, targets = self.derive(images)
        return Batch(images, targets, conditions)

    def _gathered(self, index: torch.Tensor, size: int) -> torch.Tensor:
        """This batch's images on the device. From shards mapped from disk, the next batch of
        this pass is gathered in a background thread while this one trains; a batch gathered
        ahead is used only if it is the one asked for, so the order stays the seeded one."""
        if not isinstance(self.images, ShardedImages):
            return self._take(self.images, index)
        ahead, self._ahead = self._ahead, None
        if ahead is not None and torch.equal(ahead[0], index):
            images = ahead[1].result()
        else:
            images = self._take(self.images, index)
        if self.position + size <= self.images.shape[0]:
            following = self._mine(self._order[self.position:self.position + size])
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(1, thread_name_prefix="zoo-batches")
            self._ahead = (following, self._pool.submit(self._take, self.images, following))
        return images

    def _mine(self, index: torch.Tensor) -> torch.Tensor:
        """This process's slice of a global batch's indices."""
        if self.world == 1:
            return index
        k = index.shape[0] // self.world
        return index[self.rank * k:(self.rank + 1) * k]

    def _take(self, values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """``values[index]`` on the training device, by ``index_select`` (on a CPU many times
        faster than indexing: 14 against 250 us for 64 images of 32 px). From host memory
        (data too large for the GPU) the rows are gathered straight into pinned memory, then
        copied over asynchronously: one copy on the host, not a gather and then a pinned copy."""
        rows = None
        if values.device.type == "cpu" and self.device.type == "cuda":
            rows = torch.empty((index.shape[0], *values.shape[1:]), dtype=values.dtype, pin_memory=True)
        if isinstance(values, ShardedImages):
            return to_device(values.rows(index.cpu(), out=rows), self.device)
        return to_device(torch.index_select(values, 0, index, out=rows), self.device)

    def _photo_batch(self, size: int) -> Batch:
        """Random crops of the next ``size`` photos in the order, which runs on into the next
        pass when this one has too few left."""
        assert self.photos is not None and self.derive is not None
        if size < 1:
            raise UsageError(f"a batch of {size} images was asked for")
        parts, wanted = [], size
        while wanted:
            if self.position == len(self.photos):
                self.epoch += 1
                self.position = 0
                self._order = self._permutation(self.epoch)
            k = min(wanted, len(self.photos) - self.position)
            parts.append(self._order[self.position:self.position + k])
            self.position += k
            wanted -= k
        self.drawn += size
        index = self._mine(torch.cat(parts))  # on the host: where each photo lies is known there
        if self.target_photos is not None:  # paired photos: aligned crops of both, flipped alike
            factor = self.derive.factor
            low, high = self.photos.aligned_crops(self.target_photos, index, self.derive.crop // factor, factor)
            images, targets = self.derive.flip(*(to_float(to_device(t, self.device)) for t in (low, high)))
        else:  # cut where the photos are (past the GPU's share: on the host, mapped), derived on the device
            crops = self.photos.random_crops(index, self.derive.crop)
            images, targets = self.derive(to_float(to_device(crops, self.device)))
        device_index = to_device(index, self.images.device)
        return Batch(images, targets, {k: self._drawn(k, v, device_index) for k, v in self.conditions.items()})

    def _unpaired_index(self, size: int) -> torch.Tensor:
        """Domain B's next batch: its own permutation per pass over its own images."""
        assert self.targets is not None and self._order_b is not None
        if self.position_b + size > self.targets.shape[0]:
            self.epoch_b += 1
            self.position_b = 0
            self._order_b = self._permutation_b(self.epoch_b)
        index = self._order_b[self.position_b:self.position_b + size]
        self.position_b += size
        return index

    def _permutation_b(self, epoch: int) -> torch.Tensor:
        assert self.targets is not None
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + 500_009 + epoch)
        return torch.randperm(self.targets.shape[0], generator=generator).to(self.targets.device)

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "drawn": self.drawn,
                "epoch_b": self.epoch_b, "position_b": self.position_b}

    def load_state(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self.drawn = int(state["drawn"])
        self._order = self._permutation(self.epoch)
        if self._order_b is not None:
            self.epoch_b, self.position_b = int(state["epoch_b"]), int(state["position_b"])
            self._order_b = self._permutation_b(self.epoch_b)

    def _drawn(self, name: str, values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """A batch's condition, on the training device; for text (N x K x D), the caption this
        pass picked for each image. The picks, like the order, follow from the seed and the
        pass alone: every process of a torchrun run and every resume draws the same ones."""
        if name != Condition.TEXT.value or values.ndim != 3:
            return self._take(values, index)
        if self._picks is None or self._picks_epoch != self.epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + 700_001 + self.epoch)
            self._picks = to_device(torch.randint(0, values.shape[1], (values.shape[0],), generator=generator),
                                    values.device)
            self._picks_epoch = self.epoch
        # Caption k of image i is row i * K + k of the captions laid end to end.
        return self._take(values.flatten(0, 1), index * values.shape[1] + self._picks[index]).float()

    def _permutation(self, epoch: int) -> torch.Tensor:
        """The order of a pass, beside the images; for photos on the host, where their crops
        are placed."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(self.images.shape[0], generator=generator)
        return order if self.photos is not None else to_device(order, self.images.device)


def check_pairs(low: Photos, high: Photos, factor: int, data: str, model: str) -> None:
    """Paired low- and high-resolution photos: each B photo must be ``factor`` times its A."""
    for i, (a, b) in enumerate(zip(low.shapes.tolist(), high.shapes.tolist(), strict=True)):
        if b[1:] != [factor * a[1], factor * a[2]]:
            raise UsageError(f"{data}: pair {i + 1}'s B image is {b[1]}x{b[2]}, not {factor} times its A image "
                             f"({a[1]}x{a[2]}); {model} x{factor} needs B/ images exactly {factor} times the size "
                             f"of A/'s (or --set scale=... to match them)")
