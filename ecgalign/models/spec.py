"""The input an ECG encoder expects, stored with its weights so data and evaluation code configure
themselves from the model (DESIGN.md convention 4, timm's ``resolve_data_config``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ecgalign.data.record import LEADS_12


@dataclass(frozen=True)
class InputSpec:
    """Sampling rate, length, lead order and the preprocessing the encoder was trained on.

    The default is the ``baselines`` preset (../shared/BASELINES.md): 100 Hz, 10 s, 12 leads, 0.5-40 Hz
    zero-phase band-pass, z-score per lead per record.
    """

    fs: float = 100.0
    seconds: float = 10.0
    leads: tuple[str, ...] = LEADS_12
    normalize: str = "zscore"
    bandpass: tuple[float, float] | None = (0.5, 40.0)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.fs <= 0 or self.seconds <= 0:
            raise ValueError(f"InputSpec: fs and seconds must be positive, got fs={self.fs}, seconds={self.seconds}")
        object.__setattr__(self, "leads", tuple(self.leads))
        if self.bandpass is not None:
            object.__setattr__(self, "bandpass", tuple(self.bandpass))

    @property
    def samples(self) -> int:
        return int(round(self.fs * self.seconds))

    @property
    def num_leads(self) -> int:
        return len(self.leads)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["leads"] = list(self.leads)
        out["bandpass"] = None if self.bandpass is None else list(self.bandpass)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputSpec:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"InputSpec: unknown field(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
        return cls(**data)

    def preprocess(self):  # -> ecgalign.data.preprocess.Preprocess
        """The record-level pipeline that turns a raw record into this encoder's input."""
        from ecgalign.data.preprocess import Preprocess

        return Preprocess(fs=self.fs, seconds=self.seconds, leads=self.leads, bandpass=self.bandpass,
                          normalize=self.normalize)
