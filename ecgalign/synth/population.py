"""Population parameters of the generator, packaged as ``population.json`` beside this module.

Entries are tuned with the realism harness (``ecgalign data realism``) against the real ptbxl-500 records so
that the covariance spectrum, band powers, beat variability, axis and voltage distributions of synthetic
records match real ones; ``prevalence`` (per-record code probabilities) is fitted by ``ecgalign data
prevalence-fit`` to ptbxl-500's code rates. ``_provenance`` in the JSON says how, and docs/synth.md records the
commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PATH = Path(__file__).with_name("population.json")
_REQUIRED = (
    "axis_mean", "axis_age", "axis_sd", "sharpness", "notch_p", "local_mv", "local_t", "limb_gain_sd",
    "rr_lf", "rr_hf", "sr_hr", "beat_gain_sd", "t_gain_sd", "resp_rotation_deg", "sokolow_ceiling_mv",
    "borderline_voltage_p", "qrs_gain", "limb_gain_mean",
    "t_gain", "tilt_sd", "turn_sd", "qrs_core", "j_point_mv",
    "ta_ratio", "ta_width_s", "t_ramp", "atrial_chest_gain", "chest_proximity", "s_tail", "u_p",
    "lead_sd", "qrs_gain_sd", "qrs_timing_sd", "lead_corr_electrodes", "prevalence",
)


def load(path: str | Path = PATH) -> dict[str, Any]:
    """The parameters, checked for completeness (a clear error names the file and the missing keys)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the synthetic population parameters: {exc}") from exc
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ValueError(f"{path}: missing population parameter(s) {missing}")
    return data


POP: dict[str, Any] = load()
