"""MIMIC-IV-ECG v1.0 in its PhysioNet layout.

Gow et al., "MIMIC-IV-ECG: Diagnostic Electrocardiogram Matched Subset" (version 1.0), PhysioNet 2023,
https://doi.org/10.13026/4nqg-sb35; ODbL 1.0. About 800,000 diagnostic 12-lead ECGs (10 s, 500 Hz) of about
160,000 MIMIC-IV patients. A MIMIC-IV-ECG folder holds

- ``record_list.csv``: ``subject_id``, ``study_id``, ``file_name``, ``ecg_time``, ``path`` (the record path without
  extension, ``files/pNNNN/pNNNNNNNN/sNNNNNNNN/NNNNNNNN``);
- ``machine_measurements.csv``: per ``study_id`` the cart (``cart_id``), ``ecg_time``, the machine's report as up to
  18 separate statements ``report_0 .. report_17`` (e.g. "Sinus rhythm", "Borderline ECG"; empty fields in
  between are common), ``bandwidth``, ``filtering`` and the global measurements ``rr_interval``, ``p_onset``,
  ``p_end``, ``qrs_onset``, ``qrs_end``, ``t_end`` (ms) and ``p_axis``, ``qrs_axis``, ``t_axis`` (degrees);
- ``files/...``: WFDB records (format 16, 200 adu/mV, leads ``I II III aVR aVF aVL V1-V6``).

Records carry no age, sex, fold or label codes (those live in other MIMIC-IV modules). The report joins the
non-empty statements in field order: ``report_original`` one statement per line as written, ``report`` as
sentences (". ") normalised by ``ecgalign.data.reports.normalize_report``. A measurement of 29999 is the
machine's "not measured" value (e.g. the P wave in atrial fibrillation) and becomes None.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from ecgalign.data.errors import InputError
from ecgalign.data.labels import FixedScheme, LabelScheme
from ecgalign.data.readers.base import Reader, ScanResult, Skipped, register_reader, text_or_none
from ecgalign.data.readers.wfdb_io import WFDBHeader, check_record, read_record, scan_records
from ecgalign.data.record import ECGRecord, RecordError
from ecgalign.data.reports import normalize_report

RECORD_LIST_CSV = "record_list.csv"
MEASUREMENTS_CSV = "machine_measurements.csv"
REPORT_COLUMNS: tuple[str, ...] = tuple(f"report_{k}" for k in range(18))
MEASUREMENT_COLUMNS: tuple[str, ...] = (
    "rr_interval", "p_onset", "p_end", "qrs_onset", "qrs_end", "t_end", "p_axis", "qrs_axis", "t_axis",
)
NOT_MEASURED = 29999
FS = 500.0  # every MIMIC-IV-ECG record; ``scan`` reports the rates the headers declare
_RECORD_LIST_REQUIRED = ("subject_id", "study_id", "path")
_RECORD_LIST_TEXT = ("file_name", "ecg_time", "path")
_MEASUREMENTS_REQUIRED = ("study_id", *REPORT_COLUMNS)
_MEASUREMENTS_TEXT = ("cart_id", "bandwidth", "filtering", *REPORT_COLUMNS)


def _require_columns(path: Path, required: tuple[str, ...]) -> list[str]:
    """The header row of a CSV; FileNotFoundError / ValueError naming the file and the missing columns."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: MIMIC-IV-ECG table is missing")
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            present = [c.strip() for c in next(csv.reader(fh), [])]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read the header row: {exc}") from None
    missing = [c for c in required if c not in present]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(map(repr, missing))} of the MIMIC-IV-ECG layout")
    return present


def _read_table(path: Path, present: list[str], wanted: tuple[str, ...], text: tuple[str, ...]) -> pd.DataFrame:
    """The ``wanted`` columns of a CSV (pyarrow: ~3x faster than pandas' parser on 800k rows); ``text`` columns
    stay strings and empty fields become None."""
    options = pacsv.ConvertOptions(
        include_columns=[c for c in dict.fromkeys(wanted) if c in present],
        column_types={c: pa.string() for c in text if c in present},
        strings_can_be_null=True,
    )
    try:
        return pacsv.read_csv(path, convert_options=options).to_pandas()
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the table: {exc}") from exc


