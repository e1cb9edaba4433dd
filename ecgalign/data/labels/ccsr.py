"""Structural-disease labels: ICD-10 diagnoses -> CCSR circulatory (``CIRxxx``) categories, linked to ECGs.

EEE (seed 003, Sec. 4.1, Table 2) labels MIMIC-IV-ECG records with the CCSR categories (HCUP Clinical
Classifications Software Refined for ICD-10-CM) that start with ``CIR``, from the hospital diagnoses of the
patient. Packaged here:

- ``ccsr_paper_table2.csv``: the paper's Table 2 exactly as printed (15 categories, 51 ICD-10 codes). Its
  numbering is the paper's and does not follow HCUP's (the paper files heart failure I50.x under CIR022/CIR023,
  HCUP under CIR019); ``PAPER_TABLE2`` keeps it for reproducing the paper.
- ``ccsr_cir_categories.csv``: the HCUP CIR category codes CIR001-CIR039 with their descriptions (transcribed by
  ecgalign; CIR037-CIR039 are listed without a description because we could not confirm it offline).
The complete ICD-10-CM -> CCSR map is HCUP's ``DXCCSR_v20XX-X.csv`` (free download, ~75k codes, not packaged):
``load_dxccsr`` reads it and ``cir_map`` keeps its CIR part.

``link_diagnoses`` attaches labels to ECGs: an ECG gets the CIR categories of every admission of the same subject
whose [admittime - before, dischtime + after] window holds the ECG time (MIMIC-IV ``hosp/admissions.csv`` and
``hosp/diagnoses_icd.csv``, MIMIC-IV-ECG ``record_list.csv``).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from ecgalign.data.errors import InputError

ICD_COLUMNS = ("subject_id", "hadm_id", "icd_code", "icd_version")
ADMISSION_COLUMNS = ("subject_id", "hadm_id", "admittime", "dischtime")
ECG_COLUMNS = ("subject_id", "study_id", "ecg_time")


def normalize_icd(code: str) -> str:
    """'I50.22 ' -> 'I5022' (upper case, no dots or spaces)."""
    return str(code).strip().upper().replace(".", "").replace(" ", "")


def _packaged(name: str) -> pd.DataFrame:
    with resources.files("ecgalign.data.labels").joinpath(name).open("r") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False)


@lru_cache(maxsize=1)
def paper_table2() -> dict[str, tuple[str, ...]]:
    """ICD-10 code -> CIR categories as in EEE's Table 2 (the paper's numbering)."""
    table = _packaged("ccsr_paper_table2.csv")
    out: dict[str, tuple[str, ...]] = {}
    for cir, icd in zip(table.cir, table.icd10):
        out[normalize_icd(icd)] = (*out.get(normalize_icd(icd), ()), cir)
    return out


@lru_cache(maxsize=1)
def cir_categories() -> dict[str, str]:
    """HCUP CIR category code -> description ('' where not transcribed)."""
    table = _packaged("ccsr_cir_categories.csv")
    return dict(zip(table.cir, table.description))


def load_dxccsr(path: str | Path) -> dict[str, tuple[str, ...]]:
    """Read HCUP's DXCCSR reference CSV (quoted values like ``'I5022'``): ICD-10-CM code -> all its CCSR
    categories (columns ``CCSR CATEGORY 1`` .. ``CCSR CATEGORY 6``)."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the DXCCSR file ({type(exc).__name__}: {exc})") from exc
    table.columns = [c.strip().strip("'\"").strip() for c in table.columns]
    code_col = "ICD-10-CM CODE"
    cat_cols = [c for c in table.columns if c.startswith("CCSR CATEGORY ") and not c.endswith("DESCRIPTION")]
    if code_col not in table.columns or not cat_cols:
        raise InputError(f"{path}: not a DXCCSR file; expected columns '{code_col}' and 'CCSR CATEGORY 1'..")
    out = {}
    for _, row in table.iterrows():
        cats = tuple(v for v in (row[c].strip().strip("'\" ") for c in cat_cols) if v)
        out[normalize_icd(row[code_col].strip("'\" "))] = cats
    return out


def cir_map(mapping: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Keep only the circulatory (``CIR``) categories of an ICD -> CCSR map."""
    out = {code: tuple(c for c in cats if c.startswith("CIR")) for code, cats in mapping.items()}
    return {code: cats for code, cats in out.items() if cats}


def _require(table: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"{name}: missing column(s) {missing}; expected {list(columns)}")


def link_diagnoses(
    ecgs: pd.DataFrame,
    diagnoses: pd.DataFrame,
    admissions: pd.DataFrame,
    *,
    mapping: Mapping[str, tuple[str, ...]] | None = None,
    before: pd.Timedelta = pd.Timedelta(0),
    after: pd.Timedelta = pd.Timedelta(0),
) -> pd.DataFrame:
    """Multi-hot CIR labels per ECG: one row per ``ecgs.study_id`` (in input order), one uint8 column per
    category of ``mapping`` (default: the paper's Table 2), plus ``n_admissions`` (admissions linked).

    ECGs linked to no admission get all zeros and ``n_admissions`` 0 (use it to drop unlabelled ECGs).
    ICD-9 diagnoses (``icd_version`` 9) are ignored: the CCSR maps ICD-10-CM codes."""
    _require(ecgs, ECG_COLUMNS, "ECG records")
    _require(diagnoses, ICD_COLUMNS, "diagnoses_icd")
    _require(admissions, ADMISSION_COLUMNS, "admissions")
    mapping = paper_table2() if mapping is None else mapping
    classes = sorted({c for cats in mapping.values() for c in cats})
    adm = admissions[list(ADMISSION_COLUMNS)].copy()
    for col in ("admittime", "dischtime"):
        adm[col] = pd.to_datetime(adm[col], errors="coerce")
    bad = adm.admittime.isna() | adm.dischtime.isna()
    adm = adm[~bad]
    ecg = ecgs[list(ECG_COLUMNS)].copy()
    ecg["ecg_time"] = pd.to_datetime(ecg.ecg_time, errors="coerce")
    ecg["_row"] = np.arange(len(ecg))
    pairs = ecg.merge(adm, on="subject_id", how="inner")
    pairs = pairs[(pairs.ecg_time >= pairs.admittime - before) & (pairs.ecg_time <= pairs.dischtime + after)]
    dx = diagnoses[diagnoses.icd_version.astype(str).str.strip() == "10"][["hadm_id", "icd_code"]].copy()
    dx["cats"] = [mapping.get(normalize_icd(c), ()) for c in dx.icd_code]
    dx = dx[dx.cats.map(len) > 0].explode("cats")
    labels = np.zeros((len(ecg), len(classes)), dtype=np.uint8)
    index = {c: j for j, c in enumerate(classes)}
    hits = pairs[["_row", "hadm_id"]].merge(dx[["hadm_id", "cats"]], on="hadm_id", how="inner")
    labels[hits._row.to_numpy(dtype=int), [index[c] for c in hits.cats]] = 1
    out = pd.DataFrame(labels, columns=classes)
    out.insert(0, "study_id", ecg.study_id.to_numpy())
    out.insert(1, "subject_id", ecg.subject_id.to_numpy())
    out["n_admissions"] = np.bincount(pairs._row.to_numpy(dtype=int), minlength=len(ecg)).astype(int)
    return out


def read_table(path: str | Path) -> pd.DataFrame:
    """A MIMIC CSV (``.csv`` or ``.csv.gz``), with a clear error naming the file when it cannot be read."""
    try:
        return pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read as CSV ({type(exc).__name__}: {exc})") from exc
