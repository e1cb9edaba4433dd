"""Download logic against a local HTTP server on 127.0.0.1 (no internet needed): manifests, include
filters, Range resume, servers that ignore Range, checksum failures, skip-on-rerun, HTTP errors, safe zip
extraction."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import socket
import stat
import threading
import urllib.parse
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ecgalign.data import download as dl
from ecgalign.data import download_sources
from ecgalign.data.download_http import FetchError


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.root``; honours ``Range: bytes=N-[M]`` with 206 unless ``server.ignore_range``;
    ``server.truncate[path] = n`` sends only n bytes of the next response (then closes) to mimic a drop."""

    server: "_FixtureServer"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        srv = self.server
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        file = srv.root / path
        wanted = self.headers.get("Range")
        if not file.is_file():
            srv.record(path, wanted, 404, 0)
            self.send_error(404, "Not Found")
            return
        data = file.read_bytes()
        status, body, headers = 200, data, {}
        if wanted and not srv.ignore_range:
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted)
            first = int(match.group(1))
            last = int(match.group(2)) if match.group(2) else len(data) - 1
            if first >= len(data):
                srv.record(path, wanted, 416, 0)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status, body = 206, data[first:last + 1]
            headers["Content-Range"] = f"bytes {first}-{first + len(body) - 1}/{len(data)}"
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if not srv.ignore_range:
            self.send_header("Accept-Ranges", "bytes")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        cut = srv.truncate.pop(path, None)
        sent = body if cut is None else body[:cut]
        srv.record(path, wanted, status, len(sent))  # before the body: the client may look at the log once it has it
        self.wfile.write(sent)


class _FixtureServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root, self.ignore_range, self.truncate = root, False, {}
        self.log: list[dict] = []
        self._lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self.server_address[1]}/"

    def record(self, path: str, wanted: str | None, status: int, sent: int) -> None:
        with self._lock:
            self.log.append({"path": path, "range": wanted, "status": status, "bytes": sent})

    def requests_for(self, path: str) -> list[dict]:
        return [r for r in self.log if r["path"] == path]


@pytest.fixture(autouse=True)
def _no_env_mirror(monkeypatch):
    monkeypatch.delenv(dl.ENV_MIRROR, raising=False)


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    httpd = _FixtureServer(root)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _payload(seed: int, n: int) -> bytes:
    out, block = bytearray(), hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


PTBXL_FILES = {
    "ptbxl_database.csv": b"ecg_id,patient_id,strat_fold\n1,15709,3\n",
    "scp_statements.csv": b",description\nNORM,normal ECG\n",
    "LICENSE.txt": b"CC BY 4.0\n",
    "records100/00000/00001_lr.hea": b"00001_lr 12 100 1000\n",
    "records100/00000/00001_lr.dat": _payload(1, 24_000),
    "records500/00000/00001_hr.hea": b"00001_hr 12 500 5000\n",
    "records500/00000/00001_hr.dat": _payload(2, 120_001),
}
BIG = "records500/00000/00001_hr.dat"


def _physionet_project(server: _FixtureServer, files: dict[str, bytes] = PTBXL_FILES,
                       project: str = "ptb-xl/1.0.3") -> str:
    """Write a PhysioNet-style project (files + SHA256SUMS.txt) under the server; returns the mirror URL."""
    root = server.root / project
    lines = []
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        lines.append(f"{hashlib.sha256(data).hexdigest()}  {rel}\n")
    (root / "SHA256SUMS.txt").write_text("".join(lines))
    return server.url + project


def _served(server: _FixtureServer, rel: str, project: str = "ptb-xl/1.0.3") -> str:
    return f"{project}/{rel}"


def _fetch(name: str, to: Path, **kw) -> dl.DownloadReport:
    kw.setdefault("backoff", 0.0)
    kw.setdefault("timeout", 5.0)
    return dl.download(name, to, **kw)


