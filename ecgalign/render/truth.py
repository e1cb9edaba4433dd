"""Ground truth of a rendered printout: the data class and its JSON form (no rendering code here, so that the
renderer can build it and io can write it without importing each other)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields

import numpy as np

FORMAT = "ecgalign.render/1"
TRACE_KEYS = ("trace_x_px", "trace_y_px")


def json_floats(values, decimals: int | None = None) -> list | float | None:
    """A float array as a JSON-ready list: NaN -> None, optionally rounded."""
    arr = np.asarray(values, dtype=np.float64)
    if decimals is not None:
        arr = np.round(arr, decimals)
    out = arr.tolist()
    if arr.ndim == 0:
        return None if math.isnan(out) else out
    return _nan_to_none(out)


def _nan_to_none(x):
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    return None if isinstance(x, float) and math.isnan(x) else x


def _trace_list(values, decimals: int | None) -> list:
    """A 1-D float array as a JSON-ready list (NaN -> None), rounded as an array."""
    arr = np.asarray(values, dtype=np.float64)
    if decimals is not None:
        arr = np.round(arr, decimals)
    out = arr.tolist()
    for i in np.flatnonzero(np.isnan(arr)).tolist():
        out[i] = None
    return out


@dataclass(eq=False)
class GroundTruth:
    """Everything needed to map an image back to its signal (one image; JSON-serialisable).

    ``panels``: one entry per drawn lead segment (lead II twice in 3x4+II): lead, row, col (-1: rhythm strip),
    time window (t_start_s, t_end_s; samples [sample_start, sample_stop)), missing, page geometry
    (x0/x1/baseline in page px), image-space ``bbox_px`` [x0, y0, x1, y1] of the drawn trace, ``cell_px``
    (4 corners of the allotted panel), ``label_bbox_px``, and ``trace_x_px`` / ``trace_y_px``: the image
    pixel of every sample in the window, float64 arrays in memory (NaN where the signal is NaN; null in the
    JSON). ``page_to_image``: 3x3 homography.
    """

    width: int
    height: int
    layout: dict
    page_to_image: list
    seed: int
    augment: dict
    panels: list
    format: str = FORMAT

    def to_dict(self) -> dict:
        return json.loads(self.to_json())

    def to_json(self, decimals: int | None = None, indent: int | None = None) -> str:
        """JSON text; ``decimals`` rounds the per-sample traces (2: 1/100 px; None round-trips exactly).

        Built from NumPy: each trace is rounded as an array and listed in one call (NaN -> null only where
        present), the rest shallow-copied; no ``dataclasses.asdict`` deep copy of ~40k Python floats."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["panels"] = [
            {**p, **{key: _trace_list(p[key], decimals) for key in TRACE_KEYS}} for p in self.panels
        ]
        separators = None if indent is not None else (",", ":")
        return json.dumps(d, indent=indent, allow_nan=False, separators=separators)

    @classmethod
    def from_json(cls, text: str) -> GroundTruth:
        """Parse ``to_json`` output (every ecgalign.render/1 sidecar, written before or after traces were kept
        as arrays: the text format did not change)."""
        d = json.loads(text)
        if d.get("format") != FORMAT:
            raise ValueError(f"not an {FORMAT} ground-truth file (format={d.get('format')!r})")
        names = {f.name for f in fields(cls)}
        for p in d.get("panels", []):
            for key in TRACE_KEYS:
                p[key] = np.array([np.nan if v is None else v for v in p[key]], dtype=np.float64)
        return cls(**{k: v for k, v in d.items() if k in names})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GroundTruth) and self.to_json() == other.to_json()

    def panel(self, lead: str, rhythm: bool = False) -> dict:
        for p in self.panels:
            if p["lead"] == lead and p["rhythm"] == rhythm:
                return p
        raise KeyError(f"no {'rhythm strip' if rhythm else 'panel'} for lead {lead!r}")
