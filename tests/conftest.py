"""Shared fixtures. Real-data tests use ../shared/data next to the checkout and skip cleanly without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]

# Under pytest-xdist every worker is its own process on the same cores: with each one's OpenMP / BLAS / torch
# pools as wide as the machine, two workers on two cores oversubscribe, and OpenMP's spin-waiting made single
# tests 5-15x slower than alone (the realism CLI test: 6 s alone, 98 s in the suite). One thread per worker,
# set before the numeric libraries start their pools and inherited by the CLI subprocesses tests start.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[_var] = "1"


# Property tests draw the same examples on every run (CI must not fail on the luck of a draw); explore with
# HYPOTHESIS_PROFILE=explore, which draws new examples each time (what found the recipe-loader crashes).
settings.register_profile("ecgalign", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ecgalign"))


def pytest_configure(config):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(1)
        threadpool_limits(limits=1)


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
