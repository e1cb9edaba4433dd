"""Label consistency over a population: valid SCP codes, one rhythm, no contradictions, every class present."""

from __future__ import annotations

import collections

import pytest

from ecgalign.data.labels import SCPStatements
from ecgalign.synth import CODES, RHYTHMS, SynthConfig, synthesize_record
from ecgalign.synth.conditions import OPT_IN, conflicts

pytestmark = pytest.mark.slow

CONTRADICTIONS = [
    ("AFIB", "1AVB"),
    ("AFLT", "1AVB"),
    ("AFIB", "SR"),
    ("AFIB", "SBRAD"),
    ("AFIB", "PAC"),
    ("CLBBB", "CRBBB"),
    ("CLBBB", "LAFB"),
    ("CLBBB", "IRBBB"),
    ("CRBBB", "IRBBB"),
    ("LVH", "LVOLT"),
]


def test_codes_are_consistent(population):
    statements = SCPStatements.bundled()
    for rec in population:
        codes = set(rec.codes)
        assert len(codes) == len(rec.codes)
        assert sum(c in RHYTHMS for c in rec.codes) == 1 and rec.codes[0] in RHYTHMS
        assert all(c in statements.codes for c in rec.codes)
        assert not any(a in codes and b in codes for a, b in CONTRADICTIONS), rec.codes
        assert not conflicts(rec.codes)
        if "NORM" in codes:
            assert codes - {"NORM"} <= {"SR", "SBRAD", "STACH", "SARRH"}
        else:
            assert codes - set(RHYTHMS) or codes & {"AFIB", "AFLT"}, rec.codes
        assert statements.label_sets(rec.codes)["rhythm"] == [rec.codes[0]]


def test_every_class_is_present(population):
    statements = SCPStatements.bundled()
    n = len(population)
    superclass = collections.Counter(
        c for r in population for c in statements.map_codes(r.codes, "superdiagnostic")
    )
    assert set(superclass) == {"NORM", "MI", "STTC", "CD", "HYP"}
    assert all(0.04 * n < count < 0.7 * n for count in superclass.values()), superclass
    codes = collections.Counter(c for r in population for c in r.codes)
    # every supported code occurs, except the opt-in ones (not drawn by default; forced in test_reports.py)
    assert set(codes) == set(CODES) - set(OPT_IN)
    assert 0.3 * n < codes["NORM"] < 0.6 * n


def test_age_and_sex_shape_prevalence(population):
    old = [r for r in population if r.age >= 65]
    young = [r for r in population if r.age < 45]

    def rate(group, codes):
        return sum(bool(set(r.codes) & codes) for r in group) / len(group)

    for codes in ({"IMI", "AMI", "ASMI"}, {"AFIB"}, {"CLBBB", "CRBBB"}, {"LVH"}):
        assert rate(old, codes) > 2 * rate(young, codes), codes
    men = [r for r in population if r.sex == "M"]
    women = [r for r in population if r.sex == "F"]
    assert rate(men, {"IMI", "AMI", "ASMI"}) > rate(women, {"IMI", "AMI", "ASMI"})

    def qtc(group):
        return sum(r.extra["qtc_ms"] for r in group) / len(group)

    assert qtc(women) > qtc(men)


def test_forced_and_prevalence_overrides():
    afib = [
        synthesize_record(i, 0, fs=100, config=SynthConfig(conditions=("AFIB",), noise=None))
        for i in range(20)
    ]
    assert all(r.codes[0] == "AFIB" and "1AVB" not in r.codes for r in afib)
    only = [
        synthesize_record(
            i, 0, fs=100, config=SynthConfig(conditions=("CRBBB", "LAFB"), exclusive=True, noise=None)
        )
        for i in range(10)
    ]
    assert all(r.codes == ("SR", "CRBBB", "LAFB") for r in only)
    none = {c: 0.0 for c in CODES if c not in ("SR", "NORM")}
    normal = [
        synthesize_record(i, 0, fs=100, config=SynthConfig(prevalence=none, noise=None)) for i in range(20)
    ]
    assert all(r.codes == ("SR", "NORM") for r in normal)
    half = [
        synthesize_record(i, 0, fs=100, config=SynthConfig(prevalence={"NORM": 0.5}, noise=None))
        for i in range(200)
    ]
    assert 0.35 < sum("NORM" in r.codes for r in half) / 200 < 0.65
