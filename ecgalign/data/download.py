"""Download open ECG datasets (PhysioNet, Zenodo) with resume and checksum verification.

``download(name, to)`` fetches the publisher's manifest (PhysioNet ``SHA256SUMS.txt``; the Zenodo record JSON
with per-file md5), keeps the files matching ``include``, and downloads each one to ``<to>/<relative path>``
through ``download_http.fetch_file`` (``.part`` + HTTP Range resume, hashed while streaming, atomic rename).
Files already present whose checksum matches are skipped (a rerun re-hashes them and fetches nothing); a file
that still fails after ``retries`` further attempts is reported, the run goes on with the others, and
``DownloadError`` lists the failures at the end. Every run writes ``<to>/.ecgalign-download.json``.

A mirror (``mirror=`` or ``$ECGALIGN_DOWNLOAD_MIRROR``; ``{name}`` and ``{version}`` in it are filled in) is
any HTTP folder laid out like a finished download: the manifest (``SHA256SUMS.txt`` or ``zenodo-record.json``)
and the files at their relative paths. PhysioNet's own layout qualifies, so a PhysioNet mirror works as is,
and so does a download folder served by any web server.

The registry lives in ``download_sources``; ``list_datasets()`` describes it.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
import time
import urllib.parse
import zipfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Any

from ecgalign._version import __version__
from ecgalign.data.download_http import CHUNK, Expected, FetchError, fetch_file, file_digest
from ecgalign.data.download_sources import DatasetSource, dataset_names, get_dataset, register_dataset
from ecgalign.data.errors import ECGAlignError, InputError

__all__ = ["DatasetSource", "DownloadError", "DownloadReport", "FetchError", "ManifestEntry",
           "UnsafeArchiveError", "download", "extract_zip", "get_dataset", "list_datasets", "parse_manifest",
           "register_dataset"]

ENV_MIRROR = "ECGALIGN_DOWNLOAD_MIRROR"
RECORD_FILE = ".ecgalign-download.json"
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One file of a dataset: relative path, publisher's checksum, size when published, and its URL."""

    path: str
    algo: str
    digest: str
    size: int | None
    url: str


@dataclass
class DownloadReport:
    """What one ``download`` run did."""

    dataset: str
    version: str
    target: Path
    source: str
    files: int = 0
    downloaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    extracted: list[str] = field(default_factory=list)
    bytes_downloaded: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "version": self.version, "target": str(self.target),
                "source": self.source, "files": self.files, "downloaded": len(self.downloaded),
                "skipped_verified": len(self.skipped), "failed": dict(self.failed),
                "extracted": len(self.extracted), "bytes_downloaded": self.bytes_downloaded,
                "seconds": round(self.seconds, 3)}

    def __str__(self) -> str:
        text = (f"{self.dataset} {self.version} -> {self.target}: {self.files} files, {len(self.downloaded)} "
                f"downloaded ({self.bytes_downloaded / 1e6:,.1f} MB), {len(self.skipped)} already verified, "
                f"{len(self.failed)} failed")
        if self.extracted:
            text += f", {len(self.extracted)} extracted from archives"
        return text


class DownloadError(ECGAlignError, RuntimeError):
    """Some files could not be downloaded and verified; ``report.failed`` maps each to its reason."""

    def __init__(self, report: DownloadReport):
        shown = list(report.failed.items())[:20]
        lines = "\n".join(f"  {path}: {reason}" for path, reason in shown)
        hidden = len(report.failed) - len(shown)
        more = f"\n  ... and {hidden} more" if hidden else ""
        super().__init__(f"{len(report.failed)} of {report.files} files of {report.dataset} failed "
                         f"(verified files are in {report.target}):\n{lines}{more}")
        self.report = report


class UnsafeArchiveError(InputError):
    """A zip member would be written outside the target folder (path traversal, absolute path, symlink)."""


def list_datasets() -> list[dict[str, Any]]:
    """Per dataset: name, description, version, size, licence, citation, URLs, subsets."""
    return [get_dataset(name).as_dict() for name in dataset_names()]


def _mirror_base(source: DatasetSource, mirror: str | None) -> str | None:
    mirror = mirror or os.environ.get(ENV_MIRROR) or None
    if mirror is None:
        return None
    return mirror.replace("{name}", source.name).replace("{version}", source.version).rstrip("/") + "/"


def _safe_relpath(path: str, where: str) -> str:
    parts = PurePosixPath(path).parts
    if "\\" in path or path.startswith("/") or not parts or ".." in parts:
        raise InputError(f"{where}: unsafe file path {path!r} (expected a relative path inside the dataset)")
    return path


