"""Reading echo DICOMs with pydicom: header checks first, frames decoded one at a time.

EEE (seed 003, Sec. 3.1) keeps only ``SOPClassUID`` = Ultrasound Multi-frame Image Storage and drops clips of more
than 120 frames (their ECG strip no longer stays constant). ``probe`` applies both rules and every other check
that a file must pass before its pixels are touched; each failure is an ``Exclusion`` with a named reason, so a
batch job counts it instead of crashing. ``EchoDicom.frames`` decodes lazily (``pydicom.pixels.iter_pixels``):
RGB, YBR_FULL / YBR_FULL_422 (converted to RGB) and JPEG baseline (through pylibjpeg, the ``echo`` extra).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ecgalign.data.errors import InputError

US_MULTIFRAME_SOP = "1.2.840.10008.5.1.4.1.1.3.1"  # Ultrasound Multi-frame Image Storage
MAX_FRAMES = 120  # EEE Sec. 3.1: longer clips (about 2 % of MIMIC-IV-ECHO) are excluded
COLOUR_PHOTOMETRICS = ("RGB", "YBR_FULL", "YBR_FULL_422")

# Reasons a file is excluded before extraction (``EchoDicom`` is never built for them).
NOT_DICOM = "not_dicom"
NOT_US_MULTIFRAME = "not_ultrasound_multiframe"
TOO_MANY_FRAMES = "too_many_frames"
ZERO_FRAMES = "zero_frames"
NO_FRAME_RATE = "no_frame_rate"
UNSUPPORTED_PIXELS = "unsupported_pixel_format"
TRUNCATED_PIXELS = "truncated_pixel_data"
DECODE_ERROR = "pixel_decode_error"
MALFORMED = "malformed_header"
EXCLUSION_REASONS = (NOT_DICOM, NOT_US_MULTIFRAME, TOO_MANY_FRAMES, ZERO_FRAMES, NO_FRAME_RATE,
                     UNSUPPORTED_PIXELS, TRUNCATED_PIXELS, DECODE_ERROR, MALFORMED)


def require_pydicom() -> Any:
    """The pydicom module, or an ImportError naming the ``echo`` extra."""
    try:  # optional dependency (the `echo` extra), imported on first use
        import pydicom
        import pydicom.encaps
        import pydicom.pixels
    except ImportError as exc:
        raise ImportError("reading echo DICOMs needs pydicom: pip install 'ecgalign[echo]'") from exc
    return pydicom


@dataclass(frozen=True)
class Exclusion:
    """A file left out, with a reason from ``EXCLUSION_REASONS`` and a human-readable detail."""

    path: str
    reason: str
    detail: str


@dataclass(frozen=True)
class EchoHeader:
    """What the header says about one echo DICOM."""

    path: str
    n_frames: int
    rows: int
    cols: int
    fps: float
    photometric: str
    transfer_syntax: str
    patient_id: str
    study_uid: str
    series_uid: str
    sop_uid: str
    size_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def frame_rate(ds: Any) -> float | None:
    """Frames per second from CineRate, FrameTime (ms) or RecommendedDisplayFrameRate, in that order."""
    for keyword, convert in (("CineRate", float), ("FrameTime", lambda ms: 1000.0 / float(ms)),
                             ("RecommendedDisplayFrameRate", float)):
        value = ds.get(keyword)
        if value in (None, ""):
            continue
        try:
            fps = convert(value)
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        if np.isfinite(fps) and fps > 0:
            return fps
    return None


def _pixel_bytes_expected(ds: Any, n_frames: int) -> int:
    return int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1)) * n_frames * int(ds.BitsAllocated) // 8


def _truncated(path: Path, ds: Any, n_frames: int) -> str | None:
    """Why the pixel data cannot be whole (declared or expected length beyond the end of the file), or None."""
    elem = ds.get_item("PixelData", keep_deferred=True)
    if elem is None:
        return "no PixelData element"
    size = path.stat().st_size
    tell = getattr(elem, "value_tell", None)
    length = getattr(elem, "length", None)
    if tell is None or length is None:
        return None
    if length != 0xFFFFFFFF:  # native: the declared length must fit in the file and hold every frame
        if tell + length > size:
            return f"PixelData declares {length} bytes but the file ends {size - tell} bytes after its start"
        if ds.file_meta.TransferSyntaxUID.is_compressed is False and length < _pixel_bytes_expected(ds, n_frames):
            return f"PixelData holds {length} bytes, {n_frames} frames need {_pixel_bytes_expected(ds, n_frames)}"
    return None


def probe(path: str | Path, max_frames: int = MAX_FRAMES) -> EchoHeader | Exclusion:
    """Read only the header of ``path`` and decide whether it is an echo clip EEE can use."""
    pydicom = require_pydicom()
    path = Path(path)
    try:
        ds = pydicom.dcmread(path, defer_size="1 KB")
    except (pydicom.errors.InvalidDicomError, EOFError, OSError, ValueError, KeyError) as exc:
        return Exclusion(str(path), NOT_DICOM, f"{type(exc).__name__}: {exc}")
    try:
        return _check_header(path, ds, max_frames)
    except (AttributeError, TypeError, ValueError, KeyError) as exc:  # a required element missing or unparsable
        return Exclusion(str(path), MALFORMED, f"{type(exc).__name__}: {exc}")


def _check_header(path: Path, ds: Any, max_frames: int) -> EchoHeader | Exclusion:
    sop = str(ds.get("SOPClassUID", ""))
    if sop != US_MULTIFRAME_SOP:
        return Exclusion(str(path), NOT_US_MULTIFRAME, f"SOPClassUID {sop or 'missing'}, expected {US_MULTIFRAME_SOP}")
    try:
        n_frames = int(ds.get("NumberOfFrames", 0) or 0)
    except (TypeError, ValueError):
        return Exclusion(str(path), ZERO_FRAMES, f"NumberOfFrames {ds.get('NumberOfFrames')!r} is not an integer")
    if n_frames <= 0:
        return Exclusion(str(path), ZERO_FRAMES, f"NumberOfFrames is {n_frames}")
    if n_frames > max_frames:
        return Exclusion(str(path), TOO_MANY_FRAMES, f"{n_frames} frames > {max_frames}")
    fps = frame_rate(ds)
    if fps is None:
        return Exclusion(str(path), NO_FRAME_RATE, "none of CineRate, FrameTime, RecommendedDisplayFrameRate is usable")
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric not in COLOUR_PHOTOMETRICS or int(ds.get("BitsAllocated", 0)) != 8:
        return Exclusion(str(path), UNSUPPORTED_PIXELS,
                         f"PhotometricInterpretation {photometric or 'missing'} / BitsAllocated "
                         f"{ds.get('BitsAllocated')}, expected 8-bit {' or '.join(COLOUR_PHOTOMETRICS)} (the ECG "
                         "strip is found by colour)")
    why = _truncated(path, ds, n_frames)
    if why is not None:
        return Exclusion(str(path), TRUNCATED_PIXELS, why)
    return EchoHeader(
        path=str(path), n_frames=n_frames, rows=int(ds.Rows), cols=int(ds.Columns), fps=float(fps),
        photometric=photometric, transfer_syntax=str(ds.file_meta.TransferSyntaxUID),
        patient_id=str(ds.get("PatientID", "")), study_uid=str(ds.get("StudyInstanceUID", "")),
        series_uid=str(ds.get("SeriesInstanceUID", "")), sop_uid=str(ds.get("SOPInstanceUID", "")),
        size_bytes=os.path.getsize(path),
    )


class PixelDecodeError(InputError):
    """A file whose header passed ``probe`` but whose frames do not decode; ``reason`` is the exclusion reason."""

    def __init__(self, path: str, reason: str, detail: str):
        super().__init__(f"{path}: {reason}: {detail}")
        self.reason, self.detail = reason, detail


class EchoDicom:
    """One accepted echo clip: its header and a lazy frame iterator (RGB uint8, (rows, cols, 3) each)."""

    def __init__(self, header: EchoHeader):
        self.header = header

    @classmethod
    def open(cls, path: str | Path, max_frames: int = MAX_FRAMES) -> EchoDicom:
        """Probe ``path``; raise ``InputError`` naming the exclusion reason when it is not a usable clip."""
        got = probe(path, max_frames)
        if isinstance(got, Exclusion):
            raise PixelDecodeError(got.path, got.reason, got.detail)
        return cls(got)

    def frames(self, indices: list[int] | None = None) -> Iterator[np.ndarray]:
        """Decode frames one at a time (never the whole clip at once); YBR data comes back as RGB."""
        iter_pixels = require_pydicom().pixels.iter_pixels
        path = self.header.path
        try:
            for frame in iter_pixels(path, indices=indices, as_rgb=True):
                if frame.ndim != 3 or frame.shape[-1] != 3:  # (rows, cols, 3)
                    raise PixelDecodeError(path, UNSUPPORTED_PIXELS, f"decoded frame has shape {frame.shape}")
                yield frame
        except PixelDecodeError:
            raise
        except (ValueError, RuntimeError, EOFError, OSError, NotImplementedError, KeyError) as exc:
            reason = TRUNCATED_PIXELS if isinstance(exc, EOFError) or "truncat" in str(exc).lower() else DECODE_ERROR
            raise PixelDecodeError(path, reason, f"{type(exc).__name__}: {exc}") from exc

    def first_frame(self) -> np.ndarray:
        return next(self.frames([0]))
