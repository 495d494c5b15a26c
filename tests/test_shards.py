"""Data of any size: prep shard by shard, shards read through memory maps, tar shards."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import torch

from zoo.data import mapped
from zoo.data.memory import TensorBatches, load_prepared
from zoo.data.sources import shards
from zoo.errors import UsageError
from zoo.pipelines import streamed_prep
from zoo.pipelines.prep import prepare
from zoo.records import files

from .conftest import TINY, checkpoint_tensors, make_image_folder, run_cli


def png(seed: int, size: int = 12) -> bytes:
    from PIL import Image

    pixels = torch.randint(0, 256, (size, size, 3), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels.numpy()).save(out, "PNG")
    return out.getvalue()


def write_tar(path: Path, members: list[tuple[str, bytes]], cut_last: bool = False) -> Path:
    """A plain tar of ``members``; ``cut_last``: cut off halfway through its last member's bytes."""
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    if cut_last:
        with tarfile.open(path) as tar:
            last = tar.getmembers()[-1]
        path.write_bytes(path.read_bytes()[:last.offset_data + last.size // 2])
    return path


@pytest.fixture
def small_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shards of 40 images of 16 x 16 (so that a few hundred images make several)."""
    monkeypatch.setattr(streamed_prep, "SHARD_BYTES", 40 * 3 * 16 * 16)


def test_sharded_images_gather_what_one_tensor_would() -> None:
    whole = torch.randint(0, 256, (23, 1, 4, 4), dtype=torch.uint8)
    images = mapped.ShardedImages([whole[:10], whole[10:11], whole[11:]])
    index = torch.tensor([22, 0, 10, 10, 11, 5, 21])
    assert torch.equal(images.rows(index), whole[index]) and len(images) == 23 and images.shape == whole.shape
    assert torch.equal(images[3:17:2], whole[3:17:2]) and torch.equal(images[-1], whole[-1])
    assert torch.equal(images[whole[:, 0, 0, 0] > 128], whole[whole[:, 0, 0, 0] > 128])
    assert torch.equal(torch.cat(list(images.split(6))), whole) and torch.equal(images.to("cpu"), whole)
    with pytest.raises(IndexError):
        images.rows(torch.tensor([23]))


def test_a_streamed_prep_writes_shards_that_train_as_the_whole_set_does(tmp_path: Path, small_shards: None,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_image_folder(tmp_path / "shapes", per_class=120)
    (root / "circle" / "broken.png").write_bytes(b"not a picture")
    prepared = prepare(f"folder:{root}", size=16)
    meta = prepared.meta
    assert len(meta["shards"]["train"]) == 6 and len(meta["shards"]["heldout"]) == 1
    assert len(prepared) == 216 and meta["heldout"]["count"] == 24 and sum(meta["class_counts"]) == 216
    assert any("skipped 1 unreadable file(s)" in note and "broken.png" in note for note in meta["notes"])
    assert isinstance(prepared.images, torch.Tensor)  # small: read whole into memory
    monkeypatch.setenv("ZOO_IN_MEMORY_MB", "0.01")
    large = load_prepared(prepared.path)
    assert isinstance(large.images, mapped.ShardedImages) and torch.equal(large.images[:], prepared.images)
    assert torch.equal(large.labels, prepared.labels)
    for stats in ("stats.png", "histogram.png", "samples.png", "class_counts.png"):
        assert (prepared.path / stats).is_file()
    # Batches from the map (gathered ahead in a thread) are the batches from memory, resumed too.
    whole = TensorBatches(prepared.images, prepared.labels, 32, seed=3)
    sharded = TensorBatches(large.images, large.labels, 32, seed=3)
    for _ in range(9):  # past a pass's end (216 images: 6 batches a pass)
        a, b = whole.next(), sharded.next()
        assert torch.equal(a.images, b.images) and torch.equal(a.conditions["class"], b.conditions["class"])
    resumed = TensorBatches(large.images, large.labels, 32, seed=3)
    resumed.load_state(sharded.state())
    assert torch.equal(resumed.next().images, whole.next().images)


def test_training_from_mapped_shards_matches_training_from_memory(tmp_path: Path, small_shards: None,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_image_folder(tmp_path / "shapes", per_class=110)
    args = ("train", "dcgan", "--data", f"folder:{root}", "--size", "16", *TINY, "--steps", "14", "--no-wandb")
    assert run_cli(*args, "--out", str(tmp_path / "memory")).exit_code == 0
    monkeypatch.setenv("ZOO_IN_MEMORY_MB", "0.01")
    result = run_cli(*args, "--out", str(tmp_path / "mapped"))
    assert result.exit_code == 0, result.output
    assert "read from disk through memory maps" in " ".join(result.output.split())
    one, two = checkpoint_tensors(tmp_path / "memory"), checkpoint_tensors(tmp_path / "mapped")
    assert one.keys() == two.keys() and all(torch.equal(one[k], two[k]) for k in one)


def test_a_prep_cut_short_resumes_after_its_last_whole_shard_and_gives_the_same_files(
        tmp_path: Path, small_shards: None, monkeypatch: pytest.MonkeyPatch, cache_dir: Path) -> None:
    root = make_image_folder(tmp_path / "shapes", per_class=100)
    reference = prepare(f"folder:{root}", size=16)
    expected = {p.name: p.read_bytes() for p in reference.path.glob("*.safetensors")}
    save = files.save_tensors
    written: list[str] = []

    def dies_after_three(path: Path, tensors, metadata=None, what: str = "file") -> None:
        if len(written) == 3:
            raise KeyboardInterrupt  # as a kill would leave it: three shards whole, the fourth never written
        save(path, tensors, metadata, what)
        written.append(path.name)

    monkeypatch.setattr(files, "save_tensors", dies_after_three)
    with pytest.raises(KeyboardInterrupt):
        prepare(f"folder:{root}", size=16, force=True)
    partial = reference.path.with_name(reference.path.name + ".partial")
    progress = json.loads((partial / streamed_prep.PROGRESS).read_text())
    assert [r["file"] for r in progress["done"]["train"]] == written
    (partial / written[1]).write_bytes((partial / written[1]).read_bytes()[:-5])  # and one of them damaged
    monkeypatch.setattr(files, "save_tensors", save)
    again = prepare(f"folder:{root}", size=16, force=True)
    assert not partial.exists() and {p.name: p.read_bytes() for p in again.path.glob("*.safetensors")} == expected


def test_a_damaged_shard_is_said_and_never_trained_on(tmp_path: Path, small_shards: None) -> None:
    root = make_image_folder(tmp_path / "shapes", per_class=100)
    prepared = prepare(f"folder:{root}", size=16)
    shard = prepared.path / prepared.meta["shards"]["train"][2]
    data = bytearray(shard.read_bytes())
    data[-100] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(files.Damaged, match="differ from the checksum"):
        load_prepared(prepared.path)
    again = prepare(f"folder:{root}", size=16)  # the cache is rebuilt
    assert torch.equal(again.images, prepared.images)


def test_shards_of_images_with_classes_skip_and_count_bad_members(tmp_path: Path, cache_dir: Path) -> None:
    first = [(f"a/{i:03d}.png", png(i)) for i in range(120)] + [(f"a/{i:03d}.cls", b"cat" if i % 3 else b"dog")
                                                                   for i in range(120)]
    write_tar(tmp_path / "part-00.tar", first + [("../outside.png", png(0)), ("notes.exe", b"x"),
                                                 ("a/999.png", b"not a png"), ("a/999.cls", b"cat")])
    second = [(f"b/{i:03d}.png", png(500 + i)) for i in range(110)] + [(f"b/{i:03d}.cls", b"dog")
                                                                        for i in range(110)]
    write_tar(tmp_path / "part-01.tar", second + [("b/last.png", png(9))], cut_last=True)  # cut off in its last member
    result = run_cli("prep", f"shards:{tmp_path}/part-{{00..01}}.tar", "--size", "12")
    assert result.exit_code == 0, result.output
    prepared = prepare(f"shards:{tmp_path}/part-{{00..01}}.tar", size=12)
    assert prepared.meta["class_names"] == ["cat", "dog"] and len(prepared) + prepared.meta["heldout"]["count"] == 230
    notes = " ".join(prepared.meta["notes"])
    assert "1 path leaving the archive" in notes and "1 not an image" in notes and "999.png" in notes
    assert "cut off" in notes
    assert prepared.meta["class_counts"][0] + prepared.meta["class_counts"][1] == len(prepared)


def test_shards_with_captions_are_read_whole_with_them(tmp_path: Path) -> None:
    members = [(f"{i:03d}.png", png(i)) for i in range(6)] + [(f"{i:03d}.txt", f"a red thing {i}\nsecond".encode())
                                                                for i in range(6)]
    data = f"shards:{write_tar(tmp_path / 'captioned.tar', members)}"
    from rich.console import Console

    assert shards.stream(data, Console(quiet=True)) is None  # captions: read whole, for the text encoder
    raw = shards.read(data, (8, 8), None, Console(quiet=True))
    assert raw.images.shape == (6, 3, 8, 8) and raw.captions is not None
    assert raw.captions[4] == ["a red thing 4", "second"]


def test_shards_at_a_url_are_read_through_fsspec_as_local_ones_are(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   cache_dir: Path) -> None:
    import fsspec

    members = [[(f"{k}{i:03d}.png", png(100 * k + i)) for i in range(8)] + [(f"{k}{i:03d}.cls", str(i % 2).encode())
                                                                         for i in range(8)] for k in range(2)]
    for k in range(2):
        data = write_tar(tmp_path / f"part-{k}.tar", members[k]).read_bytes()
        with fsspec.open(f"memory://zoo-test/part-{k}.tar", "wb") as out:  # fsspec's in-memory file system
            out.write(data)
    local = prepare(f"shards:{tmp_path}/part-{{0..1}}.tar", size=12)
    remote = prepare("shards:memory://zoo-test/part-{0..1}.tar", size=12)
    assert remote.path != local.path and torch.equal(remote.images, local.images)
    assert torch.equal(remote.labels, local.labels) and remote.meta["origin"] == "memory://zoo-test/part-{0..1}.tar"
    with fsspec.open("memory://zoo-test/part-1.tar", "wb") as out:  # changed at its store: --force reads it again
        out.write(write_tar(tmp_path / "other.tar", members[1][:4]).read_bytes())
    assert len(prepare("shards:memory://zoo-test/part-{0..1}.tar", size=12)) == len(remote)  # the prepared copy
    assert len(prepare("shards:memory://zoo-test/part-{0..1}.tar", size=12, force=True)) < len(remote)
    fsspec.filesystem("memory").rm("/zoo-test", recursive=True)


def pax_tar(path: Path, comments: list[str], long_name_at: int = -1) -> Path:
    """A pax tar of one PNG per comment, each with that comment in its pax header; the member
    ``long_name_at`` also has a GNU long-name header (a chain of two extended headers)."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for i, comment in enumerate(comments):
            info, data = tarfile.TarInfo(f"{i}.png"), png(i)
            info.size, info.pax_headers = len(data), {"comment": comment}
            tar.addfile(info, io.BytesIO(data))
    if long_name_at < 0:
        return path
    raw = path.read_bytes()
    with tarfile.open(path) as tar:
        member = tar.getmembers()[long_name_at]
    body = b"n" * 20_000  # a 20 KB name, as a GNU 'L' header between the pax header and its file
    header = tarfile.TarInfo("././@LongLink")
    header.type, header.size = tarfile.GNUTYPE_LONGNAME, len(body)
    block = header.tobuf(tarfile.GNU_FORMAT) + body + b"\0" * (-len(body) % tarfile.BLOCKSIZE)
    cut = member.offset  # the member's own header, after its pax header
    return path.write_bytes(raw[:cut] + block + raw[cut:]) and path


def test_an_absurd_extended_tar_header_is_not_read_and_the_rest_of_its_shard_is_skipped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shards, "LONGEST_EXTENDED_HEADER", 1 << 14)
    for name, path in {"long pax": pax_tar(tmp_path / "pax.tar", ["fine", "x" * 30_000, "fine"]),
                       "a chain": pax_tar(tmp_path / "chain.tar", ["fine", "short", "fine"], long_name_at=1)}.items():
        samples, _, notes = shards.list_shards(f"shards:{path}")
        assert [s["name"] for s in samples] == ["0"], name
        assert "extended tar header of" in notes[0] and "is skipped" in notes[0], name
    first = pax_tar(tmp_path / "first.tar", ["y" * 30_000, "fine"])  # the archive's very first header
    samples, _, notes = shards.list_shards(f"shards:{first}")
    assert samples == [] and "from byte 0" in notes[0]
    for name, where in {"pax": 0, "file": 1}.items():  # a negative size (base-256) in the second member's
        path = pax_tar(tmp_path / f"negative-{name}.tar", ["fine", "fine"])  # pax header, or in its file's
        data = bytearray(path.read_bytes())
        with tarfile.open(path) as tar:
            at = tar.getmembers()[1].offset + where * tarfile.BLOCKSIZE * 2  # (the pax header: 2 blocks)
        data[at + 124:at + 136] = b"\xff" + (-999_936).to_bytes(11, "big", signed=True)
        block = data[at:at + 512]
        block[148:156] = b" " * 8
        data[at + 148:at + 156] = f"{sum(block):06o}\0 ".encode()
        samples, _, notes = shards.list_shards(f"shards:{path.write_bytes(bytes(data)) and path}")
        assert [s["name"] for s in samples] == ["0"], name  # never read as the rest of the archive
        assert "of -999,936 bytes" in notes[0] if name == "pax" else "cut off" in notes[0], name


def test_shard_patterns_expand_as_written(tmp_path: Path) -> None:
    assert shards.expand("/d/{0008..0011}.tar") == [f"/d/{i:04d}.tar" for i in range(8, 12)]
    assert shards.expand("/d/{a,b}-{1..2}.tar") == ["/d/a-1.tar", "/d/a-2.tar", "/d/b-1.tar", "/d/b-2.tar"]
    for name in ("x-1.tar", "x-2.tar"):
        write_tar(tmp_path / name, [("0.png", png(0))])
    assert shards.expand(f"{tmp_path}/x-*.tar") == [str(tmp_path / "x-1.tar"), str(tmp_path / "x-2.tar")]
    with pytest.raises(UsageError, match="does not exist"):
        prepare(f"shards:{tmp_path}/y-{{1..2}}.tar")
    result = run_cli("prep", f"shards:{tmp_path}/nothing-*.tar")
    assert result.exit_code == 2 and "matches no files" in result.output


@pytest.mark.parametrize("name, value", [("ZOO_SHARD_MB", "lots"), ("ZOO_SHARD_MB", "-1"), ("ZOO_IN_MEMORY_MB", "x")])
def test_a_bad_size_setting_is_one_line_before_anything_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   cache_dir: Path, name: str, value: str) -> None:
    root = make_image_folder(tmp_path / "sizes", per_class=3)
    monkeypatch.setenv(name, value)
    result = run_cli("prep", f"folder:{root}", "--size", "8")
    assert result.exit_code == 2 and f"${name} must be a number of megabytes" in " ".join(result.output.split())
    assert not list((cache_dir / "prepared").glob("folder-sizes-*"))