def _refused(source: DatasetSource, path: str) -> str | None:
    """Why an entry must not be fetched: it would overwrite the manifest or the download record while they are
    in use, or collide with another file's partial download."""
    if path in (source.manifest_name, RECORD_FILE):
        return f"refused: the entry names the {'manifest' if path == source.manifest_name else 'download record'} itself"
    if path.endswith(".part"):
        return "refused: a '.part' name is reserved for partial downloads"
    return None


def _file_link(url: Any, manifest: Path, path: str) -> str:
    """A Zenodo ``links.self``: https only (http to 127.0.0.1 for local test servers); anything else
    (file://, ftp://, a relative or non-text link) would let the record read or fetch from where it should not."""
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if parts is None or not parts.netloc or not (
        parts.scheme == "https" or (parts.scheme == "http" and parts.hostname == "127.0.0.1")
    ):
        raise InputError(f"{manifest}: file {path!r} links to {url!r}; only https URLs are followed")
    return url


def parse_manifest(source: DatasetSource, manifest: Path, base: str | None = None) -> Iterator[ManifestEntry]:
    """The files a manifest lists. URLs are ``base + path`` when ``base`` (a mirror) is given; otherwise the
    publisher's: ``source.base_url + path`` for PhysioNet, ``links.self`` of each Zenodo file (https only).
    A malformed or hostile manifest raises InputError naming the manifest (and the line or file)."""
    if source.manifest == "physionet":
        root = base or source.base_url
        with open(manifest, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                digest, _, path = line.partition(" ")
                path = path.strip().lstrip("*")
                if len(digest) != 64 or not path:
                    raise InputError(
                        f"{manifest}:{lineno}: expected '<sha256 hex>  <path>', got {line[:80]!r}")
                path = _safe_relpath(path, f"{manifest}:{lineno}")
                yield ManifestEntry(path, "sha256", digest.lower(), None, root + urllib.parse.quote(path))
        return
    try:
        record = json.loads(manifest.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InputError(f"{manifest}: not a Zenodo record (JSON): {exc}") from None
    files = record.get("files") if isinstance(record, dict) else None
    if isinstance(files, dict) and isinstance(files.get("entries", {}), dict):  # InvenioRDM: {"entries": {key: {...}}}
        files = list(files.get("entries", {}).values())
    if not isinstance(files, list) or not files:
        raise InputError(f"{manifest}: Zenodo record without a 'files' list")
    for k, item in enumerate(files):
        if not isinstance(item, dict):
            raise InputError(f"{manifest}: files[{k}] is {type(item).__name__}, expected an object")
        path = _safe_relpath(str(item.get("key", "")), str(manifest))
        algo, _, digest = str(item.get("checksum", "")).partition(":")
        if algo not in ("md5", "sha256") or not digest:
            raise InputError(
                f"{manifest}: file {path!r} has checksum {item.get('checksum')!r}, expected 'md5:<hex>'")
        size = item.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise InputError(f"{manifest}: file {path!r} has size {size!r}, expected a byte count")
        links = item.get("links") or {}
        if not isinstance(links, dict):
            raise InputError(f"{manifest}: file {path!r} has links {links!r}, expected an object")
        if base is None and links.get("self") is not None:
            url = _file_link(links["self"], manifest, path)
        else:
            url = (base or source.base_url) + urllib.parse.quote(path)
        yield ManifestEntry(path, algo, digest.lower(), size, url)


def _matches(path: str, pattern: str) -> bool:
    """fnmatch on the relative path (``*`` also crosses ``/``); a plain folder name matches what is inside."""
    if fnmatchcase(path, pattern):
        return True
    return not (_GLOB_CHARS & set(pattern)) and path.startswith(pattern.rstrip("/") + "/")


def _patterns(source: DatasetSource, include: Sequence[str] | str | None) -> list[str] | None:
    if include is None:
        return None
    include = [include] if isinstance(include, str) else list(include)
    patterns: list[str] = []
    for item in include:
        patterns.extend(source.subsets.get(item, (item,)))
    return patterns


def _selected(path: str, fixed: Sequence[str], patterns: list[str] | None) -> bool:
    if fixed and not any(_matches(path, p) for p in fixed):
        return False
    return patterns is None or any(_matches(path, p) for p in patterns)


def _read_record(to: Path) -> dict[str, Any]:
    try:
        return json.loads((to / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _fetch_manifest(source: DatasetSource, url: str, to: Path, *, timeout: float, retries: int,
                    backoff: float) -> tuple[Path, str]:
    """The manifest at ``<to>/<manifest_name>`` and its sha256. A copy that the previous run's record vouches
    for (same publisher manifest, same sha256) is reused, so a finished download re-verifies offline."""
    local = to / source.manifest_name
    record = _read_record(to)
    if local.is_file() and record.get("manifest_url") == source.manifest_url:
        digest = file_digest(local, "sha256")
        if digest == record.get("manifest_sha256"):
            return local, digest
    error: FetchError | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            return local, fetch_file(url, local, None, timeout=timeout)[1]
        except FetchError as exc:
            error = exc
            if not exc.retryable:
                break
    raise FetchError(f"cannot get the manifest of {source.name}: {error}", retryable=False)


class _Meter:
    """Thread-safe byte counter calling ``progress(done, total)``; ``total`` grows as sizes become known."""

    def __init__(self, callback: Callable[[int, int], None] | None, total: int):
        self.callback, self.done, self.total, self.lock = callback, 0, total, threading.Lock()

    def advance(self, n: int) -> None:
        with self.lock:
            self.done += n
            if self.callback is not None:
                self.callback(self.done, max(self.total, self.done))

    def announce(self, n: int) -> None:
        with self.lock:
            self.total += n


def _fetch_entry(entry: ManifestEntry, to: Path, *, retries: int, backoff: float, timeout: float,
                 meter: _Meter, stop: threading.Event) -> tuple[str, str, int, str]:
    """(status, path, bytes transferred, reason) with status 'skipped', 'downloaded' or 'failed'."""
    dest = to / entry.path
    expected = Expected(entry.algo, entry.digest, entry.size)
    announced = entry.size is not None

    def on_size(n: int) -> None:
        nonlocal announced
        if not announced:
            meter.announce(n)
            announced = True

    if dest.is_file():
        size = dest.stat().st_size
        if (entry.size is None or size == entry.size) and file_digest(dest, entry.algo) == entry.digest:
            on_size(size)
            meter.advance(size)
            return "skipped", entry.path, 0, ""
        dest.unlink()
    reason = ""
    for attempt in range(retries + 1):
        if stop.is_set():
            return "failed", entry.path, 0, "interrupted"
        if attempt and backoff:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            received, _ = fetch_file(entry.url, dest, expected, timeout=timeout, on_bytes=meter.advance,
                                     on_size=on_size, stop=stop)
            return "downloaded", entry.path, received, ""
        except FetchError as exc:
            reason = f"{exc} (attempt {attempt + 1} of {retries + 1})"
            if not exc.retryable:
                break
    return "failed", entry.path, 0, reason


def _run_pool(entries: list[ManifestEntry], to: Path, report: DownloadReport, *, workers: int, retries: int,
              backoff: float, timeout: float, meter: _Meter) -> None:
    stop = threading.Event()
    pending: set[Future] = set()

    def collect(futures: set[Future]) -> None:
        for future in futures:
            status, path, received, reason = future.result()
            report.bytes_downloaded += received
            if status == "skipped":
                report.skipped.append(path)
            elif status == "downloaded":
                report.downloaded.append(path)
            else:
                report.failed[path] = reason

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ecgalign-download") as pool:
        try:
            for entry in entries:  # bounded: a million-file manifest never becomes a million futures
                pending.add(pool.submit(_fetch_entry, entry, to, retries=retries, backoff=backoff,
                                        timeout=timeout, meter=meter, stop=stop))
                if len(pending) >= 4 * workers:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    collect(done)
            done, pending = wait(pending)
            collect(done)
        except BaseException:
            stop.set()
            for future in pending:
                future.cancel()
            raise


def extract_zip(archive: str | Path, dest: str | Path) -> list[str]:
    """Unpack ``archive`` into ``dest``; returns the member paths written. Every member is checked first: an
    absolute path, a ``..`` component, a symlink or anything resolving outside ``dest`` raises
    UnsafeArchiveError before a single file is written. Members already present with the same size are kept;
    each file is written to ``.part`` and renamed, and zipfile checks every member's CRC-32 while reading."""
    archive, root = Path(archive), Path(dest).resolve()
    written: list[str] = []
    with zipfile.ZipFile(archive) as zf:
        plan = []
        for member in zf.infolist():
            name = member.filename
            parts = PurePosixPath(name).parts
            target = (root / name).resolve()
            if (name.startswith(("/", "\\")) or "\\" in name or ".." in parts or (parts and ":" in parts[0])
                    or target == root or not target.is_relative_to(root)):
                raise UnsafeArchiveError(f"{archive}: member {name!r} would be written outside {root}")
            if stat.S_ISLNK(member.external_attr >> 16):
                raise UnsafeArchiveError(f"{archive}: member {name!r} is a symbolic link")
            plan.append((member, target))
        for member, target in plan:
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            if target.is_file() and target.stat().st_size == member.file_size:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(target.name + ".part")
            with zf.open(member) as src, open(part, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
            os.replace(part, target)
            written.append(member.filename)
    return written


def _write_record(to: Path, source: DatasetSource, report: DownloadReport, manifest: Path, manifest_sha: str,
                  include: list[str] | None) -> None:
    licence = source.licence
    if source.manifest == "zenodo":
        meta = json.loads(manifest.read_text(encoding="utf-8")).get("metadata", {})
        licence_id = (meta.get("license") or {}).get("id") if isinstance(meta.get("license"), dict) else None
        licence = f"{licence} (record: {licence_id})" if licence_id else licence
    record = {
        "dataset": source.name, "title": source.title, "version": source.version, "source_url": report.source,
        "manifest_url": source.manifest_url, "manifest": manifest.name, "manifest_sha256": manifest_sha,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "include": include,
        "files": report.files, "checksums_verified": len(report.downloaded) + len(report.skipped),
        "checksum_algorithm": "sha256" if source.manifest == "physionet" else "md5",
        "failed": report.failed, "extracted": len(report.extracted), "licence": licence,
        "citation": source.citation, "ecgalign_version": __version__,
    }
    tmp = to / (RECORD_FILE + ".part")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, to / RECORD_FILE)


def download(name: str, to: str | Path, *, include: Sequence[str] | str | None = None,
             mirror: str | None = None, workers: int = 4, retries: int = 3,
             progress: Callable[[int, int], None] | None = None, extract: bool = False,
             timeout: float = 60.0, backoff: float = 1.0) -> DownloadReport:
    """Download dataset ``name`` (see ``list_datasets()``) into ``to``, verifying every file's checksum.

    include: globs on the relative path (``*`` crosses ``/``; a folder name takes what is inside) or subset
        names of the dataset (e.g. ``"100hz"`` for PTB-XL); None takes everything.
    mirror: base URL replacing the publisher's (default ``$ECGALIGN_DOWNLOAD_MIRROR``).
    retries: further attempts per file after the first (timeouts, broken transfers, 5xx, checksum mismatch);
        ``backoff`` seconds doubles between them. 4xx errors other than 408/429 are not retried.
    progress: ``progress(bytes_done, bytes_total)``; where the manifest gives no sizes (PhysioNet) the total
        grows as servers announce lengths.
    extract: unpack verified ``.zip`` files into ``to`` (safely; the archives are kept so reruns skip them).
    Raises KeyError for an unknown name, ValueError when nothing matches ``include``, FetchError when the
    manifest cannot be fetched, and DownloadError (after finishing all other files) if any file failed.
    """
    source = get_dataset(name)
    if workers < 1 or retries < 0 or timeout <= 0:
        raise InputError(
            f"workers must be >= 1, retries >= 0, timeout > 0; got {workers}, {retries}, {timeout}")
    to = Path(to)
    to.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    base = _mirror_base(source, mirror)
    manifest_url = base + source.manifest_name if base else source.manifest_url
    manifest, manifest_sha = _fetch_manifest(source, manifest_url, to, timeout=timeout, retries=retries,
                                             backoff=backoff)
    patterns = _patterns(source, include)
    entries = [e for e in parse_manifest(source, manifest, base)
               if _selected(e.path, source.include, patterns)]
    if not entries:
        raise InputError(f"no file of {name} matches include {patterns} (manifest {manifest_url})")
    report = DownloadReport(name, source.version, to, base or source.base_url, files=len(entries))
    report.failed.update({e.path: why for e in entries if (why := _refused(source, e.path)) is not None})
    entries = [e for e in entries if e.path not in report.failed]
    meter = _Meter(progress, sum(e.size or 0 for e in entries))
    _run_pool(entries, to, report, workers=workers, retries=retries, backoff=backoff, timeout=timeout,
              meter=meter)
    if extract:
        for entry in entries:
            if entry.path.lower().endswith(".zip") and entry.path not in report.failed:
                try:
                    report.extracted.extend(extract_zip(to / entry.path, to))
                except (UnsafeArchiveError, zipfile.BadZipFile, OSError) as exc:
                    report.failed[entry.path] = f"extraction failed: {exc}"
    report.seconds = time.monotonic() - start
    _write_record(to, source, report, manifest, manifest_sha, patterns)
    if report.failed:
        raise DownloadError(report)
    return report