def _integer_ids(table: pd.DataFrame, columns: tuple[str, ...], path: Path) -> tuple[np.ndarray, list[Skipped]]:
    """(mask of rows whose ``columns`` all hold integers, one Skipped naming row and column for every other row)."""
    good = np.ones(len(table), dtype=bool)
    problems: list[Skipped] = []
    for column in columns:
        number = pd.to_numeric(table[column], errors="coerce")
        ok = (number.notna() & (number == number.round()) & (number.abs() < 2**62)).to_numpy()
        for row in np.flatnonzero(good & ~ok):
            problems.append(Skipped(f"{path.name} row {row + 1}", str(path),
                                    f"column {column!r}: {table[column].iloc[row]!r} is not an integer"))
        good &= ok
    return good, problems


def _measurement(value: Any, where: Path, study: str, column: str) -> int | None:
    """A measurement in ms or degrees; None when missing or 29999 (not measured); RecordError otherwise."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not (np.isfinite(number) and number.is_integer()):
        raise RecordError(where, f"study_id {study}, column {column!r}: {value!r} is not an integer")
    return None if int(number) == NOT_MEASURED else int(number)


def _normalize(text: str) -> str:
    """The report cleaning of ``ecgalign.data.reports`` (one seam, so a test can watch what is cleaned)."""
    return normalize_report(text)


@register_reader("mimic-iv-ecg")
class MIMICECGReader(Reader):
    """MIMIC-IV-ECG records in ``record_list.csv`` order; record id = ``study_id``, patient id = ``subject_id``."""

    citation = (
        "Gow B, Pollard T, Nathanson LA, Johnson A, Moody B, Fernandes C, Greenbaum N, Waks JW, Eslami P, Carbonati T, "
        "Chaudhari A, Herbst E, Moukheiber D, Berkowitz S, Mark R, Horng S. MIMIC-IV-ECG: Diagnostic Electrocardiogram "
        "Matched Subset (version 1.0). PhysioNet, 2023. https://doi.org/10.13026/4nqg-sb35; Goldberger AL et al. "
        "PhysioBank, PhysioToolkit, and PhysioNet. Circulation 101(23):e215-e220, 2000"
    )
    licence = "ODbL 1.0 (Open Data Commons Open Database License)"
    url = "https://physionet.org/content/mimic-iv-ecg/1.0/"

    def __init__(self, root: str | Path):
        super().__init__(root)
        self.record_list_csv = self.root / RECORD_LIST_CSV
        self.measurements_csv = self.root / MEASUREMENTS_CSV
        present = _require_columns(self.record_list_csv, _RECORD_LIST_REQUIRED)
        self._measurement_columns = _require_columns(self.measurements_csv, _MEASUREMENTS_REQUIRED)
        records = _read_table(self.record_list_csv, present, (*_RECORD_LIST_REQUIRED, *_RECORD_LIST_TEXT), _RECORD_LIST_TEXT)
        good, self.row_problems = _integer_ids(records, ("subject_id", "study_id"), self.record_list_csv)
        records = records[good]  # a row without integer ids names no record: skipped, listed in source_problems
        self._subject = pd.to_numeric(records["subject_id"]).to_numpy(np.int64)
        self._study = pd.to_numeric(records["study_id"]).to_numpy(np.int64)
        self._path = records["path"].to_numpy(object)
        self._file_name = records["file_name"].to_numpy(object) if "file_name" in records else None
        self._ecg_time = records["ecg_time"].to_numpy(object) if "ecg_time" in records else None
        self._measurements: dict[str, np.ndarray] | None = None  # read on first use: a few s for 800k rows
        self._reports: dict[str, str] = {}
        self._scheme = FixedScheme("", {})

    @classmethod
    def detect(cls, root: Path) -> bool:
        return (Path(root) / RECORD_LIST_CSV).is_file() and (Path(root) / MEASUREMENTS_CSV).is_file()

    def __len__(self) -> int:
        return len(self._study)

    def record_id(self, index: int) -> str:
        return str(int(self._study[index]))

    def header_path(self, index: int) -> Path:
        path = text_or_none(self._path[index])
        if path is None:
            raise RecordError(self.record_list_csv, f"study_id {self.record_id(index)}: no path")
        return self.root / f"{path}.hea"

    def label_scheme(self) -> LabelScheme:
        """No label sets: MIMIC-IV-ECG ships machine reports, not label codes."""
        return self._scheme

    def measurements(self) -> dict[str, np.ndarray]:
        """``machine_measurements.csv`` aligned to the record list, one array per column, the 18 statement fields
        joined into ``report_original`` (a study without a row: NaN / None)."""
        if self._measurements is None:
            table = _read_table(
                self.measurements_csv, self._measurement_columns,
                ("study_id", *_MEASUREMENTS_TEXT, *MEASUREMENT_COLUMNS), _MEASUREMENTS_TEXT,
            )
            good, problems = _integer_ids(table, ("study_id",), self.measurements_csv)
            self.row_problems.extend(problems)
            table = table[good].assign(study_id=pd.to_numeric(table["study_id"][good]).astype(np.int64))
            table = table[~table["study_id"].duplicated()].set_index("study_id")
            fields = zip(*(table[c].tolist() for c in REPORT_COLUMNS))
            table["report_original"] = ["\n".join(filter(None, map(text_or_none, row))) for row in fields]
            aligned = table.drop(columns=list(REPORT_COLUMNS)).reindex(self._study)
            self._measurements = {c: aligned[c].to_numpy() for c in aligned.columns}
        return self._measurements

    def report(self, index: int) -> tuple[str, str]:
        """(normalised report, the non-empty ``report_k`` statements in field order, one per line)."""
        return self._report(self.measurements()["report_original"][index])

    def _report(self, original: Any) -> tuple[str, str]:
        original = original if isinstance(original, str) else ""
        if original not in self._reports:
            sentences = ". ".join(s.rstrip(" .") for s in original.split("\n") if s)
            self._reports[original] = _normalize(sentences + ".") if sentences else ""
        return self._reports[original], original

    def read(self, index: int) -> ECGRecord:
        hea = self.header_path(index)
        signal, header = read_record(hea, n_leads=12)
        report, report_original = self.report(index)
        record = ECGRecord(
            signal=signal,  # (12, T) mV
            fs=header.fs,
            leads=header.leads,
            record_id=self.record_id(index),
            dataset=self.name,
            patient_id=str(int(self._subject[index])),
            report=report,
            report_original=report_original,
            source=str(hea),
            extra=self._extra(index),
        )
        return record.validate()

    def metadata(self) -> pd.DataFrame:
        """One row per record from the two CSVs alone (no header or signal is opened)."""
        originals = pd.Series(self.measurements()["report_original"], dtype=object).fillna("")
        reports = originals.map({o: self._report(o)[0] for o in originals.unique()})
        n = len(self)
        return pd.DataFrame({
            "record_id": self._study.astype(str),
            "study_id": self._study,
            "patient_id": self._subject.astype(str),
            "age": np.full(n, None, dtype=object),
            "sex": np.full(n, None, dtype=object),
            "report": reports.to_numpy(object),
            "report_original": originals.to_numpy(object),
            "codes": [[] for _ in range(n)],
            "fold": np.full(n, None, dtype=object),
            "fs": np.full(n, FS),
            "ecg_time": self._ecg_time if self._ecg_time is not None else np.full(n, None, dtype=object),
            "path": self._path,
        })

    def scan(self) -> ScanResult:
        """Header-level check of every record (the header parses, 12 leads, the ``.dat`` is complete) without
        decoding signals."""
        return scan_records(len(self), self.check, self.record_id)

    def check(self, index: int) -> WFDBHeader:
        """Header-level check of one record; RecordError naming the file on a problem."""
        return check_record(self.header_path(index), n_leads=12)

    def _extra(self, index: int) -> dict[str, Any]:
        table = self.measurements()
        extra: dict[str, Any] = {
            "subject_id": int(self._subject[index]),
            "study_id": int(self._study[index]),
            "file_name": None if self._file_name is None else text_or_none(self._file_name[index]),
            "ecg_time": None if self._ecg_time is None else text_or_none(self._ecg_time[index]),
        }
        for column in ("cart_id", "bandwidth", "filtering"):
            extra[column] = text_or_none(table[column][index]) if column in table else None
        for column in MEASUREMENT_COLUMNS:
            if column in table:
                extra[column] = _measurement(table[column][index], self.measurements_csv, self.record_id(index), column)
            else:
                extra[column] = None
        return extra

    def source_problems(self) -> list[Skipped]:
        """Rows of record_list.csv / machine_measurements.csv whose ids are not integers (they name no record)."""
        self.measurements()
        return list(self.row_problems)
