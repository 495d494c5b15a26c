"""The fault matrix: each way a run, a cache or a stranger's file can go wrong, injected,
and what must survive it (see benchmarks/faults.py for the kill -9 loop)."""

from __future__ import annotations

import errno
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import SafetensorError

import zoo
from zoo import registry
from zoo.data.memory import SPLIT_FILES, load_prepared
from zoo.display import figures
from zoo.measure import classifier
from zoo.records import checkpoint as ckpt_io
from zoo.records import files, runs

from .conftest import TINY, FakeEntryPoint, checkpoint_tensors, make_image_folder, run_cli

TRAIN = ["train", "dcgan", "--data", "mnist", *TINY, "--no-wandb"]


@pytest.fixture
def base_run(mnist, trained) -> Path:
    """A finished 4-step DCGAN run (trained once per module), copied for each test that asks."""
    return trained(*TRAIN, "--steps", "4")


def zoo_process(*args: str, file_limit: int | None = None, prelude: str = "", **kwargs) -> subprocess.Popen:
    """``zoo ARGS`` in a fresh process; with ``file_limit``, no file it writes may grow past
    that many bytes: the kernel fails the write (EFBIG), as a full disk fails it (ENOSPC).
    ``prelude``: Python run in that process first."""
    limit = "" if file_limit is None else (
        "import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({file_limit}, {file_limit})); ")
    code = (f"{prelude}\n{limit}import sys, runpy; sys.argv = ['zoo', *sys.argv[1:]]; "
            "runpy.run_module('zoo', run_name='__main__')")
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "COLUMNS": "250"}, **kwargs)


def finished(process: subprocess.Popen, timeout: float = 240) -> tuple[int, str]:
    out, _ = process.communicate(timeout=timeout)
    return process.returncode, out


def one_line_error(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert "Traceback" not in output, output
    return lines[-1] if lines else ""


def tensor_files(prepared: Path) -> list[Path]:
    """A prepared folder's tensor files: a folder's shards, or a named set's data.safetensors."""
    return sorted(prepared.glob("train-*.safetensors")) or [prepared / SPLIT_FILES["train"]]


def no_partial_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if files.is_partial(p) or ".tmp-" in p.name]


# -- a full disk ---------------------------------------------------------------------------------

def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint(base_run) -> None:
    run = base_run
    before = (run / ckpt_io.FILENAME).read_bytes()
    limit = len(before) // 2  # the checkpoint cannot be written; metrics, run.json and previews can
    code, out = finished(zoo_process("train", "dcgan", "--resume", str(run), "--steps", "8", "--no-wandb",
                                     file_limit=limit))
    assert code == 1
    line = one_line_error(out)
    assert "could not write checkpoint" in line and "the previous checkpoint is intact" in line
    assert "The last checkpoint holds step 4" in line and "--resume" in line
    assert (run / ckpt_io.FILENAME).read_bytes() == before
    assert ckpt_io.load(run / ckpt_io.FILENAME).train["step"] == 4
    assert no_partial_files(run) == []
    assert runs.read_run_info(run)["status"].startswith("failed")
    result = run_cli("train", "dcgan", "--resume", str(run), "--steps", "8", "--no-wandb")
    assert result.exit_code == 0, result.output  # space again: it goes on from step 4


