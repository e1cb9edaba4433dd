"""Argument checks shared by the preprocessing functions: one place for the error messages."""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction
from numbers import Real
from typing import Any

import numpy as np

from ecgalign.data.errors import InputError


def as_float_signal(signal: Any, *, finite: bool = True, min_ndim: int = 1, what: str = "signal") -> np.ndarray:
    """``signal`` as a float array (..., T): float64 stays float64, anything else becomes float32.

    May return the caller's array itself, so callers must never write into the result.
    """
    x = np.asarray(signal)
    if x.dtype.kind not in "biuf":
        raise InputError(f"{what} must be a real numeric array, got dtype {x.dtype}")
    if x.ndim < min_ndim:
        shape = "(leads, T)" if min_ndim == 2 else "(T,) or (leads, T)"
        raise InputError(f"{what} must have shape {shape}, got shape {x.shape}")
    if x.shape[-1] == 0:
        raise InputError(f"{what} has no samples (shape {x.shape})")
    if x.dtype != np.float64:
        x = x.astype(np.float32, copy=False)
    if finite:
        bad = np.count_nonzero(~np.isfinite(x))
        if bad:
            raise InputError(
                f"{what} contains {bad} NaN/Inf samples; repair them first with repair_nonfinite() "
                "(Preprocess does this when repair_nan=True)"
            )
    return x


def positive_number(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """A finite real number > 0 (or >= 0 with ``allow_zero``), as float."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    if float(value) < 0 or (float(value) == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{name} must be {bound}, got {value!r}")
    return float(value)


def positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def exact_rate(value: Any, name: str) -> Fraction:
    """A sampling rate as the exact rational number it was written as (257 -> 257, 62.5 -> 125/2)."""
    return Fraction(str(positive_number(value, name)))


def choice(value: Any, name: str, valid: Iterable[Any]) -> Any:
    valid = tuple(valid)
    if value not in valid:
        raise InputError(f"{name}: {value!r} is not valid; expected one of {', '.join(map(repr, valid))}")
    return value


def row_name(row: int, batch_shape: tuple[int, ...]) -> str:
    """'lead 3' for a (leads, T) signal, 'row (0, 3)' for a batch, 'the signal' for a single trace."""
    if not batch_shape:
        return "the signal"
    if len(batch_shape) == 1:
        return f"lead {row}"
    return f"row {tuple(int(i) for i in np.unravel_index(row, batch_shape))}"
