"""Label maps of the distribution-shift protocol (MERIT Table 5) in this toolkit's class names."""

from __future__ import annotations

import numpy as np
import pytest

from ecgalign.data.labels.cross_dataset import (
    CPSC2018_FROM_MERL,
    CSN_FROM_MERL,
    MERIT_TABLE5,
    SHIFT_DIRECTIONS,
    SHIFT_DOMAINS,
    SHIFT_MAPS,
    domain_classes,
    map_labels,
    shared_label_space,
)
from ecgalign.data.labels.snomed import snomed_scheme

# SNOMED CT codes of MERL's (Chapman's) acronyms, from the dataset's ConditionNames_SNOMED-CT table.
CHAPMAN_CODES = {
    "SR": "426783006", "AFIB": "164889003", "VPB": "17338001", "APB": "284470004", "1AVB": "270492004",
    "2AVB": "195042002", "2AVB1": "54016002", "AVB": "233917008", "LBBB": "164909002", "RBBB": "59118001",
    "LVH": "164873001", "RVH": "89792004", "MI": "164865005", "STDD": "429622005", "STTC": "428750005",
    "STE": "164930006", "STTU": "164931005", "TWO": "59931005", "TWC": "164934002", "QTIE": "111975006",
}


def test_table_names_translate_and_exist_in_the_schemes():
    translations = {"cpsc2018": CPSC2018_FROM_MERL, "csn": CSN_FROM_MERL}
    for (group, member), rows in MERIT_TABLE5.items():
        if group in translations:
            assert set(rows) <= set(translations[group])
        assert {m for ms in rows.values() for m in ms} <= set(translations[member])
    for (group, member), rows in SHIFT_MAPS.items():
        assert sorted(rows) == sorted(domain_classes(group)), (group, member)
        names = {m for ms in rows.values() for m in ms}
        assert names <= set(domain_classes(member)), names - set(domain_classes(member))
    assert set(CPSC2018_FROM_MERL.values()) <= set(domain_classes("cpsc2018"))
    assert set(CSN_FROM_MERL.values()) <= set(domain_classes("csn"))


@pytest.mark.parametrize(("merl", "code"), CHAPMAN_CODES.items())
def test_csn_names_translate_by_snomed_code(merl, code):
    assert snomed_scheme().codes_of("snomed", CSN_FROM_MERL[merl]) == [code]


def test_translated_maps():
    assert SHIFT_MAPS[("ptbxl-super", "cpsc2018")] == {
        "HYP": (), "NORM": ("NORM",), "CD": ("IAVB", "RBBB", "LBBB"), "MI": (), "STTC": ("STE", "STD"),
    }
    csn = SHIFT_MAPS[("ptbxl-super", "csn")]
    assert csn["CD"] == ("IIAVB", "MoI", "IAVB", "AVB", "LBBB", "CLBBB", "RBBB", "CRBBB", "STD")
    assert csn["STTC"] == ("NSSTTA", "STIAb", "TInv", "STE", "LQT", "TAb")
    assert (csn["HYP"], csn["NORM"], csn["MI"]) == (("RVH", "LVH"), ("NSR",), ("MI",))
    cpsc = SHIFT_MAPS[("cpsc2018", "csn")]
    assert cpsc["STE"] == ("STIAb",) and cpsc["STD"] == ("STIAb", "NSSTTA", "STE", "STD")
    assert cpsc["PVC"] == ("VPB", "PVC") and cpsc["PAC"] == ("PAC", "SVPB")


def test_six_directions():
    assert len(set(SHIFT_DIRECTIONS)) == 6
    assert {d for pair in SHIFT_DIRECTIONS for d in pair} == set(SHIFT_DOMAINS)


def test_classes_without_counterpart_are_dropped_and_reported():
    space = shared_label_space("ptbxl-super", "cpsc2018")
    shared, source_to_shared, target_to_shared = space
    assert shared == ["CD", "NORM", "STTC"]
    assert space.source_dropped == ["HYP", "MI"]
    assert space.target_dropped == ["AF", "PAC", "PVC"]
    assert list(source_to_shared) == domain_classes("ptbxl-super")
    assert list(target_to_shared) == domain_classes("cpsc2018")
    assert target_to_shared["IAVB"] == ["CD"] and target_to_shared["STD"] == ["STTC"]

    space = shared_label_space("csn", "cpsc2018")
    assert space.shared == domain_classes("cpsc2018") and space.target_dropped == []
    assert space.source_to_shared["STIAb"] == ["STD", "STE"]  # a member of two groups counts for both
    assert "AFL" in space.source_dropped and "CHB" in space.source_dropped


@pytest.mark.parametrize("pair", list(SHIFT_MAPS))
def test_both_directions_share_one_space(pair):
    forward = shared_label_space(*pair)
    backward = shared_label_space(pair[1], pair[0])
    assert forward.shared == backward.shared
    assert forward.source_to_shared == backward.target_to_shared
    assert forward.target_to_shared == backward.source_to_shared
    assert forward.shared  # every pair shares something


def test_map_labels_or_over_members():
    classes = domain_classes("cpsc2018")  # NORM AF IAVB LBBB RBBB PAC PVC STD STE
    Y = np.zeros((5, len(classes)), dtype=np.float32)
    for row, labels in enumerate([["IAVB", "STD"], ["AF"], ["NORM"], ["RBBB", "LBBB"], ["STE", "PVC"]]):
        for label in labels:
            Y[row, classes.index(label)] = 1
    shared, source_to_shared, _ = shared_label_space("cpsc2018", "ptbxl-super")
    out = map_labels(Y, classes, source_to_shared, shared)
    assert shared == ["CD", "NORM", "STTC"] and out.dtype == np.float32
    np.testing.assert_array_equal(out, [[1, 0, 1], [0, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1]])
    assert out.any(axis=1).tolist() == [True, False, True, True, True]  # the AF record has no shared label

    single = map_labels(Y[0].astype(bool), classes, source_to_shared, shared)
    assert single.dtype == bool and single.tolist() == [True, False, True]

    csn = domain_classes("csn")
    Yc = np.zeros((2, len(csn)), dtype=np.int64)
    Yc[0, csn.index("STIAb")] = 1
    Yc[1, csn.index("CRBBB")] = 1
    space = shared_label_space("csn", "cpsc2018")
    out = map_labels(Yc, csn, space.source_to_shared, space.shared)
    assert [[space.shared[j] for j in np.flatnonzero(r)] for r in out] == [["STD", "STE"], ["RBBB"]]


def test_errors():
    with pytest.raises(ValueError, match="unknown shift domain 'mimic'"):
        shared_label_space("mimic", "csn")
    same, to_same, _ = shared_label_space("csn", "csn")  # issue 16: a domain maps onto itself (identity)
    assert list(same) == list(domain_classes("csn")) and all(to_same[c] == [c] for c in same)
    shared, mapping, _ = shared_label_space("ptbxl-super", "cpsc2018")
    classes = domain_classes("ptbxl-super")
    with pytest.raises(ValueError, match=r"do not match 5 classes"):
        map_labels(np.zeros((2, 4)), classes, mapping, shared)
    with pytest.raises(ValueError, match=r"maps to 'XX', which is not a shared class"):
        map_labels(np.zeros((2, 5)), classes, {**mapping, "CD": ["XX"]}, shared)
    with pytest.raises(ValueError, match=r"mapped classes \['STTC'\] are not among the label columns"):
        map_labels(np.zeros((2, 4)), classes[:4], mapping, shared)