def test_every_kind_of_file_says_the_disk_is_full_and_leaves_nothing_half_written(tmp_path, monkeypatch) -> None:
    def no_space_pil(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"\x89PNG half")
        raise OSError(errno.ENOSPC, "No space left on device")

    def no_space_safetensors(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    grid = tmp_path / "grid.png"
    figures.save_grid(torch.zeros(4, 1, 8, 8), grid)
    picture = grid.read_bytes()
    tensors = tmp_path / "t.safetensors"
    files.save_tensors(tensors, {"a": torch.ones(3)})
    with monkeypatch.context() as m:
        m.setattr(Image.Image, "save", no_space_pil)
        with pytest.raises(files.DiskFull, match=r"could not write picture .*grid.png: no space left on the disk"):
            figures.save_grid(torch.ones(4, 1, 8, 8), grid)
        with pytest.raises(files.DiskFull, match="nothing half-written was left"):
            figures.save_grid(torch.ones(4, 1, 8, 8), tmp_path / "new.png")
    with monkeypatch.context() as m:
        m.setattr("safetensors.torch.save_file", no_space_safetensors)
        with pytest.raises(files.DiskFull, match="the previous file is intact"):
            files.save_tensors(tensors, {"a": torch.zeros(3)})
    assert grid.read_bytes() == picture and not (tmp_path / "new.png").exists()
    assert torch.equal(files.load_tensors(tensors, "file", "")[0]["a"], torch.ones(3))
    assert no_partial_files(tmp_path) == []


def test_a_full_disk_while_preparing_leaves_the_cache_as_it_was(tmp_path) -> None:
    folder = make_image_folder(tmp_path / "full-disk", per_class=12)
    code, out = finished(zoo_process("prep", f"folder:{folder}", "--size", "16", file_limit=2_000))
    assert code == 1
    line = one_line_error(out)
    assert "could not write prepared data" in line and "nothing half-written was left" in line
    cache = Path(os.environ["ZOO_CACHE_DIR"]) / "prepared"
    assert no_partial_files(cache) == [] and not list(cache.glob("folder-full-disk-*16px*/meta.json"))
    assert run_cli("prep", f"folder:{folder}", "--size", "16").exit_code == 0
    made = next(cache.glob("folder-full-disk-*16px*"))
    before = [path.read_bytes() for path in tensor_files(made)]
    code, out = finished(zoo_process("prep", f"folder:{folder}", "--size", "16", "--force", file_limit=2_000))
    assert code == 1 and "could not write prepared data" in one_line_error(out)
    assert [path.read_bytes() for path in tensor_files(made)] == before  # the previous cache, whole
    assert not list(cache.glob("*.partial"))  # a full disk gets its space back
    assert len(load_prepared(made)) == 24


# -- out of memory -------------------------------------------------------------------------------

def test_out_of_memory_names_a_batch_size_to_try(mnist, monkeypatch) -> None:
    from zoo.plugins.dcgan import DCGAN

    def too_big(self, batches, progress):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(DCGAN, "train_step", too_big)
    result = run_cli(*TRAIN, "--steps", "4", "--out", "oom")
    assert result.exit_code == 1
    line = one_line_error(result.output)
    assert "out of memory on cpu at batch size 16 (step 1)" in line and "--batch-size 8" in line
    assert runs.read_run_info(Path("oom"))["status"] == "failed: OutOfMemoryError"


def test_the_cpu_allocators_failure_is_out_of_memory_too() -> None:
    from zoo.training.process import is_out_of_memory

    assert is_out_of_memory(RuntimeError("[enforce fail at alloc_cpu.cpp:119] DefaultCPUAllocator: can't allocate "
                                         "memory: you tried to allocate 1099511627776 bytes"))
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


# -- kill -9 -------------------------------------------------------------------------------------

def halt_at_step(step: int, signpost: Path) -> str:
    """A prelude for :func:`zoo_process`: DCGAN's training stops inside step ``step`` (before
    its update), says so by making ``signpost``, and waits there to be killed."""
    return f"""if True:
        import time
        from zoo.plugins.dcgan import DCGAN
        train_step, steps = DCGAN.train_step, []
        def halting(self, batches, progress):
            steps.append(1)
            if len(steps) == {step}:
                open({str(signpost)!r}, "w").close()
                time.sleep(3600)
            return train_step(self, batches, progress)
        DCGAN.train_step = halting
    """


def test_kill_9_mid_training_resumes_to_the_uninterrupted_model(mnist, trained, tmp_path) -> None:
    from zoo.records.run_info import run_status

    whole = trained(*TRAIN, "--steps", "40", dest="whole")
    run, halted = tmp_path / "killed", tmp_path / "halted"
    args = [*TRAIN, "--steps", "40", "--checkpoint-every", "5", "--out", str(run)]
    process = zoo_process(*args, prelude=halt_at_step(8, halted))  # killed in step 8 of 40, whatever the speed
    deadline = time.monotonic() + 120
    while not halted.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    output, _ = process.communicate()
    assert halted.exists() and process.returncode == -signal.SIGKILL, output
    saved = ckpt_io.read_meta(run / ckpt_io.FILENAME)["train"]["step"]
    assert saved == 5  # the last checkpoint before the kill; steps 6 and 7 are lost with the process
    info = runs.read_run_info(run)  # readable, whole, and it says the run was cut short
    assert (info["status"], info["step"], info["total_steps"]) == ("running", 5, 40)
    assert run_status(run, info) == "stopped"  # the dead process holds no lock
    for line in (run / "metrics.jsonl").read_text().splitlines()[:-1]:
        json.loads(line)
    left = [run / ".checkpoint.safetensors.0123456789abcdef.tmp", run / "progress" / ".step.png.fedcba9876543210.tmp"]
    for path in left:  # what a kill mid-write leaves (an hour ago), and a write in progress now
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"half")
        os.utime(path, (time.time() - 3600,) * 2)
    (run / ".eval.json.00000000aaaaaaaa.tmp").write_bytes(b"being written")
    result = run_cli("train", "dcgan", "--resume", str(run), "--no-wandb")  # (in this process: a start saved)
    assert result.exit_code == 0, result.output
    assert not any(path.exists() for path in left) and (run / ".eval.json.00000000aaaaaaaa.tmp").exists()
    assert ckpt_io.read_meta(run / ckpt_io.FILENAME)["train"]["step"] == 40
    final, reference = checkpoint_tensors(run), checkpoint_tensors(whole)
    weights = [k for k in reference if k.startswith("model.")]
    assert weights and all(torch.equal(final[k], reference[k]) for k in weights)


