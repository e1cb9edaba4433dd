"""``synthesize_echo``: a synthetic MIMIC-IV-ECHO-like dataset with paired 12-lead ECGs, labels and ground truth.

Layout written under ``out`` (the MIMIC-IV-ECHO one, Gow et al., PhysioNet 2023, plus ecgalign's extras):

    files/pNN/pNNNNNNNN/sNNNNNNNN/NNNNNNNN_VVVV.dcm   multi-frame US cine loops (and some single-frame stills)
    echo-record-list.csv     subject_id, study_id, acquisition_datetime, dicom_filepath
    echo-study-list.csv      subject_id, study_id, study_datetime
    echo-labels.csv          per study: phenotype, edv_ml, ef_pct, wall_mm, ef_lt_40, lvh, dilated_lv, afib,
                             icd10 and cir (space separated; CIR codes of the EEE paper's Table 2), and
                             ecg_shows (ground truth: the phenotype whose findings the paired ECG shows)
    ecg/                     the paired 12-lead ECG store (record_id ``s<study_id>``, ecgalign.synth, 500 Hz, 10 s)
    synth-truth.csv          per DICOM: planted defect, strip window (t0_s, duration_s), trace columns, gain
    synth-truth-strips.npz   per DICOM (key = row of synth-truth.csv): displayed lead II value (mV) per column

Each study's ECG comes from ``ecgalign.synth.synthesize_record`` with the ECG findings of the phenotype the
patient's ECG shows (its own with probability ``ecg_link``, see ``heart``); the echo loop shows a window of that ECG's lead II and the LV contracts ``emd_s`` after each QRS onset.
Everything is a deterministic function of (seed, patient number, options).
"""

from __future__ import annotations

import csv
import functools
import json
import multiprocessing as mp
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ecgalign.data.labels import scp_scheme
from ecgalign.data.labels.ccsr import paper_table2
from ecgalign.data.record import LEADS_12
from ecgalign.data.store import StoreSpec, StoreWriter
from ecgalign.synth.echo import heart as hm
from ecgalign.synth.echo.dicom_write import COMPRESSIONS, DicomIds, uid, write_dicom
from ecgalign.synth.echo.render import DEFECTS, draw_marker, draw_strip, plan_strip, render_echo, text_overlay
from ecgalign.synth.generate import SynthConfig, synthesize_record

ECG_FS, ECG_SECONDS = 500.0, 10.0
_TAG = 0xEC40
DEPTH_LABEL = "D 16 cm"


@dataclass
class EchoSynthConfig:
    """Population and file options. ``defect_fraction`` of cine files carry one planted defect (evenly over
    ``render.DEFECTS``); ``still_fraction`` of studies also hold a single-frame still (to be excluded)."""

    rows: int = 240
    cols: int = 320
    frames: tuple[int, int] = (32, 120)
    fps: tuple[int, int] = (30, 60)
    studies_per_patient: tuple[int, int] = (1, 3)
    views_per_study: int = 2
    defect_fraction: float = 0.2
    still_fraction: float = 0.25
    compression: str = "none"
    ecg_link: float = hm.ECG_LINK_DEFAULT

    def __post_init__(self) -> None:
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"EchoSynthConfig.compression must be one of {COMPRESSIONS}, got {self.compression!r}")
        if not (32 <= self.frames[0] <= self.frames[1] <= 120):
            raise ValueError(f"EchoSynthConfig.frames must lie in 32..120, got {self.frames}")
        if not (1 <= self.fps[0] <= self.fps[1]):
            raise ValueError(f"EchoSynthConfig.fps must be a positive range, got {self.fps}")
        if self.rows < 120 or self.cols < 160:
            raise ValueError(f"EchoSynthConfig frame size must be at least 120x160, got {self.rows}x{self.cols}")
        if not (1 <= self.studies_per_patient[0] <= self.studies_per_patient[1] <= 9 and self.views_per_study >= 1):
            raise ValueError(f"EchoSynthConfig: studies_per_patient within 1..9 and views_per_study >= 1 expected, "
                             f"got {self.studies_per_patient}, {self.views_per_study}")
        if not 0.0 <= self.defect_fraction <= 1.0 or not 0.0 <= self.still_fraction <= 1.0:
            raise ValueError("EchoSynthConfig.defect_fraction and still_fraction must be in [0, 1]")
        if not 0.0 <= self.ecg_link <= 1.0:
            raise ValueError(f"EchoSynthConfig.ecg_link must be in [0, 1] (0: ECG independent of the echo "
                             f"phenotype, 1: tied to it), got {self.ecg_link}")


