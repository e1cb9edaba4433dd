"""Time geometry of the trace rows, checked against the layout, and the digitiser's confidence (issue 14).

Where t = 0 lies differs between printers: ours leaves 2.5 mm of flat line after the calibration pulse,
ecg-image-kit starts the trace at the pulse's falling edge, other printers draw no pulse at all. So t = 0 is
not taken from one convention: each row's trace end (its last point near the baseline) minus the length the
layout says a row has gives an estimate, snapped to a pulse-based candidate (falling edge, or 2.5 mm after
it) when one lies within 1.5 mm; rows then agree on their median (rows of a layout start together). The
seconds a row shows are the signal's duration or a half, quarter or eighth of it (printers halve the time
when a row does not fit), whichever the measured trace length is nearest; a length off by more than 10 %, or
a row whose origin is off the others' by more than 2 mm, is flagged.
"""

from __future__ import annotations

import math

import numpy as np

from ecgalign.render.layout import CAL_LEAD_MM

SNAP_MM, AGREE_MM, NEAR_BASELINE_MM = 1.5, 2.0, 5.0
OK_LEAD, OK_RECORD, FAILED_RECORD = 0.6, 0.8, 0.3


def _extent(row, px_per_mm_v: float) -> tuple[float, float] | None:
    """(start, end) u of a row's trace without its pulse: the pulse's falling edge (or the curve's first
    point near the baseline) and the centre of its last point (text and frames are masked by then, and a
    record may end far from its baseline: PTB-XL has records whose last 0.1 s jumps by millivolts)."""
    near = np.abs(row.v - row.baseline) < NEAR_BASELINE_MM * px_per_mm_v
    if not near.any():
        return None
    start = row.pulse.fall_u if row.pulse is not None else float(row.u[near][0])
    end = float(row.u[-1] - (row.line_px - 1) / 2)
    return (start, end) if end > start else None


def time_origins(
    rows: list, seconds: float, fs: float, speed: float, px_per_mm_u: float, px_per_mm_v: float, flags: list[str]
) -> float:
    """Set ``row.x0`` (u of t = 0) of every row; return the seconds a row shows. Problems go to ``flags``."""
    px_per_s = speed * px_per_mm_u
    ext = [_extent(row, px_per_mm_v) for row in rows]
    spans = [e - s for s, e in (x for x in ext if x is not None)]
    if not spans:
        flags.append("no row has a trace near its baseline: t = 0 at the left edge")
        for row in rows:
            row.x0 = 0.0
        return seconds
    measured = max(float(np.median(spans)) / px_per_s, 1e-3)
    row_seconds = min((seconds / 2**k for k in range(4)), key=lambda s: abs(math.log(measured / s)))
    length = (row_seconds - 1 / fs) * px_per_s
    if abs(measured / row_seconds - 1) > 0.1:
        flags.append(f"rows span {measured:.2f} s of trace; the layout expects {row_seconds:g} s")
    own = []
    for row, e in zip(rows, ext):
        if e is None:
            own.append(None)
            continue
        by_end = e[1] - length
        x0 = by_end
        if row.pulse is not None:
            cands = (row.pulse.fall_u, row.pulse.fall_u + CAL_LEAD_MM * px_per_mm_u)
            best = min(cands, key=lambda c: abs(c - by_end))
            if abs(best - by_end) <= SNAP_MM * px_per_mm_u:
                x0 = best
        own.append(x0)
    found = np.array([x for x in own if x is not None])
    agree = np.abs(found[:, None] - found[None, :]) <= AGREE_MM * px_per_mm_u  # the largest group that agrees
    consensus = float(np.median(found[agree[int(np.argmax(agree.sum(axis=1)))]]))
    off = []
    for r, (row, x0) in enumerate(zip(rows, own)):
        if x0 is None or abs(x0 - consensus) > AGREE_MM * px_per_mm_u:
            off.append(r + 1)
            x0 = consensus
        row.x0 = x0
    if off:
        flags.append(f"row(s) {', '.join(map(str, off))}: trace start/end off the other rows by more than "
                     f"{AGREE_MM:g} mm; their t = 0 follows the others")
    return row_seconds


def window_continuity(path, u0: float, u1: float, px_per_mm: float) -> float:
    """Fraction of the path's neighbouring-column steps within [u0, u1] that stay connected (< 1 mm apart)."""
    sel = (path.x >= u0) & (path.x <= u1)
    x, top, bottom = path.x[sel], path.top[sel], path.bottom[sel]
    if x.size < 2:
        return 0.0
    adj = np.diff(x) <= 1.0
    if not adj.any():
        return 0.0
    gap = np.maximum(top[1:] - bottom[:-1], top[:-1] - bottom[1:])
    return float(np.mean(gap[adj] <= px_per_mm))


def judge(lead_confidence: dict[str, float], flags: list[str]) -> tuple[str, float]:
    """("ok" | "suspect" | "failed", mean lead confidence). Failed: mean below 0.3 or half the shown leads
    unreadable (below 0.3); suspect: any flag, a lead below 0.6 or a mean below 0.8 (the reason is flagged)."""
    if not lead_confidence:
        return "failed", 0.0
    vals = np.array(list(lead_confidence.values()))
    mean = round(float(vals.mean()), 3)
    weak = sorted(k for k, c in lead_confidence.items() if c < OK_LEAD)
    if mean < FAILED_RECORD or (vals < FAILED_RECORD).sum() * 2 >= vals.size:
        flags.append(f"mean lead confidence {mean:.2f}; unreadable: {', '.join(weak)}")
        return "failed", mean
    if weak:
        flags.append(f"low confidence in lead(s) {', '.join(weak)}")
    elif mean < OK_RECORD:
        flags.append(f"mean lead confidence {mean:.2f} < {OK_RECORD}")
    return ("suspect" if flags else "ok"), mean