# -- corrupt caches ------------------------------------------------------------------------------

def overwrite_middle(path: Path, count: int = 2_000) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + count] = bytes((b + 1) % 256 for b in data[middle:middle + count])
    path.write_bytes(bytes(data))


def test_prepared_data_with_bytes_overwritten_is_refused_then_rebuilt(tmp_path) -> None:
    from zoo.pipelines.prep import prepare

    folder = make_image_folder(tmp_path / "shapes", per_class=12)
    prepared = prepare(f"folder:{folder}", size=16)
    images = prepared.images.clone()
    overwrite_middle(tensor_files(prepared.path)[0])
    with pytest.raises(files.Damaged, match="differ from the checksum written with them.*zoo prep"):
        load_prepared(prepared.path)
    result = run_cli("prep", f"folder:{folder}", "--size", "16")
    assert result.exit_code == 0 and "preparing it again" in " ".join(result.output.split())  # however it wraps
    assert torch.equal(load_prepared(prepared.path).images, images)


def test_truncated_prepared_data_is_refused_then_rebuilt(tmp_path) -> None:
    from zoo.pipelines.prep import prepare

    folder = make_image_folder(tmp_path / "shapes", per_class=12)
    path = tensor_files(prepare(f"folder:{folder}", size=16).path)[0]
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(files.Damaged, match="truncated"):
        load_prepared(path.parent)
    assert len(prepare(f"folder:{folder}", size=16)) == 24


def test_a_cached_classifier_that_was_edited_is_trained_again(tmp_path, capsys) -> None:
    path = tmp_path / "classifier.safetensors"
    model = classifier.Classifier("x", 1, 10)
    model.accuracy = 0.5
    classifier._write(model, path)
    assert classifier._read(classifier.Classifier("x", 1, 10), path)
    overwrite_middle(path, 64)
    assert not classifier._read(classifier.Classifier("x", 1, 10), path)
    assert "cached classifier" in capsys.readouterr().err


# -- checkpoints from strangers ------------------------------------------------------------------

def forged(run: Path, tmp_path: Path, change) -> Path:
    """A copy of the run's checkpoint with its header or tensors changed by ``change``."""
    from safetensors.torch import load_file, save_file

    source = run / ckpt_io.FILENAME
    header = ckpt_io.safe_header(source)
    assert header is not None
    tensors = load_file(str(source))
    meta = json.loads(header["zoo"])
    change(meta, tensors)
    out = tmp_path / "forged.safetensors"
    save_file(tensors, str(out), metadata={"zoo": json.dumps(meta)})  # no checksum: a stranger's file
    return out


def refused(path: Path, message: str) -> None:
    result = run_cli("sample", str(path), "-n", "2", "--out", "out")
    assert result.exit_code == 1, result.output
    assert message in one_line_error(result.output)


