"""A third-party plugin that calls sys.exit while it is imported (tests/test_faults.py)."""

import sys

sys.exit(3)
