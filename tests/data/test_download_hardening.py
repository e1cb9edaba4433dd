"""Hostile or malformed download manifests (issue 11): Zenodo links other than https are refused, an entry that
names the manifest or the download record is refused while the others download, and a malformed record gives
a named InputError, never a TypeError or AttributeError."""

from __future__ import annotations

import hashlib
import json
import threading

import pytest
from typer.testing import CliRunner

from ecgalign.cli.main import app
from ecgalign.data import download as dl
from ecgalign.data.errors import InputError
from tests.data.test_download import PTBXL_FILES, _FixtureServer, _physionet_project, _zenodo_record

runner = CliRunner()
ZENODO = dl.get_dataset("code-15")


@pytest.fixture
def server(tmp_path):
    (tmp_path / "srv").mkdir()
    httpd = _FixtureServer(tmp_path / "srv")
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def _no_env_mirror(monkeypatch):
    monkeypatch.delenv(dl.ENV_MIRROR, raising=False)


@pytest.mark.parametrize("link", ["file:///etc/passwd", "ftp://example.org/x", "http://example.org/x",
                                  "//zenodo.org/x", "javascript:alert(1)", "records/x", 42])
def test_zenodo_links_other_than_https_are_refused(tmp_path, link):
    record = _zenodo_record({"exams.csv": b"x"})
    record["files"][0]["links"]["self"] = link
    manifest = tmp_path / "zenodo-record.json"
    manifest.write_text(json.dumps(record))
    with pytest.raises(InputError, match=r"zenodo-record\.json: file 'exams.csv' links to .*only https URLs"):
        list(dl.parse_manifest(ZENODO, manifest))


def test_https_and_local_http_links_are_followed(tmp_path):
    record = _zenodo_record({"a.csv": b"x", "b.csv": b"y"},
                            {"a.csv": "https://zenodo.org/a", "b.csv": "http://127.0.0.1:8/b"})
    manifest = tmp_path / "zenodo-record.json"
    manifest.write_text(json.dumps(record))
    assert [e.url for e in dl.parse_manifest(ZENODO, manifest)] == ["https://zenodo.org/a", "http://127.0.0.1:8/b"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda r: "[1, 2", "not a Zenodo record"),
        (lambda r: json.dumps([r]), "without a 'files' list"),
        (lambda r: json.dumps({**r, "files": ["exams.csv"]}), r"files\[0\] is str, expected an object"),
        (lambda r: json.dumps({**r, "files": [{**r["files"][0], "size": "big"}]}), "has size 'big'"),
        (lambda r: json.dumps({**r, "files": [{**r["files"][0], "links": "x"}]}), "has links 'x'"),
        (lambda r: json.dumps({**r, "files": [{**r["files"][0], "checksum": None}]}), "has checksum None"),
    ],
)
def test_malformed_zenodo_record_is_named(tmp_path, edit, message):
    manifest = tmp_path / "zenodo-record.json"
    manifest.write_text(edit(_zenodo_record({"exams.csv": b"x"})))
    with pytest.raises(InputError, match=message):
        list(dl.parse_manifest(ZENODO, manifest))


def test_entry_naming_the_manifest_is_refused_and_the_rest_downloads(server, tmp_path):
    mirror = _physionet_project(server, {**PTBXL_FILES, dl.RECORD_FILE: b"{}"})
    sums = server.root / "ptb-xl/1.0.3/SHA256SUMS.txt"
    sums.write_text(sums.read_text() + f"{hashlib.sha256(b'evil').hexdigest()}  SHA256SUMS.txt\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["data", "download", "ptb-xl", "--to", str(out), "--mirror", mirror, "--json",
                                 "--include", "metadata", "--include", "SHA256SUMS.txt",
                                 "--include", dl.RECORD_FILE])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["failed"] == {"SHA256SUMS.txt": "refused: the entry names the manifest itself",
                                dl.RECORD_FILE: "refused: the entry names the download record itself"}
    assert report["downloaded"] == 3
    assert (out / "SHA256SUMS.txt").read_text() == sums.read_text()  # the manifest was neither deleted nor replaced
    assert json.loads((out / dl.RECORD_FILE).read_text())["dataset"] == "ptb-xl"
    assert "error: 2 of 5 files of ptb-xl failed, e.g. " in result.stderr and ": refused: the entry names" in result.stderr
