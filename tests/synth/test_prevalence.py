"""Fitting the generator's code prevalences to a real dataset's code rates (``ecgalign data prevalence-fit``)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from typer.testing import CliRunner

from ecgalign.synth import conditions as cond
from ecgalign.synth.generate import SynthConfig, record_codes, synthesize_record
from ecgalign.synth.population import POP
from ecgalign.synth.prevalence import (
    FITTED,
    code_rates,
    fit_prevalence,
    generated_rates,
    read_prevalence,
)

runner = CliRunner()


@pytest.mark.parametrize("config", [SynthConfig(), SynthConfig(prevalence={"AFIB": 0.3, "LVH": 0.4, "NDT": 0.2})])
def test_record_codes_are_the_records_codes(config):
    """The codes-only path makes the same draws as the record itself: counting it counts the records."""
    for seed in (0, 5):
        for i in range(25):
            assert record_codes(i, seed, config) == frozenset(synthesize_record(i, seed, config=config).codes)


def test_fit_recovers_planted_prevalences():
    """Rates generated under known prevalences are the target; the fit, started from the defaults and counting
    other records (another seed), finds prevalences near the planted ones and matches the rates."""
    planted = dict(cond.DEFAULT_PREVALENCE)
    planted.update({"AFIB": 0.06, "LVH": 0.15, "IMI": 0.04, "NDT": 0.12, "1AVB": 0.05, "CLBBB": 0.05})
    target = generated_rates(planted, 6000, seed=1)
    fit = fit_prevalence(target, n=6000, seed=2, rounds=5)
    assert fit.rounds[-1]["max_abs"] < 0.003 < fit.rounds[0]["max_abs"]  # it moved, and it got there
    for code in ("AFIB", "LVH", "NDT", "1AVB", "CLBBB", "IMI"):
        assert fit.prevalence[code] == pytest.approx(planted[code], rel=0.25), code
    assert set(fit.target) == {c for c in FITTED if target.get(c, 0) > 0} and fit.absent == [
        c for c in FITTED if target.get(c, 0) == 0
    ]
    assert "NORM" in fit.observed and all(cond.DEFAULT_PREVALENCE[c] == 0 for c in cond.OPT_IN)
    assert all(fit.prevalence[c] == 0 for c in cond.OPT_IN)  # opt-in codes are not switched on


def test_fit_refuses_what_it_cannot_fit():
    with pytest.raises(ValueError, match="none of the codes the generator draws"):
        fit_prevalence({"426783006": 0.5}, n=200)  # SNOMED codes (challenge data) are not SCP statements
    with pytest.raises(ValueError, match=r"shares of records in \[0, 1\]"):
        fit_prevalence({"AFIB": 3.0}, n=200)
    with pytest.raises(ValueError, match="n >= 100"):
        fit_prevalence({"AFIB": 0.1}, n=10)
    with pytest.raises(ValueError, match="no records"):
        code_rates([])


def test_code_rates_count_records_not_statements():
    rates, n = code_rates([("SR", "NORM"), ("SR", "LVH", "LVH"), ("AFIB",), ()])
    assert n == 4 and rates == {"SR": 0.5, "NORM": 0.25, "LVH": 0.25, "AFIB": 0.25}


def test_packaged_prevalences_are_the_default():
    assert {c: p for c, p in cond.DEFAULT_PREVALENCE.items() if c not in cond.OPT_IN} == {
        c: p for c, p in POP["prevalence"].items() if c not in cond.OPT_IN
    }


def test_read_prevalence(tmp_path):
    fit = tmp_path / "fit.json"
    fit.write_text(json.dumps({"prevalence": {"AFIB": 0.02, "LVH": 0.07}, "target": {}}))
    assert read_prevalence(fit) == {"AFIB": 0.02, "LVH": 0.07}
    plain = tmp_path / "plain.json"
    plain.write_text('{"AFIB": 0.1}')
    assert read_prevalence(plain) == {"AFIB": 0.1}
    for text, match in (("{", "cannot read"), ("[1, 2]", "expected a JSON object"), ('{"AFIB": "x"}', "number")):
        plain.write_text(text)
        with pytest.raises(ValueError, match=match):
            read_prevalence(plain)


def test_prevalence_fit_and_synth_cli(tmp_path):
    from ecgalign.cli.main import app
    from ecgalign.data.store import ECGStore
    from ecgalign.synth.store import synthesize_store

    real = tmp_path / "real"
    synthesize_store(real, 60, seed=4, fs=100.0, config=SynthConfig(prevalence={"AFIB": 0.5}))
    out = tmp_path / "fit.json"
    res = runner.invoke(app, ["data", "prevalence-fit", str(real), "--n", "800", "--rounds", "3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "60 real records (0 skipped)" in res.output and "AFIB" in res.output and "NORM" in res.output
    fit = json.loads(out.read_text())
    assert fit["source"]["records"] == 60 and fit["prevalence"]["AFIB"] > 3 * cond.DEFAULT_PREVALENCE["AFIB"]
    store = tmp_path / "synth"
    res = runner.invoke(app, ["data", "synth", "--n", "40", "--fs", "100", "--out", str(store), "--prevalence",
                              str(out), "--json"])
    assert res.exit_code == 0, res.output
    s = ECGStore(store)
    assert s.manifest["source"]["config"]["prevalence"]["AFIB"] == fit["prevalence"]["AFIB"]
    afib = Counter("AFIB" in s.record(i).codes for i in range(len(s)))[True]
    assert afib >= 8  # ~40 % of 40 records under the fit, ~2 % under the default
    bad = tmp_path / "bad.json"
    bad.write_text('{"NOPE": 0.1}')
    res = runner.invoke(app, ["data", "synth", "--n", "2", "--out", str(tmp_path / "s2"), "--prevalence", str(bad)])
    assert res.exit_code != 0 and "NOPE" in res.output


@pytest.mark.slow
def test_packaged_fit_matches_ptbxl500(shared_data):
    """The default generator carries each fitted code as often as ptbxl-500's records do, counted on 20,000
    other records than the fit counted (tolerance: 4 binomial SEs of 20,000 records, + 0.001 for the fit)."""
    from ecgalign.data.readers import open_dataset

    ds = open_dataset(shared_data / "ptbxl-500")
    real, n = code_rates(ds.scp_codes(i)[0] for i in range(len(ds)))
    assert n == 500
    got = generated_rates(cond.DEFAULT_PREVALENCE, 20_000, seed=11)
    for code in FITTED:
        if real.get(code, 0) > 0:
            se = (real[code] * (1 - real[code]) / 20_000) ** 0.5
            assert abs(got.get(code, 0) - real[code]) <= 4 * se + 0.001, (code, got.get(code), real[code])
