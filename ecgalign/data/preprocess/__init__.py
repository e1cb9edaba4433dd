"""Signal preprocessing: resampling, filters, NaN/Inf repair, normalisation, lead order, crop/pad, and the
``Preprocess`` pipeline that the converter applies to every record.

numpy functions work on (leads, T) float32 arrays (any (..., T) where only the last axis matters) and return
new arrays. The torch batch versions live in ``ecgalign.data.preprocess.batch`` (``normalize_torch``,
``crop_or_pad_torch``), so importing this package does not load torch.
"""

from __future__ import annotations

from ecgalign.data.preprocess.arrays import (
    CROP_MODES,
    MISSING_LEAD_POLICIES,
    NORMALIZE_METHODS,
    CropInfo,
    crop_or_pad,
    normalize,
    reorder_leads,
    repair_nonfinite,
)
from ecgalign.data.preprocess.filters import (
    BASELINE_METHODS,
    bandpass,
    highpass,
    notch,
    remove_baseline,
    resample,
)
from ecgalign.data.preprocess.pipeline import Preprocess

__all__ = [
    "BASELINE_METHODS",
    "CROP_MODES",
    "MISSING_LEAD_POLICIES",
    "NORMALIZE_METHODS",
    "CropInfo",
    "Preprocess",
    "bandpass",
    "crop_or_pad",
    "highpass",
    "normalize",
    "notch",
    "remove_baseline",
    "reorder_leads",
    "repair_nonfinite",
    "resample",
]