def test_mapped_images_index_as_a_tensor_does() -> None:
    whole = torch.randint(0, 256, (9, 1, 2, 2), dtype=torch.uint8)
    images = mapped.ShardedImages([whole[:4], whole[4:]])
    assert torch.equal(images[torch.tensor(3)], whole[3]) and torch.equal(images[[-1, 0]], whole[[-1, 0]])
    with pytest.raises(IndexError):
        images[[9]]  # out of range, not wrapped round


def test_a_folders_other_files_are_counted_and_left_out_of_the_split(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "mixed", per_class=110)
    (root / "circle" / "notes.txt").write_text("not a picture")
    prepared = prepare(f"folder:{root}", size=8)
    assert len(prepared) + prepared.meta["heldout"]["count"] == 220
    assert any("1 file(s) that are not images" in note and "notes.txt" in note for note in prepared.meta["notes"])


def test_shards_refuse_full_size_and_an_empty_range(tmp_path: Path) -> None:
    write_tar(tmp_path / "one.tar", [("0.png", png(0))])
    assert run_cli("prep", f"shards:{tmp_path}/one.tar", "--size", "full").exit_code == 2
    result = run_cli("prep", f"shards:{tmp_path}/{{9..1}}.tar")
    assert result.exit_code == 2 and "names no files" in result.output