def test_a_checkpoint_whose_bytes_changed_is_refused(base_run) -> None:
    path = base_run / ckpt_io.FILENAME
    overwrite_middle(path, 256)
    refused(path, "differ from the checksum written with them")


def test_nan_weights_are_refused(base_run, tmp_path) -> None:
    def poison(meta, tensors):
        key = next(k for k in tensors if k.startswith("model.") and tensors[k].is_floating_point())
        tensors[key] = torch.full_like(tensors[key], float("nan"))

    refused(forged(base_run, tmp_path, poison), "NaN or infinite weights")


def test_weights_of_the_wrong_kind_are_refused(base_run, tmp_path) -> None:
    def to_int8(meta, tensors):
        key = next(k for k in tensors if k.endswith("weight") and k.startswith("model."))
        tensors[key] = tensors[key].to(torch.int8)

    refused(forged(base_run, tmp_path, to_int8), "is stored as torch.int8")


def test_a_header_that_claims_huge_networks_allocates_nothing(base_run, tmp_path) -> None:
    def huge(meta, tensors):
        meta["config"]["g_width"] = 1_000_000  # terabytes of weights, if built

    refused(forged(base_run, tmp_path, huge), "of weights, and the whole file is")


@pytest.mark.parametrize(("edit", "message"), [
    (lambda meta: meta.update(config=[1, 2]), "its header's 'config' is list, not dict"),
    (lambda meta: meta.pop("skeleton"), "its header's 'skeleton' is NoneType"),
    (lambda meta: meta.update(plugin=7), "its header's 'plugin' is int, not str"),
    (lambda meta: meta.update(plugin="nosuchgan"), "nosuchgan"),
    (lambda meta: meta.update(data={"name": "x"}), "its data spec is unreadable"),
])
def test_headers_zoo_did_not_write_are_one_line(base_run, tmp_path, edit, message) -> None:
    refused(forged(base_run, tmp_path, lambda meta, tensors: edit(meta)), message)


@pytest.mark.parametrize("body", [
    struct.pack("<Q", 2**60) + b"{}",  # a header length of an exabyte
    struct.pack("<Q", 80) + json.dumps({"w": {"dtype": "F32", "shape": [10**9],
                                              "data_offsets": [0, 4 * 10**9]}}).encode().ljust(80),
    b"",
    b"PK\x03\x04 a zip, as torch.save writes",
])
def test_files_that_are_not_whole_safetensors_are_refused_without_reading_their_claims(tmp_path, body) -> None:
    path = tmp_path / "stranger.safetensors"
    path.write_bytes(body)
    refused(path, "is not a readable zoo checkpoint")


def nested_header(run: Path, out: Path, depth: int, key: str) -> Path:
    """A copy of the run's checkpoint whose header's ``key`` (config, or skeleton) holds lists
    nested ``depth`` deep (written as text: json.dumps itself cannot write that deep)."""
    from safetensors.torch import load_file, save_file

    source = run / ckpt_io.FILENAME
    header = ckpt_io.safe_header(source)
    assert header is not None and f'"{key}": {{' in header["zoo"]
    text = header["zoo"].replace(f'"{key}": {{', f'"{key}": {{"deep": ' + "[" * depth + "]" * depth + ", ", 1)
    save_file(load_file(str(source)), str(out), metadata={"zoo": text})
    return out


