"""Public API of the synthetic generator: ``synthesize_record``, ``synthesize`` and ``SynthConfig``.

A record is a deterministic function of (seed, index, config): its random generator is
``np.random.default_rng([seed, index])``, and the patient it belongs to (and that patient's age, sex, fold,
anatomy and persistent findings) follow from (seed, index) alone, so records can be made in any order and in
parallel with identical results.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache, partial

import numpy as np

from ecgalign.data.leads import derive_limb_leads
from ecgalign.data.record import LEADS_12, ECGRecord
from ecgalign.synth import conditions as cond
from ecgalign.synth.dipole import (
    P_WAVE,
    REPOL,
    Template,
    atrial_rows,
    project,
    render_dipole,
    ventricular_rows,
)
from ecgalign.synth.morphology import (
    Anatomy,
    Intervals,
    pac_template,
    patient_lead_rows,
    patient_qrs_timing,
    pvc_template,
    sinus_template,
)
from ecgalign.synth.noise import NoiseConfig, add_noise, electrodes_to_leads
from ecgalign.synth.parallel import parallel_records
from ecgalign.synth.population import POP
from ecgalign.synth.reports import write_report
from ecgalign.synth.rhythm import (
    PAC,
    PVC,
    af_onsets,
    fibrillatory_wave,
    flutter_onsets,
    flutter_wave,
    insert_ectopics,
    sinus_onsets,
)

_BLOCK = 64  # records are grouped into patients within consecutive blocks of this many indices
_TAG_GROUPS, _TAG_PATIENT, _TAG_LEADS, _TAG_TIMING = 0x6770, 0x7061, 0x6C64, 0x7174
_TAG_EXTRA = 0x7838  # eighth-pass codes: their own patient and record streams (records without them unchanged)
_LEAD_AXIS_AF = np.array([-0.30, 0.45, -0.75]) / np.linalg.norm([-0.30, 0.45, -0.75])  # V1-V2 and inferior
_LEAD_AXIS_AFL = np.array([-0.05, -0.90, -0.45]) / np.linalg.norm([-0.05, -0.90, -0.45])  # negative inferior


@dataclass
class SynthConfig:
    """How the synthetic population looks.

    records_per_patient: mean records per patient (1 .. max_records_per_patient); the default 1.4 with at most
        3 gives about 30 % of patients 2-3 records, so patient-level splits and subject identification apply.
    prevalence: per-record probabilities overriding conditions.DEFAULT_PREVALENCE (an average patient; age and
        sex scale them). "NORM": p makes a share p of records normal and every other record abnormal.
    conditions: SCP codes forced into every record (must not contradict each other).
    exclusive: records carry only the forced codes (plus SR when no rhythm is forced, and NORM when that
        leaves a normal record).
    noise: recording noise, or None for clean signals.
    report_measurements: let reports quote label-defining measurements (rate, PR, QRS, QTc, axis, voltage);
        off by default, as real PTB-XL reports carry none.
    """

    records_per_patient: float = 1.4
    max_records_per_patient: int = 3
    prevalence: dict[str, float] = field(default_factory=dict)
    conditions: tuple[str, ...] = ()
    exclusive: bool = False
    noise: NoiseConfig | None = field(default_factory=NoiseConfig)
    report_measurements: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.noise, Mapping):
            self.noise = NoiseConfig(**self.noise)
        self.conditions = cond.check_codes(self.conditions, "SynthConfig.conditions")
        self.prevalence = {str(k): float(v) for k, v in dict(self.prevalence).items()}
        for code, p in self.prevalence.items():
            if code not in cond.CODES or code == "SR":
                raise ValueError(
                    f"SynthConfig.prevalence: unsupported code {code!r}; expected one of "
                    f"{[c for c in cond.CODES if c != 'SR']}"
                )
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"SynthConfig.prevalence[{code!r}] must be in [0, 1], got {p}")
        if not (isinstance(self.max_records_per_patient, int) and self.max_records_per_patient >= 1):
            raise ValueError(
                f"SynthConfig.max_records_per_patient must be an int >= 1, got {self.max_records_per_patient}"
            )
        if not 1.0 <= self.records_per_patient <= max(1.0, 0.9 * self.max_records_per_patient):
            raise ValueError(
                f"SynthConfig.records_per_patient must be in [1, {0.9 * self.max_records_per_patient:g}] "
                f"for max_records_per_patient={self.max_records_per_patient}, got "
                f"{self.records_per_patient}"
            )
        if self.noise is not None and not isinstance(self.noise, NoiseConfig):
            raise ValueError(
                f"SynthConfig.noise must be a NoiseConfig or None, got {type(self.noise).__name__}"
            )


@lru_cache(maxsize=16)
def _group_size_probs(mean: float, k: int) -> np.ndarray:
    """P(size = 1..k) proportional to r^(size-1), with r solved so the mean is ``mean``."""
    sizes = np.arange(1, k + 1)
    lo, hi = 0.0, 50.0
    for _ in range(60):
        r = 0.5 * (lo + hi)
        w = r ** (sizes - 1.0)
        lo, hi = (r, hi) if (w * sizes).sum() / w.sum() < mean else (lo, r)
    w = r ** (sizes - 1.0)
    return w / w.sum()


@lru_cache(maxsize=64)
def _block_patients(seed: int, block: int, mean: float, most: int) -> tuple[tuple[int, int], ...]:
    """(patient within block, visit) for each position of a block of record indices."""
    rng = np.random.default_rng([seed, _TAG_GROUPS, block])
    probs = _group_size_probs(mean, most)
    sizes = rng.choice(np.arange(1, len(probs) + 1), size=_BLOCK, p=probs)
    labels = np.repeat(np.arange(_BLOCK), sizes)[:_BLOCK][rng.permutation(_BLOCK)]
    seen: dict[int, int] = {}
    out = []
    for k in labels.tolist():
        out.append((k, seen.get(k, 0)))
        seen[k] = seen.get(k, 0) + 1
    return tuple(out)


def patient_of(index: int, seed: int, config: SynthConfig) -> tuple[int, int]:
    """(patient number, visit number) of record ``index``: patients are drawn per block of indices."""
    block, pos = divmod(index, _BLOCK)
    k, visit = _block_patients(seed, block, config.records_per_patient, config.max_records_per_patient)[pos]
    return block * _BLOCK + k, visit


@dataclass
class _Patient:
    number: int
    age: float
    sex: str
    fold: int
    anatomy: Anatomy
    persistent: set[str]
    params: dict[str, dict]
    rhythm: str
    base: dict[str, float]


def _patient(seed: int, number: int, config: SynthConfig) -> _Patient:
    rng = np.random.default_rng([seed, _TAG_PATIENT, number])
    sex = "M" if rng.random() < 0.5 else "F"
    age = float(np.round(np.clip(rng.normal(cond.AGE_MEAN, cond.AGE_SD), *cond.AGE_RANGE)))
    fold = int(rng.integers(1, 11))
    anatomy = Anatomy.draw(rng, age, sex)
    # The patient's lead vectors come from their own stream, so the other patient draws stay as they were.
    anatomy.leads = patient_lead_rows(np.random.default_rng([seed, _TAG_LEADS, number]))
    anatomy.timing = patient_qrs_timing(np.random.default_rng([seed, _TAG_TIMING, number]))
    base = {
        "pr": float(np.clip(rng.normal(0.135 + 0.0006 * (age - 20), 0.015), 0.12, 0.195)),
        "p_dur": float(np.clip(rng.normal(0.110, 0.010), 0.085, 0.128)),
        "qrs": float(np.clip(rng.normal(0.083 + (0.006 if sex == "M" else 0.0), 0.007), 0.07, 0.102)),
        "qtc": float(np.clip(rng.normal(0.412 + (0.012 if sex == "F" else 0.0), 0.014), 0.38, 0.452)),
        "hr_offset": float(rng.normal(0.0, 4.0)),
        "resp_hz": float(rng.uniform(0.18, 0.33)),
        "hf": float(np.clip(0.05 - 0.0005 * (age - 20), 0.01, 0.05) * rng.uniform(0.5, 1.2)),
    }
    persistent = cond.draw_findings(rng, cond.PERSISTENT, age, sex, config.prevalence)
    cond.add_companions(rng, persistent, set(cond.PERSISTENT))
    rhythm = cond.draw_rhythm(rng, age, sex, config.prevalence, persistent)
    # Forced codes may be persistent ones the patient was not drawn with: parameters for all it can carry.
    carried = [c for c in cond.PERSISTENT if c in persistent or c in config.conditions]
    params = {code: cond.draw_params(rng, code, age, sex) for code in carried}
    # Eighth-pass persistent codes, from their own stream (drawn for every patient, kept where they do not
    # contradict what the patient already has).
    extra = np.random.default_rng([seed, _TAG_EXTRA, number])
    for code in sorted(cond.draw_findings(extra, cond.EXTRA_PERSISTENT, age, sex, config.prevalence),
                       key=cond.EXTRA_PERSISTENT.index):
        if not cond.CONFLICTS.get(code, frozenset()) & persistent:
            persistent.add(code)
    params.update({code: cond.draw_params(extra, code, age, sex) for code in cond.EXTRA_PERSISTENT
                   if code in persistent or code in config.conditions})
    return _Patient(number, age, sex, fold, anatomy, persistent, params, rhythm, base)


def _codes(
    rng: np.random.Generator, extra: np.random.Generator, patient: _Patient, age: float, config: SynthConfig
) -> set[str]:
    """The record's codes; ``extra`` is the record's eighth-pass stream (transient and companion codes)."""
    forced = set(config.conditions)
    forced_rhythm = forced & set(cond.RHYTHMS)
    if config.exclusive:
        return cond.resolve(forced | ({"SR"} if not forced_rhythm else set()), forced, cond.CODES)
    prev = config.prevalence
    rhythm = (
        patient.rhythm
        if rng.random() < 0.75
        else cond.draw_rhythm(rng, age, patient.sex, prev, patient.persistent)
    )
    codes = set(patient.persistent) | cond.draw_findings(rng, cond.TRANSIENT, age, patient.sex, prev)
    cond.add_companions(rng, codes, set(cond.TRANSIENT))
    if "NORM" in prev and not forced - {"NORM"} - cond.SINUS_RHYTHMS:
        if rng.random() < prev["NORM"]:
            sinus = rhythm if rhythm in cond.SINUS_RHYTHMS else "SR"
            return cond.resolve({next(iter(forced_rhythm), sinus)}, forced, cond.CODES)
        if not codes - set(cond.RHYTHMS):
            pool = [c for c in cond.FINDINGS if cond.probability(c, age, patient.sex, prev) > 0]
            weights = np.array([cond.probability(c, age, patient.sex, prev) for c in pool])
            if pool:
                codes.add(pool[int(rng.choice(len(pool), p=weights / weights.sum()))])
    codes.add(next(iter(forced_rhythm)) if forced_rhythm else rhythm)
    codes |= cond.draw_findings(extra, cond.EXTRA_TRANSIENT, age, patient.sex, prev)
    codes = cond.resolve(codes, forced, cond.CODES)
    strain = {"LVH_strain"} if "LVH" in codes and patient.params.get("LVH", {}).get("strain") else set()
    cond.add_extra_companions(extra, codes, codes | strain)
    return cond.resolve(codes, forced, cond.CODES)


def _beat_plan(rng, codes, params, base, seconds):
    """QRS onsets (s), beat types, mean RR and the respiration used, for a record's rhythm."""
    t0, t1 = -1.2, seconds + 0.6
    resp_hz = base["resp_hz"] * float(np.exp(rng.normal(0.0, 0.08)))
    resp_phase = float(rng.uniform(0, 2 * np.pi))
    if "AFIB" in codes:
        p = params["AFIB"]
        onsets = af_onsets(rng, p["hr"], t0, t1, p["rr_cv"])
    elif "AFLT" in codes:
        p = params["AFLT"]
        p["phase"] = float(rng.uniform(0, 1))
        onsets = flutter_onsets(
            rng, p["atrial_rate"], p["phase"], p["conduction"], t0, t1, p["av_delay_ms"] / 1000.0
        )
        onsets = onsets + rng.normal(0.0, 0.012, size=onsets.size)  # AV-nodal conduction time varies by beat
    else:
        rhythm = next(c for c in codes if c in cond.SINUS_RHYTHMS)
        hr = params[rhythm]["hr"]
        if rhythm == "SR":
            hr = float(np.clip(hr + base["hr_offset"], *POP["sr_hr"][2:]))
        hf = params["SARRH"]["hf"] if rhythm == "SARRH" else base["hf"] * (0.4 if rhythm == "STACH" else 1.0)
        lf = float(rng.uniform(*POP["rr_lf"]))
        onsets = sinus_onsets(rng, hr, t0, t1, lf=lf, hf=hf * POP["rr_hf"], resp_hz=resp_hz, resp_phase=resp_phase)
    n_pvc = params["PVC"]["count"] if "PVC" in codes else 0
    n_pac = params["PAC"]["count"] if "PAC" in codes else 0
    onsets, types = insert_ectopics(
        rng, onsets, n_pvc, n_pac, (0.4, seconds - 0.6), sinus_reset=not ({"AFIB", "AFLT"} & codes)
    )
    return onsets, types, resp_hz, resp_phase


