"""Repo-root pytest configuration: real-server fixtures and Hypothesis profiles.

Profiles: "ci" (50 examples, used when CI=true and by default so `make test` stays quick) and
"dev" (300 examples).  Choose with HYPOTHESIS_PROFILE=dev.
"""

import os

from hypothesis import HealthCheck, settings

pytest_plugins = ["helpdesk_core.testing.pytest_plugin"]

settings.register_profile(
    "ci",
    max_examples=50,
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=300, deadline=None)

if os.environ.get("CI", "").strip().lower() == "true":
    settings.load_profile("ci")
else:
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
