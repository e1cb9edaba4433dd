"""Label maps of the distribution-shift protocol: train on one dataset's labels, test on another's.

MERIT (appendix B, "Distribution-shift Evaluation", Table 5) aligns three label spaces pairwise: PTB-XL
superclasses, CPSC2018 and Chapman-Shaoxing-Ningbo (CSN). Each row of its table takes one class of the
coarser dataset (the *group* side: PTB-XL super against both others, CPSC2018 against CSN) and lists the
classes of the other dataset (the *member* side) that count as it; "None" means the class has no
counterpart. ``MERIT_TABLE5`` is that table verbatim, in the class names of MERL's processed datasets, and
``SHIFT_MAPS`` the same table in this toolkit's class names:

- ``ptbxl-super``: the ``superdiagnostic`` set of ``ecgalign.data.labels.scp_scheme()``;
- ``cpsc2018``: ``ecgalign.data.labels.cpsc.CPSC2018_CLASSES``;
- ``csn``: the ``snomed`` set (one class per SNOMED CT code) of ``ecgalign.data.labels.snomed.snomed_scheme()``,
  i.e. CSN read in the PhysioNet/CinC challenge format.

The shared label space of a pair is the group side's classes that have a counterpart, named as the group
side names them, whichever dataset is the source: both directions of a pair use the same space. A record's
shared labels are the OR of its classes' memberships (``map_labels``); classes without a counterpart map to
nothing and are reported by ``SharedLabelSpace.source_dropped`` / ``target_dropped``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from ecgalign.data.errors import InputError
from ecgalign.data.labels import scp_scheme
from ecgalign.data.labels.cpsc import CPSC2018_CLASSES
from ecgalign.data.labels.snomed import SCORED_EQUIVALENTS, snomed_scheme, snomed_table

SHIFT_DOMAINS: tuple[str, ...] = ("ptbxl-super", "cpsc2018", "csn")

# MERIT Table 5, verbatim: group class -> member classes (empty = "None"), in MERL's class names.
MERIT_TABLE5: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {
    ("ptbxl-super", "cpsc2018"): {
        "HYP": (),
        "NORM": ("NORM",),
        "CD": ("1AVB", "CRBBB", "CLBBB"),
        "MI": (),
        "STTC": ("STE", "STD"),
    },
    ("ptbxl-super", "csn"): {
        "HYP": ("RVH", "LVH"),
        "NORM": ("SR",),
        "CD": ("2AVB", "2AVB1", "1AVB", "AVB", "LBBB", "RBBB", "STDD"),
        "MI": ("MI",),
        "STTC": ("STTC", "STE", "TWO", "STTU", "QTIE", "TWC"),
    },
    ("cpsc2018", "csn"): {
        "AFIB": ("AFIB",),
        "VPC": ("VPB",),
        "NORM": ("SR",),
        "1AVB": ("1AVB",),
        "CRBBB": ("RBBB",),
        "STE": ("STE",),
        "PAC": ("APB",),
        "CLBBB": ("LBBB",),
        "STD": ("STE", "STTC", "STTU", "STDD"),
    },
}

# MERL's CPSC2018 names -> CPSC2018_CLASSES. CPSC2018 has one left and one right bundle branch block class;
# MERL calls them CLBBB/CRBBB, the reader LBBB/RBBB.
CPSC2018_FROM_MERL: dict[str, str] = {
    "NORM": "NORM",
    "AFIB": "AF",
    "1AVB": "IAVB",
    "CLBBB": "LBBB",
    "CRBBB": "RBBB",
    "PAC": "PAC",
    "VPC": "PVC",
    "STD": "STD",
    "STE": "STE",
}

# MERL's CSN names are the acronyms of the dataset's own ConditionNames_SNOMED-CT table (Zheng et al., Sci
# Data 2020; PhysioNet "ecg-arrhythmia"), each bound to one SNOMED CT code in the record headers. Every
# acronym of Table 5 therefore has an exact counterpart here: the class of the same code (code in the
# comment). The acronyms' English glosses are loose translations, so two of them land on classes whose
# names differ from what the acronym suggests:
#   - "STE" is Chapman's "ST extension", code 164930006, which our table names STIAb (ST interval
#     abnormal); it is NOT our STE.
#   - "STTU" is Chapman's "ST tilt up", code 164931005 = ST elevation, our STE.
# So CPSC2018 STE -> CSN STIAb, and CSN's ST elevation (our STE) falls under CPSC2018 STD, as Table 5 has
# it. Other judgements Table 5 makes that we keep as they are: CD includes "STDD" (ST depression, our STD),
# NORM is sinus rhythm (NSR, any sinus-rhythm record, normal or not), CD lists neither third-degree block
# (CHB) nor Mobitz II (IIAVBII).
CSN_FROM_MERL: dict[str, str] = {
    "SR": "NSR",  # 426783006 sinus rhythm
    "AFIB": "AF",  # 164889003 atrial fibrillation
    "VPB": "VPB",  # 17338001 ventricular premature beats
    "APB": "PAC",  # 284470004 atrial premature beats
    "1AVB": "IAVB",  # 270492004 first-degree AV block
    "2AVB": "IIAVB",  # 195042002 second-degree AV block
    "2AVB1": "MoI",  # 54016002 second-degree AV block type I (Mobitz I, Wenckebach)
    "AVB": "AVB",  # 233917008 AV block
    "LBBB": "LBBB",  # 164909002 left bundle branch block
    "RBBB": "RBBB",  # 59118001 right bundle branch block
    "LVH": "LVH",  # 164873001 left ventricular hypertrophy
    "RVH": "RVH",  # 89792004 right ventricular hypertrophy
    "MI": "MI",  # 164865005 myocardial infarction (Chapman's MI and its wall subtypes share this code)
    "STDD": "STD",  # 429622005 "ST drop down" = ST depression
    "STTC": "NSSTTA",  # 428750005 "ST-T change" = nonspecific ST-T abnormality
    "STE": "STIAb",  # 164930006 "ST extension" = ST interval abnormal (see above)
    "STTU": "STE",  # 164931005 "ST tilt up" = ST elevation (see above)
    "TWO": "TInv",  # 59931005 "T wave opposite" = T wave inversion
    "TWC": "TAb",  # 164934002 "T wave change" = T wave abnormal
    "QTIE": "LQT",  # 111975006 "QT interval extension" = prolonged QT
}

_FROM_MERL: dict[str, Mapping[str, str]] = {
    "ptbxl-super": {c: c for c in ("CD", "HYP", "MI", "NORM", "STTC")},
    "cpsc2018": CPSC2018_FROM_MERL,
    "csn": CSN_FROM_MERL,
}


def _challenge_equivalents() -> dict[str, tuple[str, ...]]:
    """snomed class -> the classes the 2021 challenge scores as the same diagnosis (RBBB~CRBBB, PAC~SVPB,
    PVC~VPB, LBBB~CLBBB). Chapman codes one of each pair; a copy coded with the other maps the same."""
    abbreviation = {c.code: c.abbreviation for c in snomed_table()}
    out: dict[str, tuple[str, ...]] = {}
    for codes in SCORED_EQUIVALENTS.values():
        names = [abbreviation[c] for c in codes]
        for name in names:
            out[name] = tuple(n for n in names if n != name)
    return out


def _translate(pair: tuple[str, str]) -> dict[str, tuple[str, ...]]:
    group, member = pair
    equivalents = _challenge_equivalents() if member == "csn" else {}
    out: dict[str, tuple[str, ...]] = {}
    for cls, members in MERIT_TABLE5[pair].items():
        names: list[str] = []
        for m in members:
            for name in (_FROM_MERL[member][m], *equivalents.get(_FROM_MERL[member][m], ())):
                if name not in names:
                    names.append(name)
        out[_FROM_MERL[group][cls]] = tuple(names)
    return out


# Table 5 in this toolkit's class names, keyed (group side, member side). CSN members also list their
# challenge-equivalent class (e.g. CPSC2018 RBBB -> CSN RBBB and CRBBB).
SHIFT_MAPS: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {
    pair: _translate(pair) for pair in MERIT_TABLE5
}

# The six transfer directions: each pair of Table 5 with either side as the source.
SHIFT_DIRECTIONS: tuple[tuple[str, str], ...] = tuple(
    d for pair in SHIFT_MAPS for d in (pair, (pair[1], pair[0]))
)


def domain_classes(domain: str) -> list[str]:
    """The class order of a shift domain's label matrices."""
    if domain == "ptbxl-super":
        return scp_scheme().classes("superdiagnostic")
    if domain == "cpsc2018":
        return list(CPSC2018_CLASSES)
    if domain == "csn":
        return snomed_scheme().classes("snomed")
    raise InputError(f"unknown shift domain {domain!r}; expected one of {list(SHIFT_DOMAINS)}")


