"""Signal recovered from printouts (issue 5, image evaluation): per-lead SNR of what a model reads back from
each record's printout against the record's signal, and the soft-lead consistency of that read-back (SNR of
the Einthoven / Goldberger limb leads derived from its I and II against its own III, aVR, aVL, aVF).

Two kinds of model recover a signal (``Embedder.recover_signals``):

- an ECG-Scan image model (``reconstruct``): its decoder predicts all 12 leads over the full 10 s, in units of
  the record-wide standard deviation (the training target); the reference is the signal in the same units;
- the digitiser path (``ecgalign.hub.DigitizedSignalModel``): the digitiser reads only the samples the layout shows (2.5 s
  of most leads for 3x4+II), in mV; only those samples are scored.

SNR here is the plain 10 log10(sum ref^2 / sum (ref - est)^2) per lead and record, with no time or voltage
alignment (stricter than the PhysioNet 2024 score; ``benchmarks/bench_digitize.py`` reports that one). A
lead whose reference is flat is left out. Records are summarised by mean and median over records.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ecgalign.data.errors import NotApplicableError
from ecgalign.data.leads import DERIVED_LIMB_LEADS, derive_limb_leads, snr_db
from ecgalign.data.record import LEADS_12


def _snr(ref: np.ndarray, est: np.ndarray) -> np.ndarray:
    """(B, L, T) -> (B, L) dB over the finite samples of ``est`` (NaN where nothing or a flat lead is scored)."""
    keep = np.isfinite(est) & np.isfinite(ref)
    r, e = np.where(keep, ref, 0.0), np.where(keep, est, 0.0)  # samples not scored add to neither power
    out = snr_db(r, e)
    power = np.sum(r.astype(np.float64) ** 2, axis=-1)
    out[(keep.sum(-1) == 0) | (power <= 1e-12)] = np.nan
    return np.minimum(out, 120.0)  # an exact copy is capped, not infinite


def _summary(per_record: np.ndarray, names: tuple[str, ...]) -> dict[str, Any]:
    def stats(v: np.ndarray) -> dict[str, Any]:
        v = v[np.isfinite(v)]
        return {"mean_db": float(v.mean()) if v.size else None, "median_db": float(np.median(v)) if v.size else None,
                "records": int(v.size)}

    with warnings.catch_warnings():  # a record with no scored lead has no mean: NaN, left out
        warnings.simplefilter("ignore", RuntimeWarning)
        overall = np.nanmean(per_record, axis=1) if per_record.size else np.zeros(0)
    return {"overall": stats(overall),
            "per_lead": {name: stats(per_record[:, k]) for k, name in enumerate(names)}}


def _consistency(signal: np.ndarray, leads: tuple[str, ...]) -> np.ndarray:
    """(B, 4) dB: derived III, aVR, aVL, aVF against the signal's own."""
    i, ii = signal[:, leads.index("I")], signal[:, leads.index("II")]
    derived = np.stack(derive_limb_leads(i, ii), axis=1)
    own = np.stack([signal[:, leads.index(name)] for name in DERIVED_LIMB_LEADS], axis=1)
    return _snr(own, derived)


def reconstruction_quality(model, signals: np.ndarray, batch_size: int = 32) -> dict[str, Any]:
    """Per-lead SNR of the recovered signal and the limb-lead consistency of the recovery (and, for scale,
    of the reference itself)."""
    if len(model.input_spec.leads) != 12 or tuple(model.input_spec.leads) != LEADS_12:
        raise ValueError(f"reconstruction quality needs the 12 standard leads in order, got {model.input_spec.leads}")
    if not model.can_reconstruct:
        raise NotApplicableError("the model recovers no signal from printouts")
    est, ref = model.recover_signals(signals, batch_size)
    if est.shape != ref.shape:
        raise ValueError(f"recovered signal {est.shape} does not match the reference {ref.shape}")
    filled = np.where(np.isfinite(est), est, 0.0)  # consistency over what was recovered (full 10 s: decoder)
    full = bool(np.isfinite(est).all())
    return {
        "records": int(len(signals)),
        "scored": "all 12 leads over the full record" if full else "the samples the printout shows",
        "snr_db": _summary(_snr(ref, est), LEADS_12),
        "lead_consistency_db": _summary(_consistency(filled, LEADS_12), DERIVED_LIMB_LEADS) if full else
        {"skipped": "the recovered leads cover different time windows; the limb-lead laws need simultaneous samples"},
        "reference_lead_consistency_db": _summary(_consistency(ref, LEADS_12), DERIVED_LIMB_LEADS),
    }
