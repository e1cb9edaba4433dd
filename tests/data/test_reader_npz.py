"""The signal-only npz layout (ptbxl-unlabeled)."""

from __future__ import annotations

import numpy as np
import pytest

from ecgalign.data.readers import detect_format, open_dataset
from ecgalign.data.record import LEADS_12, RecordError


def test_npz_signals_fixture(tmp_path):
    x = np.random.default_rng(0).standard_normal((5, 12, 1000)).astype(np.float16)
    x[3, 4] = np.nan  # a dead lead
    x[2, 1, 10] = np.nan  # one repairable sample
    np.savez(tmp_path / "signals.npz", X=x, ecg_id=np.array([7, 9, 11, 13, 15]))
    assert detect_format(tmp_path) == "npz-signals"
    reader = open_dataset(tmp_path)
    rec = reader.read(1)
    assert (rec.record_id, rec.fs, rec.leads, rec.signal.shape, rec.signal.dtype) == ("9", 100.0, LEADS_12, (12, 1000), np.float32)
    np.testing.assert_array_equal(rec.signal, x[1].astype(np.float32))
    with pytest.raises(RecordError, match=r"signals.npz\[3\].*aVL"):
        reader.read(3)
    scan = reader.scan()
    assert scan.records == 4 and [s.record_id for s in scan.skipped] == ["13"]
    assert list(reader.metadata().record_id) == ["7", "9", "11", "13", "15"]
    np.savez(tmp_path / "signals.npz", X=x[:, :8])
    with pytest.raises(ValueError, match="expected \\(records, 12 leads"):
        open_dataset(tmp_path)


@pytest.mark.realdata
def test_real_ptbxl_unlabeled(shared_data):
    reader = open_dataset(shared_data / "ptbxl-unlabeled")
    assert reader.name == "npz-signals" and len(reader) == 1569
    rec = reader.read(0)
    assert rec.signal.shape == (12, 1000) and abs(float(rec.signal.std(axis=1).mean()) - 1.0) < 0.01  # z-scored
