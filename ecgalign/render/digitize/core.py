"""The classic digitiser pipeline (image -> 12-lead signal in mV) and its WFDB output."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ecgalign.data.record import LEADS_12
from ecgalign.render.digitize import geometry as geo
from ecgalign.render.digitize import image as im
from ecgalign.render.digitize import trace as tr
from ecgalign.render.digitize.mask import clean_mask, hysteresis, line_ink, split_lines
from ecgalign.render.layout import CAL_PULSE_S, LAYOUTS, LETTER_WIDTH_IN, check_layout

STANDARD_GAINS = (2.5, 5.0, 10.0, 20.0, 40.0)  # mm/mV
MAX_INK_FRACTION = 0.25  # of the page: more dark ink than that is noise, a photo or a dark scan, not a printout
MIN_CONTINUITY = 0.6  # of a row's path steps connected: below, the row holds no drawn line
LOW_RES_PX_PER_MM = 5.0  # below (about 127 dpi) traces are 1 px lines, often split across two rows
MAX_RUNS_PER_COLUMN = 4.0  # in a row's band, on average: above, the "row" is speckle, not a drawn line
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
    status: str = "ok"  # "ok", "suspect" (a check failed: see flags) or "failed" (do not use)
    confidence: float = 1.0  # mean per-lead confidence
    lead_confidence: dict[str, float] = field(default_factory=dict)  # covered x connected fraction per lead
    flags: list[str] = field(default_factory=list)  # why the result is suspect or failed
    masked: dict[str, int] = field(default_factory=dict)  # components removed as rules, border fill, text
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
    path: tr.Path
    x0: float | None = None


STRIP_MATCH = 0.12  # a rhythm strip is read as another lead when it repeats that lead's panel this closely ...
STRIP_MARGIN = 2.0  # ... and the panel of the lead the layout names is this many times further from it
STRIP_DOUBT = 0.5  # a strip this far from its named lead's panel, and not re-labelled, makes the record suspect
STRIP_LAG_S = 0.02  # shifts tried between a strip and a panel (their rows' time origins are read separately)


def _mismatch(a: np.ndarray, b: np.ndarray, max_lag: int = 0) -> float:
    """RMS difference of two traces of one time window (medians removed) over the geometric mean of their RMS,
    the smallest over shifts of up to ``max_lag`` samples (two rows' time origins are read separately); NaN when
    fewer than half the samples are read in both."""
    if max_lag > 0:
        n = a.size
        vals = [_mismatch(a[max(k, 0) : n + min(k, 0)], b[max(-k, 0) : n + min(-k, 0)])
                for k in range(-max_lag, max_lag + 1)]
        vals = [v for v in vals if np.isfinite(v)]
        return min(vals) if vals else float("nan")
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < max(0.5 * a.size, 10):
        return float("nan")
    a, b = a[ok] - np.median(a[ok]), b[ok] - np.median(b[ok])
    scale = float(np.sqrt(np.sqrt(np.mean(a * a) * np.mean(b * b))))
    return float(np.sqrt(np.mean((a - b) ** 2)) / scale) if scale > 1e-6 else float("nan")


def identify_strips(
    read: list[tuple[PanelWindow, np.ndarray, float]], notes: list[str], flags: list[str], fs: float = 500.0
):
    """Which lead each rhythm strip shows. A strip repeats, over each panel's time window, the lead that panel
    shows, so its lead is the one whose panel it repeats (``_mismatch`` of the strip's samples in each panel's
    window against that panel). A layout names the strip's lead (3x4+II: II), but other generators print other
    leads there (ecg-image-kit's ``--full_mode``). The strip is re-labelled only when another lead's panel
    matches within STRIP_MATCH and the named lead's panel is STRIP_MARGIN times further off (or unread), and
    that goes to ``notes``; a strip left with its named lead although it is more than STRIP_DOUBT from that
    lead's panel goes to ``flags`` (its lead is in doubt). ``read``: (window, values, confidence) per panel."""
    panels = [(p, v) for p, v, _ in read if p.col >= 0]
    lag = round(STRIP_LAG_S * fs)
    out = []
    for p, values, conf in read:
        if p.col >= 0 or not panels:
            out.append((p, values, conf))
            continue
        m = {q.lead: _mismatch(values[q.sample_start - p.sample_start : q.sample_stop - p.sample_start], v, lag)
             for q, v in panels}
        m = {lead: v for lead, v in m.items() if np.isfinite(v)}
        named = m.get(p.lead, float("inf"))
        others = {lead: v for lead, v in m.items() if lead != p.lead}
        best = min(others, key=others.get, default=None)
        if best is not None and others[best] <= STRIP_MATCH and named >= STRIP_MARGIN * others[best]:
            notes.append(f"rhythm strip shows {best}, not {p.lead}: mismatch {others[best]:.2f} with the {best} "
                         f"panel, {named:.2f} with the {p.lead} panel; read as {best}")
            p = replace(p, lead=best)
        elif best is not None and named > STRIP_DOUBT:
            flags.append(f"rhythm strip does not repeat the {p.lead} panel (mismatch {named:.2f}); which lead it "
                         f"shows is in doubt (closest: {best}, {others[best]:.2f})")
        out.append((p, values, conf))
    return out


# layout="auto": the layouts told apart by how many trace rows the page has, most rows first, and how evenly the
# rows must be spaced (coefficient of variation of the gaps; a printout's rows are equally spaced).
AUTO_LAYOUTS = ((12, "12x1"), (6, "6x2"), (4, "3x4+II"), (3, "3x4"))
AUTO_ROW_SPACING_CV = 0.2


def detect_layout(mask: np.ndarray, px_per_mm: float, shear) -> tuple[str | None, list[dict]]:
    """The layout whose row count a page's trace mask (``Shear.shear_rows`` frame) shows: the first of
    AUTO_LAYOUTS for which the row finder returns exactly that many rows, evenly spaced (gap CV <=
    AUTO_ROW_SPACING_CV). Returns (layout or None, what each try found). Tells 12x1, 6x2, 3x4+II and 3x4 apart;
    which lead a rhythm strip shows is found later, from the panels it repeats (``identify_strips``)."""
    tried = []
    for k, name in AUTO_LAYOUTS:
        rows = tr.find_rows(mask, k, px_per_mm, shear)
        gaps = np.diff(rows)
        cv = float(gaps.std() / gaps.mean()) if gaps.size > 1 else float("inf")
        tried.append({"layout": name, "rows": int(rows.size), "gap_cv": round(cv, 3)})
        if rows.size == k and cv <= AUTO_ROW_SPACING_CV:
            return name, tried
    return None, tried


def digitize(
    image,
    layout: str = "3x4+II",
    *,
    fs: float = 500.0,
    seconds: float = 10.0,
    speed: float = 25.0,
    gain: float | None = 10.0,
    max_rotation_deg: float = im.MAX_ROTATION_DEG,
    max_pixels: int = im.MAX_PIXELS,
    name: str | None = None,
    segmenter=None,
) -> Digitized:
    """Digitise one printout image (path, PIL image, (H, W[, 3]) array or (3, H, W) tensor) in a known
    ``layout`` (see ecgalign.render.layout.LAYOUTS; "auto": told from the number of trace rows, ``detect_layout``,
    and named in the result's ``layout`` and notes) printed at ``speed`` mm/s and ``gain`` mm/mV (None: read
    the gain from the calibration pulses). Returns ``seconds`` x ``fs`` samples per lead (10 s at 500 Hz by
    default); a lead is NaN outside the time window(s) the layout shows it in. ``status`` says whether to trust
    it ("ok", "suspect", "failed"; see ``Digitized``). Raises DigitizeError for an unreadable file, one over
    ``max_pixels`` (checked before decoding) or an image without evidence of an ECG trace.

    ``segmenter``: a ``learned.TraceSegmenter`` (or the path of one): its trace probability map replaces the
    classic ink map (no grid division or top-hat needed), the rest of the pipeline is the same."""
    if layout != "auto":
        check_layout(layout)
    if segmenter is not None and not hasattr(segmenter, "probability_of_maps"):
        from ecgalign.render.digitize.learned import TraceSegmenter

        segmenter = TraceSegmenter.load(segmenter)
    if not (fs > 0 and seconds > 0 and speed > 0 and (gain is None or gain > 0)):
        raise ValueError(f"fs, seconds, speed and gain must be positive, got {fs}, {seconds}, {speed}, {gain}")
    label = name or (str(image) if isinstance(image, (str, Path)) else "image")
    rgb = im.load_image(image, name=label, max_pixels=max_pixels)
    h, w = rgb.shape[:2]
    maps = im.darkness_maps(rgb)
    del rgb
    notes: list[str] = []
    flags: list[str] = []
    angle = im.estimate_rotation(maps.grid, max_rotation_deg)
    if abs(angle) > 0.98 * max_rotation_deg:
        flags.append(f"rotation {angle:.2f} deg is at the search limit (+-{max_rotation_deg:g})")
    shear = im.Shear.of((h, w), angle)
    fit_x, fit_y = im.grid_scale(maps, shear)
    if segmenter is not None:  # the network's trace probability: grid, text and frames already left out
        ink = segmenter.probability_of_maps(np.stack([maps.ink, maps.grid, maps.colour]))
        notes.append(f"trace map from the learned segmenter ({segmenter.meta.get('steps', '?')} training steps)")
    else:
        ink = maps.ink
    if (fit_x or fit_y) and segmenter is None:  # what is left of the grid in the ink map (all of a black-and-white one): divide it out
        ink = im.remove_grid(ink, shear)
    del maps
    ink = shear.shear_rows(ink)  # columns are now lines of constant time
    level = float(np.percentile(ink[::2, ::2], 99.9))
    if level < 0.2:
        raise im.DigitizeError(f"{label}: no ECG trace found (no dark ink on the page)")
    mask = ink > float(np.clip(0.5 * level, 0.25, 0.6))
    ink_fraction = float(mask[::2, ::2].mean())
    if ink_fraction > MAX_INK_FRACTION:
        raise im.DigitizeError(
            f"{label}: no ECG trace found: dark ink covers {ink_fraction:.0%} of the page (a printout's traces "
            f"and text cover a few per cent; noise, a photograph or a dark scan?)"
        )

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
    # only thin dark lines: shading, creases and dark fill wider than LINE_MAX_MM are taken out (top-hat), and
    # a 1-px line anti-aliased across two rows (each half as dark) is kept whole
    if segmenter is None:
        ink = line_ink(ink, min(ppm_x, ppm_y))
        level = max(float(np.percentile(ink[::2, ::2], 99.9)), 0.2)
        threshold = float(np.clip(0.5 * level, 0.2, 0.6))
    else:  # a probability: one threshold for every page
        level, threshold = 1.0, 0.5
    if min(ppm_x, ppm_y) < LOW_RES_PX_PER_MM:  # 1-px lines: keep fainter ink joined to the strong (hysteresis)
        mask = hysteresis(ink, ink > threshold, float(np.clip(0.25 * level, 0.1, 0.3)))
    else:  # lines a few px wide: only split pairs, never a strong line's fringe
        mask = split_lines(ink, ink > threshold, threshold)
    first, _ = clean_mask(mask, min(ppm_x, ppm_y))  # rows from a mask without text, then the text mask again
    if layout == "auto":
        layout, tried = detect_layout(first, ppm_y, shear)
        if layout is None:
            raise im.DigitizeError(
                f"{label}: layout auto: no layout fits the trace rows found ("
                + ", ".join(f"{t['layout']}: {t['rows']} rows, gap CV {t['gap_cv']}" for t in tried)
                + "); give the layout"
            )
        notes.append(f"layout auto: {layout} ({tried[-1]['rows']} evenly spaced trace rows)")
    grid_rows, strips = LAYOUTS[layout]
    n_rows = len(grid_rows) + len(strips)
    baselines = tr.find_rows(first, n_rows, ppm_y, shear)  # sparing what crosses a baseline
    mask, masked = clean_mask(mask, min(ppm_x, ppm_y), baselines, shear)
    notes += masked.notes
    if baselines.size < n_rows:
        raise im.DigitizeError(
            f"{label}: no ECG found in layout {layout}: {baselines.size} of {n_rows} trace rows detected"
            f"{'' if fit_x or fit_y else ' (and no grid)'}"
        )
    pitch = float(np.median(np.diff(baselines))) if n_rows > 1 else 0.4 * h
    pulse_mm = CAL_PULSE_S * speed
    rows: list[_Row] = []
    crowd: list[float] = []  # ink runs per column in each row's band: about 1 for a trace, many for noise
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
        rows.append(_Row(b, u, v, line_px, pulse, path))
        crowd.append(runs.x.size / max(1, len(path)))
    traced = [
        tr.continuity(row.path, ppm_y) >= MIN_CONTINUITY and row.u.size > 0.2 * w and c <= MAX_RUNS_PER_COLUMN
        for row, c in zip(rows, crowd)
    ]
    if sum(traced) < max(1, (n_rows + 1) // 2):
        raise im.DigitizeError(
            f"{label}: no ECG trace found: {sum(traced)} of {n_rows} rows hold one connected line across the page "
            f"(median {np.median(crowd):.1f} ink runs per column; noise, text or a blank page?)"
        )

    pulses = [row.pulse for row in rows if row.pulse is not None]
    pulse_gain = None
    if pulses:
        if calibration == "page width":
            if gain is not None:  # the pulses are gain mm tall: a better scale than the page (pixels are square)
                ppm_x = ppm_y = float(np.median([p.height_px for p in pulses])) / gain
                calibration = "pulse"
        else:
            pulse_gain = float(np.median([p.height_px for p in pulses])) / ppm_y
    if gain is None:
        if pulse_gain is None:
            gain = 10.0
            flags.append("gain not given and no calibration pulse measured: 10 mm/mV assumed")
        else:
            gain = _standard_gain(pulse_gain)
    elif pulse_gain is not None and abs(pulse_gain / gain - 1) > 0.15:
        notes.append(f"calibration pulses measure {pulse_gain:.2f} mm/mV; the given gain {gain:g} mm/mV is used")
    if calibration == "page width":
        flags.append("no grid and no calibration pulse: px/mm assumed from a US Letter page width")

    n = round(seconds * fs)
    row_seconds = geo.time_origins(rows, seconds, fs, speed, ppm_x, ppm_y, flags)
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
    read: list[tuple[PanelWindow, np.ndarray, float]] = []
    for p in windows:
        row = rows[p.row]
        px, py = row.u, row.v
        # leave out the separator ticks between columns, the pulse's falling edge at t = 0 (where a printer
        # starts the trace right at it) and an end marker
        cols = n_cols if p.col >= 0 else 1
        edges = row.x0 + np.arange(0, cols + 1) * (row_seconds / cols) * px_per_s
        near = np.min(np.abs(px[:, None] - edges[None, :]), axis=1) <= row.line_px / 2 + 1.5
        px, py = px[~near], py[~near]
        s = np.arange(p.sample_start, p.sample_stop)
        x = row.x0 + s / fs * px_per_s
        y = tr.sample_curve(px, py, x, max_gap=max(3.0, 2 * row.line_px))
        conf = float(np.isfinite(y).mean()) * geo.window_continuity(row.path, x[0], x[-1], ppm_y)
        read.append((p, ((row.baseline - y) * mv_per_px).astype(np.float32), conf))
    read = identify_strips(read, notes, flags, fs)
    strip_leads = set()
    confidence = {}
    for p, values, conf in sorted(read, key=lambda r: r[0].col >= 0):  # strips first: they fill a lead's row
        where = f"{'strip' if p.col < 0 else f'row {p.row + 1}, column {p.col + 1}'}"
        if np.isfinite(values).mean() < 0.5:
            notes.append(f"lead {p.lead} ({where}): no trace over most of its window; left NaN")
            confidence.setdefault(p.lead, 0.0)
            continue
        confidence[p.lead] = max(confidence.get(p.lead, 0.0), round(conf, 3))
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
    status, record_conf = geo.judge(confidence, flags)
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
        status=status,
        confidence=record_conf,
        lead_confidence=confidence,
        flags=flags,
        masked={"line_px": masked.line_px, "rules": masked.rules, "border": masked.border, "text": masked.text, "pixels": masked.removed_px},
        notes=notes,
    )


def digitize_file(
    image_path: str | Path,
    out_record: str | Path,
    layout: str = "3x4+II",
    *,
    fs: float = 500.0,
    seconds: float = 10.0,
    speed: float = 25.0,
    gain: float | None = 10.0,
    segmenter=None,
) -> Digitized:
    """``ecgalign digitize IMAGE --layout ... --out REC``: digitise ``image_path`` and write the WFDB record
    ``out_record`` (.hea + .dat; header comments say where it came from, how it was calibrated, its status and
    flags) unless its status is "failed" (then nothing is written; the result says why)."""
    result = digitize(image_path, layout, fs=fs, seconds=seconds, speed=speed, gain=gain, segmenter=segmenter)
    comments = [
        f"digitised by ecgalign.render.digitize from {Path(image_path).name}",
        f"layout {result.layout}, {result.speed:g} mm/s, {result.gain:g} mm/mV, {result.px_per_mm[0]:.4f} x "
        f"{result.px_per_mm[1]:.4f} px/mm ({result.calibration}), rotation {result.rotation_deg:.3f} deg"
        + ("" if segmenter is None else ", trace map from the learned segmenter"),
        "samples a lead is not shown in are NaN (WFDB invalid value)",
        f"status {result.status}, confidence {result.confidence:.3f}" + "".join(f"; {f}" for f in result.flags),
    ]
    if result.status != "failed":
        result.to_wfdb(out_record, comments=comments)
    return result
