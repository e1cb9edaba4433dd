from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ecgalign.data.leads import complete_limb_leads, derive_limb_leads, lead_snr, snr_db, summarize_lead_snr
from ecgalign.data.record import LEADS_12

finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, (2, 50), elements=finite))
def test_goldberger_and_einthoven_identities(x):
    i, ii = x
    iii, avr, avl, avf = derive_limb_leads(i, ii)
    np.testing.assert_allclose(iii, ii - i, atol=1e-12)
    np.testing.assert_allclose(avr + avl + avf, 0.0, atol=1e-9)  # augmented leads sum to zero
    np.testing.assert_allclose(avf - avl, 1.5 * iii, atol=1e-9)
    np.testing.assert_allclose(avr, -(i + ii) / 2, atol=1e-12)


def test_derivation_matches_electrode_potentials():
    # Leads from electrode potentials (RA, LA, LL): the textbook definitions the formulas come from.
    rng = np.random.default_rng(0)
    ra, la, ll = rng.standard_normal((3, 100))
    i, ii = la - ra, ll - ra
    iii, avr, avl, avf = derive_limb_leads(i, ii)
    np.testing.assert_allclose(iii, ll - la)
    np.testing.assert_allclose(avr, ra - (la + ll) / 2)
    np.testing.assert_allclose(avl, la - (ra + ll) / 2)
    np.testing.assert_allclose(avf, ll - (ra + la) / 2)


def test_torch_tensors_work():
    i, ii = torch.randn(2, 3, 10)
    iii, *_ = derive_limb_leads(i, ii)
    assert torch.allclose(iii, ii - i)


def test_complete_limb_leads_and_snr_of_a_consistent_record_is_infinite():
    rng = np.random.default_rng(1)
    sig = rng.standard_normal((12, 500)).astype(np.float32)
    fixed = complete_limb_leads(sig)
    assert not np.shares_memory(fixed, sig)
    snr = lead_snr(fixed, LEADS_12)
    assert all(v > 100 for v in snr.values())


def test_snr_value_against_hand_computation():
    t = np.arange(1000) / 500
    ref = np.sin(2 * np.pi * 5 * t)  # power 0.5
    est = ref + 0.05  # noise power 0.0025 -> SNR = 10 log10(200) = 23.01 dB
    assert snr_db(ref, est) == pytest.approx(10 * np.log10(0.5 / 0.0025), abs=0.02)


def test_lead_snr_requires_limb_leads_and_summary_caps_infinities():
    with pytest.raises(ValueError, match="missing"):
        lead_snr(np.zeros((2, 10)), ["I", "II"])
    per = [{"III": 40.0, "aVR": np.inf, "aVL": 50.0, "aVF": np.nan}, {"III": 60.0, "aVR": 30.0, "aVL": 50.0, "aVF": 20.0}]
    s = summarize_lead_snr(per, cap_db=100.0)
    assert s["III"]["mean_db"] == 50.0
    assert s["aVR"] == {"mean_db": 65.0, "median_db": 65.0, "records": 2, "capped": 1}
    assert s["aVF"]["records"] == 1