@pytest.mark.parametrize(("depth", "key"), [(100_000, "config"), (900, "skeleton")])
def test_a_header_nested_deeper_than_zoo_writes_is_one_line(base_run, tmp_path, depth, key) -> None:
    """100,000 deep: json's RecursionError; 900: it parses, but the skeleton's walk recursed too deep."""
    deep = nested_header(base_run, tmp_path / "deep.safetensors", depth, key)
    refused(deep, "is not a checkpoint zoo wrote: its header is not JSON zoo reads (JSON nested more than")
    for args in (["--resume", str(deep)], ["--data", "mnist", "--init-from", str(deep), "--out", "warm"]):
        result = run_cli(*TRAIN, "--steps", "1", *args)
        assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
        assert "JSON nested more than" in one_line_error(result.output)
    assert not Path("warm").exists() and not Path(os.environ["ZOO_RUNS_DIR"]).exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--kimg", "inf"], "--kimg must be a number from 0.001 to 1e+09, got inf"),
    (["--kimg", "1e-9"], "--kimg must be a number from 0.001"),  # no image at all: it trained forever
    (["--seed", str(2**64)], "--seed must be a whole number from 0 to 4,294,967,295, got 18446744073709551616"),
    (["--set", "lr=nan"], "--set lr=nan: expected a finite number"),
    (["--set", "g_width=100000000000"], "--set g_width=100000000000: expected an integer from"),
    (["--set", "g_width=100000"], "networks with this config need about"),  # terabytes: refused, not allocated
    (["--clip-grad", "nan"], "--clip-grad must be 0 (off) or a positive finite number, got nan"),
    (["--eval-every", "1", "--eval-features", "nosuch"], "unknown feature extractor 'nosuch'"),  # was after the run
])
def test_hostile_values_are_one_line_before_anything_is_written(mnist, args, message) -> None:
    result = run_cli(*TRAIN, *([] if "--kimg" in args else ["--steps", "1"]), *args)
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert message in one_line_error(result.output)
    assert not Path(os.environ["ZOO_RUNS_DIR"]).exists()


# -- plugins from strangers ----------------------------------------------------------------------

def test_a_plugin_that_exits_while_importing_is_only_broken(extra_plugins) -> None:
    extra_plugins(FakeEntryPoint("exiting", "tests.exiting_plugin:Model", "zoo-exiting"))
    result = run_cli("list")
    assert result.exit_code == 0 and "SystemExit: 3" in result.output and "dcgan" in result.output
    with pytest.raises(zoo.ZooError, match="plugin 'exiting' from zoo-exiting 9.9 is broken: SystemExit"):
        registry.get("exiting")


def test_a_plugin_slow_to_import_does_not_hold_up_the_list(extra_plugins, monkeypatch) -> None:
    monkeypatch.setattr(registry, "IMPORT_SECONDS", 0.2)
    reg = extra_plugins(FakeEntryPoint("slow", "tests.slow_plugin:SlowGAN", "zoo-slow"))
    entries = {e.name: e for e in reg.entries()}
    assert entries["slow"].model is None and "still importing after 0.2 s" in (entries["slow"].error or "")
    assert entries["dcgan"].model is not None
    assert reg.get("slow").name == "slow"  # a command that uses it waits for it


# -- images and folders from strangers ------------------------------------------------------------

def strange_images(folder: Path) -> dict[str, Path]:
    """One file of each kind a stranger's folder holds."""
    folder.mkdir(parents=True)
    made: dict[str, Path] = {}

    def put(name: str, image: Image.Image, **options) -> None:
        made[name] = folder / name
        image.save(made[name], **options)

    put("gray16.png", Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16)))
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([255, 0, 0] + [0, 0, 0] * 255)
    put("palette.png", palette, transparency=0)  # every pixel transparent red: white as shown
    put("alpha.png", Image.new("RGBA", (8, 8), (0, 0, 255, 0)))
    put("cmyk.jpg", Image.new("CMYK", (8, 8), (0, 255, 255, 0)))  # red in ink
    put("one.png", Image.new("RGB", (1, 1), (10, 200, 30)))
    rotated = Image.new("RGB", (40, 20), (200, 200, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    put("rotated.jpg", rotated, exif=exif)
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((0, 255, 0), (255, 0, 0))]
    made["animated.gif"] = folder / "animated.gif"
    frames[0].save(made["animated.gif"], save_all=True, append_images=frames[1:])
    made["png-named.jpg"] = folder / "png-named.jpg"
    Image.new("RGB", (8, 8), (0, 0, 0)).save(made["png-named.jpg"], format="PNG")
    made["text.png"] = folder / "text.png"
    made["text.png"].write_text("not an image")
    whole = folder / "whole.jpg"
    Image.new("RGB", (64, 64), (90, 90, 90)).save(whole)
    made["truncated.jpg"] = folder / "truncated.jpg"
    made["truncated.jpg"].write_bytes(whole.read_bytes()[:300])
    whole.unlink()
    made["bomb.png"] = folder / "bomb.png"  # a header that claims 50,000 x 50,000 pixels
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 50_000, 50_000, 8, 2, 0, 0, 0))
    made["bomb.png"].write_bytes(b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
                                 + png_chunk(b"IEND", b""))
    return made


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_every_kind_of_image_is_read_as_it_looks_or_skipped(tmp_path) -> None:
    from zoo.data.images import UNREADABLE, read_image

    made = strange_images(tmp_path / "odd")
    seen = {}
    for name, path in made.items():
        try:
            seen[name] = read_image(path, 0, 0)[0]
        except UNREADABLE:
            seen[name] = None
    assert seen["gray16.png"].unique().tolist() == [156]  # 40000 / 65535 of white, not clipped to 255
    assert seen["palette.png"][:, 0, 0].tolist() == [255, 255, 255]  # transparent: white, as shown
    assert seen["alpha.png"][:, 0, 0].tolist() == [255, 255, 255]
    red = seen["cmyk.jpg"][:, 4, 4].tolist()
    assert red[0] > 200 and red[1] < 60 and red[2] < 60
    assert tuple(seen["one.png"].shape) == (3, 1, 1)
    assert tuple(seen["rotated.jpg"].shape) == (3, 40, 20)  # upright: EXIF rotation applied
    assert seen["animated.gif"][:, 0, 0].tolist() == [0, 255, 0]  # the first frame
    assert seen["png-named.jpg"] is not None
    assert seen["text.png"] is None and seen["truncated.jpg"] is None and seen["bomb.png"] is None


