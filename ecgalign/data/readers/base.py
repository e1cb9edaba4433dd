"""The reader interface and its registry.

A reader opens one dataset folder in its real on-disk layout and yields ``ECGRecord``s. It never converts or
resamples: that is the converter's job. Reading a single record that is broken raises ``RecordError`` naming
the file and the problem; iteration through ``iter_records`` skips and reports instead.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from ecgalign.data.errors import InputError
from ecgalign.data.labels import LabelScheme
from ecgalign.data.record import ECGRecord, RecordError
from ecgalign.data.registry import Registry


def is_missing(value: Any) -> bool:
    """None or a float NaN (how CSV readers spell an empty cell)."""
    return value is None or (isinstance(value, float) and value != value)


def text_or_none(value: Any) -> str | None:
    """A table cell as stripped text; None for a missing or blank cell."""
    if is_missing(value):
        return None
    return str(value).strip() or None


def metadata_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The metadata table of ``rows``, with text columns kept as Python objects so a missing value stays
    ``None`` (pandas >= 3 would otherwise turn text columns into its string dtype, where missing is NaN)."""
    frame = pd.DataFrame(rows)
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.StringDtype):
            frame[column] = pd.Series([row.get(column) for row in rows], index=frame.index, dtype=object)
    return frame


@dataclass
class Skipped:
    """A record that could not be used, with the file and the reason."""

    record_id: str
    source: str
    problem: str

    def as_dict(self) -> dict[str, str]:
        return {"record_id": self.record_id, "source": self.source, "problem": self.problem}


@dataclass
class ScanResult:
    """What a quick scan of a dataset folder found, without decoding every signal."""

    records: int
    sampling_rates: list[float]
    leads: list[str]
    skipped: list[Skipped] = field(default_factory=list)


class Reader(ABC):
    """Base class of every dataset reader.

    Subclasses set ``name``, ``citation``, ``licence`` and implement ``detect``, ``__len__``, ``record_id``,
    ``read``, ``metadata`` and ``label_scheme``. ``read(i)`` returns a validated ECGRecord (float32 mV,
    canonical lead names) or raises RecordError.
    """

    name: ClassVar[str]
    citation: ClassVar[str]
    licence: ClassVar[str]
    url: ClassVar[str] = ""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.exists():
            raise FileNotFoundError(f"{self.root}: dataset folder does not exist")

    @classmethod
    @abstractmethod
    def detect(cls, root: Path) -> bool:
        """True when ``root`` looks like this reader's layout (cheap: file names only)."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def record_id(self, index: int) -> str: ...

    @abstractmethod
    def read(self, index: int) -> ECGRecord:
        """Read record ``index``; raise RecordError naming the file on any problem."""

    @abstractmethod
    def metadata(self) -> pd.DataFrame:
        """One row per record, without reading signals: at least record_id, patient_id, age, sex, report,
        codes (list of native codes), fold, fs (sampling rate of the signals ``read`` returns)."""

    @abstractmethod
    def label_scheme(self) -> LabelScheme: ...

    def scan(self) -> ScanResult:
        """Header-level check of every record (default: read them all; readers override with a cheaper one)."""
        rates: set[float] = set()
        leads: list[str] = []
        skipped: list[Skipped] = []
        ok = 0
        for i in range(len(self)):
            try:
                rec = self.read(i)
            except RecordError as exc:
                skipped.append(Skipped(self.record_id(i), exc.source, exc.problem))
                continue
            ok += 1
            rates.add(float(rec.fs))
            leads = leads or list(rec.leads)
        return ScanResult(ok, sorted(rates), leads, skipped)

    def source_problems(self) -> list[Skipped]:
        """Whole files the reader found but could not index (e.g. a truncated CODE-15 part): their records are
        in no count, so a converter must report these beside the skipped records. Default: none."""
        return []

    def iter_records(self, on_skip: Callable[[Skipped], None] | None = None) -> Iterator[ECGRecord]:
        """Every readable record in order; unreadable ones go to ``on_skip`` and iteration continues."""
        for i in range(len(self)):
            try:
                yield self.read(i)
            except RecordError as exc:
                if on_skip is None:
                    raise
                on_skip(Skipped(self.record_id(i), exc.source, exc.problem))

    def describe(self) -> dict[str, Any]:
        return {"dataset": self.name, "root": str(self.root), "citation": self.citation, "licence": self.licence, "url": self.url}


READERS: Registry[type[Reader]] = Registry("dataset format")


def register_reader(name: str) -> Callable[[type[Reader]], type[Reader]]:
    """Class decorator: make a reader available to ``open_dataset`` and the CLI under ``name`` (the one registry
    mechanism of ``ecgalign.data.registry``; a duplicate name raises)."""

    def deco(cls: type[Reader]) -> type[Reader]:
        READERS.register(name)(cls)
        cls.name = name
        return cls

    return deco


def list_readers() -> list[str]:
    return READERS.names()


def get_reader(name: str) -> type[Reader]:
    try:
        return READERS.get(name)
    except KeyError as exc:
        raise InputError(str(exc.args[0])) from None


def detect_format(root: str | Path) -> str:
    """Name of the reader whose layout ``root`` has; a clear error listing the known layouts otherwise."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such dataset folder")
    found = [name for name in READERS.names() if READERS.get(name).detect(root)]
    if not found:
        raise InputError(
            f"{root}: not a dataset folder ecgalign can read; known layouts: {', '.join(READERS.names())} "
            "(e.g. PTB-XL needs ptbxl_database.csv, the challenge format needs .hea + .mat pairs)"
        )
    return found[0]


def open_dataset(root: str | Path, fmt: str | None = None, **kwargs: Any) -> Reader:
    """Open a raw dataset folder with the named reader, or the one whose layout it matches."""
    name = fmt or detect_format(root)
    return get_reader(name)(root, **kwargs)
