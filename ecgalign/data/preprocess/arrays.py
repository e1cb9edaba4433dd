"""Value and layout operations on ECG arrays: NaN/Inf repair, per-lead normalisation, lead order, length.

Every function returns a new array and leaves its input untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ecgalign.data.errors import InputError
from ecgalign.data.leads import DERIVED_LIMB_LEADS, derive_limb_leads
from ecgalign.data.preprocess._checks import as_float_signal, choice, positive_int, positive_number, row_name
from ecgalign.data.record import canonical_lead_name

NORMALIZE_METHODS: tuple[str, ...] = ("zscore", "minmax", "robust", "none")
MISSING_LEAD_POLICIES: tuple[str, ...] = ("error", "zero", "derive")
CROP_MODES: tuple[str, ...] = ("start", "center", "random")


def repair_nonfinite(signal: np.ndarray) -> tuple[np.ndarray, int]:
    """Replace NaN/Inf samples of ``signal`` (..., T) by linear interpolation between the nearest finite
    samples of the same lead: an isolated gap becomes the average of its two neighbours; samples before the
    first (after the last) finite one take its value. Returns (repaired copy, number of repaired samples).

    A lead with no finite sample cannot be repaired: ValueError naming its index.
    """
    x = as_float_signal(signal, finite=False)
    out = x.copy()
    bad = ~np.isfinite(out)
    n_bad = int(np.count_nonzero(bad))
    if n_bad == 0:
        return out, 0
    n_t = out.shape[-1]
    rows, bad_rows = out.reshape(-1, n_t), bad.reshape(-1, n_t)  # views of out and bad: (rows, T)
    dead = np.flatnonzero(bad_rows.all(axis=1))
    if dead.size:
        names = ", ".join(row_name(int(r), out.shape[:-1]) for r in dead)
        raise InputError(f"cannot repair NaN/Inf: {names} has no finite sample")
    t = np.arange(n_t)
    for r in np.flatnonzero(bad_rows.any(axis=1)):
        ok = ~bad_rows[r]
        rows[r, ~ok] = np.interp(t[~ok], t[ok], rows[r, ok].astype(np.float64))
    return out, n_bad


def normalize(signal: np.ndarray, method: str = "zscore", eps: float = 1e-6) -> np.ndarray:
    """Per-lead normalisation of ``signal`` (..., T), statistics over the last axis of each lead.

    ``"zscore"``: (x - mean) / std; ``"minmax"``: (x - min) / (max - min), into [0, 1];
    ``"robust"``: (x - median) / IQR (75th minus 25th percentile), or / std for a lead whose IQR is below
    ``eps`` (flat but for a few deflections), saturating at the dtype's largest value; ``"none"``: a copy.
    Scales below ``eps`` are raised to ``eps``, so a flat lead becomes zeros, never NaN/Inf.
    Statistics are computed in float64.
    """
    method = choice(method, "method", NORMALIZE_METHODS)
    eps = positive_number(eps, "eps")
    x = as_float_signal(signal)  # (..., T)
    if method == "none":
        return x.copy()
    x64 = x.astype(np.float64)
    if method == "zscore":
        center = x64.mean(axis=-1, keepdims=True)
        scale = x64.std(axis=-1, keepdims=True)
    elif method == "minmax":
        center = x64.min(axis=-1, keepdims=True)
        scale = x64.max(axis=-1, keepdims=True) - center
    else:
        q25, center, q75 = np.percentile(x64, [25, 50, 75], axis=-1, keepdims=True)
        scale = q75 - q25
        scale = np.where(scale > eps, scale, x64.std(axis=-1, keepdims=True))
    out = (x64 - center) / np.maximum(scale, eps)
    if method == "robust":  # outliers far beyond a small IQR can pass the float32 range
        limit = np.finfo(x.dtype).max
        out = np.clip(out, -limit, limit)
    return out.astype(x.dtype)


def reorder_leads(
    signal: np.ndarray,
    leads_in: Sequence[str],
    leads_out: Sequence[str],
    missing: str = "error",
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Select and reorder the leads of ``signal`` (..., leads_in, T) by name into (..., leads_out, T).

    Lead names are canonicalised ('AVR' -> 'aVR'). A lead of ``leads_out`` absent from ``leads_in``:
    ``"error"`` raises ValueError naming it; ``"zero"`` fills zeros; ``"derive"`` computes III, aVR, aVL
    and aVF from I and II (Einthoven, Goldberger; ``ecgalign.data.leads``) and raises when the lead is not
    one of those or I / II is absent. Returns (new array, names of the filled leads in ``leads_out`` order).
    NaN samples are carried through (derived leads are NaN where I or II is).
    """
    missing = choice(missing, "missing", MISSING_LEAD_POLICIES)
    x = as_float_signal(signal, finite=False, min_ndim=2)
    names_in, names_out = _lead_names(leads_in, "leads_in"), _lead_names(leads_out, "leads_out")
    if x.shape[-2] != len(names_in):
        raise InputError(f"signal has {x.shape[-2]} leads but leads_in names {len(names_in)}: {list(names_in)}")
    index = {name: i for i, name in enumerate(names_in)}
    absent = [name for name in names_out if name not in index]
    if absent and missing == "error":
        raise InputError(
            f"lead(s) {', '.join(absent)} not in the signal (it has {', '.join(names_in)}); "
            "missing='zero' or 'derive' (Preprocess.missing_leads) fills them"
        )
    if absent and missing == "derive":
        underivable = [name for name in absent if name not in DERIVED_LIMB_LEADS]
        if underivable:
            raise InputError(
                f"cannot derive lead(s) {', '.join(underivable)}: only {', '.join(DERIVED_LIMB_LEADS)} "
                "follow from I and II"
            )
        if "I" not in index or "II" not in index:
            raise InputError(f"cannot derive lead(s) {', '.join(absent)}: leads I and II are both needed")
    out = np.zeros(x.shape[:-2] + (len(names_out), x.shape[-1]), dtype=x.dtype)  # (..., leads_out, T)
    derived = {}
    if absent and missing == "derive":
        derived = dict(zip(DERIVED_LIMB_LEADS, derive_limb_leads(x[..., index["I"], :], x[..., index["II"], :])))
    for k, name in enumerate(names_out):
        if name in index:
            out[..., k, :] = x[..., index[name], :]
        elif name in derived:
            out[..., k, :] = derived[name]
    return out, tuple(absent)


