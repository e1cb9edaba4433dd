"""The classic digitiser pipeline (image -> 12-lead signal in mV) and its WFDB output."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ecgalign.data.record import LEADS_12
from ecgalign.render.digitize import image as im
from ecgalign.render.digitize import trace as tr
from ecgalign.render.layout import CAL_LEAD_MM, CAL_PULSE_S, LAYOUTS, LETTER_WIDTH_IN, check_layout

STANDARD_GAINS = (2.5, 5.0, 10.0, 20.0, 40.0)  # mm/mV
WFDB_ADC_GAIN = 1000.0  # digital units per mV (1 uV steps, +-32.767 mV in format 16), as PTB-XL


@dataclass(frozen=True)
class PanelWindow:
    """Where a layout shows a lead: grid row (strips after the grid rows), column (-1: strip), seconds."""

    lead: str
    row: int
    col: int
    t_start: float
    t_end: float
    sample_start: int
    sample_stop: int


def layout_windows(layout: str, fs: float, n_samples: int, row_seconds: float | None = None) -> list[PanelWindow]:
    """The panels of ``layout`` (ecgalign.render.layout.LAYOUTS) and the samples each shows: every row shows
    ``row_seconds`` (default the whole signal) split evenly over its columns; strips show the whole row."""
    check_layout(layout)
    grid, strips = LAYOUTS[layout]
    seconds = n_samples / fs if row_seconds is None else row_seconds
    col_s = seconds / len(grid[0])
    out = []
    for r, leads in enumerate(list(grid) + [(s,) for s in strips]):
        strip = r >= len(grid)
        for c, lead in enumerate(leads):
            t0, t1 = (0.0, seconds) if strip else (c * col_s, (c + 1) * col_s)
            out.append(PanelWindow(lead, r, -1 if strip else c, t0, t1, round(t0 * fs), min(n_samples, round(t1 * fs))))
    return out


def shown_mask(layout: str, fs: float = 500.0, seconds: float = 10.0, row_seconds: float | None = None) -> np.ndarray:
    """(12, T) bool in LEADS_12 order: the samples a printout in ``layout`` shows (the rest is NaN in a
    digitised signal and not scored)."""
    n = round(seconds * fs)
    mask = np.zeros((12, n), dtype=bool)
    for p in layout_windows(layout, fs, n, row_seconds):
        mask[LEADS_12.index(p.lead), p.sample_start : p.sample_stop] = True
    return mask


@dataclass
class Digitized:
    """A digitised printout: ``signal`` (12, T) float32 mV in LEADS_12 order, NaN where the layout does not
    show a lead (or it could not be read), and what the digitiser measured on the way."""

    signal: np.ndarray
    fs: float
    layout: str
    px_per_mm: tuple[float, float]  # along x (time) and y (voltage)
    calibration: str  # "grid", "pulse" or "page width" (US Letter assumed)
    rotation_deg: float
    speed: float  # mm/s
    gain: float  # mm/mV used
    pulse_gain: float | None  # mm/mV the calibration pulses measure (median over rows), if found
    row_seconds: float
    baselines_px: list[float]  # v of 0 mV per row (page frame: image y with the tilt sheared out)
    trace_x0_px: list[float]  # u of t = 0 per row (page frame)
    pulses_found: int
    notes: list[str] = field(default_factory=list)
    leads: tuple[str, ...] = LEADS_12

    def summary(self) -> dict:
        d = asdict(self)
        d.pop("signal")
        d["shown_samples"] = {lead: int(np.isfinite(self.signal[k]).sum()) for k, lead in enumerate(self.leads)}
        return d

    def to_wfdb(self, record: str | Path, comments: list[str] | None = None) -> Path:
        """Write ``record``.hea / .dat (WFDB format 16, 1000 units/mV, 12 leads in mV; NaN samples are
        written as WFDB's invalid-sample value and read back as NaN). Returns the header path."""
        return write_wfdb(self.signal, self.fs, record, comments=comments)


def write_wfdb(signal: np.ndarray, fs: float, record: str | Path, comments: list[str] | None = None) -> Path:
    """(12, T) mV in LEADS_12 order -> WFDB record (see Digitized.to_wfdb); values clipped to +-32.767 mV."""
    import wfdb

    record = Path(record)
    sig = np.asarray(signal, dtype=np.float64)
    if sig.shape[0] != len(LEADS_12):
        raise ValueError(f"expected (12, T) in {', '.join(LEADS_12)} order, got {sig.shape}")
    limit = 32767 / WFDB_ADC_GAIN
    sig = np.where(np.isfinite(sig), np.clip(sig, -limit, limit), np.nan)
    record.parent.mkdir(parents=True, exist_ok=True)
    # written into a scratch folder beside the target, then moved: a reader never sees half a record
    scratch = Path(tempfile.mkdtemp(prefix=f".{record.name}.", dir=record.parent))
    try:
        _wrsamp(wfdb, sig, fs, record.name, comments, scratch)
        for suffix in (".dat", ".hea"):  # the header last: its presence means the record is complete
            os.replace(scratch / f"{record.name}{suffix}", record.parent / f"{record.name}{suffix}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return record.parent / f"{record.name}.hea"


def _wrsamp(wfdb, sig: np.ndarray, fs: float, name: str, comments, folder: Path) -> None:
    wfdb.wrsamp(
        name,
        fs=float(fs),
        units=["mV"] * 12,
        sig_name=list(LEADS_12),
        p_signal=sig.T,
        fmt=["16"] * 12,
        adc_gain=[WFDB_ADC_GAIN] * 12,
        baseline=[0] * 12,
        comments=list(comments or []),
        write_dir=str(folder),
    )


def _standard_gain(mm_per_mv: float) -> float:
    best = min(STANDARD_GAINS, key=lambda g: abs(math.log(mm_per_mv / g)))
    return best if abs(mm_per_mv / best - 1) < 0.15 else mm_per_mv


@dataclass
class _Row:
    """One trace row: its baseline (v), the curve of its path in the page frame (u increasing), trace width."""

    baseline: float
    u: np.ndarray
    v: np.ndarray
    line_px: float
    pulse: tr.Pulse | None
    x0: float | None = None


def digitize(
    image,
    layout: str = "3x4+II",
    *,
    fs: float = 500.0,
    seconds: float = 10.0,
    speed: float = 25.0,
    gain: float | None = 10.0,
    max_rotation_deg: float = im.MAX_ROTATION_DEG,
    name: str | None = None,
) -> Digitized:
    """Digitise one printout image (path, PIL image, (H, W[, 3]) array or (3, H, W) tensor) in a known
    ``layout`` (see ecgalign.render.layout.LAYOUTS) printed at ``speed`` mm/s and ``gain`` mm/mV (None: read
    the gain from the calibration pulses). Returns ``seconds`` x ``fs`` samples per lead (10 s at 500 Hz by
    default); a lead is NaN outside the time window(s) the layout shows it in. Raises DigitizeError for an
    unreadable file or an image without a detectable ECG."""
    check_layout(layout)
    if not (fs > 0 and seconds > 0 and speed > 0 and (gain is None or gain > 0)):
        raise ValueError(f"fs, seconds, speed and gain must be positive, got {fs}, {seconds}, {speed}, {gain}")
    label = name or (str(image) if isinstance(image, (str, Path)) else "image")
    rgb = im.load_image(image, name=label)
    h, w = rgb.shape[:2]
    maps = im.darkness_maps(rgb)
    del rgb
    notes: list[str] = []
    angle = im.estimate_rotation(maps.grid, max_rotation_deg)
    shear = im.Shear.of((h, w), angle)
    fit_x, fit_y = im.grid_scale(maps, shear)
    ink = maps.ink
    if fit_x or fit_y:  # what is left of the grid in the ink map (all of a black-and-white one): divide it out
        ink = im.remove_grid(ink, shear)
    del maps
    ink = shear.shear_rows(ink)  # columns are now lines of constant time
    level = float(np.percentile(ink[::2, ::2], 99.9))
    if level < 0.2:
        raise im.DigitizeError(f"{label}: no ECG trace found (no dark ink on the page)")
    mask = ink > float(np.clip(0.5 * level, 0.25, 0.6))

    if fit_x and fit_y:
        ppm_x, ppm_y, calibration = fit_x.px_per_mm, fit_y.px_per_mm, "grid"
    elif fit_x or fit_y:
        fit = fit_x or fit_y
        ppm_x = ppm_y = fit.px_per_mm
        calibration = "grid"
        notes.append("grid lines found along one axis only; the same px/mm is used for both")
    else:
        ppm_x = ppm_y = w / (LETTER_WIDTH_IN * 25.4)
        calibration = "page width"

    grid_rows, strips = LAYOUTS[layout]
    n_rows = len(grid_rows) + len(strips)
    baselines = tr.find_rows(mask, n_rows, ppm_y, shear)
    if baselines.size < n_rows:
        raise im.DigitizeError(
            f"{label}: no ECG found in layout {layout}: {baselines.size} of {n_rows} trace rows detected"
            f"{'' if fit_x or fit_y else ' (and no grid)'}"
        )
    pitch = float(np.median(np.diff(baselines))) if n_rows > 1 else 0.4 * h
    pulse_mm = CAL_PULSE_S * speed
    rows: list[_Row] = []
    for r, b in enumerate(baselines):
        up = baselines[r] - baselines[r - 1] if r > 0 else pitch
        down = baselines[r + 1] - baselines[r] if r < n_rows - 1 else pitch
        runs = tr.band_runs(ink, mask, int(b - 0.85 * up), int(b + 0.85 * down) + 1, shear)
        path = tr.trace_path(runs, b, ppm_y, reset_px=3 * ppm_x)
        line_px = tr.line_width(path)
        u, py = tr.curve_points(path, line_px)
        v = shear.v_of(u, py)
        pulse = tr.find_pulse(u, v, b, ppm_x, ppm_y, pulse_mm, gain)
        if pulse is None and gain is not None:  # a pulse of another height: it still fixes 0 mV and t = 0,
            pulse = tr.find_pulse(u, v, b, ppm_x, ppm_y, pulse_mm, None)  # and its height is reported
        rows.append(_Row(b, u, v, line_px, pulse))

    pulses = [row.pulse for row in rows if row.pulse is not None]
    pulse_gain = None
    if pulses:
        if calibration == "page width":
            if gain is not None:  # the pulses are gain mm tall and pulse_mm wide: a better scale than the page
                ppm_y = float(np.median([p.height_px for p in pulses])) / gain
                ppm_x = float(np.median([p.fall_u - p.rise_u for p in pulses])) / pulse_mm
                calibration = "pulse"
        else:
            pulse_gain = float(np.median([p.height_px for p in pulses])) / ppm_y
    if gain is None:
        if pulse_gain is None:
            gain = 10.0
            notes.append("gain not given and no calibration pulse measured: 10 mm/mV assumed")
        else:
            gain = _standard_gain(pulse_gain)
    elif pulse_gain is not None and abs(pulse_gain / gain - 1) > 0.15:
        notes.append(f"calibration pulses measure {pulse_gain:.2f} mm/mV; the given gain {gain:g} mm/mV is used")

    n = round(seconds * fs)
    _time_origins(rows, ppm_x, ppm_y, pulse_mm)
    row_seconds = _row_seconds(rows, seconds, speed * ppm_x, ppm_y)
    if calibration != "grid":  # the trace's length is a longer ruler than a pulse's width or the page's
        spans = [_span(row, ppm_y) for row in rows]
        spans = [sp for sp in spans if sp is not None]
        if spans:
            by_span = float(np.median(spans)) / ((row_seconds - 1 / fs) * speed)
            if abs(by_span / ppm_x - 1) < 0.05:
                ppm_x = by_span
                calibration += " + trace length"
                _time_origins(rows, ppm_x, ppm_y, pulse_mm)
    for row in rows:
        if row.pulse is None:
            x_end = row.x0 + row_seconds * speed * ppm_x
            mode = tr.baseline_mode(row.u, row.v, row.x0, x_end, ppm_y)
            if mode is not None:
                row.baseline = mode

    signal = np.full((12, n), np.nan, dtype=np.float32)
    px_per_s = speed * ppm_x
    mv_per_px = 1.0 / (gain * ppm_y)
    windows = layout_windows(layout, fs, n, row_seconds)
    n_cols = len(grid_rows[0])
    strip_leads = set()
    for p in sorted(windows, key=lambda p: p.col >= 0):  # strips first: they fill a lead over the whole row
        row = rows[p.row]
        px, py = row.u, row.v
        if p.col >= 0 and n_cols > 1:  # leave out the separator ticks between columns
            edges = row.x0 + np.arange(1, n_cols) * (row_seconds / n_cols) * px_per_s
            near = np.min(np.abs(px[:, None] - edges[None, :]), axis=1) <= row.line_px / 2 + 1.5
            px, py = px[~near], py[~near]
        s = np.arange(p.sample_start, p.sample_stop)
        x = row.x0 + s / fs * px_per_s
        y = tr.sample_curve(px, py, x, max_gap=max(3.0, 2 * row.line_px))
        if np.isfinite(y).mean() < 0.5:
            notes.append(f"lead {p.lead} ({'strip' if p.col < 0 else f'row {p.row + 1}, column {p.col + 1}'}): "
                         f"no trace over most of its window; left NaN")
            continue
        values = ((row.baseline - y) * mv_per_px).astype(np.float32)
        k = LEADS_12.index(p.lead)
        if p.col < 0:
            strip_leads.add(p.lead)
            signal[k, p.sample_start : p.sample_stop] = values
        elif p.lead in strip_leads:  # the strip already has this lead; the panel fills only its gaps
            seg = signal[k, p.sample_start : p.sample_stop]
            gaps = np.isnan(seg)
            seg[gaps] = values[gaps]
        else:
            signal[k, p.sample_start : p.sample_stop] = values
    return Digitized(
        signal=signal,
        fs=float(fs),
        layout=layout,
        px_per_mm=(float(ppm_x), float(ppm_y)),
        calibration=calibration,
        rotation_deg=float(angle),
        speed=float(speed),
        gain=float(gain),
        pulse_gain=pulse_gain,
        row_seconds=float(row_seconds),
        baselines_px=[float(row.baseline) for row in rows],
        trace_x0_px=[float(row.x0) for row in rows],
        pulses_found=len(pulses),
        notes=notes,
    )


def _time_origins(rows: list[_Row], ppm_x: float, ppm_y: float, pulse_mm: float) -> None:
    """u of t = 0 per row: 2.5 mm after its calibration pulse's falling edge (and pulse width + 2.5 mm after
    the rising edge; the mean of both), where 0 mV becomes the pulse's foot. Rows without a pulse (or one
    more than 2 mm off the others) take the median of the rows with one, else where their trace begins."""
    lead_px = CAL_LEAD_MM * ppm_x
    for row in rows:
        row.x0 = None
        if row.pulse is not None:
            p = row.pulse
            row.x0 = 0.5 * ((p.fall_u + lead_px) + (p.rise_u + pulse_mm * ppm_x + lead_px))
            row.baseline = p.foot_v
    found = [row.x0 for row in rows if row.x0 is not None]
    for row in rows:
        if row.x0 is None:
            near = np.abs(row.v - row.baseline) < 3 * ppm_y
            first = float(row.u[near][0]) if near.any() else (float(row.u[0]) if row.u.size else 0.0)
            row.x0 = float(np.median(found)) if found else first
        elif abs(row.x0 - np.median(found)) > 2 * ppm_x:
            row.x0 = float(np.median(found))


def _span(row: _Row, ppm_y: float) -> float | None:
    """u from t = 0 to the centre of the row's last sample (its last point within 5 mm of the baseline,
    less half the trace width)."""
    near = np.abs(row.v - row.baseline) < 5 * ppm_y
    if not near.any():
        return None
    return float(row.u[near][-1] - row.x0 - (row.line_px - 1) / 2)


def _row_seconds(rows: list[_Row], seconds: float, px_per_s: float, px_per_mm: float) -> float:
    """Seconds shown per row: the signal's duration, or half of it (repeatedly) when the traces are that much
    shorter (a printer halves the time shown when a row does not fit the page at the paper speed). A row's
    trace ends at its last column within 5 mm of its baseline (so header and footer text do not count)."""
    spans = []
    for row in rows:
        near = np.abs(row.v - row.baseline) < 5 * px_per_mm
        if near.any():
            spans.append((row.u[near][-1] - row.x0) / px_per_s)
    if not spans:
        return seconds
    measured = max(float(np.median(spans)), 1e-3)
    return min((seconds / 2**k for k in range(4)), key=lambda s: abs(math.log(measured / s)))


def digitize_file(
    image_path: str | Path,
    out_record: str | Path,
    layout: str = "3x4+II",
    *,
    fs: float = 500.0,
    seconds: float = 10.0,
    speed: float = 25.0,
    gain: float | None = 10.0,
) -> Digitized:
    """``ecgalign digitize IMAGE --layout ... --out REC``: digitise ``image_path`` and write the WFDB record
    ``out_record`` (.hea + .dat; header comments say where it came from and how it was calibrated)."""
    result = digitize(image_path, layout, fs=fs, seconds=seconds, speed=speed, gain=gain)
    comments = [
        f"digitised by ecgalign.render.digitize from {Path(image_path).name}",
        f"layout {layout}, {result.speed:g} mm/s, {result.gain:g} mm/mV, {result.px_per_mm[0]:.4f} x "
        f"{result.px_per_mm[1]:.4f} px/mm ({result.calibration}), rotation {result.rotation_deg:.3f} deg",
        "samples a lead is not shown in are NaN (WFDB invalid value)",
    ]
    result.to_wfdb(out_record, comments=comments)
    return result