def _ids(seed: int, patient: int, study: int) -> tuple[int, int]:
    """MIMIC-style 8-digit subject and study ids (unique for < 10,000 patients and < 10 studies each)."""
    subject_id = 10_000_000 + 10_000 * (seed % 90) + patient
    return subject_id, 90_000_000 + 10 * (subject_id % 1_000_000) + study


def _strip_values(ecg_ii: np.ndarray, t0: float, duration: float, n_cols: int) -> np.ndarray:
    """Lead II (mV) shown at each of ``n_cols`` trace columns spanning [t0, t0 + duration)."""
    t = t0 + duration * np.arange(n_cols) / n_cols
    grid = np.arange(ecg_ii.size) / ECG_FS
    return np.interp(t, grid, ecg_ii)


def _cine(rng: np.random.Generator, config: EchoSynthConfig, view: int, ecg: Any, onsets: np.ndarray,
          heart: hm.Heart) -> tuple[np.ndarray, float, dict[str, Any], np.ndarray, np.ndarray]:
    """One cine loop: frames (n, rows, cols, 3) uint8, fps, truth fields, displayed strip values (mV per trace
    column) and the grey echo region (n, h, cols)."""
    n_frames = int(rng.integers(config.frames[0], config.frames[1] + 1))
    fps = float(rng.integers(config.fps[0], config.fps[1] + 1))
    duration = n_frames / fps
    t0 = float(rng.uniform(0.3, ECG_SECONDS - duration - 0.3))
    defect = DEFECTS[int(rng.integers(len(DEFECTS)))] if rng.random() < config.defect_fraction else None
    n_cols = int(round(config.cols * rng.uniform(0.86, 0.90)))
    values = _strip_values(ecg.lead("II"), t0, duration, n_cols)
    plan = plan_strip(rng, config.rows, config.cols, values, defect)
    volumes = hm.lv_volume(t0 + np.arange(n_frames) / fps, onsets, heart)
    echo = render_echo(rng, config.rows, config.cols, view % 3, volumes, heart.edv_ml, heart.wall_mm)
    overlay = text_overlay(config.rows, config.cols, [f"ecgalign synthetic  A4C-{view + 1}",
                                                      f"FR {fps:.0f} Hz  {DEPTH_LABEL}",
                                                      f"HR {ecg.extra['hr_bpm']:.0f} bpm"])
    alpha = overlay[..., 3:] > 0
    frames = np.zeros((n_frames, config.rows, config.cols, 3), dtype=np.uint8)
    frames[:, :echo.shape[1]] = echo[..., None]
    cut = float(rng.uniform(0.12, 0.35)) if defect == "coverage" else 1.0
    strip = np.zeros((config.rows, config.cols, 3), dtype=np.uint8)
    draw_strip(strip, plan, rng, coverage_cut=cut)
    roi = slice(echo.shape[1], config.rows)
    for k in range(n_frames):
        frames[k, roi] = strip[roi]
        draw_marker(frames[k], plan, k / max(n_frames - 1, 1))
        np.copyto(frames[k], overlay[..., :3], where=alpha)
    truth = {"defect": defect or "", "n_frames": n_frames, "fps": fps, "t0_s": round(t0, 6),
             "duration_s": round(duration, 6), "x0": plan.x0, "x1": plan.x1, "px_per_mv": round(plan.px_per_mv, 4)}
    return frames, fps, truth, values, echo


