"""ECG data: the record model, readers of the real on-disk layouts, preprocessing, lead physics, labels,
the sharded on-disk store and torch datasets."""

from ecgalign.data.record import LEADS_12, ECGRecord, RecordError, canonical_lead_name

__all__ = ["LEADS_12", "ECGRecord", "RecordError", "canonical_lead_name"]