def _beat_rotations(angle_deg: np.ndarray) -> np.ndarray:
    """(B, 3, 3) rotations about Frank Z by angle and about Frank Y by half of it (breathing moves the heart)."""
    a, b = np.radians(angle_deg), np.radians(0.5 * angle_deg)
    ca, sa, cb, sb = np.cos(a), np.sin(a), np.cos(b), np.sin(b)
    z, o = np.zeros_like(a), np.ones_like(a)
    rz = np.stack([np.stack([ca, -sa, z], -1), np.stack([sa, ca, z], -1), np.stack([z, z, o], -1)], -2)
    ry = np.stack([np.stack([cb, z, sb], -1), np.stack([z, o, z], -1), np.stack([-sb, z, cb], -1)], -2)
    return np.einsum("bij,bjk->bik", rz, ry)


def _components(
    tpl: Template, onsets: np.ndarray, qt: np.ndarray, gain: np.ndarray, fs: float, rot: np.ndarray,
    rng: np.random.Generator,
):
    """Per-beat copies of a template's components: (kind, mu, sl, sr, amp) flattened over beats x components.

    Each beat has its own small rotation ``rot`` (B, 3, 3) and gain, and each component of each beat its own
    amplitude jitter (T waves more than depolarisation): no two beats are identical copies."""
    kind, mu, sl, sr, amp = tpl.arrays()
    f = np.maximum(qt - tpl.qrs, 0.05) / (tpl.qt - tpl.qrs)  # (B,) JT stretch of each beat
    repol = kind == REPOL
    mu_b = onsets[:, None] + np.where(repol, tpl.qrs + (mu - tpl.qrs) * f[:, None], mu)
    scale = np.where(repol, f[:, None], 1.0)
    sl_b, sr_b = sl * scale, sr * scale
    # Anti-aliasing at low rates: a Gaussian low-pass (sigma 0.5 sample) keeps each bump's area.
    aa = 0.5 / fs
    sl_e, sr_e = np.sqrt(sl_b**2 + aa**2), np.sqrt(sr_b**2 + aa**2)
    g = (sl_b + sr_b) / (sl_e + sr_e)
    sd = np.where(kind == REPOL, POP["t_gain_sd"], POP["beat_gain_sd"])
    jitter = np.exp(rng.normal(0.0, 1.0, size=(onsets.size, kind.size)) * sd)  # (B, C)
    amp_b = np.einsum("bij,cj->bci", rot, amp) * (gain[:, None] * g * jitter)[:, :, None]
    kind_b = np.broadcast_to(kind, mu_b.shape)
    return kind_b.ravel(), mu_b.ravel(), sl_e.ravel(), sr_e.ravel(), amp_b.reshape(-1, 3)


