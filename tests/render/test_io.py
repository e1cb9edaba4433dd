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
    assert avl["missing"] is True and avl["bbox_px"] is None and np.isnan(avl["trace_x_px"]).all()
    assert [set(p["trace_x_px"]) for p in json.loads(text)["panels"] if p["lead"] == "aVL"] == [{None}]
    ii = gt.panel("II", rhythm=True)
    assert ii["sample_start"] == 0 and ii["sample_stop"] == 5000 and len(ii["trace_x_px"]) == 5000
    assert ii["trace_x_px"] == pytest.approx(res.traces[-1][0, :, 0].double().tolist())
    rounded = json.loads(gt.to_json(decimals=2))
    assert rounded["panels"][0]["trace_y_px"][0] == round(gt.panels[0]["trace_y_px"][0], 2)
    with pytest.raises(KeyError):
        gt.panel("V7")
    with pytest.raises(ValueError, match="format"):
        GroundTruth.from_json(json.dumps({"format": "other"}))


def test_sidecars_written_before_traces_became_arrays_still_load(ecg):
    """The writer of ecgalign <= 0202eea: dataclasses.asdict, lists of floats with None, default separators."""
    signal, fs = ecg
    x = signal.clone()
    x[0, :100] = float("nan")
    gt = Renderer(SMALL).render(x, fs, seed=1).ground_truth(0)
    old = {k: getattr(gt, k) for k in ("width", "height", "layout", "page_to_image", "seed", "augment", "format")}
    old["panels"] = [
        {**p, **{k: [None if np.isnan(v) else round(float(v), 2) for v in p[k]] for k in ("trace_x_px", "trace_y_px")}}
        for p in gt.panels
    ]
    back = GroundTruth.from_json(json.dumps(old))
    assert back == GroundTruth.from_json(gt.to_json(decimals=2))
    lead_i = back.panel("I")
    assert np.isnan(lead_i["trace_y_px"][:100]).all() and np.isfinite(lead_i["trace_y_px"][100:]).all()


def test_ground_truth_json_is_fast(ecg):
    """issue 14: about 0.25 s per 200 dpi printout went into dataclasses.asdict + round over ~40k floats."""
    import time

    signal, fs = ecg
    gt = Renderer(RenderConfig.letter(200)).render(signal, fs).ground_truth(0)
    t0 = time.process_time()
    for _ in range(5):
        gt.to_json(decimals=2)
    assert (time.process_time() - t0) / 5 < 0.1


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
        [f"{r.dataset}_{r.record_id}_{r.fs:g}hz.{ext}" for r in records for ext in ("png", "json")]
    )
    first = GroundTruth.from_json(written[0][1].read_text())
    last = GroundTruth.from_json(written[3][1].read_text())
    assert first.layout["fs"] == 500.0 and last.layout["fs"] == 100.0 and first.seed == 0 and last.seed == 3
    assert len(list(render_records(iter(records), tmp_path / "two", config=SMALL, limit=2))) == 2
    pooled = list(render_records(iter(records), tmp_path / "pool", config=SMALL, augment="light", batch_size=1,
                                 workers=2))
    assert [p.name for p, _ in pooled] == [p.name for p, _ in written]  # in order, same seeds, same pixels
    for (a, _), (b, _) in zip(written, pooled):
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))


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


def test_cli_render_chooses_records_by_id_and_names_the_rate(tmp_path):
    from typer.testing import CliRunner

    from ecgalign.cli.main import app
    from ecgalign.data.record import LEADS_12, ECGRecord
    from ecgalign.data.labels import scp_scheme
    from ecgalign.data.store import StoreSpec, StoreWriter

    writer = StoreWriter(tmp_path / "s", StoreSpec(500.0, 5000, LEADS_12, encoding="int16"), scp_scheme(),
                         info={"dataset": "toy", "preprocess": None})
    t = np.arange(5000) / 500.0
    for i in range(4):
        writer.add(ECGRecord(np.tile((0.8 * np.sin(2 * np.pi * t)).astype(np.float32), (12, 1)), 500.0, LEADS_12,
                             f"r{i}", "toy"), i + 1)
    writer.close()
    runner = CliRunner()
    ids = tmp_path / "ids.txt"
    ids.write_text("r3\n\nr1\n")
    res = runner.invoke(app, ["render", "--data", str(tmp_path / "s"), "--out", str(tmp_path / "o"), "--dpi", "50",
                              "--records", str(ids), "--json"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "o").glob("*.png")) == ["toy_r1_500hz.png", "toy_r3_500hz.png"]
    res = runner.invoke(app, ["render", "--data", str(tmp_path / "s"), "--out", str(tmp_path / "p"), "--dpi", "50",
                              "--ids", "r0,r9", "--workers", "2"])
    assert res.exit_code == 3 and "r9" in res.output  # an id not found is reported, never silent
    assert [p.name for p in (tmp_path / "p").glob("*.png")] == ["toy_r0_500hz.png"]
    res = runner.invoke(app, ["render", "--data", str(tmp_path / "s"), "--out", str(tmp_path / "q"),
                              "--records", str(tmp_path / "none.txt")])
    assert res.exit_code == 2 and "none.txt" in res.output


def test_encode_png_is_lossless_and_writes_leave_no_temporary_files(tmp_path):
    from ecgalign.render.io import encode_png, save_png

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    import io as _io

    assert np.array_equal(np.asarray(Image.open(_io.BytesIO(encode_png(rgb)))), rgb)
    save_png(torch.from_numpy(rgb).permute(2, 0, 1), tmp_path / "a.png")
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]
    with pytest.raises(ValueError, match="uint8"):
        encode_png(rgb.astype(np.float32))


@pytest.mark.parametrize("level", [0, 1, 3, 6])
def test_png_deflate_with_and_without_isal_decodes_to_the_same_pixels(level, monkeypatch):
    import builtins
    import io as _io
    import zlib

    from ecgalign.render import io as render_io

    rng = np.random.default_rng(level)
    rgb = np.full((120, 90, 3), 255, dtype=np.uint8)  # a page: mostly white, with ink and grid
    rgb[::7] = (240, 160, 160)
    rgb[40:44, 10:80] = rng.integers(0, 80, (4, 70, 3), dtype=np.uint8)
    with_default = render_io.encode_png(rgb, level)
    real_import = builtins.__import__

    def no_isal(name, *args, **kwargs):
        if name.startswith("isal"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_isal)
    plain = render_io.encode_png(rgb, level)
    raw = np.c_[np.zeros((120, 1), np.uint8), rgb.reshape(120, -1)].tobytes()
    assert zlib.decompress(plain[plain.index(b"IDAT") + 4:-16]) == raw  # zlib when isal is absent
    for png in (with_default, plain):
        assert np.array_equal(np.asarray(Image.open(_io.BytesIO(png))), rgb)
    try:
        import isal  # noqa: F401
    except ImportError:
        return
    monkeypatch.undo()
    assert (with_default != plain) == (level <= 3)  # ISA-L wrote the stream for levels 0-3, zlib above