# -- photos at their own sizes (--size full) -------------------------------------------------------

def photo_classes(root: Path, gray: bool = False, broken: bool = False) -> Path:
    """Photos of several sizes in two class folders (and with ``broken`` a file that is not an image)."""
    from PIL import Image

    for i in range(14):
        size = (40 + 3 * i, 32 + 5 * (i % 4))  # width, height
        pixels = torch.randint(0, 256, (size[1], size[0], 3), generator=torch.Generator().manual_seed(i),
                               dtype=torch.uint8)
        image = Image.fromarray(pixels.numpy())
        folder = root / ("cats" if i % 2 else "dogs")
        folder.mkdir(parents=True, exist_ok=True)
        (image.convert("L") if gray else image).save(folder / f"p{i:02d}.png")
    if broken:
        (root / "dogs" / "broken.png").write_bytes(b"not a png")
    return root


def killed_at(calls: dict[str, int], name: str, n: int, real):  # type: ignore[no-untyped-def]
    """``real``, counting its calls in ``calls[name]``; the ``n``th raises KeyboardInterrupt, as a
    kill would leave the work."""
    def counted(*args):  # type: ignore[no-untyped-def]
        calls[name] += 1
        if calls[name] == n:
            raise KeyboardInterrupt
        return real(*args)
    return counted