def _local_sources(
    anat: Anatomy, local: np.ndarray, tpl: Template, onsets: np.ndarray, qt: np.ndarray, gain: np.ndarray,
    fs: float, n: int, rng: np.random.Generator,
) -> np.ndarray:
    """(9, n) electrode-local potentials of conducted beats: the patient's non-dipolar QRS sources (proximity
    effects at the chest electrodes, local myocardium) and a local share of repolarisation, varying by beat.
    A pure dipole leaves about 0.1 % of the 8 independent leads' variance outside 3 components; real
    records about 1.5 % (issue 15)."""
    k = len(local)
    b = onsets.size
    if b == 0:
        return np.zeros((9, n))
    beat_jit = np.exp(rng.normal(0.0, 0.08, size=(b, k)))  # local sources vary more than the dipole
    mu = onsets[:, None] + anat.local_at[:, 0] * tpl.qrs  # (B, K)
    sig = np.broadcast_to(anat.local_at[:, 1], (b, k))
    amp = local[None] * (beat_jit * gain[:, None])[:, :, None]  # (B, K, 9)
    t_size = float(np.linalg.norm(tpl.vec("T")))
    jt = np.maximum(qt - tpl.qrs, 0.05)
    t_mu = onsets + tpl.qrs + 0.72 * jt
    t_amp = anat.local_t[None] * t_size * gain[:, None] * np.exp(rng.normal(0.0, 0.1, size=(b, 1)))
    return render_dipole(
        np.r_[mu.ravel(), t_mu], np.r_[sig.ravel(), 0.15 * jt], np.r_[sig.ravel(), 0.11 * jt],
        np.vstack([amp.reshape(-1, 9), t_amp]), fs, n,
    )


