"""Per-condition waveform measures in mV, real against synthetic (issue 15, seventh pass): what defines MI and
LVH in the records that carry the code, on the realism harness's mV view (0.5-100 Hz, 250 Hz).

Per record, on the beats the harness delineates (``qrs_bounds``; baseline the 40 ms before QRS onset; median over
beats) and per lead: Q depth (most negative value in the first 40 ms of the QRS, 0 if none), Q duration (ms from
onset until the lead first turns positive, when it starts negative), R (largest positive value), S (largest
negative value), Q/R, ST at J + 60 ms, T (the larger-magnitude extreme 100-400 ms after J). Record-level: R
progression (R V1..V4), Sokolow-Lyon (S V1 + max R V5/V6), Cornell (R aVL + S V3), strain (ST V5/V6 < -0.05 mV
and T V5/V6 < 0). Prints one JSON object: per group and side, p10 / p50 / p90 of each measure.

    python benchmarks/bench_condition_measures.py --real ../shared/data/ptbxl-500 --n 2000 --seed 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from ecgalign.data.record import LEADS_12
from ecgalign.synth.realism import load_sample
from ecgalign.synth.realism.features import r_peaks
from ecgalign.synth.realism.measure import FS, beat_waves, qrs_bounds

_L = {name: i for i, name in enumerate(LEADS_12)}
GROUPS = {
    "NORM": ("NORM",),
    "IMI": ("IMI", "ILMI", "IPMI"),
    "ASMI": ("ASMI",),
    "AMI": ("AMI", "ALMI"),
    "LMI": ("LMI",),
    "LVH": ("LVH",),
}
LEAD_MEASURES = {
    "q_mv": ("II", "III", "aVF", "I", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"),
    "q_ms": ("III", "aVF", "V1", "V2", "V3"),
    "r_mv": ("II", "III", "aVF", "I", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"),
    "s_mv": ("V1", "V2", "V3"),
    "qr_ratio": ("III", "aVF", "V2", "V3"),
    "st_mv": ("II", "III", "aVF", "I", "V1", "V2", "V3", "V4", "V5", "V6"),
    "t_mv": ("II", "III", "aVF", "I", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"),
}


def record_measures(mv: np.ndarray, fs: float = FS) -> dict[str, float] | None:
    """Measures of one record (12, T) in mV; None when no beat can be delineated."""
    waves = beat_waves(mv, qrs_bounds(mv, r_peaks(mv, fs), fs), fs, min_qrs_s=0.04)
    if waves is None:
        return None
    q, q_ms, r, sw, st, t = np.median(waves, axis=0)
    out: dict[str, float] = {}
    for lead in LEAD_MEASURES["q_mv"]:
        out[f"q_mv {lead}"] = float(q[_L[lead]])
    for lead in LEAD_MEASURES["q_ms"]:
        out[f"q_ms {lead}"] = float(q_ms[_L[lead]])
    for lead in LEAD_MEASURES["r_mv"]:
        out[f"r_mv {lead}"] = float(r[_L[lead]])
    for lead in LEAD_MEASURES["s_mv"]:
        out[f"s_mv {lead}"] = float(sw[_L[lead]])
    for lead in LEAD_MEASURES["qr_ratio"]:
        out[f"qr_ratio {lead}"] = float(q[_L[lead]] / max(r[_L[lead]], 0.05))
    for lead in LEAD_MEASURES["st_mv"]:
        out[f"st_mv {lead}"] = float(st[_L[lead]])
    for lead in LEAD_MEASURES["t_mv"]:
        out[f"t_mv {lead}"] = float(t[_L[lead]])
    out["sokolow_mv"] = float(sw[_L["V1"]] + max(r[_L["V5"]], r[_L["V6"]]))
    out["cornell_mv"] = float(r[_L["aVL"]] + sw[_L["V3"]])
    st56, t56 = min(st[_L["V5"]], st[_L["V6"]]), min(t[_L["V5"]], t[_L["V6"]])
    out["strain"] = float(st56 < -0.05 and t56 < 0)
    out["t_neg V5/V6"] = float(t56 < 0)
    return out


def summarise(sample) -> dict[str, dict]:
    measures = [record_measures(mv) for mv in sample.mv]
    out = {}
    for group, codes in GROUPS.items():
        rows = [m for m, c in zip(measures, sample.codes) if m is not None and set(codes) & set(c)]
        if not rows:
            continue
        out[group] = {"records": len(rows)}
        for key in rows[0]:
            v = np.array([r[key] for r in rows])
            out[group][key] = [round(float(x), 3) for x in np.percentile(v, (10, 50, 90))]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", required=True, help="real dataset folder in mV, e.g. ../shared/data/ptbxl-500")
    ap.add_argument("--n", type=int, default=2000, help="synthetic records")
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    real = load_sample(args.real)
    synth = load_sample(f"synth:{args.n}:{args.seed}")
    print(json.dumps({"benchmark": "condition_measures", "command": " ".join([os.path.basename(sys.executable),
                      *sys.argv]), "real": summarise(real), "synthetic": summarise(synth)}, indent=1))


if __name__ == "__main__":
    main()
