"""Free-text reports for synthetic records, varied the way machine and clinician reports vary.

Like PTB-XL (Wagner et al., Sci Data 2020) a report is a German (55 %), English (30 %) or Swedish (15 %)
statement list (``LANGUAGE_SHARES``; German and Swedish in ecgalign.synth.device_reports); ``record.report``
holds its English rendering and ``report_original`` the text as written. Every SCP code of a record becomes
one statement (several phrasings each, abbreviations, occasional hedging such as "possible" or "cannot
exclude", ST-T changes named by lead); the rhythm usually comes first; a summary line ("normal ECG",
"borderline ECG", "abnormal ECG") and, in English, the patient's age and sex appear some of the time.
Label-defining measurements (rate, PR, QRS, QTc, axis, Sokolow-Lyon voltage) are left out, as in real reports,
unless ``measurements`` is set.
A hedged statement still names a real finding, so report text and labels always agree. Label codes that are
not clinical abbreviations (e.g. "CLBBB", "SBRAD") never appear; LBBB, RBBB, LAFB, LVH, AF, PVC do.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ecgalign.synth.conditions import MINOR
from ecgalign.synth.device_reports import MI_LEADS, ST_LEADS, T_LEADS, device_report

LANGUAGE_SHARES: dict[str, float] = {"de": 0.55, "en": 0.30, "sv": 0.15}
_MEASURED = ("{hr}", "{pr}", "{qrs}", "{qtc}", "{axis}", "{sokolow}")

_HEDGES = (
    "possible {}",
    "probable {}",
    "consider {}",
    "cannot exclude {}",
    "cannot rule out {}",
    "{}, probable",
    "suspect {}",
)
_RHYTHM = {
    "SR": (
        "sinus rhythm",
        "normal sinus rhythm",
        "NSR",
        "regular sinus rhythm",
        "sinus rhythm, rate {hr}",
        "sinus rhythm at {hr} bpm",
        "normal sinus rhythm, {hr}/min",
    ),
    "SBRAD": (
        "sinus bradycardia",
        "sinus brady",
        "sinus bradycardia, rate {hr}",
        "bradycardic sinus rhythm",
        "slow sinus rhythm at {hr} bpm",
    ),
    "STACH": (
        "sinus tachycardia",
        "sinus tach",
        "sinus tachycardia, rate {hr}",
        "tachycardic sinus rhythm",
        "rapid sinus rhythm at {hr} bpm",
    ),
    "SARRH": (
        "sinus arrhythmia",
        "sinus rhythm with marked sinus arrhythmia",
        "respiratory sinus arrhythmia",
        "marked sinus arrhythmia",
    ),
    "AFIB": (
        "atrial fibrillation",
        "afib",
        "AF with {response} ventricular response",
        "atrial fibrillation with {response} ventricular response",
        "{coarse} atrial fibrillation",
        "atrial fibrillation, ventricular rate {hr}",
    ),
    "AFLT": (
        "atrial flutter",
        "atrial flutter with {conduction} AV conduction",
        "AFL with {conduction} block",
        "typical atrial flutter",
        "atrial flutter, ventricular rate {hr}",
    ),
}
_FINDING = {
    "NORM": (
        "normal ECG",
        "within normal limits",
        "normal electrocardiogram",
        "ECG within normal limits",
        "no abnormality detected",
        "normal tracing",
        "normal 12-lead ECG",
        "tracing within normal limits",
    ),
    "1AVB": (
        "first degree AV block",
        "1st degree AV block",
        "first-degree atrioventricular block",
        "first degree AV block (PR {pr} ms)",
        "1st degree A-V block",
    ),
    "CLBBB": (
        "left bundle branch block",
        "LBBB",
        "complete left bundle branch block",
        "complete LBBB",
        "left bundle branch block (QRS {qrs} ms)",
    ),
    "CRBBB": (
        "right bundle branch block",
        "RBBB",
        "complete right bundle branch block",
        "complete RBBB",
        "right bundle branch block, QRS {qrs} ms",
    ),
    "IRBBB": (
        "incomplete right bundle branch block",
        "incomplete RBBB",
        "rSr' in V1, incomplete RBBB",
        "incomplete right bundle branch block pattern",
    ),
    "LAFB": (
        "left anterior fascicular block",
        "LAFB",
        "left anterior hemiblock",
        "left axis deviation ({axis} deg), left anterior fascicular block",
        "left anterior hemiblock (LAFB)",
    ),
    "LVH": (
        "left ventricular hypertrophy",
        "LVH",
        "LVH by voltage criteria",
        "voltage criteria for LVH",
        "left ventricular hypertrophy (Sokolow-Lyon {sokolow} mV)",
    ),
    "LVH_strain": (
        "left ventricular hypertrophy with repolarization abnormality",
        "LVH with strain pattern",
        "LVH with secondary repolarization changes",
    ),
    "ISC_": (
        "ST depression in {st_leads}, consider ischemia",
        "ischemic ST-T changes in {st_leads}",
        "ischemic ST-T changes",
        "ST depression, consider ischemia",
        "ST-T changes suggestive of ischemia",
        "nonspecific ischemic ST changes",
        "ischaemic ST depression",
        "subendocardial ischemia pattern",
    ),
    "NDT": (
        "T wave inversion in {t_leads}",
        "nonspecific T wave flattening in {t_leads}",
        "nonspecific T wave abnormality",
        "non-specific T-wave changes",
        "T wave abnormality, nonspecific",
        "T wave {t_change}, nonspecific",
        "nonspecific T-wave {t_change}",
    ),
    "LNGQT": (
        "prolonged QT interval",
        "long QT interval",
        "QT prolongation",
        "prolonged QTc ({qtc} ms)",
        "long QTc",
    ),
    "PVC": (
        "ventricular premature complexes",
        "PVCs",
        "premature ventricular contractions",
        "ventricular extrasystoles",
        "ventricular ectopic beats",
        "with premature ventricular complexes",
    ),
    "PVC_one": (
        "a single PVC",
        "one premature ventricular complex",
        "isolated ventricular premature beat",
        "occasional PVC",
    ),
    "PAC": (
        "atrial premature complexes",
        "PACs",
        "premature atrial contractions",
        "supraventricular extrasystoles",
        "atrial ectopic beats",
    ),
    "PAC_one": (
        "a single PAC",
        "one premature atrial complex",
        "isolated atrial premature beat",
        "occasional PAC",
    ),
    # Eighth pass. NST_ always says "non-specific ST" (real English PTB-XL: "minor non-specific st-t wave changes");
    # STD_ the real English form "st segments are depressed in ..." (its 22 ptbxl-500 records are all English).
    "LPFB": (
        "left posterior fascicular block",
        "LPFB",
        "left posterior hemiblock",
        "right axis deviation ({axis} deg), left posterior fascicular block",
        "right axis deviation, left posterior hemiblock",
    ),
    "IVCD": (
        "non-specific intraventricular conduction delay",
        "nonspecific intraventricular block",
        "intraventricular conduction delay",
        "IVCD",
        "non-specific intraventricular conduction disturbance (QRS {qrs} ms)",
    ),
    "NST_": (
        "non-specific ST changes",
        "nonspecific ST-T changes",
        "minor non-specific ST-T changes",
        "non-specific ST-T changes in {st_leads}",
        "nonspecific ST segment changes",
    ),
    "STD_": (
        "ST segments are depressed in {st_leads}",
        "ST segment depression in {st_leads}",
        "widespread ST segment depression",
        "ST segments depressed in {st_leads}",
    ),
    "LVOLT": (
        "low voltage in limb leads",
        "low QRS voltage in the limb leads",
        "low limb lead voltage",
        "peripheral low voltage",
        "low voltage QRS, limb leads",
    ),
}
_MI = {
    "IMI": "inferior",
    "AMI": "anterior",
    "ASMI": "anteroseptal",
    "LMI": "lateral",
    "ILMI": "inferolateral",
    "ALMI": "anterolateral",
}
_MI_TEXT = {
    "acute": (
        "ST elevation in {mi_leads}, acute {site} infarct",
        "acute {site} infarct",
        "acute {site} myocardial infarction",
        "{site} ST elevation, acute MI",
        "acute {site} STEMI",
        "{site} injury pattern, acute infarction",
    ),
    "recent": (
        "recent {site} infarct",
        "{site} infarct, probably recent",
        "{site} myocardial infarction, age undetermined",
        "{site} MI of uncertain age",
    ),
    "old": (
        "old {site} infarct",
        "{site} infarct, old",
        "{site} myocardial infarction, probably old",
        "Q waves consistent with old {site} MI",
        "prior {site} MI",
    ),
}
_SUMMARY = {
    "otherwise normal": ("otherwise normal ECG", "otherwise within normal limits"),
    "borderline": ("borderline ECG", "borderline abnormal ECG"),
    "abnormal": ("abnormal ECG", "abnormal electrocardiogram", "ABNORMAL ECG"),
}
_NOT_HEDGED = frozenset({"NORM", "PVC", "PAC"})


def _pick(rng: np.random.Generator, options: Sequence[str], measurements: bool = True) -> str:
    """One option; without ``measurements``, options quoting a measured value are not eligible."""
    if not measurements:
        options = [o for o in options if not any(m in o for m in _MEASURED)] or options[:1]
    return options[int(rng.integers(len(options)))]


def _context(extra: dict) -> dict:
    conds = extra.get("conditions", {})
    afib, aflt = conds.get("AFIB", {}), conds.get("AFLT", {})
    ndt = conds.get("NDT", {})
    hr = extra.get("hr_bpm") or 0
    return {
        "hr": round(hr),
        "pr": _int(extra.get("pr_ms")),
        "qrs": _int(extra.get("qrs_ms")),
        "qtc": _int(extra.get("qtc_ms")),
        "axis": _int(extra.get("axis_deg")),
        "sokolow": f"{(extra.get('sokolow_lyon_mv') or 0):.1f}",
        "response": "rapid" if hr > 100 else ("slow" if hr < 60 else "controlled"),
        "coarse": "coarse" if afib.get("f_mv", 0) > 0.06 else "fine",
        "conduction": aflt.get("conduction", ""),
        "t_change": "inversion" if ndt.get("t_factor", 0) < 0 else "flattening",
        "st_leads": ST_LEADS[0].upper(),
        "t_leads": T_LEADS[0].upper(),
    }


def _int(x) -> int | None:
    return None if x is None else round(x)


def _statement(rng: np.random.Generator, code: str, extra: dict, ctx: dict, measurements: bool = True) -> str:
    conds = extra.get("conditions", {})
    if code in _RHYTHM:
        return _pick(rng, _RHYTHM[code], measurements).format(**ctx)
    if code in _MI:
        stage = conds.get(code, {}).get("stage", "old")
        text = _pick(rng, _MI_TEXT[stage]).format(site=_MI[code], mi_leads=MI_LEADS[code].upper())
    elif code == "LVH" and conds.get("LVH", {}).get("strain") and rng.random() < 0.6:
        text = _pick(rng, _FINDING["LVH_strain"])
    elif code in ("PVC", "PAC") and conds.get(code, {}).get("count") == 1 and rng.random() < 0.6:
        text = _pick(rng, _FINDING[f"{code}_one"])
    else:
        lead_ctx = {"st_leads": _pick(rng, ST_LEADS).upper(), "t_leads": _pick(rng, T_LEADS).upper()}
        text = _pick(rng, _FINDING[code], measurements).format(**{**ctx, **lead_ctx})
    if code not in _NOT_HEDGED and rng.random() < 0.15:
        text = _pick(rng, _HEDGES).format(text)
    return text


def _measurements(rng: np.random.Generator, extra: dict, ctx: dict) -> str:
    items = [f"{_pick(rng, ('rate', 'HR', 'vent. rate', 'heart rate'))} {ctx['hr']} bpm"]
    if ctx["pr"] is not None:
        items.append(f"PR {ctx['pr']} ms")
    items.append(f"QRS {ctx['qrs']} ms")
    items.append(_pick(rng, (f"QT/QTc {_int(extra.get('qt_ms'))}/{ctx['qtc']} ms", f"QTc {ctx['qtc']} ms")))
    if ctx["axis"] is not None:
        items.append(f"axis {ctx['axis']}")
    keep = [x for x in items if rng.random() < 0.7] or items[:1]
    return ", ".join(keep)


def _demographics(rng: np.random.Generator, age: float | None, sex: str | None) -> str:
    word = {"M": ("male", "man", "M"), "F": ("female", "woman", "F")}[sex] if sex else None
    years = None if age is None else round(age)
    forms = []
    if years is not None and word:
        forms += [
            f"{years}-year-old {word[0]}",
            f"{years} y/o {word[2]}",
            f"{word[0].capitalize()}, {years} years",
            f"{word[1]}, {years} y",
        ]
    elif years is not None:
        forms += [f"age {years} years", f"{years}-year-old patient"]
    elif word:
        forms += [f"{word[0]} patient"]
    return _pick(rng, forms) if forms else ""


def write_report(
    rng: np.random.Generator,
    codes: Sequence[str],
    extra: dict,
    age: float | None,
    sex: str | None,
    *,
    measurements: bool = False,
) -> tuple[str, str]:
    """(report as written, English rendering) of a record with SCP ``codes`` (rhythm first) and ground truth
    ``extra``; the language is drawn with LANGUAGE_SHARES. ``measurements`` lets English statements quote
    measured values (rate, PR, QRS, QTc, axis, Sokolow-Lyon) and adds a measurement line to some reports."""
    langs = list(LANGUAGE_SHARES)
    lang = langs[int(rng.choice(len(langs), p=list(LANGUAGE_SHARES.values())))]
    if lang != "en":
        return device_report(rng, codes, extra.get("conditions", {}), lang)
    text = _english(rng, codes, extra, age, sex, measurements)
    return text, text


def _english(
    rng: np.random.Generator, codes: Sequence[str], extra: dict, age: float | None, sex: str | None,
    measurements: bool,
) -> str:
    ctx = _context(extra)
    rhythm = [c for c in codes if c in _RHYTHM]
    findings = [c for c in codes if c not in _RHYTHM and c != "NORM"]
    statements = [_statement(rng, c, extra, ctx, measurements) for c in findings]
    order = rng.permutation(len(statements))
    statements = [statements[i] for i in order]
    rhythm_text = [_statement(rng, c, extra, ctx, measurements) for c in rhythm]
    at = 0 if rng.random() < 0.85 else int(rng.integers(len(statements) + 1))
    statements[at:at] = rhythm_text
    if "NORM" in codes:
        unusual_rate = bool(set(codes) & {"SBRAD", "STACH"})
        statements.append(
            _pick(rng, _SUMMARY["otherwise normal"])
            if unusual_rate and rng.random() < 0.5
            else _statement(rng, "NORM", extra, ctx)
        )
    elif rng.random() < 0.7:
        minor = all(c in MINOR or c == "SR" for c in codes)
        statements.append(_pick(rng, _SUMMARY["borderline" if minor else "abnormal"]))
    if measurements and rng.random() < 0.35:
        statements.insert(int(rng.integers(1, len(statements) + 1)), _measurements(rng, extra, ctx))
    demo = _demographics(rng, age, sex) if rng.random() < 0.5 else ""
    sep = _pick(rng, (". ", ". ", "; ", ", ", " - "))
    lower = rng.random() < 0.3
    # Capitalise words, never notations such as "rSr'".
    parts = [
        s[0].upper() + s[1:] if not lower and s[:2].isalpha() and s[:2].islower() else s for s in statements
    ]
    text = sep.join(parts)
    if demo:
        text = f"{demo}: {text}" if rng.random() < 0.5 else f"{text}{sep}{demo}"
    return text + ("." if sep == ". " and not text.endswith(".") else "")
