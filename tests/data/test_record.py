from __future__ import annotations

import numpy as np
import pytest

from ecgalign.data.record import (
    LEADS_12,
    ECGRecord,
    RecordError,
    canonical_lead_name,
    canonical_sex,
    clean_age,
)


def rec(signal, leads=LEADS_12, **kw):
    return ECGRecord(signal=signal, fs=kw.pop("fs", 500.0), leads=leads, record_id="x1", dataset="t", source="/d/x1.hea", **kw)


@pytest.mark.parametrize("raw,name", [("AVR", "aVR"), ("avl", "aVL"), (" v1", "V1"), ("MLII", "II"), ("D3", "III"), ("I", "I")])
def test_canonical_lead_names(raw, name):
    assert canonical_lead_name(raw) == name


def test_unknown_lead_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown ECG lead name 'V7'"):
        canonical_lead_name("V7")


def test_demographics_cleaning():
    assert [canonical_sex(v) for v in (0, 1, "Male", "female", "F", None, "x", float("nan"))] == ["M", "F", "M", "F", "F", None, None, None]
    assert [clean_age(v) for v in (56, "61", 300, None, "NaN", -1)] == [56.0, 61.0, 90.0, None, None, None]


def test_validate_accepts_a_good_record():
    r = rec(np.zeros((12, 100), np.float32), sex="F").validate()
    assert r.seconds == 0.2 and r.n_samples == 100
    np.testing.assert_array_equal(r.lead("avr"), np.zeros(100))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"signal": np.zeros((11, 100), np.float32)}, "11 leads but 12 lead names"),
        ({"signal": np.zeros((12, 100), np.float64)}, "dtype must be float32"),
        ({"signal": np.zeros((12, 0), np.float32)}, "no samples"),
        ({"signal": np.zeros(100, np.float32)}, "2-D array"),
        ({"fs": 0.0}, "sampling rate"),
        ({"sex": "male"}, "sex must be"),
    ],
)
def test_validate_names_the_source_and_problem(kwargs, message):
    signal = kwargs.pop("signal", np.zeros((12, 100), np.float32))
    with pytest.raises(RecordError, match=message) as info:
        rec(signal, **kwargs).validate()
    assert info.value.source == "/d/x1.hea" and str(info.value).startswith("/d/x1.hea: ")


def test_all_nan_lead_is_named():
    s = np.zeros((12, 100), np.float32)
    s[4] = np.nan
    s[0, 3] = np.nan
    with pytest.raises(RecordError, match="lead\\(s\\) aVL contain no finite sample"):
        rec(s).validate()
    s[4] = 0
    rec(s).validate()
    with pytest.raises(RecordError, match="1 non-finite samples"):
        rec(s).validate(allow_nan=False)
