"""Ground truth as JSON, PNG writing, and rendering a stream of records to PNG + JSON sidecar files."""

from __future__ import annotations

import io
import os
import re
import struct
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from ecgalign.data.record import LEADS_12, ECGRecord
from ecgalign.render.augment import Augment
from ecgalign.render.renderer import RenderConfig, Renderer, RenderResult
from ecgalign.render.truth import FORMAT, GroundTruth

__all__ = [
    "FORMAT",
    "GroundTruth",
    "output_stem",
    "record_header",
    "record_signal",
    "render_records",
    "save_png",
    "write_render",
]


def _deflate(data: bytes, level: int) -> bytes:
    """zlib stream of ``data``: by ISA-L (the optional ``isal`` package, ``pip install ecgalign[fast]``) for
    levels 0-3 when it is installed, else by zlib. ISA-L level 1 takes 7.7 ms for a 2200 x 1700 printout where
    zlib level 1 takes 34.5 ms (1.05 vs 1.00 MB); any inflater reads either stream."""
    if level <= 3:
        try:
            from isal import isal_zlib
        except ImportError:
            pass
        else:
            return isal_zlib.compress(data, level)
    return zlib.compress(data, level)


def encode_png(rgb: np.ndarray, level: int = 1) -> bytes:
    """(H, W, 3) uint8 -> PNG bytes (8-bit RGB, no filter, deflate ``level``, see ``_deflate``). Written here
    rather than through Pillow because Pillow always runs adaptive row filtering: 82 ms vs 36 ms for a 2200 x
    1700 printout at level 1, and larger files (1.12 vs 1.03 MB) - printouts compress well without filters. The
    container is PNG's minimal form (signature, IHDR, one IDAT, IEND; ISO/IEC 15948); tests decode it with
    Pillow."""
    arr = np.ascontiguousarray(rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"encode_png takes (H, W, 3) uint8, got {arr.dtype} {arr.shape}")
    h, w, _ = arr.shape
    raw = np.empty((h, 3 * w + 1), dtype=np.uint8)
    raw[:, 0] = 0  # filter type "none" on every row
    raw[:, 1:] = arr.reshape(h, 3 * w)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit, truecolour, deflate, no filter method, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", _deflate(raw.tobytes(), level)) + chunk(b"IEND", b"")


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_png(
    image: torch.Tensor, path: str | Path, compress_level: int = 6, colors: int | None = None
) -> Path:
    """Write one (3, H, W) image (uint8, or float in [0, 1]) as PNG, atomically. ``colors``: quantise to a
    palette of that many colours first with Pillow (much smaller files for previews; lossy)."""
    x = image.detach().cpu()
    if x.is_floating_point():
        x = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    path = Path(path)
    rgb = x.permute(1, 2, 0).contiguous().numpy()
    if colors is None:
        _write_atomic(path, encode_png(rgb, compress_level))
        return path
    from PIL import Image

    im = Image.fromarray(rgb).quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=compress_level)
    _write_atomic(path, buf.getvalue())
    return path


def write_render(
    res: RenderResult,
    i: int,
    out_dir: str | Path,
    stem: str,
    decimals: int | None = 2,
    compress_level: int = 1,
) -> tuple[Path, Path]:
    """``stem.png`` and its ground truth ``stem.json`` in ``out_dir``, each written atomically (characters
    other than letters, digits, ``.``, ``_`` and ``-`` in ``stem`` become ``_``). PNG level 1: encoding, not
    rendering, was the slow part of writing files, and higher levels save only a few per cent."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)
    png = save_png(res.images[i], out_dir / f"{stem}.png", compress_level=compress_level)
    js = out_dir / f"{stem}.json"
    _write_atomic(js, res.ground_truth(i).to_json(decimals=decimals).encode())
    return png, js


def record_signal(rec: ECGRecord) -> np.ndarray:
    """The record's signal in LEADS_12 order (12, T); leads the record lacks are NaN (rendered absent)."""
    out = np.full((12, rec.signal.shape[1]), np.nan, dtype=np.float32)
    for k, lead in enumerate(rec.leads):
        if lead in LEADS_12:
            out[LEADS_12.index(lead)] = rec.signal[k]
    return out


