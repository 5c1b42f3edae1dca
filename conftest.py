"""Repo-root pytest configuration: the Hypothesis profiles. (The fixtures come from the
``pytest11`` entry point of helpdesk-core, :mod:`helpdesk_core.testing.pytest_plugin`.)

Profiles: "ci" (50 examples; loaded when CI=true, so CI stays well inside its time budget) and
"dev" (300 examples; the default elsewhere, about 1.5 minutes more than "ci"). HYPOTHESIS_PROFILE
picks one explicitly (e.g. HYPOTHESIS_PROFILE=ci make test for a quick local run).
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=50,
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=300, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])

if os.environ.get("HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])
elif os.environ.get("CI", "").strip().lower() == "true":
    settings.load_profile("ci")
else:
    settings.load_profile("dev")
