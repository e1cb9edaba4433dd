"""Per-record measurements on the mV view (250 Hz, 0.5-100 Hz) and the label criteria checked against them.

QRS bounds use the summed absolute slope of all 12 leads (spatial velocity) around each R peak; amplitudes are
medians over beats. The QRS duration is measured once per record, on the median beat (the representative beat on
which global intervals are defined, as in the CSE measurement programme), where uncorrelated noise is averaged
out; see ``median_beat_qrs_ms``. Criteria are the textbook ones (e.g. Surawicz et al., AHA/ACCF/HRS recommendations,
Circulation 2009): sinus bradycardia < 60 bpm, tachycardia > 100 bpm, complete bundle branch block
QRS >= 120 ms, LVH Sokolow-Lyon (S V1 + max R V5/V6) >= 3.5 mV, low limb voltage < 0.5 mV peak-to-peak in
every limb lead, LAFB axis < -30 deg, AF an irregular RR (CV > 0.08), infarction an initial negative QRS in
the facing leads.
"""

from __future__ import annotations

import numpy as np

from ecgalign.data.record import LEADS_12
from ecgalign.synth.realism.features import r_peaks, rr_features

FS = 250.0
_L = {name: i for i, name in enumerate(LEADS_12)}
LIMB = [_L[n] for n in ("I", "II", "III", "aVR", "aVL", "aVF")]
MEASURES: tuple[str, ...] = (
    "hr_bpm",
    "rr_cv",
    "qrs_ms",
    "axis_deg",
    "sokolow_mv",
    "limb_ptp_mv",
    "q_inferior",
    "q_anterior",
    "q_septal",
    "q_lateral",
    "q_inferolateral",
    "q_anterolateral",
    "st_depressed",
    "nst_change",
)
# code -> (measure, test, threshold, description)
CRITERIA: dict[str, tuple[str, str, float, str]] = {
    "SBRAD": ("hr_bpm", "<", 60.0, "rate < 60 bpm"),
    "STACH": ("hr_bpm", ">", 100.0, "rate > 100 bpm"),
    "AFIB": ("rr_cv", ">", 0.08, "RR coefficient of variation > 0.08"),
    "CLBBB": ("qrs_ms", ">=", 120.0, "QRS >= 120 ms"),
    "CRBBB": ("qrs_ms", ">=", 120.0, "QRS >= 120 ms"),
    "LVH": ("sokolow_mv", ">=", 3.5, "Sokolow-Lyon >= 3.5 mV"),
    "LVOLT": ("limb_ptp_mv", "<", 0.5, "every limb lead < 0.5 mV peak-to-peak"),
    "LAFB": ("axis_deg", "<", -30.0, "frontal axis < -30 deg"),
    "IMI": ("q_inferior", ">", 0.5, "initial 30 ms negative in III and aVF"),
    "AMI": ("q_anterior", ">", 0.5, "initial 30 ms negative in V2 and V3"),
    "ASMI": ("q_septal", ">", 0.5, "initial 30 ms negative in V1 and V2"),
    # Eighth pass
    "LPFB": ("axis_deg", ">", 90.0, "frontal axis > +90 deg"),
    "IVCD": ("qrs_ms", ">=", 110.0, "QRS >= 110 ms"),
    "LMI": ("q_lateral", ">", 0.5, "initial 30 ms negative in I and aVL"),
    "ILMI": ("q_inferolateral", ">", 0.5, "initial 30 ms negative in aVF and V6"),
    "ALMI": ("q_anterolateral", ">", 0.5, "initial 30 ms negative in V4 and V5"),
    "STD_": ("st_depressed", ">", 0.5, "ST (J + 60 ms) <= -0.05 mV in two contiguous leads"),
    "NST_": ("nst_change", ">", 0.5, "T < 0.25 mV in V5 and V6, or ST <= -0.025 mV in two of I, II, V4-V6"),
}
# Contiguous leads (Cabrera order of the limb leads, then the chest leads) for ST depression.
CONTIGUOUS: tuple[tuple[str, str], ...] = (
    ("aVL", "I"), ("I", "II"), ("II", "aVF"), ("aVF", "III"),
    ("V1", "V2"), ("V2", "V3"), ("V3", "V4"), ("V4", "V5"), ("V5", "V6"),
)


