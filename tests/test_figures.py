"""The pictures people look at."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageSequence

from zoo import figures


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
