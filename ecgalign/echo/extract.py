"""One DICOM -> (echo clip, ECG strip signal): EEE's three extraction steps (seed 003, Sec. 3.1, Fig. 2).

1. the bottom ``roi_fraction`` (30 %) of each frame is the ECG region, the rest the echo region;
2. echo: every frame cropped, converted to grey, resized to 224 x 224; ECG: the first frame only, HSV-binarised
   and clipped to the trace's start and end (ecgalign.echo.strip);
3. the four quality checks; then the column-wise trace becomes a 1-D signal on a time axis (the trace spans the
   clip, ``n_frames / fps`` seconds, unless a sweep speed in pixels per second is given) resampled to ``strip_fs``.
A file that fails comes back as a ``Rejected`` with a named reason; nothing here raises on bad input.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from ecgalign.echo.dicom import MAX_FRAMES, EchoDicom, EchoHeader, Exclusion, PixelDecodeError, probe
from ecgalign.echo.strip import StripConfig, extract_strip, strip_signal


@dataclass
class ExtractConfig:
    """Extraction settings; defaults are the paper's values where it gives them (224 px, grey, 120 frames)."""

    strip: StripConfig = field(default_factory=StripConfig)
    echo_size: int = 224
    grayscale: bool = True
    strip_fs: float = 250.0
    max_frames: int = MAX_FRAMES
    sweep_px_per_s: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.strip, dict):
            self.strip = StripConfig(**self.strip)
        if self.echo_size < 8 or self.strip_fs <= 0 or self.max_frames < 1:
            raise ValueError(f"ExtractConfig: echo_size >= 8, strip_fs > 0 and max_frames >= 1 expected, got "
                             f"{self.echo_size}, {self.strip_fs}, {self.max_frames}")
        if self.sweep_px_per_s is not None and self.sweep_px_per_s <= 0:
            raise ValueError(f"ExtractConfig.sweep_px_per_s must be positive, got {self.sweep_px_per_s}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Extracted:
    """A kept clip: ``clip`` (frames, size, size) uint8 grey (or (frames, size, size, 3) RGB), ``strip`` (T,)."""

    header: EchoHeader
    clip: np.ndarray
    strip: np.ndarray
    strip_duration_s: float
    metrics: dict[str, float]


@dataclass
class Rejected:
    """A file left out; ``stage`` is ``header`` (DICOM rules), ``pixels`` (decoding) or ``quality`` (strip)."""

    path: str
    reason: str
    detail: str
    stage: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def echo_frame(frame: np.ndarray, config: ExtractConfig) -> np.ndarray:
    """Crop the echo region of a frame (rows, cols, 3), convert to grey (ITU-R BT.601 luma) and resize:
    -> (size, size) uint8, or (size, size, 3) when ``grayscale`` is off."""
    top = int(round(frame.shape[0] * (1.0 - config.strip.roi_fraction)))
    img = Image.fromarray(np.ascontiguousarray(frame[:top]))
    if config.grayscale:
        img = img.convert("L")
    return np.asarray(img.resize((config.echo_size, config.echo_size), Image.BILINEAR))


def extract_file(path: str, config: ExtractConfig | None = None) -> Extracted | Rejected:
    """Run the three steps on one DICOM; the strip is checked before the remaining frames are decoded."""
    config = config or ExtractConfig()
    got = probe(path, config.max_frames)
    if isinstance(got, Exclusion):
        return Rejected(got.path, got.reason, got.detail, "header")
    dcm = EchoDicom(got)
    try:
        frames = dcm.frames()
        first = next(frames)
        strip = extract_strip(first, config.strip)
        if strip.reason is not None:
            return Rejected(str(path), strip.reason, strip.detail, "quality")
        shape = (got.n_frames, config.echo_size, config.echo_size) + (() if config.grayscale else (3,))
        clip = np.empty(shape, dtype=np.uint8)
        clip[0] = echo_frame(first, config)
        k = 0
        for k, frame in enumerate(frames, start=1):
            clip[k] = echo_frame(frame, config)
        if k != got.n_frames - 1:
            return Rejected(str(path), "truncated_pixel_data", f"decoded {k + 1} of {got.n_frames} frames", "pixels")
    except PixelDecodeError as exc:
        return Rejected(str(path), exc.reason, exc.detail, "pixels")
    n_cols = strip.end - strip.start + 1
    duration = n_cols / config.sweep_px_per_s if config.sweep_px_per_s else got.n_frames / got.fps
    signal = strip_signal(strip.y, duration, config.strip_fs)
    return Extracted(got, clip, signal, duration, strip.metrics)