def qrs_bounds(mv: np.ndarray, peaks: np.ndarray, fs: float = FS, frac: float = 0.1) -> np.ndarray:
    """(B, 2) QRS onset/offset samples: where the spatial velocity exceeds ``frac`` of its peak above the
    level just outside a +-160 ms window around each R peak."""
    v = np.abs(np.diff(mv, axis=1)).sum(axis=0) * fs
    k = max(1, int(0.008 * fs))
    v = np.convolve(v, np.ones(k) / k, mode="same")
    half, side = int(0.16 * fs), int(0.1 * fs)
    out = []
    for p in peaks:
        lo, hi = p - half, p + half
        if lo - side < 0 or hi + side > v.size:
            continue
        w = v[lo:hi]
        base = np.median(np.r_[v[lo - side : lo], v[hi : hi + side]])
        above = np.flatnonzero(w > base + frac * (w.max() - base))
        if above.size:
            out.append((lo + above[0], lo + above[-1]))
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def median_beat_qrs_ms(mv: np.ndarray, peaks: np.ndarray, fs: float = FS, frac: float = 0.05) -> float:
    """Global QRS duration (ms) of one record: the spatial velocity of the median beat (beats aligned at their R
    peaks) above ``frac`` of its peak over the level just outside a +-160 ms window; NaN without a whole beat.

    Measured per beat at 10 % (``qrs_bounds``), noise in the velocity raised the threshold above the slow
    terminal forces of bundle branch block: 5 of the 8 CRBBB records of ptbxl-500 read below 120 ms, real NORM
    at 66 ms median, and synthetic QRS 11 ms below the generator's truth. On the median beat at 5 %: 7 of 8 real
    CRBBB >= 120 ms, 8 of 8 CLBBB, real NORM 80 ms median, synthetic a few ms below truth (LBBB about 30 ms
    above: its discordant ST-T has no slope break at J) (docs/results.md, fourth pass)."""
    before, after = int(0.3 * fs), int(0.45 * fs)
    peaks = peaks[(peaks - before >= 0) & (peaks + after < mv.shape[1])]
    if peaks.size == 0:
        return float("nan")
    med = np.median(np.stack([mv[:, p - before : p + after] for p in peaks]), axis=0)
    v = np.abs(np.diff(med, axis=1)).sum(axis=0) * fs
    k = max(1, int(0.008 * fs))
    v = np.convolve(v, np.ones(k) / k, mode="same")
    half, side = int(0.16 * fs), int(0.1 * fs)
    w = v[before - half : before + half]
    base = np.median(np.r_[v[before - half - side : before - half], v[before + half : before + half + side]])
    over = w > base + frac * (w.max() - base)
    # The complex is the run above threshold that holds the peak, bridging dips shorter than 20 ms (between
    # deflections); a later run (e.g. the steep discordant ST-T of LBBB) is not QRS.
    gap = int(0.02 * fs)
    lo = hi = int(np.argmax(w))
    while lo > 0 and over[max(lo - gap, 0) : lo].any():
        lo -= 1 + int(np.argmax(over[max(lo - gap, 0) : lo][::-1]))
    while hi < w.size - 1 and over[hi + 1 : hi + 1 + gap].any():
        hi += 1 + int(np.flatnonzero(over[hi + 1 : hi + 1 + gap])[-1])
    return float((hi - lo) / fs * 1000)


