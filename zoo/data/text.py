"""Text for text-conditional models: words, and a sentence encoder zoo trains itself.

StackGAN drew from the char-CNN-RNN embeddings of Reed et al., "Learning Deep
Representations of Fine-Grained Visual Descriptions" (CVPR 2016), which ship as pickles
from links that no longer work. zoo instead trains its own encoder on the captions of the
data, the way Reed et al. trained theirs: a text network and an image network learn a
joint space in which each image scores highest with its own captions (an image-text
matching loss, here the symmetric contrastive form of Radford et al.'s CLIP, 2021, with
identical captions counted as matches, not as negatives). The text network is a word
embedding read by a bidirectional GRU and pooled over the words; the image network is
thrown away.

It trains once per prepared data set, when ``zoo prep`` reads captioned data, on the
training images only (the held-out ones stay unseen), and lies in the prepared folder as
``text_encoder.safetensors`` (weights, and the vocabulary in the header as JSON: nothing
is unpickled). Every caption is encoded once, there; batches carry the embeddings, so a
text-conditional model never runs the encoder while training. A user's ``--text`` goes
through the same frozen encoder, which every checkpoint of a text-conditional model holds.

An unknown word in a prompt is an error that names the close known ones: the encoder has
no way to read a word its captions never used.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.config import parse_json
from zoo.errors import UsageError, ZooError

PAD, UNKNOWN = 0, 1
SPECIALS = ("<pad>", "<unk>")
MAX_WORDS = 40
"""Words of a caption read; the rest are dropped (CUB's captions average 16 words)."""
FILENAME = "text_encoder.safetensors"
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def words(text: str) -> list[str]:
    """A caption's words as the encoder reads them: lower case, letters and digits (with
    inner hyphens and apostrophes: "t-shirt", "bird's"), punctuation dropped."""
    return _WORD.findall(text.lower())


class Vocabulary:
    """The words an encoder knows, by index; 0 pads, 1 stands for words it does not know."""

    def __init__(self, known: Sequence[str], example: str = "") -> None:
        self.words = list(SPECIALS) + [w for w in known if w not in SPECIALS]
        self.index = {w: i for i, w in enumerate(self.words)}
        self.example = example
        """A caption of the data, to show in messages."""

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 1) -> Vocabulary:
        """Every word used at least ``min_count`` times, most used first."""
        captions = list(captions)
        counts = Counter(w for caption in captions for w in words(caption))
        longest = max(captions, key=lambda c: (len(words(c)), c)) if captions else ""
        return cls([w for w, c in sorted(counts.items(), key=lambda wc: (-wc[1], wc[0])) if c >= min_count],
                   " ".join(words(longest)))

    def __len__(self) -> int:
        return len(self.words)

    def ids(self, text: str) -> list[int]:
        return [self.index.get(w, UNKNOWN) for w in words(text)[:MAX_WORDS]]

    def check(self, text: str, what: str = "--text") -> None:
        """A UsageError for a prompt the encoder cannot read: no words, or unknown ones (with
        the known words closest to each)."""
        found = words(text)
        if not found:
            like = self.example or "a small image"
            raise UsageError(f"{what} {text!r} has no words; describe the image, like \"{like}\"")
        unknown = [w for w in dict.fromkeys(found) if w not in self.index]
        if unknown:
            known = self.words[len(SPECIALS):]
            hints = []
            for word in unknown:
                close = difflib.get_close_matches(word, known, n=3, cutoff=0.6)
                hints.append(f"{word!r} (close: {', '.join(close)})" if close else repr(word))
            raise UsageError(f"{what} uses word(s) the text encoder never saw in its captions: {'; '.join(hints)}. "
                             f"It knows {len(known)} words, e.g. {', '.join(known[:12])}")
        if len(found) > MAX_WORDS:
            raise UsageError(f"{what} has {len(found)} words; the text encoder reads at most {MAX_WORDS}")

    def encode(self, texts: Sequence[str], length: int | None = None) -> Tensor:
        """Token ids, N x L int64 (0-padded to the longest, or to ``length``); unknown words
        become :data:`UNKNOWN` (check prompts first with :meth:`check`)."""
        rows = [self.ids(t) for t in texts]
        length = length or max(1, max((len(r) for r in rows), default=1))
        out = torch.zeros(len(rows), length, dtype=torch.int64)
        for i, row in enumerate(rows):
            row = row[:length]
            out[i, :len(row)] = torch.tensor(row, dtype=torch.int64)
        return out

    def decode(self, ids: Tensor) -> str:
        return " ".join(self.words[i] for i in ids.tolist() if i != PAD)


