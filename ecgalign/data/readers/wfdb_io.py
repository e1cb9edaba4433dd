"""WFDB record I/O shared by the readers of WFDB datasets (PTB-XL, MIMIC-IV-ECG).

A WFDB record is a text header ``NAME.hea`` and one or more binary signal files (usually ``NAME.dat``). The
header's record line gives the number of signals, the sampling rate and the samples per signal; each signal
line gives the signal file, its storage format, the gain/baseline/units that turn digital values into physical
ones, and the lead name (WFDB header format, https://physionet.org/physiotools/wag/header-5.htm).

``parse_header`` reads a header with a small parser of that format: ``wfdb.rdheader`` takes ~5 ms per header
(it looks every field up in a pandas table), which makes a header-level scan of 800k MIMIC-IV-ECG records take
over an hour; this parser takes ~0.1 ms and the tests check it against ``wfdb.rdheader`` on real and written headers.
Signals of the common layout (all leads in one format-16 file, as PTB-XL and MIMIC-IV-ECG store them) are decoded
here with NumPy, exactly as wfdb computes them (the tests compare the two); every other layout is decoded by
``wfdb.rdrecord`` (physical units). Either way ``check_record`` first verifies that every signal
file exists and has exactly the size the header implies: wfdb reports a truncated file with errors that name no
file ("Samples were not loaded correctly") and reads an over-long one without complaint.
Goldberger et al., PhysioBank, PhysioToolkit, and PhysioNet, Circulation 101(23), 2000.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import wfdb

from ecgalign.data.readers.base import ScanResult, Skipped
from ecgalign.data.record import LEADS_12, RecordError, canonical_lead_name

# (samples, bytes) of one storage block per WFDB format; packed formats hold several samples per block.
_FORMAT_BLOCKS: dict[str, tuple[int, int]] = {
    "8": (1, 1), "16": (1, 2), "61": (1, 2), "80": (1, 1), "160": (1, 2),
    "212": (2, 3), "310": (3, 4), "311": (3, 4), "24": (1, 3), "32": (1, 4),
}
_FLAC_FORMATS = {"508", "516", "524"}  # compressed: the size cannot be predicted from the header
_UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}
_FMT_FIELD = re.compile(r"^(?P<fmt>\d+)(?:x(?P<spf>\d+))?(?::(?P<skew>\d+))?(?:\+(?P<offset>\d+))?$")
_GAIN_FIELD = re.compile(
    r"^(?P<gain>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?:\((?P<baseline>[-+]?\d+)\))?(?:/(?P<units>\S+))?$"
)
_MULTI_SEGMENT = re.compile(r"^[\w.-]+/\d+$")
_RECORD_NAME = re.compile(r"^[\w.-]+$")
_lead_name = lru_cache(maxsize=256)(canonical_lead_name)  # the same 12 names in every header
_FS_FIELD = re.compile(r"^(?P<fs>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?:/\S+)?$")


@dataclass(frozen=True)
class SignalFile:
    """One binary signal file of a record and what the header says about it."""

    path: Path
    fmt: str
    samples: int  # all samples of all signals stored in it
    byte_offset: int
    plain: bool = True  # one sample per signal per frame and no skew: frames are rows of the signals in order

    def size_range(self) -> tuple[int, int] | None:
        """(min, max) bytes the file may have; None for formats without a fixed sample size."""
        block = _FORMAT_BLOCKS.get(self.fmt)
        if block is None:
            return None
        per_block, nbytes = block
        lowest = math.ceil(self.samples * nbytes / per_block)
        highest = nbytes * math.ceil(self.samples / per_block)  # a packed last block may be padded
        return self.byte_offset + lowest, self.byte_offset + highest


@dataclass(frozen=True)
class WFDBHeader:
    """A parsed single-segment WFDB header."""

    path: Path
    record_name: str
    fs: float
    n_samples: int
    leads: tuple[str, ...]  # canonical names, in file order
    to_mv: np.ndarray  # (leads,) factor from the header's physical units to mV
    files: tuple[SignalFile, ...]
    comments: tuple[str, ...] = ()
    gain: np.ndarray | None = None  # (leads,) digital units per physical unit
    baseline: np.ndarray | None = None  # (leads,) digital value of 0 physical units

    def comment_fields(self) -> dict[str, str]:
        """``# Key: value`` comments as {lower-case key: value} (the challenge's Age, Sex, Dx, ...)."""
        fields = {}
        for comment in self.comments:
            key, sep, value = comment.partition(":")
            if sep:
                fields[key.strip().lower()] = value.strip()
        return fields


