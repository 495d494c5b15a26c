"""A third-party plugin that takes a while to import (tests/test_faults.py), then works."""

import time

time.sleep(2.0)

from zoo_tiny import TinyGAN as SlowGAN  # noqa: E402

SlowGAN.name = "slow"  # type: ignore[misc]
