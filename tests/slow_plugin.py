"""A third-party plugin that takes a while to import (tests/test_faults.py), then works."""

import time

from zoo_tiny import TinyGAN

time.sleep(2.0)


class SlowGAN(TinyGAN):
    name = "slow"
