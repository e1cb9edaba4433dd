"""Lead physics: the limb leads that follow from I and II.

Einthoven (1895): III = II - I.
Goldberger (1942) augmented leads: aVR = -(I + II) / 2, aVL = I - II / 2, aVF = II - I / 2.

ECG-Scan (seeds/000_290557cf3ffea0eb.txt, section 4.3 and Table 1) uses these relations as soft constraints
and reports the SNR between derived and recorded limb leads on PTB-XL, CPSC2018 and CSN (40-90 dB).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ecgalign.data.errors import InputError
from ecgalign.data.record import LEADS_12

DERIVED_LIMB_LEADS: tuple[str, ...] = ("III", "aVR", "aVL", "aVF")


def derive_limb_leads(lead_i, lead_ii):
    """(III, aVR, aVL, aVF) from leads I and II; works on numpy arrays and torch tensors of any shape."""
    iii = lead_ii - lead_i
    avr = -(lead_i + lead_ii) / 2
    avl = lead_i - lead_ii / 2
    avf = lead_ii - lead_i / 2
    return iii, avr, avl, avf


def complete_limb_leads(signal: np.ndarray, leads: Sequence[str] = LEADS_12) -> np.ndarray:
    """Return a copy of ``signal`` (leads, T) whose III, aVR, aVL, aVF are recomputed from I and II."""
    leads = list(leads)
    out = np.array(signal, copy=True)
    i, ii = out[leads.index("I")], out[leads.index("II")]
    for name, derived in zip(DERIVED_LIMB_LEADS, derive_limb_leads(i, ii)):
        if name in leads:
            out[leads.index(name)] = derived
    return out


def snr_db(reference: np.ndarray, estimate: np.ndarray, axis: int = -1) -> np.ndarray:
    """SNR in dB of ``estimate`` against ``reference``: 10 log10(sum ref^2 / sum (ref - est)^2).

    An exact match gives +inf; callers that average should decide how to treat it (see lead_snr).
    """
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    signal_power = np.sum(reference**2, axis=axis)
    noise_power = np.sum((reference - estimate) ** 2, axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10.0 * np.log10(signal_power / noise_power)


def lead_snr(signal: np.ndarray, leads: Sequence[str] = LEADS_12) -> dict[str, float]:
    """SNR (dB) of each derived limb lead (III, aVR, aVL, aVF) against the recorded one, for one record."""
    leads = list(leads)
    missing = [name for name in ("I", "II", *DERIVED_LIMB_LEADS) if name not in leads]
    if missing:
        raise InputError(f"lead SNR needs leads I, II, III, aVR, aVL, aVF; missing {missing}")
    i, ii = signal[leads.index("I")], signal[leads.index("II")]
    derived = derive_limb_leads(i, ii)
    return {
        name: float(snr_db(signal[leads.index(name)], est)) for name, est in zip(DERIVED_LIMB_LEADS, derived)
    }


def summarize_lead_snr(per_record: Sequence[dict[str, float]], cap_db: float = 120.0) -> dict[str, dict[str, float]]:
    """Mean / median / count per lead over records. Exact matches (inf dB) are capped at ``cap_db``
    so that a record whose limb leads were stored already derived does not make the mean infinite;
    the number of capped records is reported beside the mean."""
    out: dict[str, dict[str, float]] = {}
    for name in DERIVED_LIMB_LEADS:
        # NaN (silent reference and estimate) and -inf (silent reference lead) carry no SNR: left out
        values = np.array([r[name] for r in per_record if r[name] == np.inf or np.isfinite(r[name])], dtype=float)
        capped = int(np.sum(values > cap_db))
        values = np.minimum(values, cap_db)
        out[name] = {
            "mean_db": float(values.mean()) if values.size else float("nan"),
            "median_db": float(np.median(values)) if values.size else float("nan"),
            "records": int(values.size),
            "capped": capped,
        }
    return out