def measure(mv: np.ndarray, fs: float = FS) -> dict[str, float]:
    """Measurements of one record (12, T) in mV; NaN where a beat-based value cannot be made."""
    out = dict.fromkeys(MEASURES, float("nan"))
    peaks = r_peaks(mv, fs)
    rr = rr_features(peaks, fs)
    if np.isfinite(rr[0]):
        out["hr_bpm"], out["rr_cv"] = 60.0 / rr[0], rr[1]
    bounds = qrs_bounds(mv, peaks, fs)
    if len(bounds) == 0:
        return out
    out["qrs_ms"] = median_beat_qrs_ms(mv, peaks, fs)
    # Baseline: the median of the 40 ms before QRS onset (PR segment), per beat.
    seg = [
        mv[:, a : b + 1] - np.median(mv[:, max(a - int(0.04 * fs), 0) : a + 1], axis=1, keepdims=True)
        for a, b in bounds
    ]
    area = np.median([s.sum(axis=1) for s in seg], axis=0) / fs  # (12,) mV*s
    out["axis_deg"] = float(np.degrees(np.arctan2(area[_L["aVF"]], area[_L["I"]])))
    pos = np.median([s.max(axis=1).clip(min=0) for s in seg], axis=0)
    neg = np.median([(-s.min(axis=1)).clip(min=0) for s in seg], axis=0)
    out["sokolow_mv"] = float(neg[_L["V1"]] + max(pos[_L["V5"]], pos[_L["V6"]]))
    out["limb_ptp_mv"] = float(max(np.median([np.ptp(s[j]) for s in seg]) for j in LIMB))
    n30 = int(0.03 * fs)
    long_enough = [s for s in seg if s.shape[1] > n30] or [np.zeros((12, n30 + 1))]
    initial = np.median([s[:, 1 : n30 + 1].mean(axis=1) for s in long_enough], axis=0)  # (12,)
    for name, leads in (
        ("q_inferior", ("III", "aVF")),
        ("q_anterior", ("V2", "V3")),
        ("q_septal", ("V1", "V2")),
        ("q_lateral", ("I", "aVL")),
        ("q_inferolateral", ("aVF", "V6")),
        ("q_anterolateral", ("V4", "V5")),
    ):
        out[name] = float(all(initial[_L[n]] < -0.05 for n in leads))
    st, t = _st_t(mv, bounds, fs)
    if st is not None:
        out["st_depressed"] = float(any(st[_L[a]] <= -0.05 and st[_L[b]] <= -0.05 for a, b in CONTIGUOUS))
        flat_t = t[_L["V5"]] < 0.25 and t[_L["V6"]] < 0.25
        low_st = sum(st[_L[n]] <= -0.025 for n in ("I", "II", "V4", "V5", "V6")) >= 2
        out["nst_change"] = float(flat_t or low_st)
    return out


BEAT_WAVES = ("q_mv", "q_ms", "r_mv", "s_mv", "st_mv", "t_mv")


def beat_waves(mv: np.ndarray, bounds: np.ndarray, fs: float = FS, min_qrs_s: float = 0.0) -> np.ndarray | None:
    """(beats, 6, 12) per-beat, per-lead waves in the order of ``BEAT_WAVES``, against the median of the 40 ms
    before QRS onset: Q depth (most negative value in the first 40 ms of the QRS, 0 if none), Q duration (ms
    from onset until the lead first turns positive, when it starts negative), R (largest positive value of the
    QRS), S (largest negative value), ST at J + 60 ms, T (the larger-magnitude extreme 100-400 ms after J).
    Beats without 40 ms before onset and 400 ms after J, or with a QRS shorter than ``min_qrs_s``, are left out;
    None when none is left."""
    n40, j60, t0, t1 = int(0.04 * fs), int(0.06 * fs), int(0.10 * fs), int(0.40 * fs)
    n_min = int(round(min_qrs_s * fs))
    rows = []
    for a, b in bounds:
        if b + t1 >= mv.shape[1] or a - n40 < 0 or b - a < n_min:
            continue
        s = mv[:, a : b + t1] - np.median(mv[:, a - n40 : a + 1], axis=1, keepdims=True)  # (12, QRS + 400 ms)
        qrs = s[:, : b - a + 1]
        init = qrs[:, :n40]
        q = (-init.min(axis=1)).clip(min=0)
        turns = np.argmax(init > 0, axis=1)
        q_ms = np.where(init[:, 0] < 0, np.where((init > 0).any(axis=1), turns, init.shape[1]), 0) / fs * 1000
        tw = s[:, b - a + t0 :]
        rows.append(np.stack([
            q, q_ms, qrs.max(axis=1).clip(min=0), (-qrs.min(axis=1)).clip(min=0), s[:, b - a + j60],
            tw[np.arange(12), np.argmax(np.abs(tw), axis=1)],
        ]))
    return np.stack(rows) if rows else None


