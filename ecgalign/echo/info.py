"""``echo_info``: what a folder of echo DICOMs holds, from headers only (no pixel decoding)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ecgalign.echo import layout
from ecgalign.echo.dicom import MAX_FRAMES, Exclusion, probe


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    a = np.asarray(values, dtype=float)
    return {"min": float(a.min()), "median": float(np.median(a)), "max": float(a.max())}


def echo_info(root: str | Path, max_frames: int = MAX_FRAMES) -> dict[str, Any]:
    """Files, kept / excluded by reason, patients, studies, frame counts, frame rates, frame sizes and bytes."""
    files = layout.scan(root)
    kept, excluded = [], []
    for path in files.path:
        got = probe(path, max_frames)
        (excluded if isinstance(got, Exclusion) else kept).append(got)
    kept_paths = {h.path for h in kept}
    kept_rows = files[files.path.isin(kept_paths)]
    sizes = Counter(f"{h.rows}x{h.cols}" for h in kept)
    return {
        "path": str(root), "files": len(files), "kept": len(kept), "excluded": len(excluded),
        "excluded_by_reason": dict(Counter(e.reason for e in excluded)),
        "patients": int(kept_rows.subject_id[kept_rows.subject_id >= 0].nunique()),
        "studies": int(kept_rows.study_id[kept_rows.study_id >= 0].nunique()),
        "frames": _stats([h.n_frames for h in kept]), "fps": _stats([h.fps for h in kept]),
        "frame_sizes": dict(sizes), "photometric": dict(Counter(h.photometric for h in kept)),
        "bytes": int(sum(h.size_bytes for h in kept)),
        "excluded_examples": [{"path": e.path, "reason": e.reason, "detail": e.detail} for e in excluded[:10]],
    }