@pytest.mark.parametrize("gray", [False, True])
def test_photos_at_their_own_sizes_are_read_one_at_a_time_into_the_files_a_whole_read_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gray: bool) -> None:
    import dataclasses

    from zoo.data import sources
    from zoo.pipelines import prep as prep_module

    folder = photo_classes(tmp_path / "photos", gray)
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "streamed"))
    streamed = prepare(f"folder:{folder}", size="full", subset="0:11")
    find = sources.find
    monkeypatch.setattr(prep_module.sources, "find", lambda data: dataclasses.replace(find(data), stream=None))
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "whole"))
    whole = prepare(f"folder:{folder}", size="full", subset="0:11")  # the photos read whole, as zoo always did
    assert streamed.photos is not None and len(streamed) == 11 and streamed.meta["heldout"]["count"] == 1
    assert streamed.spec.channels == (1 if gray else 3)
    for name in ("data.safetensors", "heldout.safetensors"):
        ours, their = (files.load_tensors(p.path / name, "test", "") for p in (streamed, whole))
        assert ours[1] == their[1] and ours[0].keys() == their[0].keys() == {
            "images", "labels", "photos.pixels", "photos.shapes"}
        assert all(torch.equal(ours[0][k], their[0][k]) for k in ours[0])
    meta = [{k: v for k, v in json.loads((p.path / "meta.json").read_text()).items() if k != "created"}
            for p in (streamed, whole)]
    assert meta[0] == meta[1]
    assert (streamed.path / "stats.png").is_file() and not list(streamed.path.parent.glob("*.tmp-*"))
    assert not list(streamed.path.parent.glob("*.partial"))