def record_header(rec: ECGRecord) -> dict:
    """Header fields of a record: id, age, sex and (PTB-XL) recording date."""
    date = (rec.extra or {}).get("recording_date")
    return {"id": rec.record_id, "age": rec.age, "sex": rec.sex, "date": date}


_WORKER_RENDERERS: dict = {}


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def _render_batch(job: tuple) -> list[tuple[Path, Path]]:
    """Render and write one batch (in a worker process, or in-process): returns the written paths."""
    config, device, signals, fs, augment, seeds, headers, stems, out_dir, decimals = job
    key = (config, device)
    if key not in _WORKER_RENDERERS:
        _WORKER_RENDERERS.clear()  # one renderer (templates, buffers) per worker
        _WORKER_RENDERERS[key] = Renderer(config, device=device)
    res = _WORKER_RENDERERS[key].render(torch.from_numpy(signals), fs, augment=augment, seed=seeds, header=headers)
    return [write_render(res, j, out_dir, stem, decimals) for j, stem in enumerate(stems)]


def output_stem(rec: ECGRecord) -> str:
    """``<dataset>_<record_id>_<rate>hz``: the source rate in the name, so 100 and 500 Hz renders of a record
    never overwrite each other."""
    return f"{rec.dataset}_{rec.record_id}_{rec.fs:g}hz"


def render_records(
    records: Iterable[ECGRecord],
    out_dir: str | Path,
    *,
    config: RenderConfig | None = None,
    augment: str | Augment = "none",
    seed: int = 0,
    batch_size: int = 8,
    limit: int | None = None,
    header: bool = True,
    decimals: int | None = 2,
    device: str | None = None,
    workers: int = 1,
    threads: int = 1,
) -> Iterator[tuple[Path, Path]]:
    """Render records to ``out_dir/<dataset>_<record_id>_<fs>hz.png`` + ``.json`` (what ``ecgalign render`` does).

    Image k of the stream uses seed ``seed + k`` (reproducible whatever the batch size or worker count).
    Records are batched while their sampling rate and length agree. ``workers`` > 1: batches are rendered,
    PNG-encoded and written in that many processes (encoding overlaps rendering), each with ``threads`` torch
    threads (1: one busy core per worker, no oversubscription). Yields the written (png, json) paths in order.
    """
    config = config or RenderConfig()
    if workers < 1 or threads < 1:
        raise ValueError(f"workers and threads must be >= 1, got {workers}, {threads}")
    batch: list[ECGRecord] = []
    done = 0

    def job() -> tuple:
        nonlocal done
        signals = np.stack([record_signal(r) for r in batch])
        headers = [record_header(r) for r in batch] if header else None
        seeds = [seed + done + j for j in range(len(batch))]
        stems = [output_stem(r) for r in batch]
        done += len(batch)
        out = (config, device, signals, float(batch[0].fs), augment, seeds, headers, stems, Path(out_dir), decimals)
        batch.clear()
        return out

    def jobs() -> Iterator[tuple]:
        for rec in records:
            if limit is not None and done + len(batch) >= limit:
                break
            if batch and (rec.fs != batch[0].fs or rec.signal.shape[1] != batch[0].signal.shape[1]):
                yield job()
            batch.append(rec)
            if len(batch) >= batch_size:
                yield job()
        if batch:
            yield job()

    if workers == 1:
        for j in jobs():
            yield from _render_batch(j)
        return
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(threads,)) as pool:
        pending: deque = deque()
        for j in jobs():
            pending.append(pool.submit(_render_batch, j))
            while len(pending) >= 2 * workers:  # bounded read-ahead; results in order
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
