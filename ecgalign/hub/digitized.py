"""The "digitiser + signal encoder" baseline (ECG-Scan section 5.2, "DIP + D-BETA"): a signal model that sees
each ECG only through its printout. Every record is rendered (``ecgalign.render``, clean or augmented), the
classic digitiser reads the image back (``ecgalign.render.digitize``), and the signal model encodes what it
read. Every evaluation protocol runs on it unchanged, as on an image model.

What a printout does not show is filled flat: a lead's samples outside its panel's window (7.5 of 10 s for
the 3x4 panels of the default layout) take the median of the samples that were read (its baseline). A
printout the digitiser cannot read becomes a flat (all-zero) record; such failures are counted and reported,
never dropped, so the rows of the evaluation stay aligned.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import numpy as np
import torch

from ecgalign.data.errors import InputError
from ecgalign.data.record import LEADS_12, ECGRecord
from ecgalign.render import RenderConfig, Renderer
from ecgalign.render.digitize import digitize
from ecgalign.render.layout import check_layout


class DigitizedSignalModel:
    """``features`` / ``encode_ecg`` take millivolt signals (B, 12, T) in ``input_spec`` (the inner model's rate,
    length and leads, no filtering or normalisation) -> render -> digitise -> the inner model's own
    preprocessing -> the inner model. ``encode_text`` is the inner model's."""

    input_kind = "digitized"
    can_reconstruct = True

    def __init__(self, model, augment: str = "none", layout: str = "3x4+II", dpi: float = 200.0,
                 cache: dict[str, Any] | None = None):
        if model.input_kind != "signal":
            raise InputError("the digitiser baseline wraps a signal model; this checkpoint reads images already")
        check_layout(layout)
        if augment not in ("none", "light", "heavy"):
            raise InputError(f"augment must be none, light or heavy, got {augment!r}")
        self.inner, self.layout, self.dpi, self.eval_augment = model, layout, float(dpi), augment
        spec = model.input_spec
        self.input_spec = dataclasses.replace(spec, normalize="none", bandpass=None)
        self._preprocess = spec.preprocess()
        self.card = {**model.card, "name": f"digitiser + {model.name}",
                     "via_digitizer": {"layout": layout, "dpi": self.dpi, "augment": augment}}
        self.weights_path = model.weights_path
        # digitised inputs by signal digest: the random-init twin reads the very same printouts
        self._cache: dict[str, Any] = {} if cache is None else cache
        self._cache.setdefault("_stats", {"images": 0, "failures": 0, "failure_examples": [], "shown": []})
        self._rendered = 0

    @property
    def name(self) -> str:
        return self.card["name"]

    @property
    def embed_dim(self) -> int:
        return self.inner.embed_dim

    @property
    def has_joint_space(self) -> bool:
        return self.inner.has_joint_space

    def summary(self) -> dict[str, Any]:
        """Images digitised, failures (with examples) and the mean fraction of samples the printouts showed."""
        stats = self._cache["_stats"]
        shown = stats["shown"]
        return {"layout": self.layout, "dpi": self.dpi, "augment": self.eval_augment, "images": stats["images"],
                "failures": stats["failures"], "failure_examples": stats["failure_examples"][:10],
                "mean_shown_fraction": float(np.mean(shown)) if shown else None}

    def read_back(self, signals) -> np.ndarray:
        """(B, 12, T) float32 mV in LEADS_12 order: what the digitiser reads from the printouts of ``signals``
        (B, leads, T) in ``input_spec``; NaN where a printout does not show a lead. Cached by signal."""
        x = np.asarray(signals, dtype=np.float32).reshape(-1, *np.shape(signals)[-2:])
        spec = self.input_spec
        if x.shape[1] != len(spec.leads):
            raise ValueError(f"expected (B, {len(spec.leads)}, T) signals in {spec.leads}, got {x.shape}")
        order = [spec.leads.index(lead) if lead in spec.leads else None for lead in LEADS_12]
        out = np.empty((len(x), 12, x.shape[2]), dtype=np.float32)
        stats = self._cache["_stats"]
        renderer = None
        for i, sig in enumerate(x):
            key = hashlib.sha1(sig.tobytes()).hexdigest()
            if key not in self._cache:
                if renderer is None:
                    renderer = Renderer(RenderConfig.letter(self.dpi, layout=self.layout))
                full = np.full((12, sig.shape[1]), np.nan, dtype=np.float32)  # the renderer draws LEADS_12
                for k, j in enumerate(order):
                    if j is not None:
                        full[k] = sig[j]
                image = renderer.render(torch.from_numpy(full)[None], spec.fs, augment=self.eval_augment,
                                        seed=[self._rendered]).images[0]
                self._rendered += 1
                stats["images"] += 1
                try:
                    read = digitize(image, self.layout, fs=spec.fs, seconds=sig.shape[1] / spec.fs).signal
                except ValueError as exc:  # DigitizeError: counted; the record reads as nothing (NaN)
                    stats["failures"] += 1
                    stats["failure_examples"].append(str(exc)[:200])
                    read = np.full((12, sig.shape[1]), np.nan, dtype=np.float32)
                stats["shown"].append(float(np.isfinite(read).mean()))
                self._cache[key] = read
            out[i] = self._cache[key]
        return out

    def digitize(self, signals) -> np.ndarray:
        """(B, leads, samples) float32: the inner model's input, as read back from the printouts (flat at a
        lead's median where the printout does not show it; all zero where nothing could be read)."""
        spec = self.input_spec
        reads = self.read_back(signals)
        out = np.empty((len(reads), len(spec.leads), spec.samples), dtype=np.float32)
        for i, read in enumerate(reads):
            leads = np.zeros((len(spec.leads), read.shape[1]), dtype=np.float32)
            for k, lead in enumerate(LEADS_12):
                if lead in spec.leads:
                    row = read[k]
                    finite = np.isfinite(row)
                    fill = float(np.median(row[finite])) if finite.any() else 0.0
                    leads[spec.leads.index(lead)] = np.where(finite, row, fill)
            rec = ECGRecord(signal=leads, fs=spec.fs, leads=tuple(spec.leads), record_id="digitised",
                            dataset="digitised")
            out[i] = self._preprocess(rec).signal
        return out

    def features(self, signals, batch_size: int = 256) -> np.ndarray:
        return self.inner.features(self.digitize(signals), batch_size)

    def encode_ecg(self, signals, batch_size: int = 256) -> np.ndarray:
        return self.inner.encode_ecg(self.digitize(signals), batch_size)

    def encode_text(self, texts: list[str]) -> np.ndarray:
        return self.inner.encode_text(texts)

    def random_init(self, seed: int = 0) -> DigitizedSignalModel:
        """A random-init signal encoder of the same architecture behind the same printouts (shared cache)."""
        return DigitizedSignalModel(self.inner.random_init(seed), self.eval_augment, self.layout, self.dpi,
                                    cache=self._cache)

    def supervised_reference(self) -> tuple[str, dict[str, Any]] | None:
        return None  # the inputs are printouts: no supervised reference on clean signals

    def recover_signals(self, signals, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """What the digitiser reads (mV, NaN where the printout does not show a lead) and the signal itself."""
        signals = np.asarray(signals, dtype=np.float32)
        est = np.concatenate([self.read_back(signals[i:i + batch_size]) for i in range(0, len(signals), batch_size)])
        return est, signals

    def cache_identity(self) -> dict[str, Any]:
        return {"kind": self.input_kind, "via_digitizer": self.card["via_digitizer"]}

    def eval_extras(self) -> dict[str, Any]:
        return {"digitizer": self.summary()}