def test_a_photo_prep_cut_short_resumes_after_the_last_photo_it_recorded_and_gives_the_same_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from zoo.data.sources.streamed import Streamed
    from zoo.pipelines import streamed_photos

    folder = photo_classes(tmp_path / "photos")
    reference = prepare(f"folder:{folder}", size="full")
    expected = {p.name: p.read_bytes() for p in reference.path.glob("*.safetensors")}
    partial = reference.path.with_name(reference.path.name + ".partial")
    monkeypatch.setattr(streamed_photos, "SAVE_SECONDS", 0.0)  # a record after every photo
    fitted, write = Streamed.fitted, streamed_photos._write
    calls = {"fitted": 0, "write": 0}

    def dies_at(name: str, n: int, real):  # type: ignore[no-untyped-def]
        return killed_at(calls, name, n, real)

    monkeypatch.setattr(Streamed, "fitted", dies_at("fitted", 6, fitted))  # while reading the sixth photo
    with pytest.raises(KeyboardInterrupt):
        prepare(f"folder:{folder}", size="full", force=True)
    progress = json.loads((partial / "progress.json").read_text())
    assert progress["read"]["train"]["done"] == 5
    with (partial / "train.raw").open("ab") as raw:
        raw.write(b"half a photo")  # appended after the record, before the kill
    monkeypatch.setattr(Streamed, "fitted", dies_at("fitted", 10**9, fitted))
    monkeypatch.setattr(streamed_photos, "_write", dies_at("write", 4, write))  # then killed writing the files
    with pytest.raises(KeyboardInterrupt):
        prepare(f"folder:{folder}", size="full", force=True)
    assert calls["fitted"] == 6 + (14 - 5)  # the five recorded photos were not read again
    monkeypatch.setattr(streamed_photos, "_write", write)
    again = prepare(f"folder:{folder}", size="full", force=True)
    assert not partial.exists() and {p.name: p.read_bytes() for p in again.path.glob("*.safetensors")} == expected


