"""The embedding cache is content-addressed and joins rows by record id (issue 11): reordering a dataset's
metadata in place, or rewriting it, never reuses stale embeddings."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ecgalign
from ecgalign.eval.data import attach_embeddings, load_eval_data
from ecgalign.hub import cache_key, data_fingerprint

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runs-0.1.0"


@pytest.fixture(scope="module")
def model():
    return ecgalign.load(FIXTURES / "merit-tiny", device="cpu")


def _ptbxl_copy(shared_data, dst: Path, n: int = 12) -> Path:
    src = shared_data / "ptbxl-500"
    dst.mkdir()
    db = pd.read_csv(src / "ptbxl_database.csv").head(n)
    db.to_csv(dst / "ptbxl_database.csv", index=False)
    shutil.copy(src / "scp_statements.csv", dst / "scp_statements.csv")
    for name in db["filename_lr"]:
        for ext in (".hea", ".dat"):
            target = dst / f"{name}{ext}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src / f"{name}{ext}", target)
    return dst


@pytest.mark.realdata
def test_reordering_the_metadata_in_place_changes_the_key_and_rows_follow_record_ids(shared_data, tmp_path, model):
    data = _ptbxl_copy(shared_data, tmp_path / "ptbxl")
    cache = tmp_path / "cache"
    first = attach_embeddings(load_eval_data(data), model, cache)
    key = cache_key(model, data)
    db = pd.read_csv(data / "ptbxl_database.csv")
    db.iloc[::-1].to_csv(data / "ptbxl_database.csv", index=False)  # same records, reversed, in place
    assert cache_key(model, data) != key
    second = attach_embeddings(load_eval_data(data), model, cache)
    by_id = dict(zip(first.meta["record_id"], first.features))
    for rid, row in zip(second.meta["record_id"], second.features):
        np.testing.assert_allclose(row, by_id[rid], atol=1e-5)
    assert list(second.meta["record_id"]) == list(first.meta["record_id"])[::-1]


def test_the_fingerprint_sees_content_not_only_names(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "a.csv").write_text("id\n1\n2\n")
    before = data_fingerprint(folder)
    (folder / "a.csv").write_text("id\n2\n1\n")
    assert data_fingerprint(folder) != before
