"""Signal-only arrays in one ``signals.npz``: ``X`` (N, leads, samples) and optional ``ecg_id`` (N,).

This is the layout of ``../shared/data/ptbxl-unlabeled`` (1,569 PTB-XL records, CC BY 4.0, Wagner et al.
2020): float16, 100 Hz, 10 s, leads I, II, III, aVR, aVL, aVF, V1-V6, already band-passed 0.5-40 Hz and
z-scored per lead by its publisher, so values are unit-free, not mV. No labels, no reports: for masked
modelling (``ecgalign pretrain --unpaired``). The file does not say its rate or lead order: ``fs`` and
``leads`` default to that layout and can be given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ecgalign.data.errors import InputError
from ecgalign.data.labels import FixedScheme, LabelScheme
from ecgalign.data.readers.base import Reader, ScanResult, Skipped, metadata_frame, register_reader
from ecgalign.data.record import LEADS_12, ECGRecord, RecordError

SIGNALS_FILE = "signals.npz"


@register_reader("npz-signals")
class NPZSignalsReader(Reader):
    citation = ("Wagner P et al. PTB-XL, a large publicly available electrocardiography dataset. Sci Data 7:154, "
                "2020 (for ptbxl-unlabeled; other npz folders: their own source)")
    licence = "CC BY 4.0 (ptbxl-unlabeled)"
    url = "https://physionet.org/content/ptb-xl/1.0.3/"

    def __init__(self, root: str | Path, fs: float = 100.0, leads: tuple[str, ...] = LEADS_12):
        super().__init__(root)
        self.file = self.root / SIGNALS_FILE
        if not self.file.is_file():
            raise FileNotFoundError(f"{self.file}: missing (an npz-signals folder holds signals.npz with X)")
        try:
            archive = np.load(self.file, mmap_mode="r")
            self._x = archive["X"]
            self._ids = archive["ecg_id"] if "ecg_id" in archive.files else np.arange(len(self._x))
        except Exception as exc:  # noqa: BLE001 - numpy and zipfile raise many types for a damaged archive
            raise InputError(f"{self.file}: cannot read array X (and ecg_id): {exc!r}") from None
        if self._x.ndim != 3 or self._x.shape[1] != len(leads):
            raise InputError(f"{self.file}: X has shape {self._x.shape}; expected (records, {len(leads)} leads, samples)")
        if len(self._ids) != len(self._x):
            raise InputError(f"{self.file}: {len(self._ids)} ecg_id values for {len(self._x)} signals")
        self.fs, self.leads = float(fs), tuple(leads)

    @classmethod
    def detect(cls, root: Path) -> bool:
        return (Path(root) / SIGNALS_FILE).is_file()

    def __len__(self) -> int:
        return len(self._x)

    def record_id(self, index: int) -> str:
        return str(int(self._ids[index]))

    def read(self, index: int) -> ECGRecord:
        where = f"{self.file}[{index}]"
        if not 0 <= index < len(self):
            raise RecordError(where, f"index out of range for {len(self)} records")
        signal = np.asarray(self._x[index], dtype=np.float32)
        record = ECGRecord(signal, self.fs, self.leads, self.record_id(index), self.name, source=where)
        return record.validate()

    def metadata(self) -> pd.DataFrame:
        return metadata_frame([{"record_id": self.record_id(i), "patient_id": None, "age": None, "sex": None,
                                "report": "", "codes": [], "fold": None, "fs": self.fs} for i in range(len(self))])

    def label_scheme(self) -> LabelScheme:
        return FixedScheme("", {})

    def scan(self) -> ScanResult:
        """Records ``read`` would refuse: a lead with no finite sample (isolated NaNs are repairable)."""
        dead = ~np.isfinite(self._x).any(axis=2)  # (N, leads)
        skipped = [Skipped(self.record_id(i), f"{self.file}[{i}]", "a lead contains no finite sample")
                   for i in np.flatnonzero(dead.any(axis=1))]
        return ScanResult(len(self) - len(skipped), [self.fs], list(self.leads), skipped)