def test_a_folder_of_strange_files_is_prepared_with_the_bad_ones_counted(tmp_path) -> None:
    from zoo.pipelines.prep import prepare

    made = strange_images(tmp_path / "odd")
    prepared = prepare(f"folder:{made['one.png'].parent}", size=8)  # the bomb refused from its header
    assert len(prepared) == len(made) - 3
    notes = " ".join(prepared.meta["notes"])
    assert "skipped 3 unreadable file(s)" in notes and "bomb.png (DecompressionBombError)" in notes


def test_links_that_leave_the_folder_are_not_followed(tmp_path) -> None:
    from zoo.data.sources.folder import folder_layout

    outside = make_image_folder(tmp_path / "outside", per_class=2, classes=("far",))
    root = make_image_folder(tmp_path / "data", per_class=2, classes=("cats", "dogs"))
    (root / "cats" / "away.png").symlink_to(next((outside / "far").iterdir()))
    (root / "cats" / "here.png").symlink_to(root / "dogs" / "00.jpg")
    (root / "cats" / "passwd.png").symlink_to("/etc/passwd")
    (root / "far").symlink_to(outside / "far", target_is_directory=True)
    classes, found = folder_layout(root)
    names = {path.name for path, _ in found}
    assert "here.png" in names and not {"away.png", "passwd.png"} & names
    assert not any(path.parent.name == "far" for path, _ in found)
    from zoo.data.sources.folder import links_out

    assert {p.name for p in links_out(root)} >= {"away.png", "passwd.png"}


def test_class_folders_with_odd_names_keep_them(tmp_path) -> None:
    from zoo.pipelines.prep import prepare

    root = make_image_folder(tmp_path / "data", per_class=2, classes=("a cat", "ünï cödé", "-dash", "x..y"))
    prepared = prepare(f"folder:{root}", size=8)
    assert prepared.meta["class_names"] == sorted(["a cat", "ünï cödé", "-dash", "x..y"])


def test_hidden_folders_are_left_out_and_said(tmp_path) -> None:
    from zoo.pipelines.prep import prepare

    root = make_image_folder(tmp_path / "data", per_class=2, classes=("cats", "dogs"))
    make_image_folder(root / ".ipynb_checkpoints", per_class=2, classes=("cats",))
    (root / "cats" / ".DS_Store").write_bytes(b"\0\1")
    prepared = prepare(f"folder:{root}", size=8)
    assert prepared.meta["class_names"] == ["cats", "dogs"] and len(prepared) == 4
    notes = " ".join(prepared.meta["notes"])
    assert "left out 2 hidden file(s) or folder(s)" in notes and "reads no hidden files" in notes
    assert "e.g. .ipynb_checkpoints)" in notes


