"""``ecgalign cache ls|clear`` over an embedding cache folder."""

from __future__ import annotations

import json
import os
import time

import pytest
from typer.testing import CliRunner

from ecgalign.cli.cache import parse_age
from ecgalign.cli.main import app
from ecgalign.data.errors import InputError

runner = CliRunner()


def _entry(root, key: str, days_old: float, about: dict | None = None) -> None:
    (root / f"{key}.parquet").write_bytes(b"x" * 2048)
    (root / f"{key}.json").write_text(json.dumps({"skipped": [], **(about or {})}))
    then = time.time() - days_old * 86400
    for suffix in (".parquet", ".json"):
        os.utime(root / f"{key}{suffix}", (then, then))


def test_ls_and_clear_older_than(tmp_path):
    _entry(tmp_path, "old", 40, {"model": "/runs/a/model.safetensors", "recipe": "merit", "data": "/d/ptbxl",
                                 "records": 500})
    _entry(tmp_path, "new", 1)
    listed = json.loads(runner.invoke(app, ["cache", "ls", "--cache-dir", str(tmp_path), "--json"]).stdout)
    by_key = {e["key"]: e for e in listed["entries"]}
    assert set(by_key) == {"old", "new"} and by_key["old"]["data"] == "/d/ptbxl" and by_key["old"]["records"] == 500
    assert by_key["old"]["bytes"] > 2048 and 39.9 < by_key["old"]["age_days"] < 40.1
    text = runner.invoke(app, ["cache", "ls", "--cache-dir", str(tmp_path)]).output
    assert "merit" in text and "/d/ptbxl" in text and "2 entries" in text
    result = runner.invoke(app, ["cache", "clear", "--cache-dir", str(tmp_path), "--older-than", "30d", "--json"])
    assert json.loads(result.stdout)["removed"] == ["old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.json", "new.parquet"]
    runner.invoke(app, ["cache", "clear", "--cache-dir", str(tmp_path)])
    assert list(tmp_path.iterdir()) == []


def test_bad_age_is_refused(tmp_path):
    assert parse_age("12h") == 43200 and parse_age("90") == 90
    with pytest.raises(InputError, match="--older-than 'soon'"):
        parse_age("soon")
    result = runner.invoke(app, ["cache", "clear", "--cache-dir", str(tmp_path), "--older-than", "soon"])
    assert result.exit_code != 0 and "expected a number" in result.output
