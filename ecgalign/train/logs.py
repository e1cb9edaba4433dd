"""Run logs: ``metrics.csv`` (one row per logged step; on resume, rows after the resumed step are dropped so
the file reads as one uninterrupted run) and TensorBoard event files when ``tensorboard`` is installed."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from ecgalign.hub.io import atomic_write_text


class RunLogger:
    def __init__(self, run_dir: Path, resume_step: int = 0, enabled: bool = True):
        self.enabled = enabled
        self.path = run_dir / "metrics.csv"
        self.columns: list[str] = []
        self.rows: list[dict[str, Any]] = []
        self.tb = None
        if not enabled:
            return
        if self.path.is_file():
            with self.path.open(newline="") as fh:
                reader = csv.DictReader(fh)
                self.columns = list(reader.fieldnames or [])
                self.rows = [r for r in reader if int(float(r["step"])) <= resume_step]
            self._rewrite()
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            return
        self.tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=resume_step + 1 if resume_step else None)

    def _rewrite(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, buffer.getvalue())

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        row = {"step": step, **metrics}
        new = [k for k in row if k not in self.columns]
        self.rows.append(row)
        if new:
            self.columns += new
            self._rewrite()
        else:
            with self.path.open("a", newline="") as fh:
                csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore").writerow(row)
        if self.tb is not None:
            for key, value in metrics.items():
                self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
