"""Full integrity check of a store (``ecgalign data verify``): every byte of every file re-hashed.

``ECGStore`` checks each shard's header and size when it opens a store (cheap); this module reads every shard,
metadata part and ``metadata.parquet`` and compares their sha256 with the checksums the writer recorded in
``store.json``, so zeroed or flipped bytes that keep the size are found too. Stores written before checksums
existed get the header, size and row-count checks only, and the result says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ecgalign.data.store_files import CHECKSUM, StoreIntegrityError, check_shard, file_checksum, load_manifest


def verify_store(path: str | Path) -> dict[str, Any]:
    """{store, ok, records, files_checked, checksums, problems: [{file, problem}]}; every problem is listed
    (the check does not stop at the first). A missing or unreadable ``store.json`` raises instead."""
    folder = Path(path)
    manifest = load_manifest(folder)
    leads, samples, dtype = len(manifest["leads"]), manifest["samples"], np.dtype(manifest["encoding"])
    problems: list[dict[str, str]] = []
    checked, with_checksum = 0, 0

    def problem(file: Path, text: str) -> None:
        problems.append({"file": str(file), "problem": text})

    def compare(file: Path, size: int | None, digest: str | None) -> None:
        nonlocal with_checksum
        if digest is None:
            return
        with_checksum += 1
        found_size, found = file_checksum(file)
        if size is not None and found_size != size:
            problem(file, f"{found_size} bytes, the manifest records {size}")
        elif found != digest:
            problem(file, f"{CHECKSUM} {found[:16]}... differs from the recorded {digest[:16]}... (the bytes changed)")

    for shard in manifest["shards"]:
        shard_file, meta_file = folder / shard["file"], folder / shard["meta"]
        checked += 2
        try:
            check_shard(shard_file, (shard["records"], leads, samples), dtype, shard)
            compare(shard_file, shard.get("bytes"), shard.get(CHECKSUM))
        except StoreIntegrityError as exc:
            problem(shard_file, str(exc).removeprefix(f"{shard_file}: "))
        except OSError as exc:
            problem(shard_file, f"cannot read: {exc.strerror or exc}")
        _check_table(meta_file, shard["records"], problem)
        if meta_file.is_file():
            compare(meta_file, shard.get("meta_bytes"), shard.get(f"meta_{CHECKSUM}"))
    metadata = folder / "metadata.parquet"
    checked += 1
    records = sum(s["records"] for s in manifest["shards"])
    _check_table(metadata, records, problem)
    recorded = manifest.get("metadata_file") or {}
    if metadata.is_file() and isinstance(recorded, dict):
        compare(metadata, recorded.get("bytes"), recorded.get(CHECKSUM))
    if records != manifest.get("records", records):
        problem(folder / "store.json", f"'records' is {manifest.get('records')} but the shards hold {records}")
    return {
        "store": str(folder),
        "ok": not problems,
        "records": records,
        "files_checked": checked,
        "checksums": "verified" if with_checksum == checked else "partial" if with_checksum else
                     "absent (store written before checksums; headers, sizes and row counts checked)",
        "problems": problems,
    }


def _check_table(file: Path, rows: int, problem: Any) -> None:
    """A Parquet file that opens and has ``rows`` rows (its footer only is read)."""
    try:
        found = pq.ParquetFile(file).metadata.num_rows
    except FileNotFoundError:
        problem(file, "file is missing")
        return
    except (pa.ArrowException, OSError) as exc:
        problem(file, f"not a readable Parquet file: {exc}")
        return
    if found != rows:
        problem(file, f"{found} rows, the manifest expects {rows}")
