"""The original CPSC2018 (ICBEB 2018) release: ``A0001.mat`` ... with an optional ``REFERENCE.csv``.

Each ``.mat`` holds a MATLAB struct ``ECG`` with fields ``sex`` ('Male'/'Female'), ``age`` and ``data``:
float64 (12, samples) in mV at 500 Hz, 6-60 s, leads I, II, III, aVR, aVL, aVF, V1-V6. ``REFERENCE.csv``
(columns Recording, First_label, Second_label, Third_label) gives up to three classes per record, coded
1 Normal, 2 AF, 3 I-AVB, 4 LBBB, 5 RBBB, 6 PAC, 7 PVC, 8 STD, 9 STE; the release splits records over
``TrainingSet1..3`` folders, so ``.mat`` files are found at any depth and every ``REFERENCE.csv`` found is
used.
Without a reference the labels are unknown, never "no finding": metadata then has no label column.

Liu F et al., "An Open Access Database for Evaluating the Algorithms of Electrocardiogram Rhythm and
Morphology Abnormality Detection", J. Med. Imaging Health Inform. 8(7):1368-1373, 2018. Free for research.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.io

from ecgalign.data.errors import InputError
from ecgalign.data.labels import LabelScheme
from ecgalign.data.labels.cpsc import CPSC2018_CLASSES, cpsc2018_scheme
from ecgalign.data.readers.base import Reader, metadata_frame, register_reader
from ecgalign.data.record import LEADS_12, ECGRecord, RecordError, canonical_sex, clean_age

CPSC2018_FS = 500.0
# REFERENCE.csv class codes 1..9 in the order of the challenge description.
_CODE_TO_CLASS = {str(i + 1): name for i, name in enumerate(CPSC2018_CLASSES)}
_LABEL_COLUMNS = ("First_label", "Second_label", "Third_label")
_DETECT_DEPTH = 2


def read_reference(
    path: str | Path, problems: dict[str, RecordError] | None = None
) -> dict[str, tuple[str, ...]]:
    """Record name -> class names from a CPSC2018 ``REFERENCE.csv``. A bad row raises ValueError naming the
    file, line and column, or, when ``problems`` is given, goes there (record name -> RecordError) and is
    left out, so one bad line does not refuse the dataset."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # noqa: BLE001 - pandas raises many types; re-raised with the file named
        raise InputError(f"{path}: cannot read CPSC2018 reference table: {exc}") from exc
    missing = {"Recording", "First_label"} - set(table.columns)
    if missing:
        raise InputError(f"{path}: reference table lacks columns {sorted(missing)}")
    labels: dict[str, tuple[str, ...]] = {}
    for row_number, values in enumerate(table.to_dict("records"), start=2):
        name = str(values["Recording"]).strip()
        classes, problem = [], None
        for column in _LABEL_COLUMNS:
            code = str(values.get(column, "")).strip()
            if not code:
                continue
            code = code.split(".")[0]  # "5.0" when a spreadsheet rewrote the file
            if code not in _CODE_TO_CLASS:
                problem = f"line {row_number}: {column} {code!r} is not a CPSC2018 class code 1-9"
                break
            classes.append(_CODE_TO_CLASS[code])
        if problem is None and not name:
            problem = f"line {row_number}: Recording is empty"
        if problem is not None:
            if problems is None:
                raise InputError(f"{path}: {problem}")
            problems[name] = RecordError(path, problem)
            continue
        labels[name] = tuple(dict.fromkeys(classes))
    return labels


def load_ecg_struct(path: Path) -> tuple[np.ndarray, Any, Any]:
    """(data (12, samples) float64 mV, age, sex) from a CPSC2018 ``.mat``; RecordError naming the file."""
    try:
        mat = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False, variable_names=["ECG"])
    except Exception as exc:  # noqa: BLE001 - damaged files raise many types; re-raised naming the file
        raise RecordError(path, f"cannot read MATLAB file: {exc}") from exc
    ecg = mat.get("ECG")
    if ecg is None or not hasattr(ecg, "_fieldnames"):
        raise RecordError(path, "no MATLAB struct 'ECG' (expected fields sex, age, data)")
    if "data" not in ecg._fieldnames:
        raise RecordError(path, f"struct ECG has no field 'data' (fields: {ecg._fieldnames})")
    data = np.asarray(ecg.data)
    if data.ndim != 2 or data.shape[0] != len(LEADS_12) or not np.issubdtype(data.dtype, np.number):
        raise RecordError(
            path, f"ECG.data must be a numeric (12, samples) array, got {data.dtype} {data.shape}"
        )
    return data, getattr(ecg, "age", None), getattr(ecg, "sex", None)


