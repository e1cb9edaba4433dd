"""SCP-ECG statements and the five label sets of the PTB-XL benchmark.

Definitions follow Strodthoff et al., "Deep learning for ECG analysis: benchmarks and insights from PTB-XL",
IEEE JBHI 2020 (their ``compute_label_aggregations`` / ``select_data`` with ``min_samples = 0``):

- superdiagnostic (5): ``diagnostic_class`` of every statement with ``diagnostic == 1``;
- subdiagnostic (23): ``diagnostic_subclass`` of those statements;
- form (19): statements with ``form == 1``; rhythm (12): statements with ``rhythm == 1``;
- all (71): every SCP statement;
- diagnostic (44): the diagnostic statements themselves.

Statement likelihoods are ignored (a code listed with likelihood 0 still counts), as in the benchmark.
A record with no label in a set is excluded from that task; ``label_counts`` reports such records.

The bundled ``scp_statements.csv`` is the statement table of PTB-XL v1.0.3 (Wagner et al., Sci Data 2020,
CC BY 4.0), reduced to the columns these rules read. A PTB-XL folder's own table is used when present.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from ecgalign.data.errors import InputError

PTBXL_LABEL_SETS: tuple[str, ...] = ("superdiagnostic", "subdiagnostic", "form", "rhythm", "all", "diagnostic")
# The five label sets of the benchmark, in the order papers report them.
BENCHMARK_LABEL_SETS: tuple[str, ...] = PTBXL_LABEL_SETS[:5]


class SCPStatements:
    """The SCP statement table and the label-set rules that read it."""

    def __init__(self, table: pd.DataFrame):
        table = table.copy()
        table.index = table.index.astype(str).str.strip()
        for col in ("diagnostic", "form", "rhythm"):
            table[col] = pd.to_numeric(table[col], errors="coerce").fillna(0).astype(int)
        for col in ("diagnostic_class", "diagnostic_subclass"):
            table[col] = table[col].where(table[col].notna() & (table[col].astype(str) != ""), None)
        self.table = table
        diag = table[table.diagnostic == 1]
        self._maps: dict[str, dict[str, str]] = {
            "superdiagnostic": {c: v for c, v in diag.diagnostic_class.items() if v},
            "subdiagnostic": {c: v for c, v in diag.diagnostic_subclass.items() if v},
            "diagnostic": {c: c for c in diag.index},
            "form": {c: c for c in table.index[table.form == 1]},
            "rhythm": {c: c for c in table.index[table.rhythm == 1]},
            "all": {c: c for c in table.index},
        }

    @classmethod
    def from_csv(cls, path: str | Path) -> SCPStatements:
        """Read a PTB-XL ``scp_statements.csv`` (first column = statement code)."""
        path = Path(path)
        try:
            table = pd.read_csv(path, index_col=0)
        except Exception as exc:  # noqa: BLE001 - re-raised with the file named
            raise InputError(f"{path}: cannot read SCP statement table: {exc}") from exc
        missing = {"diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass"} - set(table.columns)
        if missing:
            raise InputError(f"{path}: SCP statement table lacks columns {sorted(missing)}")
        return cls(table)

    @classmethod
    def bundled(cls) -> SCPStatements:
        return _bundled()

    @property
    def codes(self) -> list[str]:
        return list(self.table.index)

    def description(self, code: str) -> str:
        return str(self.table.loc[code, "description"]) if code in self.table.index else code

    def classes(self, label_set: str) -> list[str]:
        """Sorted class names of a label set (the column order of every label matrix)."""
        return sorted(set(self._mapping(label_set).values()))

    def map_codes(self, codes: Iterable[str], label_set: str) -> list[str]:
        """The members of ``label_set`` that a record's SCP codes imply (sorted, unique)."""
        mapping = self._mapping(label_set)
        return sorted({mapping[c] for c in codes if c in mapping})

    def label_sets(self, codes: Iterable[str]) -> dict[str, list[str]]:
        codes = list(codes)
        return {name: self.map_codes(codes, name) for name in PTBXL_LABEL_SETS}

    def _mapping(self, label_set: str) -> dict[str, str]:
        try:
            return self._maps[label_set]
        except KeyError:
            raise InputError(f"unknown PTB-XL label set {label_set!r}; expected one of {list(PTBXL_LABEL_SETS)}") from None


@lru_cache(maxsize=1)
def _bundled() -> SCPStatements:
    with resources.files("ecgalign.data.labels").joinpath("scp_statements.csv").open("r") as fh:
        return SCPStatements(pd.read_csv(fh, index_col=0))


def parse_scp_codes(text: str | Mapping[str, float], source: str = "scp_codes") -> dict[str, float]:
    """Parse PTB-XL's ``scp_codes`` column (a Python dict literal: ``{'NORM': 100.0, 'SR': 0.0}``)."""
    if isinstance(text, Mapping):
        value: Any = text
    else:
        try:
            value = ast.literal_eval(str(text))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
            raise InputError(f"{source}: cannot parse scp_codes {text!r}: expected a dict literal like {{'NORM': 100.0}}") from exc
        if not isinstance(value, dict):
            raise InputError(f"{source}: scp_codes {text!r} is not a dict")
    likelihood = {}
    for code, v in value.items():
        try:
            likelihood[str(code)] = float(v)
        except (TypeError, ValueError):
            raise InputError(f"{source}: scp_codes {text!r}: likelihood of {code!r} is {v!r}, expected a number") from None
    return likelihood
