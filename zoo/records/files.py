"""Files that are whole or absent, and that say when they are not.

* :func:`write_atomically`: a file is written beside its destination, flushed to disk and
  renamed over it, so a crash (or ``kill -9``) mid-write leaves the previous file whole,
  and a failed write leaves nothing behind. A full disk (or quota, or file-size limit) is
  one clear :class:`DiskFull` line, not a traceback from the library that was writing.
* :func:`save_tensors` / :func:`load_tensors`: safetensors files with a checksum of their
  tensors in the header, so bytes overwritten or cut off since zoo wrote them are found
  when they are read, never trained on.

Reading is bounded by the file: safetensors checks the header's offsets against the
file's length before it allocates, so a header that claims terabytes fails at once.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from zoo.errors import ZooError

CHECKSUM = "zoo.sha256"
"""The header key of :func:`save_tensors`' checksum: sha256 of every tensor's name, dtype,
shape and bytes, in name order."""

NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class DiskFull(ZooError):
    """A write failed for want of space; what was there before is intact."""


class Damaged(ZooError):
    """A file zoo wrote is no longer what it wrote (cut off, or bytes changed): ``problem``,
    then what to do (``fix``)."""

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(f"{problem}; {fix}" if fix else problem)
        self.problem, self.fix = problem, fix


def write_atomically(path: Path, write: Callable[[Path], object], what: str) -> None:
    """Call ``write(tmp)`` to write a new file, then put it at ``path`` in one rename.
    ``what`` names the file in errors ("checkpoint", "preview")."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_file_beside(path)
    try:
        mode = stat.S_IMODE(tmp.stat().st_mode)
        write(tmp)
        os.chmod(tmp, mode)  # a writer that renames its own 0600 file over ours (safetensors) keeps ours
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        full = disk_full(exc, path, what)
        if full is not None:
            raise full from None
        raise
    fsync_dir(path.parent)


def write_text(path: Path, text: str, what: str) -> None:
    """:func:`write_atomically` for UTF-8 text."""
    write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), what)


def disk_full(exc: BaseException, path: Path, what: str, *, existed: bool | None = None) -> DiskFull | None:
    """The one-line error for ``exc`` if it is a write that failed for want of space
    (an ``OSError``, or a library's error quoting one: ``(os error 28)``), else None."""
    code = getattr(exc, "errno", None) if isinstance(exc, OSError) else None
    if code is None:
        found = re.search(r"os error (\d+)", str(exc))
        code = int(found.group(1)) if found else None
    if code not in NO_SPACE:
        return None
    if existed is None:
        existed = path.exists()
    kept = f"the previous {what} is intact" if existed else "nothing half-written was left"
    reason = "file too large for this process's limit" if code == errno.EFBIG else "no space left on the disk"
    return DiskFull(f"could not write {what} {path}: {reason} ({free_space(path.parent)} free); {kept}. "
                    "Free some space (or write elsewhere) and run the command again")


def free_space(folder: Path) -> str:
    try:
        free = float(shutil.disk_usage(folder).free)
    except OSError:
        return "unknown space"
    for unit in ("bytes", "KB", "MB"):
        if free < 1024:
            return f"{free:,.0f} bytes" if unit == "bytes" else f"{free:,.1f} {unit}"
        free /= 1024
    return f"{free:,.1f} GB"


def new_file_beside(path: Path) -> Path:
    """A new empty file in ``path``'s folder, with the permissions of any new file: 0666
    less the umask, applied by the system. (Reading the umask means setting it, for the
    whole process: a thread creating a file meanwhile would get it wide open.)"""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue


def is_partial(path: Path) -> bool:
    """Whether ``path`` is one of :func:`new_file_beside`'s files: a write not (yet) done."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


def clear_partial(folder: Path, older_than: float = 60.0) -> int:
    """Remove what killed writers left under ``folder``: :func:`is_partial` files not written
    to for ``older_than`` seconds (one being written now, by a ``zoo eval`` beside a resumed
    run, is left alone). Returns how many were removed."""
    import time

    removed = 0
    for path in folder.rglob(".*.tmp"):
        try:
            if is_partial(path) and path.is_file() and time.time() - path.stat().st_mtime > older_than:
                path.unlink()
                removed += 1
        except OSError:
            continue
    return removed


ABANDONED_DAYS = 7.0
"""Work folders of a prep (``.partial``, ``.tmp-PID``, ``.old-PID``) untouched this long are
abandoned: a data set that changed since (its cache is named anew) or a prep never run again."""


WORK_FOLDER = re.compile(r"(?P<cache>.+)\.(partial|tmp-\d+|old-\d+)")
"""A prep's work folder beside its cache folder: ``CACHE.partial``, ``CACHE.tmp-PID``, ``CACHE.old-PID``."""


