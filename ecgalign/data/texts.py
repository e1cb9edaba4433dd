"""Which text a record is paired with in ECG-text pretraining (recipe key ``data.text_field``).

- ``report``: the store's report column (the default; every run before the key existed used it);
- ``description``: the CQA description ``ecgalign text enrich`` writes (ESI section 3.1, Wang et al.);
- ``label_names``: the names of the record's native codes, composed through the data layer's label maps
  (PTB-XL SCP statement descriptions, the challenge SNOMED CT names; codes of systems whose codes are already
  class names, e.g. CPSC2018 or CODE, as they are) — the "label names only" arm of issue 13's comparison.

Deterministic and free of text encoders: the same store always gives the same texts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from ecgalign.data.errors import InputError, UnknownNameError
from ecgalign.data.labels import SCPStatements
from ecgalign.data.labels.snomed import snomed_scheme
from ecgalign.data.store import ECGStore

TEXT_FIELDS: tuple[str, ...] = ("report", "description", "label_names")
LABEL_NAMES = "label_names"


def code_names(code_system: str, codes: Iterable[str]) -> list[str]:
    """Readable names of a record's codes, in code order, each once: SCP statements by their PTB-XL
    description, SNOMED CT codes by the challenge table's name (unknown SNOMED codes are left out), any other
    system's codes as written."""
    names: list[str] = []
    for code in (str(c).strip() for c in codes):
        if not code:
            continue
        if code_system == "scp":
            name = SCPStatements.bundled().description(code)
        elif code_system == "snomed":
            concept = snomed_scheme().concepts.get(code)
            name = concept.name if concept else ""
        else:
            name = code
        if name and name not in names:
            names.append(name)
    return names


def label_names_text(code_system: str, codes: Iterable[str]) -> str:
    """The ``label_names`` text of one record: its code names joined by commas ("" when there are none)."""
    return ", ".join(code_names(code_system, codes))


def record_texts(store: ECGStore, text_field: str = "report") -> list[str]:
    """One text per record, in store order, for ``text_field`` (see the module docstring); "" where a record
    has none (for label names, a record without a ``code_system`` takes the store's). Raises ``InputError``
    naming the store and the missing column when the store lacks it."""
    if text_field not in TEXT_FIELDS:
        raise InputError(f"data.text_field {text_field!r}: expected one of {', '.join(TEXT_FIELDS)}")
    if text_field == LABEL_NAMES:
        default = str(store.manifest.get("code_system") or "")  # for records that do not name their system
        systems, codes = _column(store, "code_system", text_field), _column(store, "codes", text_field)
        return [label_names_text(s if isinstance(s, str) and s else default, c if _is_list(c) else ())
                for s, c in zip(systems, codes)]
    return [v if isinstance(v, str) else "" for v in _column(store, text_field, text_field)]


def empty_texts(texts: Sequence[str]) -> int:
    """How many of ``texts`` are empty or blank."""
    return sum(not t.strip() for t in texts)


def _column(store: ECGStore, name: str, text_field: str) -> pd.Series:
    try:
        return store.column(name)
    except UnknownNameError:
        hint = " (make one with `ecgalign text enrich STORE --out STORE2`)" if name == "description" else ""
        raise InputError(f"{store.path}: data.text_field={text_field!r} needs the metadata column {name!r}, "
                         f"which this store does not have{hint}") from None


def _is_list(value: object) -> bool:
    return isinstance(value, (list, tuple)) or hasattr(value, "tolist") and not isinstance(value, str)
