"""Tasks: one module per method family; a task owns model + losses + the batch contract (DESIGN.md
convention 6) and ``forward(batch, step)`` returns named losses, so the training loop knows no modality."""

from ecgalign.tasks.ecg_scan import ECGScanTask
from ecgalign.tasks.ecg_text import ECGTextTask

__all__ = ["ECGScanTask", "ECGTextTask"]
