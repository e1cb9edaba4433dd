"""Label taxonomies: how a dataset's native codes become the classes of its label sets.

Every reader exposes a ``LabelScheme``: the names of its label sets, the sorted classes of each, and the
mapping from a record's native codes to the members of each set. Stores save the resolved label sets per
record, so a converted dataset carries its labels without the original tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from ecgalign.data.errors import InputError
from ecgalign.data.labels.scp import BENCHMARK_LABEL_SETS, PTBXL_LABEL_SETS, SCPStatements, parse_scp_codes


@runtime_checkable
class LabelScheme(Protocol):
    """What a dataset's labels look like; implemented by SCPStatements, SnomedScheme and FixedScheme."""

    code_system: str

    def set_names(self) -> list[str]: ...

    def classes(self, label_set: str) -> list[str]: ...

    def label_sets(self, codes: Iterable[str]) -> dict[str, list[str]]: ...


class FixedScheme:
    """A scheme whose native codes are already the class names (CPSC2018, CODE): one or more label sets,
    each a fixed, ordered class list; codes outside a set's classes are ignored for that set."""

    def __init__(self, code_system: str, sets: Mapping[str, Sequence[str]]):
        self.code_system = code_system
        self._sets = {name: list(classes) for name, classes in sets.items()}

    def set_names(self) -> list[str]:
        return list(self._sets)

    def classes(self, label_set: str) -> list[str]:
        try:
            return list(self._sets[label_set])
        except KeyError:
            raise InputError(f"unknown label set {label_set!r} for {self.code_system}; expected one of {self.set_names()}") from None

    def label_sets(self, codes: Iterable[str]) -> dict[str, list[str]]:
        codes = set(codes)
        return {name: [c for c in classes if c in codes] for name, classes in self._sets.items()}


class _SCPScheme:
    """SCPStatements seen through the LabelScheme protocol."""

    code_system = "scp"

    def __init__(self, statements: SCPStatements | None = None):
        self.statements = statements or SCPStatements.bundled()

    def set_names(self) -> list[str]:
        return list(PTBXL_LABEL_SETS)

    def classes(self, label_set: str) -> list[str]:
        return self.statements.classes(label_set)

    def label_sets(self, codes: Iterable[str]) -> dict[str, list[str]]:
        return self.statements.label_sets(codes)


def scp_scheme(statements: SCPStatements | None = None) -> LabelScheme:
    """The PTB-XL label sets over SCP codes (bundled statement table unless one is given)."""
    return _SCPScheme(statements)


__all__ = [
    "BENCHMARK_LABEL_SETS",
    "PTBXL_LABEL_SETS",
    "FixedScheme",
    "LabelScheme",
    "SCPStatements",
    "parse_scp_codes",
    "scp_scheme",
]
