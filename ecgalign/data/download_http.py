"""One resumable, checksum-verified HTTP download (standard library only: urllib + hashlib).

A file is streamed in chunks into ``<dest>.part`` and hashed while it streams. A ``.part`` left by an
interrupted attempt is continued with an HTTP ``Range: bytes=N-`` request (RFC 9110 section 14); a server that
ignores the range and answers 200 gets the file rewritten from the start. Only a verified file is renamed into
place (``os.replace``, atomic on one file system); a checksum mismatch deletes the ``.part``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from threading import Event

from ecgalign._version import __version__
from ecgalign.data.errors import ECGAlignError

CHUNK = 1 << 20
USER_AGENT = f"ecgalign/{__version__} (python-urllib)"
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class FetchError(ECGAlignError):
    """One download attempt failed; ``retryable`` says whether another attempt may succeed."""

    def __init__(self, message: str, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


class ChecksumMismatch(FetchError):
    """The bytes received do not match the publisher's checksum (the ``.part`` was deleted)."""


class _RangeNotSatisfiable(Exception):
    """HTTP 416: the ``.part`` already holds at least the whole file."""


@dataclass(frozen=True)
class Expected:
    """The publisher's checksum (hashlib algorithm name + hex digest) and, when known, the size in bytes."""

    algo: str
    digest: str
    size: int | None = None


def file_digest(path: Path, algo: str) -> str:
    """Hex digest of a file, read in chunks."""
    hasher = hashlib.new(algo)
    _hash_into(hasher, path)
    return hasher.hexdigest()


def _hash_into(hasher: "hashlib._Hash", path: Path) -> None:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            hasher.update(chunk)


def _open(url: str, timeout: float, offset: int) -> http.client.HTTPResponse:
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            raise _RangeNotSatisfiable() from None
        retryable = exc.code >= 500 or exc.code in (408, 429)
        raise FetchError(f"HTTP {exc.code} {exc.reason} for {url}", retryable) from None
    except urllib.error.URLError as exc:
        raise FetchError(f"cannot reach {url}: {exc.reason}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise FetchError(f"cannot fetch {url}: {exc!r}") from None


def _range_start(header: str | None) -> int | None:
    match = _CONTENT_RANGE.match(header or "")
    return int(match.group(1)) if match else None


def fetch_file(url: str, dest: Path, expected: Expected | None, *, timeout: float,
               on_bytes: Callable[[int], None] = lambda n: None,
               on_size: Callable[[int], None] = lambda n: None,
               stop: Event | None = None) -> tuple[int, str]:
    """One attempt at ``url`` -> ``dest``; returns (bytes transferred, hex digest).

    ``expected=None`` skips verification (the digest returned is sha256). ``on_bytes(n)`` reports bytes that
    now count as done (negative when a bad ``.part`` is thrown away); ``on_size(n)`` reports the file's full
    size once the server announces it. Raises FetchError naming the URL; the ``.part`` of an interrupted
    transfer is kept so the next attempt resumes it.
    """
    part = dest.with_name(dest.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    algo = expected.algo if expected else "sha256"
    offset = part.stat().st_size if part.exists() else 0
    if expected and expected.size is not None and offset > expected.size:
        part.unlink()
        offset = 0
    hasher = hashlib.new(algo)
    if offset and expected and expected.size is not None and offset == expected.size:
        _hash_into(hasher, part)  # a complete .part from an interrupted run: no request needed
        on_bytes(offset)
        return 0, _finish(part, dest, hasher, expected, url, on_bytes)
    try:
        response = _open(url, timeout, offset)
    except _RangeNotSatisfiable:
        _hash_into(hasher, part)
        on_bytes(offset)
        return 0, _finish(part, dest, hasher, expected, url, on_bytes)
    received = 0
    with response:
        if offset and response.status == 206:
            start = _range_start(response.headers.get("Content-Range"))
            if start != offset:
                part.unlink()
                raise FetchError(f"{url}: asked to resume at byte {offset}, got a range starting at {start}")
            _hash_into(hasher, part)
            on_bytes(offset)
            mode = "ab"
        else:  # 200: the whole body, whether we asked for a range or not
            offset, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        remaining = int(length) if length and length.isdigit() else None
        if remaining is not None:
            on_size(offset + remaining)
        try:
            with open(part, mode) as out:
                while chunk := response.read(CHUNK):
                    if stop is not None and stop.is_set():
                        raise FetchError(f"{url}: interrupted", retryable=False)
                    out.write(chunk)
                    hasher.update(chunk)
                    received += len(chunk)
                    on_bytes(len(chunk))
        except (OSError, http.client.HTTPException) as exc:
            raise FetchError(f"{url}: transfer broke after {offset + received} bytes ({exc!r})") from None
    if remaining is not None and received < remaining:
        raise FetchError(f"{url}: connection closed after {offset + received} of {offset + remaining} bytes")
    return received, _finish(part, dest, hasher, expected, url, on_bytes)


def _finish(part: Path, dest: Path, hasher: "hashlib._Hash", expected: Expected | None, url: str,
            on_bytes: Callable[[int], None]) -> str:
    digest = hasher.hexdigest()
    size = part.stat().st_size
    if expected is not None:
        wrong_size = expected.size is not None and size != expected.size
        if wrong_size or digest != expected.digest.lower():
            part.unlink()
            on_bytes(-size)
            got = f"{size} bytes" if wrong_size else f"{expected.algo} {digest}"
            want = f"{expected.size} bytes" if wrong_size else expected.digest.lower()
            raise ChecksumMismatch(f"checksum mismatch for {url}: got {got}, expected {want}")
    os.replace(part, dest)
    return digest
