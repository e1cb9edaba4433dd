"""Printout layouts: where every lead segment, label, calibration pulse and separator goes on the page.

A layout is a grid of lead panels (rows x columns; each column shows the next time window, as on a clinical
12-lead printout: in 3x4 the column of I/II/III shows 0-2.5 s, aVR/aVL/aVF 2.5-5 s, ...) plus optional
full-width rhythm strips. ``compute_page`` turns a layout name, the page size and the recording settings
(paper speed, gain) into page geometry in pixels. Pixel coordinates: x right, y down, the centre of pixel
(i, j) at (x=j, y=i); the page is the un-augmented image (augmentations map it by a homography).

ECG-Scan (seeds/000, appendix B.2) renders "a standard clinical layout in which the six limb leads and six
precordial leads are arranged in a grid, with lead II additionally displayed as a continuous rhythm strip
(at 10 seconds, other leads as 2.5 seconds)", 25 mm/s, 10 mm/mV: the default here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ecgalign.data.record import LEADS_12

LETTER_WIDTH_IN = 11.0  # US Letter landscape, as ecg-image-kit prints

# name -> (grid of lead names: rows of columns, rhythm-strip leads)
LAYOUTS: dict[str, tuple[tuple[tuple[str, ...], ...], tuple[str, ...]]] = {
    "3x4+II": ((("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6")), ("II",)),
    "3x4": ((("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6")), ()),
    "6x2": (
        (("I", "V1"), ("II", "V2"), ("III", "V3"), ("aVR", "V4"), ("aVL", "V5"), ("aVF", "V6")),
        (),
    ),
    "12x1": (tuple((lead,) for lead in LEADS_12), ()),
}

# Page furniture in millimetres (clinical printouts and ecg-image-kit use similar margins).
HEADER_MM = 12.0  # band at the top for the header text
FOOTER_MM = 6.0  # band at the bottom for the speed / gain legend
CAL_PULSE_S = 0.2  # the 1 mV calibration pulse lasts 200 ms
CAL_LEAD_MM = 2.5  # flat line before and after the pulse
BASELINE_FRACTION = 0.6  # baseline this far down its row (R waves need more room than S waves)
SEPARATOR_MM = 5.0  # height of the tick between two columns
LABEL_OFFSET_MM = (1.0, 9.0)  # label top-left: right of the panel start, above the baseline
LABEL_BELOW_MM = 2.5  # label top when printed under the baseline (as ecg-image-kit does)
PULSE_STYLES = ("lead-in", "flush")


def list_layouts() -> list[str]:
    return list(LAYOUTS)


def check_layout(name: str) -> None:
    if name not in LAYOUTS:
        raise ValueError(f"unknown layout {name!r}; expected one of {', '.join(LAYOUTS)}")


@dataclass(frozen=True)
class Panel:
    """One lead segment on the page (page pixels; samples [sample_start, sample_stop) of the signal)."""

    lead: str
    lead_index: int  # index into LEADS_12 (and into the signal's lead axis)
    row: int
    col: int  # -1 for a rhythm strip
    t_start: float  # seconds
    t_end: float
    sample_start: int
    sample_stop: int
    x0: float  # page x of t_start
    x1: float  # page x of t_end
    baseline_y: float
    cell: tuple[float, float, float, float]  # (x0, y0, x1, y1) allotted to this panel
    label_xy: tuple[float, float]  # top-left of the lead label

    @property
    def rhythm(self) -> bool:
        return self.col < 0


@dataclass(frozen=True)
class Page:
    """Page geometry for one layout, page size and recording settings (all lengths in page pixels)."""

    layout: str
    width: int
    height: int
    dpi: float
    px_per_mm: float
    speed: float  # mm/s
    gain: float  # mm/mV
    fs: float
    n_samples: int
    row_seconds: float  # seconds shown per row (less than the signal when it does not fit at this speed)
    grid_origin: tuple[float, float]  # a major-line intersection; all lines at origin + k mm
    rows: int
    cols: int
    row_pitch: float
    panels: tuple[Panel, ...]
    baselines: tuple[float, ...]  # one per row (rhythm strips included)
    trace_x0: float  # page x of t = 0 in every row
    cal_x0: float  # page x where each row's calibration pulse segment starts

    def x_of_sample(self, sample: float) -> float:
        return self.trace_x0 + sample / self.fs * self.speed * self.px_per_mm

    def calibration_polylines(self, style: str = "lead-in") -> list[list[tuple[float, float]]]:
        """The 1 mV x 200 ms pulse at the start of every row. "lead-in": flat, up gain mm, flat 0.2 s, down,
        flat (ours); "flush": up, flat 0.2 s, down right where the trace starts (as ecg-image-kit draws it)."""
        mm, up = self.px_per_mm, self.gain * self.px_per_mm
        lead, width = CAL_LEAD_MM * mm, CAL_PULSE_S * self.speed * mm
        if style not in PULSE_STYLES:
            raise ValueError(f"pulse style must be one of {', '.join(PULSE_STYLES)}, got {style!r}")
        out = []
        for y in self.baselines:
            if style == "flush":
                x = self.trace_x0 - width
                out.append([(x, y), (x, y - up), (x + width, y - up), (x + width, y)])
                continue
            x = self.cal_x0
            out.append(
                [
                    (x, y),
                    (x + lead, y),
                    (x + lead, y - up),
                    (x + lead + width, y - up),
                    (x + lead + width, y),
                    (x + 2 * lead + width, y),
                ]
            )
        return out

    def separator_segments(self) -> list[list[tuple[float, float]]]:
        """Short vertical ticks at the boundary between two columns, centred on the row baseline."""
        half = SEPARATOR_MM / 2 * self.px_per_mm
        return [[(p.x0, p.baseline_y - half), (p.x0, p.baseline_y + half)] for p in self.panels if p.col > 0]

    def to_dict(self) -> dict:
        return {
            "layout": self.layout,
            "width": self.width,
            "height": self.height,
            "dpi": self.dpi,
            "px_per_mm": self.px_per_mm,
            "speed_mm_per_s": self.speed,
            "gain_mm_per_mv": self.gain,
            "fs": self.fs,
            "n_samples": self.n_samples,
            "row_seconds": self.row_seconds,
            "grid_origin_px": list(self.grid_origin),
            "grid_minor_mm": 1.0,
            "grid_major_mm": 5.0,
            "rows": self.rows,
            "cols": self.cols,
            "row_pitch_px": self.row_pitch,
            "baselines_px": list(self.baselines),
            "trace_x0_px": self.trace_x0,
        }


def resolve_dpi(width: int, dpi: float | None) -> float:
    """Default: the page is US Letter wide (11 in), so 2200 px -> 200 dpi and 448 px -> 40.7 dpi."""
    return float(dpi) if dpi is not None else width / LETTER_WIDTH_IN


def compute_page(
    layout: str,
    width: int,
    height: int,
    dpi: float | None,
    speed: float,
    gain: float,
    fs: float,
    n_samples: int,
    label_below: bool = False,
    row_pitch_mm: float | None = None,
    rows_top_mm: float | None = None,
) -> Page:
    """Geometry of ``layout`` on a ``width`` x ``height`` px page (``label_below``: lead labels under the
    baseline instead of above it).

    By default the rows share the height between the header and footer bands evenly and the block is centred
    there. Other printers stack their rows closer or lower on the page (ecg-image-kit: ~35 mm pitch in the
    lower 60 % of a Letter page): ``row_pitch_mm`` sets the row pitch and ``rows_top_mm`` the top of the first
    row, both from the page's top edge; the rows must fit above the footer band.

    Each row shows ``n_samples / fs`` seconds split evenly over the columns; when that does not fit the page
    width at ``speed`` (e.g. 10 s at 50 mm/s = 500 mm), the shown duration is halved until it does (a 3x4
    printout at 50 mm/s shows 4 x 1.25 s), as printers do. Baselines sit on whole millimetres from the grid
    origin, so the grid and the traces share one calibration.
    """
    check_layout(layout)
    if width < 16 or height < 16:
        raise ValueError(f"image size must be at least 16 x 16 px, got {width} x {height}")
    if not (speed > 0 and gain > 0 and fs > 0):
        raise ValueError(f"speed, gain and fs must be positive, got speed={speed}, gain={gain}, fs={fs}")
    dpi = resolve_dpi(width, dpi)
    mm = dpi / 25.4
    page_w, page_h = width / mm, height / mm
    grid, strips = LAYOUTS[layout]
    n_rows, n_cols = len(grid) + len(strips), len(grid[0])
    cal_w = 2 * CAL_LEAD_MM + CAL_PULSE_S * speed
    seconds = n_samples / fs
    while seconds * speed + cal_w > page_w - 4.0 and seconds * fs > 2 * n_cols:
        seconds /= 2
    left = max(0.0, math.floor((page_w - seconds * speed - cal_w) / 2))
    usable = page_h - HEADER_MM - FOOTER_MM
    if row_pitch_mm is not None and not row_pitch_mm > 0:
        raise ValueError(f"row_pitch_mm must be positive, got {row_pitch_mm}")
    if rows_top_mm is not None and not rows_top_mm >= 0:
        raise ValueError(f"rows_top_mm must be >= 0, got {rows_top_mm}")
    pitch = float(row_pitch_mm) if row_pitch_mm is not None else max(1.0, math.floor(usable / n_rows))
    if rows_top_mm is not None:
        top = float(rows_top_mm)
    else:
        top = HEADER_MM + max(0.0, math.floor((usable - pitch * n_rows) / 2))
    if (row_pitch_mm is not None or rows_top_mm is not None) and top + pitch * n_rows > page_h - FOOTER_MM + 1e-6:
        raise ValueError(
            f"{n_rows} rows of {pitch:g} mm from {top:g} mm do not fit a {page_h:.1f} mm page above its "
            f"{FOOTER_MM:g} mm footer; lower row_pitch_mm or rows_top_mm"
        )
    baselines_mm = [top + round(pitch * (r + BASELINE_FRACTION)) for r in range(n_rows)]
    trace_x0 = (left + cal_w) * mm
    col_s = seconds / n_cols
    panels = []
    for r in range(n_rows):
        is_strip = r >= len(grid)
        leads = (strips[r - len(grid)],) if is_strip else grid[r]
        for c, lead in enumerate(leads):
            t0, t1 = (0.0, seconds) if is_strip else (c * col_s, (c + 1) * col_s)
            x0, x1 = trace_x0 + t0 * speed * mm, trace_x0 + t1 * speed * mm
            y = baselines_mm[r] * mm
            cell = (x0, (top + r * pitch) * mm, x1, (top + (r + 1) * pitch) * mm)
            panels.append(
                Panel(
                    lead=lead,
                    lead_index=LEADS_12.index(lead),
                    row=r,
                    col=-1 if is_strip else c,
                    t_start=t0,
                    t_end=t1,
                    sample_start=round(t0 * fs),
                    sample_stop=min(n_samples, round(t1 * fs)),
                    x0=x0,
                    x1=x1,
                    baseline_y=y,
                    cell=cell,
                    label_xy=(x0 + LABEL_OFFSET_MM[0] * mm, y + (LABEL_BELOW_MM if label_below else -LABEL_OFFSET_MM[1]) * mm),
                )
            )
    return Page(
        layout=layout,
        width=int(width),
        height=int(height),
        dpi=dpi,
        px_per_mm=mm,
        speed=float(speed),
        gain=float(gain),
        fs=float(fs),
        n_samples=int(n_samples),
        row_seconds=seconds,
        grid_origin=(left * mm, top * mm),
        rows=n_rows,
        cols=n_cols,
        row_pitch=pitch * mm,
        panels=tuple(panels),
        baselines=tuple(b * mm for b in baselines_mm),
        trace_x0=trace_x0,
        cal_x0=left * mm,
    )
