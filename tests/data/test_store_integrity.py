"""Store integrity: one writer at a time, checksums written at creation, a fast check on open (header and size),
a full re-hash by `ecgalign data verify`, and clear errors that name the damaged file."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from typer.testing import CliRunner

from ecgalign.cli.main import app
from ecgalign.data.store import ECGStore, StoreSpec, StoreWriter
from ecgalign.data.store_files import StoreIntegrityError, StoreLockedError
from ecgalign.data.verify import verify_store
from tests.data.test_store import FS, SAMPLES, SCHEME, make_record, write

runner = CliRunner()
LEADS = make_record(0).leads


@pytest.fixture
def store(tmp_path):
    write(tmp_path / "s", [make_record(i) for i in range(12)], shard_records=5)
    return tmp_path / "s"


def test_second_writer_is_refused_while_the_first_is_open(tmp_path):
    spec = StoreSpec(FS, SAMPLES, LEADS, shard_records=2)
    first = StoreWriter(tmp_path / "s", spec, SCHEME)
    with pytest.raises(StoreLockedError, match=rf"another writer is using this store \(pid {os.getpid()}"):
        StoreWriter(tmp_path / "s", spec, SCHEME, overwrite=True)
    with pytest.raises(FileExistsError):  # StoreLockedError is also a FileExistsError for old callers
        StoreWriter(tmp_path / "s", spec, SCHEME, resume=True)
    first.add(make_record(0), 1)
    first.close()
    assert not (tmp_path / "s" / ".lock").exists() and len(ECGStore(tmp_path / "s")) == 1


def test_a_dead_writer_leaves_no_lock_behind(tmp_path):
    spec = StoreSpec(FS, SAMPLES, LEADS, shard_records=2)
    crashed = StoreWriter(tmp_path / "s", spec, SCHEME)
    for i in range(3):
        crashed.add(make_record(i), i + 1)
    del crashed  # the process "dies": the kernel drops the flock with the descriptor
    resumed = StoreWriter(tmp_path / "s", spec, SCHEME, resume=True)
    assert resumed.resume_position == 2


def test_temporary_names_carry_the_pid(tmp_path, monkeypatch):
    renamed = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (renamed.append(os.path.basename(a)), real(a, b)))
    write(tmp_path / "s", [make_record(i) for i in range(3)], shard_records=2)
    assert renamed and all(str(os.getpid()) in name for name in renamed), renamed


def test_checksums_are_written_at_creation(store):
    manifest = json.loads((store / "store.json").read_text())
    for shard in manifest["shards"]:
        data = (store / shard["file"]).read_bytes()
        assert shard["bytes"] == len(data) and shard["sha256"] == hashlib.sha256(data).hexdigest()
        assert shard["meta_sha256"] == hashlib.sha256((store / shard["meta"]).read_bytes()).hexdigest()
    assert manifest["metadata_file"]["sha256"] == hashlib.sha256((store / "metadata.parquet").read_bytes()).hexdigest()
    result = verify_store(store)
    assert result["ok"] and result["checksums"] == "verified" and result["files_checked"] == 7


def test_truncated_shard_names_the_file_on_open(store):
    shard = store / "signals" / "shard-000001.npy"
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(StoreIntegrityError, match=r"shard-000001\.npy: shard is truncated: \d+ bytes, expected \d+"):
        ECGStore(store)
    result = runner.invoke(app, ["data", "info", str(store)])
    assert result.exit_code == 2 and "shard-000001.npy" in result.stderr and "Traceback" not in result.output


def test_zeroed_bytes_are_found_by_verify(store):
    shard = store / "signals" / "shard-000000.npy"
    data = bytearray(shard.read_bytes())
    data[-600:-100] = bytes(500)
    shard.write_bytes(bytes(data))
    assert len(ECGStore(store)) == 12  # same size and header: the fast check passes
    result = runner.invoke(app, ["data", "verify", str(store), "--json"])
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert not out["ok"] and [p["file"] for p in out["problems"]] == [str(shard)]
    assert "the bytes changed" in out["problems"][0]["problem"]
    text = runner.invoke(app, ["data", "verify", str(store)])
    assert text.exit_code == 1 and "DAMAGED" in text.output and "shard-000000.npy" in text.output


def test_verify_lists_every_problem(store):
    (store / "meta" / "part-000002.parquet").unlink()
    meta = store / "metadata.parquet"
    meta.write_bytes(meta.read_bytes()[:50])
    (store / "signals" / "shard-000002.npy").unlink()
    problems = verify_store(store)["problems"]
    assert {os.path.basename(p["file"]) for p in problems} == {"part-000002.parquet", "metadata.parquet", "shard-000002.npy"}
    assert runner.invoke(app, ["data", "verify", str(store)]).exit_code == 1


def test_old_store_without_checksums_still_opens_and_verifies(store):
    manifest = json.loads((store / "store.json").read_text())
    for shard in manifest["shards"]:
        for key in ("bytes", "sha256", "meta_bytes", "meta_sha256"):
            del shard[key]
    del manifest["metadata_file"]
    (store / "store.json").write_text(json.dumps(manifest))
    assert ECGStore(store).signal(11).shape == (12, SAMPLES)
    result = verify_store(store)
    assert result["ok"] and result["checksums"].startswith("absent")
    shard = store / "signals" / "shard-000000.npy"
    shard.write_bytes(shard.read_bytes() + b"\0")  # the header still gives the size
    with pytest.raises(StoreIntegrityError, match="longer than its header declares"):
        ECGStore(store)


def test_info_on_an_interrupted_store_gives_the_resume_hint(tmp_path):
    writer = StoreWriter(tmp_path / "s", StoreSpec(FS, SAMPLES, LEADS, shard_records=2), SCHEME)
    for i in range(3):
        writer.add(make_record(i), i + 1)
    del writer
    result = runner.invoke(app, ["data", "info", str(tmp_path / "s")])
    assert result.exit_code == 2 and "an unfinished conversion: resume it" in result.stderr


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: [m], "expected a JSON object"),
        (lambda m: {k: v for k, v in m.items() if k != "fs"}, "field 'fs' must be a positive number"),
        (lambda m: {**m, "samples": "250"}, "field 'samples' must be a positive integer"),
        (lambda m: {**m, "shards": [{**m["shards"][0], "file": "../../etc/passwd"}]}, "not a relative path inside"),
        (lambda m: {**m, "shards": [{**m["shards"][0], "records": -1}]}, r"shards\[0\] must be an object"),
        (lambda m: {**m, "encoding": "int8"}, "field 'encoding' must be one of"),
        (lambda m: {**m, "shards": [{**m["shards"][0], "records": 4}]}, r"shard holds int16 \(5, 12, 250\)"),
    ],
)
def test_a_bad_manifest_is_named(store, edit, message):
    manifest = json.loads((store / "store.json").read_text())
    (store / "store.json").write_text(json.dumps(edit(manifest)))
    with pytest.raises(StoreIntegrityError, match=message):
        ECGStore(store)
