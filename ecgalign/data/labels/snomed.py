"""SNOMED CT diagnosis codes of the PhysioNet/CinC Challenge 2020/2021 and their label sets.

The challenge headers list diagnoses as SNOMED CT concept ids (``# Dx: 164889003,59118001``). The bundled
``snomed_ct.csv`` is a project-written table of every code the two challenges map (the 30 codes the 2021
challenge scored and the codes it listed as unscored): code, abbreviation, full name and whether 2021 scored
it. Codes and abbreviations follow the challenge's ``dx_mapping_scored.csv`` / ``dx_mapping_unscored.csv``
(Reyna et al., "Will Two Do? Varying Dimensions in Electrocardiography: the PhysioNet/Computing in Cardiology
Challenge 2021", CinC 2021; Perez Alday et al., Physiol. Meas. 41:124003, 2020); names are our own wording.

Label sets:

- ``scored``: the 26 classes of the 2021 challenge metric. As in its scoring code, four pairs of codes count
  as one diagnosis: 713427006/59118001 (``RBBB``), 284470004/63593006 (``PAC``), 427172004/17338001 (``PVC``)
  and 733534002/164909002 (``LBBB``); every other scored code is its own class, named by its abbreviation.
- ``snomed``: every code in the table, one class per code, named by its abbreviation.

Codes outside the table (the Ningbo subset uses a few, e.g. 251238007) stay in a record's codes but map to no
class; ``describe`` says they are unknown.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from ecgalign.data.errors import InputError

SNOMED_LABEL_SETS: tuple[str, ...] = ("scored", "snomed")

# Pairs the 2021 challenge scores as the same diagnosis: merged class name -> codes (representative first).
SCORED_EQUIVALENTS: dict[str, tuple[str, ...]] = {
    "RBBB": ("713427006", "59118001"),
    "PAC": ("284470004", "63593006"),
    "PVC": ("427172004", "17338001"),
    "LBBB": ("733534002", "164909002"),
}

UNKNOWN_MARKER = "unknown SNOMED CT code"


@dataclass(frozen=True)
class SnomedConcept:
    """One row of the table: a SNOMED CT concept id with the challenge's abbreviation and a readable name."""

    code: str
    abbreviation: str
    name: str
    scored: bool


@lru_cache(maxsize=1)
def snomed_table() -> tuple[SnomedConcept, ...]:
    """The bundled table, in file order (scored codes first)."""
    with resources.files("ecgalign.data.labels").joinpath("snomed_ct.csv").open("r", encoding="utf-8") as fh:
        return tuple(
            SnomedConcept(
                row["code"].strip(),
                row["abbreviation"].strip(),
                row["name"].strip(),
                row["scored"].strip() == "1",
            )
            for row in csv.DictReader(fh)
        )


class SnomedScheme:
    """The challenge's SNOMED CT codes through the LabelScheme protocol (label sets scored and snomed)."""

    code_system = "snomed"

    def __init__(self, table: Iterable[SnomedConcept] | None = None):
        self.concepts: dict[str, SnomedConcept] = {
            c.code: c for c in (snomed_table() if table is None else table)
        }
        scored = {code: c.abbreviation for code, c in self.concepts.items() if c.scored}
        for merged, codes in SCORED_EQUIVALENTS.items():
            for code in codes:
                if code in scored:
                    scored[code] = merged
        self._maps: dict[str, dict[str, str]] = {
            "scored": scored,
            "snomed": {code: c.abbreviation for code, c in self.concepts.items()},
        }

    def set_names(self) -> list[str]:
        return list(SNOMED_LABEL_SETS)

    def classes(self, label_set: str) -> list[str]:
        """Sorted class names of a label set (the column order of every label matrix)."""
        return sorted(set(self._mapping(label_set).values()))

    def map_codes(self, codes: Iterable[str], label_set: str) -> list[str]:
        """The classes of ``label_set`` a record's codes imply (sorted, unique; unknown codes ignored)."""
        mapping = self._mapping(label_set)
        return sorted({mapping[c] for c in (str(code).strip() for code in codes) if c in mapping})

    def label_sets(self, codes: Iterable[str]) -> dict[str, list[str]]:
        codes = list(codes)
        return {name: self.map_codes(codes, name) for name in SNOMED_LABEL_SETS}

    def codes_of(self, label_set: str, class_name: str) -> list[str]:
        """The SNOMED CT codes that map to ``class_name`` in ``label_set`` (two for a merged scored class)."""
        members = [code for code, cls in self._mapping(label_set).items() if cls == class_name]
        if not members:
            raise InputError(f"{class_name!r} is not a class of the {label_set!r} label set")
        return members

    def abbreviation(self, code: str) -> str | None:
        concept = self.concepts.get(str(code).strip())
        return concept.abbreviation if concept else None

    def describe(self, code: str) -> str:
        """The readable name of a code, or ``'unknown SNOMED CT code <code>'``."""
        concept = self.concepts.get(str(code).strip())
        return concept.name if concept else f"{UNKNOWN_MARKER} {code}"

    def unknown(self, codes: Iterable[str]) -> list[str]:
        """The codes of ``codes`` that the table does not list, in their order."""
        return [c for c in codes if str(c).strip() not in self.concepts]

    def _mapping(self, label_set: str) -> dict[str, str]:
        try:
            return self._maps[label_set]
        except KeyError:
            raise InputError(
                f"unknown SNOMED label set {label_set!r}; expected one of {list(SNOMED_LABEL_SETS)}"
            ) from None


def snomed_scheme() -> SnomedScheme:
    """The scheme over the bundled table (cached: the table is read once)."""
    return _bundled_scheme()


@lru_cache(maxsize=1)
def _bundled_scheme() -> SnomedScheme:
    return SnomedScheme()
