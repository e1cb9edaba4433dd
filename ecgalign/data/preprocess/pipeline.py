"""``Preprocess``: the record-level pipeline, a typed, serialisable config whose dict is saved with every
converted store so anyone can tell what was done to the signals."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

from ecgalign.data.errors import InputError
from ecgalign.data.preprocess._checks import choice
from ecgalign.data.preprocess.arrays import (
    CROP_MODES,
    MISSING_LEAD_POLICIES,
    NORMALIZE_METHODS,
    crop_or_pad,
    normalize,
    reorder_leads,
    repair_nonfinite,
)
from ecgalign.data.preprocess.filters import BASELINE_METHODS, bandpass, notch, remove_baseline, resample
from ecgalign.data.record import LEADS_12, ECGRecord, RecordError, canonical_lead_name

_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "raw": ("500 Hz, 10 s, 12 leads, NaN/Inf repaired; no filter, no normalisation (units stay mV)",
            {"fs": 500.0, "seconds": 10.0}),
    "baselines": (("the ../shared/BASELINES.md protocol: Butterworth order-3 0.5-40 Hz zero-phase band-pass "
                   "at the native rate, 100 Hz, 10 s, z-score per lead per record"),
                  {"fs": 100.0, "seconds": 10.0, "bandpass": (0.5, 40.0), "normalize": "zscore"}),
}


@dataclass(frozen=True)
class Preprocess:
    """Record preprocessing, applied by ``__call__`` in this order:

    1. repair (``repair_nan``): leads with no finite sample are dropped (then treated as missing by step 2),
       other NaN/Inf samples are interpolated from their finite neighbours (``repair_nonfinite``);
    2. lead order: select ``leads``; absent ones per ``missing_leads`` (``reorder_leads``);
    3. filters at the record's native rate: ``baseline`` removal, powerline ``notch``, ``bandpass``
       (``high`` at or above the native Nyquist drops the high edge);
    4. resample to ``fs`` (None keeps the native rate);
    5. crop or pad to ``seconds`` (``crop`` picks the window; short records get zeros at the end, on both
       sides for "center");
    6. ``normalize`` per lead, statistics over the recorded samples only, so padding stays 0.

    The output record has float32 signals and ``extra["preprocess"]``: repaired_samples, filled_leads,
    dropped_leads (no finite sample), original_fs, original_samples, crop (offset, kept, pad_before,
    pad_after, in output-rate samples).
    """

    fs: float | None = None
    seconds: float | None = None
    crop: str = "start"
    leads: tuple[str, ...] = LEADS_12
    missing_leads: str = "error"
    bandpass: tuple[float | None, float | None] | None = None
    notch: float | None = None
    baseline: str | None = None
    normalize: str = "none"
    repair_nan: bool = True

    def __post_init__(self) -> None:
        put = lambda name, value: object.__setattr__(self, name, value)  # the dataclass is frozen
        put("fs", _optional_positive(self.fs, "fs"))
        put("seconds", _optional_positive(self.seconds, "seconds"))
        choice(self.crop, "Preprocess.crop", CROP_MODES)
        put("leads", _lead_tuple(self.leads))
        choice(self.missing_leads, "Preprocess.missing_leads", MISSING_LEAD_POLICIES)
        put("bandpass", _band(self.bandpass))
        put("notch", _optional_positive(self.notch, "notch"))
        choice(self.baseline, "Preprocess.baseline", (*BASELINE_METHODS, None))
        choice(self.normalize, "Preprocess.normalize", NORMALIZE_METHODS)
        if not isinstance(self.repair_nan, (bool, np.bool_)):
            raise InputError(f"Preprocess.repair_nan must be True or False, got {self.repair_nan!r}")  # noqa: TRY004
        put("repair_nan", bool(self.repair_nan))

    # ------------------------------------------------------------------------------------ presets, dicts
    @classmethod
    def presets(cls) -> dict[str, str]:
        """Preset name -> what it does."""
        return {name: doc for name, (doc, _) in _PRESETS.items()}

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> Preprocess:
        """A named preset (see ``presets()``), with any field overridden: ``preset("baselines", fs=250)``."""
        choice(name, "preset", tuple(_PRESETS))
        return cls(**{**_PRESETS[name][1], **overrides})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible values (tuples as lists); ``from_dict`` turns it back into an equal object."""
        out = dataclasses.asdict(self)
        out["leads"] = list(self.leads)
        out["bandpass"] = None if self.bandpass is None else list(self.bandpass)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocess:
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise InputError(f"Preprocess: unknown field(s) {', '.join(unknown)}; valid fields: {', '.join(names)}")
        return cls(**data)

    # ------------------------------------------------------------------------------------ applying
    def __call__(self, record: ECGRecord, rng: np.random.Generator | int | None = None) -> ECGRecord:
        """A new record preprocessed as described in the class docstring; ``record`` is not modified.

        Any step that refuses the record raises RecordError naming its source and the problem.
        """
        where = record.source or record.record_id
        try:
            return self._apply(record, rng)
        except RecordError:
            raise
        except ValueError as exc:
            raise RecordError(where, str(exc)) from exc

    def _apply(self, record: ECGRecord, rng: np.random.Generator | int | None) -> ECGRecord:
        x = np.asarray(record.signal)  # (leads, T)
        leads = tuple(canonical_lead_name(name) for name in record.leads)
        if x.ndim != 2 or x.shape[0] != len(leads):
            raise InputError(f"signal of shape {x.shape} does not match its {len(leads)} lead names")
        fs_in = float(record.fs)
        n_native = x.shape[-1]
        repaired, dropped = 0, ()
        if self.repair_nan:
            x, leads, dropped = self._drop_dead_leads(x, leads)
            x, repaired = repair_nonfinite(x)
        x, filled = reorder_leads(x, leads, self.leads, self.missing_leads)  # (len(self.leads), T)
        if self.baseline is not None:
            x = remove_baseline(x, fs_in, method=self.baseline)
        if self.notch is not None:
            x = notch(x, fs_in, freq=self.notch)
        if self.bandpass is not None:
            low, high = self.bandpass
            x = bandpass(x, fs_in, low=low or 0.0, high=high)
        fs_out = fs_in if self.fs is None else self.fs
        if fs_out != fs_in:
            x = resample(x, fs_in, fs_out)
        crop_info = None
        if self.seconds is not None:
            x, info = crop_or_pad(x, round(self.seconds * fs_out), mode=self.crop, rng=rng)
            crop_info = info.as_dict()
            region = info.signal_region
        else:
            region = slice(None)
        if self.normalize != "none":
            x[:, region] = normalize(x[:, region], self.normalize)
        log = {
            "repaired_samples": repaired,
            "filled_leads": list(filled),
            "dropped_leads": list(dropped),
            "original_fs": fs_in,
            "original_samples": n_native,
            "crop": crop_info,
        }
        return record.replace(
            signal=np.ascontiguousarray(x, dtype=np.float32),
            fs=fs_out,
            leads=self.leads,
            extra={**record.extra, "preprocess": log},
        )

    def _drop_dead_leads(
        self, x: np.ndarray, leads: tuple[str, ...]
    ) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...]]:
        """Remove leads without a finite sample; with missing_leads='error' a wanted one is an error."""
        alive = np.isfinite(x).any(axis=-1)
        if alive.all():
            return x, leads, ()
        dead = tuple(name for name, ok in zip(leads, alive) if not ok)
        wanted = [name for name in dead if name in self.leads]
        if wanted and self.missing_leads == "error":
            raise InputError(f"lead(s) {', '.join(wanted)} contain no finite sample")
        return x[alive], tuple(name for name, ok in zip(leads, alive) if ok), dead