def _lead_names(leads: Sequence[str], what: str) -> tuple[str, ...]:
    if isinstance(leads, str):
        raise InputError(f"{what} must be a sequence of lead names, got the string {leads!r}")  # noqa: TRY004
    names = tuple(canonical_lead_name(name) for name in leads)
    if not names:
        raise InputError(f"{what} is empty")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InputError(f"{what} names lead(s) {', '.join(duplicates)} more than once")
    return names


@dataclass(frozen=True)
class CropInfo:
    """What ``crop_or_pad`` did: output[pad_before : n - pad_after] == input[offset : offset + kept]."""

    original_samples: int  # T of the input
    offset: int  # first input sample kept (0 when nothing was cropped)
    kept: int  # input samples kept: min(T, n_samples)
    pad_before: int  # samples of pad_value before the signal
    pad_after: int  # samples of pad_value after the signal

    @property
    def signal_region(self) -> slice:
        """The output samples that hold signal rather than padding."""
        return slice(self.pad_before, self.pad_before + self.kept)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def crop_or_pad(
    signal: np.ndarray,
    n_samples: int,
    mode: str = "start",
    rng: np.random.Generator | int | None = None,
    pad_value: float = 0.0,
) -> tuple[np.ndarray, CropInfo]:
    """Crop or pad ``signal`` (..., T) to exactly ``n_samples`` along the last axis (all leads alike).

    Longer signals: ``"start"`` keeps the first ``n_samples``, ``"center"`` the middle ones (offset
    (T - n) // 2), ``"random"`` a window at a uniform random offset drawn from ``rng`` (a Generator, a seed,
    or None for fresh entropy). Shorter signals are padded with ``pad_value``: at the end for ``"start"``
    and ``"random"``; on both sides for ``"center"`` ((n - T) // 2 before, the rest after).
    """
    mode = choice(mode, "mode", CROP_MODES)
    n_samples = positive_int(n_samples, "n_samples")
    x = as_float_signal(signal, finite=False)  # (..., T)
    pad_value = float(pad_value)
    n_t = x.shape[-1]
    if n_t >= n_samples:
        offset = 0
        if mode == "center":
            offset = (n_t - n_samples) // 2
        elif mode == "random":
            offset = int(np.random.default_rng(rng).integers(0, n_t - n_samples + 1))
        return x[..., offset : offset + n_samples].copy(), CropInfo(n_t, offset, n_samples, 0, 0)
    short = n_samples - n_t
    before = short // 2 if mode == "center" else 0
    out = np.full(x.shape[:-1] + (n_samples,), pad_value, dtype=x.dtype)  # (..., n_samples)
    out[..., before : before + n_t] = x
    return out, CropInfo(n_t, 0, n_t, before, short - before)