def _round(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(float(x), nd)


def _clean_json(d: dict) -> dict:
    return {k: (_round(v, 3) if isinstance(v, float) else v) for k, v in d.items() if not k.startswith("_")}


def _record_head(index: int, seed: int, config: SynthConfig):
    """The draws every record starts with, in their order: its patient, streams, age, anatomy and codes."""
    number, visit = patient_of(index, seed, config)
    patient = _patient(seed, number, config)
    rng = np.random.default_rng([seed, index])
    age = patient.age + (float(np.round(visit * rng.uniform(0.0, 2.0))) if visit else 0.0)
    anat = patient.anatomy.jittered(rng)
    extra_rng = np.random.default_rng([seed, _TAG_EXTRA, index])
    codes = _codes(rng, extra_rng, patient, age, config)
    return number, visit, patient, rng, age, anat, extra_rng, codes


def record_codes(index: int, seed: int, config: SynthConfig | None = None) -> frozenset[str]:
    """The SCP codes record ``index`` of dataset ``seed`` carries, without drawing its signal: the same draws as
    ``synthesize_record`` makes first, so the codes are those of the record (tested). Cheap enough to count
    code rates over 10^5 records (``ecgalign.synth.prevalence``)."""
    return frozenset(_record_head(int(index), int(seed), config or SynthConfig())[-1])


def synthesize_record(
    index: int, seed: int, *, fs: float = 500, seconds: float = 10.0, config: SynthConfig | None = None
) -> ECGRecord:
    """Record ``index`` of the synthetic dataset ``seed``: 12 leads (float32 mV), SCP codes, report, truth.

    Ground truth in ``extra``: hr_bpm, pr_ms (None without P waves), qrs_ms, qt_ms, qtc_ms (Bazett), axis_deg,
    sokolow_lyon_mv, limb_qrs_max_mv, conditions (per-code parameters), beats (onsets and types), noise.
    """
    config = config or SynthConfig()
    if int(index) < 0 or int(seed) < 0:
        raise ValueError(f"index and seed must be non-negative integers, got index={index}, seed={seed}")
    if not (fs > 0 and seconds > 0 and math.isfinite(fs) and math.isfinite(seconds)):
        raise ValueError(f"fs and seconds must be positive, got fs={fs}, seconds={seconds}")
    index, seed, fs = int(index), int(seed), float(fs)
    number, visit, patient, rng, age, anat, extra_rng, codes = _record_head(index, seed, config)
    params = {c: dict(v) for c, v in patient.params.items()}
    params.update(
        {c: cond.draw_params(extra_rng, c, age, patient.sex) for c in cond.ordered(codes)
         if c in cond.EXTRA_CODES and c not in params}
    )
    params.update(
        {c: cond.draw_params(rng, c, age, patient.sex) for c in cond.ordered(codes) if c not in params}
    )
    # Borderline voltage (label noise, population.json): Sokolow-Lyon 3.55-3.95 mV without an LVH statement;
    # never in exclusive mode, whose records are clean examples of the forced codes.
    borderline = not config.exclusive and rng.random() < POP["borderline_voltage_p"]
    params["_borderline"] = float(rng.uniform(3.55, 3.95)) if borderline else 0.0

    base = patient.base
    pr = (
        params["1AVB"]["pr_ms"] / 1000
        if "1AVB" in codes
        else float(np.clip(base["pr"] + rng.normal(0, 0.004), 0.12, 0.198))
    )
    qrs = base["qrs"] + rng.normal(0, 0.002)
    for code in ("CLBBB", "CRBBB", "IRBBB"):
        if code in codes:
            qrs = params[code]["qrs_ms"] / 1000
    if "LVH" in codes and not codes & {"CLBBB", "CRBBB", "IRBBB"}:
        qrs = min(qrs + 0.008, 0.112)
    if "IVCD" in codes:
        qrs = params["IVCD"]["qrs_ms"] / 1000
    qtc = (
        params["LNGQT"]["qtc_ms"] / 1000
        if "LNGQT" in codes
        else float(np.clip(base["qtc"] + rng.normal(0, 0.005) + 0.4 * max(qrs - 0.11, 0.0), 0.38, 0.458))
    )

    n = round(fs * seconds)
    onsets, types, resp_hz, resp_phase = _beat_plan(rng, codes, params, base, seconds)
    rr = np.diff(onsets)
    mean_rr = float(rr.mean())
    rr_prev = np.r_[mean_rr, rr]
    qt_beats = np.maximum(qtc * np.sqrt(0.6 * mean_rr + 0.4 * np.clip(rr_prev, 0.3, 2.0)), qrs + 0.12)
    qt = max(qtc * math.sqrt(mean_rr), qrs + 0.12)
    iv = Intervals(pr=pr, p_dur=base["p_dur"] * float(np.exp(rng.normal(0, 0.03))), qrs=qrs, qt=qt)
    sinus = sinus_template(codes, iv, anat, params)
    templates = {0: sinus}
    if PVC in types:
        templates[PVC] = pvc_template(sinus, anat, rng)
    if PAC in types:
        templates[PAC] = pac_template(sinus, iv, anat)
    breath = np.sin(2 * np.pi * resp_hz * onsets + resp_phase)
    gain = 1.0 + rng.uniform(0.005, 0.02) * breath
    rot = _beat_rotations(POP["resp_rotation_deg"] * rng.uniform(0.5, 1.5) * breath)
    parts = [
        _components(
            tpl, onsets[types == k], qt_beats[types == k] + (0.04 if k == PVC else 0.0), gain[types == k], fs,
            rot[types == k], rng,
        )
        for k, tpl in templates.items()
    ]
    kind, mu, sl, sr, amp = (np.concatenate(x) for x in zip(*parts))
    dipole = np.zeros((3, n))
    for sel in ((kind != REPOL) & (kind != P_WAVE), kind == REPOL):
        dipole += render_dipole(mu[sel], sl[sel], sr[sel], amp[sel], fs, n)
    sel = kind == P_WAVE  # atrial: projected with the atrial lead vectors (dipole.atrial_rows)
    atrial = render_dipole(mu[sel], sl[sel], sr[sel], amp[sel], fs, n)
    conducted = types != PVC
    local = _local_sources(
        anat, params["_measured"]["local"], sinus, onsets[conducted], qt_beats[conducted], gain[conducted], fs,
        n, rng,
    )
    if "AFIB" in codes:
        p = params["AFIB"]
        dipole += np.outer(_LEAD_AXIS_AF, p["f_mv"] * fibrillatory_wave(rng, n, fs))
        # A second, independent wavefront near the right atrium: strongest in V1-V2, not a dipole.
        local[3:5] += np.outer([0.9, 0.45], p["f_mv"] * fibrillatory_wave(rng, n, fs))
    if "AFLT" in codes:
        p = params["AFLT"]
        dipole += np.outer(
            _LEAD_AXIS_AFL, p["f_mv"] * flutter_wave(n, fs, p["atrial_rate"], p["phase"], -1.2)
        )

    rows = ventricular_rows(POP["chest_proximity"]) if anat.leads is None else anat.leads
    leads8 = project(rows, dipole) + project(atrial_rows(POP["atrial_chest_gain"]), atrial)
    leads8 += electrodes_to_leads(local)  # (8, T): I, II, V1..V6
    leads8[:2] *= params["_measured"]["limb_gain"]
    noise_info = None
    if config.noise is not None:
        leads8, noise_info = add_noise(rng, leads8, fs, config.noise, resp_hz, resp_phase)
    i, ii = leads8[0], leads8[1]
    signal = np.vstack([i, ii, *derive_limb_leads(i, ii), leads8[2:]]).astype(np.float32)  # (12, T)

    in_record = (onsets >= 0) & (onsets < seconds)
    rr_in = np.diff(onsets[in_record])
    hr = 60.0 / float(rr_in.mean()) if rr_in.size else 60.0 / mean_rr
    measured = params.get("_measured", {})
    has_p = not ({"AFIB", "AFLT"} & codes)
    extra = {
        "generator": "ecgalign.synth",
        "seed": seed,
        "index": index,
        "visit": visit,
        "hr_bpm": _round(hr),
        "rr_ms_mean": _round(1000 * mean_rr),
        "pr_ms": _round(1000 * pr) if has_p else None,
        "p_ms": _round(1000 * iv.p_dur) if has_p else None,
        "qrs_ms": _round(1000 * qrs),
        "qt_ms": _round(1000 * qt),
        "qtc_ms": _round(1000 * qtc),
        "axis_deg": _round(measured.get("axis_deg")),
        "sokolow_lyon_mv": _round(measured.get("sokolow_lyon_mv"), 3),
        "limb_qrs_max_mv": _round(measured.get("limb_qrs_max_mv"), 3),
        "resp_rate_bpm": _round(60 * resp_hz),
        "conditions": {c: _clean_json(params[c]) for c in cond.ordered(codes) if c in params},
        "beats": {
            "onset_s": [round(float(t), 3) for t in onsets[in_record]],
            "type": "".join("NVA"[int(k)] for k in types[in_record]),
        },
        "noise": noise_info,
        "snr_db": noise_info["snr_db"] if noise_info else None,
    }
    codes_t = cond.ordered(codes)
    original, report = write_report(
        rng, codes_t, extra, age, patient.sex, measurements=config.report_measurements
    )
    return ECGRecord(
        signal=signal,
        fs=fs,
        leads=LEADS_12,
        record_id=f"synth-{index:07d}",
        dataset="synthetic",
        patient_id=f"synth-p{number:07d}",
        age=age,
        sex=patient.sex,
        report=report,
        report_original=original,
        codes=codes_t,
        code_system="scp",
        fold=patient.fold,
        source=f"synthetic:seed={seed}:index={index}",
        extra=extra,
    ).validate(allow_nan=False)


def synthesize(
    n: int,
    seed: int = 0,
    *,
    fs: float = 500,
    seconds: float = 10.0,
    config: SynthConfig | None = None,
    workers: int = 1,
    start: int = 0,
) -> Iterator[ECGRecord]:
    """Records start..n-1 in index order; with ``workers`` > 1 a process pool makes them in chunks (same
    output for any worker count)."""
    if n < 0 or not 0 <= start <= max(n, 0):
        raise ValueError(f"need 0 <= start <= n, got start={start}, n={n}")
    make = partial(synthesize_record, seed=seed, fs=fs, seconds=seconds, config=config or SynthConfig())
    if workers <= 1 or n - start < 2:
        for i in range(start, n):
            yield make(i)
        return
    yield from parallel_records(make, start, n, workers)
