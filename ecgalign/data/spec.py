"""The one input contract: what an ECG encoder reads (rate, length, lead order, filter, normalisation).

``InputFields`` holds the five fields and their defaults once; ``InputSpec`` (stored with every model's weights,
timm's ``resolve_data_config``) and the recipes' ``data`` section (``ecgalign.recipes.schema.DataConfig``) both
derive from it, and ``InputSpec.preprocess()`` builds the one preprocessing pipeline that training, embedding
and evaluation share. ``check_store_matches`` says whether a store already holds this input.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ecgalign.data.errors import InputError
from ecgalign.data.preprocess import Preprocess
from ecgalign.data.record import LEADS_12


@dataclass
class InputFields:
    """The encoder input. Defaults: the ``baselines`` preset (../shared/BASELINES.md): 100 Hz, 10 s, 12 leads,
    0.5-40 Hz zero-phase band-pass, z-score per lead per record."""

    fs: float = 100.0
    seconds: float = 10.0
    leads: list[str] = field(default_factory=lambda: list(LEADS_12))
    normalize: str = "zscore"
    bandpass: list[float] | None = field(default_factory=lambda: [0.5, 40.0])


@dataclass
class InputSpec(InputFields):
    """An encoder's input, validated, with ``leads`` and ``bandpass`` as tuples. Treat it as immutable
    (``dataclasses.replace`` makes a changed copy)."""

    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.fs <= 0 or self.seconds <= 0:
            raise InputError(f"InputSpec: fs and seconds must be positive, got fs={self.fs}, seconds={self.seconds}")
        self.leads = tuple(self.leads)
        if self.bandpass is not None:
            self.bandpass = tuple(self.bandpass)

    def __hash__(self) -> int:
        return hash((self.fs, self.seconds, self.leads, self.normalize, self.bandpass))

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
            raise InputError(f"InputSpec: unknown field(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
        return cls(**data)

    @classmethod
    def of(cls, source: InputFields) -> InputSpec:
        """The spec of anything carrying the input fields (a recipe's ``data`` section)."""
        return cls(**{f.name: getattr(source, f.name) for f in fields(InputFields)})

    def preprocess(self) -> Preprocess:
        """The record-level pipeline that turns a raw record into this encoder's input."""
        return Preprocess(fs=self.fs, seconds=self.seconds, leads=self.leads, bandpass=self.bandpass,
                          normalize=self.normalize)


def store_input_mismatch(store, spec: InputSpec) -> dict[str, tuple[Any, Any]]:
    """{field: (store's, spec's)} for every field where the store's signals differ from ``spec``'s input."""
    pre = store.preprocess or {}
    have = {
        "fs": float(store.fs), "samples": int(store.samples), "leads": tuple(store.leads),
        "normalize": pre.get("normalize", "none"),
        "bandpass": tuple(pre["bandpass"]) if pre.get("bandpass") else None,
    }
    want = {"fs": float(spec.fs), "samples": spec.samples, "leads": tuple(spec.leads), "normalize": spec.normalize,
            "bandpass": tuple(spec.bandpass) if spec.bandpass else None}
    return {k: (have[k], want[k]) for k in want if have[k] != want[k]}


def check_store_matches(store, spec: InputSpec) -> None:
    """Raise unless the store already holds the encoder's input (rate, length, leads, filter, normalisation)."""
    diff = store_input_mismatch(store, spec)
    if diff:
        detail = "; ".join(f"{k}: store {a!r}, encoder {b!r}" for k, (a, b) in diff.items())
        raise InputError(
            f"{store.path}: the store does not hold this encoder's input ({detail}). Convert the data to it, e.g. "
            f"`ecgalign data convert SRC OUT --preset baselines` or `ecgalign data synth ... --preset baselines`, "
            "or change data.* in the recipe"
        )
