"""Reports name every finding of their record (and no other) in English and, through the toolkit's translator,
in the German or Swedish text as written; they vary, carry no measurements by default, and agree with age
and sex."""

from __future__ import annotations

import collections
import re

import pytest

from ecgalign.synth import SynthConfig, synthesize_record
from ecgalign.synth.conditions import OPT_IN

pytestmark = pytest.mark.slow

_MI = r"(infarct\w*|myocardial|ST|STEMI|injury|MI)\b"
KEYWORDS = {
    "SR": r"sinus rhythm|\bNSR\b",
    "SBRAD": r"sinus brady|bradycardic sinus|slow sinus",
    "STACH": r"sinus tach|tachycardic sinus|rapid sinus",
    "SARRH": r"sinus arrhythmia",
    "AFIB": r"atrial fibrillation|\bafib\b|\bAF\b",
    "AFLT": r"atrial flutter|\bAFL\b",
    "NORM": r"(?<!ab)normal (12-lead )?(ECG|electrocardiogram|tracing)|within normal limits|no abnormality",
    "1AVB": r"first[- ]degree|1st degree",
    "CLBBB": r"left bundle branch block|\bLBBB\b",
    "CRBBB": r"(?<!incomplete )(right bundle branch block|\bRBBB\b)",
    "IRBBB": r"incomplete (right bundle branch block|RBBB)",
    "LAFB": r"left anterior (fascicular block|hemiblock)|\bLAFB\b",
    "LVH": r"left ventricular hypertrophy|\bLVH\b",
    "IMI": r"\binferior " + _MI,
    "AMI": r"\banterior " + _MI,
    "ASMI": r"\banteroseptal " + _MI,
    "ISC_": r"ischemi|ischaemi",
    "NDT": r"\bT[- ]wave",
    "LNGQT": r"QT interval|QT prolongation|prolonged QTc?|long QTc",
    "PVC": r"\bPVCs?\b|ventricular premature|premature ventricular|(?<!supra)ventricular extrasystole|ventricular ectopic",
    "PAC": r"\bPACs?\b|atrial premature|premature atrial|supraventricular extrasystole|atrial ectopic",
    "LVOLT": r"low (QRS )?voltage|low limb lead voltage|peripheral low voltage",
    "LMI": r"\blateral " + _MI,
    "ILMI": r"\binferolateral " + _MI,
    "ALMI": r"\banterolateral " + _MI,
    "NST_": r"non-?specific (ST|st-t)\b",
    "LPFB": r"left posterior (fascicular block|hemiblock)|\bLPFB\b",
    "IVCD": r"intraventricular (conduction|block)|\bIVCD\b|non-specific bundle branch block",
    "STD_": r"ST segments? (are )?depress|ST segment depression",
}
# Label codes that are not clinical abbreviations must never appear verbatim.
LEAKS = (
    "NORM",
    "SBRAD",
    "STACH",
    "SARRH",
    "1AVB",
    "CLBBB",
    "CRBBB",
    "IRBBB",
    "IMI",
    "AMI",
    "ASMI",
    "ISC_",
    "NDT",
    "LNGQT",
    "LVOLT",
    "AFIB",
    "AFLT",
    "SR",
    "LMI",
    "ILMI",
    "ALMI",
    "NST_",
    "STD_",
)


def _check_findings(records) -> None:
    from ecgalign.data.reports import translate_report

    for rec in records:
        for text in (rec.report, translate_report(rec.report_original)):
            for code, pattern in KEYWORDS.items():
                found = re.search(pattern, text, flags=re.IGNORECASE) is not None
                if code in rec.codes:
                    assert found, (code, rec.codes, text)
                elif code != "SR":  # "sinus rhythm" also occurs inside other sinus rhythm phrasings
                    assert not found, (code, rec.codes, text)


def test_every_finding_is_in_the_report_and_nothing_else(population):
    _check_findings(population)


@pytest.mark.parametrize("code", OPT_IN)
def test_opt_in_codes_are_reported(code):
    """The eighth pass's opt-in codes (not drawn by default) in every language, forced."""
    cfg = SynthConfig(conditions=(code,), noise=None)
    records = [synthesize_record(i, 21, fs=100, config=cfg) for i in range(60)]
    assert {r.report_original != r.report for r in records} == {True, False}  # device and English reports
    _check_findings(records)


def test_languages_and_repetition_like_ptbxl(population):
    from ecgalign.data.reports import report_language

    langs = collections.Counter(report_language(r.report_original) for r in population)
    n = len(population)
    assert 0.45 * n < langs["de"] < 0.65 * n and 0.2 * n < langs["en"] < 0.4 * n and 0.08 * n < langs["sv"]
    normal = collections.Counter(r.report_original for r in population if r.codes == ("SR", "NORM"))
    assert normal["sinusrhythmus normales ekg"] > 0.15 * sum(normal.values())  # PTB-XL's commonest report


def test_no_label_code_leaks(population):
    for rec in population:
        for code in LEAKS:
            assert not re.search(rf"(?<![\w']){re.escape(code)}(?![\w])", rec.report), (code, rec.report)


def test_reports_vary(population):
    by_labels = collections.defaultdict(list)
    for rec in population:
        by_labels[rec.codes].append(rec.report)
    normal = by_labels[("SR", "NORM")]
    assert len(normal) > 200 and len(set(normal)) > 20
    assert len({r.report for r in population}) > 0.4 * len(population)
    hedged = sum(
        bool(
            re.search(
                r"possibl|probabl|consider|cannot (be )?(exclude|rule out)|suspect", r.report, flags=re.IGNORECASE
            )
        )
        for r in population
    )
    measured = sum(bool(re.search(r"\d+ ms", r.report)) for r in population)
    first = sum(
        re.search(KEYWORDS[r.codes[0]], r.report[:60], flags=re.IGNORECASE) is not None for r in population
    )
    assert 0.03 * len(population) < hedged < 0.4 * len(population)
    assert measured == 0  # no label-defining measurements by default
    assert first > 0.6 * len(population)  # the rhythm usually leads


def test_demographics_agree_with_the_record(population):
    mentioned = 0
    for rec in population:
        m = re.search(r"(\d+)(-year-old| y/o|, \d+ y\b| years| y\b)", rec.report)
        age = re.search(r"(\d+)(?:-year-old| y/o| years\b| y\b)", rec.report)
        female = re.search(r"\b(female|woman|F)\b", rec.report, flags=0)
        male = re.search(r"\b(male|man|M|Male|Man)\b", rec.report)
        if age:
            mentioned += 1
            assert int(age.group(1)) == round(rec.age), (rec.age, rec.report)
        if female:
            assert rec.sex == "F" and not male, rec.report
        if male:
            assert rec.sex == "M" and not female, rec.report
        assert m is None or age is not None
    assert 0.05 * len(population) < mentioned < 0.35 * len(population)  # English reports only


def test_measurements_only_on_request():
    from ecgalign.synth import SynthConfig, synthesize_record

    records = [synthesize_record(i, 4, fs=100, config=SynthConfig(report_measurements=True)) for i in range(150)]
    quoted = [r for r in records if re.search(r"\d+ ms|\d+ bpm", r.report)]
    assert quoted and all(r.report == r.report_original for r in quoted)  # English reports quote values