def test_registry_lists_the_required_datasets_with_real_sources():
    entries = {e["name"]: e for e in dl.list_datasets()}
    assert {"ptb-xl", "challenge-2021", "cpsc2018", "code-15", "code-test", "mimic-iv-ecg"} <= set(entries)
    for e in entries.values():
        for key in ("description", "citation", "licence", "homepage", "base_url", "manifest_url", "size"):
            assert isinstance(e[key], str) and e[key], (e["name"], key)
    assert entries["ptb-xl"]["manifest_url"] == "https://physionet.org/files/ptb-xl/1.0.3/SHA256SUMS.txt"
    assert entries["mimic-iv-ecg"]["base_url"] == "https://physionet.org/files/mimic-iv-ecg/1.0/"
    assert entries["code-15"]["manifest_url"] == "https://zenodo.org/api/records/4916206"
    assert entries["code-test"]["manifest_url"] == "https://zenodo.org/api/records/3765780"
    assert entries["cpsc2018"]["include"] == ["training/cpsc_2018/*"]
    assert "records100/*" in entries["ptb-xl"]["subsets"]["100hz"]
    with pytest.raises(KeyError, match="ptb-xl"):
        dl.get_dataset("no-such-dataset")
    with pytest.raises(ValueError, match="already registered"):
        dl.register_dataset(dl.get_dataset("ptb-xl"))


def test_full_download_verifies_checksums_and_writes_files(server, tmp_path):
    mirror = _physionet_project(server)
    calls: list[tuple[int, int]] = []
    report = _fetch("ptb-xl", tmp_path / "out", mirror=mirror, workers=3,
                    progress=lambda done, total: calls.append((done, total)))
    out = tmp_path / "out"
    assert sorted(report.downloaded) == sorted(PTBXL_FILES) and report.ok and report.files == len(PTBXL_FILES)
    for rel, data in PTBXL_FILES.items():
        assert (out / rel).read_bytes() == data
    assert not list(out.rglob("*.part"))
    total = sum(map(len, PTBXL_FILES.values()))
    assert report.bytes_downloaded == total and calls[-1] == (total, total)
    record = json.loads((out / dl.RECORD_FILE).read_text())
    assert record["dataset"] == "ptb-xl" and record["version"] == "1.0.3"
    assert record["files"] == record["checksums_verified"] == len(PTBXL_FILES)
    assert record["source_url"] == mirror + "/" and record["failed"] == {}
    assert (out / "SHA256SUMS.txt").is_file()


def test_env_mirror_with_placeholders(server, tmp_path, monkeypatch):
    _physionet_project(server)
    monkeypatch.setenv(dl.ENV_MIRROR, server.url + "{name}/{version}/")
    report = _fetch("ptb-xl", tmp_path / "out", include="metadata")
    assert sorted(report.downloaded) == ["LICENSE.txt", "ptbxl_database.csv", "scp_statements.csv"]


def test_include_subset_and_folder_filter(server, tmp_path):
    mirror = _physionet_project(server)
    report = _fetch("ptb-xl", tmp_path / "a", mirror=mirror, include=["100hz"])
    assert sorted(report.downloaded) == sorted(p for p in PTBXL_FILES if not p.startswith("records500"))
    assert not any(r["path"].startswith("ptb-xl/1.0.3/records500") for r in server.log)
    report = _fetch("ptb-xl", tmp_path / "b", mirror=mirror, include=["records500", "*.csv"])
    assert sorted(report.downloaded) == sorted(["ptbxl_database.csv", "scp_statements.csv",
                                                "records500/00000/00001_hr.hea", BIG])
    with pytest.raises(ValueError, match="no file of ptb-xl matches"):
        _fetch("ptb-xl", tmp_path / "c", mirror=mirror, include=["records1000/*"])


def test_fixed_include_keeps_cpsc2018_inside_the_challenge_project(server, tmp_path):
    files = {"training/cpsc_2018/g1/A0001.hea": b"A0001 12 500 7500\n",
             "training/cpsc_2018/g1/A0001.mat": b"m" * 99,
             "training/cpsc_2018_extra/g1/Q0001.hea": b"Q\n", "training/georgia/g1/E00001.hea": b"E\n"}
    mirror = _physionet_project(server, files, "challenge-2021/1.0.3")
    report = _fetch("cpsc2018", tmp_path / "out", mirror=mirror)
    assert sorted(report.downloaded) == ["training/cpsc_2018/g1/A0001.hea", "training/cpsc_2018/g1/A0001.mat"]
    report = _fetch("challenge-2021", tmp_path / "all", mirror=mirror, include="georgia")
    assert report.downloaded == ["training/georgia/g1/E00001.hea"]