def _optional_positive(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
        raise InputError(f"Preprocess.{name} must be a positive number or None, got {value!r}")
    return float(value)


def _lead_tuple(leads: Any) -> tuple[str, ...]:
    if isinstance(leads, str) or not hasattr(leads, "__iter__"):
        raise InputError(f"Preprocess.leads must be a sequence of lead names, got {leads!r}")
    try:
        names = tuple(canonical_lead_name(name) for name in leads)
    except ValueError as exc:
        raise InputError(f"Preprocess.leads: {exc}") from None
    if not names or len(set(names)) != len(names):
        raise InputError(f"Preprocess.leads must name each lead once, got {list(leads)}")
    return names


def _band(band: Any) -> tuple[float | None, float | None] | None:
    if band is None:
        return None
    if isinstance(band, str) or not hasattr(band, "__len__") or len(band) != 2:
        raise InputError(f"Preprocess.bandpass must be (low, high) in Hz or None, got {band!r}")
    low, high = (_optional_positive(edge, "bandpass") if edge not in (None, 0) else None for edge in band)
    if low is None and high is None:
        raise InputError(f"Preprocess.bandpass {band!r} filters nothing; use None")
    if low is not None and high is not None and low >= high:
        raise InputError(f"Preprocess.bandpass needs low < high, got {band!r}")
    return (low, high)