def parse_header(hea: str | Path) -> WFDBHeader:
    """Parse ``NAME.hea``; RecordError naming the file and the line on any problem."""
    hea = Path(hea)
    try:
        text = hea.read_text(encoding="latin-1")
    except FileNotFoundError:
        raise RecordError(hea, "header file is missing") from None
    except OSError as exc:
        raise RecordError(hea, f"cannot read header: {exc.strerror or exc}") from exc
    comments, lines = [], []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            comments.append(line.lstrip("#").strip())
        elif line:
            lines.append(line)
    if not lines:
        raise RecordError(hea, "header does not parse: no record line")
    record = lines[0].split()
    fs_match = _FS_FIELD.match(record[2]) if len(record) >= 4 else None
    if (
        fs_match is None or not record[1].isdecimal() or not record[3].isdecimal()
        or int(record[1]) < 1 or int(record[3]) < 1 or not float(fs_match["fs"]) > 0
    ):
        raise RecordError(
            hea,
            f"header does not parse: record line {lines[0]!r} must read 'NAME NSIG FS NSAMP' with positive numbers",
        )
    if _MULTI_SEGMENT.match(record[0]):  # a well-formed 'NAME/NSEG NSIG FS NSAMP' line, not just any '/'
        raise RecordError(hea, f"record line {lines[0]!r}: multi-segment records are not supported")
    if not _RECORD_NAME.match(record[0]):
        raise RecordError(hea, f"header does not parse: record name {record[0]!r} is not a WFDB record name "
                               "(letters, digits, '_', '-', '.')")
    n_sig, fs, n_samples = int(record[1]), float(fs_match["fs"]), int(record[3])
    if len(lines) - 1 != n_sig:
        raise RecordError(hea, f"header does not parse: it declares {n_sig} leads but has {len(lines) - 1} signal lines "
                               f"(its record line declares {n_sig} signals but has {len(lines) - 1})")
    leads, to_mv, gains, baselines, file_fields = [], [], [], [], {}
    for k, line in enumerate(lines[1:], start=1):
        lead, (factor, gain, baseline), (name, fmt, spf, offset, skewed) = _parse_signal_line(hea, k, line)
        leads.append(lead)
        to_mv.append(factor)
        gains.append(gain)
        baselines.append(baseline)
        if name in file_fields and file_fields[name][0] != fmt:
            raise RecordError(hea, f"header does not parse: signals of {name} use two formats ({file_fields[name][0]}, {fmt})")
        prev = file_fields.get(name, (fmt, 0, 0, True))
        file_fields[name] = (fmt, prev[1] + spf, max(prev[2], offset), prev[3] and spf == 1 and not skewed)
    if len(set(leads)) != len(leads):
        raise RecordError(hea, f"duplicate lead names {leads}")
    files = tuple(
        SignalFile(hea.parent / name, fmt, spf_total * n_samples, offset, plain)
        for name, (fmt, spf_total, offset, plain) in file_fields.items()
        if fmt != "0"  # format 0: a null signal with no file
    )
    return WFDBHeader(hea, record[0], fs, n_samples, tuple(leads), np.asarray(to_mv), files, tuple(comments),
                      np.asarray(gains, dtype=np.float64), np.asarray(baselines, dtype=np.float64))


