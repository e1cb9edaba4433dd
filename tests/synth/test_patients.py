"""Patients: some have several records, which share identity (sex, fold, persistent findings, heart geometry)
so that subject identification is possible, without being copies of each other."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from ecgalign.synth.conditions import PERSISTENT

pytestmark = pytest.mark.slow


def test_patients_group_records(population):
    by_patient = collections.defaultdict(list)
    for rec in population:
        by_patient[rec.patient_id].append(rec)
    sizes = collections.Counter(len(v) for v in by_patient.values())
    multi = sum(v for k, v in sizes.items() if k > 1) / len(by_patient)
    assert 0.2 < multi < 0.4 and max(sizes) <= 3
    assert {r.fold for r in population} == set(range(1, 11))
    for recs in by_patient.values():
        assert len({r.fold for r in recs}) == 1 and len({r.sex for r in recs}) == 1
        assert max(r.age for r in recs) - min(r.age for r in recs) <= 6
        # persistent findings repeat (AF can hide a first-degree block: compare the sinus-rhythm records)
        sinus = [r for r in recs if r.codes[0] not in ("AFIB", "AFLT")]
        assert len({frozenset(set(r.codes) & set(PERSISTENT)) for r in sinus}) <= 1


def _beat_features(rec) -> np.ndarray:
    """Mean of the 12 leads from -250 to +450 ms around the (ground-truth) onsets of conducted beats."""
    fs, x = rec.fs, rec.signal.astype(float)
    a, b = int(0.25 * fs), int(0.45 * fs)
    starts = [
        int(t * fs) for t, k in zip(rec.extra["beats"]["onset_s"], rec.extra["beats"]["type"]) if k == "N"
    ]
    segs = [x[:, s - a : s + b] for s in starts if s - a >= 0 and s + b <= x.shape[1]]
    f = np.mean(segs, axis=0).ravel()
    f = f - f.mean()
    return f / np.linalg.norm(f)


def test_records_of_a_patient_resemble_each_other(population):
    recs = [r for r in population if r.extra["beats"]["type"].count("N") >= 3]
    feats = np.stack([_beat_features(r) for r in recs])
    sim = feats @ feats.T
    np.fill_diagonal(sim, -np.inf)
    patient = np.array([r.patient_id for r in recs])
    has_partner = np.array([(patient == p).sum() > 1 for p in patient])
    nearest = np.argmax(sim, axis=1)
    top1 = np.mean(patient[nearest][has_partner] == patient[has_partner])
    assert top1 > 0.5  # chance is about 1 / 2000
    same = sim[patient[:, None] == patient[None, :]]
    assert np.all(same[np.isfinite(same)] < 0.9999)  # similar, never identical
