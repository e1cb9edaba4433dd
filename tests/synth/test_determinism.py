"""The generator is a pure function of (seed, index, config): any order, any process count, same output."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from ecgalign.synth import NoiseConfig, SynthConfig, synthesize, synthesize_record


def _same(a, b) -> bool:
    return (
        np.array_equal(a.signal, b.signal)
        and a.report == b.report
        and a.codes == b.codes
        and a.metadata() == b.metadata()
        and a.extra == b.extra
    )


def test_same_seed_and_index_give_identical_records():
    for index in (0, 7, 1234):
        assert _same(synthesize_record(index, 3), synthesize_record(index, 3))


def test_order_does_not_matter():
    forward = [synthesize_record(i, 1) for i in range(6)]
    backward = [synthesize_record(i, 1) for i in reversed(range(6))][::-1]
    assert all(_same(a, b) for a, b in zip(forward, backward))
    assert all(_same(a, b) for a, b in zip(forward, synthesize(6, 1)))


def test_different_seeds_and_indices_differ():
    a, b, c = synthesize_record(0, 0), synthesize_record(0, 1), synthesize_record(1, 0)
    assert not np.allclose(a.signal, b.signal)
    assert not np.allclose(a.signal, c.signal)


def test_two_workers_equal_one_worker():
    one = list(synthesize(10, 4, fs=100, workers=1))
    two = list(synthesize(10, 4, fs=100, workers=2))
    assert [r.record_id for r in two] == [f"synth-{i:07d}" for i in range(10)]
    assert all(_same(a, b) for a, b in zip(one, two))


def test_record_fields():
    rec = synthesize_record(5, 0, fs=100, seconds=10.0)
    assert rec.signal.shape == (12, 1000) and rec.signal.dtype == np.float32
    assert rec.dataset == "synthetic" and rec.record_id == "synth-0000005"
    assert rec.code_system == "scp" and rec.report and rec.report_original  # English rendering, text as written
    assert 1 <= rec.fold <= 10 and rec.sex in ("M", "F") and 18 <= rec.age <= 100
    assert rec.patient_id.startswith("synth-p")
    json.dumps(rec.extra)  # ground truth is JSON-serialisable
    rec.validate(allow_nan=False)


def test_other_lengths_and_rates():
    rec = synthesize_record(2, 0, fs=250, seconds=2.5)
    assert rec.signal.shape == (12, 625)
    assert np.isfinite(rec.signal).all()


def test_config_is_validated_and_serialisable():
    json.dumps(dataclasses.asdict(SynthConfig(conditions=("AFIB", "LVH"), prevalence={"PVC": 0.5})))
    with pytest.raises(ValueError, match="unknown"):
        SynthConfig(conditions=("NOPE",))
    with pytest.raises(ValueError, match="contradictory"):
        SynthConfig(conditions=("AFIB", "1AVB"))
    with pytest.raises(ValueError, match="contradictory"):
        SynthConfig(conditions=("NORM", "LVH"))
    with pytest.raises(ValueError, match=r"prevalence\['LVH'\]"):
        SynthConfig(prevalence={"LVH": 1.5})
    with pytest.raises(ValueError, match="records_per_patient"):
        SynthConfig(records_per_patient=0.5)
    with pytest.raises(ValueError, match="snr_db"):
        NoiseConfig(snr_db=(30.0, 10.0))
    with pytest.raises(ValueError, match="non-negative"):
        synthesize_record(-1, 0)


def test_patient_qrs_timing_has_its_own_stream(monkeypatch):
    """The per-patient QRS timing (sixth pass) is drawn from its own stream: without it (sd 0) every other draw
    of the patient is unchanged, and the timing is the patient's (drawn again, the same)."""
    from ecgalign.synth import generate
    from ecgalign.synth.population import POP

    cfg = generate.SynthConfig()
    spread = list(POP["qrs_timing_sd"])
    with_timing = generate._patient(3, 17, cfg)
    assert with_timing.anatomy.timing.shape == (4, 2) and np.abs(with_timing.anatomy.timing).max() > 0
    monkeypatch.setitem(POP, "qrs_timing_sd", [0.0, 0.0])
    without = generate._patient(3, 17, cfg)
    assert np.all(without.anatomy.timing == 0.0)
    assert without.age == with_timing.age and without.base == with_timing.base
    assert np.array_equal(without.anatomy.jitter, with_timing.anatomy.jitter)
    assert np.array_equal(without.anatomy.leads, with_timing.anatomy.leads)
    monkeypatch.setitem(POP, "qrs_timing_sd", spread)
    again = generate._patient(3, 17, cfg)
    assert np.array_equal(again.anatomy.timing, with_timing.anatomy.timing)


def test_eighth_pass_codes_have_their_own_streams():
    """The eighth-pass codes (LMI, ILMI, ALMI, NST_, STD_) are drawn from streams of their own: with their
    prevalence at zero, every record that carries none of them is the record it is by default, and records
    carrying them differ only there."""
    from ecgalign.synth import conditions as cond

    zero = SynthConfig(prevalence={c: 0.0 for c in cond.EXTRA_PERSISTENT + cond.EXTRA_TRANSIENT})
    default = SynthConfig()
    seen = 0
    for i in range(120):
        a, b = synthesize_record(i, 4, fs=100, config=default), synthesize_record(i, 4, fs=100, config=zero)
        if set(a.codes) & set(cond.EXTRA_CODES):
            seen += 1
            assert not set(b.codes) & set(cond.EXTRA_PERSISTENT + cond.EXTRA_TRANSIENT)
        else:
            assert _same(a, b), (i, a.codes, b.codes)
    assert seen > 0
