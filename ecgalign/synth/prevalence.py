"""Fit the generator's code prevalences to a real dataset: the rates at which generated records carry each SCP
code are made to match the rates at which the real records carry it.

A code's rate in the output is not its prevalence setting: age and sex scale it, companions add it, conflicts
remove it, rhythm statements share one draw, and AFIB follows LVH. So the fit is a fixed-point iteration: count
each code over ``n`` generated records (codes only, ``generate.record_codes``: ~4,000 records/s), multiply its
prevalence by target / observed, repeat. NORM is not fitted: a record is NORM exactly when a sinus-rhythm record
has no other finding, so its rate follows from the others. Codes the generator draws only on request
(``conditions.OPT_IN``) and companion codes (STD_) keep their setting; a code the target never carries keeps
its setting too and is listed in ``absent`` (with a few hundred real records, absence is often chance).

The packaged default (``population.json``, ``prevalence``) is this fit on ptbxl-500
(``ecgalign data prevalence-fit ../shared/data/ptbxl-500``); docs/synth.md records the result.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecgalign.synth import conditions as cond
from ecgalign.synth.generate import SynthConfig, record_codes

# Codes whose prevalence setting the fit moves: every drawn finding and rhythm, not opt-in ones.
FITTED: tuple[str, ...] = tuple(c for c in cond.DEFAULT_PREVALENCE if c not in cond.OPT_IN)
MIN_P, MAX_P = 1e-4, 0.9


def code_rates(codes: Iterable[Iterable[str]]) -> tuple[dict[str, float], int]:
    """(code -> share of records carrying it, number of records)."""
    counts: Counter[str] = Counter()
    n = 0
    for c in codes:
        counts.update(set(c))
        n += 1
    if n == 0:
        raise ValueError("no records to count codes in")
    return {k: v / n for k, v in counts.items()}, n


def generated_rates(prevalence: Mapping[str, float], n: int, seed: int) -> dict[str, float]:
    config = SynthConfig(prevalence=dict(prevalence))
    return code_rates(record_codes(i, seed, config) for i in range(n))[0]


@dataclass
class PrevalenceFit:
    prevalence: dict[str, float]
    target: dict[str, float]
    observed: dict[str, float]
    absent: list[str]
    rounds: list[dict[str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"prevalence": self.prevalence, "target": self.target, "observed": self.observed,
                "absent": self.absent, "rounds": self.rounds}


def fit_prevalence(
    target: Mapping[str, float],
    *,
    n: int = 50_000,
    seed: int = 0,
    rounds: int = 6,
    start: Mapping[str, float] | None = None,
) -> PrevalenceFit:
    """Prevalences (for ``SynthConfig.prevalence``) whose generated code rates match ``target`` (code -> share
    of real records). Each round counts codes over ``n`` generated records of ``seed``; ``rounds`` holds the
    largest absolute and relative miss of the fitted codes at the start and after each round."""
    if n < 100 or rounds < 1:
        raise ValueError(f"need n >= 100 generated records and rounds >= 1, got n={n}, rounds={rounds}")
    bad = {k: v for k, v in target.items() if not 0.0 <= float(v) <= 1.0}
    if bad:
        raise ValueError(f"target rates must be shares of records in [0, 1], got {bad}")
    shared = [c for c in FITTED if target.get(c, 0.0) > 0]
    if not shared:
        raise ValueError(
            f"the target carries none of the codes the generator draws ({', '.join(FITTED)}); are its codes "
            "PTB-XL SCP statements?"
        )
    prevalence = {c: float(p) for c, p in (start or cond.DEFAULT_PREVALENCE).items()}
    history = []
    for _ in range(rounds):
        observed = generated_rates(prevalence, n, seed)
        history.append(_misses(observed, target, shared))
        for c in shared:
            got = max(observed.get(c, 0.0), 1.0 / n)
            prevalence[c] = float(min(max(prevalence.get(c, MIN_P) * target[c] / got, MIN_P), MAX_P))
    observed = generated_rates(prevalence, n, seed)
    history.append(_misses(observed, target, shared))
    return PrevalenceFit(
        prevalence={c: round(p, 5) for c, p in prevalence.items()},
        target={c: round(float(target[c]), 5) for c in shared},
        observed={c: round(observed.get(c, 0.0), 5) for c in sorted(set(shared) | {"NORM"})},
        absent=[c for c in FITTED if c not in shared],
        rounds=history,
    )


def _misses(observed: Mapping[str, float], target: Mapping[str, float], codes: list[str]) -> dict[str, float]:
    diff = [abs(observed.get(c, 0.0) - target[c]) for c in codes]
    rel = [d / target[c] for d, c in zip(diff, codes)]
    return {"max_abs": round(max(diff), 5), "max_rel": round(max(rel), 4)}


def fit_from_source(source: str, *, n: int = 50_000, rounds: int = 6, seed: int = 0,
                    limit: int | None = None) -> dict[str, Any]:
    """``fit_prevalence`` against the code rates of a dataset folder or store; the result as a JSON-able dict
    with where the target came from (``source``: path, records, skipped, NORM rate)."""
    from ecgalign.synth.realism.sample import records_of

    codes, skipped = [], 0
    for rec in records_of(source, limit):
        if isinstance(rec, dict):  # a record the reader refused: counted, not fatal
            skipped += 1
            continue
        codes.append(tuple(rec.codes))
    if not codes:
        raise ValueError(f"{source}: no readable record ({skipped} skipped)")
    target, records = code_rates(codes)
    fit = fit_prevalence(target, n=n, seed=seed, rounds=rounds)
    return {"source": {"path": str(source), "records": records, "skipped": skipped,
                       "norm_rate": round(target.get("NORM", 0.0), 5)},
            "settings": {"n": n, "rounds": rounds, "seed": seed}, **fit.as_dict()}


def write_prevalence(path: str | Path, fit: Mapping[str, Any]) -> Path:
    from ecgalign.data.store_files import atomic_write_json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, dict(fit))
    return path


def read_prevalence(path: str | Path) -> dict[str, float]:
    """Prevalences from a ``prevalence-fit`` file (its ``prevalence``) or a plain JSON object code -> p; a clear
    error names the file and what is wrong (``SynthConfig`` checks the codes and the range)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read prevalences: {exc}") from exc
    table = data.get("prevalence", data) if isinstance(data, dict) else None
    if not isinstance(table, dict) or not table:
        raise ValueError(f"{path}: expected a JSON object code -> probability, or a prevalence-fit file")
    try:
        return {str(k): float(v) for k, v in table.items()}
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: every prevalence must be a number: {exc}") from exc
