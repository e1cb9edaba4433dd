"""CODE-test and CODE-15% (Ribeiro et al.): 400 Hz 12-lead tracings in HDF5 with CSV labels.

Layouts (either one per folder):

- CODE-test (Ribeiro et al., "Automatic diagnosis of the 12-lead ECG using a deep neural network", Nat Commun
  11:1760, 2020; Zenodo 3765780): ``ecg_tracings.hdf5`` with dataset ``tracings`` (827, 4096, 12);
  ``attributes.csv`` (age, sex) and ``annotations/gold_standard.csv`` (columns 1dAVb RBBB LBBB SB AF ST), both
  row-aligned with the tracings. The other annotation files (cardiologists, residents, students, DNN) are not
  labels and are not read.
- CODE-15% (Ribeiro et al., Zenodo 4916206; the 15 % subset of CODE used in Lima et al., Nat Commun 12:5117,
  2021): ``exams.csv`` (exam_id, age, is_male, nn_predicted_age, 1dAVb, RBBB, LBBB, SB, ST, AF, patient_id,
  death, timey, normal_ecg, trace_file) and ``exams_partN.hdf5`` each with ``tracings`` (N, 4096, 12) and
  ``exam_id`` (N,). Each part ends with a filler row whose exam_id is 0; those rows are not records.

Signal facts, from the authors' READMEs (automatic-ecg-diagnosis, Zenodo 3765780) and the PhysioNet Challenge
2025 organisers' ``prepare_code15_data.py``, which converts CODE-15% to WFDB:

- 400 Hz; lead order DI, DII, DIII, AVR, AVL, AVF, V1-V6 (the model README and the 2025 conversion; one
  CODE-test README lists AVL, AVF, AVR instead, so Einthoven/Goldberger residuals are the check if in doubt).
- Exams of 7 s (2,800 samples) or 10 s (4,000) are zero-padded on both sides to 4,096 samples. We strip the
  padding as the 2025 conversion does: the leading and trailing rows in which all twelve leads are exactly
  zero are removed, zeros inside the recording are kept; ``extra`` keeps ``pad_start``/``pad_end``. A tracing
  that is zero throughout is a bad record.
- Units: the README says "floating point numbers at the scale 1e-4V: so if the signal is in V it should be
  multiplied by 1000", which contradicts itself (1e-4 V would mean tenths of mV; x1000 from volts means mV).
  The 2025 conversion writes the stored values as mV (gain 1000/mV), and so do we: ``amplitude_scale=1.0``.
  An independent amplitude comparison (CODE-15% vs mV sources) found CODE-15% 1.4-2x larger, hinting at a
  factor of ~0.5 that the authors have not confirmed; pass ``amplitude_scale`` to choose another factor.

HDF5 files are opened lazily, one handle per file and per process (safe with forked DataLoader workers); a
record is one slice of ``tracings``, so random access is O(1) and nothing else is loaded.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from ecgalign.data.errors import InputError
from ecgalign.data.labels import FixedScheme, LabelScheme
from ecgalign.data.readers.base import Reader, ScanResult, Skipped, metadata_frame, register_reader
from ecgalign.data.record import ECGRecord, RecordError, canonical_lead_name, canonical_sex, clean_age

CODE_CLASSES: tuple[str, ...] = ("1dAVb", "RBBB", "LBBB", "SB", "AF", "ST")
CODE_FS = 400.0
CODE_LEADS: tuple[str, ...] = tuple(
    canonical_lead_name(n)
    for n in ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")
)
CODE_TEST_FILE = "ecg_tracings.hdf5"
# What h5py raises for a damaged or hostile file, besides OSError: corrupt B-trees and symbol tables surface as
# RuntimeError, KeyError or ValueError. Caught only around HDF5 calls and re-raised naming the file.
_HDF5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError)
_PART_FILE = re.compile(r"^exams_part(\d+)\.hdf5$")
_TRUE = {"true", "1", "1.0", "yes"}


def code_scheme() -> FixedScheme:
    return FixedScheme("code", {"code": list(CODE_CLASSES)})


def strip_zero_padding(tracing: np.ndarray) -> tuple[np.ndarray, int, int]:
    """(recorded part, pad_start, pad_end) of a (samples, leads) tracing: leading and trailing rows that are
    exactly zero in every lead are padding. An all-zero tracing gives an empty array."""
    recorded = np.any(tracing != 0, axis=1)  # (samples,); NaN counts as recorded
    if not recorded.any():
        return tracing[:0], len(tracing), 0
    start = int(np.argmax(recorded))
    end = len(recorded) - int(np.argmax(recorded[::-1]))
    return tracing[start:end], start, len(tracing) - end


@register_reader("code15")
class CODEReader(Reader):
    """CODE-test (``ecg_tracings.hdf5``) or CODE-15% (``exams.csv`` + ``exams_partN.hdf5``) under ``root``."""

    citation = (
        "Ribeiro AH et al., Automatic diagnosis of the 12-lead ECG using a deep neural network, "
        "Nat Commun 11:1760, 2020; CODE-15%: Ribeiro AH et al., Zenodo 10.5281/zenodo.4916206, 2021"
    )
    licence = "CC BY 4.0"
    url = "https://zenodo.org/records/4916206"

    def __init__(self, root: str | Path, amplitude_scale: float = 1.0):
        super().__init__(root)
        if not (np.isfinite(amplitude_scale) and amplitude_scale > 0):
            raise InputError(f"amplitude_scale must be a positive number, got {amplitude_scale}")
        self.amplitude_scale = float(amplitude_scale)
        self._handles: dict[int, h5py.File] = {}
        self._pid = os.getpid()
        self.part_problems: list[Skipped] = []
        if (self.root / CODE_TEST_FILE).is_file():
            self.variant = "code-test"
            self._index_code_test()
        elif _part_files(self.root):
            self.variant = "code15"
            self._index_code15()
        else:
            raise FileNotFoundError(
                f"{self.root}: neither {CODE_TEST_FILE} (CODE-test) nor exams_partN.hdf5 (CODE-15%) found"
            )
        self._scheme = code_scheme()

    # --- indexing -------------------------------------------------------------------------------------------

    def _index_code_test(self) -> None:
        path = self.root / CODE_TEST_FILE
        self._parts = [path]
        attributes = _read_csv(self.root / "attributes.csv")
        gold = _read_csv(self.root / "annotations" / "gold_standard.csv")
        n = 0
        try:
            with h5py.File(path, "r") as fh:
                if "tracings" in fh:
                    n = int(fh["tracings"].shape[0])
                else:
                    self.part_problems.append(
                        Skipped(path.name, str(path), f"no dataset 'tracings' (keys: {sorted(fh)})")
                    )
        except _HDF5_ERRORS as exc:
            self.part_problems.append(Skipped(path.name, str(path), f"cannot open HDF5 file: {exc}"))
        if n == 0:
            n = max(len(attributes) if attributes is not None else 0, len(gold) if gold is not None else 0)
        self._part_of = np.zeros(n, dtype=np.int32)
        self._row = np.arange(n, dtype=np.int64)
        self._ids = [str(i) for i in range(n)]
        self._patients: list[str | None] = [None] * n
        self._age = _column(attributes, "age", n)
        self._sex = _column(attributes, "sex", n)
        self._normal: list[Any] = [None] * n
        self._labels = _label_lists(gold, n) if gold is not None else None

    def _index_code15(self) -> None:
        self._parts = _part_files(self.root)
        part_of, rows, exam_ids = [], [], []
        for k, path in enumerate(self._parts):
            try:
                with h5py.File(path, "r") as fh:
                    if "exam_id" not in fh:
                        raise RecordError(
                            path, f"no dataset 'exam_id' (keys: {sorted(fh)}); its records cannot be indexed"
                        )
                    ids = np.asarray(fh["exam_id"][()], dtype=np.int64).reshape(-1)
            except RecordError as exc:
                self.part_problems.append(Skipped(path.name, exc.source, exc.problem))
                continue
            except (ValueError, TypeError) as exc:  # a string or compound exam_id dataset (or a damaged one)
                self.part_problems.append(Skipped(path.name, str(path), f"'exam_id' is not integer: {exc}"))
                continue
            except _HDF5_ERRORS as exc:
                self.part_problems.append(Skipped(path.name, str(path), f"cannot open HDF5 file: {exc}"))
                continue
            keep = np.flatnonzero(ids != 0)  # exam_id 0 marks the filler row at the end of each part
            part_of.append(np.full(len(keep), k, dtype=np.int32))
            rows.append(keep)
            exam_ids.append(ids[keep])
        self._part_of = np.concatenate(part_of) if part_of else np.zeros(0, dtype=np.int32)
        self._row = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        ids = np.concatenate(exam_ids) if exam_ids else np.zeros(0, dtype=np.int64)
        self._ids = [str(int(i)) for i in ids]
        n = len(ids)
        exams = _read_csv(self.root / "exams.csv")
        if exams is None:
            self._patients, self._sex, self._normal = [None] * n, [None] * n, [None] * n
            self._age = [None] * n
            self._labels = None
            return
        csv_path = self.root / "exams.csv"
        if "exam_id" not in exams:
            raise InputError(f"{csv_path}: no exam_id column")
        exam_id = pd.to_numeric(exams["exam_id"], errors="coerce")
        bad = exam_id.isna() | (exam_id != exam_id.round()) | exam_id.abs().gt(2**62)
        for row in np.flatnonzero(bad.to_numpy() & exams["exam_id"].notna().to_numpy()):
            self.part_problems.append(Skipped(f"exams.csv row {row + 1}", str(csv_path),
                                              f"column 'exam_id': {exams['exam_id'].iloc[row]!r} is not an integer"))
        exams = exams[~bad.to_numpy()].assign(exam_id=exam_id[~bad].astype(np.int64)).drop_duplicates("exam_id")
        exams = exams.set_index(exams["exam_id"].to_numpy())
        exams = exams.reindex(ids)  # one row per record, NaN where exams.csv does not list the exam
        listed = exams["exam_id"].notna().to_numpy()
        self._patients = [_integer_text(p) for p in _column(exams, "patient_id", n)]
        self._age = _column(exams, "age", n)
        self._sex = [
            None if pd.isna(m) else ("M" if _is_true(m) else "F") for m in _column(exams, "is_male", n)
        ]
        self._normal = [None if pd.isna(v) else _is_true(v) for v in _column(exams, "normal_ecg", n)]
        labels = _label_lists(exams, n)
        self._labels = [lab if ok else [] for lab, ok in zip(labels, listed, strict=True)]

    # --- Reader interface -----------------------------------------------------------------------------------

    @classmethod
    def detect(cls, root: Path) -> bool:
        root = Path(root)
        return (root / CODE_TEST_FILE).is_file() or bool(_part_files(root))

    def __len__(self) -> int:
        return len(self._ids)

    def record_id(self, index: int) -> str:
        return self._ids[index]

    def label_scheme(self) -> LabelScheme:
        return self._scheme

    def read(self, index: int) -> ECGRecord:
        if not 0 <= index < len(self):
            raise IndexError(f"record index {index} out of range for {len(self)} records in {self.root}")
        part, row = int(self._part_of[index]), int(self._row[index])
        path = self._parts[part]
        tracings = self._tracings(part)
        if row >= tracings.shape[0]:
            raise RecordError(
                path,
                f"row {row} (record {self._ids[index]}) out of range: "
                f"'tracings' has {tracings.shape[0]} rows",
            )
        try:
            stored = np.asarray(tracings[row], dtype=np.float32)  # (samples, leads)
        except _HDF5_ERRORS as exc:  # a truncated or damaged chunk, or a string/compound row
            raise RecordError(path, f"row {row} (record {self._ids[index]}) cannot be read as numbers: {exc}") from exc
        recorded, pad_start, pad_end = strip_zero_padding(stored)
        if recorded.shape[0] == 0:
            raise RecordError(
                path, f"row {row} (record {self._ids[index]}) is all zeros: no recorded samples"
            )
        signal = np.ascontiguousarray(recorded.T) * np.float32(self.amplitude_scale)  # (leads, T) mV
        extra: dict[str, Any] = {
            "variant": self.variant,
            "hdf5_file": path.name,
            "hdf5_row": row,
            "pad_start": pad_start,
            "pad_end": pad_end,
            "stored_samples": int(stored.shape[0]),
            "amplitude_scale": self.amplitude_scale,
        }
        if self._normal[index] is not None:
            extra["normal_ecg"] = bool(self._normal[index])
        record = ECGRecord(
            signal=signal.astype(np.float32, copy=False),
            fs=CODE_FS,
            leads=CODE_LEADS,
            record_id=self._ids[index],
            dataset=self.variant,
            patient_id=self._patients[index],
            age=clean_age(self._age[index]),
            sex=canonical_sex(self._sex[index]),
            codes=tuple(self._labels[index]) if self._labels is not None else (),
            code_system=self._scheme.code_system,
            source=str(path),
            extra=extra,
        )
        return record.validate()

    def metadata(self) -> pd.DataFrame:
        """One row per record from the CSVs (no tracing is read, so the recorded length is not known here).
        Without a label table (exams.csv / gold_standard.csv) there is no ``labels_code`` column."""
        rows = []
        for i, record_id in enumerate(self._ids):
            codes = list(self._labels[i]) if self._labels is not None else []
            row = {
                "record_id": record_id,
                "patient_id": self._patients[i],
                "age": clean_age(self._age[i]),
                "sex": canonical_sex(self._sex[i]),
                "report": "",
                "codes": codes,
                "fold": None,
                "fs": CODE_FS,
                "source": str(self._parts[int(self._part_of[i])]),
                "hdf5_row": int(self._row[i]),
            }
            if self._labels is not None:
                row["labels_code"] = codes
            rows.append(row)
        return metadata_frame(rows)

    def scan(self) -> ScanResult:
        """File-level check without reading tracings: every HDF5 file opens, has a (N, samples, 12)
        ``tracings`` dataset, and every record's row is inside it; unindexable part files are listed too."""
        skipped = list(self.part_problems)
        bad = 0
        shapes: dict[int, tuple[int, ...] | RecordError] = {}
        for part in range(len(self._parts)):
            try:
                shapes[part] = tuple(self._tracings(part).shape)
            except RecordError as exc:
                shapes[part] = exc
        for i in range(len(self)):
            part, row = int(self._part_of[i]), int(self._row[i])
            shape = shapes[part]
            if isinstance(shape, RecordError):
                skipped.append(Skipped(self._ids[i], shape.source, shape.problem))
            elif row >= shape[0]:
                skipped.append(
                    Skipped(
                        self._ids[i],
                        str(self._parts[part]),
                        f"row {row} out of range: 'tracings' has {shape[0]} rows",
                    )
                )
            else:
                continue
            bad += 1
        return ScanResult(len(self) - bad, [CODE_FS], list(CODE_LEADS), skipped)

    def source_problems(self) -> list[Skipped]:
        return list(self.part_problems)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(
            variant=self.variant,
            amplitude_scale=self.amplitude_scale,
            labels="present" if self._labels is not None else "absent",
        )
        return info

    # --- HDF5 handles ---------------------------------------------------------------------------------------

    def _tracings(self, part: int) -> h5py.Dataset:
        path = self._parts[part]
        handle = self._handle(part)
        try:
            if "tracings" not in handle:
                raise RecordError(path, f"no dataset 'tracings' (keys: {sorted(handle)})")
            tracings = handle["tracings"]
            if not isinstance(tracings, h5py.Dataset):
                raise RecordError(path, "'tracings' is a group, expected a (records, samples, 12) dataset")
            dtype, shape = tracings.dtype, tracings.shape
        except RecordError:
            raise
        except _HDF5_ERRORS as exc:  # h5py reports a damaged file with many types
            raise RecordError(path, f"damaged HDF5 file: {exc}") from None
        if not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
            raise RecordError(path, f"'tracings' must hold real numbers, got dtype {dtype}")
        if len(shape) != 3 or shape[2] != len(CODE_LEADS):
            raise RecordError(path, f"'tracings' must be (records, samples, 12 leads), got shape {shape}")
        return tracings

    def _handle(self, part: int) -> h5py.File:
        if os.getpid() != self._pid:  # a forked worker must not share the parent's HDF5 handles
            self._handles = {}
            self._pid = os.getpid()
        handle = self._handles.get(part)
        if handle is None:
            path = self._parts[part]
            try:
                handle = h5py.File(path, "r")
            except _HDF5_ERRORS as exc:
                raise RecordError(path, f"cannot open HDF5 file: {exc}") from exc
            self._handles[part] = handle
        return handle

    def close(self) -> None:
        """Close the open HDF5 files (reading again reopens them)."""
        for handle in self._handles.values():
            handle.close()
        self._handles = {}

    def __enter__(self) -> CODEReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handles"] = {}
        return state


