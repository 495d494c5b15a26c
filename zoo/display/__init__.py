"""What zoo shows a person: pictures (grids, GIFs, charts, labelled sheets) and the
terminal's lines and progress bars."""
