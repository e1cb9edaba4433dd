"""Reports name every finding of their record (and no other), vary, and agree with age and sex."""

from __future__ import annotations

import collections
import re

import pytest

pytestmark = pytest.mark.slow

_MI = r"(infarct|myocardial|ST|STEMI|injury|MI)\b"
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
    "LNGQT": r"QT interval|QT prolongation|prolonged QTc|long QTc",
    "PVC": r"\bPVCs?\b|ventricular premature|premature ventricular|(?<!supra)ventricular extrasystole|ventricular ectopic",
    "PAC": r"\bPACs?\b|atrial premature|premature atrial|supraventricular extrasystole|atrial ectopic",
    "LVOLT": r"low (QRS )?voltage|low limb lead voltage|peripheral low voltage",
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
)


def test_every_finding_is_in_the_report_and_nothing_else(population):
    for rec in population:
        for code, pattern in KEYWORDS.items():
            found = re.search(pattern, rec.report, flags=re.IGNORECASE) is not None
            if code in rec.codes:
                assert found, (code, rec.codes, rec.report)
            elif code != "SR":  # "sinus rhythm" also occurs inside other sinus rhythm phrasings
                assert not found, (code, rec.codes, rec.report)


def test_no_label_code_leaks(population):
    for rec in population:
        for code in LEAKS:
            assert not re.search(rf"(?<![\w']){re.escape(code)}(?![\w])", rec.report), (code, rec.report)


def test_reports_vary(population):
    by_labels = collections.defaultdict(list)
    for rec in population:
        by_labels[rec.codes].append(rec.report)
    normal = by_labels[("SR", "NORM")]
    assert len(normal) > 200 and len(set(normal)) > 0.8 * len(normal)
    assert len({r.report for r in population}) > 0.95 * len(population)
    hedged = sum(
        bool(
            re.search(
                r"possible|probable|consider|cannot (exclude|rule out)|suspect", r.report, flags=re.IGNORECASE
            )
        )
        for r in population
    )
    measured = sum(bool(re.search(r"\d+ ms", r.report)) for r in population)
    first = sum(
        re.search(KEYWORDS[r.codes[0]], r.report[:60], flags=re.IGNORECASE) is not None for r in population
    )
    assert 0.03 * len(population) < hedged < 0.4 * len(population)
    assert 0.15 * len(population) < measured < 0.8 * len(population)
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
    assert 0.3 * len(population) < mentioned < 0.7 * len(population)
