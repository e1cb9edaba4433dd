"""One error family, printed in one line: bad input never shows a traceback (``--debug`` shows it), a real bug
always does. Downloads report failed files in one line and still print the --json result."""

from __future__ import annotations

import json
import threading

import pytest
from typer.testing import CliRunner

from ecgalign.cli.main import app
from ecgalign.data import download as dl
from ecgalign.data.download_http import FetchError
from ecgalign.data.errors import ECGAlignError, InputError
from ecgalign.data.record import RecordError
from tests.data.test_download import PTBXL_FILES, _FixtureServer, _physionet_project

runner = CliRunner()


@pytest.fixture
def server(tmp_path):
    (tmp_path / "srv").mkdir()
    httpd = _FixtureServer(tmp_path / "srv")
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_data_errors_belong_to_the_family():
    for cls in (RecordError, FetchError, dl.DownloadError, dl.UnsafeArchiveError):
        assert issubclass(cls, ECGAlignError), cls
    assert issubclass(RecordError, InputError) and issubclass(RecordError, ValueError)  # old `except ValueError` holds
    with pytest.raises(ECGAlignError):
        dl.get_dataset("no-such-dataset")
    assert str(pytest.raises(KeyError, dl.get_dataset, "nope").value).startswith("unknown dataset 'nope'")


def test_failed_download_is_one_line_with_a_json_result(server, tmp_path, monkeypatch):
    monkeypatch.delenv(dl.ENV_MIRROR, raising=False)
    mirror = _physionet_project(server)
    (server.root / "ptb-xl/1.0.3/LICENSE.txt").write_bytes(b"tampered\n")  # checksum can never match
    args = ["data", "download", "ptb-xl", "--to", str(tmp_path / "out"), "--mirror", mirror, "--include", "metadata"]
    monkeypatch.setattr(dl, "download", _fast(dl.download))
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    report = json.loads(result.stdout)
    assert list(report["failed"]) == ["LICENSE.txt"] and report["downloaded"] == 2
    assert result.stderr.count("\n") == 1 and "1 of 3 files of ptb-xl failed, e.g. LICENSE.txt" in result.stderr
    text = runner.invoke(app, args)
    errors = [line for line in text.stderr.splitlines() if "error" in line or "LICENSE" in line]
    assert text.exit_code == 1 and len(errors) == 1 and errors[0].startswith("error: 1 of 3 files")
    assert len(PTBXL_FILES) > 3


def _fast(download):
    return lambda *a, **kw: download(*a, **{**kw, "retries": 0, "backoff": 0.0, "timeout": 5.0})


def test_unreachable_manifest_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "download", _fast(dl.download))
    result = runner.invoke(app, ["data", "download", "ptb-xl", "--to", str(tmp_path), "--mirror", "http://127.0.0.1:9/x"])
    assert result.exit_code == 2 and result.exception is not None and isinstance(result.exception, SystemExit)
    assert "cannot get the manifest of ptb-xl" in result.stderr and "Traceback" not in result.output
    assert [line for line in result.stderr.splitlines() if "manifest" in line][0].startswith("error: cannot get")


def test_debug_flag_shows_the_traceback(tmp_path):
    result = runner.invoke(app, ["--debug", "data", "info", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "Traceback" in result.stderr and "no such dataset folder" in result.stderr
    plain = runner.invoke(app, ["data", "info", str(tmp_path / "missing")])
    assert plain.exit_code == 2 and "Traceback" not in plain.stderr


def test_a_real_bug_keeps_its_traceback(tmp_path, monkeypatch):
    import ecgalign.data.summary as summary

    def broken(*args, **kwargs):
        raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")

    monkeypatch.setattr(summary, "dataset_info", broken)
    result = runner.invoke(app, ["data", "info", str(tmp_path)])
    assert isinstance(result.exception, TypeError)  # propagates: not turned into a one-line "error:"


def test_messages_with_brackets_are_printed_verbatim(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    result = runner.invoke(app, ["data", "convert", str(tmp_path), str(tmp_path / "o"), "--format", "[/]bad"])
    assert result.exit_code == 2 and "[/]bad" in result.stderr
