"""Ground truth JSON, PNG + sidecar writing, and rendering a stream of records."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ecgalign.render import GroundTruth, RenderConfig, Renderer, render_records, write_render
from ecgalign.render.io import record_signal

SMALL = RenderConfig(width=550, height=425)


def test_json_round_trip_is_exact(ecg):
    signal, fs = ecg
    x = signal.clone()
    x[4] = float("nan")
    res = Renderer(SMALL).render(
        x, fs, augment="heavy", seed=4, header=[{"id": "r1", "age": 61.0, "sex": "M"}]
    )
    gt = res.ground_truth(0)
    text = gt.to_json()
    back = GroundTruth.from_json(text)
    assert back == gt
    d = json.loads(text)
    assert d["format"] == "ecgalign.render/1" and d["width"] == 550 and d["height"] == 425
    assert d["layout"]["layout"] == "3x4+II" and d["layout"]["gain_mm_per_mv"] == 10.0
    assert len(d["page_to_image"]) == 3 and d["augment"]["config"]["rotation"] == 4.0
    avl = gt.panel("aVL")
    assert avl["missing"] is True and avl["bbox_px"] is None and set(avl["trace_x_px"]) == {None}
    ii = gt.panel("II", rhythm=True)
    assert ii["sample_start"] == 0 and ii["sample_stop"] == 5000 and len(ii["trace_x_px"]) == 5000
    assert ii["trace_x_px"] == pytest.approx(res.traces[-1][0, :, 0].double().tolist())
    rounded = json.loads(gt.to_json(decimals=2))
    assert rounded["panels"][0]["trace_y_px"][0] == round(gt.panels[0]["trace_y_px"][0], 2)
    with pytest.raises(KeyError):
        gt.panel("V7")
    with pytest.raises(ValueError, match="format"):
        GroundTruth.from_json(json.dumps({"format": "other"}))


def test_pixel_sample_mapping_from_the_layout_alone(ecg):
    """The documented formulas rebuild every trace pixel from the layout description and the signal."""
    signal, fs = ecg
    res = Renderer(SMALL).render(signal, fs)
    d = json.loads(res.ground_truth(0).to_json())
    lay = d["layout"]
    for p in d["panels"]:
        s = np.arange(p["sample_start"], p["sample_stop"])
        x = lay["trace_x0_px"] + s / lay["fs"] * lay["speed_mm_per_s"] * lay["px_per_mm"]
        y = (
            p["baseline_y_page_px"]
            - signal[p["lead_index"], s].numpy() * lay["gain_mm_per_mv"] * lay["px_per_mm"]
        )
        assert np.allclose(p["trace_x_px"], x, atol=1e-3) and np.allclose(p["trace_y_px"], y, atol=1e-3)


def test_write_render_png_and_sidecar(ecg, tmp_path):
    signal, fs = ecg
    res = Renderer(SMALL).render(signal, fs, augment="light", seed=1)
    png, js = write_render(res, 0, tmp_path, "one")
    assert png.name == "one.png" and js.name == "one.json"
    assert np.array_equal(np.asarray(Image.open(png)), res.images[0].permute(1, 2, 0).numpy())
    gt = GroundTruth.from_json(js.read_text())
    assert gt.seed == res.seeds[0] and gt.augment["applied"]


def test_render_records_writes_png_and_json(tmp_path):
    from ecgalign.synth import synthesize_record

    records = [synthesize_record(i, seed=1, fs=500.0) for i in range(3)]
    records.append(synthesize_record(3, seed=1, fs=100.0))
    written = list(
        render_records(iter(records), tmp_path, config=SMALL, augment="light", batch_size=2, limit=4)
    )
    assert len(written) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{r.dataset}_{r.record_id}.{ext}" for r in records for ext in ("png", "json")]
    )
    first = GroundTruth.from_json(written[0][1].read_text())
    last = GroundTruth.from_json(written[3][1].read_text())
    assert first.layout["fs"] == 500.0 and last.layout["fs"] == 100.0 and first.seed == 0 and last.seed == 3
    assert len(list(render_records(iter(records), tmp_path / "two", config=SMALL, limit=2))) == 2


def test_record_signal_orders_leads_and_marks_absent_ones():
    from ecgalign.data.record import ECGRecord

    rec = ECGRecord(
        signal=np.ones((2, 10), dtype=np.float32) * np.array([[1.0], [2.0]], dtype=np.float32),
        fs=500.0,
        leads=("V1", "I"),
        record_id="x",
        dataset="t",
    )
    x = record_signal(rec)
    assert x.shape == (12, 10) and x[0, 0] == 2.0 and x[6, 0] == 1.0 and np.isnan(x[1]).all()
    res = Renderer(SMALL).render(torch.from_numpy(x), 500.0)
    assert res.missing[0].sum() == 13 - 2  # I and V1 present; II appears twice
