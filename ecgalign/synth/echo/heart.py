"""The synthetic patient's heart: structural condition, LV size/function, and the LV volume curve driven by the ECG.

A patient has one structural phenotype (normal, reduced EF, LVH, dilated LV) and may be in atrial fibrillation;
the phenotype sets end-diastolic volume (EDV), ejection fraction (EF) and wall thickness. The ECG is a partial,
noisy witness of it, as in real patients (ECG LVH criteria miss most echo LVH, many reduced-EF hearts have an
unremarkable ECG, ECG signs occur without structural disease): with probability ``ecg_link`` a patient's ECG
shows the findings physiology ties to the phenotype (LVH voltage, prior anteroseptal MI in ischaemic heart
failure, LBBB in dilated cardiomyopathy), otherwise those of a phenotype drawn independently from the
population (``ecg_phenotype``); the AF probability moves the same way from its phenotype's value to the
population's. ``ecg_link`` = 0: the ECG is independent of the structural phenotype; 1: tied to it.
Reference ranges: ASE/EACVI chamber quantification (Lang et al., JASE 2015): EF 52-72 %, LVEDV up to about
150 mL, septal/posterior wall 6-12 mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PHENOTYPES: tuple[str, ...] = ("normal", "reduced_ef", "lvh", "dilated_lv")
PHENOTYPE_PROBS: tuple[float, ...] = (0.40, 0.22, 0.22, 0.16)
AFIB_PROB = {"normal": 0.08, "reduced_ef": 0.25, "lvh": 0.22, "dilated_lv": 0.30}
AFIB_POPULATION = sum(p * AFIB_PROB[ph] for ph, p in zip(PHENOTYPES, PHENOTYPE_PROBS))  # 0.183
# Share of patients whose ECG shows their own phenotype's findings (ours, not a published figure; see docs/echo.md).
ECG_LINK_DEFAULT = 0.5
# ECG statements (PTB-XL SCP codes, ecgalign.synth) that each phenotype forces on the paired 12-lead ECG.
ECG_CODES = {"normal": (), "reduced_ef": ("ASMI",), "lvh": ("LVH",), "dilated_lv": ("CLBBB",)}
# ICD-10 codes a clinician would file; mapped to CIR categories by ecgalign.data.labels.ccsr.
ICD10 = {"normal": (), "reduced_ef": ("I5022",), "lvh": ("I110",), "dilated_lv": ("I429", "I5022")}
ICD10_AFIB = ("I4891",)
# Label thresholds (echo-derived labels).
EF_REDUCED = 40.0
WALL_LVH_MM = 12.0
EDV_DILATED_ML = 150.0
LABELS: tuple[str, ...] = ("ef_lt_40", "lvh", "dilated_lv", "afib")


@dataclass(frozen=True)
class Heart:
    """Structural truth of one study (a patient's values jittered per study)."""

    phenotype: str
    afib: bool
    edv_ml: float
    ef_pct: float
    wall_mm: float
    emd_s: float  # electromechanical delay: QRS onset to start of ejection
    ecg_phenotype: str | None = None  # the phenotype whose findings the ECG shows (None: its own)

    @property
    def ecg_codes(self) -> tuple[str, ...]:
        return ECG_CODES[self.ecg_phenotype or self.phenotype] + (("AFIB",) if self.afib else ())

    @property
    def icd10(self) -> tuple[str, ...]:
        return ICD10[self.phenotype] + (ICD10_AFIB if self.afib else ())

    def labels(self) -> dict[str, int]:
        return {"ef_lt_40": int(self.ef_pct < EF_REDUCED), "lvh": int(self.wall_mm >= WALL_LVH_MM),
                "dilated_lv": int(self.edv_ml > EDV_DILATED_ML), "afib": int(self.afib)}


def _check_link(ecg_link: float) -> None:
    if not 0.0 <= ecg_link <= 1.0:
        raise ValueError(f"ecg_link must be in [0, 1], got {ecg_link}")


def draw_patient(rng: np.random.Generator, ecg_link: float = 1.0) -> tuple[str, bool, dict[str, float]]:
    """A patient's phenotype, AF status and central values of EDV (mL), EF (%) and wall thickness (mm). The AF
    probability is ``ecg_link`` × the phenotype's + (1 − ``ecg_link``) × the population's (same draws for any link)."""
    _check_link(ecg_link)
    phenotype = PHENOTYPES[int(rng.choice(len(PHENOTYPES), p=PHENOTYPE_PROBS))]
    afib = bool(rng.random() < ecg_link * AFIB_PROB[phenotype] + (1.0 - ecg_link) * AFIB_POPULATION)
    ranges = {
        "normal": ((85, 135), (56, 70), (7.5, 10.5)),
        "reduced_ef": ((125, 148), (22, 36), (8.0, 10.5)),
        "lvh": ((80, 125), (55, 70), (13.0, 17.0)),
        "dilated_lv": ((175, 260), (20, 34), (7.0, 9.5)),
    }[phenotype]
    edv, ef, wall = (float(rng.uniform(lo, hi)) for lo, hi in ranges)
    return phenotype, afib, {"edv_ml": edv, "ef_pct": ef, "wall_mm": wall}


def ecg_phenotype(rng: np.random.Generator, phenotype: str, ecg_link: float) -> str:
    """The phenotype whose ECG findings a patient's ECG shows: its own with probability ``ecg_link``, else one
    drawn from the population independently of it (which may again be its own). Always two draws."""
    _check_link(ecg_link)
    own = rng.random() < ecg_link
    other = PHENOTYPES[int(rng.choice(len(PHENOTYPES), p=PHENOTYPE_PROBS))]
    return phenotype if own else other


def study_heart(rng: np.random.Generator, phenotype: str, afib: bool, centre: dict[str, float],
                ecg_shows: str | None = None) -> Heart:
    """One study's values: the patient's centre with small visit-to-visit jitter that keeps the label;
    ``ecg_shows`` is the phenotype the paired ECG shows (``ecg_phenotype``; default its own)."""
    edv = centre["edv_ml"] * float(np.exp(rng.normal(0, 0.03)))
    ef = centre["ef_pct"] + float(rng.normal(0, 1.0))
    wall = centre["wall_mm"] + float(rng.normal(0, 0.2))
    ef = float(np.clip(ef, 15, 75))
    if phenotype in ("reduced_ef", "dilated_lv"):
        ef = min(ef, EF_REDUCED - 2.0)
    else:
        ef = max(ef, 52.0)
    wall = max(wall, WALL_LVH_MM + 0.5) if phenotype == "lvh" else min(wall, WALL_LVH_MM - 1.0)
    edv = max(edv, EDV_DILATED_ML + 10) if phenotype == "dilated_lv" else min(edv, EDV_DILATED_ML - 2)
    return Heart(phenotype, afib, edv, ef, wall, emd_s=float(rng.uniform(0.04, 0.08)),
                 ecg_phenotype=ecg_shows or phenotype)


def lv_volume(t: np.ndarray, qrs_onsets: np.ndarray, heart: Heart) -> np.ndarray:
    """LV volume (mL) at times ``t`` (s): ejection starts ``emd_s`` after each QRS onset, lasts ~0.3 s (shorter
    at fast rates), relaxation follows; with AF the stroke volume follows the preceding RR (Frank-Starling).
    """
    volume = np.full(t.shape, heart.edv_ml, dtype=np.float64)
    if qrs_onsets.size == 0:
        return volume
    rr = np.diff(qrs_onsets, prepend=qrs_onsets[0] - (np.diff(qrs_onsets).mean() if qrs_onsets.size > 1 else 0.8))
    mean_rr = float(np.median(rr))
    sv = heart.edv_ml * heart.ef_pct / 100.0
    for onset, r in zip(qrs_onsets, rr):
        scale = float(np.clip(r / mean_rr, 0.55, 1.25)) if heart.afib else 1.0
        eject = 0.30 * np.sqrt(min(r, 1.5) / 0.8)
        relax = 0.18 * np.sqrt(min(r, 1.5) / 0.8)
        u = t - (onset + heart.emd_s)
        shape = np.where((u >= 0) & (u < eject), np.sin(0.5 * np.pi * u / eject) ** 2, 0.0)
        shape = np.where((u >= eject) & (u < eject + relax),
                         np.cos(0.5 * np.pi * (u - eject) / relax) ** 2, shape)
        volume -= sv * scale * shape
    return volume
