"""What in the ink mask is not trace: page frames and rules, dark fill at the border, and text (issue 14).

Works on the connected components (8-connected) of the row-sheared ink mask, in which the printout's lines
are axis-aligned again:

* rules and frames: pixels in straight horizontal or vertical runs of ink across 60 % of the page, or at least
  30 mm long within 4 % of the border (a page frame, even when it closes around the whole page and touches a
  trace; a flat stretch of trace is neither), then components at most 0.6 mm (>= 3 px) thick and at least
  20 mm long along x or y that touch the border or cross 60 % of the page (a slightly tilted frame or rule);
* border fill: components touching the image border that fill much of their box (scanner or rotation fill,
  the corner wedges of a rotated photo) or that are thin lines along it (ecg-image-kit's 1-px page frame);
* text: components smaller than 10 mm both ways that are not linked to a long component (>= 10 mm along x: a
  stretch of trace) by a chain of components less than about 1 mm apart, and whose chain spans less than
  25 mm (longer than a word of printed text), so that a trace broken into pieces (thin strokes at 100 dpi)
  stays whole. Lead labels printed against the trace stay; the trace path's gap cost ignores them.

If no long component exists (a trace broken everywhere), text is not removed and a note says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RUN_MIN_MM, RULE_MIN_MM, RULE_MAX_THICK_MM = 30.0, 20.0, 0.6
EDGE_FRACTION, PAGE_RULE_FRACTION = 0.04, 0.6
SMALL_MM, NEAR_MM, GROUP_MM = 10.0, 1.0, 25.0
LINE_MAX_MM = 1.5
BASELINE_BAND_MM = 1.5


@dataclass
class MaskReport:
    """How many components (and pixels) each rule removed."""

    line_px: int = 0  # pixels of long straight runs
    rules: int = 0
    border: int = 0
    text: int = 0
    removed_px: int = 0
    notes: list[str] = field(default_factory=list)


def line_ink(ink: np.ndarray, px_per_mm: float) -> np.ndarray:
    """Darkness of thin lines only: ``ink`` less its grey opening over LINE_MAX_MM squares (white top-hat), which
    keeps traces, text and thin rules and drops wider dark shading (creases, shadows, fill)."""
    from scipy import ndimage

    k = max(5, int(round(LINE_MAX_MM * px_per_mm)) | 1)
    return ink - ndimage.grey_opening(ink, size=(k, k))


def split_lines(ink: np.ndarray, strong: np.ndarray, threshold: float) -> np.ndarray:
    """``strong`` plus pairs of neighbouring pixels (along x or y), neither next to a strong pixel, each darker
    than half the ``threshold`` and together darker than 1.6 x it: a 1-px line anti-aliased across two rows or
    columns (each half as dark) is kept whole, while a strong line's fringe and faint grid lines are not added."""
    from scipy import ndimage

    out = strong.copy()
    weak = (ink > 0.5 * threshold) & ~(ndimage.maximum_filter(strong.view(np.uint8), size=3) > 0)
    for axis in (0, 1):
        n = ink.shape[axis]
        lo, hi = [slice(None)] * 2, [slice(None)] * 2
        lo[axis], hi[axis] = slice(0, n - 1), slice(1, n)
        lo, hi = tuple(lo), tuple(hi)
        pair = weak[lo] & weak[hi] & (ink[lo] + ink[hi] > 1.6 * threshold)
        out[lo] |= pair
        out[hi] |= pair
    return out


def hysteresis(ink: np.ndarray, strong: np.ndarray, low: float) -> np.ndarray:
    """Pixels darker than ``low`` in components (8-connected) that hold a ``strong`` pixel."""
    from scipy import ndimage

    lab, n = ndimage.label((ink > low) | strong, structure=np.ones((3, 3), dtype=bool))
    hit = np.bincount(lab[strong], minlength=n + 1) > 0
    hit[0] = False
    return hit[lab]


def long_runs(mask: np.ndarray, min_len: int) -> np.ndarray:
    """Pixels of ``mask`` in runs of at least ``min_len`` along axis 1 (rows)."""
    h, w = mask.shape
    d = np.diff(np.pad(mask, ((0, 0), (1, 1))).view(np.int8), axis=1)
    ys, starts = np.nonzero(d == 1)
    _, stops = np.nonzero(d == -1)
    keep = stops - starts >= min_len
    out = np.zeros((h, w + 1), dtype=np.int8)
    np.add.at(out, (ys[keep], starts[keep]), 1)
    np.add.at(out, (ys[keep], stops[keep]), -1)
    return np.cumsum(out, axis=1)[:, :w] > 0


