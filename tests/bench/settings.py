"""Benchmark-only settings: the production settings with DEBUG off and a urlconf that adds trivial views.

DEBUG is switched off after import (not through the environment) so the rest stays as a local run has it:
plain static storage and no HTTPS redirect on loopback.
"""

import os

from o2o.settings import *  # noqa: F403
from o2o.settings import MIDDLEWARE

DEBUG = False
ROOT_URLCONF = "tests.bench.urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
if os.environ.get("O2O_BENCH_QUERY_HEADER") == "1":
    # Outermost, so it sees every statement of the request (session, auth, view, middleware).
    MIDDLEWARE = ["tests.bench.query_count.query_count_header", *MIDDLEWARE]
