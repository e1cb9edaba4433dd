"""Find echo DICOMs: the MIMIC-IV-ECHO layout (Gow et al., PhysioNet 2023) or any folder of DICOMs.

MIMIC-IV-ECHO: ``files/pNN/pNNNNNNNN/sNNNNNNNN/*.dcm`` with ``echo-record-list.csv`` (subject_id, study_id,
acquisition_datetime, dicom_filepath) and ``echo-study-list.csv``. Without a record list every ``*.dcm`` below
the folder is used, with subject/study ids read from ``p<digits>/s<digits>`` path parts when present.
Per-study labels are read from ``echo-labels.csv`` (study_id + label columns; the synthetic generator writes
one) when it exists, or from a table the user names.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ecgalign.data.errors import InputError

RECORD_LIST = "echo-record-list.csv"
STUDY_LIST = "echo-study-list.csv"
LABELS_FILE = "echo-labels.csv"
RECORD_COLUMNS = ("subject_id", "study_id", "dicom_filepath")
_IDS = re.compile(r"(?:^|/)p(\d+)/s(\d+)(?:/|$)")


def _read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    try:
        table = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read as CSV ({type(exc).__name__}: {exc})") from exc
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}; expected at least {list(required)}")
    return table


def scan(root: str | Path) -> pd.DataFrame:
    """One row per DICOM: path (absolute), rel (relative to ``root``), subject_id, study_id (-1 when unknown).

    ``root`` may also be a single file. Rows are sorted by ``rel`` so every run sees the same order."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or folder")
    if root.is_file():
        rows = [{"path": str(root), "rel": root.name, "subject_id": -1, "study_id": -1}]
        return pd.DataFrame(rows)
    listing = root / RECORD_LIST
    if listing.exists():
        table = _read_csv(listing, RECORD_COLUMNS)
        rows = [{"path": str(root / rel), "rel": str(rel), "subject_id": int(sub), "study_id": int(study)}
                for sub, study, rel in zip(table.subject_id, table.study_id, table.dicom_filepath)]
    else:
        rows = []
        for path in root.rglob("*.dcm"):
            rel = path.relative_to(root).as_posix()
            m = _IDS.search(rel)
            rows.append({"path": str(path), "rel": rel, "subject_id": int(m.group(1)) if m else -1,
                         "study_id": int(m.group(2)) if m else -1})
    frame = pd.DataFrame(rows, columns=["path", "rel", "subject_id", "study_id"])
    return frame.sort_values("rel", kind="stable").reset_index(drop=True)


def read_labels(path: str | Path) -> pd.DataFrame:
    """Per-study labels: a ``study_id`` column and any label columns (0/1 or numbers), indexed by study_id."""
    table = _read_csv(Path(path), ("study_id",))
    if table.study_id.duplicated().any():
        raise InputError(f"{path}: study_id must be unique, {int(table.study_id.duplicated().sum())} repeat")
    return table.set_index("study_id")


def default_labels(root: str | Path) -> Path | None:
    """``root/echo-labels.csv`` when ``root`` is a folder holding one."""
    path = Path(root) / LABELS_FILE
    return path if path.is_file() else None