class SharedLabelSpace(NamedTuple):
    """The label space two datasets share, and how each one's classes map into it."""

    shared: list[str]
    source_to_shared: dict[str, list[str]]  # every source class, in its scheme's order; [] = no counterpart
    target_to_shared: dict[str, list[str]]  # every target class, likewise

    @property
    def source_dropped(self) -> list[str]:
        """Source classes without a counterpart (their records carry no shared label from them)."""
        return [c for c, members in self.source_to_shared.items() if not members]

    @property
    def target_dropped(self) -> list[str]:
        return [c for c, members in self.target_to_shared.items() if not members]


def shared_label_space(source: str, target: str) -> SharedLabelSpace:
    """The shared classes of a transfer ``source -> target`` and both sides' class-to-shared maps; a domain
    against itself shares all its classes (the identity map).

    Unpacks as ``shared, source_to_shared, target_to_shared``; ``ValueError`` for a pair Table 5 lacks.
    """
    for domain in (source, target):
        if domain not in SHIFT_DOMAINS:
            raise InputError(f"unknown shift domain {domain!r}; expected one of {list(SHIFT_DOMAINS)}")
    if source == target:  # the identity map: same label set on both sides (e.g. PTB-XL -> another PTB-XL)
        classes = domain_classes(source)
        identity = {c: [c] for c in classes}
        return SharedLabelSpace(classes, identity, dict(identity))
    if (source, target) in SHIFT_MAPS:
        group, member, forward = source, target, True
    elif (target, source) in SHIFT_MAPS:
        group, member, forward = target, source, False
    else:
        raise InputError(f"no label map from {source!r} to {target!r}; directions: {list(SHIFT_DIRECTIONS)}")
    table = SHIFT_MAPS[(group, member)]
    group_classes, member_classes = domain_classes(group), domain_classes(member)
    if sorted(table) != sorted(group_classes):
        raise InputError(f"label map {group}->{member} rows {sorted(table)} are not the classes {group_classes}")
    unknown = sorted({m for members in table.values() for m in members} - set(member_classes))
    if unknown:
        raise InputError(f"label map {group}->{member} names {unknown}, which are not {member} classes")
    shared = [c for c in group_classes if table[c]]
    group_map = {c: [c] if table[c] else [] for c in group_classes}
    member_map = {m: [c for c in shared if m in table[c]] for m in member_classes}
    if forward:
        return SharedLabelSpace(shared, group_map, member_map)
    return SharedLabelSpace(shared, member_map, group_map)


