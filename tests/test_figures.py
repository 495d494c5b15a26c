"""The pictures people look at."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image, ImageSequence

from zoo.display import figures, sheets

from .sheets import label_bands


def test_a_long_run_makes_a_gif_of_evenly_spread_frames_ending_on_the_last(tmp_path: Path) -> None:
    frames = []
    for i in range(150):
        path = tmp_path / f"epoch-{i:04d}.png"
        Image.new("L", (8, 8), i).save(path)
        frames.append(path)
    gif = figures.save_gif(frames, tmp_path / "progress.gif", max_frames=60)
    shown = [frame.convert("L").getpixel((0, 0)) for frame in ImageSequence.Iterator(Image.open(gif))]
    assert len(shown) == 60 and shown[0] == 0 and shown[-1] == 149
    assert shown == sorted(shown)
    short = figures.save_gif(frames[:5], tmp_path / "short.gif")
    assert len(list(ImageSequence.Iterator(Image.open(short)))) == 5


def digits(n: int, channels: int = 1, size: int = 28, width: int | None = None) -> torch.Tensor:
    """n images in [-1, 1] of mid-gray noise: never white, so label ink is the only white-band content."""
    return torch.rand(n, channels, size, width or size) * 1.2 - 0.6


def ink(picture: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """Where label text is drawn within ``box``: a mask of the dark pixels."""
    return picture.convert("L").crop(box).point(lambda v: 255 if v < 128 else 0)


def test_an_unlabelled_grid_is_drawn_as_before(tmp_path: Path) -> None:
    path = figures.save_grid(digits(6), tmp_path / "plain.png", nrow=3, scale=2)
    assert Image.open(path).size == (2 * (3 * 30 + 2), 2 * (2 * 30 + 2))


@pytest.mark.parametrize("channels, mode", [(1, "L"), (3, "RGB")])
def test_a_labelled_grid_grows_by_its_label_bands_with_text_drawn_in_them(channels: int, mode: str) -> None:
    images = digits(6, channels).view(2, 3, channels, 28, 28)
    sheet = figures.labelled_grid(images, column_labels=["input", "output", "target"], row_labels=["one", "two"])
    assert sheet.mode == mode
    # 28 px cells are drawn at 56 so that the labels can be read beside them.
    left, top = label_bands(sheet, 2 * (3 * 30 + 2), 2 * (2 * 30 + 2))
    assert left > 0 and top > 0
    header = ink(sheet, (left, 0, sheet.width, top))
    assert header.getbbox() is not None  # the column labels
    assert ink(sheet, (0, top, left, sheet.height)).getbbox() is not None  # the row labels
    assert ink(sheet, (0, 0, left, top)).getbbox() is None  # the corner stays blank
    # Each column's label is drawn over its own column.
    for j in range(3):
        column = header.crop((2 * (2 + j * 30), 0, 2 * (2 + j * 30 + 28), top))
        assert column.getbbox() is not None

    titled = figures.labelled_grid(images, column_labels=["input", "output", "target"], row_labels=["one", "two"],
                                   title="a title over the sheet")
    assert titled.width == sheet.width and titled.height > sheet.height


def test_columns_of_different_sizes_and_long_labels_are_enlarged_to_fit() -> None:
    from zoo.previews import image_rows

    rows = image_rows(digits(4, size=14), digits(4, 3, size=28))  # a 14 px gray input, its 28 px colour output
    sheet = figures.labelled_grid(rows, column_labels=["low", "high"])
    assert sheet.mode == "RGB"
    assert label_bands(sheet, 2 * (2 * 30 + 2), 2 * (4 * 30 + 2))[0] == 0  # no row labels, no left band
    wide = figures.labelled_grid(rows, column_labels=["input", "reconstruction"])
    left, top = label_bands(wide, 4 * (2 * 30 + 2), 4 * (4 * 30 + 2))  # enlarged until "reconstruction" fits
    header = ink(wide, (0, 0, wide.width, top))
    first, second = header.crop((0, 0, 4 * 31, top)), header.crop((4 * 31, 0, wide.width, top))
    assert first.getbbox() is not None and second.getbbox() is not None
    assert first.getbbox()[2] < 4 * 31 - 1  # "input" does not run into the next column

    wide_cells = figures.labelled_grid(digits(3, width=56), nrow=3, column_labels=["a", "b", "c"])
    assert label_bands(wide_cells, 2 * (3 * 58 + 2), 2 * (28 + 4))[1] > 0  # 28 x 56 cells drawn at 56 x 112


def test_labels_must_match_the_rows_and_columns() -> None:
    with pytest.raises(ValueError, match="2 column labels for a sheet of 3 columns"):
        figures.labelled_grid(digits(6), nrow=3, column_labels=["a", "b"])
    with pytest.raises(ValueError, match="1 row labels for a sheet of 2 rows"):
        figures.labelled_grid(digits(5), nrow=3, row_labels=["a"])  # a part-filled last row is a row


def test_labels_are_drawn_with_pillows_small_font_where_it_cannot_scale(monkeypatch) -> None:
    from PIL import ImageFont

    def before_pillow_10_1():  # took no size and gave a small bitmap font
        return ImageFont.load_default_imagefont()

    sheets._font.cache_clear()
    monkeypatch.setattr(ImageFont, "load_default", before_pillow_10_1)
    try:
        sheet = figures.labelled_grid(digits(4), nrow=2, column_labels=["in", "out"], row_labels=["x", "y"])
    finally:
        sheets._font.cache_clear()
    left, top = label_bands(sheet, 2 * (2 * 30 + 2), 2 * (2 * 30 + 2))
    assert ink(sheet, (left, 0, sheet.width, top)).getbbox() is not None


def test_a_gif_of_frames_of_different_sizes_keeps_every_frame_whole(tmp_path: Path) -> None:
    small, large = tmp_path / "a.png", tmp_path / "b.png"
    Image.new("L", (8, 8), 0).save(small)
    Image.new("L", (12, 10), 0).save(large)
    gif = Image.open(figures.save_gif([small, large], tmp_path / "mixed.gif"))
    assert gif.size == (12 * 21, 10 * 21)  # the largest frame's, enlarged to about 256 px as always
    gif.seek(1)
    assert gif.convert("L").getbbox() is None  # the large frame, all black: not cropped to the first


def test_a_picture_of_full_size_photos_shows_them_shrunk(tmp_path: Path) -> None:
    photos = torch.full((3, 3, 600, 900), 200, dtype=torch.uint8)
    photos[:, 0] = 10  # little red: the colour survives the shrinking
    small = figures.thumbnails(photos)
    assert small.shape == (3, 3, 85, 128) and small.dtype == torch.uint8
    assert int(small[:, 0].max()) == 10 and int(small[:, 1].min()) == 200
    assert figures.thumbnails(photos[:, :, :64, :100]).shape == (3, 3, 64, 100)  # small images as they are
    figures.explore_data(photos, None, [], tmp_path, title="photos")
    with Image.open(tmp_path / "samples.png") as grid:
        assert max(grid.size) < 1200  # 3 photos of 900 px, shown at 128 px (twice that on screen)
