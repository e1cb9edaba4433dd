"""Write frames as a valid DICOM: Ultrasound Multi-frame Image Storage (RGB native or JPEG baseline YBR_FULL_422)
or a single-frame Ultrasound Image Storage still. Files are written atomically (temporary name, then rename)."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

US_MULTIFRAME_SOP = "1.2.840.10008.5.1.4.1.1.3.1"  # Ultrasound Multi-frame Image Storage
US_IMAGE_SOP = "1.2.840.10008.5.1.4.1.1.6.1"  # Ultrasound Image Storage (single-frame stills)
COMPRESSIONS = ("none", "jpeg")
UID_ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's UID root, with deterministic entropy per object


def require_pydicom() -> Any:
    """The pydicom module, or an ImportError naming the ``echo`` extra."""
    try:  # optional dependency (the `echo` extra), imported on first use
        import pydicom
        import pydicom.encaps
    except ImportError as exc:
        raise ImportError("writing echo DICOMs needs pydicom: pip install 'ecgalign[echo]'") from exc
    return pydicom


@dataclass(frozen=True)
class DicomIds:
    """Identifiers written into one file."""

    patient_id: str
    study_uid: str
    series_uid: str
    sop_uid: str
    study_date: str  # YYYYMMDD
    study_time: str  # HHMMSS


def uid(*parts: object) -> str:
    """A deterministic DICOM UID from ``parts`` (pydicom.uid.generate_uid with entropy sources)."""
    return str(require_pydicom().uid.generate_uid(prefix=UID_ROOT, entropy_srcs=[str(p) for p in parts]))


def _jpeg_frames(frames: np.ndarray, quality: int) -> list[bytes]:
    out = []
    for frame in frames:  # (rows, cols, 3) RGB -> JPEG baseline, 4:2:2 chroma, as MIMIC-IV-ECHO stores it
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, "JPEG", quality=quality, subsampling=1)
        out.append(buf.getvalue())
    return out


def write_dicom(path: str | Path, frames: np.ndarray, fps: float, ids: DicomIds, *, compression: str = "none",
                quality: int = 95, multiframe: bool = True) -> None:
    """Write ``frames`` (frames, rows, cols, 3) uint8 RGB to ``path``."""
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (frames, rows, cols, 3), got {frames.dtype} {frames.shape}")
    pydicom = require_pydicom()
    sop_class = US_MULTIFRAME_SOP if multiframe else US_IMAGE_SOP
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = ids.sop_uid
    meta.TransferSyntaxUID = pydicom.uid.JPEGBaseline8Bit if compression == "jpeg" else pydicom.uid.ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID_ROOT + "1"
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, ids.sop_uid
    ds.Modality, ds.Manufacturer = "US", "ecgalign synthetic"
    ds.PatientID, ds.PatientName = ids.patient_id, f"SYNTH^{ids.patient_id}"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = ids.study_uid, ids.series_uid
    ds.StudyDate, ds.StudyTime = ids.study_date, ids.study_time
    ds.AcquisitionDateTime = ids.study_date + ids.study_time
    ds.Rows, ds.Columns = int(frames.shape[1]), int(frames.shape[2])
    ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if multiframe:
        ds.NumberOfFrames = int(frames.shape[0])
        ds.FrameTime = f"{1000.0 / fps:.4f}"
        ds.CineRate = int(round(fps))
        ds.RecommendedDisplayFrameRate = int(round(fps))
        ds.FrameIncrementPointer = pydicom.tag.Tag("FrameTime")
    else:
        frames = frames[:1]
    if compression == "jpeg":
        ds.PhotometricInterpretation = "YBR_FULL_422"
        ds.PixelData = pydicom.encaps.encapsulate(_jpeg_frames(frames, quality))
        ds["PixelData"].VR = "OB"
        ds.LossyImageCompression = "01"
    else:
        ds.PhotometricInterpretation = "RGB"
        ds.PixelData = np.ascontiguousarray(frames).tobytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    ds.save_as(tmp, enforce_file_format=True)
    os.replace(tmp, path)