def _st_t(mv: np.ndarray, bounds: np.ndarray, fs: float) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(12,) ST at J + 60 ms and T, medians over beats (``beat_waves``); (None, None) without a whole beat."""
    waves = beat_waves(mv, bounds, fs)
    if waves is None:
        return None, None
    med = np.median(waves[:, [BEAT_WAVES.index("st_mv"), BEAT_WAVES.index("t_mv")]], axis=0)
    return med[0], med[1]


def likelihood_text(bins: dict[str, dict]) -> str:
    """``fidelity``'s ``by_likelihood`` in one line, e.g. "likelihood 100: 0.67 of 9; 1-49: 0.44 of 16"."""
    parts = [f"{name}: {v['meets']:.2f} of {v['judged']}" for name, v in bins.items()]
    return ("likelihood " + "; ".join(parts)) if parts else ""


def meets(code: str, m: dict[str, float]) -> bool | None:
    """Whether measurements ``m`` meet the criterion of ``code``; None when it cannot be judged."""
    if code not in CRITERIA:
        return None
    key, op, thr, _ = CRITERIA[code]
    v = m.get(key, float("nan"))
    if not np.isfinite(v):
        return None
    return bool(v < thr if op == "<" else v > thr if op == ">" else v >= thr)


# PTB-XL's statement likelihoods (0, 15, 35, 50, 80, 100; Wagner et al., Sci Data 2020) binned for the real side's
# fidelity: 0 is what PTB-XL gives rhythm and form statements, which carry no likelihood.
LIKELIHOOD_BINS: tuple[tuple[str, float, float], ...] = (
    ("100", 100.0, 100.0),
    ("50-99", 50.0, 99.999),
    ("1-49", 1.0, 49.999),
    ("0 (none given)", 0.0, 0.999),
)


def fidelity(
    codes: list[tuple[str, ...]],
    measures: list[dict[str, float]],
    likelihoods: list[dict[str, float]] | None = None,
) -> dict[str, dict]:
    """Per code with a criterion: records claiming it, records judged, share meeting the criterion. With the
    records' statement ``likelihoods`` (PTB-XL), also the judged count and share per likelihood bin
    (``by_likelihood``), so a criterion can be read against the statements the cardiologists were sure of."""
    out = {}
    for code, (_, _, _, text) in CRITERIA.items():
        rows = [i for i, c in enumerate(codes) if code in c]
        judged = [meets(code, measures[i]) for i in rows]
        ok = [j for j in judged if j is not None]
        out[code] = {
            "criterion": text,
            "records": len(judged),
            "judged": len(ok),
            "meets": round(float(np.mean(ok)), 4) if ok else None,
        }
        if likelihoods is not None and rows:
            bins = {}
            for name, lo, hi in LIKELIHOOD_BINS:
                hit = [j for i, j in zip(rows, judged) if j is not None and code in likelihoods[i]
                       and lo <= likelihoods[i][code] <= hi]
                if hit:
                    bins[name] = {"judged": len(hit), "meets": round(float(np.mean(hit)), 4)}
            out[code]["by_likelihood"] = bins
    return out
