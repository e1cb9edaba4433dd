"""Shared fixtures. Real-data tests use ../shared/data next to the checkout and skip cleanly without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path | None:
    """``$ECGALIGN_SHARED_DATA`` or ``<repo>/../shared/data``, when that folder exists."""
    env = os.environ.get("ECGALIGN_SHARED_DATA")
    root = Path(env) if env else REPO.parent / "shared" / "data"
    return root if root.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_data_root()
    if root is None:
        pytest.skip("../shared/data is not present (real-data test)")
    return root