def _parse_signal_line(
    hea: Path, k: int, line: str
) -> tuple[str, tuple[float, float, int], tuple[str, str, int, int, bool]]:
    """(canonical lead, (unit -> mV factor, gain, baseline), (file name, format, samples per frame, byte offset,
    skewed)). A baseline left out of the gain field is the ADC zero (WFDB header format)."""
    tokens = line.split()
    if len(tokens) < 9:
        raise RecordError(hea, f"header does not parse: signal line {k} {line!r} has {len(tokens)} fields; "
                               "expected 9 ending with the lead name")
    fmt_match = _FMT_FIELD.match(tokens[1])
    gain_match = _GAIN_FIELD.match(tokens[2])
    if fmt_match is None or gain_match is None:
        bad = tokens[1] if fmt_match is None else tokens[2]
        raise RecordError(hea, f"header does not parse: signal line {k}: field {bad!r} is not a WFDB format/gain field")
    fmt = fmt_match["fmt"]
    if fmt not in _FORMAT_BLOCKS and fmt not in _FLAC_FORMATS and fmt != "0":
        raise RecordError(hea, f"signal line {k}: unknown WFDB storage format {fmt!r}")
    if float(gain_match["gain"]) == 0:
        raise RecordError(hea, f"signal line {k}: ADC gain is 0 (an uncalibrated signal): its amplitude in mV is unknown")
    units = gain_match["units"] or "mV"  # WFDB: absent units are millivolts
    if units.lower() not in _UNIT_TO_MV:
        raise RecordError(hea, f"signal line {k}: units {units!r} are not a voltage (expected mV, uV or V)")
    try:
        lead = _lead_name(" ".join(tokens[8:]))
    except ValueError as exc:
        raise RecordError(hea, f"signal line {k}: {exc}") from None
    if gain_match["baseline"] is None and not re.fullmatch(r"[-+]?\d+", tokens[4]):
        raise RecordError(hea, f"signal line {k}: ADC zero {tokens[4]!r} is not an integer")
    baseline = int(gain_match["baseline"] if gain_match["baseline"] is not None else tokens[4])
    spf = int(fmt_match["spf"] or 1)
    offset = int(fmt_match["offset"] or 0)
    skewed = int(fmt_match["skew"] or 0) != 0
    return lead, (_UNIT_TO_MV[units.lower()], float(gain_match["gain"]), baseline), (tokens[0], fmt, spf, offset, skewed)


def check_signal_files(header: WFDBHeader) -> None:
    """Every signal file exists and its size is what the header implies; RecordError naming the file."""
    for sig in header.files:
        try:
            size = sig.path.stat().st_size
        except FileNotFoundError:
            raise RecordError(sig.path, f"signal file is missing (named by {header.path.name})") from None
        expected = sig.size_range()
        if expected is None or expected[0] <= size <= expected[1]:
            continue
        want = f"{expected[0]}" if expected[0] == expected[1] else f"{expected[0]}-{expected[1]}"
        what = "truncated" if size < expected[0] else "longer than its header declares"
        raise RecordError(
            sig.path,
            f"signal file is {what}: {size} bytes, but {header.path.name} declares {sig.samples} samples in format "
            f"{sig.fmt} = {want} bytes",
        )


def check_record(hea: str | Path, *, n_leads: int | None = 12, fs: float | None = None) -> WFDBHeader:
    """Header-level check of a record without decoding it: the header parses, it has ``n_leads`` leads (any
    number if None) at ``fs`` Hz (any rate if None), and its signal files are complete."""
    header = parse_header(hea)
    if n_leads is not None and len(header.leads) != n_leads:
        raise RecordError(header.path, f"record has {len(header.leads)} leads {list(header.leads)}; expected {n_leads}")
    if fs is not None and header.fs != fs:
        raise RecordError(header.path, f"record is sampled at {header.fs:g} Hz; expected {fs:g} Hz")
    check_signal_files(header)
    return header


