"""`ecgalign data synth-echo`, `ecgalign echo info|extract|score` end to end on a tiny dataset."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ecgalign.cli.main import app

runner = CliRunner()


def _json(args: list[str]) -> dict:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_synth_info_extract_score(tmp_path: Path) -> None:
    d, s = tmp_path / "d", tmp_path / "s"
    synth = _json(["data", "synth-echo", "--n-patients", "2", "--out", str(d), "--seed", "3", "--rows", "120",
                   "--cols", "160", "--defect-fraction", "0.5", "--json"])
    assert synth["patients"] == 2 and synth["dicoms"] == synth["cine"] + synth["stills"]
    info = _json(["echo", "info", str(d), "--json"])
    assert info["files"] == synth["dicoms"] and info["kept"] == synth["cine"] and info["patients"] == 2
    assert info["excluded_by_reason"] == ({"not_ultrasound_multiframe": synth["stills"]} if synth["stills"] else {})
    report = _json(["echo", "extract", str(d), "--out", str(s), "--json"])
    assert report["files"] == synth["dicoms"] and report["kept"] + report["skipped"] == report["files"]
    score = _json(["echo", "score", str(s), str(d), "--json"])
    assert score["planted_rejected"] == score["planted"] and score["clean_kept"] == score["clean"]
    again = runner.invoke(app, ["echo", "extract", str(d), "--out", str(s)])
    assert again.exit_code != 0 and "not empty" in again.output
    resumed = _json(["echo", "extract", str(d), "--out", str(s), "--resume", "--json"])
    assert resumed["processed_this_run"] == 0 and resumed["kept"] == report["kept"]


def test_info_on_missing_path_is_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["echo", "info", str(tmp_path / "nope")])
    assert result.exit_code != 0 and "no such file" in result.output


def test_synth_echo_link_views_and_frames_options(tmp_path: Path) -> None:
    import pandas as pd

    d = tmp_path / "d"
    synth = _json(["data", "synth-echo", "--n-patients", "3", "--out", str(d), "--rows", "120", "--cols", "160",
                   "--ecg-link", "1", "--views", "1", "--max-frames", "33", "--json"])
    assert synth["config"]["ecg_link"] == 1.0 and synth["config"]["views_per_study"] == 1
    truth = pd.read_csv(d / "synth-truth.csv").query("kind == 'cine'")
    assert len(truth) == synth["studies"] and truth.n_frames.between(32, 33).all()
    labels = pd.read_csv(d / "echo-labels.csv")
    assert (labels.ecg_shows == labels.phenotype).all()
    bad = runner.invoke(app, ["data", "synth-echo", "--n-patients", "1", "--out", str(tmp_path / "b"),
                              "--ecg-link", "1.5"])
    assert bad.exit_code != 0 and "ecg_link must be in [0, 1]" in bad.output
