"""zoo's built-in model plugins, one family per module (installed as ``zoo.plugins``)."""