def clean_mask(
    mask: np.ndarray, px_per_mm: float, baselines: np.ndarray | None = None, shear=None
) -> tuple[np.ndarray, MaskReport]:
    """(H, W) bool ink mask -> the same with frames, rules, border fill and text removed, and a report.
    ``baselines`` (v of the trace rows, in the page frame of ``shear``): a small component that crosses a
    baseline +- 1.5 mm is trace (a stretch cut off by a gap: the end of a row after its last beat), never text."""
    from scipy import ndimage

    h, w = mask.shape
    report = MaskReport()
    # straight runs across most of the page anywhere, or 30 mm long near the border (a frame); a flat stretch
    # of trace (a clean synthetic baseline, a lead that is off) is neither
    run = max(8, int(RUN_MIN_MM * px_per_mm))
    edge = np.zeros_like(mask)
    by, bx = max(2, int(EDGE_FRACTION * h)), max(2, int(EDGE_FRACTION * w))
    edge[:by], edge[-by:], edge[:, :bx], edge[:, -bx:] = True, True, True, True
    lines = (long_runs(mask, run) & edge) | long_runs(mask, int(PAGE_RULE_FRACTION * w))
    lines |= (long_runs(mask.T, run).T & edge) | long_runs(mask.T, int(PAGE_RULE_FRACTION * h)).T
    if lines.any():
        report.line_px = int(lines.sum())
        mask = mask & ~lines
    lab, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return mask, report
    objs = ndimage.find_objects(lab)
    area = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    y0 = np.array([o[0].start for o in objs])
    y1 = np.array([o[0].stop for o in objs])
    x0 = np.array([o[1].start for o in objs])
    x1 = np.array([o[1].stop for o in objs])
    bh, bw = y1 - y0, x1 - x0
    thick = max(3.0, RULE_MAX_THICK_MM * px_per_mm)
    long_ = RULE_MIN_MM * px_per_mm
    at_border = (y0 == 0) | (x0 == 0) | (y1 == h) | (x1 == w)
    rule = (((bh <= thick) & (bw >= long_)) & (at_border | (bw >= PAGE_RULE_FRACTION * w))) | (
        ((bw <= thick) & (bh >= long_)) & (at_border | (bh >= PAGE_RULE_FRACTION * h))
    )
    fill = area / np.maximum(bh * bw, 1)
    border = at_border & ~rule & (((fill > 0.3) & (area > (2 * px_per_mm) ** 2)) | (bh <= thick) | (bw <= thick))
    drop = rule | border
    small = (bw < SMALL_MM * px_per_mm) & (bh < SMALL_MM * px_per_mm) & ~drop
    anchor = ~drop & ~small & (bw >= SMALL_MM * px_per_mm)
    text = np.zeros(n, dtype=bool)
    if anchor.any() and small.any():
        # components closer than about 2 x NEAR_MM merge in the dilated mask: a group holding a stretch of
        # trace keeps all its fragments (a trace broken at thin strokes stays whole)
        r = max(1, int(round(NEAR_MM * px_per_mm / 2)))
        near = ndimage.maximum_filter(mask.view(np.uint8), size=2 * r + 1) > 0
        groups, _ = ndimage.label(near, structure=np.ones((3, 3), dtype=bool))
        first = np.array([groups[o[0].start, o[1].start:o[1].stop][lab[o[0].start, o[1].start:o[1].stop] == i + 1][0]
                          for i, o in enumerate(objs)])
        kept_groups = np.zeros(groups.max() + 1, dtype=bool)
        kept_groups[first[anchor]] = True
        spans = ndimage.find_objects(groups)  # a group spanning more than a line of text is trace too
        kept_groups[1:] |= np.array([o is not None and o[1].stop - o[1].start >= GROUP_MM * px_per_mm for o in spans])
        text = small & ~kept_groups[first]
        if baselines is not None and len(baselines) and text.any():
            xc = (x0 + x1 - 1) / 2.0
            v_top, v_bot = shear.v_of(xc, y0.astype(float)), shear.v_of(xc, (y1 - 1).astype(float))
            band = BASELINE_BAND_MM * px_per_mm
            b = np.asarray(baselines, dtype=float)[None, :]
            crosses = ((v_top[:, None] <= b + band) & (v_bot[:, None] >= b - band)).any(axis=1)
            text &= ~crosses
    drop |= text
    report.rules, report.border, report.text = int(rule.sum()), int(border.sum()), int(text.sum())
    report.removed_px = report.line_px + int(area[drop].sum())
    if not drop.any():
        return mask, report
    return mask & ~np.concatenate([[False], drop])[lab], report
