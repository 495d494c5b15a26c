"""The words on a labelled sheet: a title and column labels above a picture of tiled images,
row labels on its left, in dark text on white bands.

:func:`zoo.display.figures.labelled_grid` tiles the images; this module decides how far to enlarge
them so that labels can be read beside them (:func:`scale_to_fit`), and draws the bands
(:func:`with_labels`): one font for every label, sized to the cells, text cut short or
wrapped to the room it has. Only Pillow is needed.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from PIL import Image

LABELLED_CELL = 56
"""A sheet's cells are enlarged to at least this many pixels a side, where a label can be
read beside them and a small image be seen (a 28 px digit is drawn at 56)."""
MAX_LABELLED_SCALE = 8
LABEL_SIZE = 14
"""Font size of labels, in pixels: larger beside large cells, smaller (down to
SMALLEST_LABEL, then cut short) where a label would not fit over its column."""
SMALLEST_LABEL = 10
LARGEST_LABEL = 24
ROW_LABELS_WIDEST = 240
"""Row labels longer than this many pixels are cut short."""
INK, PAPER = "#202020", "#ffffff"


def scale_to_fit(height: int, width: int, padding: int, column_labels: Sequence[str], scale: int = 1) -> int:
    """How many times to enlarge cells of height x width (``padding`` between them): ``scale``,
    or more, up to :data:`MAX_LABELLED_SCALE`, until cells are :data:`LABELLED_CELL` px and
    each column label fits over its column."""
    slot = width + padding  # a column's share of the sheet's width, before enlarging
    widest = max((_font(LABEL_SIZE).getlength(label) for label in column_labels), default=0)
    while scale < MAX_LABELLED_SCALE and (min(height, width) * scale < LABELLED_CELL
                                          or slot * scale < widest + LABEL_SIZE // 2):
        scale += 1
    return scale


def with_labels(picture: Image.Image, cell: tuple[int, int], padding: int, scale: int,
                column_labels: Sequence[str], row_labels: Sequence[str], title: str | None) -> Image.Image:
    """``picture``, a grid of cells of ``cell`` (height, width) px with ``padding`` between
    and around them, enlarged ``scale`` times, on a white sheet: ``title`` and a label over
    each column above it, a label for each row on its left. The font's size follows the
    cells and the column labels alone."""
    from PIL import ImageColor, ImageDraw

    height, width = cell
    slot = width + padding

    # One font for every label: larger beside large cells, smaller where a column is narrow.
    size = max(LABEL_SIZE, min(LARGEST_LABEL, min(height, width) * scale // 6))
    while size > SMALLEST_LABEL and any(_font(size).getlength(label) + size // 2 > slot * scale
                                        for label in column_labels):
        size -= 1
    font, margin = _font(size), max(3, size // 2)
    line = font.getbbox("Ag")[3]
    left = 0
    if row_labels:
        row_labels = [_shortened(label, font, ROW_LABELS_WIDEST) for label in row_labels]
        left = int(max(font.getlength(label) for label in row_labels)) + 2 * margin
    title_lines = _wrapped(title, font, left + picture.width - 2 * margin) if title else []
    title_band = len(title_lines) * (line + margin // 2) + margin if title_lines else 0
    header = line + 2 * margin if column_labels else 0
    top = title_band + header

    sheet = Image.new(picture.mode, (left + picture.width, top + picture.height),
                      ImageColor.getcolor(PAPER, picture.mode))
    sheet.paste(picture, (left, top))
    draw, ink = ImageDraw.Draw(sheet), ImageColor.getcolor(INK, picture.mode)
    for i, text in enumerate(title_lines):
        draw.text((margin, margin + i * (line + margin // 2)), text, fill=ink, font=font)
    for j, label in enumerate(column_labels):
        label = _shortened(label, font, slot * scale - 2)
        centre = left + (padding + j * slot + width / 2) * scale
        draw.text((round(centre - font.getlength(label) / 2), title_band + margin), label, fill=ink, font=font)
    for i, label in enumerate(row_labels):
        middle = top + (padding + i * (height + padding) + height / 2) * scale
        draw.text((left - margin - round(font.getlength(label)), round(middle - line / 2)), label,
                  fill=ink, font=font)
    return sheet


@functools.cache
def _font(size: int):
    """Pillow's own font at ``size`` px (Pillow 10.1 and later), else its small bitmap font."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # an older Pillow, or one built without FreeType
        return ImageFont.load_default()


def _shortened(text: str, font, width: float) -> str:
    """``text`` cut short with "..." to fit ``width`` pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "...") > width:
        text = text[:-1]
    return text + "..."


def _wrapped(text: str, font, width: float) -> list[str]:
    """``text`` broken into lines of at most ``width`` pixels, at spaces where it can be."""
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(_shortened(word, font, width))
    return lines


def caption_sheet(pictures: Sequence[Image.Image], captions: Sequence[Sequence[str]], columns: int = 2,
                  width: int = 360) -> Image.Image:
    """Pictures each beside its captions (one per line, wrapped to ``width`` px), in
    ``columns`` columns of entries: what a captioned data set says of its images."""
    from PIL import ImageColor, ImageDraw

    font = _font(LABEL_SIZE)
    margin, line = LABEL_SIZE // 2, font.getbbox("Ag")[3] + 3
    side = max(p.height for p in pictures)
    entries = []
    for picture, own in zip(pictures, captions, strict=True):
        lines = [wrapped for caption in own for wrapped in _wrapped(f"- {caption}", font, width)]
        entries.append((picture, lines, max(side, len(lines) * line)))
    rows = [entries[i:i + columns] for i in range(0, len(entries), columns)]
    cell_w = side + 2 * margin + width
    sheet_h = sum(max(e[2] for e in row) + margin for row in rows) + margin
    mode = "RGB"
    sheet = Image.new(mode, (columns * (cell_w + margin) + margin, sheet_h), ImageColor.getcolor(PAPER, mode))
    draw, ink = ImageDraw.Draw(sheet), ImageColor.getcolor(INK, mode)
    top = margin
    for row in rows:
        for j, (picture, lines, _) in enumerate(row):
            left = margin + j * (cell_w + margin)
            sheet.paste(picture.convert(mode), (left, top))
            for k, text in enumerate(lines):
                draw.text((left + side + margin, top + k * line), text, fill=ink, font=font)
        top += max(e[2] for e in row) + margin
    return sheet
