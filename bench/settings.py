"""The product's settings, with the benchmark's reference view added to its URLs."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