def _part_files(root: Path) -> list[Path]:
    """``exams_partN.hdf5`` files of ``root`` in part-number order."""
    found = [(int(m.group(1)), p) for p in root.glob("exams_part*.hdf5") if (m := _PART_FILE.match(p.name))]
    return [p for _, p in sorted(found)]


def _read_csv(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        table = pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - pandas raises many types; re-raised with the file named
        raise InputError(f"{path}: cannot read CSV: {exc}") from exc
    table.attrs["source"] = str(path)
    return table


def _column(table: pd.DataFrame | None, name: str, n: int) -> list[Any]:
    """Column ``name`` as a list of ``n`` values (None everywhere when the table or column is absent)."""
    if table is None or name not in table:
        return [None] * n
    values = table[name].tolist()
    if len(values) != n:
        source = table.attrs.get("source", "CSV table")
        raise InputError(
            f"{source}: column {name!r} has {len(values)} rows but there are {n} tracings (rows must align)"
        )
    return values


def _integer_text(value: Any) -> str | None:
    """'123' for an integer-valued cell (123, 123.0, '123'); None for a missing or non-integer one."""
    number = pd.to_numeric(pd.Series([value], dtype=object), errors="coerce").iloc[0]
    if pd.isna(number) or not float(number).is_integer() or abs(number) > 2**62:
        return None
    return str(int(number))


def _is_true(value: Any) -> bool:
    return str(value).strip().lower() in _TRUE


def _label_lists(table: pd.DataFrame, n: int) -> list[list[str]]:
    """Per row, the CODE classes whose column is true (columns absent from the table count as false)."""
    flags = {c: [_is_true(v) for v in _column(table, c, n)] for c in CODE_CLASSES if c in table}
    return [[c for c in CODE_CLASSES if c in flags and flags[c][i]] for i in range(n)]
