"""The parts of a self-contained HTML page (``zoo report``'s): pictures embedded as data URIs
and sized to be read, tables of facts, notes, and the inline stylesheet. The page they make
opens anywhere, offline, and fetches nothing.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from zoo.data.images import UNREADABLE
from zoo.display.figures import number

SMALL_PICTURE = 320
"""Pictures narrower than this many pixels are shown twice as large, pixels kept sharp."""
WIDE_PICTURE = 800
"""Pictures wider than this may take the page's whole width; others share a row."""
MIME = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def pictures_in(folder: Path, known: dict[str, str]) -> list[tuple[Path, str]]:
    """The pictures in ``folder``: the known ones first, in order, with their captions."""
    if not folder.is_dir():
        return []
    files = [folder / name for name in known if (folder / name).is_file()]
    files += sorted(p for p in folder.iterdir() if p.suffix.lower() in MIME and p.name not in known and p.is_file())
    return [(p, known.get(p.name, p.stem.replace("_", " "))) for p in files]


def gallery(pictures: Iterable[tuple[Path, str]]) -> str:
    """Picture files side by side, each embedded with its caption."""
    return '<div class="gallery">\n' + "\n".join(
        figure(data_uri(path.read_bytes(), MIME.get(path.suffix.lower(), "image/png")), caption, _width(path))
        for path, caption in pictures) + "\n</div>"


def _width(path: Path) -> int | None:
    """How wide to show a picture: small pixel grids (28 px digits) twice their size, wide
    charts the width of the page; None: half the page at most."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width = image.width
    except UNREADABLE:
        return None
    return width * 2 if width < SMALL_PICTURE else width if width > WIDE_PICTURE else None


def figure(uri: str, caption: str, width: int | None = None) -> str:
    """One picture and its caption, ``width`` px wide (from :func:`_width`; None: as the
    stylesheet lays it out)."""
    alt = html.escape(caption, quote=True)
    if width is None:
        opening, img = "<figure>", ""
    elif width > WIDE_PICTURE:
        opening, img = '<figure class="wide">', ""
    else:
        opening, img = "<figure>", f' class="pixels" style="width: {width}px"'
    return f'{opening}<img src="{uri}" alt="{alt}"{img}><figcaption>{html.escape(caption)}</figcaption></figure>'


def data_uri(content: bytes, mime: str) -> str:
    """A file's bytes inside the page, where a link to it would be."""
    return f"data:{mime};base64,{base64.b64encode(content).decode('ascii')}"


def facts(rows: Iterable[tuple[str, Any]]) -> str:
    """A table of "name value" rows, leaving out those with no value."""
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_text(v))}</td></tr>"
                   for k, v in rows if v is not None and v != "")
    return f'<table class="facts">{body}</table>'


def _text(value: Any) -> str:
    return number(value) if isinstance(value, float) else str(value)


def grid(pairs: Iterable[tuple[str, str]], narrow: bool = False) -> str:
    """Short "key value" pairs in as many columns as fit."""
    cells = "".join(f'<div><span class="key">{html.escape(str(k))}</span> {html.escape(v)}</div>' for k, v in pairs)
    return f'<div class="grid{" narrow" if narrow else ""}">{cells}</div>'


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], css: str) -> str:
    """A table with a header row, styled by the ``css`` class."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def note(text: str) -> str:
    """A short remark in muted italics: what a part lacks, and why."""
    return f'<p class="note">{html.escape(text)}</p>'


STYLE = """
:root { --ink: #1f2328; --muted: #656d76; --line: #d8dee4; --paper: #ffffff; --band: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: var(--band);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header, main, footer { max-width: 1100px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 28px; }
h1 { margin: 0 0 4px; font-size: 28px; }
h2 { margin: 0 0 12px; font-size: 20px; border-bottom: 1px solid var(--line); padding-bottom: 6px; }
h3 { margin: 20px 0 8px; font-size: 16px; }
.sub { margin: 0 0 10px; color: var(--muted); }
nav { margin: 8px 0 20px; font-size: 14px; }
a { color: var(--accent); text-decoration: none; }
section { background: var(--paper); border: 1px solid var(--line); border-radius: 8px; padding: 18px 22px;
          margin: 0 0 18px; }
table { border-collapse: collapse; margin: 4px 0 8px; font-size: 14px; }
th, td { text-align: left; padding: 4px 12px 4px 0; vertical-align: top; border-bottom: 1px solid var(--band); }
thead th { border-bottom: 1px solid var(--line); color: var(--muted); font-weight: 600; }
table.facts th { color: var(--muted); font-weight: 500; white-space: nowrap; width: 1%; padding-right: 24px; }
table.facts td { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
          font-size: 13px; overflow-wrap: anywhere; }
table.figures th:nth-child(2) { text-align: right; padding-right: 24px; }
table.figures td:nth-child(2) { font-variant-numeric: tabular-nums; text-align: right; padding-right: 24px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: 2px 18px;
          font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
.grid.narrow { grid-template-columns: repeat(auto-fill, minmax(110px, 1fr)); }
.grid .key { color: var(--muted); }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px;
       background: var(--band); padding: 1px 5px; border-radius: 4px; }
.gallery { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
figure { margin: 0; max-width: 100%; }
.gallery figure { max-width: calc(50% - 9px); }
.gallery figure.wide { max-width: 100%; }
figure img { display: block; max-width: 100%; border: 1px solid var(--line); border-radius: 4px; background: #fff; }
figure img.pixels { image-rendering: pixelated; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.note { color: var(--muted); font-style: italic; margin: 6px 0; }
.ok { color: #1a7f37; }
.protocol { margin-top: 0; }
.status { padding: 1px 8px; border-radius: 10px; font-size: 13px; font-weight: 600; }
.status.good { background: #dafbe1; color: #1a7f37; }
.status.live { background: #ddf4ff; color: #0969da; }
.status.warn { background: #fff8c5; color: #7d4e00; }
.status.bad { background: #ffebe9; color: #cf222e; }
a.warned { color: #7d4e00; font-weight: 600; }
table.warnings td:nth-child(2) { white-space: nowrap; color: #7d4e00; }
footer { color: var(--muted); font-size: 13px; padding-bottom: 30px; }
"""
