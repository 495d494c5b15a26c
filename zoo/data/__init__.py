"""Data: prepared data sets in memory and their batches, the sources they are read from, image files, text."""
