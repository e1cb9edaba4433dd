"""Small heads that sit on top of encoders."""

from ecgalign.models.heads.alignment import AlignmentHead, shift_signals

__all__ = ["AlignmentHead", "shift_signals"]