def test_resume_continues_a_partial_part_file_with_a_range_request(server, tmp_path):
    mirror = _physionet_project(server)
    out, data, half = tmp_path / "out", PTBXL_FILES[BIG], len(PTBXL_FILES[BIG]) // 2
    (out / BIG).parent.mkdir(parents=True)
    (out / (BIG + ".part")).write_bytes(data[:half])
    report = _fetch("ptb-xl", out, mirror=mirror, include=[BIG], retries=0)
    (request,) = server.requests_for(_served(server, BIG))
    assert request["range"] == f"bytes={half}-" and request["status"] == 206
    assert request["bytes"] == len(data) - half
    assert (out / BIG).read_bytes() == data and not (out / (BIG + ".part")).exists()
    assert report.bytes_downloaded == len(data) - half


def test_complete_part_file_is_verified_after_a_416(server, tmp_path):
    mirror = _physionet_project(server)
    out, data = tmp_path / "out", PTBXL_FILES[BIG]
    (out / BIG).parent.mkdir(parents=True)
    (out / (BIG + ".part")).write_bytes(data)
    report = _fetch("ptb-xl", out, mirror=mirror, include=[BIG], retries=0)
    (request,) = server.requests_for(_served(server, BIG))
    assert (request["range"], request["status"], request["bytes"]) == (f"bytes={len(data)}-", 416, 0)
    assert report.downloaded == [BIG] and report.bytes_downloaded == 0 and (out / BIG).read_bytes() == data


def test_server_ignoring_range_restarts_the_file_cleanly(server, tmp_path):
    mirror = _physionet_project(server)
    server.ignore_range = True
    out, data, half = tmp_path / "out", PTBXL_FILES[BIG], len(PTBXL_FILES[BIG]) // 2
    (out / BIG).parent.mkdir(parents=True)
    (out / (BIG + ".part")).write_bytes(b"\0" * half)  # stale prefix: appending to it fails the checksum
    _fetch("ptb-xl", out, mirror=mirror, include=[BIG], retries=0)
    (request,) = server.requests_for(_served(server, BIG))
    assert request["range"] == f"bytes={half}-" and request["status"] == 200 and request["bytes"] == len(data)
    assert (out / BIG).read_bytes() == data


def test_dropped_connection_is_resumed_on_retry(server, tmp_path):
    mirror = _physionet_project(server)
    data, cut = PTBXL_FILES[BIG], 50_000
    server.truncate[_served(server, BIG)] = cut
    out = tmp_path / "out"
    _fetch("ptb-xl", out, mirror=mirror, include=[BIG], retries=1)
    first, second = server.requests_for(_served(server, BIG))
    assert (first["status"], first["bytes"]) == (200, cut)
    assert (second["range"], second["status"], second["bytes"]) == (f"bytes={cut}-", 206, len(data) - cut)
    assert (out / BIG).read_bytes() == data


def test_corrupted_file_fails_after_retries_while_the_others_complete(server, tmp_path):
    mirror = _physionet_project(server)
    bad = "records100/00000/00001_lr.dat"
    (server.root / "ptb-xl/1.0.3" / bad).write_bytes(b"corrupt" + PTBXL_FILES[bad][7:])
    out = tmp_path / "out"
    with pytest.raises(dl.DownloadError) as info:
        _fetch("ptb-xl", out, mirror=mirror, retries=2)
    assert bad in str(info.value) and "checksum mismatch" in str(info.value)
    assert list(info.value.report.failed) == [bad]
    assert len(server.requests_for(_served(server, bad))) == 3  # first attempt + 2 retries, each from byte 0
    assert all(r["range"] is None for r in server.requests_for(_served(server, bad)))
    assert not (out / bad).exists() and not (out / (bad + ".part")).exists()
    for rel, data in PTBXL_FILES.items():
        if rel != bad:
            assert (out / rel).read_bytes() == data
    assert bad in json.loads((out / dl.RECORD_FILE).read_text())["failed"]