FMT16_INVALID = -32768  # WFDB's invalid-sample value for format 16 (also in the challenge's int16 .mat files)


def digital_to_mv(digital: np.ndarray, baseline: np.ndarray, gain: np.ndarray, to_mv: np.ndarray) -> np.ndarray:
    """Digital samples (leads, T) -> float32 mV: the physical value as ``wfdb.rdrecord(physical=True)`` computes
    it, (digital - baseline) / gain in float64, then the header units' factor to mV; integer samples equal to
    FMT16_INVALID are NaN. ``baseline``, ``gain``, ``to_mv``: (leads,)."""
    physical = (digital.astype(np.float64) - baseline[:, None]) / gain[:, None]
    if np.issubdtype(digital.dtype, np.integer):
        physical[digital == FMT16_INVALID] = np.nan
    return (physical * to_mv[:, None]).astype(np.float32)


def _read_format16(header: WFDBHeader) -> np.ndarray | None:
    """(samples, leads) int16 digital samples of a record whose signals all sit in one plain format-16 file
    (little-endian int16 frames, one sample per signal, no skew: PTB-XL, MIMIC-IV-ECG); None for any other layout
    (left to wfdb). Reading the header again inside wfdb cost about 11 ms per record."""
    if len(header.files) != 1 or header.gain is None or header.baseline is None:
        return None
    f = header.files[0]
    if f.fmt != "16" or not f.plain or f.samples != header.n_samples * len(header.leads):
        return None
    digital = np.fromfile(f.path, dtype="<i2", count=f.samples, offset=f.byte_offset)
    if digital.size != f.samples:
        raise RecordError(f.path, f"signal file holds {digital.size} samples; the header declares {f.samples}")
    return digital.reshape(header.n_samples, len(header.leads))


def read_record(hea: str | Path, *, n_leads: int | None = 12, fs: float | None = None) -> tuple[np.ndarray, WFDBHeader]:
    """(signal float32 (leads, samples) in mV, header) of a checked record: one plain format-16 file is read and
    converted here (``_read_format16``, ``digital_to_mv``: the values wfdb computes), anything else is decoded by
    ``wfdb.rdrecord``. Samples WFDB marks invalid are NaN."""
    header = check_record(hea, n_leads=n_leads, fs=fs)
    digital = _read_format16(header)
    if digital is not None:
        return digital_to_mv(digital.T, header.baseline, header.gain, header.to_mv), header
    try:
        rec = wfdb.rdrecord(str(header.path.with_suffix("")), physical=True)
    except Exception as exc:  # noqa: BLE001 - wfdb raises many types for damaged records; re-raised naming the file
        raise RecordError(header.path, f"wfdb cannot read the record: {exc}") from exc
    physical = rec.p_signal  # (samples, leads) in the header's units
    expected = (header.n_samples, len(header.leads))
    if physical is None or physical.shape != expected:
        got = None if physical is None else physical.shape
        raise RecordError(header.path, f"wfdb returned signal shape {got}; the header declares (samples, leads) {expected}")
    signal = (physical.T * header.to_mv[:, None]).astype(np.float32)  # (leads, T) mV
    return signal, header


def scan_records(count: int, check: Callable[[int], WFDBHeader], record_id: Callable[[int], str]) -> ScanResult:
    """Run ``check`` (a header-level check that raises RecordError) on records 0..count-1 and tally the sampling
    rates and canonical leads of the good ones and the problems of the others. Keeps no header: 800k fit."""
    rates: set[float] = set()
    seen: set[str] = set()
    skipped: list[Skipped] = []
    for i in range(count):
        try:
            header = check(i)
        except RecordError as exc:
            skipped.append(Skipped(record_id(i), exc.source, exc.problem))
            continue
        rates.add(float(header.fs))
        seen.update(header.leads)
    return ScanResult(count - len(skipped), sorted(rates), [lead for lead in LEADS_12 if lead in seen], skipped)
