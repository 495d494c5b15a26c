"""Measuring models: image and set metrics, zoo's own classifier, the sliced Wasserstein distance."""