@register_reader("cpsc2018")
class CPSC2018Reader(Reader):
    """Every ``A*.mat`` (struct ``ECG``) under ``root``, in record-name order, labelled by REFERENCE.csv."""

    citation = (
        "Liu F et al., An Open Access Database for Evaluating the Algorithms of Electrocardiogram Rhythm and "
        "Morphology Abnormality Detection, J. Med. Imaging Health Inform. 8(7):1368-1373, 2018"
    )
    licence = "free for research use (CPSC 2018)"
    url = "http://2018.icbeb.org/Challenge.html"

    def __init__(self, root: str | Path):
        super().__init__(root)
        files = [p for p in self.root.rglob("A*.mat") if not p.with_suffix(".hea").exists()]
        if not files:
            raise FileNotFoundError(f"{self.root}: no CPSC2018 A*.mat files without a .hea beside them")
        self._files = sorted(files, key=lambda p: (p.stem, str(p)))
        self.reference_files = sorted(self.root.rglob("REFERENCE.csv"))
        self._labels: dict[str, tuple[str, ...]] = {}
        self._label_problems: dict[str, RecordError] = {}  # record -> its bad REFERENCE.csv line
        for ref in self.reference_files:
            self._labels.update(read_reference(ref, self._label_problems))
        self._scheme = cpsc2018_scheme()

    @property
    def labels_available(self) -> bool:
        """False when no ``REFERENCE.csv`` was found: every record's labels are then unknown."""
        return bool(self.reference_files)

    @classmethod
    def detect(cls, root: Path) -> bool:
        root = Path(root)
        for depth in range(_DETECT_DEPTH + 1):
            pattern = "/".join(["*"] * depth + ["A*.mat"])
            for candidate in sorted(root.glob(pattern)):
                if candidate.with_suffix(".hea").exists():
                    return False
                try:
                    variables = scipy.io.whosmat(candidate)
                except Exception:  # noqa: BLE001 - an unreadable file just means "not this layout"
                    return False
                return any(name == "ECG" and kind == "struct" for name, _, kind in variables)
        return False

    def __len__(self) -> int:
        return len(self._files)

    def record_id(self, index: int) -> str:
        return self._files[index].stem

    def label_scheme(self) -> LabelScheme:
        return self._scheme

    def labels_of(self, record_id: str) -> tuple[str, ...] | None:
        """The record's classes from REFERENCE.csv; None when no reference lists it (unknown, not normal)."""
        return self._labels.get(record_id)

    def read(self, index: int) -> ECGRecord:
        path = self._files[index]
        if path.stem in self._label_problems:
            bad = self._label_problems[path.stem]
            raise RecordError(bad.source, bad.problem)
        data, age, sex = load_ecg_struct(path)
        record = ECGRecord(
            signal=data.astype(np.float32),  # (12, T) mV
            fs=CPSC2018_FS,
            leads=LEADS_12,
            record_id=path.stem,
            dataset=self.name,
            age=clean_age(age),
            sex=canonical_sex(sex),
            codes=self.labels_of(path.stem) or (),
            code_system=self._scheme.code_system,
            source=str(path),
            extra={"labelled": self.labels_of(path.stem) is not None},
        )
        return record.validate()

    def metadata(self) -> pd.DataFrame:
        """One row per record. Age and sex live only inside each ``.mat``, so every file is opened (the signal
        is not converted). Without any ``REFERENCE.csv`` there is no ``labels_cpsc2018`` column at all, so
        label counts report the set as absent instead of counting every record as unlabelled."""
        rows = []
        for path in self._files:
            try:
                data, age, sex = load_ecg_struct(path)
                n_samples: int | None = int(data.shape[1])
            except RecordError:
                age = sex = n_samples = None
            labels = self.labels_of(path.stem)
            rows.append(
                {
                    "record_id": path.stem,
                    "patient_id": None,
                    "age": clean_age(age),
                    "sex": canonical_sex(sex),
                    "report": "",
                    "codes": list(labels or ()),
                    "fold": None,
                    "fs": CPSC2018_FS,
                    "n_samples": n_samples,
                    "source": str(path),
                }
            )
            if self.labels_available:
                rows[-1]["labels_cpsc2018"] = self._scheme.label_sets(labels or ())["cpsc2018"]
        return metadata_frame(rows)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["labels"] = (
            [str(p) for p in self.reference_files] if self.labels_available else "absent (no REFERENCE.csv)"
        )
        return info