def test_second_run_skips_verified_files_and_refetches_a_tampered_one(server, tmp_path):
    mirror = _physionet_project(server)
    out = tmp_path / "out"
    _fetch("ptb-xl", out, mirror=mirror)
    seen = len(server.log)
    report = _fetch("ptb-xl", out, mirror=mirror)
    assert len(server.log) == seen  # manifest reused (the record vouches for it), no file fetched
    assert sorted(report.skipped) == sorted(PTBXL_FILES) and report.downloaded == []
    (out / BIG).write_bytes(b"tampered")
    report = _fetch("ptb-xl", out, mirror=mirror)
    assert report.downloaded == [BIG] and [r["path"] for r in server.log[seen:]] == [_served(server, BIG)]
    assert (out / BIG).read_bytes() == PTBXL_FILES[BIG]


def test_http_404_names_the_url(server, tmp_path):
    with pytest.raises(FetchError, match=re.escape(server.url + "nowhere/SHA256SUMS.txt")) as info:
        _fetch("ptb-xl", tmp_path / "out", mirror=server.url + "nowhere", retries=3)
    assert "404" in str(info.value) and len(server.log) == 1  # a 404 is not retried
    mirror = _physionet_project(server)
    (server.root / "ptb-xl/1.0.3/LICENSE.txt").unlink()
    with pytest.raises(dl.DownloadError, match=re.escape(f"HTTP 404 Not Found for {mirror}/LICENSE.txt")):
        _fetch("ptb-xl", tmp_path / "out2", mirror=mirror, include="metadata")


