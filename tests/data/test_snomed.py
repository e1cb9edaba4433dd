"""The SNOMED CT table of the PhysioNet/CinC Challenge 2020/2021 and its label sets."""

from __future__ import annotations

import pytest

from ecgalign.data.labels import LabelScheme
from ecgalign.data.labels.snomed import (
    SCORED_EQUIVALENTS,
    UNKNOWN_MARKER,
    SnomedConcept,
    SnomedScheme,
    snomed_scheme,
    snomed_table,
)


def test_table_codes_and_abbreviations_are_unique():
    table = snomed_table()
    assert len({c.code for c in table}) == len(table)
    assert len({c.abbreviation for c in table}) == len(table)
    assert all(c.code.isdigit() and c.name for c in table)
    # 30 codes scored in 2021 plus the unscored list.
    assert sum(c.scored for c in table) == 30
    assert len(table) == 133


@pytest.mark.parametrize(
    "code, abbreviation, name",
    [
        ("426783006", "NSR", "Sinus rhythm"),
        ("164889003", "AF", "Atrial fibrillation"),
        ("270492004", "IAVB", "First-degree atrioventricular block"),
        ("59118001", "RBBB", "Right bundle branch block"),
        ("713427006", "CRBBB", "Complete right bundle branch block"),
        ("67741000119109", "LAE", "Left atrial enlargement"),
        ("55930002", "STC", "ST changes"),
        ("429622005", "STD", "ST depression"),
        ("164931005", "STE", "ST elevation"),
    ],
)
def test_known_codes(code, abbreviation, name):
    scheme = snomed_scheme()
    assert scheme.abbreviation(code) == abbreviation
    assert scheme.describe(code) == name
    assert scheme.map_codes([code], "snomed") == [abbreviation]


def test_scored_set_merges_the_four_equivalent_pairs():
    scheme = snomed_scheme()
    classes = scheme.classes("scored")
    assert len(classes) == 26
    for merged, codes in SCORED_EQUIVALENTS.items():
        assert merged in classes
        for code in codes:
            assert scheme.map_codes([code], "scored") == [merged]
        assert scheme.map_codes(list(codes), "scored") == [merged]
        assert set(scheme.codes_of("scored", merged)) == set(codes)
    for separate in ("CRBBB", "CLBBB", "SVPB", "VPB"):
        assert separate not in classes
    assert SCORED_EQUIVALENTS["RBBB"] == ("713427006", "59118001")
    assert SCORED_EQUIVALENTS["PAC"] == ("284470004", "63593006")
    assert SCORED_EQUIVALENTS["PVC"] == ("427172004", "17338001")
    assert SCORED_EQUIVALENTS["LBBB"] == ("733534002", "164909002")


def test_unscored_codes_only_in_snomed_set():
    scheme = snomed_scheme()
    sets = scheme.label_sets(["164873001", "426783006"])  # LVH (unscored), sinus rhythm (scored)
    assert sets == {"scored": ["NSR"], "snomed": ["LVH", "NSR"]}
    assert len(scheme.classes("snomed")) == 133


def test_unknown_codes_are_kept_apart_and_described():
    scheme = snomed_scheme()
    codes = ["251238007", " 164889003 ", "6180003"]
    assert scheme.label_sets(codes) == {"scored": ["AF"], "snomed": ["AF"]}
    assert scheme.unknown(codes) == ["251238007", "6180003"]
    assert scheme.describe("251238007") == f"{UNKNOWN_MARKER} 251238007"
    assert scheme.abbreviation("251238007") is None


def test_protocol_and_errors():
    scheme = snomed_scheme()
    assert isinstance(scheme, LabelScheme)
    assert scheme.code_system == "snomed"
    assert scheme.set_names() == ["scored", "snomed"]
    with pytest.raises(ValueError, match="unknown SNOMED label set 'super'"):
        scheme.classes("super")
    with pytest.raises(ValueError, match="not a class"):
        scheme.codes_of("scored", "CRBBB")


def test_custom_table():
    scheme = SnomedScheme([SnomedConcept("1", "X", "Ex", True), SnomedConcept("2", "Y", "Why", False)])
    assert scheme.classes("scored") == ["X"]
    assert scheme.classes("snomed") == ["X", "Y"]
