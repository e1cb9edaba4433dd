"""PhysioNet/CinC Challenge 2020/2021 layout: WFDB ``.hea`` headers beside MATLAB ``.mat`` signal files.

Each record is ``NAME.hea`` + ``NAME.mat``. The ``.mat`` holds one variable ``val``: int16 (leads, samples),
digital units. The header is a WFDB header whose signal lines give, per lead, ``gain(baseline)/units`` (e.g.
``1000.0(0)/mV``) and the lead name; its comment lines carry the metadata: ``# Age: 78``, ``# Sex: Male``,
``# Dx: 67741000119109,426177001`` (SNOMED CT codes), ``# Rx``, ``# Hx``, ``# Sx``. The 2021 training set
nests records in ``<source>/g1 ... gN`` folders; any depth is read.

Physical value (mV) = (digital - baseline) / gain, times the unit factor (uV -> mV: 1e-3); a baseline left out
of the gain field is the ADC zero, and -32768 is WFDB's invalid sample for format 16 and becomes NaN, exactly
as ``wfdb.rdrecord`` converts these files.

The source database is inferred from the record-name prefix (challenge 2021 documentation and training-set
layout): A CPSC2018, Q CPSC-Extra, I INCART (St Petersburg), S PTB, HR PTB-XL, E Georgia, JS00001-JS10646
Chapman-Shaoxing and JS10647 on Ningbo (together CSN).

Reyna et al., "Will Two Do? Varying Dimensions in Electrocardiography: the PhysioNet/Computing in Cardiology
Challenge 2021", CinC 2021; Perez Alday et al., "Classification of 12-lead ECGs: the PhysioNet/Computing in
Cardiology Challenge 2020", Physiol. Meas. 41:124003, 2020. Data CC BY 4.0.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io

from ecgalign.data.labels.snomed import SnomedScheme, snomed_scheme
from ecgalign.data.readers.base import Reader, ScanResult, Skipped, metadata_frame, register_reader
from ecgalign.data.readers.wfdb_io import digital_to_mv
from ecgalign.data.readers.wfdb_io import parse_header as parse_wfdb_header
from ecgalign.data.record import (
    LEADS_12,
    ECGRecord,
    RecordError,
    canonical_sex,
    clean_age,
)

_RECORD_NAME = re.compile(r"^(HR|JS|A|Q|E|I|S)(\d+)$")
_SOURCE_BY_PREFIX = {
    "A": "CPSC2018",
    "Q": "CPSC-Extra",
    "I": "INCART",
    "S": "PTB",
    "HR": "PTB-XL",
    "E": "Georgia",
}
_LAST_CHAPMAN_SHAOXING = 10646
_DETECT_DEPTH = 4
_DETECT_HEADERS = 20


@dataclass
class ChallengeHeader:
    """What a challenge ``.hea`` says: record layout, per-lead calibration, ``# Key: value`` comments."""

    record_name: str
    fs: float
    n_samples: int
    signal_file: str
    leads: tuple[str, ...]
    gain: np.ndarray  # (leads,) digital units per physical unit
    baseline: np.ndarray  # (leads,) digital value of 0 physical units
    to_mv: np.ndarray  # (leads,) physical unit -> mV factor
    comments: dict[str, str] = field(default_factory=dict)

    @property
    def codes(self) -> tuple[str, ...]:
        """The ``# Dx`` SNOMED CT codes, unique, in header order (empty and repeated entries dropped)."""
        parts = (p.strip() for p in self.comments.get("dx", "").split(","))
        return tuple(dict.fromkeys(p for p in parts if p))


def parse_header(path: str | Path) -> ChallengeHeader:
    """Parse a challenge ``.hea`` file (with the WFDB header parser of ``wfdb_io``); RecordError naming the file
    and the line on any problem, and when the signals are not in exactly one ``.mat``."""
    header = parse_wfdb_header(path)
    names = sorted({f.path.name for f in header.files})
    if len(names) != 1:
        raise RecordError(header.path, f"signals are spread over several files {names}; expected one .mat")
    return ChallengeHeader(
        record_name=header.record_name,
        fs=header.fs,
        n_samples=header.n_samples,
        signal_file=names[0],
        leads=header.leads,
        gain=header.gain,
        baseline=header.baseline,
        to_mv=header.to_mv,
        comments=header.comment_fields(),
    )


def source_database(record_name: str) -> str:
    """The challenge's source database from a record name ('E07500' -> 'Georgia'); 'unknown' otherwise."""
    match = _RECORD_NAME.match(record_name)
    if match is None:
        return "unknown"
    prefix, number = match.groups()
    if prefix == "JS":
        return "Chapman-Shaoxing" if int(number) <= _LAST_CHAPMAN_SHAOXING else "Ningbo"
    return _SOURCE_BY_PREFIX[prefix]


def load_val(path: Path) -> np.ndarray:
    """The ``val`` array of a challenge ``.mat`` file, (leads, samples) as stored."""
    try:
        mat = scipy.io.loadmat(path, variable_names=["val"])
    except Exception as exc:  # noqa: BLE001 - damaged files raise many types; re-raised naming the file
        raise RecordError(path, f"cannot read MATLAB file: {exc}") from exc
    if "val" not in mat:
        raise RecordError(path, "no variable 'val' (expected the int16 (leads, samples) signal array)")
    val = mat["val"]
    if val.ndim != 2 or not np.issubdtype(val.dtype, np.number):
        raise RecordError(
            path, f"'val' must be a 2-D numeric (leads, samples) array, got {val.dtype} {val.shape}"
        )
    return val


def to_millivolts(val: np.ndarray, header: ChallengeHeader) -> np.ndarray:
    """Digital ``val`` (leads, samples) -> float32 mV with the header's gain, baseline and units
    (``wfdb_io.digital_to_mv``, as the WFDB readers convert)."""
    return digital_to_mv(val, header.baseline, header.gain, header.to_mv)


