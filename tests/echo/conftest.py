"""A small synthetic echo dataset (written once per session) and its extracted store."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pydicom")

from ecgalign.echo.pipeline import extract_dataset  # noqa: E402
from ecgalign.synth.echo import EchoSynthConfig, synthesize_echo  # noqa: E402

SMALL = EchoSynthConfig(rows=120, cols=160, frames=(32, 36), fps=(30, 60), studies_per_patient=(1, 2),
                        views_per_study=2, defect_fraction=0.0, still_fraction=0.5)


@pytest.fixture(scope="session")
def echo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("echo") / "synth"
    synthesize_echo(root, 3, seed=1, config=SMALL)
    return root


@pytest.fixture(scope="session")
def echo_store(echo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("echo-store") / "store"
    extract_dataset(echo_root, out, shard_files=4)
    return out