def _make_patient(seed: int, patient: int, *, config: EchoSynthConfig, out: Path) -> dict[str, list]:
    """All files of one patient; returns the rows of the CSV tables, truths and ECG records it produced."""
    rng = np.random.default_rng([seed, _TAG, patient])
    cir_table = paper_table2()
    phenotype, afib, centre = hm.draw_patient(rng, config.ecg_link)
    # A stream of its own, so the echo side draws the same numbers for every ecg_link.
    ecg_shows = hm.ecg_phenotype(np.random.default_rng([seed, _TAG, patient, 1]), phenotype, config.ecg_link)
    rows: dict[str, list] = {"records": [], "studies": [], "labels": [], "truth": [], "strips": [], "ecgs": []}
    lo, hi = config.studies_per_patient
    for study in range(int(rng.integers(lo, hi + 1))):
        subject_id, study_id = _ids(seed, patient, study)
        heart = hm.study_heart(rng, phenotype, afib, centre, ecg_shows)
        ecg_index = patient * 8 + study
        ecg_conf = SynthConfig(conditions=heart.ecg_codes, exclusive=True)
        ecg = synthesize_record(ecg_index, seed, fs=ECG_FS, seconds=ECG_SECONDS, config=ecg_conf)
        ecg = ecg.replace(record_id=f"s{study_id}", patient_id=f"p{subject_id}",
                          extra={**ecg.extra, "echo": {"study_id": study_id, **asdict(heart)}})
        rows["ecgs"].append(ecg)
        onsets = np.asarray(ecg.extra["beats"]["onset_s"], dtype=float)
        day = 1 + (patient * 37 + study * 101) % 27
        date, time = f"2150{1 + study % 12:02d}{day:02d}", f"{8 + patient % 10:02d}{(study * 7) % 60:02d}00"
        rows["studies"].append({"subject_id": subject_id, "study_id": study_id,
                                "study_datetime": f"{date[:4]}-{date[4:6]}-{date[6:]} {time[:2]}:{time[2:4]}:00"})
        labels = heart.labels()
        rows["labels"].append({"subject_id": subject_id, "study_id": study_id, "phenotype": phenotype,
                               "edv_ml": round(heart.edv_ml, 1), "ef_pct": round(heart.ef_pct, 1),
                               "wall_mm": round(heart.wall_mm, 1), **labels, "icd10": " ".join(heart.icd10),
                               "cir": " ".join(sorted({c for icd in heart.icd10 for c in cir_table.get(icd, ())})),
                               "ecg_shows": heart.ecg_phenotype})
        study_uid = uid("study", seed, subject_id, study_id)
        ids_base = dict(patient_id=str(subject_id), study_uid=study_uid, study_date=date, study_time=time)
        rel_dir = Path("files") / f"p{str(subject_id)[:2]}" / f"p{subject_id}" / f"s{study_id}"
        views = list(range(config.views_per_study))
        for view in views:
            frames, fps, truth, values, echo = _cine(rng, config, view, ecg, onsets, heart)
            name = f"{study_id}_{view + 1:04d}.dcm"
            ids = DicomIds(series_uid=uid("series", study_uid, view), sop_uid=uid("sop", study_uid, view), **ids_base)
            write_dicom(out / rel_dir / name, frames, fps, ids, compression=config.compression)
            rel = (rel_dir / name).as_posix()
            rows["records"].append({"subject_id": subject_id, "study_id": study_id,
                                    "acquisition_datetime": rows["studies"][-1]["study_datetime"],
                                    "dicom_filepath": rel})
            rows["truth"].append({"dicom_filepath": rel, "subject_id": subject_id, "study_id": study_id,
                                  "view": view + 1, "kind": "cine", **truth})
            rows["strips"].append(values.astype(np.float32))
        if rng.random() < config.still_fraction:
            name = f"{study_id}_{len(views) + 1:04d}.dcm"
            still = np.zeros((1, config.rows, config.cols, 3), dtype=np.uint8)
            still[0, :echo.shape[1]] = echo[0, ..., None]
            ids = DicomIds(series_uid=uid("series", study_uid, "still"), sop_uid=uid("sop", study_uid, "still"),
                           **ids_base)
            write_dicom(out / rel_dir / name, still, 1.0, ids, compression=config.compression, multiframe=False)
            rel = (rel_dir / name).as_posix()
            rows["records"].append({"subject_id": subject_id, "study_id": study_id,
                                    "acquisition_datetime": rows["studies"][-1]["study_datetime"],
                                    "dicom_filepath": rel})
            rows["truth"].append({"dicom_filepath": rel, "subject_id": subject_id, "study_id": study_id,
                                  "view": len(views) + 1, "kind": "still", "defect": "", "n_frames": 1,
                                  "fps": "", "t0_s": "", "duration_s": "", "x0": "", "x1": "", "px_per_mv": ""})
            rows["strips"].append(np.zeros(0, dtype=np.float32))
    return rows


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def synthesize_echo(out: str | Path, n_patients: int, *, seed: int = 0, config: EchoSynthConfig | None = None,
                    overwrite: bool = False, workers: int = 1,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Write the synthetic echo dataset for patients 0..n_patients-1 to ``out`` (``workers`` processes make
    patients in parallel; the output does not depend on it); returns a summary."""
    config = config or EchoSynthConfig()
    out = Path(out)
    if n_patients < 1:
        raise ValueError(f"n_patients must be >= 1, got {n_patients}")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} is not empty; pass overwrite=True (--overwrite) to write into it")
    out.mkdir(parents=True, exist_ok=True)
    tables: dict[str, list] = {"records": [], "studies": [], "labels": [], "truth": [], "strips": [], "ecgs": []}
    make = functools.partial(_make_patient, seed, config=config, out=out)
    pool = mp.get_context("spawn").Pool(workers) if workers > 1 else None
    try:
        results = pool.imap(make, range(n_patients)) if pool else map(make, range(n_patients))
        for p, patient_rows in enumerate(results):
            for key, rows in patient_rows.items():
                tables[key].extend(rows)
            if progress is not None:
                progress(p + 1, n_patients)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    _write_csv(out / "echo-record-list.csv", tables["records"])
    _write_csv(out / "echo-study-list.csv", tables["studies"])
    _write_csv(out / "echo-labels.csv", tables["labels"])
    _write_csv(out / "synth-truth.csv", tables["truth"])
    tmp = out / "synth-truth-strips.tmp.npz"
    np.savez_compressed(tmp, **{str(i): s for i, s in enumerate(tables["strips"])})
    os.replace(tmp, out / "synth-truth-strips.npz")
    spec = StoreSpec(fs=ECG_FS, samples=int(ECG_FS * ECG_SECONDS), leads=LEADS_12, encoding="int16")
    info = {"dataset": "synthetic-echo-ecg",
            "source": {"generator": "ecgalign.synth.echo", "seed": seed, "n_patients": n_patients}}
    writer = StoreWriter(out / "ecg", spec, scp_scheme(), info=info, overwrite=True)
    for i, rec in enumerate(tables["ecgs"]):
        writer.add(rec, i + 1)
    writer.close()
    truth = tables["truth"]
    summary = {
        "out": str(out), "seed": seed, "patients": n_patients, "studies": len(tables["studies"]),
        "dicoms": len(truth), "cine": sum(t["kind"] == "cine" for t in truth),
        "stills": sum(t["kind"] == "still" for t in truth),
        "defects": {d: sum(t["defect"] == d for t in truth) for d in DEFECTS},
        "config": asdict(config),
    }
    tmp = out / "synth-echo.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, out / "synth-echo.json")
    return summary