@register_reader("challenge")
class ChallengeReader(Reader):
    """Every ``.hea`` + ``.mat`` record under ``root`` (any depth), in record-name order."""

    citation = (
        "Reyna MA et al., Will Two Do? Varying Dimensions in Electrocardiography: the PhysioNet/Computing "
        "in Cardiology Challenge 2021, CinC 2021; Perez Alday EA et al., Classification of 12-lead ECGs: "
        "the PhysioNet/Computing in Cardiology Challenge 2020, Physiol. Meas. 41:124003, 2020"
    )
    licence = "CC BY 4.0"
    url = "https://physionet.org/content/challenge-2021/1.0.3/"

    def __init__(self, root: str | Path):
        super().__init__(root)
        headers = [p for p in self.root.rglob("*.hea") if not p.name.startswith(".")]
        if not headers:
            raise FileNotFoundError(
                f"{self.root}: no .hea headers found (the challenge layout is .hea + .mat pairs)"
            )
        self._headers = sorted(headers, key=lambda p: (p.stem, str(p)))
        self._scheme = snomed_scheme()

    @classmethod
    def detect(cls, root: Path) -> bool:
        for n, header in enumerate(_walk_headers(Path(root), _DETECT_DEPTH)):
            if header.with_suffix(".mat").is_file():
                return True
            if n + 1 >= _DETECT_HEADERS:
                return False
        return False

    def __len__(self) -> int:
        return len(self._headers)

    def record_id(self, index: int) -> str:
        return self._headers[index].stem

    def header_path(self, index: int) -> Path:
        return self._headers[index]

    def label_scheme(self) -> SnomedScheme:
        return self._scheme

    def read(self, index: int) -> ECGRecord:
        hea = self._headers[index]
        header = parse_header(hea)
        mat = hea.parent / header.signal_file
        if not mat.is_file():
            raise RecordError(mat, f"signal file is missing (named by {hea.name})")
        val = load_val(mat)
        if val.shape != (len(header.leads), header.n_samples):
            raise RecordError(
                mat,
                f"'val' has shape {val.shape} but {hea.name} declares "
                f"{len(header.leads)} leads x {header.n_samples} samples (leads, samples)",
            )
        record = ECGRecord(
            signal=to_millivolts(val, header),
            fs=header.fs,
            leads=header.leads,
            record_id=hea.stem,
            dataset=self.name,
            age=clean_age(header.comments.get("age")),
            sex=canonical_sex(header.comments.get("sex")),
            codes=header.codes,
            code_system=self._scheme.code_system,
            source=str(hea),
            extra=_extra(hea.stem, header),
        )
        return record.validate()

    def metadata(self) -> pd.DataFrame:
        """One row per record from the headers alone (no ``.mat`` is opened); a header that does not parse
        gives a row of missing values, and ``scan`` reports why."""
        rows = []
        for hea in self._headers:
            row: dict[str, object] = {
                "record_id": hea.stem,
                "patient_id": None,
                "report": "",
                "fold": None,
                "source": str(hea),
            }
            try:
                header = parse_header(hea)
            except RecordError:
                header = None
            if header is None:
                row.update(
                    age=None,
                    sex=None,
                    codes=[],
                    fs=None,
                    n_samples=None,
                    leads=[],
                    source_db=source_database(hea.stem),
                )
                row.update({f"labels_{name}": [] for name in self._scheme.set_names()})
                row["unknown_codes"] = []
            else:
                codes = list(header.codes)
                row.update(
                    age=clean_age(header.comments.get("age")),
                    sex=canonical_sex(header.comments.get("sex")),
                    codes=codes,
                    fs=header.fs,
                    n_samples=header.n_samples,
                    leads=list(header.leads),
                    source_db=source_database(hea.stem),
                )
                row.update(
                    {f"labels_{name}": labels for name, labels in self._scheme.label_sets(codes).items()}
                )
                row["unknown_codes"] = self._scheme.unknown(codes)
            rows.append(row)
        return metadata_frame(rows)

    def scan(self) -> ScanResult:
        """Header-level check of every record: the header parses, its ``.mat`` exists, the lead names are
        canonical and unique. Signals are not decoded."""
        rates: set[float] = set()
        seen: set[str] = set()
        skipped: list[Skipped] = []
        for hea in self._headers:
            try:
                header = parse_header(hea)
                mat = hea.parent / header.signal_file
                if not mat.is_file():
                    raise RecordError(mat, f"signal file is missing (named by {hea.name})")
            except RecordError as exc:
                skipped.append(Skipped(hea.stem, exc.source, exc.problem))
                continue
            rates.add(header.fs)
            seen.update(header.leads)
        leads = [lead for lead in LEADS_12 if lead in seen]
        return ScanResult(len(self._headers) - len(skipped), sorted(rates), leads, skipped)


def _extra(record_name: str, header: ChallengeHeader) -> dict[str, str]:
    extra = {"source_db": source_database(record_name)}
    for key in ("rx", "hx", "sx"):
        if key in header.comments:
            extra[key] = header.comments[key]
    return extra


def _walk_headers(root: Path, max_depth: int) -> Iterator[Path]:
    """``.hea`` files under ``root`` down to ``max_depth`` folder levels, depth-first, so that detection stops
    after the first few headers even in a tree of hundreds of thousands of records."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return
    subdirs = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            subdirs.append(Path(entry.path))
        elif entry.name.endswith(".hea") and not entry.name.startswith("."):
            yield Path(entry.path)
    if max_depth > 0:
        for sub in subdirs:
            yield from _walk_headers(sub, max_depth - 1)