def test_unreachable_host_names_the_url(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ptb-xl"
    with pytest.raises(FetchError, match=re.escape(f"cannot reach {url}/SHA256SUMS.txt")):
        _fetch("ptb-xl", tmp_path / "out", mirror=url, retries=0)


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _zenodo_record(files: dict[str, bytes], links: dict[str, str] | None = None) -> dict:
    return {"id": 3765780, "metadata": {"license": {"id": "cc-by-4.0"}},
            "files": [{"key": key, "size": len(data), "checksum": "md5:" + hashlib.md5(data).hexdigest(),
                       "links": {"self": (links or {}).get(key, "https://zenodo.invalid/" + key)}}
                      for key, data in files.items()]}


CODE_TEST_ZIP = _zip_bytes({"data/ecg_tracings.hdf5": _payload(3, 5000),
                            "data/attributes.csv": b"age,sex\n60,M\n",
                            "data/annotations/gold_standard.csv": b"1dAVb,RBBB,LBBB,SB,AF,ST\n0,0,0,0,1,0\n"})


def test_zenodo_record_via_mirror_with_md5_and_extraction(server, tmp_path):
    files = {"data.zip": CODE_TEST_ZIP}
    root = server.root / "code-test"
    root.mkdir()
    (root / "data.zip").write_bytes(CODE_TEST_ZIP)
    (root / "zenodo-record.json").write_text(json.dumps(_zenodo_record(files)))
    out = tmp_path / "out"
    report = _fetch("code-test", out, mirror=server.url + "code-test", extract=True)
    assert report.downloaded == ["data.zip"] and (out / "data.zip").read_bytes() == CODE_TEST_ZIP
    assert sorted(report.extracted) == ["data/annotations/gold_standard.csv", "data/attributes.csv",
                                        "data/ecg_tracings.hdf5"]
    assert (out / "data/ecg_tracings.hdf5").read_bytes() == _payload(3, 5000)
    record = json.loads((out / dl.RECORD_FILE).read_text())
    assert record["checksum_algorithm"] == "md5" and "cc-by-4.0" in record["licence"]
    report = _fetch("code-test", out, mirror=server.url + "code-test", extract=True)
    assert report.skipped == ["data.zip"] and report.extracted == []


def test_zenodo_without_mirror_uses_each_file_link(server, tmp_path, monkeypatch):
    files = {"exams.csv": b"exam_id,age\n1,50\n",
             "exams_part0.zip": _zip_bytes({"exams_part0.hdf5": b"h" * 300})}
    links = {key: f"{server.url}api/records/4916206/files/{key}/content" for key in files}
    for key, data in files.items():
        path = server.root / f"api/records/4916206/files/{key}/content"
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
    (server.root / "api/records/4916206.json").write_text(json.dumps(_zenodo_record(files, links)))
    source = download_sources._zenodo_source(
        "code-15-local", 4916206, title="t", description="d", citation="c", licence="l", size="s",
        subsets={"part0": ("exams.csv", "exams_part0.zip")})
    source = dataclasses.replace(source, manifest_url=server.url + "api/records/4916206.json")
    monkeypatch.setitem(download_sources._REGISTRY, source.name, source)
    out = tmp_path / "out"
    report = _fetch("code-15-local", out, include="part0", extract=True)
    assert sorted(report.downloaded) == ["exams.csv", "exams_part0.zip"]
    assert (out / "exams_part0.hdf5").read_bytes() == b"h" * 300
    fetched = {r["path"] for r in server.log}
    assert fetched == {"api/records/4916206.json", *(link[len(server.url):] for link in links.values())}


def _symlink_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    return buffer.getvalue()


@pytest.mark.parametrize("archive", [
    _zip_bytes({"ok.txt": b"fine", "../evil.txt": b"escaped"}),
    _zip_bytes({"ok.txt": b"fine", "a/../../evil.txt": b"escaped"}),
    _zip_bytes({"/tmp/ecgalign-evil.txt": b"absolute"}),
    _symlink_zip(),
], ids=["dotdot", "nested-dotdot", "absolute", "symlink"])
def test_zip_extraction_rejects_paths_escaping_the_target(tmp_path, archive):
    target = tmp_path / "target"
    target.mkdir()
    path = tmp_path / "a.zip"
    path.write_bytes(archive)
    with pytest.raises(dl.UnsafeArchiveError, match="a.zip"):
        dl.extract_zip(path, target)
    assert list(target.iterdir()) == [] and not (tmp_path / "evil.txt").exists()


def test_zip_extraction_does_not_follow_a_symlinked_folder_out_of_the_target(tmp_path):
    target, outside = tmp_path / "target", tmp_path / "outside"
    target.mkdir()
    outside.mkdir()
    (target / "linkdir").symlink_to(outside, target_is_directory=True)
    path = tmp_path / "a.zip"
    path.write_bytes(_zip_bytes({"linkdir/x.txt": b"escaped"}))
    with pytest.raises(dl.UnsafeArchiveError, match="linkdir/x.txt"):
        dl.extract_zip(path, target)
    assert list(outside.iterdir()) == []


def test_unsafe_archive_in_a_download_is_reported_as_failed(server, tmp_path):
    evil = _zip_bytes({"../evil.txt": b"x"})
    root = server.root / "code-test"
    root.mkdir()
    (root / "data.zip").write_bytes(evil)
    (root / "zenodo-record.json").write_text(json.dumps(_zenodo_record({"data.zip": evil})))
    with pytest.raises(dl.DownloadError, match="would be written outside"):
        _fetch("code-test", tmp_path / "out", mirror=server.url + "code-test", extract=True)
    assert not (tmp_path / "evil.txt").exists()


def test_manifest_parsing_rejects_unsafe_paths_and_accepts_binary_marks(tmp_path):
    source = dl.get_dataset("ptb-xl")
    digest = "ab" * 32
    good = tmp_path / "good.txt"
    good.write_text(f"{digest} *records100/x y.dat\n\n{digest.upper()}  RECORDS\n")
    entries = list(dl.parse_manifest(source, good))
    assert [(e.path, e.digest) for e in entries] == [("records100/x y.dat", digest), ("RECORDS", digest)]
    assert entries[0].url == "https://physionet.org/files/ptb-xl/1.0.3/records100/x%20y.dat"
    for line in (f"{digest}  ../../etc/passwd", f"{digest}  /etc/passwd", "nothex  file"):
        bad = tmp_path / "bad.txt"
        bad.write_text(line + "\n")
        with pytest.raises(ValueError, match="bad.txt:1"):
            list(dl.parse_manifest(source, bad))


def test_argument_checks(tmp_path):
    with pytest.raises(ValueError, match="workers"):
        dl.download("ptb-xl", tmp_path, workers=0)