def test_a_file_that_cannot_be_opened_is_skipped_and_counted(tmp_path, monkeypatch) -> None:
    from zoo.pipelines.prep import prepare

    root = make_image_folder(tmp_path / "data", per_class=3, classes=("cats", "dogs"))
    from zoo.data.sources import folder

    def refuse(path, *args, **kwargs):  # what chmod 000 gives a user who is not root
        if Path(path).name == "01.png" and Path(path).parent.name == "dogs":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(folder, "open", refuse, raising=False)  # the folder source's own open()
    prepared = prepare(f"folder:{root}", size=8)
    assert len(prepared) == 5 and "01.png (PermissionError)" in " ".join(prepared.meta["notes"])


def test_a_folder_is_read_into_one_tensor_of_its_own_size(tmp_path, monkeypatch) -> None:
    from zoo.data import images

    files_ = [path for path in sorted((make_image_folder(tmp_path / "d", per_class=5)).rglob("*.*"))]
    (tmp_path / "d" / "circle" / "bad.png").write_bytes(b"not an image")
    stack, kept, gray, skipped = images.read_stack([*files_, tmp_path / "d" / "circle" / "bad.png"], 6, 4)
    assert stack.shape == (10, 3, 6, 4) and kept == list(range(10)) and skipped == ["bad.png (UnidentifiedImageError)"]
    assert stack.untyped_storage().nbytes() == 11 * 3 * 6 * 4  # allocated once, for the files given; no copy
    pictures, _, _, _ = images.read_images(files_, 6, 4)
    assert torch.equal(stack, torch.stack(pictures))
    monkeypatch.setattr(images, "CONVERT_CHUNK", 3 * 3 * 6 * 4)  # gray in chunks (of 3 images) equals gray at once
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    expected = (stack.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(images.convert_channels(stack, 1), expected)


# -- concurrent use and a hanging W&B ------------------------------------------------------------

def test_two_preps_of_the_same_data_at_once_share_one_whole_result(tmp_path) -> None:
    folder = make_image_folder(tmp_path / "twice", per_class=30)
    first, second = (zoo_process("prep", f"folder:{folder}", "--size", "16", "--force") for _ in range(2))
    (code1, out1), (code2, out2) = finished(first), finished(second)
    assert code1 == 0 and code2 == 0, out1 + out2
    cache = Path(os.environ["ZOO_CACHE_DIR"]) / "prepared"
    made = [p for p in cache.glob("folder-twice-*16px*") if p.is_dir()]
    assert len(made) == 1 and len(load_prepared(made[0])) == 60
    assert no_partial_files(cache) == [] and not [p for p in cache.iterdir() if ".old-" in p.name]


def test_a_wandb_server_that_accepts_then_hangs_never_stops_training(mnist, monkeypatch, unreachable_wandb) -> None:
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []

    def accept_and_hang() -> None:
        while True:
            try:
                held.append(server.accept()[0])  # read nothing, answer nothing
            except OSError:
                return

    threading.Thread(target=accept_and_hang, daemon=True).start()
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "3")
    monkeypatch.setenv("WANDB_FINISH_TIMEOUT", "3")
    try:
        result = run_cli(*TRAIN[:-1], "--steps", "3", "--out", "run")
    finally:
        server.close()
        for connection in held:
            connection.close()
    assert result.exit_code == 0, result.output
    assert ckpt_io.load(Path("run") / ckpt_io.FILENAME).train["step"] == 3


def test_pixel_statistics_in_chunks_equal_them_at_once(monkeypatch) -> None:
    monkeypatch.setattr(figures, "STATISTICS_CHUNK", 7 * 3 * 5 * 4)  # 7 images at a time
    images = torch.randint(0, 256, (30, 3, 5, 4), dtype=torch.uint8)
    stats, histograms = figures.pixel_statistics(images)
    pixels = images.float()
    assert torch.allclose(stats["mean"], pixels.mean(0)) and torch.allclose(stats["std"], pixels.std(0), atol=1e-4)
    assert torch.equal(stats["min"], pixels.amin(0)) and torch.equal(stats["max"], pixels.amax(0))
    assert torch.equal(histograms[2], torch.bincount(images[:, 2].reshape(-1).long(), minlength=256))
    assert figures.pixel_statistics(images[:1])[0]["std"].abs().max() == 0  # one image: no spread
