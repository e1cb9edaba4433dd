"""German and Swedish device statements in the style of PTB-XL reports, each with its English rendering.

PTB-XL reports (Wagner et al., Sci Data 2020) are mostly statements of the recording devices in German
("sinusrhythmus normales ekg"), some in Swedish ("sinusrytm vänster el-axel"): lower case, no measurements,
ST-T changes named by lead, hedges such as "wahrscheinlich" / "möjligen", and one very common normal phrase
repeated verbatim. The phrases here are ones the toolkit's translator (``report_phrases.csv``) knows, so a
synthetic report goes through the same translation as a real one; each option carries the English the
generator stores in ``record.report`` (the device text stays in ``report_original``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Phrase = tuple[str, str]  # (device text, English)

_DE: dict[str, tuple[Phrase, ...]] = {
    "SR": (("sinusrhythmus", "sinus rhythm"), ("sinus rhythmus", "sinus rhythm")),
    "SBRAD": (("sinusbradykardie", "sinus bradycardia"),),
    "STACH": (("sinustachykardie", "sinus tachycardia"),),
    "SARRH": (
        ("sinusarrhythmie", "sinus arrhythmia"),
        ("sinusrhythmus sinusarrhythmie", "sinus rhythm sinus arrhythmia"),
    ),
    "AFIB": (
        ("vorhofflimmern", "atrial fibrillation"),
        ("tachykardes vorhofflimmern", "atrial fibrillation with rapid ventricular response"),
        ("vorhofflimmern unregelmässiger rhythmus", "atrial fibrillation irregular rhythm"),
    ),
    "AFLT": (("vorhofflattern", "atrial flutter"),),
    "NORM": (("normales ekg", "normal ecg"), ("ekg normal", "normal ecg")),
    "1AVB": (("av-block i. grades", "first degree av block"), ("a-v block i", "first degree av block")),
    "CLBBB": (("linksschenkelblock", "left bundle branch block"),),
    "CRBBB": (("rechtsschenkelblock", "right bundle branch block"),),
    "IRBBB": (
        ("inkompletter rechtsschenkelblock", "incomplete right bundle branch block"),
        ("unvollständiger rechtsschenkelblock", "incomplete right bundle branch block"),
    ),
    "LAFB": (
        ("linksanteriorer hemiblock", "left anterior fascicular block"),
        (
            "ueberdrehter linkstyp linksanteriorer hemiblock",
            "left axis deviation left anterior fascicular block",
        ),
    ),
    "LVH": (
        ("linkshypertrophie", "left ventricular hypertrophy"),
        ("amplitudenkriterien für linkshypertrophie", "voltage criteria for left ventricular hypertrophy"),
    ),
    "ISC_": (
        ("st-senkung in {st_leads}, ischämie", "st depression in {st_leads}, ischaemia"),
        ("laterale ischämie", "lateral ischaemia"),
        ("st-senkungen in {st_leads} ischämie", "st depressions in {st_leads} ischaemia"),
    ),
    "NDT": (
        ("t-veränderungen in {t_leads}", "t wave changes in {t_leads}"),
        ("unspezifisches abnormales t in {t_leads}", "non-specific t wave abnormality in {t_leads}"),
    ),
    "LNGQT": (("qt-verlängerung", "prolonged qt"),),
    "PVC": (("ventrikuläre extrasystole(n)", "ventricular extrasystole(s)"),),
    "PAC": (("supraventrikuläre extrasystole(n)", "supraventricular extrasystole(s)"),),
    "LVOLT": (("periphere niederspannung", "low limb lead voltage"),),
    "LPFB": (
        ("linksposteriorer hemiblock", "left posterior fascicular block"),
        ("rechtstyp linksposteriorer hemiblock", "right axis left posterior fascicular block"),
    ),
    "IVCD": (
        (
            "unspezifische intraventrikuläre leitungsstörung",
            "non-specific intraventricular conduction disturbance",
        ),
        ("intraventrikuläre leitungsstörung", "intraventricular conduction disturbance"),
    ),
    "NST_": (
        ("unspezifische st-veränderungen", "non-specific st changes"),
        ("unspezifische st-veränderungen in {st_leads}", "non-specific st changes in {st_leads}"),
    ),
    "STD_": (("st-streckensenkung in {st_leads}", "st segment depression in {st_leads}"),),
}
_DE_MI = {
    "IMI": ("inferiorer", "inferior"),
    "AMI": ("anteriorer", "anterior"),
    "ASMI": ("anteroseptaler", "anteroseptal"),
    "LMI": ("lateraler", "lateral"),
    "ILMI": ("inferolateraler", "inferolateral"),
    "ALMI": ("anterolateraler", "anterolateral"),
}
_DE_STAGE = {
    "acute": (
        ("akuter {site} infarkt", "acute {site} infarction"),
        (
            "st-hebung in {mi_leads}, {site} infarkt akut",
            "st elevation in {mi_leads}, {site} infarction acute",
        ),
    ),
    "recent": (
        ("{site} infarkt alter unbest.", "{site} infarction age undetermined"),
        ("{site} infarkt subakut", "{site} infarction subacute"),
    ),
    "old": (
        ("{site} infarkt wahrscheinlich alt", "{site} infarction probably old"),
        ("{site} infarkt alt", "{site} infarction old"),
    ),
}
_SV: dict[str, tuple[Phrase, ...]] = {
    "SR": (("sinusrytm", "sinus rhythm"), ("sinusrytm regelbunden rytm", "sinus rhythm regular rhythm")),
    "SBRAD": (("sinusbradykardi", "sinus bradycardia"),),
    "STACH": (("sinustachykardi", "sinus tachycardia"),),
    "SARRH": (("sinusarytmi", "sinus arrhythmia"),),
    "AFIB": (("förmaksflimmer", "atrial fibrillation"),),
    "AFLT": (("förmaksfladder", "atrial flutter"),),
    "NORM": (("normalt ekg", "normal ecg"),),
    "1AVB": (("a-v block i", "first degree av block"),),
    "CLBBB": (("vänstersidigt skänkelblock", "left bundle branch block"),),
    "CRBBB": (("högersidigt skänkelblock", "right bundle branch block"),),
    "IRBBB": (("inkomplett högersidigt skänkelblock", "incomplete right bundle branch block"),),
    "LAFB": (
        ("vänster anteriort hemiblock", "left anterior fascicular block"),
        ("vänster el-axel vänster främre hemiblock", "left axis deviation left anterior fascicular block"),
    ),
    "LVH": (("vänster kammarhypertrofi", "left ventricular hypertrophy"),),
    "ISC_": (("st-t sänkning i {st_leads}, ischemi", "st-t depression in {st_leads}, ischemia"),),
    "NDT": (
        ("ospecifik t-förändring i {t_leads}", "non-specific t wave change in {t_leads}"),
        ("flacka t-vågor i {t_leads}", "flat t waves in {t_leads}"),
    ),
    "LNGQT": (("qt förlängd", "prolonged qt"),),
    "PVC": (("ventrikulär(a) extrasystoli(er)", "ventricular extrasystole(s)"),),
    "PAC": (("supraventrikulär(a) extrasystoli(er)", "supraventricular extrasystole(s)"),),
    "LVOLT": (("låga qrs amplituder i extremitetsavledningarna", "low qrs voltages in the limb leads"),),
    "LPFB": (
        ("vänster posteriort hemiblock", "left posterior fascicular block"),
        ("höger el-axel vänster posteriort hemiblock", "right axis deviation left posterior fascicular block"),
    ),
    "IVCD": (("ospecifikt skänkelblock", "non-specific bundle branch block"),),
    "NST_": (("ospecifik st-t förändring i {st_leads}", "non-specific st-t change in {st_leads}"),),
    "STD_": (("st-sträckesänkning i {st_leads}", "st segment depression in {st_leads}"),),
}
_SV_MI = {
    "IMI": ("inferior", "inferior"),
    "AMI": ("anterior", "anterior"),
    "ASMI": ("anteroseptal", "anteroseptal"),
    "LMI": ("lateral", "lateral"),
    "ILMI": ("inferolateral", "inferolateral"),
    "ALMI": ("anterolateral", "anterolateral"),
}
_SV_STAGE = {
    "acute": (("{site} infarkt, möjligen färsk", "{site} infarction, possibly recent"),),
    "recent": (("{site} infarkt, möjligen färsk", "{site} infarction, possibly recent"),),
    "old": (("{site} infarkt", "{site} infarction"),),
}
_HEDGE = {
    "de": (
        ("wahrscheinlich {}", "probably {}"),
        ("{} möglich", "{} possible"),
        ("verdacht auf {}", "suspected {}"),
        ("{} nicht auszuschliessen", "{} cannot be excluded"),
    ),
    "sv": (("möjligen {}", "possibly {}"),),
}
_SUMMARY = {
    "de": {
        "abnormal": (("pathologisches ekg", "abnormal ecg"), ("path.ekg", "abnormal ecg")),
        "otherwise normal": (("sonst normales ekg", "otherwise normal ecg"),),
    },
    "sv": {
        "abnormal": (("avvikande ekg", "abnormal ecg"),),
        "otherwise normal": (("eljest normalt ekg", "otherwise normal ecg"),),
    },
}
# The canonical normal report, repeated verbatim as in PTB-XL, and how often a normal record gets it.
CANONICAL_NORMAL = {
    "de": ("sinusrhythmus normales ekg", "sinus rhythm normal ecg"),
    "sv": ("sinusrytm normalt ekg", "sinus rhythm normal ecg"),
}
CANONICAL_SHARE = 0.5
_NOT_HEDGED = frozenset({"NORM", "PVC", "PAC", "SR"})
ST_LEADS = ("v4-v6", "v5,v6", "i, avl, v5, v6", "ii, iii, avf, v4-v6")
T_LEADS = ("i, avl", "v4-v6", "ii, iii, avf", "v1-v3", "i, ii, v4-v6")
MI_LEADS = {"IMI": "ii, iii, avf", "AMI": "v2-v4", "ASMI": "v1-v3", "LMI": "i, avl, v5, v6",
            "ILMI": "ii, iii, avf, v5, v6", "ALMI": "v3-v6, i, avl"}


def _pick(rng: np.random.Generator, options: Sequence[Phrase]) -> Phrase:
    return options[int(rng.integers(len(options)))]


def device_report(
    rng: np.random.Generator, codes: Sequence[str], conditions: dict, lang: str
) -> tuple[str, str]:
    """(device text, English) of a record with SCP ``codes`` in ``lang`` ("de" or "sv")."""
    table, mi_site, stages = (_DE, _DE_MI, _DE_STAGE) if lang == "de" else (_SV, _SV_MI, _SV_STAGE)
    if codes and set(codes) in ({"SR", "NORM"},) and rng.random() < CANONICAL_SHARE:
        return CANONICAL_NORMAL[lang]
    leads = {
        "st_leads": ST_LEADS[int(rng.integers(len(ST_LEADS)))],
        "t_leads": T_LEADS[int(rng.integers(len(T_LEADS)))],
    }
    rhythm = [c for c in codes if c in ("SR", "SBRAD", "STACH", "SARRH", "AFIB", "AFLT")]
    findings = [c for c in codes if c not in rhythm and c != "NORM"]
    out: list[Phrase] = []
    for code in findings:
        if code in mi_site:
            stage = conditions.get(code, {}).get("stage", "old")
            fmt = {"site": mi_site[code][0], "mi_leads": MI_LEADS[code]}
            eng = {"site": mi_site[code][1], "mi_leads": MI_LEADS[code]}
            dev, en = _pick(rng, stages[stage])
            phrase = (dev.format(**fmt), en.format(**eng))
        else:
            dev, en = _pick(rng, table[code])
            phrase = (dev.format(**leads), en.format(**leads))
        if code not in _NOT_HEDGED and rng.random() < 0.12:
            h_dev, h_en = _pick(rng, _HEDGE[lang])
            phrase = (h_dev.format(phrase[0]), h_en.format(phrase[1]))
        out.append(phrase)
    out = [out[i] for i in rng.permutation(len(out))]
    out[0:0] = [_pick(rng, table[c]) for c in rhythm]
    if "NORM" in codes:
        unusual = bool(set(codes) & {"SBRAD", "STACH"})
        out.append(
            _pick(rng, _SUMMARY[lang]["otherwise normal"])
            if unusual and rng.random() < 0.5
            else _pick(rng, table["NORM"])
        )
    elif findings and rng.random() < 0.4:
        out.append(_pick(rng, _SUMMARY[lang]["abnormal"]))
    sep = " " if rng.random() < 0.6 else ". "
    return sep.join(p[0] for p in out), sep.join(p[1] for p in out)