def photo_pairs(root: Path, gray_a: bool = False, factor: int = 2, gray_b: bool = False,
                mixed: bool = False) -> Path:
    """paired:PATH's A/ (low) and B/ (high, ``factor`` times larger; with ``mixed`` every third
    pair one more time larger: no one ratio) layout: 12 pairs of several sizes."""
    from PIL import Image

    for side in "AB":
        (root / side).mkdir(parents=True, exist_ok=True)
    for i in range(12):
        w, h = 8 + 2 * (i % 5), 6 + 3 * (i % 3)
        scale = factor + (1 if mixed and i % 3 == 0 else 0)
        pixels = torch.randint(0, 256, (h * scale, w * scale, 3), generator=torch.Generator().manual_seed(i),
                               dtype=torch.uint8)
        high = Image.fromarray(pixels.numpy())
        (high.convert("L") if gray_b else high).save(root / "B" / f"q{i:02d}.png")
        low = high.resize((w, h), Image.Resampling.BICUBIC)
        (low.convert("L") if gray_a else low).save(root / "A" / f"q{i:02d}.png")
    return root


@pytest.mark.parametrize(("gray_a", "factor", "gray_b", "mixed"), [
    (False, 2, False, False), (True, 3, False, False),  # colour, or gray A beside colour B: colour
    (True, 2, True, False),  # both gray: one channel
    (False, 2, False, True),  # no one ratio: B's own centres
])
def test_photo_pairs_are_read_one_pair_at_a_time_into_the_files_a_whole_read_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gray_a: bool, factor: int, gray_b: bool,
        mixed: bool) -> None:
    import dataclasses

    from zoo.data import sources
    from zoo.data.sources import pairs
    from zoo.pipelines import prep as prep_module

    root = photo_pairs(tmp_path / "pairs", gray_a, factor, gray_b, mixed)
    read_whole = pairs._read_all
    monkeypatch.setattr(pairs, "_read_all", lambda *a: pytest.fail("read whole"))  # type: ignore[misc]
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "streamed"))
    streamed = prepare(f"paired:{root}", size="full")
    monkeypatch.setattr(pairs, "_read_all", read_whole)
    find = sources.find
    monkeypatch.setattr(prep_module.sources, "find", lambda data: dataclasses.replace(find(data), stream=None))
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "whole"))
    whole = prepare(f"paired:{root}", size="full")  # the pairs read whole, as zoo did
    assert len(streamed) == 11 and streamed.meta["heldout"]["count"] == 1
    assert streamed.spec.channels == (1 if gray_a and gray_b else 3) and streamed.targets is not None
    # aligned windows at A's smallest size times the ratio; with mixed ratios B's smallest height
    # and width (18 = 6 x 3 = 9 x 2, and 16 = 8 x 2)
    assert streamed.targets.shape[-2:] == ((6 * factor, 8 * factor) if not mixed else (18, 16))
    for name in ("data.safetensors", "heldout.safetensors"):
        ours, their = (files.load_tensors(p.path / name, "test", "") for p in (streamed, whole))
        assert ours[1] == their[1] and ours[0].keys() == their[0].keys() == {
            "images", "targets", "photos.pixels", "photos.shapes", "target_photos.pixels", "target_photos.shapes"}
        assert all(torch.equal(ours[0][k], their[0][k]) for k in ours[0])
    meta = [{k: v for k, v in json.loads((p.path / "meta.json").read_text()).items() if k != "created"}
            for p in (streamed, whole)]
    assert meta[0] == meta[1]
    assert {p.name for p in streamed.path.iterdir()} == {p.name for p in whole.path.iterdir()}  # pairs.png too


