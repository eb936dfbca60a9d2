"""Shared test helpers. Tests that need something the machine may lack skip
only outside CI (CI=true makes a missing prerequisite a failure)."""
from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# the plugin users get (ixypy_pair, ixypy_sim, faults...): loaded here too
# when ixypy is not installed (a checkout run with pythonpath=src)
pytest_plugins = ["ixypy.testing"]


def require(condition: bool, reason: str) -> None:
    """Skip (outside CI) or fail (in CI) when a prerequisite is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"prerequisite missing in CI: {reason}")
    pytest.skip(reason)
