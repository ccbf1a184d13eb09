"""Benchmark-only settings: the production settings with DEBUG off and a urlconf that adds a trivial view.

DEBUG is switched off after import (not through the environment) so the rest stays as a local run has it:
plain static storage and no HTTPS redirect on loopback.
"""

from o2o.settings import *  # noqa: F403

DEBUG = False
ROOT_URLCONF = "tests.bench.urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
