"""Reading labelled sheets (zoo.display.figures.labelled_grid) in tests."""

from __future__ import annotations

from PIL import Image

WHITE, BLACK = (255, 255, 255), (0, 0, 0)


def label_bands(picture: Image.Image, grid_width: int, grid_height: int) -> tuple[int, int]:
    """The width of the band on the left of a labelled sheet and the height of the bands above
    it, checking that its grid (grid_width x grid_height, black-bordered) fills the bottom-right
    corner and that the bands around it are white paper."""
    left, top = picture.width - grid_width, picture.height - grid_height
    assert left >= 0 and top >= 0, f"a {picture.size} sheet cannot hold a {grid_width}x{grid_height} grid"
    rgb = picture.convert("RGB")
    assert rgb.getpixel((left, picture.height - 1)) == BLACK  # the grid's border
    assert rgb.getpixel((picture.width - 1, top)) == BLACK
    if left:
        assert rgb.getpixel((left - 1, picture.height - 1)) == WHITE
    if top:
        assert rgb.getpixel((picture.width - 1, top - 1)) == WHITE
    return left, top