def test_a_photo_pair_with_an_unreadable_file_is_left_out_whole(tmp_path: Path) -> None:
    root = photo_pairs(tmp_path / "pairs")
    (root / "A" / "q12.png").write_bytes((root / "A" / "q00.png").read_bytes())
    (root / "B" / "q12.png").write_bytes(b"not a png")  # its A file reads; the pair goes
    prepared = prepare(f"paired:{root}", size="full")
    held = load_prepared(prepared.path, "heldout")
    assert len(prepared) + len(held) == 12 and prepared.target_photos is not None
    assert len(prepared.target_photos.shapes) == len(prepared.photos.shapes) == len(prepared)  # type: ignore[union-attr]
    assert any("skipped 1 pair(s)" in note and "B/q12.png" in note for note in prepared.meta["notes"])


def test_a_photo_pair_prep_cut_short_resumes_after_the_last_pair_it_recorded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from zoo.data import images
    from zoo.pipelines import streamed_photos

    root = photo_pairs(tmp_path / "pairs")
    reference = prepare(f"paired:{root}", size="full")
    expected = {p.name: p.read_bytes() for p in reference.path.glob("*.safetensors")}
    partial = reference.path.with_name(reference.path.name + ".partial")
    monkeypatch.setattr(streamed_photos, "SAVE_SECONDS", 0.0)  # a record after every pair
    real, calls = images.read_image, {"read": 0}
    monkeypatch.setattr(streamed_photos, "read_image", killed_at(calls, "read", 9, real))  # the fifth pair's A
    with pytest.raises(KeyboardInterrupt):
        prepare(f"paired:{root}", size="full", force=True)
    assert json.loads((partial / "progress.json").read_text())["read"]["train"]["done"] == 4
    for name in ("train.raw", "train.target.raw"):
        with (partial / name).open("ab") as raw:
            raw.write(b"half a photo")  # pixels appended after the record, before the kill
    monkeypatch.setattr(streamed_photos, "read_image", killed_at(calls, "read", 10**9, real))
    again = prepare(f"paired:{root}", size="full", force=True)
    assert calls["read"] == 9 + 2 * (12 - 4)  # the four recorded pairs were not read again
    assert not partial.exists() and {p.name: p.read_bytes() for p in again.path.glob("*.safetensors")} == expected
    assert not list(again.path.glob("*.raw"))