def clear_abandoned(cache: Path, keep: Path, days: float = ABANDONED_DAYS) -> tuple[int, int]:
    """Remove the abandoned work folders under ``cache`` (never ``keep``, the one about to be
    used, nor one whose cache another prep holds the lock of): those whose folder and files
    were last written ``days`` ago or more. Returns how many went and their bytes."""
    import time

    from filelock import FileLock, Timeout

    removed, freed = 0, 0
    for path in cache.iterdir():
        match = WORK_FOLDER.fullmatch(path.name)
        if match is None or path == keep or not path.is_dir():
            continue
        try:
            entries = [path, *path.iterdir()]
            if time.time() - max(e.stat().st_mtime for e in entries) < days * 86400:
                continue
            size = sum(e.stat().st_size for e in entries[1:] if e.is_file())
            with FileLock(cache / f".{match['cache']}.lock", timeout=0):  # (the lock prep holds on that cache)
                shutil.rmtree(path, ignore_errors=True)
        except (OSError, Timeout):
            continue
        removed, freed = removed + (not path.exists()), freed + size * (not path.exists())
    return removed, freed


def swap_in(new: Path, folder: Path) -> None:
    """Put the whole folder ``new`` (written beside ``folder``) in ``folder``'s place: the old
    one moved aside first and removed after, so that a crash at any moment leaves one whole
    folder there, the old or the new."""
    old = folder.with_name(folder.name + f".old-{os.getpid()}")
    if folder.exists():
        os.replace(folder, old)
    os.replace(new, folder)
    shutil.rmtree(old, ignore_errors=True)
    fsync_dir(folder.parent)


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- checksummed tensors -------------------------------------------------------------------------

def checksum(tensors: Mapping[str, torch.Tensor], header: str = "") -> str:
    """sha256 of ``header`` (text the file's header holds, so that editing it shows too),
    then each tensor's name, dtype, shape and bytes, in name order: the same for the same
    tensors however a file lays them out."""
    digest = hashlib.sha256(header.encode())
    for name in sorted(tensors):
        t = tensors[name].detach()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            flat = t.to("cpu").contiguous().reshape(-1)
            digest.update(flat.view(torch.uint8).numpy().data if flat.dtype != torch.bool
                          else flat.to(torch.uint8).numpy().data)
    return digest.hexdigest()


def save_tensors(path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None,
                 what: str = "file") -> None:
    """Write ``tensors`` as safetensors, atomically, with their :func:`checksum` in the header."""
    from safetensors.torch import save_file

    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    header = {**(metadata or {}), CHECKSUM: checksum(flat)}
    write_atomically(path, lambda tmp: save_file(flat, str(tmp), metadata=header), what)


def read_header(path: Path, what: str, fix: str) -> dict[str, str]:
    """A safetensors file's header metadata, without its tensors; :class:`Damaged` if the
    file is cut off or not safetensors."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise Damaged(f"{what} {path} is unreadable (truncated, or not safetensors: {short(exc)})", fix) from None


def load_tensors(path: Path, what: str, fix: str, device: str | torch.device = "cpu",
                 required: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, header metadata) of a safetensors file; :class:`Damaged`, saying ``fix``,
    if it is cut off or its tensors differ from the checksum written with them. Files
    without a checksum (written by an older zoo, or by hand) load unchecked unless
    ``required``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise Damaged(f"{what} {path} is missing", fix)
    header = read_header(path, what, fix)
    try:
        tensors = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise Damaged(f"{what} {path} is damaged (truncated or corrupt: {short(exc)})", fix) from None
    expected = header.get(CHECKSUM)
    if expected is None and required:
        raise Damaged(f"{what} {path} has no checksum, so zoo cannot tell it is whole", fix)
    if expected is not None and checksum(tensors) != expected:
        raise Damaged(f"{what} {path} is damaged: its tensors differ from the checksum written with them "
                      "(changed or corrupted on disk since)", fix)
    return tensors, header


def short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