def map_labels(
    Y, classes: Sequence[str], mapping: Mapping[str, Sequence[str]], shared: Sequence[str]
) -> np.ndarray:
    """Multi-hot labels ``Y`` (N, C) over ``classes`` -> (N, S) over ``shared``: a shared class is positive
    when any class mapped to it is. A 1-D ``Y`` (C,) gives (S,). The dtype of ``Y`` is kept.

    Records whose classes all lack a counterpart get an all-zero row; drop them (``.any(axis=1)``) as the
    protocol evaluates labelled records only.
    """
    Y = np.asarray(Y)
    classes, shared = list(classes), list(shared)
    if Y.shape[-1:] != (len(classes),) or Y.ndim not in (1, 2):
        raise InputError(f"labels of shape {Y.shape} do not match {len(classes)} classes (expected (N, C) or (C,))")
    unreadable = [c for c, members in mapping.items() if members and c not in classes]
    if unreadable:
        raise InputError(f"mapped classes {unreadable} are not among the label columns {classes}")
    column = {c: j for j, c in enumerate(shared)}
    membership = np.zeros((len(classes), len(shared)), dtype=np.int64)  # (C, S)
    for i, cls in enumerate(classes):
        for target in mapping.get(cls, ()):
            if target not in column:
                raise InputError(f"class {cls!r} maps to {target!r}, which is not a shared class {shared}")
            membership[i, column[target]] = 1
    hits = (Y != 0).astype(np.int64) @ membership > 0  # (N, S) or (S,)
    return hits if Y.dtype == bool else hits.astype(Y.dtype)


__all__ = [
    "CPSC2018_FROM_MERL",
    "CSN_FROM_MERL",
    "MERIT_TABLE5",
    "SHIFT_DIRECTIONS",
    "SHIFT_DOMAINS",
    "SHIFT_MAPS",
    "SharedLabelSpace",
    "domain_classes",
    "map_labels",
    "shared_label_space",
]