def test_what_a_photo_prep_killed_just_after_its_swap_left_is_cleared_when_the_cache_is_read(
        tmp_path: Path) -> None:
    folder = photo_classes(tmp_path / "photos")
    made = prepare(f"folder:{folder}", size="full")
    for name in ("train.raw", "heldout.raw", "progress.json"):  # as a kill between the swap and their removal
        (made.path / name).write_bytes(b"x" * 100)
    again = prepare(f"folder:{folder}", size="full")
    assert torch.equal(again.images, made.images)
    assert not list(made.path.glob("*.raw")) and not (made.path / "progress.json").exists()


def test_unfinished_prep_folders_untouched_for_a_week_are_removed_and_said(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import time

    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))  # a cache of its own: it leaves odd folders
    prepared = tmp_path / "cache" / "prepared"
    old, recent = prepared / "folder-gone-0123456789-8px-nativech.partial", prepared / "folder-other-1-8px.partial"
    dotted = prepared / "folder-holiday.old-2019-0123456789-8px-nativech"  # a finished cache, its folder's name dotted
    shapes = make_image_folder(tmp_path / "shapes", per_class=3)
    made = prepare(f"folder:{shapes}", size=8).path
    own = made.with_name(made.name + ".partial")  # the one this prep works in: kept (the count says)
    week = time.time() - 8 * 86400
    for work in (old, recent, dotted, own):
        work.mkdir(parents=True, exist_ok=True)
        (work / "train-00000.safetensors").write_bytes(b"x" * 1000)
        if work != recent:
            for path in (work / "train-00000.safetensors", work):
                os.utime(path, (week, week))
    result = run_cli("prep", f"folder:{shapes}", "--size", "8", "--force")
    assert result.exit_code == 0, result.output
    assert "removed 1 unfinished prep folder(s) untouched for 7 days" in " ".join(result.output.split())
    assert not old.exists() and recent.exists() and dotted.exists()
    assert not own.exists()  # (nothing in it to resume from: the prep started it afresh, then swapped it in)


def test_a_photo_that_cannot_be_read_is_skipped_and_counted(tmp_path: Path) -> None:
    prepared = prepare(f"folder:{photo_classes(tmp_path / 'photos', broken=True)}", size="full")
    assert len(prepared) + prepared.meta["heldout"]["count"] == 14  # the fifteenth file is no image
    notes = " ".join(prepared.meta["notes"])
    assert "skipped 1 unreadable file(s)" in notes and "broken.png" in notes


def test_photos_past_the_memory_limit_are_mapped_and_crop_as_photos_in_memory_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from zoo.data.superres import Derivation

    prepared = prepare(f"folder:{photo_classes(tmp_path / 'photos')}", size="full")
    monkeypatch.setenv("ZOO_IN_MEMORY_MB", "0")
    on_disk = load_prepared(prepared.path)
    assert on_disk.photos is not None and prepared.photos is not None
    address, file = on_disk.photos.pixels.data_ptr(), str(prepared.path / "data.safetensors")
    maps = [line.split() for line in Path("/proc/self/maps").read_text().splitlines() if line.endswith(file)]
    assert any(int(m[0].split("-")[0], 16) <= address < int(m[0].split("-")[1], 16) for m in maps)  # the file's pages

    def batches(data):  # type: ignore[no-untyped-def]
        return TensorBatches(data.images, data.labels, 4, seed=5, derive=Derivation(2, 16, flips=True),
                             photos=data.photos)

    mapped_batches, memory_batches = batches(on_disk), batches(prepared)
    for _ in range(5):  # across a pass
        torch.manual_seed(0)
        one = mapped_batches.next()
        torch.manual_seed(0)
        other = memory_batches.next()
        assert torch.equal(one.images, other.images) and torch.equal(one.targets, other.targets)
