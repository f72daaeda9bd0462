from __future__ import annotations

import pytest

from core.policy import LoadedPolicy, load_default_policy


@pytest.fixture(scope="session")
def policy() -> LoadedPolicy:
    return load_default_policy()