@dataclass(frozen=True)
class EncoderConfig:
    width: int = 64
    """Word vectors and each GRU direction."""
    dim: int = 128
    """Length of a sentence embedding."""


class TextEncoder(nn.Module):
    """Token ids -> unit-length sentence embeddings: word vectors, a bidirectional GRU, the
    mean of its outputs over the words (padding packed away, so a prompt encodes the same
    alone or in a batch), and a linear map."""

    def __init__(self, vocabulary: Vocabulary, config: EncoderConfig = EncoderConfig()) -> None:
        super().__init__()
        self.vocabulary = vocabulary
        self.config = config
        self.embed = nn.Embedding(len(vocabulary), config.width, padding_idx=PAD)
        self.rnn = nn.GRU(config.width, config.width, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * config.width, config.dim)

    @property
    def dim(self) -> int:
        return self.config.dim

    def forward(self, tokens: Tensor) -> Tensor:
        lengths = (tokens != PAD).sum(1).clamp(min=1)
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(tokens), lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        outputs, _ = self.rnn(packed)
        padded, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True, total_length=tokens.shape[1])
        pooled = padded.sum(1) / lengths[:, None].to(padded.dtype)
        return F.normalize(self.out(pooled), dim=1)

    @torch.no_grad()
    def encode(self, texts: Sequence[str], what: str = "--text") -> Tensor:
        """Embeddings (N x dim, on the encoder's device) of prompts, each checked first."""
        for text in texts:
            self.vocabulary.check(text, what)
        device = self.embed.weight.device
        return self(self.vocabulary.encode(texts).to(device))

    @torch.no_grad()
    def encode_tokens(self, tokens: Tensor, chunk: int = 4096) -> Tensor:
        """Embeddings of token ids of any leading shape (... x L) -> ... x dim."""
        flat = tokens.reshape(-1, tokens.shape[-1])
        device = self.embed.weight.device
        out = torch.cat([self(part.to(device)).cpu() for part in flat.split(chunk)]) if len(flat) else \
            torch.empty(0, self.dim)
        return out.view(*tokens.shape[:-1], self.dim)

    def embed_tokens(self, tokens: Tensor, words: Sequence[str]) -> Tensor:
        """Embeddings of token ids over ``words`` (a prepared data set's vocabulary, specials
        first), which may be another encoder's: the data's captions as this encoder reads them."""
        return self.encode_tokens(translate_tokens(tokens, words, self.vocabulary))

    # -- by value: in the prepared folder and in every checkpoint --------------------------

    def to_state(self) -> dict[str, Any]:
        """Weights, words and shape, for a checkpoint (nested tensors, strings and numbers)."""
        return {"weights": {k: v.detach().cpu() for k, v in self.state_dict().items()},
                "vocabulary": self.vocabulary.words[len(SPECIALS):], "example": self.vocabulary.example,
                "config": asdict(self.config)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> TextEncoder:
        try:
            vocabulary = Vocabulary(list(state["vocabulary"]), str(state.get("example", "")))
            config = EncoderConfig(**dict(state["config"]))
            weights = dict(state["weights"])
            with torch.device("meta"):  # the shape it claims, checked before anything is allocated
                claimed = sum(t.numel() for t in cls(vocabulary, config).state_dict().values())
            if claimed != sum(t.numel() for t in weights.values()):
                raise TypeError(f"its config claims {claimed:,} weights; it holds "
                                f"{sum(t.numel() for t in weights.values()):,}")
            encoder = cls(vocabulary, config)
            encoder.load_state_dict(weights)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ZooError(f"the text encoder stored here is not one zoo wrote ({str(exc).splitlines()[0]})") from None
        return encoder.requires_grad_(False).eval()

    def fingerprint(self) -> str:
        """A short hash of the weights and words: the embeddings' identity."""
        digest = hashlib.sha256("\n".join(self.vocabulary.words).encode())
        for key, value in sorted(self.state_dict().items()):
            digest.update(key.encode())
            digest.update(value.detach().cpu().float().numpy().tobytes())
        return digest.hexdigest()[:12]


def save_encoder(encoder: TextEncoder, path: Path, record: Mapping[str, Any]) -> None:
    """The encoder as safetensors (atomically, with a checksum), its words, shape and
    training ``record`` in the header."""
    from zoo.records.files import save_tensors

    state = encoder.to_state()
    header = {"vocabulary": state["vocabulary"], "example": state["example"], "config": state["config"],
              "record": dict(record)}
    save_tensors(path, state["weights"], {"zoo-text-encoder": json.dumps(header)}, what="text encoder")


def load_encoder(path: Path) -> tuple[TextEncoder, dict[str, Any]]:
    """(encoder, its training record) from a file :func:`save_encoder` wrote."""
    from zoo.records.files import load_tensors

    fix = "run `zoo prep` again with --force"
    weights, meta = load_tensors(path, "text encoder", fix, required=False)
    try:
        header = parse_json(meta["zoo-text-encoder"])
        encoder = TextEncoder.from_state({"weights": weights, **header})
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise ZooError(f"{path} is not a text encoder zoo wrote ({str(exc).splitlines()[0][:120]}); {fix}") from None
    return encoder, dict(header.get("record", {}))


# -- a sentence-embedding model the user already has --------------------------------------------


# -- training: image-text matching ---------------------------------------------------------------

class ImageEncoder(nn.Module):
    """Images -> unit-length embeddings, the image half of the matching (then discarded)."""

    def __init__(self, channels: int, dim: int, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = channels
        for out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(c, out, 3, 2, 1), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            c = out
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out = nn.Linear(c, dim)

    def forward(self, images: Tensor) -> Tensor:
        return F.normalize(self.out(self.body(images)), dim=1)


@dataclass(frozen=True)
class MatchingSchedule:
    """How long and how the encoder trains."""

    epochs: float = 4.0
    batch_size: int = 256
    lr: float = 2e-3
    seed: int = 0


def matching_loss(text: Tensor, image: Tensor, tokens: Tensor, scale: Tensor) -> Tensor:
    """Symmetric contrastive loss of a batch of matching (text, image) embeddings: each
    image should pick its own caption out of the batch and each caption its image. Captions
    with identical words are all right answers (a "dark sandal" is not the wrong text for
    another dark sandal)."""
    same = same_caption(tokens).float()
    targets = same / same.sum(1, keepdim=True)
    logits = scale * text @ image.T
    return 0.5 * (torch.sum(-targets * F.log_softmax(logits, 1), 1).mean()
                  + torch.sum(-targets * F.log_softmax(logits.T, 1), 1).mean())


def train_encoder(images: Tensor, tokens: Tensor, vocabulary: Vocabulary, *,
                  config: EncoderConfig = EncoderConfig(), schedule: MatchingSchedule = MatchingSchedule(),
                  heldout: tuple[Tensor, Tensor] | None = None,
                  progress: Callable[[int, int, float], None] | None = None) -> tuple[TextEncoder, dict[str, Any]]:
    """Train a :class:`TextEncoder` on uint8 ``images`` (N x C x H x W) and their captions'
    ``tokens`` (N x K x L: K captions each, a random one per image each time). Returns the
    frozen encoder and a record of the training (steps, final loss, seconds, and with
    ``heldout`` images and tokens its :func:`matching_top1` on them)."""
    import time

    from zoo.data.images import to_float

    started = time.perf_counter()
    generator = torch.Generator().manual_seed(schedule.seed)
    state = torch.random.get_rng_state()
    torch.manual_seed(schedule.seed)  # the networks' initial weights: the same encoder each time
    text_net = TextEncoder(vocabulary, config)
    image_net = ImageEncoder(images.shape[1], config.dim)
    torch.random.set_rng_state(state)
    log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    optimizer = torch.optim.Adam([*text_net.parameters(), *image_net.parameters(), log_scale], lr=schedule.lr)
    n, k = tokens.shape[0], tokens.shape[1]
    batch = min(schedule.batch_size, n)
    steps = max(1, round(schedule.epochs * n / batch))
    losses: list[float] = []
    text_net.train()
    image_net.train()
    order, position = torch.randperm(n, generator=generator), 0
    for step in range(steps):
        if position + batch > n:
            order, position = torch.randperm(n, generator=generator), 0
        index = order[position:position + batch]
        position += batch
        pick = torch.randint(0, k, (len(index),), generator=generator)
        chosen = tokens[index, pick].long()
        chosen = chosen[:, :max(1, int((chosen != PAD).sum(1).max()))]
        loss = matching_loss(text_net(chosen), image_net(to_float(images[index])), chosen,
                             log_scale.exp().clamp(max=100))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if progress is not None:
            progress(step + 1, steps, losses[-1])
    text_net.requires_grad_(False).eval()
    heldout_top1 = None
    if heldout is not None and len(heldout[0]) >= 100:
        heldout_top1 = matching_top1(text_net, image_net, *heldout)
    tail = losses[-max(1, steps // 10):]
    record = {"steps": steps, "batch_size": batch, "epochs": schedule.epochs, "images": n,
              "captions_per_image": k, "final_loss": sum(tail) / len(tail),
              "seconds": round(time.perf_counter() - started, 1), "seed": schedule.seed,
              "heldout_top1_of_100": heldout_top1}
    return text_net, record


@torch.no_grad()
def matching_top1(text_net: TextEncoder, image_net: nn.Module, images: Tensor, tokens: Tensor,
                  group: int = 100) -> float:
    """Of images in groups of ``group``, the share whose best-scoring caption among the
    group's (each image's first) is its own or has the same words: the encoder's held-out
    accuracy (chance: about 1 / ``group``)."""
    from zoo.data.images import to_float

    image_net.eval()
    right = total = 0
    for start in range(0, len(images) - group + 1, group):
        chosen = tokens[start:start + group, 0].long()
        scores = text_net(chosen) @ image_net(to_float(images[start:start + group])).T  # text x image
        best = scores.argmax(0)  # for each image, its best caption
        right += int(same_caption(chosen)[best, torch.arange(group)].sum())
        total += group
    return right / total if total else float("nan")


def translate_tokens(tokens: Tensor, words: Sequence[str], vocabulary: Vocabulary) -> Tensor:
    """Token ids over ``words`` (another vocabulary's, specials first) as ids of ``vocabulary``:
    a word it does not know becomes :data:`UNKNOWN`."""
    table = torch.tensor([i if i < len(SPECIALS) else vocabulary.index.get(w, UNKNOWN) for i, w in enumerate(words)],
                         dtype=torch.int64)
    return table[tokens.long()]


def same_caption(tokens: Tensor) -> Tensor:
    """N x N: whether captions i and j have the same words."""
    return (tokens[:, None, :] == tokens[None, :, :]).all(-1)
