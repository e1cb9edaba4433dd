"""The one record model every reader returns, and the errors a bad record raises.

A record is a 12-lead (or lead-subset) ECG in millivolts with its metadata. Every reader, the synthetic
generator and the on-disk store speak this type, so preprocessing, conversion and evaluation never need to
know which dataset a record came from.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ecgalign.data.errors import InputError

LEADS_12: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
LIMB_LEADS: tuple[str, ...] = LEADS_12[:6]
CHEST_LEADS: tuple[str, ...] = LEADS_12[6:]

_CANONICAL = {name.upper(): name for name in LEADS_12}
# Spellings seen in the wild (WFDB headers, HDF5 attributes, vendor exports).
_ALIASES = {"MLI": "I", "MLII": "II", "MLIII": "III", "D1": "I", "D2": "II", "D3": "III"}


class RecordError(InputError):
    """A single record cannot be used. The message names the source (file or id) and the problem."""

    def __init__(self, source: str, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


def canonical_lead_name(name: str) -> str:
    """Map a lead label as written by a device or file format to the canonical name ('AVR' -> 'aVR')."""
    key = re.sub(r"\s+", "", str(name)).upper()
    if key in _CANONICAL:
        return _CANONICAL[key]
    alias = _ALIASES.get(key)
    if alias is None:
        raise InputError(f"unknown ECG lead name {name!r}; expected one of {', '.join(LEADS_12)}")
    return alias


def canonical_sex(value: Any) -> str | None:
    """'M' / 'F' / None from the many encodings datasets use (PTB-XL: 0 male, 1 female)."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) or (isinstance(value, float) and not np.isnan(value)):
        return {0: "M", 1: "F"}.get(int(value))
    text = str(value).strip().lower()
    if text in {"m", "male", "man", "0"}:
        return "M"
    if text in {"f", "female", "woman", "1"}:
        return "F"
    return None


def clean_age(value: Any) -> float | None:
    """Age in years or None. PTB-XL stores ages above 89 as 300 for privacy: those become 90."""
    if value is None:
        return None
    try:
        age = float(value)
    except (TypeError, ValueError):
        return None
    if not np.isfinite(age) or age < 0:
        return None
    return 90.0 if age > 120 else age


@dataclass
class ECGRecord:
    """One ECG with its metadata.

    signal: float32 array (leads, samples) in millivolts; NaN marks missing samples until repaired.
    codes: the dataset's own label codes (SCP statements for PTB-XL and the synthetic generator, SNOMED CT
    for the PhysioNet challenge format, class names for CPSC2018 and CODE); ``code_system`` names the system.
    report: normalised report text (English where a translation exists); report_original keeps the source.
    fold: the dataset's official fold (PTB-XL ``strat_fold``), when it has one.
    extra: anything dataset-specific worth keeping (e.g. SCP likelihoods), JSON-serialisable.
    """

    signal: np.ndarray  # (leads, samples) float32, mV
    fs: float
    leads: tuple[str, ...]
    record_id: str
    dataset: str
    patient_id: str | None = None
    age: float | None = None
    sex: str | None = None
    report: str = ""
    report_original: str = ""
    codes: tuple[str, ...] = ()
    code_system: str = ""
    fold: int | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(self.signal.shape[-1])

    @property
    def seconds(self) -> float:
        return self.n_samples / float(self.fs)

    def replace(self, **changes: Any) -> ECGRecord:
        return dataclasses.replace(self, **changes)

    def lead(self, name: str) -> np.ndarray:
        return self.signal[self.leads.index(canonical_lead_name(name))]

    def validate(self, *, allow_nan: bool = True) -> ECGRecord:
        """Check the invariants; raise RecordError naming the record and what is wrong."""
        where = self.source or self.record_id
        sig = self.signal
        if not isinstance(sig, np.ndarray) or sig.ndim != 2:
            raise RecordError(where, f"signal must be a 2-D array (leads, samples), got {getattr(sig, 'shape', type(sig))}")
        if sig.shape[0] != len(self.leads):
            raise RecordError(where, f"signal has {sig.shape[0]} leads but {len(self.leads)} lead names {list(self.leads)}")
        if len(set(self.leads)) != len(self.leads):
            raise RecordError(where, f"duplicate lead names {list(self.leads)}")
        for name in self.leads:
            if name not in LEADS_12:
                raise RecordError(where, f"non-canonical lead name {name!r}")
        if sig.shape[1] == 0:
            raise RecordError(where, "signal has no samples")
        if not (np.isfinite(self.fs) and self.fs > 0):
            raise RecordError(where, f"sampling rate must be positive, got {self.fs}")
        if sig.dtype != np.float32:
            raise RecordError(where, f"signal dtype must be float32, got {sig.dtype}")
        finite = np.isfinite(sig)
        dead = [self.leads[i] for i in np.flatnonzero(~finite.any(axis=1))]
        if dead:
            raise RecordError(where, f"lead(s) {', '.join(dead)} contain no finite sample")
        if not allow_nan and not finite.all():
            raise RecordError(where, f"{int((~finite).sum())} non-finite samples")
        if self.sex not in (None, "M", "F"):
            raise RecordError(where, f"sex must be 'M', 'F' or None, got {self.sex!r}")
        return self

    def metadata(self) -> dict[str, Any]:
        """Everything but the signal, as plain Python values (one row of a store's metadata table)."""
        return {
            "record_id": self.record_id,
            "dataset": self.dataset,
            "patient_id": self.patient_id,
            "age": self.age,
            "sex": self.sex,
            "report": self.report,
            "report_original": self.report_original,
            "codes": list(self.codes),
            "code_system": self.code_system,
            "fold": self.fold,
            "source": self.source,
        }
