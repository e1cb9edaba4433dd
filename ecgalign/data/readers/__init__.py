"""Readers of the real on-disk dataset layouts; importing this package (or any module in it) registers them all
in ``READERS``."""

from ecgalign.data.readers import challenge, code15, cpsc2018, mimic_ecg, npz_signals, ptbxl  # noqa: F401  (registration)
from ecgalign.data.readers.base import (
    READERS,
    Reader,
    ScanResult,
    Skipped,
    detect_format,
    get_reader,
    list_readers,
    open_dataset,
    register_reader,
)

__all__ = [
    "READERS",
    "Reader",
    "ScanResult",
    "Skipped",
    "detect_format",
    "get_reader",
    "list_readers",
    "open_dataset",
    "register_reader",
]
